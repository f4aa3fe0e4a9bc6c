//! The default ports of every loopscope process, in one place.
//!
//! The services bind these when no `--port`/`--admin-port` is given, loadgen's and the
//! services' default URLs point at them, the launcher (`loopscope up`) starts the stack on
//! them and writes them into the local Prometheus's scrape targets, and
//! `tests/tests/consistency` checks them against the README's table of services. A new
//! process gets its pair here and nowhere else.
//!
//! No dependencies: every crate of the workspace may link this one.

/// The app port and the admin port (metrics, probes, `/debug/stalls`) of one process, with
/// the loopback URLs of both as `&'static str` (clap's `default_value` wants one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub app: u16,
    pub admin: u16,
    /// `http://127.0.0.1:<app>`
    pub app_url: &'static str,
    /// `http://127.0.0.1:<admin>`
    pub admin_url: &'static str,
}

/// One literal per port, so the URLs are built at compile time from the same number.
macro_rules! ports {
    ($app:literal, $admin:literal) => {
        Ports {
            app: $app,
            admin: $admin,
            app_url: concat!("http://127.0.0.1:", $app),
            admin_url: concat!("http://127.0.0.1:", $admin),
        }
    };
}

pub const GATEWAY: Ports = ports!(8080, 9080);
pub const WORKER_ASYNC: Ports = ports!(8081, 9081);
pub const WORKER_THREADPOOL: Ports = ports!(8082, 9082);
pub const BACKEND: Ports = ports!(8083, 9083);
/// `loadgen serve` (the CLI's other commands bind nothing).
pub const LOADGEN: Ports = ports!(8084, 9084);

/// The local tools `loopscope up` starts beside the services when they are installed.
pub const PROMETHEUS: u16 = 9090;
pub const SPOTLIGHT: u16 = 8969;
pub const GRAFANA: u16 = 3000;

/// Every loopscope process by the name the launcher, Prometheus's jobs and the README's
/// table of services use.
pub const PROCESSES: [(&str, Ports); 5] = [
    ("gateway", GATEWAY),
    ("worker-async", WORKER_ASYNC),
    ("worker-threadpool", WORKER_THREADPOOL),
    ("backend", BACKEND),
    ("loadgen", LOADGEN),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_their_port() {
        for (name, p) in PROCESSES {
            assert_eq!(p.app_url, format!("http://127.0.0.1:{}", p.app), "{name}");
            assert_eq!(
                p.admin_url,
                format!("http://127.0.0.1:{}", p.admin),
                "{name}"
            );
        }
    }

    #[test]
    fn no_two_defaults_collide() {
        let mut all: Vec<u16> = PROCESSES
            .iter()
            .flat_map(|(_, p)| [p.app, p.admin])
            .collect();
        all.extend([PROMETHEUS, SPOTLIGHT, GRAFANA]);
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a default port is used twice");
    }
}
