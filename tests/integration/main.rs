//! One integration-test binary; its modules, like a table of contents.
//!
//! Every test here drives the real `payout` binary or the real `aws-sdk-mturk` client against
//! the emulator on 127.0.0.1.

mod cli;
mod crash;
mod doctor;
mod emulator;
mod exactly_once;
mod failures;
mod input;
mod journal;
mod names;
mod production;
mod qualifications;
mod rehearsals;
mod run;
mod safety;
mod states;
mod support;
