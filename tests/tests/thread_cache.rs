//! Thread caches: one per pool per thread, handed to a shard on thread exit.

mod common;

use common::assert_consistent;
use std::thread;
use zeropool::{BufferPool, Pool};

#[test]
fn alternating_pools_keep_their_own_thread_cache() {
    const ROUNDS: usize = if cfg!(miri) { 100 } else { 1000 };
    let a = BufferPool::new();
    let b = BufferPool::new();
    let c: Pool<String> = Pool::new();
    let d: Pool<Vec<u64>> = Pool::new();
    for _ in 0..ROUNDS {
        drop(a.get(4096));
        drop(b.get(4096));
        drop(c.get(100));
        drop(d.get(800));
    }
    // Interleaved holds: each pool still serves its own cached object.
    for _ in 0..ROUNDS {
        let ga = a.get(4096);
        let gc = c.get(100);
        let gb = b.get(4096);
        let gd = d.get(800);
        drop(ga);
        drop(gd);
        drop(gb);
        drop(gc);
    }
    let stats = [a.stats(), b.stats(), c.stats(), d.stats()];
    for (name, s) in ["a", "b", "c", "d"].iter().zip(&stats) {
        // One allocation, then every get is a hit in this thread's cache.
        assert_eq!(s.gets, 2 * ROUNDS, "pool {name}: {s}");
        assert_eq!(s.allocations, 1, "pool {name}: {s}");
        assert_eq!(s.tls_hits, 2 * ROUNDS - 1, "pool {name}: {s}");
        assert_eq!(s.shared_hits, 0, "pool {name}: {s}");
        assert_eq!(s.objects_retained, 1, "pool {name}: {s}");
        assert_eq!(s.puts, 2 * ROUNDS, "pool {name}: {s}");
        assert_consistent(s);
    }
}

#[test]
fn a_new_pool_never_sees_a_dropped_pools_cache() {
    // Dropped pools free their slot index for reuse; a later pool, possibly
    // of another type, must start with an empty cache on this thread.
    // (Under Miri each default pool's class tables take seconds: 2 rounds.)
    for round in 0..if cfg!(miri) { 2 } else { 20 } {
        let bytes = BufferPool::new();
        drop(bytes.get(4096));
        assert_eq!(bytes.stats().objects_retained, 1);
        drop(bytes);

        let strings: Pool<String> = Pool::new();
        let s = strings.get(4096);
        assert!(s.is_empty());
        let st = strings.stats();
        assert_eq!(
            (st.gets, st.allocations, st.tls_hits),
            (1, 1, 0),
            "round {round}: {st}"
        );
        drop(s);
        drop(strings);

        let again = BufferPool::new();
        let v = again.get(4096);
        let st = again.stats();
        assert_eq!(
            (st.gets, st.allocations, st.tls_hits),
            (1, 1, 0),
            "round {round}: {st}"
        );
        drop(v);
        assert_eq!(again.stats().objects_retained, 1);
    }
}

#[test]
fn exiting_thread_hands_its_cached_objects_to_a_shard() {
    let pool = BufferPool::builder()
        .shards(1)
        .size_classes(&[4096, 16384])
        .build()
        .unwrap();
    let p = pool.clone();
    thread::spawn(move || {
        let held: Vec<_> = [4096, 4096, 4096, 16384, 16384]
            .iter()
            .map(|&n| p.get(n))
            .collect();
        drop(held);
        let s = p.stats();
        assert_eq!(s.objects_retained, 5, "in this thread's cache: {s}");
    })
    .join()
    .unwrap();

    let s = pool.stats();
    assert_eq!(s.gets, 5, "{s}");
    assert_eq!(s.allocations, 5, "{s}");
    assert_eq!(s.puts, 5, "{s}");
    assert_eq!(
        s.objects_retained, 5,
        "still retained after the thread exited: {s}"
    );
    assert_eq!(s.bytes_retained, 3 * 4096 + 2 * 16384, "{s}");
    // The exited cache's spare credit went back to the budget: only the
    // shard's objects are reserved now.
    assert_eq!(s.bytes_reserved, s.bytes_retained, "{s}");
    assert_eq!(s.objects_outstanding, 0);
    assert_consistent(&s);

    // This thread now takes them from the shard without allocating.
    let small: Vec<_> = (0..3).map(|_| pool.get(4096)).collect();
    let large: Vec<_> = (0..2).map(|_| pool.get(16384)).collect();
    let s = pool.stats();
    assert_eq!(s.allocations, 5, "no new allocation: {s}");
    assert!(s.shared_hits > 0, "{s}");
    assert_eq!(s.shared_hits + s.tls_hits, 5, "{s}");
    assert_eq!(s.objects_retained, 0, "{s}");
    assert_eq!(s.bytes_retained, 0, "{s}");
    assert!(small.iter().all(|b| b.capacity() == 4096));
    assert!(large.iter().all(|b| b.capacity() == 16384));
    // A sixth one must be allocated: the five were all there was.
    let sixth = pool.get(4096);
    assert_eq!(pool.stats().allocations, 6);
    drop((small, large, sixth));
    assert_consistent(&pool.stats());
}

#[test]
fn counters_of_exited_threads_are_kept_exactly() {
    let pool = BufferPool::builder().shards(1).build().unwrap();
    let mut handles = Vec::new();
    for t in 0..4 {
        let p = pool.clone();
        handles.push(thread::spawn(move || {
            for i in 0..50 {
                let g = p.get(1000 + t * 100 + i);
                drop(g);
            }
            p.put(Vec::with_capacity(4096));
            drop(p.get(100).into_inner());
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.gets, 4 * 51, "{s}");
    assert_eq!(s.adopted, 4, "{s}");
    assert_eq!(s.detached, 4, "{s}");
    assert_eq!(s.puts, 4 * 50 + 4, "{s}");
    assert_eq!(s.objects_outstanding, 0, "{s}");
    assert_eq!(s.bytes_outstanding, 0, "{s}");
    assert_eq!(s.bytes_reserved, s.bytes_retained, "{s}");
    assert_consistent(&s);
}

/// A guard kept in a thread-local, and what happened to it when the
/// thread-local's destructor dropped it.
mod held {
    use std::cell::RefCell;
    use std::sync::mpsc::Sender;
    use zeropool::{BufferPool, OwnedPoolGuard};

    /// Whether the pool's per-thread table was still there when the guard
    /// came back: its object then went to this thread's cache, not straight
    /// to a shard.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Order {
        /// The table was destroyed first: the object went to a shard.
        TableFirst,
        /// The guard came back first, into the still-live thread cache.
        GuardFirst,
    }

    pub struct Held {
        pub pool: BufferPool,
        pub guard: Option<OwnedPoolGuard<Vec<u8>>>,
        pub report: Sender<Order>,
    }

    impl Drop for Held {
        fn drop(&mut self) {
            let in_shards = |pool: &BufferPool| -> usize {
                pool.stats().classes.iter().map(|c| c.shard_objects).sum()
            };
            let before = in_shards(&self.pool);
            drop(self.guard.take());
            let order = if in_shards(&self.pool) > before {
                Order::TableFirst
            } else {
                Order::GuardFirst
            };
            let _ = self.report.send(order);
        }
    }

    thread_local! {
        pub static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    }
}

/// A guard held by a thread-local is dropped by the thread-local
/// destructors, before or after the pool's own per-thread table: both
/// orders must keep it counted. Thread-local destructors run in the reverse
/// order of first use, so touching the pool before or after the
/// thread-local picks the order; each run reports the order it saw, and
/// both must be seen.
#[test]
fn guard_held_by_a_thread_local_is_returned_when_the_thread_exits() {
    use held::{Held, Order, HELD};
    use std::sync::mpsc;
    let mut seen = Vec::new();
    for pool_first in [false, true] {
        let pool = BufferPool::builder()
            .shards(1)
            .max_total_memory(64 << 20)
            .build()
            .unwrap();
        let (report, order) = mpsc::channel();
        let p = pool.clone();
        thread::spawn(move || {
            if pool_first {
                // The pool's table first: destroyed after the thread-local.
                let guard = Some(p.get_owned(4096));
                drop(p.get(4096));
                HELD.with(|h| {
                    *h.borrow_mut() = Some(Held {
                        pool: p,
                        guard,
                        report,
                    })
                });
            } else {
                // The thread-local first: destroyed after the pool's table.
                HELD.with(|h| {
                    let guard = Some(p.get_owned(4096));
                    *h.borrow_mut() = Some(Held {
                        pool: p.clone(),
                        guard,
                        report,
                    });
                    drop(p.get(4096));
                });
            }
        })
        .join()
        .unwrap();
        let order = order.recv().expect("the thread-local was destroyed");
        seen.push(order);
        let s = pool.stats();
        assert_eq!(s.gets, 2, "{order:?}: {s}");
        assert_eq!(s.objects_outstanding, 0, "{order:?}: {s}");
        assert_eq!(s.objects_retained, 2, "{order:?}: {s}");
        assert_eq!(s.classes.iter().map(|c| c.shard_objects).sum::<usize>(), 2);
        assert_consistent(&s);
    }
    assert_eq!(
        seen,
        [Order::TableFirst, Order::GuardFirst],
        "both destruction orders ran"
    );
}

/// Values that count how many of them were built and dropped, per test.
mod counted {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use zeropool::Poolable;

    pub static BUILT: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    pub static DROPPED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

    pub struct Counted<const ID: usize>(Vec<u8>);

    impl<const ID: usize> Poolable for Counted<ID> {
        fn with_capacity_hint(bytes: usize) -> Self {
            BUILT[ID].fetch_add(1, Ordering::SeqCst);
            Counted(Vec::with_capacity(bytes))
        }
        fn reset(&mut self) {
            self.0.clear();
        }
        fn capacity_bytes(&self) -> usize {
            self.0.capacity()
        }
    }

    impl<const ID: usize> Drop for Counted<ID> {
        fn drop(&mut self) {
            DROPPED[ID].fetch_add(1, Ordering::SeqCst);
        }
    }

    pub fn built(id: usize) -> usize {
        BUILT[id].load(Ordering::SeqCst)
    }

    pub fn dropped(id: usize) -> usize {
        DROPPED[id].load(Ordering::SeqCst)
    }
}

#[test]
fn dropping_the_pool_frees_every_idle_object_once() {
    use counted::{built, dropped, Counted};
    let pool: Pool<Counted<0>> = Pool::builder().shards(2).build().unwrap();
    // Idle in this thread's cache and in a shard...
    drop((0..20).map(|_| pool.get(1000)).collect::<Vec<_>>());
    // ...and in a shard, from a thread that exited.
    let p = pool.clone();
    thread::spawn(move || drop((0..30).map(|_| p.get(1000)).collect::<Vec<_>>()))
        .join()
        .unwrap();
    let s = pool.stats();
    assert_eq!(s.objects_retained, built(0), "{s}");
    assert_eq!(dropped(0), 0);
    drop(pool);
    assert_eq!(dropped(0), built(0), "each object dropped exactly once");
}

#[test]
fn dropping_the_pool_while_another_thread_caches_objects() {
    use counted::{built, dropped, Counted};
    use std::sync::mpsc;
    let pool: Pool<Counted<1>> = Pool::builder().shards(1).build().unwrap();
    let (to_b, b_rx) = mpsc::channel::<()>();
    let (to_main, main_rx) = mpsc::channel::<()>();
    let p = pool.clone();
    let b = thread::spawn(move || {
        drop((0..5).map(|_| p.get(1000)).collect::<Vec<_>>());
        drop(p); // B keeps its cache, but no handle
        to_main.send(()).unwrap();
        b_rx.recv().unwrap(); // main drops the pool
                              // A new pool on this thread (it may reuse the old one's slot index)
                              // starts empty and works.
        let fresh: Pool<Counted<1>> = Pool::new();
        drop(fresh.get(1000));
        drop(fresh.get(1000));
        let s = fresh.stats();
        assert_eq!((s.gets, s.allocations, s.tls_hits), (2, 1, 1), "{s}");
        // B exits: the dead pool's slot must not be touched.
    });
    main_rx.recv().unwrap();
    assert_eq!(pool.stats().objects_retained, 5);
    drop(pool); // frees B's cached objects too
    assert_eq!(dropped(1), 5, "B's idle objects were freed with the pool");
    to_b.send(()).unwrap();
    b.join().unwrap();
    assert_eq!(dropped(1), built(1), "each object dropped exactly once");
}
