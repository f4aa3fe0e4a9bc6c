//! Verdicts: a measured value against a prediction, within a tolerance stated in words.
use crate::model::Check;

pub(crate) fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// `measured` within [lo, hi] × `predicted`.
pub(crate) fn near(label: &str, predicted: f64, measured: f64, lo: f64, hi: f64) -> Check {
    Check {
        label: label.to_owned(),
        predicted: format!("≈ {}", ms(predicted)),
        measured: ms(measured),
        tolerance: format!("{lo}× to {hi}× the prediction"),
        pass: measured >= predicted * lo && measured <= predicted * hi,
    }
}

/// `measured` at most `limit`.
pub(crate) fn at_most(label: &str, predicted: &str, measured: f64, limit: f64) -> Check {
    Check {
        label: label.to_owned(),
        predicted: predicted.to_owned(),
        measured: ms(measured),
        tolerance: format!("≤ {}", ms(limit)),
        pass: measured <= limit,
    }
}

/// `measured` at least `limit`.
pub(crate) fn at_least(label: &str, predicted: &str, measured: f64, limit: f64) -> Check {
    Check {
        label: label.to_owned(),
        predicted: predicted.to_owned(),
        measured: ms(measured),
        tolerance: format!("≥ {}", ms(limit)),
        pass: measured >= limit,
    }
}

/// `a / b` above `min`: how robust comparisons are made on a noisy machine.
pub(crate) fn ratio(label: &str, predicted: &str, a: f64, b: f64, min: f64) -> Check {
    let r = if b > 0.0 { a / b } else { f64::INFINITY };
    Check {
        label: label.to_owned(),
        predicted: predicted.to_owned(),
        measured: format!("{r:.1}×"),
        tolerance: format!("> {min}×"),
        pass: r > min,
    }
}

/// A count that must equal `expected`.
pub(crate) fn count(
    label: &str,
    predicted: &str,
    measured: usize,
    ok: bool,
    tolerance: &str,
) -> Check {
    Check {
        label: label.to_owned(),
        predicted: predicted.to_owned(),
        measured: measured.to_string(),
        tolerance: tolerance.to_owned(),
        pass: ok,
    }
}
