//! The outstanding-memory cap: bytes handed out and not yet returned, and
//! the queue of requests waiting for room under it.
//!
//! ```text
//!  request(b) ── nobody queued and charged + b <= cap? ── charge ──► go
//!       │ no
//!       ▼
//!  lock queue ── queue empty and it fits now? ── charge ──► go
//!       │ no: push a Waiter (FIFO)            ┌── discharge(b'): charged -= b';
//!       ▼                                     │   queued? lock, then while the
//!  wait (park the thread / return Pending) ◄──┘   head fits: charge it, pop it,
//!       │                                         mark it Granted, wake it
//!       ├─ Granted: the bytes are charged for it ─► go
//!       ├─ Refused (the cap fell below its size) ─► the caller decides
//!       └─ timeout / future dropped ─► cancel: dequeue, or if it was granted
//!                                      meanwhile, keep it (timeout) or give
//!                                      the bytes back (drop): nothing is lost
//! ```
//! **Fairness**: strict FIFO. While anyone is queued, new requests queue
//! behind them, and the head is served before any later request even if a
//! later one would fit, so a large request is never starved by a stream of
//! small ones (at the cost of idling capacity a smaller request could use).
//!
//! Every waiter's state lives behind its own small lock; the queue's lock is
//! taken before a waiter's. Neither is held while user code runs, while a
//! thread parks, or across an `.await`.

use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::Waker;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The cap value that means "no cap".
pub(crate) const NO_CAP: usize = usize::MAX;

/// A request did not fit under the pool's outstanding-memory cap.
///
/// # Example
/// ```
/// use zeropool::BufferPool;
///
/// let pool = BufferPool::builder().size_classes(&[4096]).max_outstanding_memory(4096).build()?;
/// let held = pool.try_get(4096).unwrap();
/// let err = pool.try_get(4096).unwrap_err();
/// assert_eq!((err.requested, err.outstanding, err.cap), (4096, 4096, 4096));
/// drop(held);
/// assert!(pool.try_get(4096).is_ok());
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exhausted {
    /// Bytes the request needed (its size class, or its size if oversize).
    pub requested: usize,
    /// Bytes handed out when it was refused.
    pub outstanding: usize,
    /// The cap (`max_outstanding_memory`).
    pub cap: usize,
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool exhausted: {} bytes requested, {} of {} bytes outstanding",
            self.requested, self.outstanding, self.cap
        )
    }
}

impl std::error::Error for Exhausted {}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The bytes are charged for this request.
    Granted,
    /// The cap fell below the request's size while it waited: it can never
    /// fit. Nothing is charged.
    Refused,
    /// The deadline passed first. Nothing is charged.
    TimedOut,
}

#[derive(Debug)]
enum State {
    Waiting {
        waker: Option<Waker>,
        thread: Option<Thread>,
    },
    Granted,
    Refused,
    Cancelled,
}

/// One queued request.
#[derive(Debug)]
pub(crate) struct Waiter {
    bytes: usize,
    since: Instant,
    state: Mutex<State>,
}

impl Waiter {
    /// `Some(outcome)` once decided; otherwise stores `waker` to be woken.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn poll(&self, waker: &Waker) -> Option<Outcome> {
        let mut state = self.state.lock();
        match &mut *state {
            State::Granted => Some(Outcome::Granted),
            State::Refused => Some(Outcome::Refused),
            State::Cancelled => Some(Outcome::TimedOut),
            State::Waiting { waker: slot, .. } => {
                if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *slot = Some(waker.clone());
                }
                None
            }
        }
    }

    fn decided(&self) -> Option<Outcome> {
        match &*self.state.lock() {
            State::Granted => Some(Outcome::Granted),
            State::Refused => Some(Outcome::Refused),
            State::Cancelled => Some(Outcome::TimedOut),
            State::Waiting { .. } => None,
        }
    }
}

/// Counters of the cap's slow paths (shared atomics: none of this is on the
/// uncapped hot path).
#[derive(Debug, Default)]
pub(crate) struct GateCounters {
    pub(crate) waits: AtomicU64,
    pub(crate) wait_nanos: AtomicU64,
    pub(crate) wait_max_nanos: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) exhausted: AtomicU64,
    pub(crate) overshoots: AtomicU64,
}

/// The "someone is queued" bit of `Gate::state` (the rest is bytes charged).
const QUEUED: usize = 1 << (usize::BITS - 1);

/// The cap, what is charged against it, and the waiters.
#[derive(Debug)]
pub(crate) struct Gate {
    cap: AtomicUsize,
    /// Bytes charged, with the [`QUEUED`] bit set while the queue is not empty.
    state: CachePadded<AtomicUsize>,
    /// Requests queued (for stats; the queue's own length is the truth).
    waiting: AtomicUsize,
    queue: Mutex<VecDeque<Arc<Waiter>>>,
    pub(crate) counters: GateCounters,
}

impl Gate {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: AtomicUsize::new(cap),
            state: CachePadded::new(AtomicUsize::new(0)),
            waiting: AtomicUsize::new(0),
            queue: Mutex::new(VecDeque::new()),
            counters: GateCounters::default(),
        }
    }

    /// The cap, or [`NO_CAP`].
    #[inline(always)]
    pub(crate) fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    /// Bytes charged: what live guards hold (and grants to woken waiters
    /// that have not run yet).
    pub(crate) fn charged(&self) -> usize {
        self.state.load(Ordering::Acquire) & !QUEUED
    }

    /// Requests queued right now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The error for a request of `bytes` that does not fit now.
    pub(crate) fn exhausted(&self, bytes: usize) -> Exhausted {
        self.counters.exhausted.fetch_add(1, Ordering::Relaxed);
        crate::trace::event!(
            debug,
            requested = bytes,
            charged = self.charged(),
            cap = self.cap(),
            "pool exhausted"
        );
        Exhausted {
            requested: bytes,
            outstanding: self.charged(),
            cap: self.cap(),
        }
    }

    /// Charges `bytes` if that stays within the cap. Unless `barge`, it fails
    /// while anyone is queued. With `mark`, a request that does not fit sets
    /// the queued bit in the same compare-and-swap (and still returns false).
    fn charge(&self, bytes: usize, barge: bool, mark: bool) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if !barge && current & QUEUED != 0 {
                return false;
            }
            let charged = current & !QUEUED;
            let fits = charged.checked_add(bytes).is_some_and(|n| n <= self.cap());
            let next = match (fits, mark) {
                (true, _) => current + bytes,
                (false, true) => current | QUEUED,
                (false, false) => return false,
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return fits,
                Err(seen) => current = seen,
            }
        }
    }

    /// Charges `bytes` at once if nobody is queued and they fit.
    #[inline]
    pub(crate) fn try_charge(&self, bytes: usize) -> bool {
        self.charge(bytes, false, false)
    }

    /// Charges `bytes` even past the cap (policy `allocate`, or a request
    /// that can never fit); counts an overshoot if it went past.
    pub(crate) fn force_charge(&self, bytes: usize) {
        let before = self.state.fetch_add(bytes, Ordering::AcqRel) & !QUEUED;
        if before.saturating_add(bytes) > self.cap() {
            self.counters.overshoots.fetch_add(1, Ordering::Relaxed);
            crate::trace::event!(
                debug,
                bytes,
                charged = before,
                cap = self.cap(),
                "outstanding cap exceeded"
            );
        }
    }

    /// Charges a batch of requests even past the cap; counts one overshoot
    /// for each request that went past.
    pub(crate) fn force_charge_all(&self, requests: &[usize]) {
        let total = requests.iter().fold(0usize, |a, &b| a.saturating_add(b));
        let mut at = self.state.fetch_add(total, Ordering::AcqRel) & !QUEUED;
        let cap = self.cap();
        let over = requests
            .iter()
            .filter(|&&b| {
                at = at.saturating_add(b);
                at > cap
            })
            .count();
        self.counters
            .overshoots
            .fetch_add(over as u64, Ordering::Relaxed);
    }

    /// Gives back `bytes` and serves waiters that now fit.
    pub(crate) fn discharge(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let before = self.state.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(
            before & !QUEUED >= bytes,
            "cap discharged more than charged"
        );
        if before & QUEUED != 0 {
            let wake = self.grant(&mut self.queue.lock());
            wake_all(wake);
        }
    }

    /// Charges `bytes` now, or queues a waiter (to be woken through `waker`
    /// or by unparking `thread`).
    pub(crate) fn charge_or_enqueue(
        &self,
        bytes: usize,
        waker: Option<Waker>,
        thread: Option<Thread>,
    ) -> Result<(), Arc<Waiter>> {
        let mut queue = self.queue.lock();
        // Charge if it fits and nobody is ahead; else set the queued bit in
        // the same step, so a discharge from now on serves the queue.
        if self.charge(bytes, queue.is_empty(), true) {
            return Ok(());
        }
        let waiter = Arc::new(Waiter {
            bytes,
            since: Instant::now(),
            state: Mutex::new(State::Waiting { waker, thread }),
        });
        queue.push_back(waiter.clone());
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.counters.waits.fetch_add(1, Ordering::Relaxed);
        self.set_queued(&queue);
        Err(waiter)
    }

    /// Serves the queue from its head while the head fits; returns whom to
    /// wake. Leaves the queued bit matching the queue.
    fn grant(&self, queue: &mut VecDeque<Arc<Waiter>>) -> Vec<Wake> {
        let mut wake = Vec::new();
        while let Some(head) = queue.front() {
            if !self.charge(head.bytes, true, false) {
                break;
            }
            let head = queue.pop_front().expect("front exists");
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            wake.push(settle(&head, State::Granted));
            self.record_wait(&head);
        }
        self.set_queued(queue);
        wake
    }

    /// Makes the queued bit say whether `queue` (locked) has waiters.
    fn set_queued(&self, queue: &VecDeque<Arc<Waiter>>) {
        if queue.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::AcqRel);
        } else {
            self.state.fetch_or(QUEUED, Ordering::AcqRel);
        }
    }

    fn record_wait(&self, waiter: &Waiter) {
        let nanos = u64::try_from(waiter.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.counters
            .wait_max_nanos
            .fetch_max(nanos, Ordering::Relaxed);
    }

    /// Takes a waiter out of the queue. Returns `Granted` if it had been
    /// served meanwhile (its bytes are charged: the caller uses them or gives
    /// them back), `Refused` if it had been refused, else `TimedOut`.
    pub(crate) fn cancel(&self, waiter: &Arc<Waiter>) -> Outcome {
        let mut queue = self.queue.lock();
        if let Some(outcome) = waiter.decided() {
            return outcome;
        }
        if let Some(at) = queue.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            queue.remove(at);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        *waiter.state.lock() = State::Cancelled;
        // The head may have changed: serve whoever now fits.
        let wake = self.grant(&mut queue);
        drop(queue);
        wake_all(wake);
        Outcome::TimedOut
    }

    /// Changes the cap: waiters larger than the new cap are refused (they
    /// could never fit), then the queue is served.
    pub(crate) fn set_cap(&self, cap: usize) {
        self.cap.store(cap, Ordering::SeqCst);
        let mut queue = self.queue.lock();
        let mut wake = Vec::new();
        queue.retain(|w| {
            if w.bytes <= cap {
                return true;
            }
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            wake.push(settle(w, State::Refused));
            false
        });
        wake.extend(self.grant(&mut queue));
        drop(queue);
        wake_all(wake);
    }

    /// Blocks the calling thread until `waiter` is decided or `deadline` passes.
    pub(crate) fn wait(&self, waiter: &Arc<Waiter>, deadline: Option<Instant>) -> Outcome {
        loop {
            if let Some(outcome) = waiter.decided() {
                return outcome;
            }
            match deadline {
                None => std::thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        let outcome = self.cancel(waiter);
                        if outcome == Outcome::TimedOut {
                            self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        return outcome;
                    }
                    std::thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// Lets every queued request through as refused (the policy is no
    /// longer `wait`): each then overshoots instead of waiting on.
    pub(crate) fn refuse_all(&self) {
        let mut queue = self.queue.lock();
        let wake: Vec<Wake> = queue
            .drain(..)
            .map(|w| settle(&w, State::Refused))
            .collect();
        self.waiting.store(0, Ordering::Relaxed);
        self.set_queued(&queue);
        drop(queue);
        wake_all(wake);
    }

    /// Total and longest wait so far.
    pub(crate) fn wait_times(&self) -> (Duration, Duration) {
        let load = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        (
            load(&self.counters.wait_nanos),
            load(&self.counters.wait_max_nanos),
        )
    }
}

/// Someone to wake after the queue's lock is released.
#[derive(Debug)]
enum Wake {
    Task(Waker),
    Thread(Thread),
    Nobody,
}

/// Decides a waiter; returns whom to wake.
fn settle(waiter: &Waiter, outcome: State) -> Wake {
    let mut state = waiter.state.lock();
    let previous = std::mem::replace(&mut *state, outcome);
    match previous {
        State::Waiting { waker: Some(w), .. } => Wake::Task(w),
        State::Waiting {
            thread: Some(t), ..
        } => Wake::Thread(t),
        _ => Wake::Nobody,
    }
}

fn wake_all(wake: Vec<Wake>) {
    for w in wake {
        match w {
            Wake::Task(w) => w.wake(),
            Wake::Thread(t) => t.unpark(),
            Wake::Nobody => {}
        }
    }
}

#[cfg(all(test, zeropool_loom))]
mod loom_tests {
    use super::*;
    use loom::thread;

    /// A waiter queued while another thread discharges is served exactly
    /// once, and the charge ends exact.
    #[test]
    fn discharge_serves_a_racing_waiter() {
        loom::model(|| {
            let gate = Arc::new(Gate::new(10));
            assert!(gate.try_charge(10));
            let g = gate.clone();
            let t = thread::spawn(move || g.discharge(10));
            let outcome = match gate.charge_or_enqueue(10, None, None) {
                Ok(()) => Outcome::Granted,
                Err(w) => {
                    t.join().unwrap();
                    return assert_eq!(w.decided(), Some(Outcome::Granted));
                }
            };
            t.join().unwrap();
            assert_eq!(outcome, Outcome::Granted);
            assert_eq!(gate.charged(), 10);
            assert_eq!(gate.waiting(), 0);
        });
    }

    /// Cancelling while a discharge grants: either the waiter was served
    /// (and the caller gives the bytes back) or it was dequeued; the charge
    /// ends at zero either way.
    #[test]
    fn cancel_racing_a_grant_loses_nothing() {
        loom::model(|| {
            let gate = Arc::new(Gate::new(10));
            assert!(gate.try_charge(10));
            let waiter = gate.charge_or_enqueue(10, None, None).unwrap_err();
            let g = gate.clone();
            let t = thread::spawn(move || g.discharge(10));
            if gate.cancel(&waiter) == Outcome::Granted {
                gate.discharge(10);
            }
            t.join().unwrap();
            assert_eq!(gate.charged(), 0);
            assert_eq!(gate.waiting(), 0);
        });
    }
}

#[cfg(all(test, not(zeropool_loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_head_blocks_smaller_requests_behind_it() {
        let gate = Gate::new(100);
        assert!(gate.try_charge(60));
        let big = gate.charge_or_enqueue(80, None, None).unwrap_err();
        // 40 would fit, but the big request is queued first.
        assert!(!gate.try_charge(40));
        let small = gate.charge_or_enqueue(40, None, None).unwrap_err();
        gate.discharge(60);
        assert_eq!(big.decided(), Some(Outcome::Granted));
        assert_eq!(small.decided(), None);
        gate.discharge(80);
        assert_eq!(small.decided(), Some(Outcome::Granted));
        assert_eq!(gate.charged(), 40);
    }

    #[test]
    fn lowering_the_cap_refuses_waiters_that_can_never_fit() {
        let gate = Gate::new(100);
        assert!(gate.try_charge(100));
        let w = gate.charge_or_enqueue(90, None, None).unwrap_err();
        gate.set_cap(50);
        assert_eq!(w.decided(), Some(Outcome::Refused));
        assert_eq!(gate.waiting(), 0);
    }

    #[test]
    fn timed_out_wait_leaves_the_queue_clean() {
        let gate = Gate::new(10);
        assert!(gate.try_charge(10));
        let w = gate
            .charge_or_enqueue(5, None, Some(std::thread::current()))
            .unwrap_err();
        let outcome = gate.wait(&w, Some(Instant::now() + Duration::from_millis(5)));
        assert_eq!(outcome, Outcome::TimedOut);
        assert_eq!(gate.waiting(), 0);
        gate.discharge(10);
        assert_eq!(gate.charged(), 0);
    }
}
