//! A local Prolific researcher API for payout's tests, benchmarks and demos: the endpoints
//! payout's Prolific client calls, answering in Prolific's shapes, with seeded faults and an
//! inspection view that proves "no participant paid twice, no bulk id paid twice".
//!
//! Every behaviour Prolific does not document is a named guess in `guesses.rs`; nothing else
//! here invents a field, header, status or code.
//!
//! # Conventions
//!
//! - Base path `/api/v1/`; every path ends in `/` (without it: 404).
//! - `Authorization: Token <token>` on every API request. Missing or not `Token` → 401 with
//!   detail `"Authentication credentials were not provided."`; unknown token → 401 with
//!   `"Invalid token."`. The route and method are checked first (unknown path → 404, wrong
//!   method → 405), as a router in front of the views would.
//! - Bodies are JSON (`Content-Type: application/json` on every answer but the 502 fault page
//!   and the empty 204).
//! - Money answered is in **minor units** (pence/cents) as JSON numbers: whole values as
//!   integers (`850`), fractional ones with two decimals (`283.34`). Money sent in
//!   `csv_bonuses` is in **major units**, at most 2 decimals.
//! - Errors: `{"error": {"status": 400, "error_code": 400000, "title": "...", "detail": ...,
//!   "additional_information": "/api/v1/errors/"}}`, `detail` a string or an object keyed by
//!   field whose values are lists of strings (`{"csv_bonuses": ["..."]}`). With
//!   `simple_errors` (`--simple-errors`) every error comes in the other shape Prolific uses,
//!   `{"message": title, "detail": text}`.
//! - Lists: `{"results": [...], "_links": {"self"|"next"|"previous"|"last": {"href": URL or
//!   null, "title": "..."}}, "meta": {"count": N}}`. Paged by `page` (from 1) and
//!   `page_size`, or by `limit` and `offset` when either is given; the default size is
//!   `ProlificConfig::page_size` (20). `href`s are absolute and keep the other query
//!   parameters. A `page` past the last → 404 `"Invalid page."`; an `offset` past the end →
//!   an empty page.
//!
//! # Endpoints
//!
//! | Request | Answer |
//! |---|---|
//! | `GET /api/v1/users/me/` | 200 `{id, email, first_name, last_name, name, username, user_type: "researcher", currency_code, balance, available_balance}` (balances of the first workspace, minor units) |
//! | `GET /api/v1/workspaces/` | 200 list of `{id, title, description, users: [{id, name, email}]}` |
//! | `GET /api/v1/workspaces/{id}/` | 200 the same object; 404 |
//! | `GET /api/v1/workspaces/{id}/balance/` | 200 `{currency_code, total_balance, balance_breakdown: {rewards, fees, vat}, available_balance, available_balance_breakdown: {rewards, fees, vat}}` (integers, minor units); 404 |
//! | `GET /api/v1/projects/{id}/` | 200 `{id, title, description, workspace, owner, users}`; 404 |
//! | `GET /api/v1/studies/{id}/` | 200 `{id, name, internal_name, status, reward, currency_code, presentment_currency_code, project, total_available_places, filters}`; `filters` holds `{"filter_id": "participant_group_allowlist" \| "participant_group_blocklist", "selected_values": [group ids]}` when the study uses groups; 404 |
//! | `GET /api/v1/studies/{id}/submissions/` | 200 list of `{id, participant_id, status, started_at, completed_at, is_complete, time_taken, reward, study_code, star_awarded, bonus_payments}` in start order; 404 |
//! | `GET /api/v1/submissions/?study={id}` | 200 list of the same plus `study_id`; no `study` → 400 keyed by `study`; an unknown study → an empty list |
//! | `GET /api/v1/submissions/{id}/` | 200 `{id, started_at, status, study_id, completed_at, entered_code, participant, parent_study_id, bonus_payments, return_requested}`; 404 |
//! | `POST /api/v1/submissions/bonus-payments/` `{"study_id", "csv_bonuses": "<id>,<amount>\n..."}` | 201 `{id, study, amount, fees, vat, total_amount}` (minor units; pays nothing). Each id a submission id of the study or a participant id with a submission in it (their latest). Unknown ids → 400 `{"csv_bonuses": ["The following IDs did not take part in the study: a, b"]}`; a bad line (more than 2 decimals, zero, a sign, no comma) → 400 naming the line; unknown study → 400 keyed by `study_id`; a missing field → 400 keyed by it |
//! | `POST /api/v1/bulk-bonus-payments/{id}/pay/` (no body) | 202 `"Successfully received bonus payments request. ..."` (a JSON string). Every row's amount lands on its submission's `bonus_payments`, and the workspace's balance drops by `total_amount`, after `pay_delay` (0: before any later request is answered). **Each further pay of the same id pays again** (recorded in `double_payments`). Unknown id → 404; available balance (minus accepted pays not landed) below `total_amount` → 400 "Insufficient balance."; a set-up id that will not pay → 400 "Bonus payment failed."; in both cases nothing lands |
//! | `GET /api/v1/participant-groups/?workspace_id={id}` | 200 list of groups (not deleted); no `workspace_id` → 400 |
//! | `POST /api/v1/participant-groups/` `{name, workspace_id, description?, participant_ids?}` | 201 group `{id, name, description, workspace_id, organisation_id: null, project_id: null, is_deleted, participant_count, feeder_studies: []}`; missing name/workspace → 400; unknown workspace → 400 |
//! | `GET /api/v1/participant-groups/{id}/` | 200 group (a deleted one too, `is_deleted: true`); 404 |
//! | `PATCH /api/v1/participant-groups/{id}/` `{name?, description?, participant_ids?}` | 200 group; `participant_ids` **replaces** the membership (recorded in `patch_overwrites`); deleted → 404 |
//! | `DELETE /api/v1/participant-groups/{id}/` | 204, empty; soft (the group stays, `is_deleted: true`); again → 404 |
//! | `GET /api/v1/participant-groups/{id}/participants/` | 200 list of `{participant_id, datetime_created}` in the order added; deleted → 404 |
//! | `POST /api/v1/participant-groups/{id}/participants/` `{"participant_ids": [...]}` | 200 `{"results": [all members]}`; existing members ignored |
//! | `DELETE /api/v1/participant-groups/{id}/participants/` `{"participant_ids": [...]}` | 200 `{"results": [all members]}`; non-members ignored |
//!
//! # Faults (seeded; `ProlificConfig`)
//!
//! Per class of call — set-up, pay, group changes, reads — three rates: **dropped before
//! apply** (connection closed, nothing applied), **lost after apply** (applied, connection
//! closed; a pay stays queued and lands), **5xx after apply** (applied, then 500 JSON or a
//! 502 HTML page). Plus: **429 contention** (`contention_window`: a money call holds its
//! workspace for its latency plus the window; a money call arriving meanwhile → 429, not
//! applied; with `contended_pay_applies` a contended pay is queued all the same and still
//! answered 429), **late pays** (`late_pay_rate`, landing after `late_pay_delay`), **set-up ids
//! that will not pay** (`unpayable_rate`, or `ProlificHandle::make_unpayable`), latency and
//! jitter.
//!
//! # Inspection
//!
//! `GET /_emulator/stats` (calls per endpoint, faults, 429s, set-ups, pays accepted / refused
//! / landed, `double_payments`, `patch_overwrites`, `pending_pays`), `GET /_emulator/state`
//! (balances, every submission's `bonus_payments`, every bulk with its pay count, every group
//! with its members), `POST /_emulator/clock?advance_secs=N`; in process, `ProlificHandle`
//! (`stats`, `double_payments`, `bonus_payments`, `paid_by_participant`, `bulk_pays`,
//! `pending_pays`, `group_members`, `advance_clock`, `update_config`, `make_unpayable`, ...).
//!
//! # In process
//!
//! Build a world with `ProlificSeed` (`workspace`, `study` / `study_with_id`, `participant`,
//! `submission` / `submission_with_id` (the ids a bonus file names),
//! `generate(study, n)`, `paid_before`, `group`, `study_uses_group`, `token`), then
//! `RunningProlific::start_loopback(seed.build(), config).await` on the current runtime (what
//! payout's `--emulator` path calls: an ephemeral 127.0.0.1 port, `url()` is the host to give
//! the client, `DEFAULT_TOKEN` its token), or `BackgroundProlific::start` on a thread of its
//! own for synchronous tests. `demo_state` is the world `payout emulator --platform prolific`
//! serves.

mod cli;
pub mod guesses;
mod server;
mod state;

pub use cli::{CommonFlags, Demo, ProlificFlags, announcement, config, demo_state, serve};
pub use server::{BackgroundProlific, ProlificHandle, RunningProlific};
pub use state::{
    DEFAULT_TOKEN, DoublePayment, ErrorAfterStatus, FaultRates, PatchOverwrite, ProlificConfig,
    ProlificSeed, ProlificState, ProlificStats,
};
