//! Every flag of every binary's `--help` against the README's settings tables.

use std::collections::BTreeMap;
use std::process::Command;

use loopscope_tests::bin;

use crate::consistency::readme::{section, settings_tables};
use crate::consistency::repo::read;

/// One option of a `--help` page.
#[derive(Debug, Default)]
pub(crate) struct HelpFlag {
    pub(crate) short: Option<String>,
    pub(crate) env: Option<String>,
    pub(crate) default: Option<String>,
}

/// The long options of `binary args... --help`, with short alias, env and default.
pub(crate) fn help_flags(binary: &str, args: &[&str]) -> BTreeMap<String, HelpFlag> {
    let out = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success(), "{binary} {args:?} --help failed");
    parse_help(&String::from_utf8_lossy(&out.stdout))
}

/// clap's help, long (details on the lines below each option) or short (on the same line).
pub(crate) fn parse_help(text: &str) -> BTreeMap<String, HelpFlag> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let (short, long) = match trimmed.split_once(", --") {
            Some((short, long)) if short.len() == 2 && short.starts_with('-') => {
                (Some(short.to_owned()), Some(long))
            }
            _ => (None, trimmed.strip_prefix("--")),
        };
        if let Some(long) = long.filter(|_| indent <= 6) {
            let name: String = long
                .chars()
                .take_while(|&c| c.is_ascii_alphanumeric() || c == '-')
                .collect();
            let flag = format!("--{name}");
            current = None;
            if !["--help", "--version"].contains(&flag.as_str()) {
                out.insert(
                    flag.clone(),
                    HelpFlag {
                        short,
                        ..HelpFlag::default()
                    },
                );
                current = Some(flag);
            }
        }
        let Some(flag) = current.as_ref().and_then(|c| out.get_mut(c)) else {
            continue;
        };
        for (i, _) in trimmed.match_indices('[') {
            let item = trimmed[i + 1..].split(']').next().unwrap_or_default();
            if let Some(env) = item.strip_prefix("env: ") {
                flag.env = env.split('=').next().map(str::to_owned);
            } else if let Some(default) = item.strip_prefix("default: ") {
                flag.default = Some(default.to_owned());
            }
        }
    }
    out
}

/// Whether `text` names `flag` as a whole word (`--json`, not `--json-x`).
pub(crate) fn mentions(text: &str, flag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-';
    text.match_indices(flag).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + flag.len()..].chars().next().is_some_and(word)
    })
}

/// The services and the settings tables that document them, in order of precedence.
pub(crate) const SERVICES: &[(&str, &[&str], &[&str])] = &[
    ("worker", &[], &["worker", "shared"]),
    ("gateway", &[], &["gateway", "shared"]),
    ("backend", &[], &["backend", "shared"]),
    ("loadgen", &["serve"], &["loadgen serve", "shared"]),
];

#[test]
pub(crate) fn every_flag_of_every_service_is_in_the_readme_settings_tables() {
    let _machine = loopscope_tests::machine::shared();
    let tables = settings_tables(&read("README.md"));
    let mut problems = Vec::new();
    for (binary, sub, documented_in) in SERVICES {
        let help = help_flags(binary, sub);
        assert!(
            help.len() > 10,
            "{binary} {sub:?}: only {} flags parsed",
            help.len()
        );
        let who = [&[*binary][..], sub].concat().join(" ");
        for (flag, h) in &help {
            let row = documented_in
                .iter()
                .find_map(|t| tables.get(*t).and_then(|rows| rows.get(flag)));
            let Some(row) = row else {
                problems.push(format!(
                    "{who} {flag}: missing from the README's settings tables {documented_in:?}"
                ));
                continue;
            };
            if let Some(env) = &h.env
                && &row.env != env
            {
                problems.push(format!(
                    "{who} {flag}: env is {env}, the README says {}",
                    row.env
                ));
            }
            if let Some(default) = &h.default
                && &row.default != default
            {
                problems.push(format!(
                    "{who} {flag}: default is {default}, the README says {}",
                    row.default
                ));
            }
        }
        // The other way: a documented flag the binary does not have.
        for table in *documented_in {
            for flag in tables.get(*table).into_iter().flat_map(BTreeMap::keys) {
                if !help.contains_key(flag) {
                    problems.push(format!(
                        "README's `{table}` settings: {flag} is not a flag of {who}"
                    ));
                }
            }
        }
    }
    assert!(
        tables.contains_key("shared"),
        "no shared settings table parsed: {tables:?}"
    );
    assert!(
        problems.is_empty(),
        "--help and README.md's settings disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
pub(crate) fn every_flag_of_the_loadgen_commands_is_in_the_readme() {
    let _machine = loopscope_tests::machine::shared();
    let readme = read("README.md");
    let text = section(&readme, "### loadgen").join("\n");
    let mut missing = Vec::new();
    for command in ["run", "experiment"] {
        let help = help_flags("loadgen", &[command]);
        assert!(
            help.len() >= 3,
            "loadgen {command}: only {} flags parsed",
            help.len()
        );
        for (flag, h) in &help {
            let short = h.short.as_deref().is_some_and(|s| mentions(&text, s));
            if !mentions(&text, flag) && !short {
                missing.push(format!("loadgen {command} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from README.md's loadgen section: {missing:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_pages_in_both_layouts() {
        let _machine = loopscope_tests::machine::shared();
        let long = "Usage: x\n\nOptions:\n      --backend-url <URL>\n          Base URL\n          \n          \
            [env: LOOPSCOPE_BACKEND_URL=]\n          [default: http://127.0.0.1:8083]\n\n  -c, --concurrency <N>\n          N\n\n  \
            -h, --help\n          Print help\n";
        let h = parse_help(long);
        assert_eq!(
            h.keys().collect::<Vec<_>>(),
            ["--backend-url", "--concurrency"]
        );
        assert_eq!(h["--concurrency"].short.as_deref(), Some("-c"));
        assert_eq!(
            h["--backend-url"].env.as_deref(),
            Some("LOOPSCOPE_BACKEND_URL")
        );
        assert_eq!(
            h["--backend-url"].default.as_deref(),
            Some("http://127.0.0.1:8083")
        );
        assert_eq!(h["--concurrency"].default, None);
    }

    #[test]
    fn short_help_lines_and_whole_word_mentions() {
        let _machine = loopscope_tests::machine::shared();
        let h = parse_help(
            "Options:\n      --timeout <T>  Timeout [default: 30s]\n      --json  JSON\n",
        );
        assert_eq!(h["--timeout"].default.as_deref(), Some("30s"));
        assert!(mentions("[--json] [--quiet]", "--json"));
        assert!(!mentions("`--json-lines`", "--json"));
        assert!(mentions("[-c N]", "-c"));
    }
}
