//! A holder: what one thread or task holds of one pool (guards, owned
//! guards, detached objects), and every way it gives them back. Each object
//! is checked by its canary on the way in and on the way out, and every
//! return that can run `reset` is caught (see `panics`).

use crate::canary::{self, Stamp};
use crate::panics::{self, Caught};
use crate::report;
use crate::rng::Rng;
use crate::subject::Subject;
use crate::unit::{Tally, Unit};
use zeropool::{OwnedPoolGuard, PoolGuard};

/// A guard, borrowed or owned.
#[derive(Debug)]
pub enum Loan<'a, T: Subject> {
    Guard(PoolGuard<'a, T>),
    Owned(OwnedPoolGuard<T>),
}

impl<T: Subject> Loan<'_, T> {
    fn obj(&self) -> &T {
        match self {
            Loan::Guard(g) => g,
            Loan::Owned(g) => g,
        }
    }

    fn obj_mut(&mut self) -> &mut T {
        match self {
            Loan::Guard(g) => g,
            Loan::Owned(g) => g,
        }
    }

    fn into_inner(self) -> T {
        match self {
            Loan::Guard(g) => g.into_inner(),
            Loan::Owned(g) => g.into_inner(),
        }
    }
}

/// A guard held, with its canary.
#[derive(Debug)]
pub struct Held<'a, T: Subject> {
    pub loan: Loan<'a, T>,
    pub stamp: Stamp,
}

/// An object detached with `into_inner`, still under its holder's canary.
#[derive(Debug)]
pub struct Detached<T> {
    pub obj: T,
    pub stamp: Stamp,
}

/// Reports a panic that was not a deliberate reset panic.
pub fn unexpected(name: &str, during: &str, msg: &str) {
    report::violation(name, format!("unexpected panic during {during}: {msg}"));
}

/// Counts how a return that may run `reset` ended.
pub fn count_caught<T: Subject>(tally: &mut Tally, during: &str, caught: Caught) {
    match caught {
        Caught::Clean => {}
        Caught::ResetPanic => tally.reset_panics += 1,
        Caught::Unexpected(msg) => unexpected(T::NAME, during, &msg),
    }
}

/// Checks an owned guard's canary, maybe poisons it, and drops it (a
/// deliberate reset panic is caught and counted). For guards that travelled
/// to another thread or task.
pub fn drop_owned<T: Subject>(
    mut g: OwnedPoolGuard<T>,
    stamp: &Stamp,
    poison_percent: usize,
    rng: &mut Rng,
    tally: &mut Tally,
) {
    canary::release(&*g, stamp);
    if T::POISONABLE && rng.chance(poison_percent) {
        g.poison();
    }
    count_caught::<T>(tally, "an owned guard's drop", panics::catch(|| drop(g)));
}

/// What one thread or task holds of one pool.
#[derive(Debug)]
pub struct Holder<'a, T: Subject> {
    pub unit: &'a Unit<T>,
    pub held: Vec<Held<'a, T>>,
    pub detached: Vec<Detached<T>>,
    pub tally: Tally,
}

impl<'a, T: Subject> Holder<'a, T> {
    pub fn new(unit: &'a Unit<T>) -> Self {
        Holder {
            unit,
            held: Vec::new(),
            detached: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Checks and stamps an object just handed out for `n` bytes, and
    /// counts the get. Returns its stamp.
    pub fn stamp_new(&mut self, obj: &mut T, n: usize, zeroed: bool, rng: &mut Rng) -> Stamp {
        self.tally.gets += 1;
        if n > self.unit.max_class() {
            self.tally.oversize_gets += 1;
        }
        canary::acquire(obj, n, zeroed, rng)
    }

    /// Keeps a guard just handed out for `n` bytes.
    pub fn keep(&mut self, mut loan: Loan<'a, T>, n: usize, zeroed: bool, rng: &mut Rng) {
        let stamp = self.stamp_new(loan.obj_mut(), n, zeroed, rng);
        self.held.push(Held { loan, stamp });
    }

    fn poison_maybe(&self, obj: &mut T, rng: &mut Rng) {
        if T::POISONABLE && rng.chance(self.unit.plan.poison_percent) {
            obj.poison();
        }
    }

    /// Gives back the guard at `i` (dropping it), checking its canary.
    pub fn release(&mut self, i: usize, rng: &mut Rng) {
        let Held { mut loan, stamp } = self.held.swap_remove(i);
        canary::release(loan.obj(), &stamp);
        self.poison_maybe(loan.obj_mut(), rng);
        self.tally.ops += 1;
        count_caught::<T>(
            &mut self.tally,
            "a guard's drop",
            panics::catch(|| drop(loan)),
        );
    }

    /// Turns the guard at `i` into a plain object (`into_inner`).
    pub fn detach(&mut self, i: usize) {
        let Held { loan, stamp } = self.held.swap_remove(i);
        let obj = loan.into_inner();
        self.tally.ops += 1;
        self.tally.detached += 1;
        self.detached.push(Detached { obj, stamp });
    }

    /// Gives the detached object at `i` back with `put`.
    pub fn put_detached(&mut self, i: usize, rng: &mut Rng) {
        let Detached { mut obj, stamp } = self.detached.swap_remove(i);
        canary::release(&obj, &stamp);
        self.poison_maybe(&mut obj, rng);
        self.put(obj);
    }

    /// `put` of an object no longer under a canary.
    fn put(&mut self, obj: T) {
        self.tally.ops += 1;
        self.tally.adopted += 1;
        let pool = &self.unit.pool;
        count_caught::<T>(&mut self.tally, "put", panics::catch(|| pool.put(obj)));
    }

    /// Drops the detached object at `i` without telling the pool (its
    /// loan, and any charge under a cap, ended when it was detached).
    pub fn drop_detached(&mut self, i: usize) {
        let Detached { obj, stamp } = self.detached.swap_remove(i);
        canary::release(&obj, &stamp);
        drop(obj);
        self.tally.ops += 1;
        self.tally.dropped_detached += 1;
    }

    /// `put` of an object made outside the pool.
    pub fn put_foreign(&mut self, rng: &mut Rng) {
        let cap = crate::plan::foreign_capacity(&self.unit.classes, rng);
        let mut obj = T::foreign(cap);
        self.poison_maybe(&mut obj, rng);
        self.put(obj);
    }

    /// `put_batch` of some detached objects and some foreign ones. Objects
    /// after the first poisoned one are dropped unseen when its reset
    /// panics: only those before it, and it, are adopted.
    pub fn put_batch(&mut self, rng: &mut Rng) {
        let mut objs = Vec::new();
        for _ in 0..rng.range(0, self.detached.len().min(8)) {
            let i = rng.below(self.detached.len());
            let Detached { obj, stamp } = self.detached.swap_remove(i);
            canary::release(&obj, &stamp);
            objs.push(obj);
        }
        for _ in 0..rng.range(0, 4) {
            let cap = crate::plan::foreign_capacity(&self.unit.classes, rng);
            objs.push(T::foreign(cap));
        }
        for obj in &mut objs {
            self.poison_maybe(obj, rng);
        }
        let adopted = objs
            .iter()
            .position(|o| o.poisoned())
            .map_or(objs.len(), |i| i + 1);
        self.tally.ops += 1;
        self.tally.adopted += adopted;
        let pool = &self.unit.pool;
        count_caught::<T>(
            &mut self.tally,
            "put_batch",
            panics::catch(|| pool.put_batch(objs)),
        );
    }

    /// Gives everything back: guards dropped, detached objects put back or
    /// dropped.
    pub fn flush(&mut self, rng: &mut Rng) {
        while !self.held.is_empty() {
            self.release(self.held.len() - 1, rng);
        }
        while !self.detached.is_empty() {
            let i = self.detached.len() - 1;
            match rng.below(3) {
                0 => self.drop_detached(i),
                _ => self.put_detached(i, rng),
            }
        }
    }

    /// Grows a held object (it reallocates) when the plan allows it.
    pub fn grow(&mut self, i: usize, rng: &mut Rng) {
        let h = &mut self.held[i];
        canary::grow(h.loan.obj_mut(), &mut h.stamp, rng);
    }

    /// Adds this holder's counts to its unit (call once, when done).
    pub fn finish(mut self, rng: &mut Rng) {
        self.flush(rng);
        self.unit.add(&self.tally);
    }
}

/// Something that can give back everything it holds.
pub trait Flush {
    fn flush_all(&mut self, rng: &mut Rng);
}

impl<T: Subject> Flush for Holder<'_, T> {
    fn flush_all(&mut self, rng: &mut Rng) {
        self.flush(rng);
    }
}
