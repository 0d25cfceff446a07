//! `put_guards`: many guards back at once, their tickets kept.

mod common;

use common::assert_consistent;
use std::panic::{catch_unwind, AssertUnwindSafe};
use zeropool::{BufferPool, Pool, Poolable};

fn pool() -> BufferPool {
    BufferPool::builder()
        .shards(1)
        .size_classes(&[4096, 16384, 65536])
        .max_total_memory(1 << 30)
        .build()
        .expect("valid settings")
}

#[test]
fn guards_come_back_as_returns_not_adoptions() {
    let pool = pool();
    let guards = pool.get_batch(&[4096; 100]);
    let ptrs: Vec<_> = guards.iter().map(|g| g.as_ptr()).collect();
    pool.put_guards(guards);
    let s = pool.stats();
    assert_consistent(&s);
    assert_eq!(
        (
            s.objects_outstanding,
            s.objects_retained,
            s.detached,
            s.adopted
        ),
        (0, 100, 0, 0),
        "{s}"
    );
    assert_eq!(s.bytes_retained, 100 * 4096, "{s}");
    // The same 100 buffers serve the next batch: nothing was freed or lost.
    let again = pool.get_batch(&[4096; 100]);
    let mut seen: Vec<_> = again.iter().map(|g| g.as_ptr()).collect();
    let mut before = ptrs;
    seen.sort();
    before.sort();
    assert_eq!(seen, before);
    assert_eq!(pool.stats().allocations, 100);
}

#[test]
fn mixed_classes_and_changed_capacities_are_routed() {
    let pool = pool();
    let mut guards = pool.get_batch(&[4096, 16384, 65536, 4096, 70_000, 16384]);
    // Grown while out: it must land in the class of its new capacity.
    guards[0].reserve_exact(16384);
    let grown = guards[0].capacity();
    pool.put_guards(guards);
    let s = pool.stats();
    assert_consistent(&s);
    assert_eq!(s.objects_outstanding, 0, "{s}");
    assert_eq!(s.bytes_outstanding, 0, "{s}");
    // The oversize one is freed; five stay.
    assert_eq!((s.objects_retained, s.oversize_drops), (5, 1), "{s}");
    assert!(grown >= 16384);
    assert_eq!(
        s.bytes_retained,
        grown + 16384 + 65536 + 4096 + 16384,
        "{s}"
    );
}

#[test]
fn guards_of_another_pool_go_back_to_their_own() {
    let a = pool();
    let b = pool();
    let mut guards = a.get_batch(&[4096; 3]);
    guards.extend(b.get_batch(&[4096; 2]));
    // Only guards of one lifetime fit one call; both pools live here.
    a.put_guards(guards);
    let (sa, sb) = (a.stats(), b.stats());
    assert_consistent(&sa);
    assert_consistent(&sb);
    assert_eq!(
        (sa.objects_retained, sa.objects_outstanding),
        (3, 0),
        "{sa}"
    );
    assert_eq!(
        (sb.objects_retained, sb.objects_outstanding),
        (2, 0),
        "{sb}"
    );
    assert_eq!((sa.adopted, sb.adopted), (0, 0));
}

#[test]
fn charged_and_tracked_guards_give_back_their_charge_and_record() {
    let pool = BufferPool::builder()
        .size_classes(&[4096])
        .max_outstanding_memory(64 * 4096)
        .track_outstanding(true)
        .build()
        .unwrap();
    let guards = pool.get_batch(&[4096; 10]);
    assert_eq!(pool.charged_bytes(), 10 * 4096);
    assert_eq!(
        pool.outstanding().iter().map(|e| e.count).sum::<usize>(),
        10
    );
    pool.put_guards(guards);
    assert_eq!(pool.charged_bytes(), 0);
    assert!(pool.outstanding().is_empty());
    let s = pool.stats();
    assert_consistent(&s);
    assert_eq!((s.objects_retained, s.objects_outstanding), (10, 0), "{s}");
}

#[test]
fn the_budget_bounds_what_is_kept() {
    let pool = BufferPool::builder()
        .shards(1)
        .size_classes(&[4096])
        .max_total_memory(20 * 4096)
        .build()
        .unwrap();
    pool.put_guards(pool.get_batch(&[4096; 50]));
    let s = pool.stats();
    assert_consistent(&s);
    assert!(s.bytes_retained <= 20 * 4096, "{s}");
    assert_eq!(s.objects_retained + s.discards, 50, "{s}");
    assert_eq!(s.objects_outstanding, 0, "{s}");
}

/// A buffer whose `reset` panics when told to.
#[derive(Debug)]
struct Brittle {
    buf: Vec<u8>,
    explode: bool,
}

impl Poolable for Brittle {
    fn with_capacity_hint(bytes: usize) -> Self {
        Brittle {
            buf: Vec::with_capacity(bytes),
            explode: false,
        }
    }
    fn reset(&mut self) {
        if std::mem::take(&mut self.explode) {
            panic!("reset exploded");
        }
        self.buf.clear();
    }
    fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

#[test]
fn a_reset_panic_mid_batch_loses_nothing() {
    let pool: Pool<Brittle> = Pool::builder()
        .shards(1)
        .size_classes(&[1024])
        .build()
        .unwrap();
    let mut guards = pool.get_batch(&[1024; 20]);
    guards[7].explode = true;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = catch_unwind(AssertUnwindSafe(|| pool.put_guards(guards)));
    std::panic::set_hook(hook);
    assert!(caught.is_err(), "the reset panic continues");
    let s = pool.stats();
    assert_consistent(&s);
    // One freed by its panic; the 7 before it and the 12 after it (dropped
    // while unwinding) are back.
    assert_eq!(
        (s.reset_panics, s.objects_retained, s.objects_outstanding),
        (1, 19, 0),
        "{s}"
    );
    // And the pool still works.
    drop(pool.get_batch(&[1024; 20]));
    assert_consistent(&pool.stats());
}
