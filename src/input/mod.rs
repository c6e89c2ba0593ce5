//! Reading and validating input CSV files — bonuses, API-style qualification files and the
//! requester website's worker CSV — streamed once, with every problem reported by line and
//! column before anything is sent.
//!
//! The pipeline inside: `sniff` (encoding, Excel's `sep=` line) → `records` (CSV with true
//! lines and quote checks) → `columns` (header → format) → `bonus` / `qual_api` / `website`
//! (rows → operations) → `dedupe` (repeats and conflicts) → `scan` (the API).

mod bonus;
mod columns;
mod dedupe;
mod groups;
mod problems;
mod prolific;
mod qual_api;
mod records;
mod row;
mod scan;
mod sniff;
mod spool;
mod website;

pub use columns::{
    COLUMNS_SCHEMA, ColumnSchema, ColumnSpec, QUALIFICATION_COLUMNS_SCHEMA, WebsiteSpec,
    qualification_schema, schema,
};
pub use groups::{
    GroupOptions, GroupRow, first_line_is_group_file, looks_like_group_file, parse_groups,
};
pub use problems::{InputErrors, InputProblem, MAX_STORED_PROBLEMS};
pub use prolific::{
    Payee, ProlificFormat, ProlificOptions, ProlificRow, first_line_is_prolific,
    header_says_prolific, looks_like_prolific, parse_prolific,
};
pub use row::MAX_REASON_CHARS;
pub use scan::{
    FileFacts, Format, InputOptions, Row, parse_bytes, rescan, rescan_input, scan, scan_bytes,
    scan_input,
};
pub use spool::{Input, ROWS_PER_STOP_CHECK, request_stop, stop_requested};
