//! The Prometheus text format (0.0.4), appended to one `String`: what `prometheus`'
//! `TextEncoder` writes, byte for byte for the values we export, without its per-sample
//! allocations (`f64::to_string` for every value and every `le`).
use std::fmt::Write;

/// `# HELP` and `# TYPE` lines of a family.
pub(super) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    if !help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape(out, help, false);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// `name="value"` pairs joined by commas, values escaped: the inside of a label set.
pub(super) fn label_pairs<'a>(
    out: &mut String,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape(out, value, true);
        out.push('"');
    }
}

/// One sample line: `name{labels,extra} value`. `labels` is the inside of the label set
/// ([`label_pairs`]); `extra` (the `le` of a bucket) is already formatted as `le="0.5"`.
pub(super) fn sample(out: &mut String, name: &str, suffix: &str, labels: &str, extra: &str) {
    out.push_str(name);
    out.push_str(suffix);
    match (labels.is_empty(), extra.is_empty()) {
        (true, true) => {}
        (false, true) => {
            out.push('{');
            out.push_str(labels);
            out.push('}');
        }
        (true, false) => {
            out.push('{');
            out.push_str(extra);
            out.push('}');
        }
        (false, false) => {
            out.push('{');
            out.push_str(labels);
            out.push(',');
            out.push_str(extra);
            out.push('}');
        }
    }
    out.push(' ');
}

/// An integer value and the end of its line.
pub(super) fn u64_value(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
    out.push('\n');
}

/// A float value as `f64`'s `Display` writes it (what `TextEncoder` writes), the end of its
/// line. The format's own spellings for the values `Display` spells differently.
pub(super) fn f64_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Writing into a String cannot fail.
        let _ = write!(out, "{v}");
    }
    out.push('\n');
}

/// The format's escapes: `\` and newline always, `"` inside label values.
fn escape(out: &mut String, v: &str, quote: bool) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_numbers_as_the_format_wants() {
        let mut out = String::new();
        header(&mut out, "a_total", "back\\slash\nnew \"q\"", "counter");
        label_pairs(&mut out, [("k", "v\"\\\n"), ("j", "")]);
        out.push('|');
        sample(&mut out, "a", "_bucket", "k=\"v\"", "le=\"0.5\"");
        u64_value(&mut out, 12_345);
        sample(&mut out, "a", "", "", "");
        f64_value(&mut out, 0.000_592_904);
        f64_value(&mut out, 3.0);
        f64_value(&mut out, f64::INFINITY);
        assert_eq!(
            out,
            "# HELP a_total back\\\\slash\\nnew \"q\"\n# TYPE a_total counter\n\
             k=\"v\\\"\\\\\\n\",j=\"\"|a_bucket{k=\"v\",le=\"0.5\"} 12345\na 0.000592904\n3\n+Inf\n"
        );
    }
}
