//! The return path: reset, route by real capacity, keep within the budget.
//!
//! ```text
//! release(obj, ticket) ─ oversize ticket? ─► free (counted)
//!   └─ clean: wipe? + reset + measure (capacity_bytes, class_bytes), all the
//!      user code of a return, with no borrow or lock held (a panic: drop,
//!      count, continue unwinding)
//!      └─ class: the ticket's if the capacity is unchanged, else route it
//!         (below the smallest class / far above the largest: free, counted)
//!         └─ this thread's cache: room and credit? push (no lock, no RMW)
//!            └─ slow: catch_up; full? spill the oldest batch to the home
//!               shard; short of credit? reserve from the budget; no budget:
//!               free (a discard)
//! ```

use crate::idle_object::{Doomed, Idle};
use crate::pool::{recorded_bytes, Inner, Origin, Ticket};
use crate::size_class::Route;
use crate::stats::Ev;
use crate::sync::Ordering;
use crate::thread_cache::{LocalCache, Slot};
use crate::Poolable;
use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};

/// A panic caught from `reset`, to be resumed once the object is dropped
/// (`None` when the thread was already unwinding and it must be swallowed).
pub(crate) type ResetPanic = Option<Box<dyn Any + Send>>;

/// A clean object's measurements, taken once on its way back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// `capacity_bytes`: what the pool records and the budget counts.
    pub(crate) bytes: usize,
    /// `class_bytes`: what routes it to a class.
    pub(crate) class_bytes: usize,
}

impl<T: Poolable> Inner<T> {
    /// Takes back the object a guard held, in place.
    ///
    /// # Safety
    /// `obj` must hold a live object; it is moved out or dropped here, so the
    /// caller must neither use nor drop it afterwards.
    ///
    /// Out of line, and with every rare case (a charge to give back, a
    /// tracked guard, an unpooled object) behind one test: measured, calls
    /// on the common path cost it a fifth of its speed through spills.
    #[inline(never)]
    pub(crate) unsafe fn release(&self, obj: &mut ManuallyDrop<T>, ticket: Ticket) {
        if ticket.charged | (ticket.track != 0) | (ticket.class >= Ticket::UNDERSIZE) {
            // SAFETY: forwarded from the caller.
            return unsafe { self.release_rare(obj, ticket) };
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.recycle_in_place(obj, Origin::Returned(ticket)) }
    }

    /// [`release`](Self::release) of a charged, tracked or unpooled guard.
    ///
    /// # Safety
    /// As for `release`.
    #[cold]
    #[inline(never)]
    unsafe fn release_rare(&self, obj: &mut ManuallyDrop<T>, ticket: Ticket) {
        if ticket.charged {
            self.gate.discharge(self.charge_of(&ticket));
        }
        if ticket.track != 0 {
            self.untrack(ticket.track);
        }
        if ticket.class >= Ticket::UNDERSIZE {
            // SAFETY: the caller hands over `obj`; it is taken exactly once.
            return self.free_unpooled(unsafe { ManuallyDrop::take(obj) }, ticket);
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.recycle_in_place(obj, Origin::Returned(ticket)) }
    }

    /// Frees an object handed out for an oversize request, or one that
    /// could not serve its class.
    #[cold]
    fn free_unpooled(&self, obj: T, ticket: Ticket) {
        let slot = self.local();
        self.count_origin(slot, Origin::Returned(ticket));
        let reason = if ticket.class == Ticket::OVERSIZE {
            Ev::Oversize
        } else {
            Ev::Undersize
        };
        self.count_freed(slot, reason, 1, ticket.bytes);
        let mut doomed = Doomed::new();
        doomed.push_obj(obj, ticket.bytes);
        self.free(slot, doomed);
    }

    /// Accounts a guard turned into a plain object: the loan ends, so a
    /// charged one gives its charge back to the cap at once (waiters that
    /// now fit are woken). Given back later with `put`, it is a new object.
    pub(crate) fn detach(&self, ticket: Ticket) {
        if ticket.charged {
            self.gate.discharge(self.charge_of(&ticket));
        }
        if ticket.track != 0 {
            self.untrack(ticket.track);
        }
        let slot = self.local();
        self.count(slot, Ev::Detached, 1);
        self.budget.care_out(1, ticket.bytes);
    }

    /// Wipes, resets and measures `obj`: all the user code of a return, run
    /// with no borrow or lock held. If any of it panics, the return is
    /// counted as a reset panic and the panic comes back as `Err`: the
    /// caller frees the object, then resumes the panic if there is one
    /// (there is none when the thread was already unwinding, where a second
    /// panic would abort).
    #[inline(always)]
    pub(crate) fn clean(&self, obj: &mut T, origin: Origin) -> Result<Measured, ResetPanic> {
        let wipe = self.fixed.wipe_on_return;
        let mut run = || {
            if wipe {
                obj.wipe();
            }
            obj.reset();
            Measured {
                bytes: obj.capacity_bytes(),
                class_bytes: obj.class_bytes(),
            }
        };
        if T::RESET_NEVER_PANICS {
            return Ok(run());
        }
        let payload = match panic::catch_unwind(AssertUnwindSafe(run)) {
            Ok(measured) => return Ok(measured),
            Err(payload) => payload,
        };
        let slot = self.local();
        self.count_origin(slot, origin);
        self.count_freed(slot, Ev::ResetPanics, 1, recorded_bytes(origin));
        Err((!std::thread::panicking()).then_some(payload))
    }

    /// Frees an object whose `clean` panicked, then continues the panic.
    #[cold]
    #[inline(never)]
    pub(crate) fn free_after_panic(&self, obj: T, panic: ResetPanic) {
        let mut doomed = Doomed::new();
        doomed.push_obj(obj, 0);
        self.free(self.local(), doomed);
        resume(panic);
    }

    /// The class a clean object goes to, or `None` after freeing-accounting
    /// one no class keeps.
    #[inline(always)]
    pub(crate) fn route(
        &self,
        slot: Option<&Slot<T>>,
        measured: Measured,
        origin: Origin,
    ) -> Option<usize> {
        if let Origin::Returned(ticket) = origin {
            if ticket.bytes == measured.bytes {
                return Some(ticket.class as usize);
            }
        }
        self.route_by_capacity(slot, measured, origin)
    }

    /// Routes an object whose capacity the pool has not seen (adopted, or
    /// changed while handed out).
    #[inline(never)]
    fn route_by_capacity(
        &self,
        slot: Option<&Slot<T>>,
        measured: Measured,
        origin: Origin,
    ) -> Option<usize> {
        let reason = match self.classes.for_capacity(measured.class_bytes) {
            Route::Class(class) => {
                self.count_entry(origin, measured.bytes);
                return Some(class);
            }
            Route::Undersize => Ev::Undersize,
            Route::Oversize => Ev::Oversize,
        };
        self.count_origin(slot, origin);
        self.count_freed(slot, reason, 1, recorded_bytes(origin));
        None
    }

    /// Takes back an object given by value (`put`).
    #[inline]
    pub(crate) fn recycle(&self, obj: T, origin: Origin) {
        let mut obj = ManuallyDrop::new(obj);
        // SAFETY: `obj` is a live object we own and never touch again.
        unsafe { self.recycle_in_place(&mut obj, origin) }
    }

    /// Takes back an object: reset, then keep it idle if the budget allows.
    /// Works in place so the object is moved once, into the cache.
    ///
    /// # Safety
    /// As for [`release`](Self::release): `obj` is consumed.
    #[inline(always)]
    unsafe fn recycle_in_place(&self, obj: &mut ManuallyDrop<T>, origin: Origin) {
        let measured = match self.clean(obj, origin) {
            Ok(measured) => measured,
            Err(panic) => {
                // SAFETY: consumed here, once (the caller's contract).
                let obj = unsafe { ManuallyDrop::take(obj) };
                return self.free_after_panic(obj, panic);
            }
        };
        let slot = self.local();
        let bytes = measured.bytes;
        let Some(class) = self.route(slot, measured, origin) else {
            let mut doomed = Doomed::new();
            // SAFETY: consumed here, once.
            doomed.push_obj(unsafe { ManuallyDrop::take(obj) }, bytes);
            return self.free(slot, doomed);
        };
        // SAFETY: consumed here, once; every path below owns it.
        let obj = unsafe { ManuallyDrop::take(obj) };
        let Some(slot) = slot else {
            return self.recycle_unlocal(obj, class, bytes, origin);
        };
        {
            // SAFETY: owner thread; no user code runs while `cache` lives
            // (the object was measured above).
            let cache = unsafe { slot.cache_mut() };
            if self.current(cache)
                && home_node(origin, cache.node) == cache.node
                && cache.stacks[class].len() < cache.limit
                && bytes <= cache.credit - cache.cached
            {
                cache.push(class, Idle::new(obj, bytes));
                slot.publish(cache);
                self.count_origin(Some(slot), origin);
                return;
            }
        }
        self.recycle_slow(slot, obj, class, bytes, origin);
    }

    #[cold]
    #[inline(never)]
    fn recycle_slow(&self, slot: &Slot<T>, obj: T, class: usize, bytes: usize, origin: Origin) {
        let mut doomed = Doomed::new();
        self.catch_up(slot, &mut doomed);
        let kept = {
            // SAFETY: owner thread; no user code runs while `cache` lives
            // (objects move with their recorded bytes; `doomed` is freed
            // after the borrow ends).
            let cache = unsafe { slot.cache_mut() };
            self.follow_thread(slot, cache);
            let node = home_node(origin, cache.node);
            let idle = Idle::new(obj, bytes);
            if self.numa.active && node != cache.node {
                self.return_remote(slot, cache, idle, class, node)
            } else {
                self.cache_or_reject(slot, cache, class, idle)
            }
            .map_err(|idle| doomed.push(idle))
        };
        self.count_origin(Some(slot), origin);
        if kept.is_err() {
            self.count_freed(Some(slot), Ev::Discards, 1, bytes);
            crate::trace::event!(debug, bytes, "object freed: the idle budget is full");
        }
        self.free(Some(slot), doomed);
    }

    /// Puts `obj` in the thread cache, spilling a batch to the home shard if
    /// its stack is full and reserving credit if needed; gives it back when
    /// the budget has no room.
    pub(crate) fn cache_or_reject(
        &self,
        slot: &Slot<T>,
        cache: &mut LocalCache<T>,
        class: usize,
        idle: Idle<T>,
    ) -> Result<(), Idle<T>> {
        let bytes = idle.bytes;
        let limit = cache.limit.max(1);
        if cache.stacks[class].len() >= limit {
            let batch = self.batch_size.load(Ordering::Relaxed).clamp(1, limit);
            self.spill(slot, cache, class, batch);
        }
        let need = bytes.saturating_sub(cache.credit - cache.cached);
        if need > 0 && !self.reserve_credit(cache, need) {
            return Err(idle);
        }
        let stack = &mut cache.stacks[class];
        if stack.capacity() < limit {
            // Once per class and thread: later pushes never allocate.
            stack.reserve_exact(limit - stack.len());
        }
        cache.push(class, idle);
        slot.publish(cache);
        Ok(())
    }

    /// The return path for a thread whose local table is gone.
    #[cold]
    fn recycle_unlocal(&self, obj: T, class: usize, bytes: usize, origin: Origin) {
        self.count_origin(None, origin);
        if self.budget.try_reserve(bytes) {
            let shard = self.numa.map.home_shard(home_node(origin, 0), 0);
            self.shards[shard].lock().push(class, Idle::new(obj, bytes));
        } else {
            self.count_freed(None, Ev::Discards, 1, bytes);
            let mut doomed = Doomed::new();
            doomed.push_obj(obj, bytes);
            self.free(None, doomed);
        }
    }

    /// Moves the `batch` oldest objects of `class` to the home shard; their
    /// bytes move from this cache's credit to the shard's share.
    fn spill(&self, slot: &Slot<T>, cache: &mut LocalCache<T>, class: usize, batch: usize) {
        let stack = &mut cache.stacks[class];
        let n = batch.min(stack.len());
        let bytes = self.shards[cache.home]
            .lock()
            .push_run(class, stack.drain(..n));
        cache.cached -= bytes;
        cache.objects -= n;
        cache.credit -= bytes;
        slot.publish(cache);
    }

    /// Reserves at least `need` more bytes of credit (a chunk more if the
    /// budget has room).
    pub(crate) fn reserve_credit(&self, cache: &mut LocalCache<T>, need: usize) -> bool {
        let extra = need.saturating_add(self.chunk());
        if self.budget.try_reserve(extra) {
            cache.credit += extra;
            true
        } else if self.budget.try_reserve(need) {
            cache.credit += need;
            true
        } else {
            false
        }
    }
}

/// Continues a panic caught from `reset`, if it is to be continued.
#[cold]
pub(crate) fn resume(panic: ResetPanic) {
    if let Some(payload) = panic {
        panic::resume_unwind(payload);
    }
}

/// The home node of an object coming back: its ticket's, or (adopted, so
/// unknown) the node it comes back on.
#[inline(always)]
fn home_node(origin: Origin, here: usize) -> usize {
    match origin {
        Origin::Returned(ticket) => ticket.node as usize,
        Origin::Adopted => here,
    }
}

impl<T: Poolable> Inner<T> {
    #[cold]
    fn untrack(&self, id: u32) {
        if let Some(tracker) = &self.tracker {
            tracker.remove(id);
        }
    }

    /// Records a guard of `bytes` taken at `at` in the outstanding report
    /// (if on); returns its id for the ticket (0: not tracked).
    #[cold]
    pub(crate) fn track(&self, at: &'static std::panic::Location<'static>, bytes: usize) -> u32 {
        self.tracker.as_ref().map_or(0, |t| t.insert(at, bytes))
    }
}
