//! loadgen turns the stack into evidence: `run` measures, `experiment` reproduces the seeds'
//! results with a verdict, `serve` keeps traffic flowing in a cluster.
pub mod cli;
pub mod experiments;
pub mod load;
pub mod model;
pub mod report;
pub mod serve;
