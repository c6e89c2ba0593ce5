//! A local MTurk Requester API (awsJson 1.1 + SigV4) for tests, benchmarks and dry runs.
//!
//! The real `aws-sdk-mturk` client talks to it unchanged; it keeps a ledger of every bonus it
//! paid so tests can prove "exactly once", and it injects throttling, latency, faults before and
//! after a call is applied, and dropped or lost responses from a seeded RNG. It can also play an
//! account that cannot use MTurk and a server whose clock is skewed. It sends only what MTurk
//! sends; where that is unknown, the guess is named in `guesses.rs`.
//!
//! `prolific` is the same for Prolific's researcher API (`payout emulator --platform prolific`).

mod background;
mod cli;
mod config;
mod errors;
mod guesses;
mod ledger;
mod ops;
pub mod prolific;
mod server;
mod sigv4;
mod state;

pub use cli::{
    ACCESS_KEY_ENV, EmulatorArgs, EmulatorPlatform, SECRET_KEY_ENV, serve_cli, serve_until,
};
pub use config::{
    AccountMode, AfterApplyStatus, EmulatorConfig, FaultScope, KnownAssignment, load_known_csv,
};
pub use server::{BackgroundEmulator, EmulatorHandle, RunningEmulator};
pub use state::{Payment, QualificationGrant, QualificationStatus, Stats};
