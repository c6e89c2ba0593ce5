//! Identifier newtypes and their patterns: MTurk's (worker, assignment, HIT, qualification type)
//! and Prolific's (participant, submission, study, workspace, bulk bonus payment).
//!
//! A value of one of these types has passed the service model's pattern; nothing else checks.

use std::fmt;

/// Why a text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 64 characters")]
    TooLong,
    #[error("must start with the letter A (MTurk worker IDs look like A1B2C3D4E5F6G7)")]
    WorkerPrefix,
    #[error("may contain only capital letters A-Z and digits 0-9 (found {0:?})")]
    BadChar(char),
}

/// `^[A-Z0-9]+$`, 1..64: MTurk's `EntityId` pattern.
pub fn check_entity_id(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.len() > 64 {
        return Err(IdError::TooLong);
    }
    match text
        .chars()
        .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
    {
        Some(c) => Err(IdError::BadChar(c)),
        None => Ok(()),
    }
}

/// `^A[A-Z0-9]+$`, 1..64: MTurk's `CustomerId` pattern.
pub fn check_worker_id(text: &str) -> Result<(), IdError> {
    check_entity_id(text)?;
    if !text.starts_with('A') {
        return Err(IdError::WorkerPrefix);
    }
    if text.len() < 2 {
        return Err(IdError::Empty);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        id_type!($(#[$doc])* $name, $check, IdError, str::to_owned);
    };
    ($(#[$doc:meta])* $name:ident, $check:path, $err:ty) => {
        id_type!($(#[$doc])* $name, $check, $err, str::to_owned);
    };
    ($(#[$doc:meta])* $name:ident, $check:path, $err:ty, $norm:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks the text against its pattern (after trimming whitespace), and keeps it
            /// in the one spelling the platform answers with.
            pub fn parse(text: &str) -> Result<Self, $err> {
                let text = text.trim();
                $check(text)?;
                Ok(Self($norm(text)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A worker ID (`CustomerId` in the model).
    WorkerId,
    check_worker_id
);
id_type!(
    /// An assignment ID (`EntityId`).
    AssignmentId,
    check_entity_id
);
id_type!(
    /// A HIT ID (`EntityId`).
    HitId,
    check_entity_id
);
id_type!(
    /// A qualification type ID (`EntityId`).
    QualificationTypeId,
    check_entity_id
);

/// Why a text is not one of Prolific's identifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProlificIdError {
    #[error("is empty")]
    Empty,
    #[error(
        "is not a Prolific ID (24 hexadecimal characters such as 60ffe5c8371090c7041d43f8, or a UUID)"
    )]
    Shape,
    #[error("may contain only letters, digits, '-' and '_'")]
    BadChar,
}

/// Prolific's participant, submission, study and workspace IDs: 24 hexadecimal characters
/// (ObjectId style) or a UUID, as the API reference shows them. Compared as given, lowercase.
pub fn check_prolific_id(text: &str) -> Result<(), ProlificIdError> {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if text.is_empty() {
        return Err(ProlificIdError::Empty);
    }
    if text.len() == 24 && hex(text) {
        return Ok(());
    }
    let parts: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    if lens == [8, 4, 4, 4, 12] && parts.iter().all(|p| hex(p)) {
        return Ok(());
    }
    Err(ProlificIdError::Shape)
}

/// An id Prolific hands back (a bulk bonus payment's): opaque, but it goes into a URL path, so
/// it may hold only `[A-Za-z0-9_-]`.
pub fn check_opaque_id(text: &str) -> Result<(), ProlificIdError> {
    if text.is_empty() {
        return Err(ProlificIdError::Empty);
    }
    if text.len() > 64
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ProlificIdError::BadChar);
    }
    Ok(())
}

id_type!(
    /// A Prolific participant (`PROLIFIC_PID`).
    ParticipantId,
    check_prolific_id,
    ProlificIdError,
    str::to_ascii_lowercase
);
id_type!(
    /// A Prolific submission (`SESSION_ID`): one participant's taking part in one study.
    SubmissionId,
    check_prolific_id,
    ProlificIdError,
    str::to_ascii_lowercase
);
id_type!(
    /// A Prolific study (`STUDY_ID`).
    StudyId,
    check_prolific_id,
    ProlificIdError,
    str::to_ascii_lowercase
);
id_type!(
    /// A Prolific workspace: whose balance pays, and the unit of "one money call at a time".
    WorkspaceId,
    check_prolific_id,
    ProlificIdError,
    str::to_ascii_lowercase
);
id_type!(
    /// A Prolific participant group: a qualification, or a block list.
    GroupId,
    check_prolific_id,
    ProlificIdError,
    str::to_ascii_lowercase
);
id_type!(
    /// The id of a bulk bonus payment a set-up answered: the only thing ever paid.
    BulkBonusId,
    check_opaque_id,
    ProlificIdError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_follow_the_customer_id_pattern() {
        assert!(WorkerId::parse("A143XRCI1YXAFE").is_ok());
        assert_eq!(WorkerId::parse(" A1B2 ").unwrap().as_str(), "A1B2");
        assert_eq!(WorkerId::parse("B143XRCI"), Err(IdError::WorkerPrefix));
        assert_eq!(WorkerId::parse("a143xrci"), Err(IdError::BadChar('a')));
        assert_eq!(WorkerId::parse("A"), Err(IdError::Empty));
        assert_eq!(WorkerId::parse(""), Err(IdError::Empty));
        assert_eq!(WorkerId::parse(&"A".repeat(65)), Err(IdError::TooLong));
    }

    #[test]
    fn assignment_ids_follow_the_entity_id_pattern() {
        assert!(AssignmentId::parse("3AMW0RGHOD1P7H6ZJ6QR5GLF7TIPN8").is_ok());
        assert_eq!(AssignmentId::parse("3AMW-0R"), Err(IdError::BadChar('-')));
    }

    #[test]
    fn prolific_ids_are_object_ids_or_uuids() {
        assert!(ParticipantId::parse("60ffe5c8371090c7041d43f8").is_ok());
        assert!(SubmissionId::parse("0b2a1f3e-9c4d-4e5f-8a7b-6c5d4e3f2a1b").is_ok());
        assert_eq!(
            StudyId::parse("60ffe5c8371090c7041d43f"),
            Err(ProlificIdError::Shape)
        );
        assert_eq!(
            ParticipantId::parse("A143XRCI1YXAFE"),
            Err(ProlificIdError::Shape)
        );
        assert_eq!(ParticipantId::parse(" "), Err(ProlificIdError::Empty));
        // Prolific answers its ids in lower case: an id typed in upper case is the same one
        // (a remove compared with the member list must find it).
        assert_eq!(
            ParticipantId::parse("60FFE5C8371090C7041D43F8")
                .unwrap()
                .as_str(),
            "60ffe5c8371090c7041d43f8"
        );
        assert!(BulkBonusId::parse("abc_123-X").is_ok());
        assert_eq!(BulkBonusId::parse("a/b"), Err(ProlificIdError::BadChar));
    }
}
