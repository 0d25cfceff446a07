//! [`Pool::watch`]: reload the limits when the config file changes
//! (feature `watch`).
//!
//! ```text
//! notify (parent directory: editors replace files by rename)
//!   ─ events for our file name ─ quiet for 100 ms
//!   ─ a writer still holds it open (Linux: a write not yet followed by its close)?
//!       wait for the close (or 10 s without a change: a writer that never closes)
//!   ─ read ─ 50 ms quiet ─ read + check the whole file ─ read: all three agree?
//!       no (or an event came): start again from "quiet"
//!   ─ Pool::reload ─ ok: tracing info
//!                  └ error: keep the last good config, last_reload_error, tracing warn
//! ```
//! A file written in place is thus never applied while its writer still has
//! it open (where the platform reports closes), nor while its content is
//! still changing; an atomic rename (write a temporary file, rename it over)
//! is the edit that is never seen half done on every platform.

use super::sources::{self, FileChoice};
use super::validate;
use super::PoolConfig;
use crate::error::{Error, Problem, Source};
use crate::pool::Inner;
use crate::{Pool, Poolable};
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher, WatcherKind};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the file must stay quiet (no change event) before it is read.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// The gap between the two reads that must agree before a change applies.
const SETTLE: Duration = Duration::from_millis(50);
/// How long a file a writer still holds open must stay unchanged before it
/// is applied anyway (a writer that never closes it).
const OPEN_WRITER_PATIENCE: Duration = Duration::from_secs(10);

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
    /// Changes read and applied or refused since `watch` returned.
    reloads: Arc<AtomicU64>,
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

    /// How many changes of the file this watcher has read and applied (or
    /// refused, keeping the last good config) since [`Pool::watch`]
    /// returned; the apply inside `watch` itself is not counted. A change
    /// counts once, when the file is stable; the moments in between (a
    /// writer still writing) count nothing.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let dir = std::env::temp_dir().join(format!("zp-watch-reloads-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("zeropool.toml");
    /// std::fs::write(&path, "[pool]\ntls_cache_size = 16\n")?;
    /// let pool = zeropool::BufferPool::new();
    /// let handle = pool.watch(&path)?;
    /// assert_eq!(handle.reloads(), 0);
    /// // The safe edit: a temporary file renamed over the watched one.
    /// std::fs::write(dir.join("zeropool.toml.tmp"), "[pool]\ntls_cache_size = 32\n")?;
    /// std::fs::rename(dir.join("zeropool.toml.tmp"), &path)?;
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// while handle.reloads() == 0 && Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!((handle.reloads(), pool.tls_cache_size()), (1, 32));
    /// # drop(handle);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
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
    /// A change is applied only once the file is stable:
    /// - no change event for 100 ms;
    /// - where the platform reports when a writer closes a file (Linux), no
    ///   writer still holding it open since its last write; a writer that
    ///   keeps it open is followed once the file has not changed for 10 s;
    /// - two reads 50 ms apart, with the whole check between them, agree.
    ///
    /// Otherwise it waits and reads again. So a file written in place in
    /// several steps is applied whole, never cut at a line boundary (a
    /// valid prefix whose missing keys would silently revert to their
    /// defaults, e.g. the budget), however long the writer pauses while it
    /// holds the file open. **The safe way to edit is an atomic rename**:
    /// write a temporary file in the same directory, then rename it over
    /// the watched one (as most editors and config tools do); the watcher
    /// then only ever sees a complete file, on every platform. On a
    /// platform that does not report closes, a writer that pauses longer
    /// than the quiet period in the middle of an in-place write can have
    /// the part written so far applied.
    ///
    /// [`WatchHandle::reloads`] counts the changes applied or refused.
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
        let reloads = Arc::new(AtomicU64::new(0));
        let counted = reloads.clone();
        let close_events = <RecommendedWatcher as Watcher>::kind() == WatcherKind::Inotify;
        let thread = std::thread::Builder::new()
            .name("zeropool-watch".into())
            .spawn(move || {
                let file = WatchedFile {
                    path: file,
                    name,
                    close_events,
                    writing: false,
                };
                watch_loop(rx, weak, file, &counted)
            })
            .map_err(|e| watch_error(e.to_string()))?;
        Ok(WatchHandle {
            path,
            reloads,
            watcher: Some(watcher),
            stop: tx,
            thread: Some(thread),
        })
    }
}

/// The watched file and what the events said about it.
struct WatchedFile {
    path: PathBuf,
    name: OsString,
    /// Whether the watcher reports when a writer closes the file (inotify).
    close_events: bool,
    /// A writer wrote (or created the file) and has not closed it yet, as
    /// far as the events tell (only tracked with `close_events`).
    writing: bool,
}

impl WatchedFile {
    /// Notes a watcher event; whether it may have changed the file.
    fn note(&mut self, ev: &notify::Result<notify::Event>) -> bool {
        let ev = match ev {
            Ok(ev) if !ev.need_rescan() => ev,
            // Events were lost: nothing is known about open writers.
            _ => {
                self.writing = false;
                return true;
            }
        };
        let ours = ev.paths.is_empty()
            || ev
                .paths
                .iter()
                .any(|p| p.file_name() == Some(self.name.as_os_str()));
        if !ours {
            return false;
        }
        match ev.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                self.writing = false;
                true
            }
            // Opening and reading (ours included) change nothing.
            EventKind::Access(_) => false,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                self.writing = self.close_events;
                true
            }
            // Renamed over (a whole new file) or away, or removed: no writer
            // of the old file matters any more.
            EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => {
                self.writing = false;
                true
            }
            _ => true,
        }
    }

    /// The file's bytes now (`None`: missing or unreadable).
    fn read(&self) -> Option<Vec<u8>> {
        std::fs::read(&self.path).ok()
    }
}

/// What came of waiting on the events.
enum Waited {
    /// The time passed with no event that may have changed the file.
    Quiet,
    /// An event that may have changed the file.
    Changed,
    /// The handle dropped.
    Stop,
}

/// Waits `quiet` for events, noting each; returns at the first change.
fn wait_quiet(rx: &mpsc::Receiver<Msg>, file: &mut WatchedFile, quiet: Duration) -> Waited {
    let deadline = Instant::now() + quiet;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Event(ev)) => {
                if file.note(&ev) {
                    return Waited::Changed;
                }
            }
            Err(RecvTimeoutError::Timeout) => return Waited::Quiet,
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return Waited::Stop,
        }
    }
}

fn watch_loop<T: Poolable>(
    rx: mpsc::Receiver<Msg>,
    pool: Weak<Inner<T>>,
    mut file: WatchedFile,
    reloads: &AtomicU64,
) {
    loop {
        // A change.
        loop {
            match rx.recv() {
                Ok(Msg::Event(ev)) => {
                    if file.note(&ev) {
                        break;
                    }
                }
                Ok(Msg::Stop) | Err(_) => return,
            }
        }
        // Once the file is stable, apply it (once).
        'stable: loop {
            match wait_quiet(&rx, &mut file, DEBOUNCE) {
                Waited::Quiet => {}
                Waited::Changed => continue 'stable,
                Waited::Stop => return,
            }
            if file.writing {
                // Its writer has not closed it: wait for the close (an
                // event), or give up on it after a long quiet.
                match wait_quiet(&rx, &mut file, OPEN_WRITER_PATIENCE) {
                    Waited::Quiet => {}
                    Waited::Changed => continue 'stable,
                    Waited::Stop => return,
                }
            }
            let before = file.read();
            match wait_quiet(&rx, &mut file, SETTLE) {
                Waited::Quiet => {}
                Waited::Changed => continue 'stable,
                Waited::Stop => return,
            }
            let Some(inner) = pool.upgrade() else { return };
            let checked = check_file(&inner, &file.path);
            // The check read the file between two reads that agree: it read
            // that content (or the file changed and changed back).
            if file.read() != before {
                continue 'stable;
            }
            let _ = apply(&inner, &file.path, checked);
            reloads.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
}

/// Reads and checks the whole file, with the environment and the builder's
/// calls over it; changes nothing.
fn check_file<T: Poolable>(inner: &Inner<T>, path: &Path) -> Result<PoolConfig, Error> {
    let state = &inner.config;
    let section = state.section.as_str();
    if !path.is_file() {
        return Err(Error::Invalid(vec![Problem::new(
            "config_file",
            path.display().to_string(),
            Source::File {
                path: path.to_path_buf(),
                line: None,
            },
            "the watched file is missing (deleted, or being replaced); keeping the last good config",
        )]));
    }
    let gathered = sources::gather(FileChoice::Required(path.to_path_buf(), Source::Code), true);
    let s = gathered.section(section);
    let mut cfg = s.config;
    state.explicit.apply(&mut cfg);
    let mut problems = gathered.problems_except(section);
    problems.extend(validate::check(&cfg, Some(section), &s.unparsed));
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(validate::invalid(problems))
    }
}

/// Reloads the pool's table from a checked file; on any error keeps the
/// last good config, records the error and logs it.
fn apply<T: Poolable>(
    inner: &Inner<T>,
    path: &Path,
    checked: Result<PoolConfig, Error>,
) -> Result<(), Error> {
    let state = &inner.config;
    let section = state.section.as_str();
    let result = match checked {
        Ok(cfg) => inner.reload(&cfg),
        Err(err) => {
            state.record_error(&err);
            Err(err)
        }
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

/// Reads, checks and applies the file now (the first apply in `watch`).
fn reload_from_file<T: Poolable>(inner: &Inner<T>, path: &Path) -> Result<(), Error> {
    apply(inner, path, check_file(inner, path))
}
