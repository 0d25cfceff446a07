//! Helpers for the config tests: scratch directories, and running a test
//! body in a child process with its own environment and working directory
//! (so no test changes the environment of the process that runs the others).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable that tells a child which test body to run.
const CHILD: &str = "ZP_TEST_CHILD";

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zp-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process is the child running test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(name)
}

/// Runs test `name` of this test binary again in a child process, with only
/// `vars` among the `ZEROPOOL_*` variables and `dir` as working directory;
/// panics with the child's output if it fails.
pub fn run_child(name: &str, vars: &[(&str, &str)], dir: &Path) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .current_dir(dir)
        .env(CHILD, name);
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("ZEROPOOL_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child `{name}` failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keys of a problem list, in order.
pub fn keys(err: &zeropool::Error) -> Vec<String> {
    err.problems().iter().map(|p| p.key.clone()).collect()
}

/// How many threads of this process have a name starting with `prefix`
/// (names are cut at 15 bytes), read from `/proc/self/task`; `None` where
/// that is not available. A thread that exits while this reads is skipped.
pub fn threads_named(prefix: &str) -> Option<usize> {
    if cfg!(miri) {
        return None; // Miri's isolation hides /proc
    }
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim_end().starts_with(prefix))
            .count(),
    )
}

/// Polls `done` every few milliseconds until it holds; panics naming `what`
/// if it still does not after `limit` (a generous bound: a positive
/// condition that holds sooner or later, never a measure of speed).
#[track_caller]
pub fn wait_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
