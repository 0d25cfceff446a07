//! A `reset` (or `wipe`) that panics: the object is dropped, the counters stay
//! exact, the panic continues, and the pool keeps working. During an
//! unrelated unwind the second panic is swallowed instead of aborting.

mod common;

use common::assert_consistent;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use zeropool::{Pool, Poolable};

thread_local! {
    /// `Touchy` values dropped on this thread (each test runs on its own).
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

#[derive(Debug)]
struct Touchy {
    buf: Vec<u8>,
    explode_in_reset: bool,
    explode_in_wipe: bool,
}

impl Touchy {
    fn new(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            explode_in_reset: false,
            explode_in_wipe: false,
        }
    }
}

impl Drop for Touchy {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

impl Poolable for Touchy {
    fn with_capacity_hint(bytes: usize) -> Self {
        Touchy::new(bytes)
    }
    fn reset(&mut self) {
        if self.explode_in_reset {
            panic!("reset exploded");
        }
        self.buf.clear();
    }
    fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }
    fn wipe(&mut self) {
        if self.explode_in_wipe {
            panic!("wipe exploded");
        }
        self.buf.fill(0);
    }
}

fn pool() -> Pool<Touchy> {
    Pool::builder()
        .shards(1)
        .size_classes(&[1024])
        .wipe_on_return(true)
        .build()
        .unwrap()
}

fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string payload>")
}

#[test]
fn dropping_a_guard_whose_reset_panics_panics_and_drops_the_object() {
    let pool = pool();
    let mut g = pool.get(1000);
    g.explode_in_reset = true;
    let before = drops();
    let err = panic::catch_unwind(AssertUnwindSafe(|| drop(g))).unwrap_err();
    assert_eq!(message(&*err), "reset exploded");
    assert_eq!(drops(), before + 1, "the object was dropped");
    let s = pool.stats();
    assert_eq!(s.reset_panics, 1, "{s}");
    assert_eq!((s.freed, s.puts), (1, 1), "{s}");
    assert_eq!((s.objects_retained, s.bytes_retained), (0, 0), "{s}");
    assert_eq!((s.objects_outstanding, s.bytes_outstanding), (0, 0), "{s}");
    assert_consistent(&s);

    // The pool still works, and the poisoned object is gone for good.
    let g = pool.get(1000);
    assert!(!g.explode_in_reset);
    assert_eq!(pool.stats().allocations, 2);
    drop(g);
    drop(pool.get(1000));
    let s = pool.stats();
    assert_eq!(
        (s.allocations, s.tls_hits, s.objects_retained),
        (2, 1, 1),
        "{s}"
    );
    assert_consistent(&s);
}

#[test]
fn a_panicking_wipe_is_handled_like_a_panicking_reset() {
    let pool = pool();
    let mut g = pool.get_owned(1000);
    g.explode_in_wipe = true;
    let err = panic::catch_unwind(AssertUnwindSafe(|| drop(g))).unwrap_err();
    assert_eq!(message(&*err), "wipe exploded");
    let s = pool.stats();
    assert_eq!(
        (s.reset_panics, s.objects_retained, s.objects_outstanding),
        (1, 0, 0),
        "{s}"
    );
    assert_consistent(&s);
}

#[test]
fn put_of_an_object_whose_reset_panics() {
    let pool = pool();
    let mut obj = Touchy::new(1024);
    obj.explode_in_reset = true;
    let before = drops();
    let err = panic::catch_unwind(AssertUnwindSafe(|| pool.put(obj))).unwrap_err();
    assert_eq!(message(&*err), "reset exploded");
    assert_eq!(drops(), before + 1);
    let s = pool.stats();
    assert_eq!(
        (s.adopted, s.reset_panics, s.freed, s.objects_retained),
        (1, 1, 1, 0),
        "{s}"
    );
    assert_consistent(&s);
    pool.put(Touchy::new(1024));
    assert_eq!(pool.stats().objects_retained, 1);
}

#[test]
fn put_batch_with_a_panicking_reset_keeps_the_ledger() {
    let pool = pool();
    let mut bad = Touchy::new(1024);
    bad.explode_in_reset = true;
    let objs = vec![Touchy::new(1024), bad, Touchy::new(1024)];
    let before = drops();
    let err = panic::catch_unwind(AssertUnwindSafe(|| pool.put_batch(objs))).unwrap_err();
    assert_eq!(message(&*err), "reset exploded");
    let s = pool.stats();
    assert_eq!(s.reset_panics, 1, "{s}");
    // Every object is either kept or dropped, none leaks or is counted twice.
    assert_eq!(drops() - before + s.objects_retained, 3, "{s}");
    assert!(
        s.objects_retained >= 1,
        "the one before the panic is kept: {s}"
    );
    assert_eq!(s.objects_outstanding, 0);
    assert_consistent(&s);
    // Still works.
    pool.put_batch((0..3).map(|_| Touchy::new(1024)));
    assert_consistent(&pool.stats());
}

/// Runs `scenario` in a child process (this test binary, filtered to `name`)
/// so that an abort fails this test instead of killing the whole binary.
/// Under Miri (no processes) it runs inline.
fn run_in_child(name: &str, scenario: impl FnOnce()) {
    const CHILD: &str = "ZEROPOOL_TESTS_CHILD";
    if cfg!(miri) || std::env::var_os(CHILD).is_some() {
        scenario();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn a_guard_dropped_while_unwinding_with_a_panicking_reset_does_not_abort() {
    run_in_child(
        "a_guard_dropped_while_unwinding_with_a_panicking_reset_does_not_abort",
        || {
            let pool = pool();
            let before = drops();
            let err = panic::catch_unwind(AssertUnwindSafe(|| {
                let mut g = pool.get(1000);
                g.explode_in_reset = true;
                let mut owned = pool.get_owned(1000);
                owned.explode_in_reset = true;
                let _fine = pool.get(1000);
                panic!("unrelated");
            }))
            .unwrap_err();
            assert_eq!(message(&*err), "unrelated", "the first panic continues");
            assert_eq!(drops(), before + 2, "both exploding objects dropped");
            let s = pool.stats();
            assert_eq!(s.reset_panics, 2, "{s}");
            assert_eq!(s.objects_outstanding, 0, "{s}");
            assert_eq!(s.objects_retained, 1, "the well-behaved one is kept: {s}");
            assert_consistent(&s);
            // And the pool works afterwards.
            drop(pool.get(1000));
            assert_consistent(&pool.stats());
        },
    );
}
