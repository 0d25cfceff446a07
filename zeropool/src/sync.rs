//! Synchronisation facade.
//!
//! Every atomic and mutex the pool's shared state uses comes from here, so
//! that the loom models (`RUSTFLAGS="--cfg zeropool_loom"`) exercise the real
//! code of the shard stack and the budget. The crate-specific cfg keeps
//! dependencies that read the bare `cfg(loom)` building normally.
//!
//! The mutex is `parking_lot`'s in normal builds (no poisoning, a fast
//! uncontended path, `try_lock` for contention counting) and loom's under the
//! model checker; both are wrapped in one small [`Mutex`] type with the same
//! methods.

#[cfg(not(zeropool_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(zeropool_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A mutual-exclusion lock with `lock` and `try_lock`, never poisoned.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(zeropool_loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(zeropool_loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(zeropool_loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(zeropool_loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(zeropool_loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(zeropool_loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    /// Blocks until the lock is held.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(zeropool_loom))]
        {
            self.inner.lock()
        }
        #[cfg(zeropool_loom)]
        {
            // A loom mutex is only poisoned if a model thread panicked, which
            // already fails the model.
            self.inner.lock().expect("loom mutex poisoned")
        }
    }

    /// Takes the lock only if it is free right now.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(zeropool_loom))]
        {
            self.inner.try_lock()
        }
        #[cfg(zeropool_loom)]
        {
            self.inner.try_lock().ok()
        }
    }
}

/// A counter that only one thread writes and any thread reads.
///
/// The owner updates it with a relaxed load and a relaxed store (a plain
/// `mov` on x86, no read-modify-write); readers sum many of them with relaxed
/// loads. [`Counter::add_shared`] is the read-modify-write form for the rare
/// paths where several threads may write the same counter.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`; only the owning thread may call this.
    #[inline(always)]
    pub(crate) fn add_local(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds `n` from any thread.
    #[inline]
    pub(crate) fn add_shared(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
