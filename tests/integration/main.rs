//! The one integration-test binary: each module drives a part of payout end to end.

mod emulator;
