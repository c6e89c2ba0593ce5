//! payout: pay MTurk bonuses and assign qualifications in bulk from CSV files, exactly once.
//!
//! The pipeline reads top to bottom: input → plan → journal → engine → platform → output;
//! `cli` tells the story, `emulator` is the local MTurk the tests and demos pay into.

pub(crate) mod batch;
pub mod cli;
pub mod emulator;
pub mod engine;
pub(crate) mod error;
pub mod ids;
pub mod input;
pub(crate) mod item;
pub mod journal;
pub mod money;
pub mod op;
pub(crate) mod output;
pub mod pace;
pub mod plan;
pub mod platform;
pub(crate) mod signals;
pub mod target;
