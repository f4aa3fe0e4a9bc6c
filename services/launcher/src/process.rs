//! Starting and stopping loopscope processes: the scrubbed command, liveness, signals, and the
//! SIGTERM-then-SIGKILL stop of a group.

use std::ffi::OsStr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

pub use nix::sys::signal::Signal;

/// The prefixes of the variables a loopscope service reads its settings from.
pub const SETTING_PREFIXES: [&str; 2] = ["LOOPSCOPE_", "SENTRY_"];

/// A command for `program` with stdin closed and none of the caller's `LOOPSCOPE_*` /
/// `SENTRY_*` variables: the child sees only the settings its caller passes (flags or `env`),
/// not whatever the shell or the test runner happened to export.
pub fn scrubbed_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        let is_setting = key
            .to_str()
            .is_some_and(|k| SETTING_PREFIXES.iter().any(|p| k.starts_with(p)));
        if is_setting {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Sends `sig` to `pid`; false when there is no such process (or it is not ours to signal).
pub fn signal(pid: u32, sig: Signal) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    kill(Pid::from_raw(pid), sig).is_ok()
}

/// The process exists and has not exited: a zombie (exited, not yet reaped by its parent)
/// counts as gone, so a parent can poll its own children with this too.
pub fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if kill(Pid::from_raw(raw), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z')),
        // No /proc (macOS): kill(0) succeeding is all we know.
        Err(_) => true,
    }
}

/// The command line of `pid` with NULs as spaces; `None` without /proc or for a gone process.
pub fn command_line(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Waits up to `limit` for `child` to exit, reaping it.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One process to stop: its display name and pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub name: String,
    pub pid: u32,
}

/// What became of a stop: the names that exited on SIGTERM and those that needed SIGKILL.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    pub on_term: Vec<String>,
    pub killed: Vec<String>,
}

/// SIGTERM to every process of `group` at once (they drain in parallel), up to `grace` for all
/// of them to exit, then SIGKILL for the rest. It does not reap: a parent `wait`s afterwards.
pub fn stop_group(group: &[Running], grace: Duration) -> Stopped {
    let alive: Vec<&Running> = group.iter().filter(|r| is_alive(r.pid)).collect();
    for r in &alive {
        signal(r.pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while alive.iter().any(|r| is_alive(r.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stopped = Stopped::default();
    for r in alive {
        if is_alive(r.pid) {
            signal(r.pid, Signal::SIGKILL);
            stopped.killed.push(r.name.clone());
        } else {
            stopped.on_term.push(r.name.clone());
        }
    }
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbed_command_drops_settings_and_keeps_the_rest() {
        // The test's own environment is not changed (tests run in parallel): the child is
        // given the variables explicitly, then the scrub must remove only ours.
        let mut cmd = scrubbed_command("env");
        let names: Vec<_> = cmd.get_envs().map(|(k, _)| k.to_owned()).collect();
        for name in names {
            let name = name.to_string_lossy();
            assert!(
                SETTING_PREFIXES.iter().any(|p| name.starts_with(p)),
                "{name} removed"
            );
        }
        cmd.env("KEEP_ME", "1");
        let out = cmd.output().expect("env runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("KEEP_ME=1"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("LOOPSCOPE_")), "{text}");
    }

    #[test]
    fn a_stopped_child_is_not_alive_before_it_is_reaped() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id();
        assert!(is_alive(pid));
        let stopped = stop_group(
            &[Running {
                name: "sleep".into(),
                pid,
            }],
            Duration::from_secs(5),
        );
        assert_eq!(stopped.on_term, ["sleep"]);
        assert!(!is_alive(pid), "a zombie counts as gone");
        assert!(wait_timeout(&mut child, Duration::from_secs(5)).is_some());
        assert!(!signal(pid, Signal::SIGTERM) || !is_alive(pid));
    }

    #[test]
    fn a_process_that_ignores_sigterm_is_killed() {
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30"])
            .spawn()
            .expect("sh");
        // Give the shell a moment to install its trap.
        std::thread::sleep(Duration::from_millis(200));
        let stopped = stop_group(
            &[Running {
                name: "stubborn".into(),
                pid: child.id(),
            }],
            Duration::from_millis(300),
        );
        assert_eq!(stopped.killed, ["stubborn"]);
        assert!(wait_timeout(&mut child, Duration::from_secs(5)).is_some());
    }
}
