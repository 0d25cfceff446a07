//! A config file replaced mid-write: every prefix of a new file read with
//! `PoolConfig::load` and applied with `reload`, and the same file written
//! half-way under `Pool::watch` (in place, and by renaming a temporary over
//! it). A half file is refused whole: the error names the file and the key,
//! no limit changes; the completed file then applies all its limits at once.

mod config_support;

use config_support::TempDir;
use std::path::Path;
use std::time::{Duration, Instant};
use zeropool::{BufferPool, ConfigSet, Error, PoolConfig, Source};

/// The file the pool starts from.
const GOOD: &str = "[pool]
shards = 2
size_classes = [\"4 KiB\", \"64 KiB\"]
max_total_memory = \"64 MiB\"
batch_size = 4
tls_cache_size = 8
stats = true
max_outstanding_memory = \"1 GiB\"
on_exhausted = \"allocate\"
";

/// The file that replaces it: every reloadable limit changes. `batch_size`
/// comes before `tls_cache_size`, so a copy cut between the two is valid
/// TOML with a batch larger than the (default) cache: refused.
const NEXT: &str = "[pool]
shards = 2
size_classes = [\"4 KiB\", \"64 KiB\"]
max_total_memory = \"16 MiB\"
batch_size = 16
tls_cache_size = 32
stats = false
max_outstanding_memory = \"256 MiB\"
on_exhausted = \"error\"
trim_after = \"30s\"
";

/// Generous: a wait ends as soon as its condition holds.
const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `done` until it holds; fails naming `what` after [`PATIENCE`].
#[track_caller]
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Replaces `path` the way editors do: write a temporary, rename it over.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Every problem comes from `path`; each names a key of `[pool]` (with its
/// line) unless it is about the file as a whole (a syntax error).
#[track_caller]
fn names_the_file_and_keys(err: &Error, path: &Path) {
    names_keys(err, path, false);
}

/// As [`names_the_file_and_keys`]; with `defaults`, a key the file does not
/// set may be named with its default as the source.
#[track_caller]
fn names_keys(err: &Error, path: &Path, defaults: bool) {
    assert!(!err.problems().is_empty(), "{err}");
    for p in err.problems() {
        if defaults && p.source == Source::Default {
            assert!(p.key.starts_with("pool."), "{p}");
            continue;
        }
        let Source::File { path: from, line } = &p.source else {
            panic!("not from the file: {p}\n{err}");
        };
        assert_eq!(from, path, "{err}");
        if p.key.is_empty() {
            assert!(p.accepted.starts_with("not valid TOML"), "{p}");
        } else {
            assert!(p.key.starts_with("pool."), "{p}");
            assert!(line.is_some(), "a key's line: {p}");
        }
    }
    if err.problems().iter().any(|p| p.source != Source::Default) {
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{err}");
    }
}

/// Asserts that the pool's live limits are those of `cfg`.
#[track_caller]
fn runs_with(pool: &BufferPool, cfg: &PoolConfig) {
    assert_eq!(pool.config(), *cfg);
    let s = pool.stats();
    assert_eq!(pool.max_total_memory() as u64, cfg.max_total_memory.bytes());
    assert_eq!(pool.tls_cache_size(), cfg.tls_cache_size);
    assert_eq!(pool.batch_size(), cfg.batch_size);
    assert_eq!(
        s.max_outstanding_memory.map(|b| b as u64),
        cfg.max_outstanding_memory.map(|b| b.bytes())
    );
    assert_eq!(pool.trim_after(), cfg.trim_after.map(|p| p.0));
    // Statistics off: a get counts nothing (on: it counts one).
    let gets = s.gets;
    drop(pool.get(4096));
    assert_eq!(pool.stats().gets - gets, usize::from(cfg.stats));
}

#[test]
fn every_prefix_of_a_new_file_is_refused_or_applied_whole() {
    let dir = TempDir::new("faults-prefix");
    let path = dir.write("zeropool.toml", GOOD);
    let pool = BufferPool::builder().config_file(&path).build().unwrap();
    let good = PoolConfig::load(&path).unwrap();
    runs_with(&pool, &good);
    let (mut refused, mut applied) = (0, 0);
    for cut in (0..NEXT.len()).filter(|&i| NEXT.is_char_boundary(i)) {
        std::fs::write(&path, &NEXT[..cut]).unwrap();
        let before = pool.config();
        match PoolConfig::load(&path) {
            Err(err) => {
                // Unreadable: nothing can reach the pool.
                names_the_file_and_keys(&err, &path);
                let again = ConfigSet::resolve(Some(&path)).unwrap_err();
                names_the_file_and_keys(&again, &path);
                refused += 1;
            }
            Ok(cfg) => match pool.reload(&cfg) {
                Ok(_) => {
                    runs_with(&pool, &cfg);
                    applied += 1;
                }
                Err(err) => {
                    // Readable, but it changes a fixed key: nothing changes.
                    assert!(matches!(err, Error::RestartRequired(_)), "{err}");
                    names_keys(&err, &path, true);
                    assert_eq!(pool.last_reload_error(), Some(err));
                    runs_with(&pool, &before);
                    refused += 1;
                }
            },
        }
    }
    assert!(
        refused > 100 && applied > 0,
        "{refused} refused, {applied} applied"
    );

    // The writer finishes, by rename: every limit of the new file at once.
    replace(&path, NEXT);
    let next = PoolConfig::load(&path).unwrap();
    pool.reload(&next).unwrap();
    runs_with(&pool, &next);
    assert_eq!(pool.last_reload_error(), None);

    // Half of the old file written in place over it: refused, then completed.
    std::fs::write(&path, &GOOD[..GOOD.find("1 GiB").unwrap() + 1]).unwrap();
    let err = PoolConfig::load(&path).unwrap_err();
    names_the_file_and_keys(&err, &path);
    assert!(
        matches!(err.problems()[0].source, Source::File { line: Some(8), .. }),
        "the cut line: {err}"
    );
    std::fs::write(&path, GOOD).unwrap();
    pool.reload(&PoolConfig::load(&path).unwrap()).unwrap();
    runs_with(&pool, &good);
}

/// Cuts of [`NEXT`] a writer may leave for a moment, each refused: mid
/// table header, mid key, mid string, mid array, and a valid TOML prefix
/// whose batch is larger than the cache it has not set yet.
fn half_files() -> Vec<(&'static str, String)> {
    let upto = |marker: &str, extra: usize| {
        let at = NEXT.find(marker).unwrap() + extra;
        NEXT[..at].to_string()
    };
    vec![
        ("mid header", NEXT[..3].to_string()),
        ("mid array", upto("64 KiB", 2)),
        ("mid string", upto("16 MiB", 4)),
        ("after batch_size", upto("tls_cache_size", 0)),
        ("mid key", upto("tls_cache_size", 7)),
        ("mid value", upto("256 MiB", 3)),
    ]
}

/// Waits for a watched reload to fail after `seen` failures; returns the
/// count and the error.
#[track_caller]
fn next_failure(pool: &BufferPool, seen: usize, what: &str) -> (usize, Error) {
    wait_for(what, || pool.stats().reload_errors > seen);
    let err = pool.last_reload_error().expect("a failed reload is kept");
    (pool.stats().reload_errors, err)
}

/// Runs the half files through a watched pool, writing each with `write`,
/// then the complete file.
fn watched(tag: &str, write: fn(&Path, &str)) {
    let dir = TempDir::new(tag);
    let path = dir.write("zeropool.toml", GOOD);
    let pool = BufferPool::builder().config_file(&path).build().unwrap();
    let watch = pool.watch(&path).unwrap();
    let good = pool.config();
    let mut seen = pool.stats().reload_errors;
    assert_eq!(seen, 0, "{:?}", pool.last_reload_error());
    for (what, half) in half_files() {
        write(&path, &half);
        let (count, err) = next_failure(&pool, seen, what);
        seen = count;
        names_the_file_and_keys(&err, &path);
        if what == "after batch_size" {
            let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
            assert_eq!(keys, ["pool.batch_size"], "{err}");
            assert!(
                matches!(err.problems()[0].source, Source::File { line: Some(5), .. }),
                "{err}"
            );
        }
        // The valid lines before the cut (a new budget, a new batch) were
        // not applied either: nothing half-applies.
        runs_with(&pool, &good);
    }

    // Completed: every limit at once, the error cleared.
    write(&path, NEXT);
    wait_for("the completed file", || pool.config() != good);
    runs_with(&pool, &PoolConfig::load(&path).unwrap());
    assert_eq!(pool.last_reload_error(), None);
    assert_eq!(pool.stats().last_reload_error, None);

    // And back to the old file, cut and then completed.
    write(&path, &GOOD[..GOOD.find("64 MiB").unwrap() + 2]);
    next_failure(&pool, seen, "half the old file");
    let next = pool.config();
    write(&path, GOOD);
    wait_for("the old file", || pool.config() != next);
    runs_with(&pool, &good);
    drop(watch);
}

#[test]
#[cfg_attr(miri, ignore = "notify watches with inotify, which Miri lacks")]
fn a_watched_file_written_in_place_half_way_changes_nothing() {
    watched("faults-watch-in-place", |path, text| {
        std::fs::write(path, text).unwrap()
    });
}

#[test]
#[cfg_attr(miri, ignore = "notify watches with inotify, which Miri lacks")]
fn a_watched_file_replaced_by_a_half_written_copy_changes_nothing() {
    watched("faults-watch-rename", replace);
}
