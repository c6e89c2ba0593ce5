//! payout: pay MTurk bonuses and assign qualifications in bulk from CSV files, exactly once.
//!
//! The pipeline reads top to bottom: input → plan → journal → runner → platform → report.

pub mod emulator;
pub mod ids;
pub mod money;
