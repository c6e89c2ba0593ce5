//! payout: pay MTurk bonuses and assign qualifications in bulk from CSV files, exactly once.
//!
//! The pipeline reads top to bottom: input → plan → journal → runner → platform → report.

pub mod ids;
pub mod money;
pub mod input;
pub mod journal;
pub mod plan;
pub mod platform;
pub mod runner;
