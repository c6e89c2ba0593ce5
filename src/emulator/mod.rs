//! A local MTurk Requester API (awsJson 1.1 + SigV4) for tests, benchmarks and dry runs.
//!
//! The real `aws-sdk-mturk` client talks to it unchanged; it keeps a ledger of every bonus it
//! paid so tests can prove "exactly once", and it injects throttling, faults, latency and lost
//! responses from a seeded RNG.

mod cli;
mod config;
mod errors;
mod guesses;
mod ledger;
mod ops;
mod server;
mod sigv4;
mod state;

pub use cli::{ACCESS_KEY_ENV, EmulatorArgs, SECRET_KEY_ENV, serve_cli, serve_until};
pub use config::{
    AccountMode, AfterApplyStatus, EmulatorConfig, FaultScope, KnownAssignment, load_known_csv,
};
pub use server::{BackgroundEmulator, EmulatorHandle, RunningEmulator};
pub use state::{Payment, QualificationGrant, QualificationStatus, Stats};
