//! A pinned pool unlocks the memory it frees: locked memory (`VmLck`)
//! follows what the pool holds instead of growing until `RLIMIT_MEMLOCK`
//! refuses. One test in its own binary, so no other test locks memory in
//! this process meanwhile.

#[cfg(target_os = "linux")]
fn locked_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmLck in /proc/self/status")
}

#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore = "Miri cannot call mlock or read procfs")]
fn freed_objects_are_unlocked() {
    let pool = zeropool::BufferPool::builder()
        .pinned(true)
        .max_total_memory(0) // keeps nothing: every return frees
        .size_classes(&[64 << 10])
        .build()
        .expect("valid settings");
    let before = locked_kib();
    let mut one = pool.get(64 << 10);
    one.push(1);
    if pool.stats().pin_failures != 0 {
        eprintln!(
            "mlock refused here ({:?}): nothing to check",
            pool.stats().numa_error
        );
        return;
    }
    assert!(
        locked_kib() >= before + 60,
        "the buffer is locked while held"
    );
    drop(one);
    // Sixteen at once, so they are sixteen distinct chunks of the heap.
    for _ in 0..4 {
        let held: Vec<_> = (0..16).map(|_| pool.get(64 << 10)).collect();
        drop(held);
    }
    let s = pool.stats();
    assert_eq!((s.allocations, s.discards), (65, 65), "{s}");
    // 16 x 64 KiB chunks were locked and freed: before, they stayed locked
    // (about 1 MiB); now at most a neighbour's edge page or two does.
    let after = locked_kib();
    assert!(after <= before + 16, "VmLck {before} kB -> {after} kB\n{s}");
}
