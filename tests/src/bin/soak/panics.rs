//! Deliberate panics in `reset`, told apart from every other panic.
//!
//! A record whose `poison` flag is set panics in `reset` with the payload
//! [`DeliberateResetPanic`]; the pool drops it and lets the panic continue,
//! so every return that can run `reset` (a guard's drop, `put`,
//! `put_batch`) runs under [`catch`]. The panic hook stays quiet for that
//! payload and prints every other panic as usual: those are violations.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// The payload of a deliberate `reset` panic.
#[derive(Debug)]
pub struct DeliberateResetPanic;

/// Panics with [`DeliberateResetPanic`] (from a poisoned record's `reset`).
pub fn deliberate() -> ! {
    panic::panic_any(DeliberateResetPanic)
}

/// Installs a hook that hides deliberate reset panics and prints the rest
/// with the default hook.
pub fn install_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<DeliberateResetPanic>() {
            default(info);
        }
    }));
}

/// How a return that may run `reset` ended.
#[derive(Debug)]
pub enum Caught {
    /// No panic.
    Clean,
    /// A deliberate reset panic (expected, not a violation).
    ResetPanic,
    /// Any other panic: a violation, with its message.
    Unexpected(String),
}

/// Runs `f`, catching a panic.
pub fn catch(f: impl FnOnce()) -> Caught {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => Caught::Clean,
        Err(payload) => classify(payload.as_ref()),
    }
}

/// Tells a deliberate reset panic from any other.
pub fn classify(payload: &(dyn Any + Send)) -> Caught {
    if payload.is::<DeliberateResetPanic>() {
        return Caught::ResetPanic;
    }
    Caught::Unexpected(message(payload))
}

/// The message of a panic payload.
pub fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic payload>".to_string())
}
