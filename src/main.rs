//! The `payout` binary: everything lives in the library; this only maps its outcome to an exit code.

fn main() {}
