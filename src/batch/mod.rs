//! A batch's life, in the library: the steps from a file to a finished batch, driven by
//! resolved settings, asking the CLI only to show lines and a confirmation. Prolific's bonus
//! batches live here; MTurk's still live in `cli/` (moving them is the next step).

pub mod groups;
pub mod prolific;
