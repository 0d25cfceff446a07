//! Panicking callbacks, and a `capacity_bytes` that never says the same
//! twice. The policy:
//!
//! - A panic in `reset`, `wipe`, `capacity_bytes` or `class_bytes` while an
//!   object comes back (guard drop, `put`, `put_batch`, `put_guards`): the
//!   object is dropped, `reset_panics` goes up by one, the counters stay
//!   exact, and the panic continues to the caller (swallowed if the thread
//!   was already unwinding).
//! - A panic in `with_capacity_hint`, or in `capacity_bytes`, `class_bytes`
//!   or `spare_heap` of a fresh object during a get: the get panics, the
//!   fresh object is dropped, nothing is counted as allocated or handed
//!   out, and under a cap the charge is given back.
//! - A panic in `T::drop` while the pool frees an object (a budget discard,
//!   `trim`, `trim_to`, a budget cut, `reload`, the idle trimmer, a thread
//!   exit, the pool's drop, an oversize or undersize object's return, the
//!   drop after a reset panic): caught, never propagated, counted in
//!   `drop_panics` (the object still counted freed under its reason); the
//!   pool frees everything else, and the process never aborts.
//! - A `capacity_bytes` that changes at every call: the pool stays sound,
//!   its byte gauges never underflow or overflow.
//!
//! After each fault the pool keeps serving, and the census of
//! `callbacks_support` holds: no object dropped twice or handed to two
//! live guards, the counters agree with the test's books, and every object
//! the pool kept is reachable once and only once. Each test runs in a
//! child process (inline under Miri), so an abort fails that test alone.

mod callbacks_support;
mod common;

use callbacks_support::{
    census, census_of_liars, drop_panics, drop_pool, expect_injected, isolated, message, Cb, Ctx,
    Evil, Fuse, Mode, SIZE,
};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use zeropool::{ByteSize, OnExhausted, OwnedPoolGuard, Pool, PoolGuard, PoolStats};

const BUDGET: usize = 64 * SIZE;
const OVERSIZE: usize = 3 * SIZE;
const MODES: [Mode; 2] = [Mode::Once, Mode::Always];

fn builder() -> zeropool::PoolBuilder<Evil> {
    Pool::builder()
        .shards(2)
        .size_classes(&[SIZE])
        .tls_cache_size(4)
        .batch_size(2)
        .wipe_on_return(true)
        .max_total_memory(BUDGET)
}

fn pool() -> Pool<Evil> {
    builder().build().unwrap()
}

/// A test's context, entered on this thread, with its pool reachable.
fn setup(pool: &Pool<Evil>) -> (&'static Ctx, callbacks_support::Entered) {
    let ctx = Ctx::new();
    let entered = ctx.enter();
    ctx.set_pool(pool);
    (ctx, entered)
}

// ----- bookkeeping helpers -------------------------------------------------------

fn get<'p>(ctx: &Ctx, pool: &'p Pool<Evil>, n: usize) -> PoolGuard<'p, Evil> {
    let g = pool.get(n);
    ctx.took(&g);
    g
}

fn get_owned(ctx: &Ctx, pool: &Pool<Evil>, n: usize) -> OwnedPoolGuard<Evil> {
    let g = pool.get_owned(n);
    ctx.took(&g);
    g
}

fn get_batch<'p>(ctx: &Ctx, pool: &'p Pool<Evil>, sizes: &[usize]) -> Vec<PoolGuard<'p, Evil>> {
    let gs = pool.get_batch(sizes);
    for g in &gs {
        ctx.took(g);
    }
    gs
}

fn give(ctx: &Ctx, g: PoolGuard<'_, Evil>) {
    ctx.gave(&g);
    drop(g);
}

fn give_all(ctx: &Ctx, gs: Vec<PoolGuard<'_, Evil>>) {
    for g in gs {
        give(ctx, g);
    }
}

fn put(ctx: &Ctx, pool: &Pool<Evil>, obj: Evil) {
    ctx.adopted.fetch_add(1, SeqCst);
    pool.put(obj);
}

fn fresh(ctx: &'static Ctx, k: usize) -> Vec<Evil> {
    (0..k).map(|_| Evil::new(ctx, SIZE)).collect()
}

/// Some idle objects: in the thread cache, and in a shard.
fn warm(ctx: &Ctx, pool: &Pool<Evil>) {
    let gs = get_batch(ctx, pool, &[SIZE; 6]);
    give_all(ctx, gs);
}

/// The pool still serves gets, batches and puts, and the census holds.
#[track_caller]
fn still_serves(ctx: &'static Ctx, pool: &Pool<Evil>, what: &str) {
    census(ctx, pool, what);
    let g = get(ctx, pool, SIZE);
    let o = get_owned(ctx, pool, SIZE);
    let gs = get_batch(ctx, pool, &[SIZE, SIZE / 2, OVERSIZE, SIZE]);
    ctx.gave(&o);
    drop(o);
    give(ctx, g);
    for g in &gs {
        ctx.gave(g);
    }
    pool.put_guards(gs);
    put(ctx, pool, Evil::new(ctx, SIZE));
    census(ctx, pool, what);
}

/// Checks a snapshot's sanity: the ledger, and byte gauges that did not
/// wrap around.
#[track_caller]
fn sane(s: &PoolStats, what: &str) {
    common::assert_consistent(s);
    for (name, v) in [
        ("bytes_retained", s.bytes_retained),
        ("bytes_reserved", s.bytes_reserved),
        ("bytes_outstanding", s.bytes_outstanding),
        ("bytes_charged", s.bytes_charged),
    ] {
        assert!(v < 1 << 60, "{what}: {name} is absurd: {v}\n{s}");
    }
}

// ----- a callback panics while an object comes back -----------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Back {
    GuardDrop,
    OwnedDrop,
    /// An owned guard dropped on another thread (the thread dies of it).
    OwnedDropElsewhere,
    Put,
    /// The third of five objects panics.
    PutBatch,
    /// The third of five guards panics.
    PutGuards,
}

const BACKS: [Back; 6] = [
    Back::GuardDrop,
    Back::OwnedDrop,
    Back::OwnedDropElsewhere,
    Back::Put,
    Back::PutBatch,
    Back::PutGuards,
];

/// `class_bytes` is asked only for an object whose class is not known:
/// one whose capacity changed while it was out. Grows `obj` if so.
fn prime(cb: Cb, obj: &mut Evil) {
    if cb == Cb::ClassBytes {
        obj.buf.reserve_exact(SIZE + 8);
    }
}

fn return_panic(cb: Cb, mode: Mode, back: Back) {
    let what = format!("{cb:?} panicking ({mode:?}) on {back:?}");
    eprintln!("{what}");
    let pool = pool();
    let (ctx, _in) = setup(&pool);
    warm(ctx, &pool);
    let fuse = Fuse { cb, mode };
    let before = pool.stats();
    let doomed = match back {
        Back::GuardDrop => {
            let mut g = get(ctx, &pool, SIZE);
            prime(cb, &mut g);
            g.fuse(fuse);
            let id = g.id();
            ctx.gave(&g);
            assert_eq!(expect_injected(|| drop(g)), cb, "{what}");
            id
        }
        Back::OwnedDrop => {
            let mut g = get_owned(ctx, &pool, SIZE);
            prime(cb, &mut g);
            g.fuse(fuse);
            let id = g.id();
            ctx.gave(&g);
            assert_eq!(expect_injected(|| drop(g)), cb, "{what}");
            id
        }
        Back::OwnedDropElsewhere => {
            let mut g = get_owned(ctx, &pool, SIZE);
            prime(cb, &mut g);
            g.fuse(fuse);
            let id = g.id();
            ctx.gave(&g);
            let died = std::thread::spawn(move || {
                ctx.enter_for_good();
                drop(g);
            })
            .join()
            .expect_err("the thread dies of the panic");
            match died.downcast::<callbacks_support::Injected>() {
                Ok(i) => assert_eq!(i.0, cb, "{what}"),
                Err(p) => panic!("{what}: the thread died of {}", message(&*p)),
            }
            id
        }
        Back::Put => {
            let mut obj = Evil::new(ctx, SIZE);
            prime(cb, &mut obj);
            obj.fuse(fuse);
            let id = obj.id();
            ctx.adopted.fetch_add(1, SeqCst);
            assert_eq!(expect_injected(|| pool.put(obj)), cb, "{what}");
            id
        }
        Back::PutBatch => {
            let mut objs = fresh(ctx, 5);
            prime(cb, &mut objs[2]);
            objs[2].fuse(fuse);
            let id = objs[2].id();
            assert_eq!(expect_injected(|| pool.put_batch(objs)), cb, "{what}");
            // The objects after the one that panicked may or may not have
            // been taken: those that were not were dropped with the batch.
            let adopted = pool.stats().adopted - before.adopted;
            assert!((3..=5).contains(&adopted), "{what}: adopted {adopted}");
            ctx.adopted.fetch_add(adopted, SeqCst);
            ctx.unadopted.fetch_add(5 - adopted, SeqCst);
            id
        }
        Back::PutGuards => {
            let mut gs = get_batch(ctx, &pool, &[SIZE; 5]);
            prime(cb, &mut gs[2]);
            gs[2].fuse(fuse);
            let id = gs[2].id();
            for g in &gs {
                ctx.gave(g);
            }
            assert_eq!(expect_injected(|| pool.put_guards(gs)), cb, "{what}");
            id
        }
    };
    assert!(!ctx.is_live(doomed), "{what}: the object was dropped");
    let s = pool.stats();
    sane(&s, &what);
    assert_eq!(s.reset_panics, before.reset_panics + 1, "{what}\n{s}");
    assert_eq!(s.objects_outstanding, 0, "{what}\n{s}");
    still_serves(ctx, &pool, &what);
    drop_pool(ctx, pool, &what);
}

fn return_panics(name: &str, cb: Cb) {
    isolated(name, || {
        for mode in MODES {
            for back in BACKS {
                return_panic(cb, mode, back);
            }
        }
    });
}

#[test]
fn a_panicking_reset_on_every_return_path() {
    return_panics("a_panicking_reset_on_every_return_path", Cb::Reset);
}

#[test]
fn a_panicking_wipe_on_every_return_path() {
    return_panics("a_panicking_wipe_on_every_return_path", Cb::Wipe);
}

#[test]
fn a_panicking_capacity_bytes_on_every_return_path() {
    return_panics(
        "a_panicking_capacity_bytes_on_every_return_path",
        Cb::CapacityBytes,
    );
}

#[test]
fn a_panicking_class_bytes_on_every_return_path() {
    return_panics(
        "a_panicking_class_bytes_on_every_return_path",
        Cb::ClassBytes,
    );
}

/// Guards whose callback panics, dropped while an unrelated panic unwinds:
/// the second panic is swallowed (no abort), the objects are dropped and
/// counted, the first panic continues.
#[test]
fn return_panics_while_unwinding_are_swallowed() {
    isolated("return_panics_while_unwinding_are_swallowed", || {
        for cb in [Cb::Reset, Cb::Wipe, Cb::CapacityBytes, Cb::ClassBytes] {
            for mode in MODES {
                let what = format!("{cb:?} panicking ({mode:?}) while unwinding");
                eprintln!("{what}");
                let pool = pool();
                let (ctx, _in) = setup(&pool);
                warm(ctx, &pool);
                let before = pool.stats();
                let mut doomed = Vec::new();
                let err = panic::catch_unwind(AssertUnwindSafe(|| {
                    let mut g = get(ctx, &pool, SIZE);
                    let mut o = get_owned(ctx, &pool, SIZE);
                    let fine = get(ctx, &pool, SIZE);
                    for obj in [&mut *g, &mut *o] {
                        prime(cb, obj);
                        obj.fuse(Fuse { cb, mode });
                        doomed.push(obj.id());
                    }
                    for obj in [&*g, &*o, &*fine] {
                        ctx.gave(obj);
                    }
                    panic::panic_any("unrelated");
                }))
                .unwrap_err();
                assert_eq!(message(&*err), "unrelated", "{what}");
                assert!(doomed.iter().all(|&id| !ctx.is_live(id)), "{what}");
                let s = pool.stats();
                sane(&s, &what);
                assert_eq!(s.reset_panics, before.reset_panics + 2, "{what}\n{s}");
                assert_eq!(s.objects_outstanding, 0, "{what}\n{s}");
                still_serves(ctx, &pool, &what);
                drop_pool(ctx, pool, &what);
            }
        }
    });
}

// ----- a callback panics while a get builds a fresh object ----------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Get,
    GetOwned,
    Oversize,
    /// One size: two served from the cache, then a fresh one.
    Batch,
    /// Mixed sizes: two served, then a fresh one.
    MixedBatch,
    /// Mixed sizes, the oversize one first.
    OversizeFirst,
    TryGet,
    GetTimeout,
}

const FRESH: [Fresh; 8] = [
    Fresh::Get,
    Fresh::GetOwned,
    Fresh::Oversize,
    Fresh::Batch,
    Fresh::MixedBatch,
    Fresh::OversizeFirst,
    Fresh::TryGet,
    Fresh::GetTimeout,
];

/// Objects a get of `kind` hands out before it needs a fresh one.
fn served_first(kind: Fresh) -> usize {
    match kind {
        Fresh::Batch | Fresh::MixedBatch => 2,
        _ => 0,
    }
}

/// Makes the get of `kind` (and returns what it handed out).
fn get_fresh(ctx: &Ctx, pool: &Pool<Evil>, kind: Fresh) {
    match kind {
        Fresh::Get => give(ctx, get(ctx, pool, SIZE)),
        Fresh::GetOwned => {
            let g = get_owned(ctx, pool, SIZE);
            ctx.gave(&g);
            drop(g);
        }
        Fresh::Oversize => give(ctx, get(ctx, pool, OVERSIZE)),
        Fresh::Batch | Fresh::MixedBatch | Fresh::OversizeFirst => {
            let sizes: &[usize] = match kind {
                Fresh::Batch => &[SIZE; 4],
                Fresh::MixedBatch => &[SIZE, SIZE / 2, SIZE - 1, OVERSIZE, SIZE],
                _ => &[OVERSIZE, SIZE, SIZE / 2],
            };
            give_all(ctx, get_batch(ctx, pool, sizes));
        }
        Fresh::TryGet => {
            let g = pool.try_get(SIZE).expect("room under the cap");
            ctx.took(&g);
            give(ctx, g);
        }
        Fresh::GetTimeout => {
            let g = pool
                .get_timeout(SIZE, Duration::from_secs(30))
                .expect("room under the cap");
            ctx.took(&g);
            give(ctx, g);
        }
    }
}

/// Whether every sound pool must call `cb` on a fresh object (a pinned
/// pool places its memory; every pool measures it).
fn must_call_fresh(cb: Cb) -> bool {
    matches!(cb, Cb::Hint | Cb::CapacityBytes | Cb::SpareHeap)
}

fn fresh_panic(cb: Cb, mode: Mode, kind: Fresh, cap: Option<OnExhausted>) {
    let what = format!("{cb:?} panicking ({mode:?}) on a fresh object of {kind:?}, cap {cap:?}");
    eprintln!("{what}");
    let mut b = builder();
    if let Some(on) = cap {
        b = b.max_outstanding_memory(64 * SIZE).on_exhausted(on);
    }
    if cb == Cb::SpareHeap {
        b = b.pinned(true);
    }
    let pool = b.build().unwrap();
    let (ctx, _in) = setup(&pool);
    // Two idle objects in the thread cache, one object held; a single get
    // must miss, so the idle two are held too.
    let gs = get_batch(ctx, &pool, &[SIZE; 3]);
    give_all(ctx, gs);
    let mut held = get_batch(ctx, &pool, &[SIZE]);
    if served_first(kind) == 0 {
        held.extend(get_batch(ctx, &pool, &[SIZE; 2]));
    }
    let before = pool.stats();
    let (live, built, blown) = (ctx.live().len(), ctx.built(), ctx.blown());
    match cb {
        Cb::Hint => ctx.fuse_hint(Some(mode)),
        _ => ctx.fuse_next_fresh(&[Fuse { cb, mode }]),
    }
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| get_fresh(ctx, &pool, kind)));
    ctx.fuse_hint(None);
    ctx.fuse_next_fresh(&[]);
    match outcome {
        Err(payload) => {
            match payload.downcast::<callbacks_support::Injected>() {
                Ok(i) => assert_eq!(i.0, cb, "{what}"),
                Err(p) => panic!("{what}: the get panicked with {}", message(&*p)),
            }
            assert_eq!(ctx.blown(), blown + 1, "{what}: one injected panic");
            // The fresh object (if built) is gone; the objects handed out
            // before it came back.
            assert_eq!(
                ctx.live().len(),
                live,
                "{what}: the fresh object was dropped"
            );
            if cb != Cb::Hint {
                assert_eq!(ctx.built(), built + 1, "{what}");
                ctx.unpooled.fetch_add(1, SeqCst);
            }
            // The guards of a batch handed out before the panic were
            // handed out (and returned); or the batch never counted them.
            let s = pool.stats();
            let served = served_first(kind);
            if s.gets == before.gets + served {
                ctx.gets.fetch_add(served, SeqCst);
                ctx.returns.fetch_add(served, SeqCst);
            } else {
                assert_eq!(
                    s.gets, before.gets,
                    "{what}: a get that panicked is no get\n{s}"
                );
            }
            sane(&s, &what);
            assert_eq!(
                s.allocations, before.allocations,
                "{what}: nothing counted as allocated\n{s}"
            );
            assert_eq!(
                s.objects_outstanding, before.objects_outstanding,
                "{what}: nothing handed out\n{s}"
            );
            assert_eq!(
                (s.bytes_charged, pool.charged_bytes()),
                (before.bytes_charged, before.bytes_charged),
                "{what}: the charge was given back\n{s}"
            );
        }
        Ok(()) => {
            // A pool that never asks this of a fresh object: nothing fired
            // (the census below disarms the object's fuse).
            assert!(!must_call_fresh(cb), "{what}: the get did not panic");
            assert_eq!(ctx.blown(), blown, "{what}");
        }
    }
    give_all(ctx, held);
    still_serves(ctx, &pool, &what);
    drop_pool(ctx, pool, &what);
}

fn fresh_panics(name: &str, cb: Cb) {
    isolated(name, || {
        for mode in MODES {
            for kind in FRESH {
                let caps: &[Option<OnExhausted>] = match kind {
                    Fresh::TryGet | Fresh::GetTimeout => &[Some(OnExhausted::Error)],
                    // Miri is slow: uncapped only (`try_get` and
                    // `get_timeout` still take the capped path).
                    _ if cfg!(miri) => &[None],
                    _ => &[
                        None,
                        Some(OnExhausted::Allocate),
                        Some(OnExhausted::Wait),
                        Some(OnExhausted::Error),
                    ],
                };
                for &cap in caps {
                    fresh_panic(cb, mode, kind, cap);
                }
            }
        }
    });
}

#[test]
fn a_panicking_with_capacity_hint_on_every_get() {
    fresh_panics("a_panicking_with_capacity_hint_on_every_get", Cb::Hint);
}

#[test]
fn a_fresh_objects_panicking_capacity_bytes_on_every_get() {
    fresh_panics(
        "a_fresh_objects_panicking_capacity_bytes_on_every_get",
        Cb::CapacityBytes,
    );
}

#[test]
fn a_fresh_objects_panicking_class_bytes_on_every_get() {
    fresh_panics(
        "a_fresh_objects_panicking_class_bytes_on_every_get",
        Cb::ClassBytes,
    );
}

/// `pinned` locks fresh memory with mlock, which Miri does not support.
#[cfg(not(miri))]
#[test]
fn a_fresh_objects_panicking_spare_heap_on_every_get() {
    fresh_panics(
        "a_fresh_objects_panicking_spare_heap_on_every_get",
        Cb::SpareHeap,
    );
}

// ----- T::drop panics while the pool frees an object -----------------------------

const DROP_ONCE: Fuse = Fuse {
    cb: Cb::Drop,
    mode: Mode::Once,
};

/// Takes `k` objects, arms a panic in each one's `Drop`, and gives them
/// back: they sit idle, in the thread cache and the home shard.
fn idle_bombs(ctx: &Ctx, pool: &Pool<Evil>, k: usize) {
    let gs = get_batch(ctx, pool, &vec![SIZE; k]);
    for g in &gs {
        g.fuse(DROP_ONCE);
    }
    give_all(ctx, gs);
}

/// Runs `free`, which makes the pool free objects whose `Drop` panics: no
/// panic may escape, and every one is counted in `drop_panics`. Returns
/// the stats after, and how many `Drop`s panicked.
#[track_caller]
fn frees_quietly(
    ctx: &Ctx,
    pool: &Pool<Evil>,
    what: &str,
    free: impl FnOnce(),
) -> (PoolStats, usize) {
    let before = pool.stats();
    let blown = ctx.blown();
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(free)) {
        panic!("{what}: a panic in Drop escaped the pool: {}", message(&*p));
    }
    let bombs = ctx.blown() - blown;
    let s = pool.stats();
    sane(&s, what);
    assert_eq!(
        drop_panics(&s),
        drop_panics(&before) + bombs,
        "{what}: drop panics counted\n{s}"
    );
    (s, bombs)
}

/// [`frees_quietly`], where exactly `bombs` `Drop`s must panic.
#[track_caller]
fn frees_bombs(
    ctx: &Ctx,
    pool: &Pool<Evil>,
    what: &str,
    bombs: usize,
    free: impl FnOnce(),
) -> PoolStats {
    let (s, blown) = frees_quietly(ctx, pool, what, free);
    assert_eq!(blown, bombs, "{what}: the bombs were dropped\n{s}");
    s
}

#[test]
fn drop_panics_on_budget_discards() {
    isolated("drop_panics_on_budget_discards", || {
        let what = "budget discards";
        let pool = builder().max_total_memory(2 * SIZE).build().unwrap();
        let (ctx, _in) = setup(&pool);
        // Guard drops: room for two, the other four are discarded.
        let gs = get_batch(ctx, &pool, &[SIZE; 6]);
        for g in &gs {
            g.fuse(DROP_ONCE);
        }
        let before = pool.stats();
        let (s, blown) = frees_quietly(ctx, &pool, what, || give_all(ctx, gs));
        assert!(s.objects_retained <= 2, "{what}\n{s}");
        assert_eq!(blown, 6 - s.objects_retained, "{what}\n{s}");
        assert_eq!(s.discards, before.discards + blown, "{what}\n{s}");
        still_serves(ctx, &pool, what);

        // `put` and `put_batch` of objects the budget has no room for.
        let full = pool.stats().objects_retained;
        assert!(full >= 1, "{what}: the budget keeps two objects, then one");
        let objs = fresh(ctx, 5);
        for o in &objs {
            o.fuse(DROP_ONCE);
        }
        let before = pool.stats();
        let s = frees_bombs(ctx, &pool, "put_batch discards", 5, || {
            ctx.adopted.fetch_add(5, SeqCst);
            pool.put_batch(objs);
        });
        assert_eq!(s.discards, before.discards + 5, "{s}");
        let obj = Evil::new(ctx, SIZE);
        obj.fuse(DROP_ONCE);
        let s = frees_bombs(ctx, &pool, "put discard", 1, || put(ctx, &pool, obj));
        assert_eq!(s.discards, before.discards + 6, "{s}");
        still_serves(ctx, &pool, what);
        drop_pool(ctx, pool, what);
    });
}

/// `free` frees all (or all but one) of eight idle objects, in the thread
/// cache and the home shard, each of whose `Drop` panics.
fn frees_every_bomb(name: &str, free: fn(&Pool<Evil>)) {
    isolated(name, || {
        let pool = pool();
        let (ctx, _in) = setup(&pool);
        warm(ctx, &pool);
        idle_bombs(ctx, &pool, 8);
        let before = pool.stats();
        assert_eq!(before.objects_retained, 8, "{name}\n{before}");
        let (s, blown) = frees_quietly(ctx, &pool, name, || free(&pool));
        assert!(blown >= 7, "{name}: {blown} freed\n{s}");
        assert_eq!(s.objects_retained, 8 - blown, "{name}\n{s}");
        assert_eq!(ctx.live().len(), 8 - blown, "{name}");
        assert_eq!(
            (s.freed - before.freed, s.trimmed - before.trimmed),
            (blown, blown),
            "{name}: freed as trimmed\n{s}"
        );
        pool.set_max_total_memory(BUDGET);
        still_serves(ctx, &pool, name);
        drop_pool(ctx, pool, name);
    });
}

#[test]
fn drop_panics_in_trim() {
    frees_every_bomb("drop_panics_in_trim", |p| p.trim());
}

#[test]
fn drop_panics_in_trim_to() {
    frees_every_bomb("drop_panics_in_trim_to", |p| p.trim_to(SIZE));
}

#[test]
fn drop_panics_in_a_budget_cut() {
    frees_every_bomb("drop_panics_in_a_budget_cut", |p| {
        p.set_max_total_memory(SIZE)
    });
}

#[test]
fn drop_panics_in_a_reload() {
    frees_every_bomb("drop_panics_in_a_reload", |p| {
        let mut cfg = p.config();
        cfg.max_total_memory = ByteSize(SIZE as u64);
        cfg.tls_cache_size = 1;
        cfg.batch_size = 1;
        p.reload(&cfg).unwrap();
    });
}

/// The idle trimmer frees from its own thread: a panic there is caught
/// too (else the trimmer would die, or the process abort).
#[cfg(not(miri))]
#[test]
fn drop_panics_in_the_idle_trimmer() {
    isolated("drop_panics_in_the_idle_trimmer", || {
        let what = "idle trimmer";
        let pool = pool();
        let (ctx, _in) = setup(&pool);
        // Objects that sit in a shard, untouched.
        let t = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                ctx.enter_for_good();
                idle_bombs(ctx, &pool, 6);
            })
        };
        t.join().unwrap();
        let before = pool.stats();
        pool.set_trim_after(Some(Duration::from_millis(10)));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while ctx.blown() < 6 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // A second round: the trimmer lived on after the panics.
        let t = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                ctx.enter_for_good();
                idle_bombs(ctx, &pool, 4);
            })
        };
        t.join().unwrap();
        // The trimmer counts the panics once its pass has dropped them all.
        let counted = || drop_panics(&pool.stats()) - drop_panics(&before);
        while (ctx.blown() < 10 || counted() < 10) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // No pass during the census below (nothing idle now is old enough
        // for a pass already under way).
        pool.set_trim_after(Some(Duration::from_secs(3600)));
        assert_eq!(ctx.blown(), 10, "{what}: every bomb dropped");
        let s = pool.stats();
        sane(&s, what);
        assert_eq!(drop_panics(&s), drop_panics(&before) + 10, "{what}\n{s}");
        still_serves(ctx, &pool, what);
        drop_pool(ctx, pool, what);
    });
}

/// A thread exits holding bombs in its cache, after a `trim` (or a budget
/// cut) asked every cache to free its objects: its exit hook frees them,
/// during thread-local destruction, where a panic would abort.
#[test]
fn drop_panics_at_thread_exit() {
    isolated("drop_panics_at_thread_exit", || {
        for cut in [false, true] {
            let what = format!(
                "thread exit after a {}",
                if cut { "budget cut" } else { "trim" }
            );
            let pool = pool();
            let (ctx, _in) = setup(&pool);
            warm(ctx, &pool);
            let sync = Arc::new(Barrier::new(2));
            let t = {
                let (pool, sync) = (pool.clone(), sync.clone());
                std::thread::spawn(move || {
                    ctx.enter_for_good();
                    idle_bombs(ctx, &pool, 4);
                    drop(pool);
                    sync.wait();
                    sync.wait();
                })
            };
            sync.wait();
            let before = pool.stats();
            let blown = ctx.blown();
            if cut {
                pool.set_max_total_memory(0);
            } else {
                pool.trim();
            }
            sync.wait();
            if let Err(p) = t.join() {
                panic!("{what}: the exiting thread panicked: {}", message(&*p));
            }
            assert_eq!(ctx.blown(), blown + 4, "{what}: the exit freed the bombs");
            let s = pool.stats();
            sane(&s, &what);
            assert_eq!(drop_panics(&s), drop_panics(&before) + 4, "{what}\n{s}");
            pool.set_max_total_memory(BUDGET);
            still_serves(ctx, &pool, &what);
            drop_pool(ctx, pool, &what);
        }
    });
}

/// The last handle drops with bombs idle in the thread cache, the shards,
/// and the cache of a thread still running: everything is freed, nothing
/// escapes the drop, nothing aborts.
#[test]
fn drop_panics_at_pool_drop() {
    isolated("drop_panics_at_pool_drop", || {
        let what = "pool drop";
        let pool = pool();
        let (ctx, _in) = setup(&pool);
        idle_bombs(ctx, &pool, 8);
        let sync = Arc::new(Barrier::new(2));
        let t = {
            let (pool, sync) = (pool.clone(), sync.clone());
            std::thread::spawn(move || {
                ctx.enter_for_good();
                for obj in fresh(ctx, 3) {
                    obj.fuse(DROP_ONCE);
                    put(ctx, &pool, obj);
                }
                drop(pool);
                sync.wait(); // the pool drops while this cache holds bombs
                sync.wait();
            })
        };
        sync.wait();
        let blown = ctx.blown();
        ctx.clear_pool();
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(pool))) {
            panic!("{what}: a panic in Drop escaped: {}", message(&*p));
        }
        sync.wait();
        t.join().expect("the other thread");
        assert_eq!(ctx.blown(), blown + 11, "{what}: every bomb dropped");
        ctx.assert_no_faults(what);
        assert!(ctx.live().is_empty(), "{what}: {:?}", ctx.live());
    });
}

#[test]
fn drop_panics_of_unpooled_returns() {
    isolated("drop_panics_of_unpooled_returns", || {
        let what = "oversize and undersize returns";
        let pool = pool();
        let (ctx, _in) = setup(&pool);
        warm(ctx, &pool);
        let g = get(ctx, &pool, OVERSIZE);
        g.fuse(DROP_ONCE);
        let before = pool.stats();
        let s = frees_bombs(ctx, &pool, what, 1, || give(ctx, g));
        assert_eq!(s.oversize_drops, before.oversize_drops + 1, "{s}");
        // A guard that grew far past the largest class.
        let mut g = get(ctx, &pool, SIZE);
        g.buf.reserve_exact(4 * SIZE);
        g.fuse(DROP_ONCE);
        let s = frees_bombs(ctx, &pool, what, 1, || give(ctx, g));
        assert_eq!(s.oversize_drops, before.oversize_drops + 2, "{s}");
        // Put: too small, too large.
        let small = Evil::new(ctx, SIZE / 2);
        small.fuse(DROP_ONCE);
        let s = frees_bombs(ctx, &pool, what, 1, || put(ctx, &pool, small));
        assert_eq!(s.undersize_drops, before.undersize_drops + 1, "{s}");
        let big = Evil::new(ctx, OVERSIZE);
        big.fuse(DROP_ONCE);
        let objs = vec![Evil::new(ctx, SIZE), big, Evil::new(ctx, SIZE / 4)];
        objs[2].fuse(DROP_ONCE);
        let s = frees_bombs(ctx, &pool, what, 2, || {
            ctx.adopted.fetch_add(3, SeqCst);
            pool.put_batch(objs);
        });
        assert_eq!(s.oversize_drops, before.oversize_drops + 3, "{s}");
        assert_eq!(s.undersize_drops, before.undersize_drops + 2, "{s}");
        still_serves(ctx, &pool, what);
        drop_pool(ctx, pool, what);
    });
}

/// `reset` panics, then the object's `Drop` panics too: the reset's panic
/// continues, the drop's is caught and counted; while unwinding, both are
/// swallowed.
#[test]
fn drop_panic_after_a_reset_panic() {
    isolated("drop_panic_after_a_reset_panic", || {
        let what = "drop after a reset panic";
        let pool = pool();
        let (ctx, _in) = setup(&pool);
        warm(ctx, &pool);
        let reset = Fuse {
            cb: Cb::Reset,
            mode: Mode::Always,
        };
        let before = pool.stats();
        let g = get(ctx, &pool, SIZE);
        g.fuse(reset);
        g.fuse(DROP_ONCE);
        ctx.gave(&g);
        assert_eq!(expect_injected(|| drop(g)), Cb::Reset, "{what}");
        let obj = Evil::new(ctx, SIZE);
        obj.fuse(reset);
        obj.fuse(DROP_ONCE);
        ctx.adopted.fetch_add(1, SeqCst);
        assert_eq!(expect_injected(|| pool.put(obj)), Cb::Reset, "{what}");
        let s = pool.stats();
        sane(&s, what);
        assert_eq!(s.reset_panics, before.reset_panics + 2, "{s}");
        assert_eq!(drop_panics(&s), drop_panics(&before) + 2, "{s}");

        let err = panic::catch_unwind(AssertUnwindSafe(|| {
            let g = get(ctx, &pool, SIZE);
            let o = get_owned(ctx, &pool, SIZE);
            for obj in [&*g, &*o] {
                obj.fuse(reset);
                obj.fuse(DROP_ONCE);
                ctx.gave(obj);
            }
            panic::panic_any("unrelated");
        }))
        .unwrap_err();
        assert_eq!(message(&*err), "unrelated", "{what}");
        let s = pool.stats();
        sane(&s, what);
        assert_eq!(s.reset_panics, before.reset_panics + 4, "{s}");
        assert_eq!(drop_panics(&s), drop_panics(&before) + 4, "{s}");
        still_serves(ctx, &pool, what);
        drop_pool(ctx, pool, what);
    });
}

/// A fresh object whose `capacity_bytes` panics during a get and whose
/// `Drop` panics too: the get panics with the first, the second is caught.
#[test]
fn drop_panic_of_a_fresh_object_after_a_get_panic() {
    isolated("drop_panic_of_a_fresh_object_after_a_get_panic", || {
        let what = "fresh object dropped after a get panic";
        let pool = pool();
        let (ctx, _in) = setup(&pool);
        warm(ctx, &pool);
        for batch in [false, true] {
            let before = pool.stats();
            ctx.fuse_next_fresh(&[
                Fuse {
                    cb: Cb::CapacityBytes,
                    mode: Mode::Always,
                },
                DROP_ONCE,
            ]);
            let blown = ctx.blown();
            // A batch hands out every idle object, then builds one.
            let idle = before.objects_retained;
            let cb = expect_injected(|| {
                if batch {
                    give_all(ctx, get_batch(ctx, &pool, &vec![SIZE; idle + 2]));
                } else {
                    give(ctx, get(ctx, &pool, OVERSIZE));
                }
            });
            assert_eq!(cb, Cb::CapacityBytes, "{what}: the first panic continues");
            assert_eq!(ctx.blown(), blown + 2, "{what}: both fired");
            ctx.unpooled.fetch_add(1, SeqCst);
            let s = pool.stats();
            sane(&s, what);
            if batch && s.gets != before.gets {
                // The idle objects the batch handed out before (and which
                // came back as it unwound).
                assert_eq!(s.gets, before.gets + idle, "{s}");
                ctx.gets.fetch_add(idle, SeqCst);
                ctx.returns.fetch_add(idle, SeqCst);
            }
            assert_eq!(s.allocations, before.allocations, "{s}");
            // The object was never in the pool's care: whether its `Drop`
            // panic is counted is left open ("nothing counted" for the get,
            // "counted" for what the pool frees); it was caught, which is
            // what matters (a second panic while unwinding would abort).
            let caught = drop_panics(&s) - drop_panics(&before);
            assert!(caught <= 1, "{s}");
            census(ctx, &pool, what);
        }
        still_serves(ctx, &pool, what);
        drop_pool(ctx, pool, what);
    });
}

// ----- a callback that re-enters the pool, then panics ------------------------------

/// Every op of `callbacks_support::Op` from inside a callback that then
/// panics: on a guard's return and a `put` (`reset`, `wipe`,
/// `capacity_bytes`, `class_bytes`), and while `trim` frees objects
/// (`Drop`). The panic policy holds as without the re-entry.
#[test]
fn a_callback_that_reenters_the_pool_then_panics() {
    isolated("a_callback_that_reenters_the_pool_then_panics", || {
        use callbacks_support::Op;
        for cb in [
            Cb::Reset,
            Cb::Wipe,
            Cb::CapacityBytes,
            Cb::ClassBytes,
            Cb::Drop,
        ] {
            // Capped with room to spare, for `try_get` and `get_timeout`.
            let pool = builder().max_outstanding_memory(1 << 20).build().unwrap();
            let config = pool.config();
            let (ctx, _in) = setup(&pool);
            for op in Op::ALL {
                let what = format!("{cb:?} re-entering with {op:?}, then panicking");
                eprintln!("{what}");
                warm(ctx, &pool);
                if op == Op::DropGuard {
                    ctx.stash(get_owned(ctx, &pool, SIZE));
                    ctx.stash(get_owned(ctx, &pool, SIZE));
                }
                let before = pool.stats();
                let fired = ctx.fired();
                if cb == Cb::Drop {
                    idle_bombs(ctx, &pool, 3);
                    ctx.arm(cb, op);
                    let (s, blown) = frees_quietly(ctx, &pool, &what, || pool.trim());
                    assert_eq!(blown, 3, "{what}\n{s}");
                } else {
                    ctx.arm(cb, op);
                    let mut g = get(ctx, &pool, SIZE);
                    prime(cb, &mut g);
                    g.fuse(Fuse {
                        cb,
                        mode: Mode::Once,
                    });
                    ctx.gave(&g);
                    assert_eq!(expect_injected(|| drop(g)), cb, "{what}");
                    ctx.arm(cb, op);
                    let mut obj = Evil::new(ctx, SIZE);
                    prime(cb, &mut obj);
                    obj.fuse(Fuse {
                        cb,
                        mode: Mode::Once,
                    });
                    ctx.adopted.fetch_add(1, SeqCst);
                    assert_eq!(expect_injected(|| pool.put(obj)), cb, "{what}");
                    let s = pool.stats();
                    sane(&s, &what);
                    assert_eq!(s.reset_panics, before.reset_panics + 2, "{what}\n{s}");
                }
                let expected = if cb == Cb::Drop { 1 } else { 2 };
                assert_eq!(ctx.fired() - fired, expected, "{what}: re-entered");
                ctx.drain_stash();
                pool.reload(&config).unwrap();
                census(ctx, &pool, &what);
            }
            drop_pool(ctx, pool, &format!("{cb:?}"));
        }
    });
}

// ----- capacity_bytes that never says the same twice ------------------------------

#[test]
fn a_capacity_bytes_that_changes_at_every_call() {
    isolated("a_capacity_bytes_that_changes_at_every_call", || {
        let what = "a lying capacity_bytes";
        let pool = pool();
        let (ctx, _in) = setup(&pool);
        let check = |step: &str| {
            let s = pool.stats();
            sane(&s, &format!("{what}: {step}"));
            s
        };
        let liars = |k: usize| {
            (0..k)
                .map(|_| {
                    let mut o = Evil::new(ctx, SIZE);
                    o.make_liar();
                    o
                })
                .collect::<Vec<_>>()
        };
        // Guards whose objects start lying while out.
        let mut gs = get_batch(ctx, &pool, &[SIZE; 6]);
        for g in &mut gs {
            g.make_liar();
        }
        give_all(ctx, gs);
        check("returned");
        for o in liars(3) {
            put(ctx, &pool, o);
        }
        let objs = liars(4);
        ctx.adopted.fetch_add(4, SeqCst);
        pool.put_batch(objs);
        check("put");
        for _ in 0..3 {
            let gs = get_batch(ctx, &pool, &[SIZE; 8]);
            let o = get_owned(ctx, &pool, SIZE);
            check("taken");
            ctx.gave(&o);
            drop(o);
            for g in &gs {
                ctx.gave(g);
            }
            pool.put_guards(gs);
            check("put_guards");
            let g = get(ctx, &pool, SIZE);
            give(ctx, g);
        }
        {
            let pool = pool.clone();
            std::thread::spawn(move || {
                ctx.enter_for_good();
                let gs = get_batch(ctx, &pool, &[SIZE; 5]);
                give_all(ctx, gs);
            })
            .join()
            .unwrap();
        }
        check("a thread exited");
        pool.trim_to(3 * SIZE);
        check("trim_to");
        pool.set_max_total_memory(2 * SIZE);
        check("budget cut");
        pool.set_max_total_memory(BUDGET);
        let gs = get_batch(ctx, &pool, &[SIZE; 4]);
        give_all(ctx, gs);
        // Every object the pool kept is reachable once (their bytes are
        // whatever they said when they came in).
        let s = check("before the census");
        assert_eq!(s.objects_outstanding, 0, "{s}");
        assert_eq!(s.objects_retained, ctx.live().len(), "{s}");
        census_of_liars(ctx, &pool, what);
        check("after the census");
        pool.trim();
        let s = check("trimmed");
        assert_eq!(
            (s.objects_retained, s.bytes_retained, s.bytes_outstanding),
            (0, 0, 0),
            "{what}: nothing idle, nothing out\n{s}"
        );
        assert!(ctx.live().is_empty(), "{what}: {:?}", ctx.live());
        still_serves(ctx, &pool, what);
        drop_pool(ctx, pool, what);
    });
}
