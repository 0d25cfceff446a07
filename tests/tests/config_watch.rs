//! `Pool::watch`: edit the file under load and the new limit applies; a
//! corrupt, half-written or deleted file keeps the last good config with the
//! error visible; a changed fixed key is refused; a file written in place is
//! applied only once its writer is done. Every wait is for a condition that
//! must come true, up to a generous deadline; nothing is asserted "not to
//! happen" after a sleep.

mod config_support;

use config_support::{wait_until, TempDir};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeropool::{BufferPool, Error};

/// The bound on every wait for something that must happen (a measure of
/// patience, not of speed).
const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `done` until it holds or `limit` passes; returns the time taken.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Replaces the file the way editors do: write a temporary, rename it over.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn file(budget: &str) -> String {
    format!("[pool]\nshards = 2\nsize_classes = [\"4 KiB\", \"64 KiB\"]\nmax_total_memory = \"{budget}\"\n")
}

#[test]
fn the_file_is_followed_under_load() {
    let dir = TempDir::new("watch");
    let path = dir.write("zeropool.toml", &file("64 MiB"));
    let pool = BufferPool::builder().config_file(&path).build().unwrap();
    assert_eq!(pool.max_total_memory(), 64 << 20);
    let watch = pool.watch(&path).unwrap();
    assert_eq!(watch.path(), path);

    // Two threads keep the pool busy throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (pool, stop) = (pool.clone(), stop.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let held = pool.get_batch(&[4096, 65536, 4096, 65536]);
                    drop(held);
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    let errors = || pool.stats().reload_errors;
    // Waits for one more failed reload than `seen`, and returns the new count.
    let next_error = |seen: usize, what: &str| {
        assert!(
            within(PATIENCE, || errors() > seen).is_some(),
            "{what} not noticed within {PATIENCE:?}"
        );
        errors()
    };

    // Lower the budget in place: applied, idle memory follows.
    std::fs::write(&path, file("8 MiB")).unwrap();
    let took = within(PATIENCE, || pool.stats().max_total_memory == 8 << 20);
    assert!(took.is_some(), "not applied: {}", pool.stats());
    assert!(
        within(PATIENCE, || pool.stats().bytes_retained <= 8 << 20).is_some(),
        "{}",
        pool.stats()
    );

    // Replaced by rename, as editors do.
    replace(&path, &file("4 MiB"));
    assert!(
        within(PATIENCE, || pool.max_total_memory() == 4 << 20).is_some(),
        "rename not followed"
    );
    assert_eq!(errors(), 0, "{:?}", pool.last_reload_error());

    // Corrupt: the last good config stays, the error is visible.
    std::fs::write(&path, "[pool\nmax_total_memory = \"1 MiB\"\n").unwrap();
    let seen = next_error(0, "corrupt file");
    assert_eq!(pool.max_total_memory(), 4 << 20);
    let err = pool.last_reload_error().unwrap();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("not valid TOML") && text.contains("line 1"),
        "{text}"
    );
    assert_eq!(pool.stats().last_reload_error, Some(text));

    // Half-written: a good prefix cut mid-value.
    std::fs::write(&path, "[pool]\nshards = 2\nmax_total_memory = \"2 Mi").unwrap();
    let seen = next_error(seen, "half-written file");
    assert_eq!(pool.max_total_memory(), 4 << 20);

    // A bad value.
    std::fs::write(&path, file("lots")).unwrap();
    let seen = next_error(seen, "bad value");
    assert!(pool
        .last_reload_error()
        .unwrap()
        .to_string()
        .contains("`pool.max_total_memory` = \"lots\""));
    assert_eq!(pool.max_total_memory(), 4 << 20);

    // Deleted: kept.
    std::fs::remove_file(&path).unwrap();
    let seen = next_error(seen, "deletion");
    assert_eq!(pool.max_total_memory(), 4 << 20);
    assert!(pool
        .last_reload_error()
        .unwrap()
        .to_string()
        .contains("missing"));

    // Back with a good file: applied, the error cleared.
    std::fs::write(&path, file("16 MiB")).unwrap();
    assert!(
        within(PATIENCE, || pool.max_total_memory() == 16 << 20).is_some(),
        "recreated file not applied"
    );
    assert!(pool.last_reload_error().is_none());

    // A fixed key changed: refused, nothing else applied.
    std::fs::write(
        &path,
        "[pool]\nshards = 4\nsize_classes = [\"4 KiB\", \"64 KiB\"]\nmax_total_memory = \"2 MiB\"\n",
    )
    .unwrap();
    next_error(seen, "structural change");
    let err = pool.last_reload_error().unwrap();
    assert!(matches!(err, Error::RestartRequired(_)), "{err}");
    assert!(
        err.to_string().contains("restart to change `shards`"),
        "{err}"
    );
    assert_eq!(pool.max_total_memory(), 16 << 20, "nothing else changed");
    assert_eq!(pool.shards(), 2);

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        assert!(w.join().unwrap() > 0);
    }

    // Dropping the handle stops watching: the drop joins the watcher
    // thread, so once it returns nothing can reload this pool any more. A
    // control pool watching the same file shows the change was there to
    // be seen (it would have suited `pool`: same fixed keys).
    let reloads = watch.reloads();
    assert!(reloads >= 8, "one per change above: {reloads}");
    drop(watch);
    std::fs::write(&path, file("16 MiB")).unwrap();
    let control = BufferPool::builder().config_file(&path).build().unwrap();
    let control_watch = control.watch(&path).unwrap();
    replace(&path, &file("1 MiB"));
    wait_until("the control pool to follow the file", PATIENCE, || {
        control_watch.reloads() == 1
    });
    assert_eq!(control.max_total_memory(), 1 << 20);
    assert_eq!(pool.max_total_memory(), 16 << 20, "no longer watched");
    assert!(
        pool.last_reload_error().is_some(),
        "the structural change's"
    );
}

/// Writes `halves` to `path` in place through one open file, pausing
/// `pause` between them, and closes it.
fn write_in_place(path: &Path, halves: [&str; 2], pause: Duration) {
    let mut f = std::fs::File::create(path).unwrap(); // truncates
    f.write_all(halves[0].as_bytes()).unwrap();
    f.sync_data().unwrap();
    std::thread::sleep(pause);
    f.write_all(halves[1].as_bytes()).unwrap();
    f.sync_data().unwrap();
}

/// A file rewritten in place in two halves, with a pause far longer than
/// the quiet period between them, is applied once, whole: the first half
/// (valid TOML cut at a line boundary, without `max_total_memory`) never
/// takes the budget back to its default. (Linux: the watcher sees when the
/// writer closes the file; elsewhere only the atomic rename is safe.)
#[cfg(target_os = "linux")]
#[test]
fn a_file_written_in_two_halves_never_loses_its_budget() {
    let dir = TempDir::new("watch-halves");
    let path = dir.write("zeropool.toml", &file("16 MiB"));
    let pool = BufferPool::builder().config_file(&path).build().unwrap();
    let watch = pool.watch(&path).unwrap();
    assert_eq!(pool.max_total_memory(), 16 << 20);

    // Every value the budget takes meanwhile, as often as it can be read.
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                seen.insert(pool.max_total_memory());
                std::thread::sleep(Duration::from_millis(1));
            }
            seen
        })
    };
    let text = file("8 MiB");
    let cut = text.find("max_total_memory").unwrap();
    let (first, rest) = text.split_at(cut);
    assert!(
        zeropool::PoolConfig::from_toml_str(first).is_ok(),
        "{first}"
    );
    write_in_place(&path, [first, rest], Duration::from_millis(400));
    wait_until("the whole file to be applied", PATIENCE, || {
        watch.reloads() >= 1
    });
    stop.store(true, Ordering::Relaxed);
    let seen = monitor.join().unwrap();
    assert_eq!(pool.max_total_memory(), 8 << 20);
    assert_eq!(watch.reloads(), 1, "the change was read once, whole");
    assert_eq!(
        pool.stats().reload_errors,
        0,
        "{:?}",
        pool.last_reload_error()
    );
    assert!(
        seen.iter().all(|&b| b == 16 << 20 || b == 8 << 20),
        "the budget went through {seen:?}"
    );
}

/// A writer that keeps the file open (never closes it) is still followed,
/// once the file has stayed unchanged for a while; its close later is one
/// more (identical) reload.
#[cfg(target_os = "linux")]
#[test]
fn a_writer_that_keeps_the_file_open_is_followed_once_quiet() {
    let dir = TempDir::new("watch-open");
    let path = dir.write("zeropool.toml", &file("16 MiB"));
    let pool = BufferPool::builder().config_file(&path).build().unwrap();
    let watch = pool.watch(&path).unwrap();
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(file("8 MiB").as_bytes()).unwrap();
    f.sync_data().unwrap();
    wait_until("the open file to be applied", PATIENCE, || {
        watch.reloads() >= 1
    });
    assert_eq!(pool.max_total_memory(), 8 << 20);
    drop(f);
    wait_until("the close to be noticed", PATIENCE, || watch.reloads() >= 2);
    assert_eq!(pool.max_total_memory(), 8 << 20);
    assert_eq!(pool.stats().reload_errors, 0);
}

#[test]
fn watch_applies_the_file_at_once_and_reports_a_bad_one() {
    let dir = TempDir::new("watch-start");
    let path = dir.write("zeropool.toml", "[pool]\ntls_cache_size = 32\n");
    let pool = BufferPool::builder()
        .max_total_memory(1 << 20)
        .build()
        .unwrap();
    let handle = pool.watch(&path).unwrap();
    assert_eq!(pool.tls_cache_size(), 32);
    assert_eq!(
        pool.max_total_memory(),
        1 << 20,
        "builder calls stay over the file"
    );
    drop(handle);

    std::fs::write(&path, "[pool]\ntls_cache_size = 0\n").unwrap();
    let err = pool.watch(&path).unwrap_err();
    assert_eq!(err.problems()[0].key, "pool.tls_cache_size");
    assert_eq!(pool.tls_cache_size(), 32);

    let err = pool.watch(dir.path().join("absent.toml")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
