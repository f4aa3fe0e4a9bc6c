//! The contract between loopscope's services, loadgen and the tests, as types: the work
//! kinds, handling modes, fan-out modes and latency distributions (each a [`Choice`]: one
//! list of names for the query parameters, the flags, the JSON bodies and the 400 messages)
//! and the worker's [`WorkReport`]. A new work kind is a new variant here; every `match` on
//! [`Kind`] in the worker and the gateway then fails to compile until it is handled.
mod choice;
mod report;

pub use choice::{Choice, Distribution, FanoutMode, Handling, Kind};
pub use report::WorkReport;
