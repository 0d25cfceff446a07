//! One pool under test for one phase: the pool, its plan, and what the
//! soak itself counted (to compare with the pool's statistics when the
//! phase ends).

use crate::plan::{charge_of, PoolPlan};
use crate::subject::Subject;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use zeropool::Pool;

/// What the holders counted. Each thread or task keeps its own and adds it
/// to the unit's when it ends.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Calls on the pool's API.
    pub ops: u64,
    /// Objects handed out (each guard counts one).
    pub gets: usize,
    /// Of those, for requests larger than the largest class.
    pub oversize_gets: usize,
    /// Objects the pool took with `put`/`put_batch` (reset or not).
    pub adopted: usize,
    /// Guards turned into objects with `into_inner`.
    pub detached: usize,
    /// Deliberate reset panics caught.
    pub reset_panics: usize,
    /// `try_get`/`get_timeout` errors.
    pub exhausted: usize,
    /// Reloads refused as expected.
    pub bad_reloads: usize,
    /// Reloads applied.
    pub reloads: usize,
    /// Async gets cancelled (timeout, `select!`, dropped futures).
    pub cancelled: usize,
    /// Guards moved to another thread or task.
    pub sent: usize,
    /// Detached objects dropped by the program, never given back.
    pub dropped_detached: usize,
}

impl Tally {
    pub fn merge(&mut self, o: &Tally) {
        self.ops += o.ops;
        self.gets += o.gets;
        self.oversize_gets += o.oversize_gets;
        self.adopted += o.adopted;
        self.detached += o.detached;
        self.reset_panics += o.reset_panics;
        self.exhausted += o.exhausted;
        self.bad_reloads += o.bad_reloads;
        self.reloads += o.reloads;
        self.cancelled += o.cancelled;
        self.sent += o.sent;
        self.dropped_detached += o.dropped_detached;
    }
}

/// A pool under test.
#[derive(Debug)]
pub struct Unit<T: Subject> {
    pub pool: Pool<T>,
    pub plan: PoolPlan,
    /// The pool's classes.
    pub classes: Vec<usize>,
    /// The highest budget in force at any time this phase (raised before
    /// any change takes effect): idle bytes can never be above it.
    pub ceiling: AtomicUsize,
    /// Counts of every thread and task that has ended.
    pub tally: Mutex<Tally>,
    /// What the monitor saw.
    pub marks: crate::monitor::Marks,
}

impl<T: Subject> Unit<T> {
    pub fn new(plan: PoolPlan) -> Self {
        let pool = plan.build::<T>();
        let classes = pool.size_classes().to_vec();
        Unit {
            ceiling: AtomicUsize::new(pool.max_total_memory()),
            pool,
            plan,
            classes,
            tally: Mutex::new(Tally::default()),
            marks: Default::default(),
        }
    }

    /// The largest class.
    pub fn max_class(&self) -> usize {
        self.classes[self.classes.len() - 1]
    }

    /// The cap every request must fit, under a strict plan.
    pub fn fit(&self) -> Option<usize> {
        if self.plan.strict() {
            self.plan.cap
        } else {
            None
        }
    }

    /// What a request of `n` bytes is charged under the cap.
    pub fn charge(&self, n: usize) -> usize {
        charge_of(&self.classes, n)
    }

    /// Raises the ceiling before the budget may become `bytes`.
    pub fn raise_ceiling(&self, bytes: usize) {
        self.ceiling.fetch_max(bytes, Ordering::SeqCst);
    }

    /// Adds a thread's or task's counts.
    pub fn add(&self, t: &Tally) {
        crate::report::add_ops(t.ops);
        self.tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(t);
    }

    /// The counts so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
