//! Readiness: a process is ready when its `/readyz` (or a tool's health URL) answers 2xx.

use std::time::{Duration, Instant};

use crate::process::is_alive;

/// One process being waited for.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub pid: u32,
    /// Its readiness URL, e.g. `http://127.0.0.1:9083/readyz`.
    pub url: String,
}

/// Why a wait failed.
#[derive(Debug, PartialEq, Eq)]
pub enum NotReady {
    /// This process exited before it was ready.
    Exited(String),
    /// These processes were still not ready at the deadline.
    TimedOut(Vec<String>),
    /// `interrupted` said stop (a signal arrived) before everything was ready.
    Interrupted,
}

/// GET `url` answers 2xx within one second.
pub fn probe(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(1)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    agent
        .get(url)
        .call()
        .is_ok_and(|res| res.status().is_success())
}

/// How long to wait, and how often to say what is still awaited.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub timeout: Duration,
    pub report_every: Duration,
}

/// Polls every target until all answer, one exits, `timeout` passes or `interrupted` returns
/// true. `progress` gets a line every `report_every` naming what is still awaited, so a slow
/// start is never silent.
pub fn wait_ready(
    targets: &[Target],
    patience: Patience,
    interrupted: impl Fn() -> bool,
    mut progress: impl FnMut(&str),
) -> Result<(), NotReady> {
    let Patience {
        timeout,
        report_every: every,
    } = patience;
    let start = Instant::now();
    let mut next_report = start + every;
    let mut pending: Vec<&Target> = targets.iter().collect();
    loop {
        if interrupted() {
            return Err(NotReady::Interrupted);
        }
        if let Some(dead) = pending.iter().find(|t| !is_alive(t.pid)) {
            return Err(NotReady::Exited(dead.name.clone()));
        }
        pending.retain(|t| !probe(&t.url));
        if pending.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= start + timeout {
            return Err(NotReady::TimedOut(
                pending.iter().map(|t| t.name.clone()).collect(),
            ));
        }
        if now >= next_report {
            let names: Vec<&str> = pending.iter().map(|t| t.name.as_str()).collect();
            progress(&format!(
                "still waiting for {} ({}s of {}s)",
                names.join(", "),
                start.elapsed().as_secs(),
                timeout.as_secs()
            ));
            next_report = now + every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-thread HTTP server answering every request with `status`.
    fn answer_with(status: u16) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/readyz", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        url
    }

    fn me(url: String) -> Target {
        Target {
            name: "svc".into(),
            pid: std::process::id(),
            url,
        }
    }

    #[test]
    fn ready_on_200_not_on_503() {
        assert!(probe(&answer_with(200)));
        assert!(!probe(&answer_with(503)));
    }

    #[test]
    fn a_target_that_never_answers_times_out_with_progress() {
        let mut lines = Vec::new();
        let got = wait_ready(
            &[me(answer_with(503))],
            Patience {
                timeout: Duration::from_millis(700),
                report_every: Duration::from_millis(200),
            },
            || false,
            |l| lines.push(l.to_owned()),
        );
        assert_eq!(got, Err(NotReady::TimedOut(vec!["svc".into()])));
        assert!(lines.iter().any(|l| l.contains("svc")), "{lines:?}");
    }

    #[test]
    fn a_ready_target_returns_at_once() {
        let got = wait_ready(
            &[me(answer_with(200))],
            Patience {
                timeout: Duration::from_secs(5),
                report_every: Duration::from_secs(1),
            },
            || false,
            |_| {},
        );
        assert_eq!(got, Ok(()));
    }

    #[test]
    fn a_dead_target_fails_at_once() {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        let _ = child.wait();
        let target = Target {
            name: "gone".into(),
            pid,
            url: answer_with(200),
        };
        let patience = Patience {
            timeout: Duration::from_secs(5),
            report_every: Duration::from_secs(1),
        };
        let got = wait_ready(&[target], patience, || false, |_| {});
        assert_eq!(got, Err(NotReady::Exited("gone".into())));
    }
}
