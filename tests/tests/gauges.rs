//! The gauges are true whether counters are on or off, and the ledger
//! check (`is_balanced`) compares counters against those gauges, so it can
//! fail.

mod common;

use zeropool::BufferPool;

/// With `stats(false)`, three held guards read as three outstanding.
#[test]
fn outstanding_gauges_hold_with_stats_off() {
    let pool = BufferPool::builder()
        .stats(false)
        .size_classes(&[4096])
        .build()
        .expect("valid settings");
    let held: Vec<_> = (0..3).map(|_| pool.get(4096)).collect();
    let s = pool.stats();
    assert_eq!(s.gets, 0, "counters are off\n{s}");
    assert_eq!(s.objects_outstanding, 3, "{s}");
    assert_eq!(s.bytes_outstanding, 3 * 4096, "{s}");
    drop(held);
    let s = pool.stats();
    assert_eq!((s.objects_outstanding, s.bytes_outstanding), (0, 0), "{s}");
    assert_eq!(s.objects_retained, 3, "{s}");
    // Detached and adopted objects move the gauge too.
    let v = pool.get(4096).into_inner();
    assert_eq!(pool.stats().objects_retained, 2);
    pool.put(v);
    let s = pool.stats();
    assert_eq!((s.objects_retained, s.objects_outstanding), (3, 0), "{s}");
}

/// Events that happen while counters are off leave the counters short of
/// the gauges: `is_balanced` says so (it used to compare the counters with
/// figures derived from those same counters, and could not fail).
#[test]
fn is_balanced_fails_when_the_counters_missed_events() {
    let pool = BufferPool::builder()
        .size_classes(&[4096])
        .build()
        .expect("valid settings");
    let a = pool.get(4096);
    assert!(pool.stats().is_balanced(), "{}", pool.stats());
    pool.reload(&{
        let mut c = pool.config();
        c.stats = false;
        c
    })
    .expect("stats is reloadable");
    let b = pool.get(4096); // allocated, not counted
    pool.reload(&{
        let mut c = pool.config();
        c.stats = true;
        c
    })
    .expect("stats is reloadable");
    let s = pool.stats();
    assert_eq!(s.allocations, 1, "{s}");
    assert_eq!(s.objects_outstanding, 2, "the gauge saw both\n{s}");
    assert!(!s.is_balanced(), "one allocation was not counted\n{s}");
    drop((a, b));
}
