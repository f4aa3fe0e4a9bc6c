//! SIGINT, SIGTERM and SIGHUP as flags the launcher polls: it stops its children itself, in
//! order, instead of dying and leaving them running (they are in process groups of their own,
//! so a closed terminal's SIGHUP reaches only the launcher).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

#[derive(Clone, Default)]
pub(crate) struct Signals {
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    /// From now on SIGINT, SIGTERM and SIGHUP only set a flag.
    pub(crate) fn install() -> std::io::Result<Self> {
        let s = Self::default();
        signal_hook::flag::register(SIGINT, s.int.clone())?;
        signal_hook::flag::register(SIGTERM, s.term.clone())?;
        signal_hook::flag::register(SIGHUP, s.hup.clone())?;
        Ok(s)
    }

    /// The name of the signal that arrived, if one did.
    pub(crate) fn received(&self) -> Option<&'static str> {
        if self.int.load(Ordering::Relaxed) {
            Some("SIGINT")
        } else if self.term.load(Ordering::Relaxed) {
            Some("SIGTERM")
        } else if self.hup.load(Ordering::Relaxed) {
            Some("SIGHUP")
        } else {
            None
        }
    }
}
