//! `publish_metrics_every`: a background thread publishes the stats until
//! its handle drops. One recorder is installed for the whole process.
//! Nothing here depends on timing: positive conditions are polled up to a
//! generous deadline, and "nothing more is published" is asserted only once
//! the publishing thread is known to be gone (joined, or no longer listed
//! among the process's threads).
#![cfg(feature = "metrics")]

mod config_support;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use zeropool::BufferPool;

/// The process's recorder, and a lock: reading it drains the values, so
/// the tests take turns.
fn recorder() -> (&'static Snapshotter, MutexGuard<'static, ()>) {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let snapshotter = SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this process");
        snapshotter
    });
    (snapshotter, TURN.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `zeropool_gets_total` of `pool` in a fresh snapshot, if it was published
/// since the last one.
fn gets(snapshotter: &Snapshotter, pool: &str) -> Option<u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(k, _, _, v)| {
            let key = k.key();
            let ours = key.name() == "zeropool_gets_total"
                && key.labels().any(|l| l.key() == "pool" && l.value() == pool);
            match v {
                DebugValue::Counter(n) if ours && n > 0 => Some(n),
                _ => None,
            }
        })
}

fn wait_for(what: &str, done: impl FnMut() -> bool) {
    config_support::wait_until(what, Duration::from_secs(30), done);
}

/// The publishing thread's name as `/proc` shows it (cut at 15 bytes).
const PUBLISHER: &str = "zeropool-metric";

#[test]
fn publishes_at_once_then_on_every_tick_until_dropped() {
    let (snapshotter, _turn) = recorder();
    let pool = BufferPool::new();
    drop(pool.get(4096));
    let handle = pool
        .publish_metrics_every("ticking", Duration::from_millis(10))
        .expect("a non-zero interval");
    assert_eq!(handle.name(), "ticking");
    assert_eq!(handle.interval(), Duration::from_millis(10));
    assert_eq!(
        gets(snapshotter, "ticking"),
        Some(1),
        "published before returning"
    );

    drop(pool.get(4096));
    drop(pool.get(4096));
    wait_for("3 gets published", || {
        gets(snapshotter, "ticking") == Some(3)
    });

    // The drop joins the thread: from here on nothing can publish.
    drop(handle);
    let _ = gets(snapshotter, "ticking"); // drain
    drop(pool.get(4096));
    assert_eq!(
        gets(snapshotter, "ticking"),
        None,
        "published after the handle dropped"
    );
}

#[test]
fn the_publisher_does_not_keep_the_pool_alive() {
    let (snapshotter, _turn) = recorder();
    let pool = BufferPool::new();
    let weak_probe = pool.get_owned(4096); // a guard keeps the pool alive too
    let handle = pool
        .publish_metrics_every("short-lived", Duration::from_millis(5))
        .expect("a non-zero interval");
    if config_support::threads_named(PUBLISHER).is_some() {
        wait_for("the publisher to be listed", || {
            config_support::threads_named(PUBLISHER) == Some(1)
        });
    }
    drop(pool);
    drop(weak_probe);
    // The pool is gone: nothing more to publish, and the thread ends on its
    // own, with the handle still alive. (The tests that start publishers
    // take turns, so it is the only one of this process.)
    if config_support::threads_named(PUBLISHER).is_some() {
        wait_for("the publisher to end on its own", || {
            config_support::threads_named(PUBLISHER) == Some(0)
        });
        // Gone: whatever it published last is drained, and nothing follows.
        let _ = gets(snapshotter, "short-lived");
        assert_eq!(gets(snapshotter, "short-lived"), None);
    }
    drop(handle); // joins a thread that already ended
}

#[test]
fn a_zero_interval_is_an_error_naming_the_call_and_what_is_accepted() {
    let pool = BufferPool::new();
    let err = pool
        .publish_metrics_every("zero", Duration::ZERO)
        .expect_err("a zero interval is refused");
    let text = err.to_string();
    assert_eq!(err.problems()[0].key, "publish_metrics_every", "{text}");
    assert!(text.contains("non-zero interval"), "{text}");
    // Nothing was published and the pool serves as before.
    drop(pool.get(64));
    assert_eq!(pool.stats().gets, 1);
}
