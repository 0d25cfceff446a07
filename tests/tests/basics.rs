//! `get`, `get_zeroed`, `wipe_on_return`, and the stats switch.

mod common;

use common::assert_consistent;
use zeropool::{BufferPool, Pool};

fn small_pool(wipe: bool) -> BufferPool {
    BufferPool::builder()
        .shards(1)
        .size_classes(&[4096, 16384])
        .wipe_on_return(wipe)
        .build()
        .expect("valid settings")
}

#[test]
fn get_returns_an_empty_object_of_at_least_n_bytes() {
    let pool = BufferPool::new();
    let largest = *pool.size_classes().last().unwrap();
    let sizes = [
        0,
        1,
        100,
        255,
        256,
        4096,
        65_536,
        1 << 20,
        largest,
        largest + 1,
    ];
    // Twice: fresh objects the first round, dirtied and reused ones the second.
    for round in 0..2 {
        for &n in &sizes {
            let mut buf = pool.get(n);
            assert_eq!(buf.len(), 0, "round {round}, get({n})");
            assert!(
                buf.capacity() >= n,
                "round {round}, get({n}): {}",
                buf.capacity()
            );
            buf.extend(std::iter::repeat_n(0x5A, n.min(4096)));
        }
    }
    let s = pool.stats();
    assert_eq!(s.gets, 2 * sizes.len());
    assert!(s.tls_hits > 0, "the second round reuses objects: {s}");
    assert_consistent(&s);
}

#[test]
fn get_zeroed_returns_exactly_n_zero_bytes_after_a_dirty_return() {
    let pool = small_pool(false);
    let mut dirty = pool.get(4096);
    let cap = dirty.capacity();
    dirty.resize(cap, 0xAA);
    let ptr = dirty.as_ptr();
    drop(dirty);

    for n in [100, 4096, 1] {
        let z = pool.get_zeroed(n);
        assert_eq!(z.as_ptr(), ptr, "get_zeroed({n}) reuses the dirty buffer");
        assert_eq!(z.len(), n);
        assert!(z.iter().all(|&b| b == 0), "get_zeroed({n}) = {:?}", &z[..]);
        drop(z);
    }
    assert!(pool.get_zeroed(0).is_empty());
    // Oversize: exact length, zeroed.
    let big = pool.get_zeroed(20_000);
    assert_eq!(big.len(), 20_000);
    assert!(big.iter().all(|&b| b == 0));
    drop(big);
    assert_consistent(&pool.stats());
}

/// Returns `len` bytes of 0xAA in a buffer, takes the (same) buffer back, and
/// reads the first `len` bytes of its allocation.
fn bytes_left_behind(wipe: bool, len: usize, via_put: bool) -> Vec<u8> {
    let pool = small_pool(wipe);
    assert_eq!(pool.wipe_on_return(), wipe);
    let ptr = if via_put {
        let mut v = Vec::with_capacity(4096);
        v.resize(len, 0xAA);
        let ptr = v.as_ptr();
        pool.put(v);
        ptr
    } else {
        let mut g = pool.get(4096);
        g.resize(len, 0xAA);
        let ptr = g.as_ptr();
        drop(g);
        ptr
    };
    let mut again = pool.get(4096);
    assert_eq!(
        again.as_ptr(),
        ptr,
        "the same allocation is handed out again"
    );
    assert_eq!(again.len(), 0);
    // SAFETY: `again` is the same allocation (pointer checked above) and
    // capacity >= 4096 >= len. Its first `len` bytes were initialised when
    // they were written with 0xAA (and possibly overwritten with zeros by
    // the wipe); `clear` only lowered the length, it does not de-initialise
    // memory, and `u8` has no invalid bit patterns. So the first `len`
    // elements are initialised `u8`s.
    unsafe { again.set_len(len) };
    let seen = again.to_vec();
    again.clear();
    seen
}

#[test]
fn wipe_on_return_zeroes_the_used_bytes_of_a_returned_buffer() {
    let seen = bytes_left_behind(true, 1000, false);
    assert!(seen.iter().all(|&b| b == 0), "not wiped: {:?}", &seen[..16]);
}

#[test]
fn wipe_on_return_zeroes_the_used_bytes_of_a_put_buffer() {
    let seen = bytes_left_behind(true, 3000, true);
    assert!(seen.iter().all(|&b| b == 0), "not wiped: {:?}", &seen[..16]);
}

#[test]
fn without_wipe_the_old_bytes_stay() {
    // The control for the two tests above: the read-back technique does see
    // the old contents when nothing wipes them.
    for via_put in [false, true] {
        let seen = bytes_left_behind(false, 1000, via_put);
        assert!(seen.iter().all(|&b| b == 0xAA), "via_put {via_put}");
    }
}

#[test]
fn wipe_on_return_zeroes_strings_too() {
    let pool: Pool<String> = Pool::builder()
        .shards(1)
        .size_classes(&[64])
        .wipe_on_return(true)
        .build()
        .unwrap();
    let mut s = pool.get(64);
    s.push_str("correct horse battery staple");
    let (ptr, len) = (s.as_ptr(), s.len());
    drop(s);
    let mut again = pool.get(64);
    assert_eq!(again.as_ptr(), ptr);
    assert!(again.is_empty());
    // SAFETY: same allocation (checked), capacity >= 64 > len; its first
    // `len` bytes were written by `push_str` (then zeroed by the wipe), so
    // they are initialised, and zero bytes (or the original ASCII) are valid
    // UTF-8. The length is reset to 0 before the string is used again.
    let seen = unsafe {
        let v = again.as_mut_vec();
        v.set_len(len);
        let seen = v.clone();
        v.set_len(0);
        seen
    };
    assert!(seen.iter().all(|&b| b == 0), "not wiped: {seen:?}");
}

#[test]
fn stats_off_keeps_gauges_but_no_counters() {
    let pool = BufferPool::builder().stats(false).build().unwrap();
    let a = pool.get(4096);
    drop(pool.get(4096));
    let s = pool.stats();
    assert_eq!(
        (s.gets, s.allocations, s.puts, s.tls_hits),
        (0, 0, 0, 0),
        "{s}"
    );
    assert_eq!(s.objects_retained, 1, "gauges are always kept: {s}");
    assert!(s.bytes_retained >= 4096);
    drop(a);
    assert_eq!(pool.stats().objects_retained, 2);
}

#[test]
fn settings_are_reported_back() {
    let pool = BufferPool::builder()
        .shards(2)
        .tls_cache_size(5)
        .batch_size(3)
        .size_classes(&[512, 1024])
        .max_total_memory(123_456)
        .wipe_on_return(true)
        .build()
        .unwrap();
    assert_eq!(pool.shards(), 2);
    assert_eq!(pool.tls_cache_size(), 5);
    assert_eq!(pool.batch_size(), 3);
    assert_eq!(pool.size_classes(), &[512, 1024]);
    assert_eq!(pool.max_total_memory(), 123_456);
    assert_eq!(pool.stats().max_total_memory, 123_456);
    assert!(pool.wipe_on_return());
    let dbg = format!("{pool:?}");
    assert!(dbg.contains("123456"), "{dbg}");

    let default = BufferPool::new();
    assert_eq!(
        default.max_total_memory(),
        zeropool::DEFAULT_MAX_TOTAL_MEMORY
    );
    assert_eq!(default.tls_cache_size(), zeropool::DEFAULT_TLS_CACHE_SIZE);
    assert_eq!(default.batch_size(), zeropool::DEFAULT_BATCH_SIZE);
    assert!(!default.wipe_on_return());
}

#[test]
fn hit_rate_and_display() {
    let pool = BufferPool::new();
    assert_eq!(pool.stats().hit_rate(), 0.0);
    for _ in 0..4 {
        drop(pool.get(4096));
    }
    let s = pool.stats();
    assert_eq!((s.gets, s.allocations, s.tls_hits), (4, 1, 3));
    assert_eq!(s.hit_rate(), 0.75);
    let text = s.to_string();
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("gets") && l.contains(" 4 ")),
        "{text}"
    );
    assert!(text.contains("75.0%"), "{text}");
}
