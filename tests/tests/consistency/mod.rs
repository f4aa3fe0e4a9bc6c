//! One truth for names, flags and ports: the README is what users read, so the code, the
//! `services/ports`, the Prometheus config, the dashboards and the rules must agree with it. Each test
//! names the file to fix and the missing or extra entry.
//!
//! - metric names (`metrics`, `exposition`): `metrics/names.rs` (and every metric name spelled
//!   in the services' code), every `loopscope_*` family on a running stack's `/metrics` with
//!   its label keys, and every metric a dashboard or a rule queries, against the README's
//!   metric catalogue. The static check cannot know an instrument's unit, so it accepts any
//!   of the exporter's suffixes; the live one reads the real names;
//! - flags (`flags`): every flag in each binary's `--help` (with its env variable and default) against
//!   the README's settings tables, and every row of those tables against `--help`;
//! - default ports (`ports`): what each binary binds when no port is given, against the README's table
//!   of services, `services/ports`, `deploy/prometheus/prometheus.yml` and the default URLs that
//!   point services at each other.
//!
//! The parsers are small on purpose; each has a negative control in its module's `tests`, so
//! a parser that silently finds nothing fails instead of passing.

mod exposition;
mod flags;
mod metrics;
mod ports;
mod readme;
mod repo;
