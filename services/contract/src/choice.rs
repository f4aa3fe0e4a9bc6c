//! Closed sets of names: each enum is parsed from, and written as, exactly these names in
//! query parameters, path segments, flags (clap) and JSON (serde).
use std::fmt;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// A closed set of named values.
pub trait Choice: Copy + Eq + fmt::Debug + 'static {
    /// Every value, in the order messages list them.
    const ALL: &'static [Self];

    fn as_str(self) -> &'static str;

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// `io, cpu, call, block`: for messages (the error path only: it allocates).
    fn names() -> String {
        Self::ALL
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Defines a [`Choice`] enum, its names, `Display`, serde and clap's `ValueEnum`.
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
        #[serde(rename_all = "lowercase")]
        #[value(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl Choice for $name {
            const ALL: &'static [Self] = &[$(Self::$variant,)+];

            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice!(
    /// The work a worker does for a request.
    Kind {
        /// Wait for a timer: await it (async) or sleep on a pool thread (threadpool).
        Io = "io",
        /// Burn CPU for the time asked.
        Cpu = "cpu",
        /// Call the backend and wait for its answer.
        Call = "call",
        /// Sleep on the thread the request arrived on: the blocking call inside an async
        /// handler, on purpose.
        Block = "block",
    }
);

impl Kind {
    /// The worker's route for this kind: each kind is a route of its own.
    pub fn worker_path(self) -> &'static str {
        match self {
            Self::Io => "/work/io",
            Self::Cpu => "/work/cpu",
            Self::Call => "/work/call",
            Self::Block => "/work/block",
        }
    }

    /// Whether `ms` may be left out: a call's time is the backend's; every other kind does
    /// exactly as long as it is told.
    pub fn ms_optional(self) -> bool {
        self == Self::Call
    }

    /// Whether each `ms` asked for takes a worker's own time (a core for `cpu`, a thread
    /// or an event loop for `block`), which the gateway's work budget bounds; `io` and
    /// `call` only wait.
    pub fn spends_worker_time(self) -> bool {
        matches!(self, Self::Cpu | Self::Block)
    }
}

choice!(
    /// How a worker runs its work.
    Handling {
        /// Await timers and an async client on the event loop.
        Async = "async",
        /// Run each job on the blocking pool with a blocking client (FastAPI's `def`).
        Threadpool = "threadpool",
    }
);

choice!(
    /// How the gateway's fan-out issues its calls.
    FanoutMode {
        /// One after another.
        Sequential = "sequential",
        /// All at once.
        Concurrent = "concurrent",
        /// At most `limit` in flight.
        Limited = "limited",
    }
);

choice!(
    /// The backend's latency distribution around a median.
    Distribution {
        /// Always the median.
        Fixed = "fixed",
        /// Uniform in median x [1 - spread, 1 + spread].
        Uniform = "uniform",
        /// Log-normal with the given median and sigma = spread: the long tail real services
        /// have.
        Lognormal = "lognormal",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// clap, serde and `as_str` must agree on every name, or a flag, a body and a query
    /// parameter would spell the same value differently.
    fn agree<T: Choice + ValueEnum + Serialize + for<'de> Deserialize<'de>>() {
        for &value in T::ALL {
            let name = value.as_str();
            assert_eq!(T::from_name(name), Some(value));
            let clap_name = value.to_possible_value().map(|p| p.get_name().to_owned());
            assert_eq!(clap_name.as_deref(), Some(name));
            let json = serde_json::to_string(&value).expect("serializes");
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<T>(&json).ok(), Some(value));
        }
        assert_eq!(T::value_variants().len(), T::ALL.len());
        assert_eq!(T::from_name("nope"), None);
    }

    #[test]
    fn every_choice_has_one_spelling() {
        agree::<Kind>();
        agree::<Handling>();
        agree::<FanoutMode>();
        agree::<Distribution>();
        assert_eq!(Kind::names(), "io, cpu, call, block");
    }

    #[test]
    fn only_call_may_leave_ms_out_and_every_kind_has_its_route() {
        for &kind in Kind::ALL {
            assert_eq!(kind.ms_optional(), kind == Kind::Call);
            assert_eq!(
                kind.spends_worker_time(),
                matches!(kind, Kind::Cpu | Kind::Block)
            );
            assert_eq!(kind.worker_path(), format!("/work/{kind}"));
        }
    }
}
