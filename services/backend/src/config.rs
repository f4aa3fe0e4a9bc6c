use clap::Parser;
use common::ServerArgs;

use contract::Distribution;

/// The downstream dependency: configurable latency distribution and error rate.
#[derive(Parser, Debug)]
#[command(name = "backend", version, about, long_about = None)]
pub struct Cli {
    /// Median latency of a query.
    #[arg(long, env = "LOOPSCOPE_LATENCY_MS", default_value_t = 50)]
    pub latency_ms: u64,

    /// Shape of the latency around the median.
    #[arg(long, env = "LOOPSCOPE_LATENCY_DIST", value_enum, default_value_t = Distribution::Fixed)]
    pub latency_dist: Distribution,

    /// Spread: `uniform` draws from median x (1 ± spread); `lognormal` uses it as sigma.
    #[arg(long, env = "LOOPSCOPE_LATENCY_SPREAD", default_value_t = 0.5, value_parser = parse_spread)]
    pub latency_spread: f64,

    /// Share of queries that fail with a 503 (0 to 1).
    #[arg(long, env = "LOOPSCOPE_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,

    #[command(flatten)]
    pub server: ServerArgs,
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{value}` is not a number between 0 and 1")),
    }
}

fn parse_spread(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if (0.0..=4.0).contains(&v) => Ok(v),
        _ => Err(format!("`{value}` is not a number between 0 and 4")),
    }
}
