//! Fault injection for the `faults_*` tests: a pooled type whose constructor
//! (`Poolable::with_capacity_hint`, the pool's factory) fails or panics on
//! chosen calls, whose `reset` panics on chosen objects, and a census of the
//! values alive, kept independently of the pool's own counters.
//!
//! The fault plan is per thread, so tests running in parallel (and the
//! threads a test spawns) each arm their own faults.
#![allow(dead_code)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use zeropool::{Pool, PoolStats, Poolable};

/// A fault the constructor injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic (with an [`Injected`] payload) instead of building the value.
    Panic,
    /// Build a value holding `bytes` whatever the hint, as a fallible
    /// allocator that falls back does (`Shrink(0)`: an empty value). Rust's
    /// stable allocator aborts on out-of-memory, so this is how a factory
    /// "fails" without taking the process down.
    Shrink(usize),
}

/// The payload of every injected panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected(pub &'static str);

#[derive(Debug, Default)]
struct Plan {
    /// Constructor calls made on this thread.
    calls: usize,
    /// (call number, fault) still to fire.
    armed: Vec<(usize, Fault)>,
}

thread_local! {
    static PLAN: RefCell<Plan> = RefCell::new(Plan::default());
    static CENSUS: RefCell<Option<Arc<Census>>> = const { RefCell::new(None) };
}

/// Arms `fault` for the `nth` constructor call from now on this thread
/// (`1`: the next one).
pub fn arm(nth: usize, fault: Fault) {
    assert!(nth >= 1);
    PLAN.with(|p| {
        let mut p = p.borrow_mut();
        let at = p.calls + nth;
        p.armed.retain(|&(n, _)| n != at);
        p.armed.push((at, fault));
    });
}

/// Faults armed on this thread that have not fired yet.
pub fn pending() -> usize {
    PLAN.with(|p| p.borrow().armed.len())
}

/// Constructor calls made on this thread so far.
pub fn calls() -> usize {
    PLAN.with(|p| p.borrow().calls)
}

/// Counts one constructor call; the fault armed for it, if any.
fn next_call() -> Option<Fault> {
    PLAN.with(|p| {
        let mut p = p.borrow_mut();
        p.calls += 1;
        let now = p.calls;
        let at = p.armed.iter().position(|&(n, _)| n == now)?;
        Some(p.armed.swap_remove(at).1)
    })
}

/// Live `Flaky` values made while it was entered, counted by their own
/// constructor and `Drop` (not by the pool).
#[derive(Debug, Default)]
pub struct Census {
    live: AtomicIsize,
    made: AtomicUsize,
}

/// Keeps a census entered on this thread until dropped.
#[derive(Debug)]
pub struct Entered(Option<Arc<Census>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CENSUS.with(|c| *c.borrow_mut() = previous);
    }
}

impl Census {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts the values this thread makes (until the result drops).
    pub fn enter(self: &Arc<Self>) -> Entered {
        Entered(CENSUS.with(|c| c.borrow_mut().replace(self.clone())))
    }

    /// Values alive now.
    pub fn live(&self) -> usize {
        let n = self.live.load(Ordering::SeqCst);
        assert!(n >= 0, "a value was dropped twice: live = {n}");
        n as usize
    }

    /// Values made in all.
    pub fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }
}

/// A pooled byte buffer with fault hooks.
#[derive(Debug)]
pub struct Flaky {
    pub buf: Vec<u8>,
    /// `reset` panics (with an [`Injected`] payload).
    pub explode_in_reset: bool,
    census: Option<Arc<Census>>,
}

impl Flaky {
    /// A value of exactly `bytes` capacity, counted in the entered census.
    pub fn new(bytes: usize) -> Self {
        let census = CENSUS.with(|c| c.borrow().clone());
        if let Some(c) = &census {
            c.live.fetch_add(1, Ordering::SeqCst);
            c.made.fetch_add(1, Ordering::SeqCst);
        }
        Self {
            buf: Vec::with_capacity(bytes),
            explode_in_reset: false,
            census,
        }
    }

    /// A value whose `reset` panics.
    pub fn exploding(bytes: usize) -> Self {
        let mut v = Self::new(bytes);
        v.explode_in_reset = true;
        v
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        if let Some(c) = &self.census {
            c.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Poolable for Flaky {
    fn with_capacity_hint(bytes: usize) -> Self {
        match next_call() {
            None => Flaky::new(bytes),
            Some(Fault::Shrink(to)) => Flaky::new(to),
            Some(Fault::Panic) => std::panic::panic_any(Injected("factory")),
        }
    }

    fn reset(&mut self) {
        if self.explode_in_reset {
            std::panic::panic_any(Injected("reset"));
        }
        self.buf.clear();
    }

    fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

/// The injected panic's payload, or a failure naming what panicked instead.
#[track_caller]
pub fn injected(payload: Box<dyn std::any::Any + Send>) -> Injected {
    match payload.downcast::<Injected>() {
        Ok(i) => *i,
        Err(other) => {
            let text = other
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| other.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "<non-string payload>".into());
            panic!("expected an injected panic, got: {text}")
        }
    }
}

/// Runs `f`, which must panic with an injected fault; returns which.
#[track_caller]
pub fn expect_injected<R>(f: impl FnOnce() -> R) -> Injected {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected an injected panic, but the call returned"),
        Err(payload) => injected(payload),
    }
}

/// The pool's ledger is exact while the test holds `objects` objects of
/// `bytes` bytes through guards: the ledger balances, outstanding objects
/// and bytes are what is held, the cap's charge is what is held (plus
/// `detached_charge` of detached objects), and every `Flaky` alive in
/// `census` is either idle in the pool or held by the test (`loose` more are
/// held outside any guard).
#[track_caller]
pub fn assert_exact(
    pool: &Pool<Flaky>,
    census: &Census,
    (objects, bytes): (usize, usize),
    detached_charge: usize,
    loose: usize,
) -> PoolStats {
    assert_exact_charged(
        pool,
        census,
        (objects, bytes),
        bytes + detached_charge,
        loose,
    )
}

/// [`assert_exact`] where the cap's expected charge, `charged`, is not the
/// bytes held: a guard is charged its class, which is less than its
/// capacity when an object larger than its class serves it.
#[track_caller]
pub fn assert_exact_charged(
    pool: &Pool<Flaky>,
    census: &Census,
    (objects, bytes): (usize, usize),
    charged: usize,
    loose: usize,
) -> PoolStats {
    let s = pool.stats();
    crate::common::assert_consistent(&s);
    assert_eq!(s.objects_outstanding, objects, "objects held\n{s}");
    assert_eq!(s.bytes_outstanding, bytes, "bytes held\n{s}");
    if s.max_outstanding_memory.is_some() {
        assert_eq!(pool.charged_bytes(), charged, "charged bytes\n{s}");
        assert_eq!(s.waiting, 0, "{s}");
    } else {
        assert_eq!(pool.charged_bytes(), 0, "no cap, no charge\n{s}");
    }
    assert_eq!(
        census.live(),
        s.objects_retained + objects + loose,
        "live values: idle + held\n{s}"
    );
    s
}

/// Objects and bytes of a set of guards, for [`assert_exact`].
pub fn held<'a, G>(guards: impl IntoIterator<Item = &'a G>) -> (usize, usize)
where
    G: std::ops::Deref<Target = Flaky> + 'a,
{
    guards
        .into_iter()
        .fold((0, 0), |(n, b), g| (n + 1, b + g.capacity_bytes()))
}
