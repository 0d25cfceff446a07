//! Idle trimming: memory idle longer than `trim_after` goes, memory a steady
//! load cycles through stays; `trim_to` on demand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use zeropool::BufferPool;

const MIB: usize = 1 << 20;

#[test]
fn a_burst_is_released_while_a_steady_load_keeps_its_hits() {
    let pool = BufferPool::builder()
        .size_classes(&[4096, MIB])
        .max_total_memory(2 << 30)
        .build()
        .unwrap();
    let trim_after = Duration::from_millis(150);
    pool.set_trim_after(Some(trim_after));
    assert_eq!(pool.trim_after(), Some(trim_after));

    // A steady small load on its own thread for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let steady = {
        let (pool, stop) = (pool.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut b = pool.get(4096);
                b.push(1);
                drop(b);
                thread::sleep(Duration::from_micros(200));
            }
        })
    };

    // A burst of 1 GiB (untouched capacity: no page is written), given back
    // from a thread that then exits, so it all lands in the shards.
    {
        let pool = pool.clone();
        thread::spawn(move || {
            let burst: Vec<_> = (0..1024).map(|_| pool.get(MIB)).collect();
            drop(burst);
        })
        .join()
        .unwrap();
    }
    let peak = pool.stats().bytes_retained;
    assert!(peak >= 1 << 30, "the burst is idle in the pool: {peak}");

    // Two periods of idleness (for the burst's class) later, it is gone.
    let deadline = Instant::now() + trim_after * 2 + Duration::from_secs(5);
    thread::sleep(trim_after * 2);
    while pool.stats().bytes_retained * 10 >= peak && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let s = pool.stats();
    assert!(
        s.bytes_retained * 10 < peak,
        "retained {} of a peak of {peak}",
        s.bytes_retained
    );
    assert!(s.trimmed >= 900, "{s}");

    stop.store(true, Ordering::Relaxed);
    steady.join().unwrap();
    let small = &pool.stats().classes[0];
    let hit_rate = (small.tls_hits + small.shared_hits) as f64 / small.gets as f64;
    assert!(small.gets > 100, "the steady load ran: {small:?}");
    assert!(
        hit_rate > 0.95,
        "steady load hit rate {hit_rate}: {small:?}"
    );
}

#[test]
fn turning_the_trimmer_off_keeps_idle_memory() {
    let pool = BufferPool::builder()
        .max_total_memory(64 * MIB)
        .build()
        .unwrap();
    pool.set_trim_after(Some(Duration::from_millis(20)));
    pool.set_trim_after(None);
    assert_eq!(pool.trim_after(), None);
    {
        let pool = pool.clone();
        thread::spawn(move || drop(pool.get_batch(&[65536; 32])))
            .join()
            .unwrap();
    }
    let before = pool.stats().bytes_retained;
    thread::sleep(Duration::from_millis(100));
    assert_eq!(pool.stats().bytes_retained, before);
}

#[test]
fn trim_to_frees_down_to_the_target_largest_first() {
    let pool = BufferPool::builder()
        .size_classes(&[4096, 65536])
        .max_total_memory(64 * MIB)
        .build()
        .unwrap();
    let mut sizes = vec![4096; 16];
    sizes.extend([65536; 16]);
    drop(pool.get_batch(&sizes));
    let before = pool.stats();
    assert_eq!(before.bytes_retained, 16 * 4096 + 16 * 65536);
    pool.trim_to(16 * 4096);
    let after = pool.stats();
    assert!(after.bytes_retained <= 16 * 4096, "{after}");
    // The large class went first: the small objects are all still there.
    assert_eq!(after.classes[0].gets, before.classes[0].gets);
    let small = pool.get_batch(&[4096; 16]);
    assert_eq!(
        pool.stats().allocations,
        before.allocations,
        "small objects kept"
    );
    drop(small);
    assert!(after.is_balanced(), "{after}");
    pool.trim_to(0);
    assert_eq!(pool.stats().bytes_retained, 0);
}

#[test]
fn a_dropped_pool_stops_its_trimmer() {
    let pool = BufferPool::new();
    pool.set_trim_after(Some(Duration::from_secs(3600)));
    drop(pool);
    // Nothing to assert beyond not hanging: the trimmer holds a weak
    // reference and is woken when the pool goes.
}
