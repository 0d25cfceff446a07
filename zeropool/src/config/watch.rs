//! [`Pool::watch`]: reload the limits when the config file changes
//! (feature `watch`).
//!
//! ```text
//! notify (parent directory: editors replace files by rename)
//!   ─ events for our file name ─ quiet for 100 ms ─ read + check the whole file
//!   ─ Pool::reload ─ ok: tracing info
//!                  └ error: keep the last good config, last_reload_error, tracing warn
//! ```

use super::sources::{self, FileChoice};
use super::validate;
use crate::error::{Error, Problem, Source};
use crate::pool::Inner;
use crate::{Pool, Poolable};
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the file must stay quiet before it is read.
const DEBOUNCE: Duration = Duration::from_millis(100);

enum Msg {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// Watches a config file for a pool; dropping it stops watching.
///
/// See [`Pool::watch`]. A broken file keeps the last good config:
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let dir = std::env::temp_dir().join(format!("zp-watch-handle-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("zeropool.toml");
/// std::fs::write(&path, "[pool]\ntls_cache_size = 16\n")?;
///
/// let pool = zeropool::BufferPool::builder().config_file(&path).build()?;
/// let handle = pool.watch(&path)?;
/// std::fs::write(&path, "[pool]\ntls_cache_size = 0\n")?; // out of range
/// let deadline = Instant::now() + Duration::from_secs(5);
/// while pool.last_reload_error().is_none() && Instant::now() < deadline {
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// assert!(pool.last_reload_error().unwrap().to_string().contains("tls_cache_size"));
/// assert_eq!(pool.tls_cache_size(), 16); // unchanged
/// drop(handle); // stops watching
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct WatchHandle {
    path: PathBuf,
    watcher: Option<RecommendedWatcher>,
    stop: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// The watched file.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("zp-watch-path-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[pool]\n")?;
    /// let pool = zeropool::BufferPool::new();
    /// let handle = pool.watch(&path)?;
    /// assert_eq!(handle.path(), path);
    /// # drop(handle);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(Msg::Stop);
        drop(self.watcher.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<T: Poolable> Pool<T> {
    /// Applies the config file at `path` now and again whenever it changes,
    /// until the returned handle drops.
    ///
    /// Each time, the whole file is read and checked with the environment
    /// and the builder's calls over it, as when the pool was built, and the
    /// pool's table is applied with [`reload`](Self::reload). A corrupt,
    /// half-written or deleted file keeps the last good config; the error is
    /// kept as [`last_reload_error`](Self::last_reload_error), counted in
    /// [`stats`](Self::stats) and logged as a `tracing` warning. The
    /// directory is watched rather than the file, so editors that replace
    /// the file by renaming are followed.
    ///
    /// Fails if the file cannot be applied now or watching cannot start.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let dir = std::env::temp_dir().join(format!("zp-watch-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("zeropool.toml");
    /// std::fs::write(&path, "[pool]\nmax_total_memory = \"64 MiB\"\n")?;
    ///
    /// let pool = zeropool::BufferPool::builder().config_file(&path).build()?;
    /// let handle = pool.watch(&path)?;
    /// std::fs::write(&path, "[pool]\nmax_total_memory = \"16 MiB\"\n")?;
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// while pool.max_total_memory() != 16 << 20 && Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!(pool.max_total_memory(), 16 << 20);
    /// drop(handle);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn watch(&self, path: impl AsRef<Path>) -> Result<WatchHandle, Error> {
        let path = path.as_ref().to_path_buf();
        let watch_error = |reason: String| Error::Watch {
            path: path.clone(),
            reason,
        };
        let name = path
            .file_name()
            .map(OsString::from)
            .ok_or_else(|| watch_error("not a file path".into()))?;
        reload_from_file(&self.inner, &path)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let mut watcher = RecommendedWatcher::new(
            move |ev| {
                let _ = events.send(Msg::Event(ev));
            },
            notify::Config::default(),
        )
        .map_err(|e| watch_error(e.to_string()))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(e.to_string()))?;
        let weak = self.inner.this.clone();
        let file = path.clone();
        let thread = std::thread::Builder::new()
            .name("zeropool-watch".into())
            .spawn(move || watch_loop(rx, weak, file, name))
            .map_err(|e| watch_error(e.to_string()))?;
        Ok(WatchHandle {
            path,
            watcher: Some(watcher),
            stop: tx,
            thread: Some(thread),
        })
    }
}

fn watch_loop<T: Poolable>(
    rx: mpsc::Receiver<Msg>,
    pool: Weak<Inner<T>>,
    path: PathBuf,
    name: OsString,
) {
    loop {
        match rx.recv() {
            Ok(Msg::Event(ev)) if concerns(&ev, &name) => {}
            Ok(Msg::Event(_)) => continue,
            Ok(Msg::Stop) | Err(_) => return,
        }
        // Wait until the file has been quiet for a moment.
        loop {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(Msg::Event(_)) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let Some(inner) = pool.upgrade() else { return };
        let _ = reload_from_file(&inner, &path);
    }
}

/// Whether a watcher event may have changed the file named `name`.
fn concerns(ev: &notify::Result<notify::Event>, name: &OsString) -> bool {
    let Ok(ev) = ev else { return true };
    let changes = match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    changes
        && (ev.paths.is_empty()
            || ev
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str())))
}

/// Reads and checks the whole file (with the environment and the builder's
/// calls over it) and reloads the pool's table; on any error keeps the last
/// good config, records the error and logs it.
fn reload_from_file<T: Poolable>(inner: &Inner<T>, path: &Path) -> Result<(), Error> {
    let state = &inner.config;
    let section = state.section.as_str();
    let result = if path.is_file() {
        let gathered =
            sources::gather(FileChoice::Required(path.to_path_buf(), Source::Code), true);
        let s = gathered.section(section);
        let mut cfg = s.config;
        state.explicit.apply(&mut cfg);
        let mut problems = gathered.problems_except(section);
        problems.extend(validate::check(&cfg, Some(section), &s.unparsed));
        if problems.is_empty() {
            inner.reload(&cfg)
        } else {
            let err = validate::invalid(problems);
            state.record_error(&err);
            Err(err)
        }
    } else {
        let err = Error::Invalid(vec![Problem::new(
            "config_file",
            path.display().to_string(),
            Source::File {
                path: path.to_path_buf(),
                line: None,
            },
            "the watched file is missing (deleted, or being replaced); keeping the last good config",
        )]);
        state.record_error(&err);
        Err(err)
    };
    match &result {
        Ok(report) => tracing::info!(
            path = %path.display(),
            section,
            "zeropool: config reloaded: {report}"
        ),
        Err(err) => tracing::warn!(
            path = %path.display(),
            section,
            "zeropool: config reload failed, keeping the last good config: {err}"
        ),
    }
    result.map(|_| ())
}
