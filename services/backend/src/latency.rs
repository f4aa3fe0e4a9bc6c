//! Latency distributions around a median.
use std::time::Duration;

use clap::ValueEnum;
use rand::Rng;
use rand_distr::{Distribution as _, LogNormal};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Always the median.
    Fixed,
    /// Uniform in median x [1 - spread, 1 + spread].
    Uniform,
    /// Log-normal with the given median and sigma = spread: the long tail real services have.
    Lognormal,
}

impl Distribution {
    pub(crate) const NAMES: &'static [&'static str] = &["fixed", "uniform", "lognormal"];

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::from_str(name, false).ok()
    }

    pub(crate) fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// A latency drawn around `median_ms`, capped at `max_ms`.
    pub(crate) fn sample(
        self,
        median_ms: f64,
        spread: f64,
        max_ms: u64,
        rng: &mut impl Rng,
    ) -> Duration {
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
