//! The column contracts (`schemas/*.columns.json`), header matching, and what kind of file a
//! header announces: bonuses, API-style qualifications, or the requester website's worker CSV.

use std::sync::OnceLock;

use serde::Deserialize;

use super::scan::{Format, InputOptions};
use super::website::{self, WebsiteColumn};
use crate::item::BatchKind;

/// The bonus file's column contract, shared with users and tests.
pub const COLUMNS_SCHEMA: &str = include_str!("../../schemas/bonuses.columns.json");

/// The qualification files' column contract (API style and the website's worker CSV).
pub const QUALIFICATION_COLUMNS_SCHEMA: &str =
    include_str!("../../schemas/qualifications.columns.json");

#[derive(Debug, Deserialize)]
pub struct ColumnSchema {
    pub columns: Vec<ColumnSpec>,
    /// The requester website's worker CSV (qualification contract only).
    #[serde(default)]
    pub website: Option<WebsiteSpec>,
}

#[derive(Debug, Deserialize)]
pub struct ColumnSpec {
    pub role: String,
    pub api_name: String,
    pub required: bool,
    pub aliases: Vec<String>,
    pub pattern: Option<String>,
    pub max_length: Option<usize>,
    #[serde(default)]
    pub minimum: Option<i64>,
    #[serde(default)]
    pub maximum: Option<i64>,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct WebsiteSpec {
    pub worker_column: String,
    pub update_prefix: String,
    pub block_column: String,
    pub score_pattern: String,
    pub score_minimum: i64,
    pub score_maximum: i64,
    pub revoke_word: String,
    pub block_words: Vec<String>,
    pub ignored: Vec<String>,
}

impl ColumnSchema {
    /// The column of this role; the schema files are fixed, so a missing role is a bug.
    pub fn column(&self, role: &str) -> &ColumnSpec {
        self.columns
            .iter()
            .find(|c| c.role == role)
            .unwrap_or_else(|| panic!("the column schema has a {role} column"))
    }
}

/// The bonus column contract, parsed once.
pub fn schema() -> &'static ColumnSchema {
    static SCHEMA: OnceLock<ColumnSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(COLUMNS_SCHEMA).expect("schemas/bonuses.columns.json is valid JSON")
    })
}

/// The qualification column contract, parsed once.
pub fn qualification_schema() -> &'static ColumnSchema {
    static SCHEMA: OnceLock<ColumnSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(QUALIFICATION_COLUMNS_SCHEMA)
            .expect("schemas/qualifications.columns.json is valid JSON")
    })
}

/// Header comparison key: case, spaces, underscores, hyphens and dots do not matter.
pub(crate) fn header_key(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The header of a file: names as written (trimmed; `#3` for an unnamed third column), and
/// their comparison keys.
pub(crate) struct Header {
    pub names: Vec<String>,
    pub keys: Vec<String>,
    unnamed: Vec<bool>,
}

impl Header {
    pub(crate) fn new(names: Vec<String>) -> Header {
        let keys = names.iter().map(|n| header_key(n)).collect();
        let unnamed: Vec<bool> = names.iter().map(|n| n.trim().is_empty()).collect();
        let names = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                if unnamed[i] {
                    format!("#{}", i + 1)
                } else {
                    n.trim().to_owned()
                }
            })
            .collect();
        Header {
            names,
            keys,
            unnamed,
        }
    }

    /// Whether the column has no name in the file.
    pub(crate) fn unnamed(&self, i: usize) -> bool {
        self.unnamed[i]
    }

    /// Indices of the columns named like `spec` (or exactly `explicit`, when given).
    pub(crate) fn matches(&self, spec: &ColumnSpec, explicit: Option<&str>) -> Vec<usize> {
        let wanted: Vec<String> = match explicit {
            Some(name) => vec![header_key(name)],
            None => spec.aliases.iter().map(|a| header_key(a)).collect(),
        };
        (0..self.keys.len())
            .filter(|&i| wanted.contains(&self.keys[i]))
            .collect()
    }

    /// The one column of this role: `Ok(None)` when there is none, an error when several
    /// columns could be it.
    pub(crate) fn one(
        &self,
        spec: &ColumnSpec,
        explicit: Option<&str>,
    ) -> Result<Option<usize>, String> {
        match self.matches(spec, explicit).as_slice() {
            [] => Ok(None),
            [i] => Ok(Some(*i)),
            many => Err(format!(
                "more than one column could be the {} ({}); keep one, or rename the others",
                spec.role,
                many.iter()
                    .map(|&i| self.names[i].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// "name it WorkerId (also accepted: worker_id, …)" — for messages about a missing column.
pub(crate) fn name_it(spec: &ColumnSpec) -> String {
    let others: Vec<&str> = spec
        .aliases
        .iter()
        .map(String::as_str)
        .filter(|a| *a != spec.api_name)
        .collect();
    format!(
        "name it {} (also accepted: {})",
        spec.api_name,
        others.join(", ")
    )
}

/// What the header says the file is, with the columns that said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Detected {
    pub format: Format,
    /// True when nothing in the header pointed anywhere and bonuses were assumed.
    pub guessed: bool,
}

/// Tells the file's format from its header (and `--kind`, `--qualification`,
/// `--amount-column`), or says why it cannot.
pub(crate) fn detect(header: &Header, opts: &InputOptions) -> Result<Detected, String> {
    let bonus = schema();
    let qual = qualification_schema();
    let bonus_cols: Vec<&str> = ["assignment", "amount"]
        .iter()
        .flat_map(|r| header.matches(bonus.column(r), None))
        .map(|i| header.names[i].as_str())
        .collect();
    let api_cols: Vec<&str> = ["qualification", "value", "action"]
        .iter()
        .flat_map(|r| header.matches(qual.column(r), None))
        .map(|i| header.names[i].as_str())
        .collect();
    let mut website_cols = Vec::new();
    let mut near_miss = false;
    for name in &header.names {
        match website::classify(name) {
            WebsiteColumn::Update(_)
            | WebsiteColumn::Block
            | WebsiteColumn::Current
            | WebsiteColumn::UnnamedUpdate => website_cols.push(name.as_str()),
            WebsiteColumn::MistypedUpdate => near_miss = true,
            WebsiteColumn::Other => {}
        }
    }
    let is_bonus = !bonus_cols.is_empty() || opts.amount_column.is_some();
    let is_api = !api_cols.is_empty();
    let is_website = !website_cols.is_empty();
    let found = |format| {
        Ok(Detected {
            format,
            guessed: false,
        })
    };
    match opts.kind {
        Some(BatchKind::Bonus) => return found(Format::Bonus),
        Some(BatchKind::Qualification) if is_website || (near_miss && !is_api) => {
            return found(Format::WebsiteWorkers);
        }
        Some(BatchKind::Qualification) => return found(Format::QualificationApi),
        None => {}
    }
    let mut kinds = Vec::new();
    if is_bonus {
        let mut cols = bonus_cols.join(", ");
        if let Some(c) = &opts.amount_column {
            cols = if cols.is_empty() {
                format!("--amount-column {c}")
            } else {
                format!("{cols}, --amount-column {c}")
            };
        }
        kinds.push(format!("a bonus file ({cols})"));
    }
    if is_api {
        kinds.push(format!("a qualification file ({})", api_cols.join(", ")));
    }
    if is_website {
        kinds.push(format!(
            "a worker file from the requester website ({})",
            website_cols.join(", ")
        ));
    }
    if kinds.len() > 1 {
        return Err(format!(
            "the header has the columns of {}; say which it is with --kind bonus or --kind qualification",
            kinds.join(" and of ")
        ));
    }
    if is_website || (near_miss && !is_bonus && !is_api) {
        found(Format::WebsiteWorkers)
    } else if is_api || opts.qualification.is_some() {
        // --qualification says the file grants a qualification, even a batch-results file
        // with assignment columns.
        found(Format::QualificationApi)
    } else if is_bonus {
        found(Format::Bonus)
    } else {
        Ok(Detected {
            format: Format::Bonus,
            guessed: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Header {
        Header::new(text.split(',').map(str::to_owned).collect())
    }

    fn format(text: &str, opts: &InputOptions) -> Result<Detected, String> {
        detect(&header(text), opts)
    }

    fn fmt(text: &str) -> Format {
        format(text, &InputOptions::default()).unwrap().format
    }

    #[test]
    fn the_header_tells_the_kind_of_file() {
        assert_eq!(
            fmt("WorkerId,AssignmentId,BonusAmount,Reason"),
            Format::Bonus
        );
        assert_eq!(fmt("WorkerId,BonusAmount"), Format::Bonus);
        assert_eq!(
            fmt("WorkerId,QualificationTypeId,IntegerValue"),
            Format::QualificationApi
        );
        assert_eq!(fmt("worker_id,score"), Format::QualificationApi);
        assert_eq!(fmt("Worker ID,Action"), Format::QualificationApi);
        assert_eq!(
            fmt("Worker ID,Lifetime Approval Rate,CURRENT-Panel,UPDATE-Panel"),
            Format::WebsiteWorkers
        );
        assert_eq!(fmt("Worker ID,UPDATE-BlockStatus"), Format::WebsiteWorkers);
        // Only mistyped update columns: still the website's file (and refused for them later).
        assert_eq!(fmt("Worker ID,UPDATE_Panel"), Format::WebsiteWorkers);
        // The batch-results file is a bonus file (its Answer.score is not a score column).
        assert_eq!(
            fmt("HITId,AssignmentId,WorkerId,Answer.score,Bonus"),
            Format::Bonus
        );
    }

    #[test]
    fn nothing_recognisable_is_read_as_bonuses_and_said_to_be_a_guess() {
        let d = format("Worker,Amt,Why", &InputOptions::default()).unwrap();
        assert_eq!(
            d,
            Detected {
                format: Format::Bonus,
                guessed: true
            }
        );
    }

    #[test]
    fn options_decide_or_settle_it() {
        let qual = InputOptions {
            qualification: Some("Panel".into()),
            ..Default::default()
        };
        assert_eq!(
            format("WorkerId,IntegerValue", &qual).unwrap().format,
            Format::QualificationApi
        );
        assert_eq!(
            format("Worker", &qual).unwrap().format,
            Format::QualificationApi
        );
        assert_eq!(
            format("HITId,AssignmentId,WorkerId", &qual).unwrap().format,
            Format::QualificationApi
        );
        let forced = |kind| InputOptions {
            kind: Some(kind),
            ..Default::default()
        };
        assert_eq!(
            format(
                "WorkerId,AssignmentId,IntegerValue",
                &forced(BatchKind::Qualification)
            )
            .unwrap()
            .format,
            Format::QualificationApi
        );
        assert_eq!(
            format(
                "WorkerId,AssignmentId,IntegerValue",
                &forced(BatchKind::Bonus)
            )
            .unwrap()
            .format,
            Format::Bonus
        );
        assert_eq!(
            format("Worker ID,UPDATE-Panel", &forced(BatchKind::Qualification))
                .unwrap()
                .format,
            Format::WebsiteWorkers
        );
        let amount = InputOptions {
            amount_column: Some("Pay".into()),
            ..Default::default()
        };
        assert_eq!(
            format("WorkerId,HIT,Pay", &amount).unwrap().format,
            Format::Bonus
        );
    }

    #[test]
    fn a_header_with_columns_of_two_kinds_asks_for_kind() {
        let e = format(
            "WorkerId,AssignmentId,BonusAmount,IntegerValue",
            &InputOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "the header has the columns of a bonus file (AssignmentId, BonusAmount) and of a qualification file (IntegerValue); say which it is with --kind bonus or --kind qualification"
        );
        let e = format("Worker ID,UPDATE-Panel,Score", &InputOptions::default()).unwrap_err();
        assert!(e.contains("a worker file from the requester website (UPDATE-Panel)"));
    }

    #[test]
    fn missing_column_names_list_the_other_accepted_names() {
        assert_eq!(
            name_it(schema().column("assignment")),
            "name it AssignmentId (also accepted: assignment_id, assignmentId, Assignment ID, assignment)"
        );
    }
}
