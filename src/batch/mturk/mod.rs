//! The life of an MTurk batch, in the library: where it works and how it gets there
//! ([`Place`], [`Session`]); the file read and checked (caps, names); planned against the
//! journal, its overlaps refused or superseded, recorded; the production gate and
//! confirmation; executed; concluded — driven by resolved settings ([`RunSettings`],
//! [`PlaceChoice`], [`Connect`]). The CLI parses flags into them, implements [`Prompt`] and maps
//! the outcome to the exit status.

mod cancel;
mod confirm;
mod dry_run;
mod execute;
mod new_batch;
mod resume;
mod run;
mod session;

pub use super::{Prompt, need_terminal};
pub use cancel::cancel;
pub use dry_run::CHECKED_AT_MOST;
pub use resume::resume;
pub use run::{Ran, RunSettings, run};
pub use session::{
    Connect, ENDPOINT_ENV, Place, PlaceChoice, Session, credentials_failure, fix_for,
};
