//! Documented guarantee: a hit in the thread cache, and a return into it, do
//! not allocate. Checked with a counting global allocator (this test binary
//! only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use zeropool::{BufferPool, Pool};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to `System` unchanged; the bookkeeping only
// touches a const-initialised thread-local `Cell` without destructor, which
// never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    // The control: the technique does count an allocation.
    let n = allocations_in(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(10))));
    assert_eq!(n, 1);
}

#[test]
fn cache_hits_and_returns_do_not_allocate() {
    let pool = BufferPool::builder()
        .size_classes(&[4096, 16384])
        .build()
        .unwrap();
    let strings: Pool<String> = Pool::new();
    // Warm up: the first get allocates, the first return reserves room.
    for _ in 0..2 {
        let a = pool.get(4096);
        let b = pool.get(16384);
        drop((a, b));
        drop(strings.get(100));
    }
    let n = allocations_in(|| {
        for _ in 0..1000 {
            let mut a = pool.get(4000);
            a.extend_from_slice(b"payload");
            let b = pool.get_owned(10_000);
            drop(a);
            drop(b);
            let mut s = strings.get(100);
            s.push_str("text");
        }
    });
    assert_eq!(n, 0, "allocations on the hot path");
    let s = pool.stats();
    assert_eq!(s.allocations, 2, "{s}");
}
