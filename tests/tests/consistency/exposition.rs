//! The families a running stack exports, with their label keys, against the catalogue.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use loopscope_tests::stack::Stack;
use loopscope_tests::{get, start_loadgen_serve};

use crate::consistency::readme::catalogue;
use crate::consistency::repo::read;

/// `# TYPE` families of a page that start with `loopscope_`, with the label keys their
/// samples carry, less the histogram's `le` and the labels the registry adds to every
/// series of that process (`registry`: `service`, and `handling` on a worker).
pub(crate) fn families_with_labels(
    page: &str,
    registry: &[&str],
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("loopscope_"))
        .map(|n| (n.to_owned(), BTreeSet::new()))
        .collect();
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, _)) = line.rsplit_once(' ') else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
            .unwrap_or(name);
        if let Some(keys) = out.get_mut(family) {
            for pair in labels.trim_end_matches('}').split("\",") {
                if let Some((key, _)) = pair.split_once("=\"") {
                    let key = key.trim_start_matches(',').trim();
                    if key != "le" && !registry.contains(&key) {
                        keys.insert(key.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// The labels each process's registry adds to all of its series.
pub(crate) const SERVICE: &[&str] = &["service"];
pub(crate) const WORKER: &[&str] = &["service", "handling"];

#[test]
pub(crate) fn every_exported_family_is_catalogued_with_its_labels() {
    let _machine = loopscope_tests::machine::shared();
    let catalogue = catalogue(&read("README.md"));
    let stack = Stack::small();
    let serve = start_loadgen_serve(&["--gateway-url", &stack.gateway.base_url(), "--rate", "50"]);
    // Traffic through every hop, so that series which appear on first use are on the pages.
    for path in [
        "/api/compare?kind=io&ms=1",
        "/api/async/work/call?ms=1",
        "/api/threadpool/work/call?ms=1",
        "/api/async/work/cpu?ms=1",
        "/api/threadpool/work/block?ms=20",
        "/api/async/work/nope",
    ] {
        get(&stack.gateway.url(path));
    }
    std::thread::sleep(Duration::from_millis(500));

    let pages = [
        ("backend", stack.backend.metrics(), SERVICE),
        ("worker async", stack.worker_async.metrics(), WORKER),
        (
            "worker threadpool",
            stack.worker_threadpool.metrics(),
            WORKER,
        ),
        ("gateway", stack.gateway.metrics(), SERVICE),
        // Here `handling` is a label of the client metrics: the mode of the target.
        ("loadgen serve", serve.metrics(), SERVICE),
    ];
    let mut problems = Vec::new();
    let mut families = 0;
    for (process, page, registry) in &pages {
        for (family, labels) in families_with_labels(page, registry) {
            families += 1;
            match catalogue.get(&family) {
                None => problems.push(format!("{process}: {family} is not in the catalogue")),
                // A family with no sample yet shows no labels: nothing to compare.
                Some(documented) if !labels.is_empty() && &labels != documented => problems
                    .push(format!(
                        "{process}: {family} has labels {labels:?}, the catalogue says {documented:?}"
                    )),
                Some(_) => {}
            }
        }
    }
    assert!(
        families > 20,
        "only {families} loopscope_* families on five pages"
    );
    assert!(
        problems.is_empty(),
        "/metrics and README.md's metric catalogue disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_their_label_keys() {
        let _machine = loopscope_tests::machine::shared();
        let page = "# TYPE loopscope_x_seconds histogram\n\
            loopscope_x_seconds_bucket{handling=\"async\",kind=\"io\",service=\"worker\",le=\"0.5\"} 1\n\
            loopscope_x_seconds_sum{kind=\"io\",service=\"worker\"} 1\n\
            # TYPE loopscope_y gauge\nloopscope_y{service=\"worker\"} 1\n# TYPE process_threads gauge\nprocess_threads 3\n";
        let f = families_with_labels(page, &["service", "handling"]);
        assert_eq!(
            f.keys().collect::<Vec<_>>(),
            ["loopscope_x_seconds", "loopscope_y"]
        );
        assert_eq!(f["loopscope_x_seconds"], BTreeSet::from(["kind".into()]));
        assert!(f["loopscope_y"].is_empty());
    }
}
