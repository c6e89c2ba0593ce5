//! Prolific's JSON answers as payout reads them: only the fields it uses, unknown fields
//! ignored, and every amount taken from the number's text (`serde_json`'s `RawValue`), so
//! `283.34` is never a float.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ids::{BulkBonusId, WorkspaceId};
use crate::money::{Currency, ExactMinor};
use crate::platform::{ErrorClass, PlatformError, SetUpAnswer};

fn malformed(what: &str, e: impl std::fmt::Display) -> PlatformError {
    PlatformError {
        // The call was answered 2xx; a body payout cannot read proves nothing about a change.
        class: ErrorClass::Ambiguous,
        code: None,
        message: format!("Prolific's answer could not be read ({what}): {e}"),
    }
}

pub(super) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, PlatformError> {
    serde_json::from_slice(body).map_err(|e| {
        let head: String = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        malformed(&head, e)
    })
}

fn exact(raw: &RawValue) -> Result<ExactMinor, PlatformError> {
    ExactMinor::parse(raw.get()).map_err(|e| malformed("an amount", e))
}

fn exact_opt(raw: &Option<Box<RawValue>>) -> Result<ExactMinor, PlatformError> {
    match raw {
        Some(r) if r.get() != "null" => exact(r),
        _ => Ok(ExactMinor::ZERO),
    }
}

#[derive(Deserialize)]
pub(super) struct Link {
    href: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct Links {
    next: Option<Link>,
}

#[derive(Deserialize)]
pub(super) struct Page<T> {
    pub results: Vec<T>,
    #[serde(rename = "_links", default)]
    links: Links,
}

impl<T> Page<T> {
    pub fn next(&self) -> Option<&str> {
        self.links.next.as_ref()?.href.as_deref()
    }
}

/// `GET /users/me/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub id: String,
    #[serde(default)]
    pub currency_code: Option<String>,
}

impl Me {
    pub fn currency(&self) -> Option<Currency> {
        self.currency_code.as_deref().and_then(Currency::parse)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkspaceInfo {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
}

impl WorkspaceInfo {
    pub fn workspace_id(&self) -> Option<WorkspaceId> {
        WorkspaceId::parse(&self.id).ok()
    }
}

/// `GET /workspaces/{id}/balance/`, minor units.
#[derive(Debug, Clone)]
pub struct WorkspaceBalance {
    pub currency: Option<Currency>,
    pub total: ExactMinor,
    pub available: ExactMinor,
}

impl<'de> Deserialize<'de> for WorkspaceBalance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            currency_code: Option<String>,
            total_balance: Option<Box<RawValue>>,
            available_balance: Option<Box<RawValue>>,
        }
        let r = Raw::deserialize(d)?;
        let err = |e: PlatformError| serde::de::Error::custom(e.message);
        Ok(WorkspaceBalance {
            currency: r.currency_code.as_deref().and_then(Currency::parse),
            total: exact_opt(&r.total_balance).map_err(err)?,
            available: exact_opt(&r.available_balance).map_err(err)?,
        })
    }
}

/// `GET /studies/{id}/`.
#[derive(Debug, Clone, Deserialize)]
pub struct StudyInfo {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub currency_code: Option<String>,
}

impl StudyInfo {
    pub fn currency(&self) -> Option<Currency> {
        self.currency_code.as_deref().and_then(Currency::parse)
    }
}

/// One item of a study's submissions.
#[derive(Debug, Clone, Deserialize)]
pub struct SubmissionInfo {
    pub id: String,
    /// `participant_id` in lists, `participant` in a single submission.
    #[serde(alias = "participant")]
    pub participant_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    bonus_payments: Option<Vec<Box<RawValue>>>,
}

impl SubmissionInfo {
    pub fn bonus_payments(&self) -> Result<Vec<ExactMinor>, PlatformError> {
        self.bonus_payments
            .iter()
            .flatten()
            .map(|r| exact(r))
            .collect()
    }
}

/// `GET /submissions/{id}/`.
pub(super) type Submission = SubmissionInfo;

#[derive(Deserialize)]
struct RawSetUp {
    id: String,
    amount: Option<Box<RawValue>>,
    fees: Option<Box<RawValue>>,
    vat: Option<Box<RawValue>>,
    total_amount: Option<Box<RawValue>>,
}

/// A set-up's 201 answer. An answer without an id or amount payout can read is not stored, so
/// it is never paid (the chunk is set up again).
pub(super) fn set_up_answer(body: &[u8]) -> Result<SetUpAnswer, PlatformError> {
    let r: RawSetUp = parse(body)?;
    let id = BulkBonusId::parse(&r.id).map_err(|e| malformed("the set-up's id", e))?;
    let amount = match &r.amount {
        Some(a) if a.get() != "null" => exact(a)?,
        _ => return Err(malformed("the set-up's amount", "missing")),
    };
    Ok(SetUpAnswer {
        id,
        amount,
        fees: exact_opt(&r.fees)?,
        vat: exact_opt(&r.vat)?,
        total: exact_opt(&r.total_amount)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_up_answer_keeps_prolifics_numbers_exactly() {
        let a = set_up_answer(
            br#"{"id":"6284a2e9c7d3b1a0f5e4d3c2","study":"s","amount":850,"fees":283.34,"vat":0,"total_amount":1133.34}"#,
        )
        .unwrap();
        assert_eq!(a.amount.to_string(), "850");
        assert_eq!(a.fees.to_string(), "283.34");
        assert_eq!(a.total.to_string(), "1133.34");
        assert!(set_up_answer(br#"{"id":"x/y","amount":1}"#).is_err());
        assert!(set_up_answer(br#"{"id":"abc","amount":null}"#).is_err());
    }

    #[test]
    fn submissions_and_pages_read_both_spellings() {
        let p: Page<SubmissionInfo> = parse(
            br#"{"results":[{"id":"a","participant_id":"p","bonus_payments":[150, 99.5]}],"_links":{"next":{"href":null}},"meta":{"count":1}}"#,
        )
        .unwrap();
        assert_eq!(p.next(), None);
        assert_eq!(p.results[0].participant_id.as_deref(), Some("p"));
        assert_eq!(p.results[0].bonus_payments().unwrap().len(), 2);
        let s: Submission =
            parse(br#"{"id":"a","participant":"p","bonus_payments":null}"#).unwrap();
        assert_eq!(s.participant_id.as_deref(), Some("p"));
        assert!(s.bonus_payments().unwrap().is_empty());
        let b: WorkspaceBalance =
            parse(br#"{"currency_code":"GBP","total_balance":10000,"available_balance":9000.5}"#)
                .unwrap();
        assert_eq!(b.currency, Some(Currency::Gbp));
        assert_eq!(b.available.to_string(), "9000.5");
    }
}

/// A participant group (`GET /participant-groups/`): the fields payout reads.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupInfo {
    pub id: String,
    pub name: Option<String>,
    #[serde(default)]
    pub is_deleted: bool,
    pub participant_count: Option<u64>,
    /// Studies that add their participants to the group. Their shape is not documented (ids or
    /// objects): kept as given, for what the plan says.
    #[serde(default)]
    pub feeder_studies: Vec<serde_json::Value>,
}

impl GroupInfo {
    /// The feeder studies as payout shows them: an id, or an object's `id` or `name`.
    pub fn feeder_names(&self) -> Vec<String> {
        self.feeder_studies
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(m) => m
                    .get("name")
                    .or_else(|| m.get("id"))
                    .and_then(|x| x.as_str())
                    .map_or_else(|| v.to_string(), str::to_owned),
                other => other.to_string(),
            })
            .collect()
    }
}

/// A member of a group's member list.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Member {
    pub participant_id: String,
}
