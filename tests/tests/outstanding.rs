//! The outstanding report: live guards by the call site that took them.

use std::time::Duration;
use zeropool::BufferPool;

fn tracked() -> BufferPool {
    BufferPool::builder()
        .track_outstanding(true)
        .build()
        .unwrap()
}

#[test]
fn the_report_names_the_file_and_line_of_each_call_site() {
    let pool = tracked();
    let first_line = line!() + 1;
    let a: Vec<_> = (0..3).map(|_| pool.get(4096)).collect();
    let second_line = line!() + 1;
    let b = pool.get_owned(65536);
    std::thread::sleep(Duration::from_millis(5));
    let report = pool.outstanding();
    assert_eq!(report.len(), 2, "{report:?}");
    // Most bytes first: the owned 64 KiB guard.
    assert_eq!(report[0].location.file(), file!());
    assert_eq!(report[0].location.line(), second_line);
    assert_eq!((report[0].count, report[0].bytes), (1, 65536));
    assert_eq!(report[1].location.line(), first_line);
    assert_eq!((report[1].count, report[1].bytes), (3, 3 * 4096));
    assert!(report[1].oldest >= Duration::from_millis(5));
    drop(a);
    assert_eq!(pool.outstanding().len(), 1);
    let v = b.into_inner();
    assert!(
        pool.outstanding().is_empty(),
        "a detached object is no longer a guard"
    );
    pool.put(v);
}

#[test]
fn batches_and_fallible_gets_are_tracked_at_their_call_site() {
    let pool = tracked();
    let line = line!() + 1;
    let batch = pool.get_batch(&[4096; 4]);
    let try_line = line!() + 1;
    let one = pool.try_get(4096).unwrap();
    let report = pool.outstanding();
    let at = |l: u32| {
        report
            .iter()
            .find(|e| e.location.line() == l)
            .map(|e| e.count)
    };
    assert_eq!(at(line), Some(4));
    assert_eq!(at(try_line), Some(1));
    drop((batch, one));
    assert!(pool.outstanding().is_empty());
}

#[test]
fn off_by_default_and_then_empty() {
    let pool = BufferPool::new();
    let _held = pool.get(4096);
    assert!(pool.outstanding().is_empty());
}

#[test]
fn dropping_the_pool_while_owned_guards_live_keeps_them_usable() {
    let pool = tracked();
    let mut owned = pool.get_owned(4096);
    drop(pool); // the last user handle: reported (a tracing warning)
    owned.extend_from_slice(b"still mine");
    assert_eq!(owned.pool().outstanding().len(), 1);
    drop(owned);
}
