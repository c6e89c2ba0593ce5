//! The Prolific emulator's HTTP side: the hyper 1 server, routing of `/api/v1/...`, the
//! per-request pipeline (route → auth → drop before → 429 contention → apply → lost / 5xx
//! after), the `/_emulator/*` inspection endpoints, and the handles tests and payout hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::guesses::{self, ApiError, money};
use super::state::{
    DoublePayment, ErrorAfterStatus, FaultRates, PayOutcome, ProlificConfig, ProlificState,
    ProlificStats, iso8601,
};

const JSON: &str = "application/json";
/// Far above any real request (a 1,000-row `csv_bonuses` is about 40 KB).
const MAX_BODY: usize = 8 << 20;

pub(crate) struct World {
    pub state: ProlificState,
    pub config: ProlificConfig,
    pub rng: fastrand::Rng,
}

pub(crate) struct Shared {
    world: Mutex<World>,
    /// Signalled after every API request, for `ProlificHandle::wait_for`.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

use crate::emulator::background::{Answer, DropConnection, accept_loop};

fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn error_answer(e: &ApiError) -> Answer {
    answer(e.status, JSON, e.body())
}

/// An error in the envelope the configuration asks for (`simple_errors`: the
/// `{"message", "detail"}` shape some endpoints answer).
fn error_answer_in(w: &World, e: &ApiError) -> Answer {
    if w.config.simple_errors {
        answer(e.status, JSON, e.simple_body())
    } else {
        error_answer(e)
    }
}

/// Which class of call a request is, for its fault rates and contention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    SetUp,
    Pay,
    Group,
}

/// A path of the API, with its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Me,
    Workspaces,
    Workspace(String),
    Balance(String),
    Project(String),
    Study(String),
    StudySubmissions(String),
    Submissions,
    Submission(String),
    SetUp,
    Pay(String),
    Groups,
    Group(String),
    Members(String),
}

impl Route {
    /// `None` for anything that is not an API path ending in `/` (L: Prolific may redirect a
    /// path without the slash; the emulator answers 404, so a client that forgets it fails).
    fn parse(path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/api/v1/")?.strip_suffix('/')?;
        let seg: Vec<&str> = rest.split('/').collect();
        if seg.iter().any(|s| s.is_empty()) {
            return None;
        }
        let id = |s: &str| s.to_owned();
        Some(match seg.as_slice() {
            ["users", "me"] => Route::Me,
            ["workspaces"] => Route::Workspaces,
            ["workspaces", w] => Route::Workspace(id(w)),
            ["workspaces", w, "balance"] => Route::Balance(id(w)),
            ["projects", p] => Route::Project(id(p)),
            ["studies", s] => Route::Study(id(s)),
            ["studies", s, "submissions"] => Route::StudySubmissions(id(s)),
            ["submissions"] => Route::Submissions,
            ["submissions", "bonus-payments"] => Route::SetUp,
            ["submissions", s] => Route::Submission(id(s)),
            ["bulk-bonus-payments", b, "pay"] => Route::Pay(id(b)),
            ["participant-groups"] => Route::Groups,
            ["participant-groups", g] => Route::Group(id(g)),
            ["participant-groups", g, "participants"] => Route::Members(id(g)),
            _ => return None,
        })
    }

    fn template(&self) -> &'static str {
        match self {
            Route::Me => "/api/v1/users/me/",
            Route::Workspaces => "/api/v1/workspaces/",
            Route::Workspace(_) => "/api/v1/workspaces/{id}/",
            Route::Balance(_) => "/api/v1/workspaces/{id}/balance/",
            Route::Project(_) => "/api/v1/projects/{id}/",
            Route::Study(_) => "/api/v1/studies/{id}/",
            Route::StudySubmissions(_) => "/api/v1/studies/{id}/submissions/",
            Route::Submissions => "/api/v1/submissions/",
            Route::Submission(_) => "/api/v1/submissions/{id}/",
            Route::SetUp => "/api/v1/submissions/bonus-payments/",
            Route::Pay(_) => "/api/v1/bulk-bonus-payments/{id}/pay/",
            Route::Groups => "/api/v1/participant-groups/",
            Route::Group(_) => "/api/v1/participant-groups/{id}/",
            Route::Members(_) => "/api/v1/participant-groups/{id}/participants/",
        }
    }

    /// The methods the path takes and the kind of each; `None` → 405.
    fn kind(&self, method: &Method) -> Option<Kind> {
        let get = *method == Method::GET;
        match self {
            Route::SetUp if *method == Method::POST => Some(Kind::SetUp),
            Route::Pay(_) if *method == Method::POST => Some(Kind::Pay),
            Route::Groups if *method == Method::POST => Some(Kind::Group),
            Route::Group(_) if *method == Method::PATCH || *method == Method::DELETE => {
                Some(Kind::Group)
            }
            Route::Members(_) if *method == Method::POST || *method == Method::DELETE => {
                Some(Kind::Group)
            }
            Route::SetUp | Route::Pay(_) => None,
            _ if get => Some(Kind::Read),
            _ => None,
        }
    }
}

/// The decoded query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str) -> Option<usize> {
        self.get(name).and_then(|v| v.parse().ok())
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One page of a list, in Prolific's list shape, by `limit`/`offset` when the request uses
/// them and `page`/`page_size` otherwise (see `guesses::LINK_TITLES`).
fn paged<T>(
    items: &[T],
    query: &Query,
    base: &str,
    default_size: usize,
    render: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
    let count = items.len();
    let link = |params: Option<Vec<(&str, String)>>, title: &str| {
        let href = params.map(|params| {
            let mut all: Vec<(String, String)> = query
                .0
                .iter()
                .filter(|(k, _)| !["page", "page_size", "limit", "offset"].contains(&k.as_str()))
                .cloned()
                .collect();
            all.extend(params.into_iter().map(|(k, v)| (k.to_owned(), v)));
            let q: Vec<String> = all
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            format!("{base}?{}", q.join("&"))
        });
        json!({ "href": href, "title": title })
    };
    let [t_self, t_next, t_prev, t_last] = guesses::LINK_TITLES;
    let (start, size, links) = if query.get("limit").is_some() || query.get("offset").is_some() {
        let limit = query.number("limit").unwrap_or(default_size).max(1);
        let offset = query.number("offset").unwrap_or(0);
        let lim = |o: usize| {
            Some(vec![
                ("limit", limit.to_string()),
                ("offset", o.to_string()),
            ])
        };
        let last = if count == 0 {
            0
        } else {
            (count - 1) / limit * limit
        };
        let links = json!({
            "self": link(lim(offset), t_self),
            "next": link((offset + limit < count).then(|| lim(offset + limit)).flatten(), t_next),
            "previous": link((offset > 0).then(|| lim(offset.saturating_sub(limit))).flatten(), t_prev),
            "last": link(lim(last), t_last),
        });
        (offset, limit, links)
    } else {
        let size = query.number("page_size").unwrap_or(default_size).max(1);
        let page = query.number("page").unwrap_or(1).max(1);
        let pages = count.div_ceil(size).max(1);
        if page > pages {
            return Err(guesses::invalid_page());
        }
        let pg = |p: usize| {
            Some(vec![
                ("page", p.to_string()),
                ("page_size", size.to_string()),
            ])
        };
        let links = json!({
            "self": link(pg(page), t_self),
            "next": link((page < pages).then(|| pg(page + 1)).flatten(), t_next),
            "previous": link((page > 1).then(|| pg(page - 1)).flatten(), t_prev),
            "last": link(pg(pages), t_last),
        });
        ((page - 1) * size, size, links)
    };
    // Only the page is rendered: following 500 pages of a 10,000-row study stays linear.
    let results: Vec<Value> = items.iter().skip(start).take(size).map(render).collect();
    Ok(json!({ "results": results, "_links": links, "meta": { "count": count } }))
}

fn bonus_list(amounts: &[i64]) -> Value {
    Value::Array(amounts.iter().map(|m| money(m * 100)).collect())
}

fn group_json(st: &ProlificState, id: &str) -> Value {
    let g = &st.groups[id];
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "workspace_id": g.workspace,
        "organisation_id": null,
        "project_id": null,
        "is_deleted": g.deleted,
        "participant_count": g.members.len(),
        "feeder_studies": [],
    })
}

fn member_item((participant, when): &(String, String)) -> Value {
    json!({ "participant_id": participant, "datetime_created": when })
}

fn members_json(st: &ProlificState, id: &str) -> Vec<Value> {
    st.groups[id].members.iter().map(member_item).collect()
}

fn balance_json(st: &ProlificState, ws: &str) -> Value {
    let w = &st.workspaces[ws];
    let total = guesses::whole_minor(w.total_centi);
    let available = guesses::whole_minor(st.available_centi(ws));
    json!({
        "currency_code": w.currency,
        "total_balance": total,
        "balance_breakdown": { "rewards": total, "fees": 0, "vat": 0 },
        "available_balance": available,
        "available_balance_breakdown": { "rewards": available, "fees": 0, "vat": 0 },
    })
}

fn string_list(body: &Value, field: &'static str) -> Result<Option<Vec<String>>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                guesses::invalid_fields(vec![(field, "Expected a list of strings.".to_owned())])
            }),
        Some(_) => Err(guesses::invalid_fields(vec![(
            field,
            "Expected a list of strings.".to_owned(),
        )])),
    }
}

fn string_field(body: &Value, field: &'static str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(guesses::invalid_fields(vec![(
            field,
            "Not a valid string.".to_owned(),
        )])),
    }
}

fn required(v: Option<String>, field: &'static str) -> Result<String, ApiError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| guesses::invalid_fields(vec![(field, "This field is required.".to_owned())]))
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        guesses::invalid_fields(vec![(
            "non_field_errors",
            format!("JSON parse error - {e}"),
        )])
    })
}

/// The outcome of applying a request: status and JSON text, or an error envelope.
type Applied = Result<(StatusCode, String), ApiError>;

/// Applies one authenticated request (under the lock). `base` is the absolute URL of the path
/// (for paging links).
fn apply(
    w: &mut World,
    route: &Route,
    method: &Method,
    query: &Query,
    body: &[u8],
    base: &str,
) -> Applied {
    let ok = |v: Value| Ok((StatusCode::OK, v.to_string()));
    let World {
        state: st,
        config,
        rng,
    } = w;
    let page_size = config.page_size;
    match (route, method) {
        (Route::Me, _) => {
            let first = st.workspace_order.first().cloned();
            let (currency, balance, available) = match &first {
                Some(ws) => (
                    json!(st.workspaces[ws].currency),
                    guesses::whole_minor(st.workspaces[ws].total_centi),
                    guesses::whole_minor(st.available_centi(ws)),
                ),
                None => (Value::Null, 0, 0),
            };
            ok(json!({
                "id": st.user_id,
                "email": "researcher@emulator.invalid",
                "first_name": "Emulated",
                "last_name": "Researcher",
                "name": "Emulated Researcher",
                "username": "researcher@emulator.invalid",
                "user_type": "researcher",
                "currency_code": currency,
                "balance": balance,
                "available_balance": available,
            }))
        }
        (Route::Workspaces, _) => {
            let ids = &st.workspace_order;
            ok(paged(ids, query, base, page_size, |id| {
                workspace_json(st, id)
            })?)
        }
        (Route::Workspace(id), _) if st.workspaces.contains_key(id) => ok(workspace_json(st, id)),
        (Route::Balance(id), _) if st.workspaces.contains_key(id) => ok(balance_json(st, id)),
        (Route::Project(id), _) => {
            let p = st.projects.get(id).ok_or_else(guesses::not_found)?;
            ok(json!({
                "id": p.id,
                "title": p.title,
                "description": "",
                "workspace": p.workspace,
                "owner": st.user_id,
                "users": [],
            }))
        }
        (Route::Study(id), _) => {
            let s = st.studies.get(id).ok_or_else(guesses::not_found)?;
            let mut filters = Vec::new();
            if !s.allowlist.is_empty() {
                filters.push(json!({ "filter_id": guesses::ALLOWLIST_FILTER, "selected_values": s.allowlist }));
            }
            if !s.blocklist.is_empty() {
                filters.push(json!({ "filter_id": guesses::BLOCKLIST_FILTER, "selected_values": s.blocklist }));
            }
            let places = st.submissions.values().filter(|x| x.study == s.id).count();
            ok(json!({
                "id": s.id,
                "name": s.name,
                "internal_name": s.name,
                "status": s.status,
                "reward": s.reward,
                "currency_code": s.currency,
                "presentment_currency_code": s.currency,
                "project": s.project,
                "total_available_places": places,
                "filters": filters,
            }))
        }
        (Route::StudySubmissions(id), _) => {
            if !st.studies.contains_key(id) {
                return Err(guesses::not_found());
            }
            let ids = st.study_submissions(id);
            ok(paged(ids, query, base, page_size, |s| {
                submission_item(st, s, false)
            })?)
        }
        (Route::Submissions, _) => {
            let Some(study) = query.get("study") else {
                return Err(guesses::invalid_fields(vec![(
                    "study",
                    "This field is required.".to_owned(),
                )]));
            };
            let ids = st.study_submissions(study);
            ok(paged(ids, query, base, page_size, |s| {
                submission_item(st, s, true)
            })?)
        }
        (Route::Submission(id), _) => {
            let s = st.submissions.get(id).ok_or_else(guesses::not_found)?;
            ok(json!({
                "id": s.id,
                "started_at": s.started_at,
                "status": s.status,
                "study_id": s.study,
                "completed_at": s.completed_at,
                "entered_code": "C0MPLETE",
                "participant": s.participant,
                "parent_study_id": null,
                "bonus_payments": bonus_list(&s.bonus_payments),
                "return_requested": null,
            }))
        }
        (Route::SetUp, _) => {
            let body = json_body(body)?;
            let study = string_field(&body, "study_id")?;
            let csv = string_field(&body, "csv_bonuses")?;
            let (study, csv) = match (study, csv) {
                (Some(s), Some(c)) if !s.is_empty() && !c.trim().is_empty() => (s, c),
                (s, c) => {
                    let mut missing = Vec::new();
                    if s.is_none_or(|s| s.is_empty()) {
                        missing.push(("study_id", "This field is required.".to_owned()));
                    }
                    if c.is_none_or(|c| c.trim().is_empty()) {
                        missing.push(("csv_bonuses", "This field is required.".to_owned()));
                    }
                    return Err(guesses::invalid_fields(missing));
                }
            };
            let will_not_pay = config.unpayable_rate > 0.0 && rng.f64() < config.unpayable_rate;
            let id = st.set_up(&study, &csv, config, will_not_pay)?;
            let b = &st.bulks[&id];
            Ok((
                StatusCode::CREATED,
                json!({
                    "id": b.id,
                    "study": b.study,
                    "amount": money(b.amount_centi),
                    "fees": money(b.fees_centi),
                    "vat": money(b.vat_centi),
                    "total_amount": money(b.total_centi),
                })
                .to_string(),
            ))
        }
        (Route::Pay(id), _) => {
            let late = config.late_pay_rate > 0.0 && rng.f64() < config.late_pay_rate;
            let delay = if late {
                config.late_pay_delay
            } else {
                config.pay_delay
            };
            match st.pay(id, delay) {
                None => Err(guesses::not_found()),
                Some(PayOutcome::Refused(e)) => Err(e),
                Some(PayOutcome::Accepted) => Ok((
                    StatusCode::ACCEPTED,
                    Value::String(guesses::PAY_ACCEPTED.to_owned()).to_string(),
                )),
            }
        }
        (Route::Groups, &Method::GET) => {
            let Some(ws) = query.get("workspace_id") else {
                // L: what a list without workspace_id or project_id answers.
                return Err(guesses::invalid_fields(vec![(
                    "workspace_id",
                    "This field is required.".to_owned(),
                )]));
            };
            let ids: Vec<&String> = st
                .groups
                .values()
                .filter(|g| g.workspace == ws && !g.deleted)
                .map(|g| &g.id)
                .collect();
            ok(paged(&ids, query, base, page_size, |id| {
                group_json(st, id)
            })?)
        }
        (Route::Groups, _) => {
            let body = json_body(body)?;
            let name = required(string_field(&body, "name")?, "name")?;
            let ws = required(string_field(&body, "workspace_id")?, "workspace_id")?;
            let description = string_field(&body, "description")?;
            let members = string_list(&body, "participant_ids")?.unwrap_or_default();
            let id = st.create_group(&name, &ws, description, &members)?;
            Ok((StatusCode::CREATED, group_json(st, &id).to_string()))
        }
        (Route::Group(id), &Method::GET) => {
            // Soft-deleted groups still answer, with is_deleted true.
            if !st.groups.contains_key(id) {
                return Err(guesses::not_found());
            }
            ok(group_json(st, id))
        }
        (Route::Group(id), &Method::PATCH) => {
            let body = json_body(body)?;
            let name = string_field(&body, "name")?;
            let description = string_field(&body, "description")?;
            let members = string_list(&body, "participant_ids")?;
            st.patch_group(id, name, description, members)?;
            ok(group_json(st, id))
        }
        (Route::Group(id), _) => {
            st.delete_group(id)?;
            Ok((guesses::GROUP_DELETE_STATUS, String::new()))
        }
        (Route::Members(id), &Method::GET) => {
            st.group_members(id)?;
            let members = &st.groups[id].members;
            ok(paged(members, query, base, page_size, member_item)?)
        }
        (Route::Members(id), m) => {
            let body = json_body(body)?;
            let ids = string_list(&body, "participant_ids")?.ok_or_else(|| {
                guesses::invalid_fields(vec![(
                    "participant_ids",
                    "This field is required.".to_owned(),
                )])
            })?;
            if *m == Method::POST {
                st.add_members(id, &ids)?;
            } else {
                st.remove_members(id, &ids)?;
            }
            Ok((
                guesses::MEMBERS_CHANGE_STATUS,
                json!({ "results": members_json(st, id) }).to_string(),
            ))
        }
        (Route::Workspace(_) | Route::Balance(_), _) => Err(guesses::not_found()),
    }
}

fn workspace_json(st: &ProlificState, id: &str) -> Value {
    let w = &st.workspaces[id];
    json!({
        "id": w.id,
        "title": w.title,
        "description": "",
        "users": [{ "id": st.user_id, "name": "Emulated Researcher", "email": "researcher@emulator.invalid" }],
    })
}

/// One item of a study's submission list (`with_study`: the cross-study list's extra field).
fn submission_item(st: &ProlificState, id: &str, with_study: bool) -> Value {
    let s = &st.submissions[id];
    let reward = st.studies.get(&s.study).map_or(0, |x| x.reward);
    let mut v = json!({
        "id": s.id,
        guesses::LIST_SUBMISSION_PARTICIPANT_FIELD: s.participant,
        "status": s.status,
        "started_at": s.started_at,
        "completed_at": s.completed_at,
        "is_complete": s.completed_at.is_some(),
        "time_taken": 60,
        "reward": reward,
        "study_code": "C0MPLETE",
        "star_awarded": false,
        "bonus_payments": bonus_list(&s.bonus_payments),
    });
    if with_study {
        v["study_id"] = json!(s.study);
    }
    v
}

/// What becomes of one API request.
enum Verdict {
    Answer(Answer),
    Drop,
}

fn roll(rng: &mut fastrand::Rng, rate: f64) -> bool {
    rate > 0.0 && rng.f64() < rate
}

/// The workspace a money call would touch, to decide contention before applying.
fn money_workspace(st: &ProlificState, route: &Route, body: &[u8]) -> Option<String> {
    match route {
        Route::SetUp => {
            let v: Value = serde_json::from_slice(body).ok()?;
            let study = v.get("study_id")?.as_str()?;
            st.studies.get(study).map(|s| s.workspace.clone())
        }
        Route::Pay(id) => st.bulks.get(id).map(|b| b.workspace.clone()),
        _ => None,
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let e = guesses::invalid_fields(vec![(
                "non_field_errors",
                "Request body too large.".to_owned(),
            )]);
            return Ok(error_answer(&e));
        }
        Err(_) => return Err(DropConnection),
    };
    if let Some(what) = parts.uri.path().strip_prefix("/_emulator/") {
        return Ok(inspect(&shared, &parts, what));
    }
    let (verdict, delay) = {
        let mut w = shared.lock();
        decide(&mut w, &parts, &body)
    };
    shared.changed.notify_all();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match verdict {
        Verdict::Answer(a) => Ok(a),
        Verdict::Drop => Err(DropConnection),
    }
}

fn token_of(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("token").then_some(token.trim())
}

/// The pipeline, under the lock: route → method → auth → (drop before) → contention → apply
/// → (lost after | 5xx after). Faults draw from the one seeded RNG only when their rate is not
/// zero, so turning one on leaves the others' picks unchanged.
fn decide(w: &mut World, parts: &Parts, body: &[u8]) -> (Verdict, Duration) {
    let mut delay = w.config.latency;
    let jitter = w.config.latency_jitter.as_nanos() as u64;
    if jitter > 0 {
        delay += Duration::from_nanos(w.rng.u64(0..jitter));
    }
    let path = parts.uri.path();
    let Some(route) = Route::parse(path) else {
        w.state.count("unknown path");
        return (
            Verdict::Answer(error_answer_in(w, &guesses::not_found())),
            delay,
        );
    };
    w.state
        .count(&format!("{} {}", parts.method, route.template()));
    let Some(kind) = route.kind(&parts.method) else {
        let e = guesses::method_not_allowed(parts.method.as_str());
        return (Verdict::Answer(error_answer_in(w, &e)), delay);
    };
    let auth = match token_of(parts) {
        None => Err(guesses::not_authenticated()),
        Some(t) if !w.state.tokens.contains(t) => Err(guesses::invalid_token()),
        Some(_) => Ok(()),
    };
    if let Err(e) = auth {
        w.state.stats.unauthorized += 1;
        return (Verdict::Answer(error_answer_in(w, &e)), delay);
    }
    w.state.settle();
    let rates: FaultRates = match kind {
        Kind::Read => w.config.read_faults,
        Kind::SetUp => w.config.setup_faults,
        Kind::Pay => w.config.pay_faults,
        Kind::Group => w.config.group_faults,
    };
    if roll(&mut w.rng, rates.drop_before) {
        w.state.stats.dropped_before_apply += 1;
        return (Verdict::Drop, delay);
    }
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let base = format!("http://{host}{path}");
    let query = Query::parse(parts.uri.query());
    if let Some(window) = w.config.contention_window
        && matches!(kind, Kind::SetUp | Kind::Pay)
        && let Some(ws) = money_workspace(&w.state, &route, body)
    {
        let now = w.state.now_ms();
        if w.state
            .busy_until
            .get(&ws)
            .is_some_and(|until| *until > now)
        {
            w.state.stats.contention_429 += 1;
            // The other answer to an unknown (see guesses::CONTENTION_QUEUES_PAY): the pay
            // was queued all the same.
            if kind == Kind::Pay && w.config.contended_pay_applies {
                let _ = apply(w, &route, &parts.method, &query, body, &base);
                w.state.settle();
                w.state.stats.contended_pays_applied += 1;
            }
            return (
                Verdict::Answer(error_answer_in(w, &guesses::contention())),
                delay,
            );
        }
        let hold = (delay + window).as_millis() as u64;
        w.state.busy_until.insert(ws, now + hold);
    }
    let applied = apply(w, &route, &parts.method, &query, body, &base);
    // A pay with zero delay lands before anyone can look.
    w.state.settle();
    if roll(&mut w.rng, rates.lost_after) {
        w.state.stats.lost_after_apply += 1;
        return (Verdict::Drop, delay);
    }
    if roll(&mut w.rng, rates.error_after) {
        w.state.stats.errors_after_apply += 1;
        let gateway = match w.config.error_after_status {
            ErrorAfterStatus::Mixed => w.rng.bool(),
            ErrorAfterStatus::Internal => false,
            ErrorAfterStatus::BadGateway => true,
        };
        let a = if gateway {
            answer(
                StatusCode::BAD_GATEWAY,
                guesses::BAD_GATEWAY_CONTENT_TYPE,
                guesses::BAD_GATEWAY_BODY,
            )
        } else {
            error_answer_in(w, &guesses::internal_error())
        };
        return (Verdict::Answer(a), delay);
    }
    let a = match applied {
        Ok((status, text)) if text.is_empty() => answer(status, JSON, Bytes::new()),
        Ok((status, text)) => answer(status, JSON, text),
        Err(e) => error_answer_in(w, &e),
    };
    (Verdict::Answer(a), delay)
}

/// The emulator's own view, as JSON: `GET /_emulator/stats`, `GET /_emulator/state`,
/// `POST /_emulator/clock?advance_secs=N`.
fn inspect(shared: &Shared, parts: &Parts, what: &str) -> Answer {
    let bad =
        |status: StatusCode, msg: &str| answer(status, JSON, json!({ "error": msg }).to_string());
    match (&parts.method, what) {
        (&Method::GET, "stats") => {
            let mut w = shared.lock();
            w.state.settle();
            let mut v = json!(w.state.stats);
            v["pending_pays"] = json!(w.state.pending_pays());
            answer(StatusCode::OK, JSON, v.to_string())
        }
        (&Method::GET, "state") => {
            let mut w = shared.lock();
            w.state.settle();
            answer(StatusCode::OK, JSON, state_json(&w.state).to_string())
        }
        (&Method::POST, "clock") => {
            let Some(secs) = Query::parse(parts.uri.query()).number("advance_secs") else {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "expected ?advance_secs=<whole seconds>",
                );
            };
            let mut w = shared.lock();
            w.state.advance_clock(Duration::from_secs(secs as u64));
            w.state.settle();
            drop(w);
            shared.changed.notify_all();
            answer(
                StatusCode::OK,
                JSON,
                json!({ "advanced_secs": secs }).to_string(),
            )
        }
        (_, "stats" | "state" | "clock") => bad(StatusCode::METHOD_NOT_ALLOWED, "wrong method"),
        _ => bad(StatusCode::NOT_FOUND, "no such emulator endpoint"),
    }
}

fn state_json(st: &ProlificState) -> Value {
    json!({
        "workspaces": st.workspace_order.iter().map(|id| {
            let w = &st.workspaces[id];
            json!({
                "id": id,
                "currency_code": w.currency,
                "total_balance": money(w.total_centi),
                "available_balance": money(st.available_centi(id)),
            })
        }).collect::<Vec<_>>(),
        "submissions": st.submissions.values().map(|s| json!({
            "id": s.id,
            "study_id": s.study,
            "participant": s.participant,
            "bonus_payments": bonus_list(&s.bonus_payments),
        })).collect::<Vec<_>>(),
        "bulk_bonus_payments": st.bulks.values().map(|b| json!({
            "id": b.id,
            "study": b.study,
            "pays": b.pays,
            "will_not_pay": b.will_not_pay,
            "amount": money(b.amount_centi),
            "total_amount": money(b.total_centi),
            "rows": b.rows.iter().map(|(s, a)| json!({ "submission_id": s, "amount": a })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "participant_groups": st.groups.values().map(|g| json!({
            "id": g.id,
            "name": g.name,
            "workspace_id": g.workspace,
            "is_deleted": g.deleted,
            "participant_ids": g.members.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// A Prolific emulator serving on the current tokio runtime.
pub struct RunningProlific {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningProlific {
    /// Binds `addr` (port 0 picks a free one) and serves `state` with `config`.
    pub async fn start(
        state: ProlificState,
        config: ProlificConfig,
        addr: SocketAddr,
    ) -> io::Result<RunningProlific> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            world: Mutex::new(World {
                rng: fastrand::Rng::with_seed(config.seed),
                state,
                config,
            }),
            changed: Condvar::new(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            {
                let shared = Arc::clone(&shared);
                move |req| handle(Arc::clone(&shared), req)
            },
            stop_rx,
        ));
        Ok(RunningProlific {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// On 127.0.0.1, a free port: what payout's `--emulator` path uses.
    pub async fn start_loopback(
        state: ProlificState,
        config: ProlificConfig,
    ) -> io::Result<RunningProlific> {
        Self::start(state, config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// `http://HOST:PORT`: the host to give a client (it adds `/api/v1/`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> ProlificHandle {
        ProlificHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops accepting, lets in-flight requests finish (a few seconds at most).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A Prolific emulator on its own thread and runtime, on 127.0.0.1, for synchronous tests.
/// Dropping it stops the server.
pub type BackgroundProlific = crate::emulator::background::Background<ProlificHandle>;

impl crate::emulator::background::Served for RunningProlific {
    type Handle = ProlificHandle;
    fn url(&self) -> String {
        RunningProlific::url(self)
    }
    fn handle(&self) -> ProlificHandle {
        RunningProlific::handle(self)
    }
    async fn stop(self) {
        self.shutdown().await
    }
}

impl BackgroundProlific {
    pub fn start(state: ProlificState, config: ProlificConfig) -> io::Result<BackgroundProlific> {
        Self::spawn("prolific-emulator", move || {
            RunningProlific::start_loopback(state, config)
        })
    }
}

/// A cheap, thread-safe view into a running Prolific emulator. Every accessor first lands the
/// pays that are due, as any request would.
#[derive(Clone)]
pub struct ProlificHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for ProlificHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProlificHandle").finish_non_exhaustive()
    }
}

impl ProlificHandle {
    fn settled(&self) -> MutexGuard<'_, World> {
        let mut w = self.shared.lock();
        w.state.settle();
        w
    }

    pub fn stats(&self) -> ProlificStats {
        self.settled().state.stats.clone()
    }

    /// Bulk ids paid more than once.
    pub fn double_payments(&self) -> Vec<DoublePayment> {
        self.settled().state.stats.double_payments.clone()
    }

    /// The amounts (minor units) landed on a submission, baseline included.
    pub fn bonus_payments(&self, submission: &str) -> Option<Vec<i64>> {
        self.settled()
            .state
            .submissions
            .get(submission)
            .map(|s| s.bonus_payments.clone())
    }

    /// Every amount landed on each participant's submissions in `study`, baseline included.
    pub fn paid_by_participant(&self, study: &str) -> BTreeMap<String, Vec<i64>> {
        let w = self.settled();
        let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for s in w.state.submissions.values().filter(|s| s.study == study) {
            out.entry(s.participant.clone())
                .or_default()
                .extend_from_slice(&s.bonus_payments);
        }
        out
    }

    /// Only what pays landed on each participant's submissions in `study` (seeded baselines
    /// left out): compare it with what a test asked to find a participant paid twice.
    pub fn landed_by_participant(&self, study: &str) -> BTreeMap<String, Vec<i64>> {
        let w = self.settled();
        let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for s in w.state.submissions.values().filter(|s| s.study == study) {
            let landed = &s.bonus_payments[s.seeded..];
            if !landed.is_empty() {
                out.entry(s.participant.clone())
                    .or_default()
                    .extend_from_slice(landed);
            }
        }
        out
    }

    /// How many times each bulk id was paid (accepted pays; 0 for set-ups never paid).
    pub fn bulk_pays(&self) -> BTreeMap<String, u32> {
        self.settled()
            .state
            .bulks
            .values()
            .map(|b| (b.id.clone(), b.pays))
            .collect()
    }

    /// Accepted pays that have not landed yet.
    pub fn pending_pays(&self) -> usize {
        self.settled().state.pending_pays()
    }

    /// The workspace's total balance in hundredths of a minor unit (fees can be fractional).
    pub fn total_balance_centi(&self, workspace: &str) -> Option<i64> {
        self.settled()
            .state
            .workspaces
            .get(workspace)
            .map(|w| w.total_centi)
    }

    /// Sets a workspace's total balance (minor units), e.g. a top-up between runs.
    pub fn set_balance(&self, workspace: &str, minor: i64) {
        if let Some(w) = self.shared.lock().state.workspaces.get_mut(workspace) {
            w.total_centi = minor * 100;
        }
    }

    /// A live group's members; `None` when it does not exist or is deleted.
    pub fn group_members(&self, group: &str) -> Option<BTreeSet<String>> {
        let w = self.shared.lock();
        w.state
            .groups
            .get(group)
            .filter(|g| !g.deleted)
            .map(|g| g.member_ids())
    }

    /// The id of the live group of `workspace` named `name`.
    pub fn group_id(&self, workspace: &str, name: &str) -> Option<String> {
        let w = self.shared.lock();
        w.state
            .groups
            .values()
            .find(|g| !g.deleted && g.workspace == workspace && g.name == name)
            .map(|g| g.id.clone())
    }

    /// Whether the group exists and was soft-deleted.
    pub fn group_deleted(&self, group: &str) -> bool {
        self.shared
            .lock()
            .state
            .groups
            .get(group)
            .is_some_and(|g| g.deleted)
    }

    /// Makes a set-up id one that will not pay (its pay answers an error, nothing lands).
    pub fn make_unpayable(&self, bulk: &str) {
        if let Some(b) = self.shared.lock().state.bulks.get_mut(bulk) {
            b.will_not_pay = true;
        }
    }

    /// Changes faults, latency, delays, fees or page size live (the seed is read at start).
    pub fn update_config(&self, f: impl FnOnce(&mut ProlificConfig)) {
        f(&mut self.shared.lock().config);
    }

    /// Moves the emulator clock forward, landing the pays that became due.
    pub fn advance_clock(&self, by: Duration) {
        let mut w = self.shared.lock();
        w.state.advance_clock(by);
        w.state.settle();
        drop(w);
        self.shared.changed.notify_all();
    }

    /// Blocks until `pred(stats)` holds (true) or `timeout` passes (false). Woken after every
    /// API request and when the next accepted pay is due to land; never polls.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&ProlificStats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut w = self.settled();
        loop {
            if pred(&w.state.stats) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // A due pay lands without any request, so wake for it too.
            let wait = w
                .state
                .next_landing_in()
                .map_or(deadline - now, |due| due.min(deadline - now));
            w = match self.shared.changed.wait_timeout(w, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            w.state.settle();
        }
    }

    /// The emulator clock as ISO 8601 (what `datetime_created` and friends are stamped with).
    pub fn now_iso8601(&self) -> String {
        iso8601(self.shared.lock().state.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_trailing_slash_and_the_api_prefix() {
        assert_eq!(Route::parse("/api/v1/users/me/"), Some(Route::Me));
        assert_eq!(Route::parse("/api/v1/users/me"), None);
        assert_eq!(Route::parse("/users/me/"), None);
        assert_eq!(
            Route::parse("/api/v1/bulk-bonus-payments/abc/pay/"),
            Some(Route::Pay("abc".into()))
        );
        assert_eq!(
            Route::parse("/api/v1/submissions/bonus-payments/"),
            Some(Route::SetUp)
        );
    }

    #[test]
    fn paging_by_page_links_every_page_and_refuses_a_page_past_the_end() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let q = Query::parse(Some("study=s1&page_size=2"));
        let p1 = paged(&items, &q, "http://h/api/v1/submissions/", 20, Value::clone).unwrap();
        assert_eq!(p1["results"], json!([0, 1]));
        assert_eq!(p1["meta"]["count"], 5);
        assert_eq!(
            p1["_links"]["next"]["href"],
            "http://h/api/v1/submissions/?study=s1&page=2&page_size=2"
        );
        assert_eq!(p1["_links"]["previous"]["href"], Value::Null);
        let q3 = Query::parse(Some("study=s1&page_size=2&page=3"));
        let p3 = paged(&items, &q3, "http://h/x/", 20, Value::clone).unwrap();
        assert_eq!(p3["results"], json!([4]));
        assert_eq!(p3["_links"]["next"]["href"], Value::Null);
        let q4 = Query::parse(Some("page_size=2&page=4"));
        assert_eq!(
            paged(&items, &q4, "http://h/x/", 20, Value::clone)
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn paging_by_offset_follows_to_an_empty_next() {
        let items: Vec<Value> = (0..3).map(|i| json!(i)).collect();
        let q = Query::parse(Some("limit=2&offset=2"));
        let p = paged(&items, &q, "http://h/x/", 20, Value::clone).unwrap();
        assert_eq!(p["results"], json!([2]));
        assert_eq!(p["_links"]["next"]["href"], Value::Null);
        assert_eq!(
            p["_links"]["previous"]["href"],
            "http://h/x/?limit=2&offset=0"
        );
    }
}
