//! Beside a timeline: the stack of the request that blocked its event loop, as the worker's
//! stall watchdog took it while it blocked. The timeline shows *that* requests waited; this
//! shows *which line of code* they waited for.
use std::fmt::Write as _;

use super::html::escape;
use crate::model::CulpritStack;

/// Frames shown; the rest (the runtime's) are counted.
const SHOWN: usize = 14;

pub(crate) fn aside(scenario: usize, c: &CulpritStack) -> String {
    let mut out = String::new();
    let blocked = c
        .blocked_ms
        .map_or_else(String::new, |ms| format!(", blocked {ms:.0} ms"));
    let _ = write!(
        out,
        "<aside class=\"culprit\" data-scenario=\"{scenario}\" data-route=\"{route}\">\n\
         <h4>Caught while it blocked: <code>{route}</code> · <span class=\"class\">{class}</span>{blocked}</h4>\n",
        route = escape(&c.route),
        class = escape(&c.classification),
    );
    let mut meta = Vec::new();
    if let Some(id) = &c.request_id {
        meta.push(format!("request <code>{}</code>", escape(id)));
    }
    if let Some(v) = c.victims {
        meta.push(format!(
            "{v:.0} request(s) in flight on its event loop counted as delayed"
        ));
    }
    if !meta.is_empty() {
        let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    }
    out.push_str("<ol class=\"frames\">\n");
    for f in c.frames.iter().take(SHOWN) {
        let location = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!("{}:{line}", short_path(file)),
            (Some(file), None) => short_path(file).to_owned(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<li class=\"{cls}\"><code>{function}</code> <span class=\"loc\">{location}</span></li>",
            cls = if f.in_app { "app" } else { "lib" },
            function = escape(&f.function),
            location = escape(&location),
        );
    }
    out.push_str("</ol>\n");
    if c.frames.len() > SHOWN {
        let _ = writeln!(
            out,
            "<p class=\"muted\">… {} more frames (runtime); innermost first; in-app frames in bold.</p>",
            c.frames.len() - SHOWN
        );
    }
    out.push_str("</aside>\n");
    out
}

/// The part of a path worth reading: from `services/` or `library/` or `src/` on.
fn short_path(file: &str) -> &str {
    ["services/", "library/", "src/"]
        .iter()
        .find_map(|m| file.find(m).map(|i| &file[i..]))
        .unwrap_or(file)
}

pub(crate) const CSS: &str = r#"
.culprit { border-left: 4px solid #b45309; background: #fffbeb; padding: 8px 14px; margin: 4px 0 18px; border-radius: 0 8px 8px 0; }
.culprit h4 { margin: 4px 0; }
.culprit .class { color: #b45309; font-weight: 650; }
.culprit ol.frames { margin: 6px 0; padding-left: 28px; font-size: 13px; }
.culprit li.app code { font-weight: 700; }
.culprit li.lib { color: var(--muted); }
.culprit .loc { color: var(--muted); font-size: 12px; }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CulpritFrame;

    #[test]
    fn shows_the_route_the_frames_and_escapes() {
        let c = CulpritStack {
            route: "/work/block".into(),
            request_id: Some("abc".into()),
            classification: "sleep".into(),
            blocked_ms: Some(1001.6),
            victims: Some(0.0),
            frames: (0..20)
                .map(|i| CulpritFrame {
                    function: format!("f{i}<T>"),
                    file: Some("/root/x/services/worker/src/work.rs".into()),
                    line: Some(i),
                    in_app: i == 3,
                })
                .collect(),
        };
        let html = aside(2, &c);
        assert!(html.contains("<code>/work/block</code>"));
        assert!(html.contains("f0&lt;T&gt;"));
        assert!(html.contains("<li class=\"app\"><code>f3&lt;T&gt;</code>"));
        assert!(html.contains("services/worker/src/work.rs:3"));
        assert!(!html.contains("f14&lt;"), "only the first frames");
        assert!(html.contains("6 more frames"));
    }
}
