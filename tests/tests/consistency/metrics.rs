//! Metric names in the code, the dashboards and the rules against the README's catalogue.

use std::collections::{BTreeMap, BTreeSet};

use crate::consistency::readme::catalogue;
use crate::consistency::repo::{files, read, rel};

/// Every whole-word occurrence of `loopscope_…` in `text`: not part of a longer identifier,
/// and not a piece of a recording rule's name (`level:metric:operations`).
pub(crate) fn metric_tokens(text: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("loopscope_") {
        if text[..i].chars().next_back().is_some_and(word) {
            continue;
        }
        let token: String = text[i..]
            .chars()
            .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
            .collect();
        if text[i + token.len()..].starts_with(':') {
            continue;
        }
        out.insert(token);
    }
    out
}

/// Suffixes the Prometheus exporter may add to an OpenTelemetry instrument's name: its unit,
/// then `_total` for a counter.
pub(crate) const EXPORT_SUFFIXES: &[&str] = &[
    "",
    "_total",
    "_seconds",
    "_seconds_total",
    "_bytes",
    "_bytes_total",
    "_ratio",
];

/// Families actix-web-prom records under `names::NAMESPACE`: named by that crate, not by us.
pub(crate) const HTTP_FAMILIES: &[&str] =
    &["http_requests_total", "http_requests_duration_seconds"];

/// The string literals of Rust source, each with its line: enough of a lexer to skip
/// comments and char literals (`'"'`) and to honour escapes; raw strings are read as plain.
pub(crate) fn string_literals(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line_start) = (0, 0);
    while i < chars.len() {
        match chars[i] {
            '\n' => line_start = i + 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
            '\'' if chars.get(i + 1) == Some(&'\\') && chars.get(i + 3) == Some(&'\'') => i += 3,
            '"' => {
                let mut literal = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    literal.extend(chars.get(i));
                    i += 1;
                }
                let line_end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                out.push((literal, chars[line_start..line_end].iter().collect()));
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every metric name the services' code defines or reads: OpenTelemetry instrument names
/// given to a `const` (`loopscope.work.duration`), and exported names spelled anywhere
/// (`loopscope_build_info`); with the file each is in.
pub(crate) fn names_in_code() -> BTreeMap<String, String> {
    let name_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    };
    let mut out = BTreeMap::new();
    for path in files("services", "rs") {
        let text = std::fs::read_to_string(&path).expect("source");
        for (literal, line) in string_literals(&text) {
            let otel = literal.starts_with("loopscope.") && line.contains("const ");
            let exported = literal.starts_with("loopscope_") && !literal.contains('.');
            if (otel || exported) && name_chars(&literal) && !literal.ends_with('_') {
                out.insert(literal, rel(&path));
            }
        }
    }
    out
}

/// The catalogue names a name of the code stands for: itself for an exported name, the
/// exporter's spellings for an OpenTelemetry name.
pub(crate) fn exported_as(
    name: &str,
    catalogue: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    if name.contains('.') {
        let base = name.replace('.', "_");
        EXPORT_SUFFIXES
            .iter()
            .map(|s| format!("{base}{s}"))
            .filter(|n| catalogue.contains_key(n))
            .collect()
    } else {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        [name, family]
            .into_iter()
            .filter(|n| catalogue.contains_key(*n))
            .map(str::to_owned)
            .collect()
    }
}

#[test]
pub(crate) fn metric_names_in_the_code_are_in_the_readme_catalogue() {
    let _machine = loopscope_tests::machine::shared();
    let catalogue = catalogue(&read("README.md"));
    let code = names_in_code();
    let names_rs = read("services/common/src/metrics/names.rs");
    assert!(
        code.keys().any(|n| names_rs.contains(&format!("\"{n}\""))),
        "no metric name found in services/common/src/metrics/names.rs: the scan is broken"
    );

    let undocumented: Vec<String> = code
        .iter()
        .filter(|(name, _)| exported_as(name, &catalogue).is_empty())
        .map(|(name, file)| format!("{name} ({file})"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "metric names in the code with no row in README.md's metric catalogue (an \
         OpenTelemetry name is exported with dots as underscores, plus its unit and `_total`):\n  {}",
        undocumented.join("\n  ")
    );

    let namespace = names_rs
        .lines()
        .find(|l| l.contains("NAMESPACE"))
        .and_then(|l| l.split('"').nth(1))
        .expect("names::NAMESPACE");
    let from_code: BTreeSet<String> = code
        .keys()
        .flat_map(|n| exported_as(n, &catalogue))
        .chain(HTTP_FAMILIES.iter().map(|f| format!("{namespace}_{f}")))
        .collect();
    let stale: Vec<&String> = catalogue
        .keys()
        .filter(|n| !from_code.contains(*n))
        .collect();
    assert!(
        stale.is_empty(),
        "README.md's metric catalogue lists metrics that no code defines (or that the code \
         builds at run time: spell each name as a constant in metrics/names.rs): {stale:?}"
    );
}

#[test]
pub(crate) fn dashboards_and_rules_query_only_catalogued_metrics() {
    let _machine = loopscope_tests::machine::shared();
    let catalogue = catalogue(&read("README.md"));
    let mut sources = files("grafana/dashboards", "json");
    sources.extend(files("deploy/prometheus/rules", "yml"));
    sources.extend(files("deploy/prometheus/tests", "yml"));
    assert!(sources.len() >= 2, "no dashboards or rules found");
    let mut unknown = Vec::new();
    let mut seen = 0;
    for path in &sources {
        let text = std::fs::read_to_string(path).expect("source");
        for token in metric_tokens(&text) {
            seen += 1;
            if exported_as(&token, &catalogue).is_empty() {
                unknown.push(format!("{token} ({})", rel(path)));
            }
        }
    }
    assert!(seen > 10, "only {seen} metric names found in {sources:?}");
    assert!(
        unknown.is_empty(),
        "dashboards or rules use metrics that README.md's catalogue does not list (a typo, or \
         an undocumented metric):\n  {}",
        unknown.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consistency::readme::tests::README;

    #[test]
    fn exported_names_follow_the_exporter() {
        let _machine = loopscope_tests::machine::shared();
        let c = catalogue(README);
        assert_eq!(exported_as("loopscope.a", &c), ["loopscope_a_total"]);
        assert_eq!(exported_as("loopscope.b", &c), ["loopscope_b_seconds"]);
        assert_eq!(
            exported_as("loopscope_b_seconds_bucket", &c),
            ["loopscope_b_seconds"]
        );
        assert!(exported_as("loopscope.d", &c).is_empty());
        assert!(exported_as("loopscope_a", &c).is_empty());
    }

    #[test]
    fn metric_tokens_skip_recording_rule_names() {
        let _machine = loopscope_tests::machine::shared();
        let t =
            metric_tokens("rate(loopscope_a_total[1m]) + job:loopscope_b:rate1m + xloopscope_c");
        assert_eq!(t.into_iter().collect::<Vec<_>>(), ["loopscope_a_total"]);
    }

    #[test]
    fn string_literals_survive_escapes_comments_and_chars() {
        let _machine = loopscope_tests::machine::shared();
        let src = "const A: &str = \"loopscope.a\"; // \"not\" a literal\nlet q = '\"'; let s = \"x \\\" y\";\nlet b = \"loopscope_b\";";
        let lits: Vec<String> = string_literals(src).into_iter().map(|l| l.0).collect();
        assert_eq!(lits, ["loopscope.a", "x \" y", "loopscope_b"]);
        assert!(string_literals(src)[0].1.contains("const A"));
    }
}
