//! `tracing` events (feature `tracing`), all on slow paths: reloads, budget
//! discards, exhaustion, trimming, NUMA binding and pinning failures.
//! Without the feature the macro expands to nothing, and its arguments are
//! not evaluated.

/// Emits a `tracing` event at `$level` with target `zeropool`.
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!(target: "zeropool", $($arg)+);
        }
    }};
}

pub(crate) use event;
