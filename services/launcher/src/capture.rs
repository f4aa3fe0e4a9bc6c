//! A child whose output is read for its whole life and kept in memory: the cross-service
//! tests start services this way on port 0 and learn the ports from the `listening` line.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The log line a service writes once both ports are bound (JSON logs: `"message":"listening"`).
pub const LISTENING: &str = "\"listening\"";

/// Every line the child wrote so far, shared with the reader threads.
pub type Lines = Arc<Mutex<Vec<String>>>;

pub struct Captured {
    pub child: Child,
    lines: Lines,
    watched: Receiver<String>,
}

/// Spawns `cmd` with both pipes read line by line for the child's whole life (a full pipe
/// would block it). Lines containing `watch` are also handed to [`Captured::wait_for`].
pub fn spawn_captured(cmd: &mut Command, watch: &'static str) -> std::io::Result<Captured> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let lines: Lines = Arc::default();
    let (tx, watched) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for pipe in pipes.into_iter().flatten() {
        let lines = lines.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains(watch) {
                    let _ = tx.send(line.clone());
                }
                lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
    }
    Ok(Captured {
        child,
        lines,
        watched,
    })
}

impl Captured {
    /// The next watched line, waiting up to `limit`; `None` if the child exits or the time
    /// runs out first.
    pub fn wait_for(&self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .watched
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => return Some(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The shared buffer itself, for a caller that keeps reading after it moved the child.
    pub fn line_buffer(&self) -> Lines {
        self.lines.clone()
    }
}

/// The app address and, when there is one, the admin address of a `listening` line.
pub fn listening_addrs(line: &str) -> Option<(SocketAddr, Option<SocketAddr>)> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let addr = |key: &str| event[key].as_str().and_then(|s| s.parse().ok());
    Some((addr("app_addr")?, addr("admin_addr")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_lines_arrive_and_every_line_is_kept() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo one; echo '{\"message\":\"listening\"}' >&2; echo three",
        ]);
        let mut c = spawn_captured(&mut cmd, LISTENING).expect("sh");
        let line = c
            .wait_for(Duration::from_secs(5))
            .expect("the watched line");
        assert!(line.contains("listening"));
        let _ = c.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        let mut lines = c.lines();
        lines.sort();
        assert_eq!(lines.len(), 3, "{lines:?}");
        // Nothing more to watch: the child is gone, so the wait ends at once, not at the limit.
        let start = Instant::now();
        assert_eq!(c.wait_for(Duration::from_secs(30)), None);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn listening_line_addresses() {
        let line =
            r#"{"message":"listening","app_addr":"127.0.0.1:8080","admin_addr":"127.0.0.1:9080"}"#;
        let (app, admin) = listening_addrs(line).expect("parsed");
        assert_eq!(app.port(), 8080);
        assert_eq!(admin.map(|a| a.port()), Some(9080));
        assert_eq!(listening_addrs(r#"{"message":"listening"}"#), None);
    }
}
