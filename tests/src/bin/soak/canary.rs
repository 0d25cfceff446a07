//! Canaries: no object is handed to two holders at once.
//!
//! Each holder takes a unique token when it gets an object, checks that the
//! object is as `get` promises (empty, big enough), stamps the token into
//! it, and checks the stamp is intact just before giving the object back.
//! Beside the stamps, a registry of the data buffers of every held object,
//! by address, catches a second holder the moment it gets the object, even
//! when the two holders' stamps do not overlap in time. Holders unclaim an
//! address before the object goes back, so the next holder can claim it.

use crate::report;
use crate::rng::Rng;
use crate::subject::Subject;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

/// Registry shards (by address), so holders on different threads rarely
/// meet on a lock.
const SHARDS: usize = 64;

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

static REGISTRY: LazyLock<Vec<Mutex<HashSet<usize>>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect());

fn shard(addr: usize) -> &'static Mutex<HashSet<usize>> {
    // Fibonacci hashing: the product's top bits depend on every bit of addr.
    let h = (addr as u64 >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
    &REGISTRY[h as usize % SHARDS]
}

/// Records `addr` as held; false if someone holds it already.
fn claim(addr: usize) -> bool {
    shard(addr)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(addr)
}

/// Forgets `addr`; false if nobody held it.
fn unclaim(addr: usize) -> bool {
    shard(addr)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&addr)
}

/// Addresses claimed right now (0 when nothing is held); forgets them.
pub fn take_claimed() -> usize {
    REGISTRY
        .iter()
        .map(|s| std::mem::take(&mut *s.lock().unwrap_or_else(|e| e.into_inner())).len())
        .sum()
}

/// What a holder remembers of the object it holds.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub token: u64,
    /// Canary bytes written.
    pub k: usize,
    /// The data buffer's address when stamped.
    pub addr: Option<usize>,
}

/// Canary bytes to write into a buffer of `cap` bytes: a few, at times a
/// page (never past the capacity, so nothing reallocates).
fn canary_len(cap: usize, rng: &mut Rng) -> usize {
    let most = if rng.chance(5) { 4096 } else { 64 };
    rng.range(0, cap.min(most))
}

/// Claims `addr` for a new holder; a violation if someone holds it.
fn claim_checked<T: Subject>(addr: usize, n: usize) {
    if !claim(addr) {
        report::violation(
            T::NAME,
            format!("object at {addr:#x} handed to two holders at once (request {n})"),
        );
    }
}

/// Takes charge of `obj`, just handed out for a request of `n` bytes
/// (`zeroed`: by `get_zeroed`): checks it, claims it, stamps it.
pub fn acquire<T: Subject>(obj: &mut T, n: usize, zeroed: bool, rng: &mut Rng) -> Stamp {
    let fresh = if zeroed {
        obj.check_zeroed(n)
    } else {
        obj.check_fresh(n)
    };
    if let Err(what) = fresh {
        report::violation(T::NAME, format!("get({n}): {what}"));
    }
    let addr = obj.addr();
    if let Some(a) = addr {
        claim_checked::<T>(a, n);
    }
    let token = NEXT_TOKEN
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let k = canary_len(obj.data_capacity(), rng);
    obj.stamp(token, k);
    Stamp { token, k, addr }
}

/// Checks the canary just before `obj` goes back (or away) and unclaims it.
pub fn release<T: Subject>(obj: &T, stamp: &Stamp) {
    if let Err(what) = obj.verify(stamp.token, stamp.k) {
        report::violation(
            T::NAME,
            format!("canary broken while held (two holders at once?): {what}"),
        );
    }
    if obj.addr() != stamp.addr {
        report::violation(
            T::NAME,
            format!(
                "the held object moved: {:?} -> {:?}",
                stamp.addr,
                obj.addr()
            ),
        );
    }
    if let Some(a) = stamp.addr {
        if !unclaim(a) {
            report::violation(
                T::NAME,
                format!("object at {a:#x} was not registered to its holder"),
            );
        }
    }
}

/// Grows a held object (it reallocates) and stamps it again.
pub fn grow<T: Subject>(obj: &mut T, stamp: &mut Stamp, rng: &mut Rng) {
    release(obj, stamp);
    obj.grow(rng.range(1, 64 << 10));
    let addr = obj.addr();
    if let Some(a) = addr {
        claim_checked::<T>(a, 0);
    }
    let k = canary_len(obj.data_capacity(), rng);
    obj.stamp(stamp.token, k);
    stamp.k = k;
    stamp.addr = addr;
}
