//! `Pool::reload`: the limits change all together while other threads use
//! the pool; a bad value or a changed fixed key changes nothing.

mod config_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeropool::{
    BufferPool, ByteSize, Error, Numa, OnExhausted, PoolConfig, Shards, SizeClassSpec, Source,
};

fn pool() -> BufferPool {
    BufferPool::builder()
        .shards(2)
        .size_classes(&[4096, 16384, 65536])
        .max_total_memory(64 << 20)
        .build()
        .unwrap()
}

#[test]
fn reload_reports_what_changed() {
    let pool = pool();
    let mut cfg = pool.config();
    cfg.max_total_memory = ByteSize(32 << 20);
    cfg.tls_cache_size = 16;
    cfg.batch_size = 8;
    cfg.stats = false;
    cfg.max_outstanding_memory = Some(ByteSize(1 << 30));
    cfg.on_exhausted = OnExhausted::Wait;
    let report = pool.reload(&cfg).unwrap();
    let changed: Vec<_> = report
        .changed
        .iter()
        .map(|c| (c.key, c.old.as_str(), c.new.as_str()))
        .collect();
    assert_eq!(
        changed,
        [
            ("tls_cache_size", "8", "16"),
            ("batch_size", "4", "8"),
            ("max_total_memory", "\"64 MiB\"", "\"32 MiB\""),
            ("max_outstanding_memory", "", "\"1 GiB\""),
            ("on_exhausted", "\"allocate\"", "\"wait\""),
            ("stats", "true", "false"),
        ]
    );
    assert_eq!(
        report.unchanged,
        [
            "shards",
            "numa",
            "size_classes",
            "wipe_on_return",
            "pinned",
            "track_outstanding",
            "trim_after"
        ]
    );
    assert!(
        report
            .to_string()
            .contains("max_total_memory: \"64 MiB\" -> \"32 MiB\""),
        "{report}"
    );
    assert_eq!((pool.tls_cache_size(), pool.batch_size()), (16, 8));
    assert_eq!(pool.max_total_memory(), 32 << 20);
    let now = pool.config();
    assert_eq!(now, cfg);
    assert_eq!(now.source("max_total_memory"), Some(Source::Code));

    // The same config again changes nothing.
    assert!(pool.reload(&cfg).unwrap().is_empty());
    assert!(pool.last_reload_error().is_none());
}

#[test]
fn lowering_the_budget_trims_idle_memory_at_once() {
    let pool = pool();
    let bufs = pool.get_batch(&[65536; 256]);
    drop(bufs);
    assert!(pool.stats().bytes_retained > 4 << 20, "{}", pool.stats());
    let mut cfg = pool.config();
    cfg.max_total_memory = ByteSize(1 << 20);
    pool.reload(&cfg).unwrap();
    let s = pool.stats();
    assert_eq!(s.max_total_memory, 1 << 20);
    assert!(s.bytes_retained <= 1 << 20, "{s}");
}

#[test]
fn a_changed_fixed_key_is_refused_and_nothing_changes() {
    let pool = pool();
    let before = pool.config();
    let mut cfg = before.clone();
    cfg.shards = Shards::Count(8);
    cfg.size_classes = SizeClassSpec::List(vec![ByteSize(4096)]);
    cfg.numa = Numa::Off;
    cfg.wipe_on_return = true;
    cfg.max_total_memory = ByteSize(1 << 20);
    cfg.tls_cache_size = 32;
    let err = pool.reload(&cfg).unwrap_err();
    let Error::RestartRequired(problems) = &err else {
        panic!("{err}")
    };
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["shards", "numa", "size_classes", "wipe_on_return"]);
    let text = err.to_string();
    assert!(
        text.contains(
            "cannot change while the pool runs: restart to change `shards` (running with 2 shards)"
        ),
        "{text}"
    );
    assert!(text.contains("restart to change `size_classes`"), "{text}");
    assert_eq!(pool.config(), before, "nothing else changed");
    assert_eq!(pool.max_total_memory(), 64 << 20);
    assert_eq!(pool.tls_cache_size(), 8);
    assert_eq!(pool.last_reload_error(), Some(err));
    assert_eq!(pool.stats().reload_errors, 1);
    assert!(pool
        .stats()
        .last_reload_error
        .unwrap()
        .contains("restart to change"));

    // A fixed key that resolves to what runs is no change.
    let mut same = before.clone();
    same.shards = Shards::Count(2);
    same.size_classes = SizeClassSpec::Geometric {
        min: ByteSize(4096),
        max: ByteSize(65536),
        per_doubling: 1,
    };
    assert!(
        pool.reload(&same).is_err(),
        "4 KiB..64 KiB by doubling is five classes, not three"
    );
    same.size_classes = SizeClassSpec::List(vec![ByteSize(4096), ByteSize(16384), ByteSize(65536)]);
    assert!(pool.reload(&same).unwrap().is_empty());
    assert!(
        pool.last_reload_error().is_none(),
        "a good reload clears the error"
    );
    assert_eq!(pool.stats().reload_errors, 2);
}

#[test]
fn auto_shards_stay_auto() {
    let pool = BufferPool::builder()
        .max_total_memory(1 << 20)
        .build()
        .unwrap();
    let mut cfg = pool.config();
    assert_eq!(cfg.shards, Shards::Auto);
    cfg.shards = Shards::Count(pool.shards());
    cfg.batch_size = 2;
    pool.reload(&cfg).unwrap();
    assert_eq!(pool.config().shards, Shards::Auto, "the built form is kept");
    assert_eq!(pool.batch_size(), 2);
}

#[test]
fn an_invalid_config_changes_nothing_and_lists_every_problem() {
    let pool = pool();
    let before = pool.config();
    let mut cfg = before.clone();
    cfg.tls_cache_size = 16; // fine on its own
    cfg.batch_size = 99;
    cfg.max_outstanding_memory = Some(ByteSize(0));
    cfg.shards = Shards::Count(4);
    let err = pool.reload(&cfg).unwrap_err();
    let Error::Invalid(problems) = &err else {
        panic!("{err}")
    };
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["batch_size", "max_outstanding_memory", "shards"]);
    assert_eq!(problems[0].source, Source::Code);
    assert_eq!(pool.config(), before);
    assert_eq!(pool.tls_cache_size(), 8);
}

#[test]
fn reload_from_a_file_names_its_lines() {
    let pool = pool();
    let cfg = PoolConfig::from_toml_str(
        "[pool]\nshards = 2\nsize_classes = [\"4 KiB\", \"16 KiB\", \"64 KiB\"]\ntls_cache_size = 2\nbatch_size = 2\nnuma = \"off\"\n",
    )
    .unwrap();
    let err = pool.reload(&cfg).unwrap_err();
    assert_eq!(err.problems().len(), 1);
    assert!(
        matches!(err.problems()[0].source, Source::File { line: Some(6), .. }),
        "{err}"
    );
}

#[test]
fn reload_while_other_threads_use_the_pool() {
    let pool = pool();
    let stop = Arc::new(AtomicBool::new(false));
    let working = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (pool, stop, working) = (pool.clone(), stop.clone(), working.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let sizes = [4096, 16384, 65536, 1000 + n % 60000];
                    let mut held: Vec<_> = sizes.iter().map(|&s| pool.get(s)).collect();
                    held[0].extend_from_slice(&[t as u8; 64]);
                    drop(held);
                    drop(pool.get_batch(&[4096; 8]));
                    if n == 0 {
                        working.fetch_add(1, Ordering::SeqCst);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    // Reload only once both workers are inside the pool, so the two overlap.
    let deadline = Instant::now() + Duration::from_secs(20);
    while working.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    let limits = [
        (8, 4, 32 << 20),
        (2, 1, 1 << 20),
        (64, 32, 0),
        (16, 16, 64 << 20),
        (1, 1, 4096),
    ];
    for round in 0..200 {
        let (tls, batch, budget) = limits[round % limits.len()];
        let mut cfg = pool.config();
        cfg.tls_cache_size = tls;
        cfg.batch_size = batch;
        cfg.max_total_memory = ByteSize(budget);
        cfg.stats = round % 3 != 0;
        pool.reload(&cfg).unwrap();
        assert!(pool.batch_size() <= pool.tls_cache_size());
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        assert!(w.join().unwrap() > 0);
    }
    let mut cfg = pool.config();
    cfg.max_total_memory = ByteSize(1 << 20);
    pool.reload(&cfg).unwrap();
    pool.trim();
    let s = pool.stats();
    assert!(s.bytes_retained <= 1 << 20, "{s}");
}
