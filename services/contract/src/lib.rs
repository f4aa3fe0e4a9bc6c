//! The contract between loopscope's services, loadgen and the tests, as types: the work
//! kinds, handling modes, fan-out modes and latency distributions (each a [`Choice`]: one
//! list of names for the query parameters, the flags, the JSON bodies and the 400 messages),
//! the worker's [`WorkReport`] and every other reply body: [`BackendReport`], [`Compare`],
//! [`FanoutSummary`], [`ErrorBody`], [`Probe`], and the admin port's [`StallsView`]. Producers build these types; loadgen and the
//! tests read replies as them. A new work kind is a new variant here; every `match` on
//! [`Kind`] in the worker and the gateway then fails to compile until it is handled.
mod backend;
mod choice;
mod error;
mod gateway;
mod probe;
mod report;
mod stalls;

pub use backend::BackendReport;
pub use choice::{Choice, Distribution, FanoutMode, Handling, Kind};
pub use error::ErrorBody;
pub use gateway::{Compare, CompareSide, FanoutCall, FanoutSummary};
pub use probe::{FaultStatus, Probe, ProbeStatus};
pub use report::WorkReport;
pub use stalls::{RunningPoll, Stall, StallFrame, StallsView};

#[cfg(test)]
mod wire_tests;
