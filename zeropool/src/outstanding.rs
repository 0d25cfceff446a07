//! The outstanding report (`track_outstanding`): live guards grouped by the
//! call site that took them.
//!
//! ```text
//!  get / get_owned / get_batch / try_get / get_async ... (#[track_caller])
//!    └─ tracking on? ─ insert (call site, bytes, now) into a slab ─ id in the ticket
//!  guard dropped or into_inner ─ id != 0? ─ remove it
//!  pool.outstanding() ─ group the live entries by call site: count, bytes, oldest
//! ```
//! Off (the default), the cost is a null check when a guard is made and a
//! zero check when it comes back. On, each get and return takes a mutex: it
//! is a debugging aid for finding who holds memory, not a production
//! default.

use crate::sync::Mutex;
use std::collections::HashMap;
use std::panic::Location;
use std::time::{Duration, Instant};

/// Live guards taken at one call site (see [`Pool::outstanding`](crate::Pool::outstanding)).
///
/// # Example
/// ```
/// let pool = zeropool::BufferPool::builder().track_outstanding(true).build()?;
/// let held = pool.get(4096);
/// let report = pool.outstanding();
/// assert_eq!(report.len(), 1);
/// assert_eq!(report[0].count, 1);
/// assert_eq!(report[0].location.file(), file!());
/// drop(held);
/// assert!(pool.outstanding().is_empty());
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutstandingEntry {
    /// Where the guards were taken.
    pub location: &'static Location<'static>,
    /// How many are alive.
    pub count: usize,
    /// Their bytes (capacity when handed out).
    pub bytes: usize,
    /// The age of the oldest.
    pub oldest: Duration,
}

#[derive(Debug)]
struct Live {
    location: &'static Location<'static>,
    bytes: usize,
    since: Instant,
}

#[derive(Debug, Default)]
struct Slab {
    entries: Vec<Option<Live>>,
    free: Vec<u32>,
}

/// The live tracked guards.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    slab: Mutex<Slab>,
}

impl Tracker {
    /// Records a guard; returns its id (never 0).
    pub(crate) fn insert(&self, location: &'static Location<'static>, bytes: usize) -> u32 {
        let live = Live {
            location,
            bytes,
            since: Instant::now(),
        };
        let mut slab = self.slab.lock();
        match slab.free.pop() {
            Some(id) => {
                slab.entries[id as usize - 1] = Some(live);
                id
            }
            None => {
                slab.entries.push(Some(live));
                // More than u32::MAX - 1 live tracked guards: stop tracking
                // new ones rather than wrap.
                u32::try_from(slab.entries.len()).unwrap_or(0)
            }
        }
    }

    /// Forgets guard `id`.
    pub(crate) fn remove(&self, id: u32) {
        let mut slab = self.slab.lock();
        if let Some(entry) = slab.entries.get_mut(id as usize - 1) {
            if entry.take().is_some() {
                slab.free.push(id);
            }
        }
    }

    /// The live guards by call site, most bytes first.
    pub(crate) fn report(&self) -> Vec<OutstandingEntry> {
        let now = Instant::now();
        let slab = self.slab.lock();
        let mut by_site: HashMap<&'static Location<'static>, OutstandingEntry> = HashMap::new();
        for live in slab.entries.iter().flatten() {
            let entry = by_site.entry(live.location).or_insert(OutstandingEntry {
                location: live.location,
                count: 0,
                bytes: 0,
                oldest: Duration::ZERO,
            });
            entry.count += 1;
            entry.bytes += live.bytes;
            entry.oldest = entry.oldest.max(now.duration_since(live.since));
        }
        let mut report: Vec<_> = by_site.into_values().collect();
        report.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.count.cmp(&a.count)));
        report
    }
}

impl<T: crate::Poolable> crate::pool::Inner<T> {
    /// The last user handle is gone: owned guards still alive keep the pool's
    /// memory; say so (a `tracing` warning, with the call sites when
    /// `track_outstanding` is on).
    pub(crate) fn last_handle_dropped(&self) {
        let out = self.budget.in_care().saturating_sub(self.budget.reserved());
        let report = self
            .tracker
            .as_ref()
            .map(|t| t.report())
            .unwrap_or_default();
        if out == 0 && report.is_empty() {
            return;
        }
        let sites: Vec<String> = report
            .iter()
            .map(|e| {
                format!(
                    "{} x{} ({} B, oldest {:?})",
                    e.location, e.count, e.bytes, e.oldest
                )
            })
            .collect();
        let _ = &sites;
        crate::trace::event!(
            warn,
            bytes_out = out,
            "pool dropped while guards are still out; they keep its memory until dropped: {}",
            if sites.is_empty() {
                "built without track_outstanding".to_string()
            } else {
                sites.join(", ")
            }
        );
    }
}
