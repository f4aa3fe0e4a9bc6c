//! `loopscope down`: stop what `up` recorded in its state file.

use std::time::{Duration, Instant};

use launcher::process::{Running, Signal, is_alive, signal, stop_group};

use crate::cli::DownArgs;
use crate::plan;
use crate::stack::{err, say};
use crate::state;

pub(crate) fn down(args: &DownArgs) -> u8 {
    let dir = plan::state_dir(args.state.state_dir.as_deref());
    let stop = Duration::from_secs(args.stop_timeout);
    let recorded = match state::try_load(&dir) {
        Ok(Some(recorded)) => recorded,
        Ok(None) => {
            say(&format!(
                "loopscope is not running (no {})",
                state::file(&dir).display()
            ));
            return 0;
        }
        Err(e) => {
            err(&format!(
                "{e}; stop the processes by hand (see {})",
                state::log_dir(&dir).display()
            ));
            return 1;
        }
    };
    let mut stopped_any = false;

    // A foreground `up`: it stops its children in order, as on Ctrl-C.
    if let Some(up) = recorded.launcher.as_ref().filter(|l| l.is_live()) {
        say(&format!("asking loopscope up (pid {}) to stop", up.pid));
        signal(up.pid, Signal::SIGTERM);
        let deadline = Instant::now() + stop * 2 + Duration::from_secs(5);
        while is_alive(up.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if is_alive(up.pid) {
            err(&format!(
                "loopscope up (pid {}) did not stop; stopping its processes directly",
                up.pid
            ));
        }
        stopped_any = true;
    }

    let mut live: Vec<&state::Recorded> =
        recorded.processes.iter().filter(|r| r.is_live()).collect();
    live.sort_by_key(|r| r.stage.stop_rank());
    let mut ranks: Vec<u8> = live.iter().map(|r| r.stage.stop_rank()).collect();
    ranks.dedup();
    for rank in ranks {
        let group: Vec<Running> = live
            .iter()
            .filter(|r| r.stage.stop_rank() == rank)
            .map(|r| Running {
                name: r.name.clone(),
                pid: r.pid,
            })
            .collect();
        let names: Vec<&str> = group.iter().map(|r| r.name.as_str()).collect();
        say(&format!("stopping {} (SIGTERM)", names.join(", ")));
        for name in stop_group(&group, stop).killed {
            err(&format!(
                "{name} still running after {}s: SIGKILL",
                stop.as_secs()
            ));
        }
        stopped_any = true;
    }
    state::remove(&dir);
    say(if stopped_any {
        "loopscope stopped"
    } else {
        "loopscope is not running (the processes of the last run are gone)"
    });
    0
}
