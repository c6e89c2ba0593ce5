//! One integration-test binary; its modules, like a table of contents.
//!
//! Every test here drives the real `payout` binary or the real `aws-sdk-mturk` client against
//! the emulator on 127.0.0.1.

mod cli;
mod crash;
mod doctor;
mod edges;
mod emulator;
mod exactly_once;
mod failures;
mod imports;
mod input;
mod journal;
mod names;
mod pipes_signals;
mod production;
mod prolific_cli;
mod prolific_emulator;
mod prolific_engine;
mod prolific_groups;
mod prolific_setup;
mod qualifications;
mod rehearsals;
mod run;
mod safety;
mod secrets;
mod states;
mod support;
