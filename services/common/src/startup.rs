//! Why a service could not start, typed, with its cause kept: the process prints the whole
//! chain on one line (`worker: bad settings: --backend-url `ftp://x` is not an http(s) URL`)
//! and exits non-zero before it says it listens.
use std::io;

use crate::metrics::MetricsError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StartupError {
    #[error("cannot set up its metrics")]
    Metrics(#[from] MetricsError),
    /// The service's own settings and state, checked by the function that makes its routes.
    #[error("bad settings")]
    Settings(#[source] anyhow::Error),
    #[error("cannot install the SIGTERM and SIGINT handlers")]
    Signals(#[source] io::Error),
    #[error("cannot serve")]
    Serve(#[source] io::Error),
}
