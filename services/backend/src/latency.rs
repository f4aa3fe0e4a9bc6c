//! Latency distributions around a median.
use std::time::Duration;

use contract::Distribution;
use rand::Rng;
use rand_distr::{Distribution as _, LogNormal};

/// Draws latencies from a [`Distribution`] (its names and meanings live in the contract).
pub(crate) trait Sample {
    /// A latency drawn around `median_ms`, capped at `max_ms`.
    fn sample(self, median_ms: f64, spread: f64, max_ms: u64, rng: &mut impl Rng) -> Duration;
}

impl Sample for Distribution {
    fn sample(self, median_ms: f64, spread: f64, max_ms: u64, rng: &mut impl Rng) -> Duration {
        let ms = match self {
            Self::Fixed => median_ms,
            Self::Uniform if spread > 0.0 => {
                let lo = (median_ms * (1.0 - spread)).max(0.0);
                rng.random_range(lo..=median_ms * (1.0 + spread))
            }
            Self::Uniform => median_ms,
            // ln(median) is the log-normal's mu.
            Self::Lognormal => LogNormal::new(median_ms.max(0.001).ln(), spread)
                .map(|d| d.sample(rng))
                .unwrap_or(median_ms),
        };
        Duration::from_secs_f64(ms.clamp(0.0, max_ms as f64) / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_median_is_close_to_the_requested_one() {
        let mut rng = rand::rng();
        let mut v: Vec<f64> = (0..4001)
            .map(|_| {
                Distribution::Lognormal
                    .sample(100.0, 0.5, 60_000, &mut rng)
                    .as_secs_f64()
                    * 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        let median = v[2000];
        assert!((85.0..115.0).contains(&median), "median {median}");
    }

    #[test]
    fn uniform_stays_within_its_bounds_and_the_cap_holds() {
        let mut rng = rand::rng();
        for _ in 0..1000 {
            let ms = Distribution::Uniform
                .sample(100.0, 0.5, 60_000, &mut rng)
                .as_secs_f64()
                * 1e3;
            assert!((50.0..=150.0).contains(&ms));
        }
        assert_eq!(
            Distribution::Fixed.sample(500.0, 0.0, 20, &mut rng),
            Duration::from_millis(20)
        );
    }
}
