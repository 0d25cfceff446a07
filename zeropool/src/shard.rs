//! The shared tier: a shard is one lock over per-class stacks of idle
//! objects.
//!
//! ```text
//!  thread cache --spill batch--> [ shard k: Mutex{ class 0: [..], class 1: [..], .. } ]
//!  thread cache <--refill batch-- (home shard first, then try_lock siblings)
//! ```
//! Every transfer moves a whole run of objects under one lock. Each object
//! travels as an [`Idle`] with the bytes recorded when it entered the pool's
//! care, so nothing here calls into the object (user code) while the lock is
//! held; objects taken out to be freed are dropped by the caller after
//! unlocking. Byte and object totals are mirrored into atomics written under
//! the lock, so `stats()` reads them without taking it. A failed `try_lock`
//! before the blocking `lock` is counted as a contention event.

use crate::idle_object::Idle;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};
use crossbeam_utils::CachePadded;

/// Idle objects of one shard, by class.
#[derive(Debug)]
pub(crate) struct Stacks<T> {
    classes: Vec<Vec<Idle<T>>>,
    bytes: usize,
    /// Per class: the fewest objects the stack held since the last idle
    /// trim. Objects below it sat untouched the whole time.
    low: Vec<usize>,
}

/// One shard: a padded lock over [`Stacks`] with lock-free mirrors of its totals.
#[derive(Debug)]
pub(crate) struct Shard<T> {
    stacks: CachePadded<Mutex<Stacks<T>>>,
    bytes: AtomicUsize,
    class_objects: Box<[AtomicUsize]>,
    contention: AtomicU64,
}

/// The shard's lock, held; publishes the totals when dropped.
pub(crate) struct Locked<'a, T> {
    guard: MutexGuard<'a, Stacks<T>>,
    shard: &'a Shard<T>,
}

impl<T> Shard<T> {
    pub(crate) fn new(classes: usize) -> Self {
        Self {
            stacks: CachePadded::new(Mutex::new(Stacks {
                classes: (0..classes).map(|_| Vec::new()).collect(),
                bytes: 0,
                low: vec![0; classes],
            })),
            bytes: AtomicUsize::new(0),
            class_objects: (0..classes).map(|_| AtomicUsize::new(0)).collect(),
            contention: AtomicU64::new(0),
        }
    }

    /// Takes the lock, counting a contention event if it was held.
    pub(crate) fn lock(&self) -> Locked<'_, T> {
        let guard = match self.stacks.try_lock() {
            Some(g) => g,
            None => {
                self.contention.fetch_add(1, Ordering::Relaxed);
                self.stacks.lock()
            }
        };
        Locked { guard, shard: self }
    }

    /// Takes the lock only if it is free (used when stealing).
    pub(crate) fn try_lock(&self) -> Option<Locked<'_, T>> {
        self.stacks
            .try_lock()
            .map(|guard| Locked { guard, shard: self })
    }

    /// Idle bytes held, as last published.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn class_objects(&self, class: usize) -> usize {
        self.class_objects[class].load(Ordering::Relaxed)
    }

    pub(crate) fn contention_events(&self) -> u64 {
        self.contention.load(Ordering::Relaxed)
    }

    /// Objects of `class` idle here right now (a hint for stealing; racy).
    pub(crate) fn has(&self, class: usize) -> bool {
        self.class_objects[class].load(Ordering::Relaxed) != 0
    }
}

impl<T> Locked<'_, T> {
    /// Pushes an idle object onto `class`.
    pub(crate) fn push(&mut self, class: usize, idle: Idle<T>) {
        let stack = &mut self.guard.classes[class];
        let bytes = idle.bytes;
        stack.push(idle);
        self.shard.class_objects[class].store(stack.len(), Ordering::Relaxed);
        self.guard.bytes += bytes;
    }

    /// Pushes a run of idle objects onto `class` (publishing the count
    /// once); returns the bytes they hold.
    pub(crate) fn push_run(
        &mut self,
        class: usize,
        run: impl IntoIterator<Item = Idle<T>>,
    ) -> usize {
        let stack = &mut self.guard.classes[class];
        let mut bytes = 0;
        for idle in run {
            bytes += idle.bytes;
            stack.push(idle);
        }
        self.shard.class_objects[class].store(stack.len(), Ordering::Relaxed);
        self.guard.bytes += bytes;
        bytes
    }

    /// Pushes idle objects of mixed classes, `(class, object)`, in one pass,
    /// each run of one class (the usual batch is one run) into its stack
    /// with one growth check and one published count; returns the bytes.
    pub(crate) fn push_mixed(&mut self, objs: Vec<(usize, Idle<T>)>) -> usize {
        let stacks = &mut *self.guard;
        let mut bytes = 0;
        let mut rest = objs.into_iter();
        let mut next = rest.next();
        while let Some((class, first)) = next.take() {
            let stack = &mut stacks.classes[class];
            stack.reserve(rest.len() + 1);
            bytes += first.bytes;
            stack.push(first);
            for (c, idle) in rest.by_ref() {
                if c != class {
                    next = Some((c, idle));
                    break;
                }
                bytes += idle.bytes;
                stack.push(idle);
            }
            self.shard.class_objects[class].store(stack.len(), Ordering::Relaxed);
        }
        stacks.bytes += bytes;
        bytes
    }

    /// Pops up to `n` of the most recent objects of `class`, handing each
    /// to `sink` (which must not run user code: the lock is held); returns
    /// how many and their bytes.
    pub(crate) fn pop_run(
        &mut self,
        class: usize,
        n: usize,
        mut sink: impl FnMut(Idle<T>),
    ) -> (usize, usize) {
        let stack = &mut self.guard.classes[class];
        let take = n.min(stack.len());
        let mut bytes = 0;
        for idle in stack.drain(stack.len() - take..).rev() {
            bytes += idle.bytes;
            sink(idle);
        }
        let len = stack.len();
        self.guard.low[class] = self.guard.low[class].min(len);
        self.shard.class_objects[class].store(len, Ordering::Relaxed);
        self.guard.bytes -= bytes;
        (take, bytes)
    }

    /// Pops the most recently pushed object of `class`.
    pub(crate) fn pop(&mut self, class: usize) -> Option<Idle<T>> {
        let stack = &mut self.guard.classes[class];
        let idle = stack.pop()?;
        let len = stack.len();
        self.guard.low[class] = self.guard.low[class].min(len);
        self.shard.class_objects[class].store(len, Ordering::Relaxed);
        self.guard.bytes -= idle.bytes;
        Some(idle)
    }

    /// Objects of `class` held.
    #[cfg(zeropool_loom)]
    pub(crate) fn len(&self, class: usize) -> usize {
        self.guard.classes[class].len()
    }

    /// Removes, per class, the oldest objects that stayed below the stack's
    /// low-water mark since the last call (untouched the whole time), and
    /// starts a new period. Returns them; the caller drops them unlocked.
    pub(crate) fn take_idle(&mut self) -> Vec<Idle<T>> {
        let mut out = Vec::new();
        let stacks = &mut *self.guard;
        for (class, stack) in stacks.classes.iter_mut().enumerate() {
            let idle = stacks.low[class].min(stack.len());
            out.extend(stack.drain(..idle));
            stacks.low[class] = stack.len();
            self.shard.class_objects[class].store(stack.len(), Ordering::Relaxed);
        }
        stacks.bytes -= out.iter().map(|i| i.bytes).sum::<usize>();
        out
    }

    /// Removes every object; the caller drops them after unlocking.
    pub(crate) fn take_all(&mut self) -> Vec<Idle<T>> {
        let mut out = Vec::new();
        self.guard.low.fill(0);
        for (class, stack) in self.guard.classes.iter_mut().enumerate() {
            out.append(stack);
            self.shard.class_objects[class].store(0, Ordering::Relaxed);
        }
        self.guard.bytes = 0;
        out
    }

    /// Pops objects, largest class first, until `bytes` bytes have come out
    /// or the shard is empty. Returns the objects and the bytes they hold.
    pub(crate) fn take_bytes(&mut self, bytes: usize) -> (Vec<Idle<T>>, usize) {
        let mut out = Vec::new();
        let mut taken = 0;
        for class in (0..self.guard.classes.len()).rev() {
            while taken < bytes {
                match self.pop(class) {
                    Some(idle) => {
                        taken += idle.bytes;
                        out.push(idle);
                    }
                    None => break,
                }
            }
        }
        (out, taken)
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        self.shard.bytes.store(self.guard.bytes, Ordering::Relaxed);
    }
}

#[cfg(all(test, zeropool_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two threads push and pop concurrently: every object comes out exactly
    /// once and the byte total ends consistent.
    #[test]
    fn no_object_lost_or_duplicated() {
        loom::model(|| {
            let shard = Arc::new(Shard::<u32>::new(2));
            let handles: Vec<_> = (0..2u32)
                .map(|t| {
                    let s = shard.clone();
                    thread::spawn(move || {
                        s.lock().push(t as usize, Idle::new(t * 10, 8));
                        s.lock().push(0, Idle::new(t * 10 + 1, 8));
                        let mut got = Vec::new();
                        if let Some(idle) = s.lock().pop(0) {
                            got.push(idle.obj);
                        }
                        got
                    })
                })
                .collect();
            let mut seen: Vec<u32> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            let rest = shard.lock().take_all();
            let bytes: usize = rest.iter().map(|i| i.bytes).sum();
            seen.extend(rest.into_iter().map(|i| i.obj));
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 10, 11]);
            assert_eq!(bytes + 2 * 8, 4 * 8);
            assert_eq!(shard.bytes(), 0);
        });
    }

    /// A `try_lock` that fails never blocks and never loses the holder's push.
    #[test]
    fn try_lock_steal_sees_whole_runs() {
        loom::model(|| {
            let shard = Arc::new(Shard::<u32>::new(1));
            let s = shard.clone();
            let t = thread::spawn(move || {
                let mut l = s.lock();
                l.push(0, Idle::new(1, 4));
                l.push(0, Idle::new(2, 4));
            });
            let stolen = shard.try_lock().map(|mut l| {
                let n = l.len(0);
                assert!(n == 0 || n == 2, "a run is moved under one lock");
                l.take_all().len()
            });
            t.join().unwrap();
            let rest = shard.lock().take_all().len();
            assert_eq!(stolen.unwrap_or(0) + rest, 2);
        });
    }
}

#[cfg(all(test, not(zeropool_loom)))]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_pushes_and_pops() {
        let shard = Shard::<Vec<u8>>::new(2);
        {
            let mut l = shard.lock();
            l.push(0, Idle::new(Vec::<u8>::with_capacity(10), 10));
            l.push(1, Idle::new(Vec::with_capacity(20), 20));
            l.push(1, Idle::new(Vec::with_capacity(30), 30));
        }
        assert_eq!(
            (
                shard.bytes(),
                shard.class_objects(0),
                shard.class_objects(1)
            ),
            (60, 1, 2)
        );
        let (objs, bytes) = shard.lock().take_bytes(25);
        assert_eq!(objs.len(), 1);
        assert_eq!(bytes, 30);
        assert_eq!(shard.bytes(), 30);
        assert!(shard.has(0) && shard.has(1));
    }
}
