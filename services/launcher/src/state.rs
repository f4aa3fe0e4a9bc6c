//! The state of a local run, for `down` and for the next `up`: `<state dir>/state.json` lists
//! what runs (pid, stop order, a string its command line contains) and the foreground
//! launcher's own pid. The command-line check means a recycled pid is never signalled.

use std::path::{Path, PathBuf};

use launcher::process::{command_line, is_alive};
use serde::{Deserialize, Serialize};

use crate::plan::Stage;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    /// The foreground `loopscope up`; `None` with `--background`.
    pub(crate) launcher: Option<Recorded>,
    pub(crate) processes: Vec<Recorded>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Recorded {
    pub(crate) name: String,
    pub(crate) pid: u32,
    pub(crate) stage: Stage,
    /// Found in the process's command line while it is the one we started.
    pub(crate) matches: String,
}

impl Recorded {
    /// Still the process we started, and running.
    pub(crate) fn is_live(&self) -> bool {
        is_alive(self.pid) && command_line(self.pid).is_none_or(|cmd| cmd.contains(&self.matches))
    }
}

pub(crate) fn file(state_dir: &Path) -> PathBuf {
    state_dir.join("state.json")
}

pub(crate) fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

/// The recorded state: `Ok(None)` when there is none, `Err` when it cannot be read.
pub(crate) fn try_load(state_dir: &Path) -> Result<Option<State>, String> {
    let path = file(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a loopscope state file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub(crate) fn load(state_dir: &Path) -> Option<State> {
    try_load(state_dir).ok().flatten()
}

pub(crate) fn save(state_dir: &Path, state: &State) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    // Written whole then renamed: a `down` never reads half a file.
    let tmp = state_dir.join("state.json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, file(state_dir))
}

pub(crate) fn remove(state_dir: &Path) {
    let _ = std::fs::remove_file(file(state_dir));
}

/// What a previous run left running, if anything.
pub(crate) fn still_running(state_dir: &Path) -> Vec<String> {
    let Some(state) = load(state_dir) else {
        return Vec::new();
    };
    state
        .launcher
        .iter()
        .chain(&state.processes)
        .filter(|r| r.is_live())
        .map(|r| format!("{} (pid {})", r.name, r.pid))
        .collect()
}

/// The last `n` lines of `name`'s log, framed, for an error message.
pub(crate) fn log_tail(state_dir: &Path, name: &str, n: usize) -> String {
    let path = log_dir(state_dir).join(format!("{name}.log"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        return String::new();
    }
    format!(
        "--- last {} lines of {} ---\n{}\n---",
        tail.len(),
        path.display(),
        tail.join("\n")
    )
}
