//! The signals that start a drain: SIGTERM (Kubernetes) and SIGINT (Ctrl-C).
//!
//! The handlers are installed by [`Signals::install`], before the service says it listens:
//! a SIGTERM that arrives between "listening" and the first poll of a lazily registered
//! handler would otherwise kill the process without a drain.
use std::io;

#[cfg(unix)]
use tokio::signal::unix::{Signal, SignalKind, signal as unix_signal};

pub struct Signals {
    #[cfg(unix)]
    interrupt: Signal,
    #[cfg(unix)]
    terminate: Signal,
}

impl Signals {
    /// Installs the handlers now; call inside a tokio runtime.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            interrupt: unix_signal(SignalKind::interrupt())?,
            #[cfg(unix)]
            terminate: unix_signal(SignalKind::terminate())?,
        })
    }

    /// Resolves with the name of the first of SIGINT or SIGTERM to arrive.
    pub async fn recv(mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// Installs the handlers and waits for the first signal.
pub async fn signal() -> &'static str {
    match Signals::install() {
        Ok(signals) => signals.recv().await,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers; SIGTERM will not drain");
            std::future::pending().await
        }
    }
}
