//! Reading README.md: its sections, tables, code spans, the metric catalogue and the
//! settings tables.

use std::collections::{BTreeMap, BTreeSet};

/// The lines of the README section whose heading is `heading`, up to the next heading of
/// the same or a higher level.
pub(crate) fn section<'a>(readme: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = readme.lines().skip_while(|l| l.trim_end() != heading);
    assert!(
        lines.next().is_some(),
        "README.md has no `{heading}` section"
    );
    lines
        .take_while(|l| {
            let hashes = l.chars().take_while(|&c| c == '#').count();
            !(hashes > 0 && hashes <= level && l[hashes..].starts_with(' '))
        })
        .collect()
}

/// The cells of a Markdown table row (`| a | b |`); `\|` inside a cell is kept.
pub(crate) fn cells(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    if !line.starts_with('|') || line.starts_with("|---") || line.starts_with("| ---") {
        return None;
    }
    let inner = line.trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().expect("cell").push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().expect("cell").push(c),
        }
    }
    Some(out.into_iter().map(|c| c.trim().to_owned()).collect())
}

/// Rows of every table in `lines`, header rows included (callers skip them by content).
pub(crate) fn rows(lines: &[&str]) -> Vec<Vec<String>> {
    lines.iter().filter_map(|l| cells(l)).collect()
}

/// The `code spans` of a piece of Markdown.
pub(crate) fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

pub(crate) fn unquote(cell: &str) -> String {
    cell.trim().trim_matches('`').to_owned()
}

/// The README metric catalogue: exported name → label keys (without the registry's
/// `service` and `handling`). A row may list several names that share the labels.
pub(crate) fn catalogue(readme: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for row in rows(&section(readme, "## Metric catalogue")) {
        let (Some(names), Some(labels)) = (row.first(), row.get(2)) else {
            continue;
        };
        let labels: BTreeSet<String> = labels
            .split(',')
            .filter_map(|part| {
                let key: String = part
                    .trim()
                    .trim_matches('`')
                    .chars()
                    .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                    .collect();
                (!key.is_empty()).then_some(key)
            })
            .collect();
        for name in code_spans(names) {
            if name.starts_with("loopscope_") {
                out.insert(name, labels.clone());
            }
        }
    }
    out
}

/// One row of a settings table.
#[derive(Debug)]
pub(crate) struct Setting {
    pub(crate) env: String,
    pub(crate) default: String,
}

/// The README's settings tables, by the line that introduces each (`worker:`, ...; the
/// shared one is `shared`).
pub(crate) fn settings_tables(readme: &str) -> BTreeMap<String, BTreeMap<String, Setting>> {
    let mut out: BTreeMap<String, BTreeMap<String, Setting>> = BTreeMap::new();
    let mut table = String::new();
    for line in section(readme, "## Settings") {
        let text = line.trim();
        if let Some(title) = text.strip_suffix(':').filter(|_| !text.starts_with('|')) {
            table = if title.starts_with("Shared") {
                "shared".to_owned()
            } else {
                title.trim_matches('`').to_owned()
            };
            continue;
        }
        let Some(row) = cells(line) else { continue };
        if row.len() < 3 || !row[0].starts_with("`--") {
            continue;
        }
        out.entry(table.clone()).or_default().insert(
            unquote(&row[0]),
            Setting {
                env: unquote(&row[1]),
                default: unquote(&row[2]),
            },
        );
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const README: &str = "# x\n\n## Metric catalogue\n\n| metric | type | labels | what |\n|---|---|---|---|\n\
        | `loopscope_a_total`, `loopscope_b_seconds` | counter | endpoint, `worker` | x |\n\
        | `loopscope_c` | gauge | | y \\| z |\n\n## Settings\n\nShared by every service:\n\n\
        | flag | env | default | what |\n|---|---|---|---|\n| `--host` | `LOOPSCOPE_HOST` | `127.0.0.1` | h |\n\n\
        worker:\n\n| flag | env | default | what |\n|---|---|---|---|\n| `--handling` | `LOOPSCOPE_HANDLING` | required | h |\n\n\
        ## Next\n\n| `loopscope_not_in_catalogue` | | | |\n";

    #[test]
    fn catalogue_reads_names_and_labels_of_its_own_section_only() {
        let _machine = loopscope_tests::machine::shared();
        let c = catalogue(README);
        assert_eq!(
            c.keys().collect::<Vec<_>>(),
            ["loopscope_a_total", "loopscope_b_seconds", "loopscope_c"]
        );
        assert_eq!(
            c["loopscope_b_seconds"],
            BTreeSet::from(["endpoint".into(), "worker".into()])
        );
        assert!(c["loopscope_c"].is_empty());
    }

    #[test]
    fn settings_tables_by_title() {
        let _machine = loopscope_tests::machine::shared();
        let t = settings_tables(README);
        assert_eq!(t["shared"]["--host"].env, "LOOPSCOPE_HOST");
        assert_eq!(t["shared"]["--host"].default, "127.0.0.1");
        assert_eq!(t["worker"]["--handling"].default, "required");
        assert_eq!(t.len(), 2);
    }
}
