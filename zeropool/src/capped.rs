//! Gets under the outstanding-memory cap: `try_get`, `get_timeout`, and
//! what `get` does when a request does not fit (the `on_exhausted` policy).
//!
//! ```text
//! get(n) ── no cap? ──► the ordinary path (one load and a compare more)
//!   │ cap
//!   ▼
//! charge = size class of n (or n if oversize) ── fits and nobody waits? ──► get, charged
//!   │ no
//!   ├─ policy `wait` and charge <= cap ─► queue, park the thread until served
//!   └─ policy `allocate`, `error`, or charge > cap (it could never fit)
//!        ─► get anyway, charged past the cap (an overshoot, counted)
//! try_get(n)           ─► Err(Exhausted) instead of waiting or overshooting
//! get_timeout(n, d)    ─► waits at most d, then Err(Exhausted)
//! ```
//! What is charged is the object's size class (its capacity if it belongs
//! to no class: oversize requests, undersized objects); a guard gives it
//! back when dropped. Charging the class, not the capacity, is what keeps
//! the cap hard: an idle object larger than its class (one that grew while
//! out, or a bigger buffer given with `put`) would otherwise push a get that
//! fits past the cap. The capacity in use can thus exceed the charge by
//! less than one class step (under 19% with the default classes; up to 2x
//! in the largest class); `bytes_outstanding` reports it exactly. An object
//! detached with `into_inner` stays charged until it is given back with
//! `put`, or the pool is told it is gone ([`Pool::forget_detached`]). A
//! `put` gives back up to the object's capacity of the detached charge (its
//! ticket, hence its exact charge, is gone): never less than it was charged,
//! so no charge is stranded.

use crate::config::OnExhausted;
use crate::gate::{Exhausted, Outcome, NO_CAP};
use crate::pool::{Inner, Ticket};
use crate::sync::Ordering;
use crate::{Pool, PoolGuard, Poolable};
use std::time::{Duration, Instant};

impl<T: Poolable> Inner<T> {
    /// The policy for gets that do not fit under the cap.
    pub(crate) fn on_exhausted(&self) -> OnExhausted {
        OnExhausted::from_index(self.on_exhausted.load(Ordering::Relaxed))
    }

    /// What a request of `n` bytes is charged before its object is known:
    /// its size class, or `n` itself if it is oversize.
    #[inline]
    pub(crate) fn expected_charge(&self, n: usize) -> usize {
        self.classes
            .for_request(n)
            .map_or(n, |class| self.classes.size(class))
    }

    /// What a loan is charged against the cap: its class's size, or its
    /// capacity when it belongs to no class (see the module docs).
    #[inline]
    pub(crate) fn charge_of(&self, ticket: &Ticket) -> usize {
        if ticket.class < Ticket::UNDERSIZE {
            self.classes.size(ticket.class as usize)
        } else {
            ticket.bytes
        }
    }

    /// Moves a request's charge, `expected`, onto its loan's ticket,
    /// correcting it to what the loan is charged (`charge_of`).
    pub(crate) fn settle_charge(&self, expected: usize, ticket: &mut Ticket) {
        let charge = self.charge_of(ticket);
        if charge > expected {
            self.gate.force_charge(charge - expected);
        } else {
            self.gate.discharge(expected - charge);
        }
        ticket.charged = true;
    }

    /// Gets an object once `expected` bytes are charged for it, correcting
    /// the charge to what the object is charged. If getting the object
    /// panics (a panicking constructor), the charge is given back.
    pub(crate) fn acquire_charged(&self, n: usize, expected: usize) -> (T, Ticket) {
        struct Refund<'a>(&'a crate::gate::Gate, usize);
        impl Drop for Refund<'_> {
            fn drop(&mut self) {
                self.0.discharge(self.1);
            }
        }
        let refund = Refund(&self.gate, expected);
        let (obj, mut ticket) = self.acquire_uncapped(n);
        std::mem::forget(refund);
        self.settle_charge(expected, &mut ticket);
        (obj, ticket)
    }

    /// `get` under a cap: by the `on_exhausted` policy.
    #[cold]
    #[inline(never)]
    pub(crate) fn acquire_capped(&self, n: usize) -> (T, Ticket) {
        let expected = self.expected_charge(n);
        if self.gate.try_charge(expected) {
            return self.acquire_charged(n, expected);
        }
        if self.on_exhausted() == OnExhausted::Error {
            self.refuse("get", expected);
        }
        if self.on_exhausted() == OnExhausted::Wait && expected <= self.gate.cap() {
            let charged =
                match self
                    .gate
                    .charge_or_enqueue(expected, None, Some(std::thread::current()))
                {
                    Ok(()) => true,
                    Err(waiter) => self.gate.wait(&waiter, None) == Outcome::Granted,
                };
            if charged {
                return self.acquire_charged(n, expected);
            }
            if self.on_exhausted() == OnExhausted::Error {
                // The policy became `error` while it waited.
                self.refuse("get", expected);
            }
        }
        // `allocate`, a request larger than the cap, or a cap lowered below
        // it while it waited: overshoot.
        self.gate.force_charge(expected);
        self.acquire_charged(n, expected)
    }

    /// A get that cannot return an error, past the cap under
    /// `on_exhausted = "error"`: counted in `exhausted_errors`, then a panic
    /// naming the cap and what to call instead. Nothing was charged.
    #[cold]
    #[inline(never)]
    pub(crate) fn refuse(&self, what: &str, bytes: usize) -> ! {
        let err = self.gate.exhausted(bytes);
        panic!(
            "zeropool: {what} refused under on_exhausted = \"error\": {err}; \
             use try_get or get_timeout where the cap may be reached"
        )
    }

    /// Charges a whole batch (`requests`, totalling `total` bytes) by the
    /// policy: waits, as one request, under `wait` if the total can ever
    /// fit; under `error`, refuses (a panic); else overshoots, counting each
    /// request that went past the cap.
    pub(crate) fn charge_batch(&self, requests: &[usize], total: usize) {
        if self.gate.try_charge(total) {
            return;
        }
        if self.on_exhausted() == OnExhausted::Error {
            self.refuse("get_batch", total);
        }
        if self.on_exhausted() == OnExhausted::Wait && total <= self.gate.cap() {
            let charged =
                match self
                    .gate
                    .charge_or_enqueue(total, None, Some(std::thread::current()))
                {
                    Ok(()) => true,
                    Err(waiter) => self.gate.wait(&waiter, None) == Outcome::Granted,
                };
            if charged {
                return;
            }
            if self.on_exhausted() == OnExhausted::Error {
                self.refuse("get_batch", total);
            }
        }
        self.gate.force_charge_all(requests);
    }

    /// Charges a request of `n` bytes, waiting until `deadline` (or not at
    /// all), whatever the policy.
    pub(crate) fn charge_until(
        &self,
        n: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, Exhausted> {
        let expected = self.expected_charge(n);
        if self.gate.try_charge(expected) {
            return Ok(expected);
        }
        if expected > self.gate.cap() || deadline.is_none() {
            return Err(self.gate.exhausted(expected));
        }
        let waiter = match self
            .gate
            .charge_or_enqueue(expected, None, Some(std::thread::current()))
        {
            Ok(()) => return Ok(expected),
            Err(waiter) => waiter,
        };
        match self.gate.wait(&waiter, deadline) {
            Outcome::Granted => Ok(expected),
            Outcome::Refused | Outcome::TimedOut => Err(self.gate.exhausted(expected)),
        }
    }
}

impl<T: Poolable> Pool<T> {
    /// Like [`get`](Self::get), but fails at once with [`Exhausted`] when the
    /// request does not fit under `max_outstanding_memory` (or others are
    /// waiting for room), whatever `on_exhausted` says. Without a cap it
    /// never fails.
    ///
    /// ```
    /// use zeropool::BufferPool;
    ///
    /// let pool = BufferPool::builder().size_classes(&[1024]).max_outstanding_memory(2048).build()?;
    /// let a = pool.try_get(1000).unwrap();
    /// let b = pool.try_get(1000).unwrap();
    /// assert!(pool.try_get(1000).is_err());
    /// drop((a, b));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[track_caller]
    pub fn try_get(&self, n: usize) -> Result<PoolGuard<'_, T>, Exhausted> {
        self.get_within(n, None)
    }

    /// Like [`try_get`](Self::try_get), but waits up to `timeout` for room
    /// (in line with other waiters, first come first served).
    ///
    /// ```
    /// use std::time::Duration;
    /// use zeropool::BufferPool;
    ///
    /// let pool = BufferPool::builder().size_classes(&[1024]).max_outstanding_memory(1024).build()?;
    /// let held = pool.get(1024);
    /// let err = pool.get_timeout(1024, Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.cap, 1024);
    /// drop(held);
    /// assert!(pool.get_timeout(1024, Duration::from_millis(10)).is_ok());
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[track_caller]
    pub fn get_timeout(&self, n: usize, timeout: Duration) -> Result<PoolGuard<'_, T>, Exhausted> {
        self.get_within(n, Some(Instant::now() + timeout))
    }

    #[track_caller]
    fn get_within(
        &self,
        n: usize,
        deadline: Option<Instant>,
    ) -> Result<PoolGuard<'_, T>, Exhausted> {
        let inner = &*self.inner;
        if inner.gate.cap() == NO_CAP {
            return Ok(self.get(n));
        }
        let expected = inner.charge_until(n, deadline)?;
        Ok(PoolGuard::new(inner, inner.acquire_charged(n, expected)))
    }

    /// Does nothing and returns 0: detaching (`into_inner`, `into_bytes`,
    /// `Vec::from(guard)`) now ends the loan and gives its charge back at
    /// once, so no detached object holds a charge to forget.
    ///
    /// ```
    /// use zeropool::BufferPool;
    ///
    /// let pool = BufferPool::builder().size_classes(&[1024]).max_outstanding_memory(1024).build()?;
    /// let v = pool.get(1024).into_inner();
    /// assert!(pool.try_get(1024).is_ok()); // the detached buffer is not charged
    /// # #[allow(deprecated)]
    /// assert_eq!(pool.forget_detached(1024), 0);
    /// # drop(v);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[deprecated(
        since = "0.1.0",
        note = "detaching ends the loan: a detached object holds no charge to forget"
    )]
    pub fn forget_detached(&self, bytes: usize) -> usize {
        let _ = bytes;
        0
    }

    /// Bytes charged against `max_outstanding_memory` right now: what live
    /// guards hold, plus grants to woken waiters that have not run yet.
    /// Detaching a guard (`into_inner`, `into_bytes`, `Vec::from`) ends its
    /// loan and gives its charge back at once.
    ///
    /// ```
    /// use zeropool::BufferPool;
    ///
    /// let pool = BufferPool::builder().size_classes(&[1024, 4096]).max_outstanding_memory(1 << 20).build()?;
    /// let a = pool.get(1000);                     // charged its class: 1024
    /// let b = pool.get(4096).into_inner();        // detached: the loan ends
    /// assert_eq!(pool.charged_bytes(), 1024);
    /// drop(a);
    /// pool.put(b);                                // a new object for the pool
    /// assert_eq!(pool.charged_bytes(), 0);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn charged_bytes(&self) -> usize {
        self.inner.gate.charged()
    }
}
