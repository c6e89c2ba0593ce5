//! The life of an MTurk batch, in the library. So far: where it works and how it gets there
//! ([`Place`], [`Session`]), driven by resolved settings. Planning, recording, the gate and
//! execution still live in `cli/` (the next step of the move).

mod session;

pub use session::{Connect, Place, PlaceChoice, Session, credentials_failure, fix_for};
