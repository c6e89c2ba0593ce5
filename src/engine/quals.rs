//! Qualification types named by name: looked up among the requester's own types, and — only
//! when asked — created, exactly once each, even across a crash.
//!
//! A creation is recorded in the journal before its call. A creation found recorded but not
//! finished is looked up by name before anything is created again; and since MTurk refuses a
//! second type with the same name, a lost answer can never turn into two types.

use std::collections::HashMap;

use crate::ids::QualificationTypeId;
use crate::journal::{Journal, JournalError, QualTypeState, Write};
use crate::op::QualRef;
use crate::platform::{ErrorClass, Platform, PlatformError};

use super::EngineConfig;
use super::retry::{backoff, read_with_retries};

/// Qualification type names resolved to IDs for a run.
#[derive(Debug, Clone, Default)]
pub struct QualMap {
    by_name: HashMap<String, QualificationTypeId>,
}

impl QualMap {
    pub fn new(by_name: HashMap<String, QualificationTypeId>) -> QualMap {
        QualMap { by_name }
    }

    /// The type ID a reference means: itself, or the resolved name.
    pub fn id(&self, q: &QualRef) -> Option<QualificationTypeId> {
        match q {
            QualRef::Id(id) => Some(id.clone()),
            QualRef::Name(n) => self.by_name.get(n).cloned(),
        }
    }

    pub fn insert(&mut self, name: String, id: QualificationTypeId) {
        self.by_name.insert(name, id);
    }

    /// Every name resolved, with its type ID.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &QualificationTypeId)> {
        self.by_name.iter()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Looks each name up (read-only) among the requester's own types on the platform. Returns the
/// names found and those missing.
///
/// What the journal recorded for a name (a type payout created or found) is never trusted on
/// its own: the type may have been deleted since, or made again under another ID, so the
/// platform is asked every time. A name is matched exactly as the platform stores it.
pub async fn look_up_qualifications<P: Platform>(
    platform: &P,
    journal: Option<&Journal>,
    ledger: &str,
    names: &[String],
    cfg: &EngineConfig,
) -> Result<(QualMap, Vec<String>), LookupError> {
    let mut map = QualMap::default();
    let mut missing = Vec::new();
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    // The journal is not asked: see above. (Kept in the signature for the callers' sake.)
    let _ = (journal, ledger);
    for name in names {
        let found = read_with_retries(
            cfg,
            None,
            None,
            &mut rng,
            |_, _| {},
            || platform.find_qualification_type(name),
        )
        .await?;
        if let Some(id) = found {
            map.insert(name.clone(), id);
            continue;
        }
        // A type whose name differs only by spaces around it is what the file meant (the
        // file's cells are read trimmed), or a different type: payout cannot tell, and
        // creating the name would make a look-alike that gets the scores.
        let like = read_with_retries(
            cfg,
            None,
            None,
            &mut rng,
            |_, _| {},
            || platform.qualification_type_names(name.trim()),
        )
        .await?;
        let like: Vec<String> = like
            .into_iter()
            .filter(|n| n != name && n.trim() == name.trim())
            .collect();
        if !like.is_empty() {
            return Err(LookupError::LookAlike {
                name: name.clone(),
                like,
            });
        }
        missing.push(name.clone());
    }
    Ok((map, missing))
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("failed to look up qualification types: {0}")]
    Platform(#[from] PlatformError),
    /// No type has the name; one of the requester's differs from it only by spaces.
    #[error("no qualification type of yours is named exactly {name:?}, but {} differs from it only by spaces around it", like.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", "))]
    LookAlike { name: String, like: Vec<String> },
}

/// Creates each type that [`look_up_qualifications`] found missing, once: the intent is
/// committed before the call. (An interrupted earlier creation was found by that look-up, by
/// name, so it is not created again.)
pub async fn create_missing<P: Platform>(
    platform: &P,
    journal: &mut Journal,
    ledger: &str,
    batch: i64,
    names: &[String],
    cfg: &EngineConfig,
) -> Result<QualMap, LookupError> {
    let mut map = QualMap::default();
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    for name in names {
        let record = |type_id: Option<String>, state| Write::QualType {
            ledger: ledger.to_owned(),
            name: name.clone(),
            type_id,
            state,
            batch,
        };
        journal.write(&record(None, QualTypeState::Creating))?;
        let description = format!("Created by payout for {name}");
        let id = create_once(platform, name, &description, cfg, &mut rng).await?;
        journal.write(&record(Some(id.to_string()), QualTypeState::Created))?;
        map.insert(name.clone(), id);
    }
    Ok(map)
}

/// Creates the type `name`, retrying a fault, a throttle or a lost answer like every other
/// call. Whatever the answer, a creation may have been applied: before each new attempt the
/// name is looked up, and a type found by it is the one created (MTurk refuses a second type
/// with the same name, so this never makes two).
async fn create_once<P: Platform>(
    platform: &P,
    name: &str,
    description: &str,
    cfg: &EngineConfig,
    rng: &mut fastrand::Rng,
) -> Result<QualificationTypeId, LookupError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let e = match platform.create_qualification_type(name, description).await {
            Ok(id) => return Ok(id),
            Err(e) => e,
        };
        let found = read_with_retries(
            cfg,
            None,
            None,
            rng,
            |_, _| {},
            || platform.find_qualification_type(name),
        )
        .await?;
        if let Some(id) = found {
            return Ok(id);
        }
        let transient = matches!(
            e.class,
            ErrorClass::Throttled | ErrorClass::NotSent | ErrorClass::Ambiguous
        );
        if !transient || tries >= cfg.max_attempts {
            return Err(LookupError::Platform(e));
        }
        tokio::time::sleep(backoff(cfg, tries, rng)).await;
    }
}
