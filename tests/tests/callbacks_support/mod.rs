//! A pooled type whose every callback can misbehave, and the books the
//! `reentrant` and `faults_callbacks` tests keep about it, independently of
//! the pool's own counters.
//!
//! [`Evil`] holds a byte buffer and a serial id. Each of its callbacks
//! (`with_capacity_hint`, `reset`, `capacity_bytes`, `class_bytes`, `wipe`,
//! `spare_heap`, `Drop`) can be armed, one at a time, to re-enter the pool
//! it lives in through any public operation ([`Ctx::arm`]), or to panic
//! ([`Evil::fuse`], [`Ctx::fuse_next_fresh`], [`Ctx::fuse_hint`]), or (for
//! `capacity_bytes`) to report a different value each time it is asked.
//!
//! A [`Ctx`] is one test's world: its pool (reachable from the callbacks,
//! on any thread, also while a thread exits), its live objects (inserted by
//! the constructor, removed by `Drop`: a `Drop` of an id not alive is a
//! fault), the ids of the guards alive (an id handed out while a live
//! guard holds it is a fault), and counts of what the test did. [`census`]
//! then checks that every object the pool kept is reachable once and only
//! once, and that the pool's counters agree with the books.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use zeropool::{ByteSize, OwnedPoolGuard, Pool, PoolStats, Poolable};

/// The one size class of every census pool; [`Evil`]s built for it hold
/// exactly this many bytes.
pub const SIZE: usize = 64;

/// A callback of [`Poolable`] (and `Drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cb {
    Hint,
    Reset,
    CapacityBytes,
    ClassBytes,
    Wipe,
    SpareHeap,
    Drop,
}

/// A public pool operation a callback re-enters the pool with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `get`, the guard held for the rest of the callback and dropped there.
    Get,
    /// `get_owned`, the guard kept (stashed) until the scenario ends.
    GetOwned,
    /// Drops a guard the test took before arming.
    DropGuard,
    /// `put` of eight fresh objects.
    Put8,
    /// `get_batch` of three, dropped in the callback.
    GetBatch,
    /// `put_batch` of three fresh objects.
    PutBatch,
    /// `get_batch` of three, returned with `put_guards`.
    PutGuards,
    Trim,
    TrimTo,
    /// `set_max_total_memory` down to two objects.
    SetMax,
    /// `stats()`, formatted.
    Stats,
    /// `try_get` (on a pool capped with room to spare).
    TryGet,
    /// `get_timeout` (on a pool capped with room to spare).
    GetTimeout,
    /// `reload` of the pool's config with a smaller budget and cache.
    Reload,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::Get,
        Op::GetOwned,
        Op::DropGuard,
        Op::Put8,
        Op::GetBatch,
        Op::PutBatch,
        Op::PutGuards,
        Op::Trim,
        Op::TrimTo,
        Op::SetMax,
        Op::Stats,
        Op::TryGet,
        Op::GetTimeout,
        Op::Reload,
    ];

    /// Whether the op needs a pool capped (with room) to mean anything.
    pub fn wants_cap(self) -> bool {
        matches!(self, Op::TryGet | Op::GetTimeout)
    }
}

/// The payload of every injected panic: which callback panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected(pub Cb);

/// How often an armed panic fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// At the next call only.
    Once,
    /// At every call from now on.
    Always,
}

/// A panic armed on one callback of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fuse {
    pub cb: Cb,
    pub mode: Mode,
}

/// Every context ever made, so that the leaked ones stay reachable (Miri's
/// leak check ignores memory reachable from a static).
static CONTEXTS: Mutex<Vec<&'static Ctx>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The context `with_capacity_hint` builds in. A `Cell` of a reference
    /// has no destructor, so it stays readable while the thread exits.
    static CURRENT: Cell<Option<&'static Ctx>> = const { Cell::new(None) };
}

/// Locks, ignoring poison (a failed assertion elsewhere must not hide the
/// books).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test's world: its pool, its objects and its books.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Live objects: id -> capacity when built.
    live: Mutex<BTreeMap<u64, usize>>,
    /// Ids of the guards alive.
    held: Mutex<BTreeSet<u64>>,
    faults: Mutex<Vec<String>>,
    pool: Mutex<Option<Pool<Evil>>>,
    /// Owned guards kept across callbacks (taken by [`Op::GetOwned`], or by
    /// the test for [`Op::DropGuard`]).
    stash: Mutex<Vec<OwnedPoolGuard<Evil>>>,
    /// The callback armed, its op, and how many more times it fires.
    armed: Mutex<Option<(Cb, Op, usize)>>,
    /// Re-entries made (and those that found no pool to re-enter).
    fired: AtomicUsize,
    fired_without_pool: AtomicUsize,
    /// Panics armed on `with_capacity_hint` calls: how many calls from now.
    hint_fuse: Mutex<Option<Mode>>,
    /// Given to the next object `with_capacity_hint` builds.
    fresh_fuses: Mutex<Vec<Fuse>>,
    /// Injected panics that fired.
    blown: AtomicUsize,
    /// Liars tell the truth while this is set.
    honest: AtomicBool,
    /// What the test (and the callbacks) did, for the pool's counters.
    pub built_by_pool: AtomicUsize,
    pub built_by_test: AtomicUsize,
    pub drops: AtomicUsize,
    pub gets: AtomicUsize,
    pub returns: AtomicUsize,
    pub adopted: AtomicUsize,
    pub detached: AtomicUsize,
    /// Objects the pool dropped without counting them freed: fresh ones of
    /// a get that panicked (never counted as allocated).
    pub unpooled: AtomicUsize,
    /// Objects given to `put_batch` that were dropped without being
    /// adopted (the iterator's rest after a panic).
    pub unadopted: AtomicUsize,
}

/// Restores the thread's previous context when dropped.
#[derive(Debug)]
pub struct Entered(Option<&'static Ctx>);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl Ctx {
    /// A new context (leaked: objects refer to it by `&'static`, so even a
    /// duplicated object cannot free it twice).
    pub fn new() -> &'static Ctx {
        let ctx: &'static Ctx = Box::leak(Box::default());
        lock(&CONTEXTS).push(ctx);
        ctx
    }

    /// `with_capacity_hint` on this thread builds in this context until the
    /// result drops.
    pub fn enter(&'static self) -> Entered {
        Entered(CURRENT.with(|c| c.replace(Some(self))))
    }

    /// For a thread about to exit: this context for good (thread-exit
    /// hooks run after any guard would have been dropped).
    pub fn enter_for_good(&'static self) {
        CURRENT.with(|c| c.set(Some(self)));
    }

    /// Lets the callbacks reach `pool`.
    pub fn set_pool(&self, pool: &Pool<Evil>) {
        *lock(&self.pool) = Some(pool.clone());
    }

    /// The callbacks can no longer reach the pool (so it can drop).
    pub fn clear_pool(&self) {
        let pool = lock(&self.pool).take();
        drop(pool);
    }

    pub fn fault(&self, what: String) {
        lock(&self.faults).push(what);
    }

    pub fn faults(&self) -> Vec<String> {
        lock(&self.faults).clone()
    }

    /// Fails with every fault recorded so far, if any.
    #[track_caller]
    pub fn assert_no_faults(&self, what: &str) {
        let faults = self.faults();
        assert!(faults.is_empty(), "{what}: {faults:#?}");
    }

    /// Live objects, by id, with their capacity when built.
    pub fn live(&self) -> BTreeMap<u64, usize> {
        lock(&self.live).clone()
    }

    pub fn is_live(&self, id: u64) -> bool {
        lock(&self.live).contains_key(&id)
    }

    /// Objects built so far (by the pool and by the test).
    pub fn built(&self) -> usize {
        self.built_by_pool.load(SeqCst) + self.built_by_test.load(SeqCst)
    }

    // ----- guards ----------------------------------------------------------

    /// Records that a guard of `obj` was handed out.
    pub fn took(&self, obj: &Evil) {
        self.gets.fetch_add(1, SeqCst);
        self.hold(obj.id());
    }

    fn hold(&self, id: u64) {
        if !self.is_live(id) {
            self.fault(format!("handed out id {id}, which is not alive"));
        }
        if !lock(&self.held).insert(id) {
            self.fault(format!(
                "handed out id {id} while a live guard holds it already"
            ));
        }
    }

    fn unhold(&self, id: u64) {
        if !lock(&self.held).remove(&id) {
            self.fault(format!("a guard of id {id} came back, but none was out"));
        }
    }

    /// Records that a guard of `obj` is about to be returned.
    pub fn gave(&self, obj: &Evil) {
        self.returns.fetch_add(1, SeqCst);
        self.unhold(obj.id());
    }

    /// Records that a guard of `obj` is about to be detached.
    pub fn detaching(&self, obj: &Evil) {
        self.detached.fetch_add(1, SeqCst);
        self.unhold(obj.id());
    }

    pub fn held(&self) -> BTreeSet<u64> {
        lock(&self.held).clone()
    }

    /// Keeps an owned guard (already recorded with [`took`](Self::took)).
    pub fn stash(&self, g: OwnedPoolGuard<Evil>) {
        lock(&self.stash).push(g);
    }

    /// Returns every stashed guard.
    pub fn drain_stash(&self) {
        loop {
            let g = lock(&self.stash).pop();
            let Some(g) = g else { break };
            self.gave(&g);
            drop(g);
        }
    }

    // ----- re-entry --------------------------------------------------------

    /// The next call of `cb` (on any object, on any thread) re-enters the
    /// pool with `op`, once.
    pub fn arm(&self, cb: Cb, op: Op) {
        self.arm_times(cb, op, 1);
    }

    /// The next `times` calls of `cb` re-enter the pool with `op` (calls
    /// made by the re-entrant operations themselves included).
    pub fn arm_times(&self, cb: Cb, op: Op, times: usize) {
        *lock(&self.armed) = (times > 0).then_some((cb, op, times));
    }

    /// Disarms; whether the armed re-entry was made.
    pub fn disarm(&self) -> bool {
        lock(&self.armed).take().is_none()
    }

    pub fn fired(&self) -> usize {
        self.fired.load(SeqCst)
    }

    pub fn fired_without_pool(&self) -> usize {
        self.fired_without_pool.load(SeqCst)
    }

    /// Called at the top of every callback.
    fn reenter(&'static self, cb: Cb) {
        let op = {
            let mut armed = lock(&self.armed);
            match *armed {
                Some((c, op, times)) if c == cb => {
                    *armed = (times > 1).then_some((c, op, times - 1));
                    op
                }
                _ => return,
            }
        };
        self.fired.fetch_add(1, SeqCst);
        let pool = lock(&self.pool).clone();
        let Some(pool) = pool else {
            self.fired_without_pool.fetch_add(1, SeqCst);
            return;
        };
        // Builds in this context on whatever thread the callback runs.
        let _in = self.enter();
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| self.run(&pool, op))) {
            self.fault(format!(
                "re-entrant {op:?} from {cb:?} panicked: {}",
                message(&*payload)
            ));
        }
    }

    /// Runs `op` on `pool` from inside a callback, keeping the books.
    fn run(&'static self, pool: &Pool<Evil>, op: Op) {
        match op {
            Op::Get => {
                let g = pool.get(SIZE);
                self.took(&g);
                self.gave(&g);
                drop(g);
            }
            Op::GetOwned => {
                let g = pool.get_owned(SIZE);
                self.took(&g);
                self.stash(g);
            }
            Op::DropGuard => {
                let g = lock(&self.stash).pop();
                match g {
                    Some(g) => {
                        self.gave(&g);
                        drop(g);
                    }
                    None => self.fault("DropGuard: no guard was stashed".into()),
                }
            }
            Op::Put8 => {
                for _ in 0..8 {
                    self.adopted.fetch_add(1, SeqCst);
                    pool.put(Evil::new(self, SIZE));
                }
            }
            Op::GetBatch => {
                let gs = pool.get_batch(&[SIZE; 3]);
                for g in &gs {
                    self.took(g);
                }
                for g in gs {
                    self.gave(&g);
                    drop(g);
                }
            }
            Op::PutBatch => {
                let objs: Vec<Evil> = (0..3).map(|_| Evil::new(self, SIZE)).collect();
                self.adopted.fetch_add(objs.len(), SeqCst);
                pool.put_batch(objs);
            }
            Op::PutGuards => {
                let gs = pool.get_batch(&[SIZE; 3]);
                for g in &gs {
                    self.took(g);
                }
                for g in &gs {
                    self.gave(g);
                }
                pool.put_guards(gs);
            }
            Op::Trim => pool.trim(),
            Op::TrimTo => pool.trim_to(SIZE),
            Op::SetMax => pool.set_max_total_memory(2 * SIZE),
            Op::Stats => {
                let s = pool.stats();
                let _ = s.to_string();
            }
            Op::TryGet => match pool.try_get(SIZE) {
                Ok(g) => {
                    self.took(&g);
                    self.gave(&g);
                    drop(g);
                }
                Err(e) => self.fault(format!("try_get with room to spare failed: {e}")),
            },
            Op::GetTimeout => match pool.get_timeout(SIZE, Duration::from_secs(30)) {
                Ok(g) => {
                    self.took(&g);
                    self.gave(&g);
                    drop(g);
                }
                Err(e) => self.fault(format!("get_timeout with room to spare failed: {e}")),
            },
            Op::Reload => {
                let mut cfg = pool.config();
                cfg.max_total_memory = ByteSize(4 * SIZE as u64);
                cfg.tls_cache_size = 2;
                cfg.batch_size = 1;
                if let Err(e) = pool.reload(&cfg) {
                    self.fault(format!("reload failed: {e}"));
                }
            }
        }
    }

    // ----- injected panics ---------------------------------------------------

    /// The next `with_capacity_hint` call panics (every call, `Always`).
    pub fn fuse_hint(&self, mode: Option<Mode>) {
        *lock(&self.hint_fuse) = mode;
    }

    /// The next object `with_capacity_hint` builds gets `fuses` (two at
    /// most; none: disarms).
    pub fn fuse_next_fresh(&self, fuses: &[Fuse]) {
        *lock(&self.fresh_fuses) = fuses.to_vec();
    }

    /// Injected panics that fired so far.
    pub fn blown(&self) -> usize {
        self.blown.load(SeqCst)
    }

    /// Liars tell the truth from now on (or lie again).
    pub fn set_honest(&self, honest: bool) {
        self.honest.store(honest, SeqCst);
    }
}

/// A pooled byte buffer whose callbacks misbehave on demand.
#[derive(Debug)]
pub struct Evil {
    pub buf: Vec<u8>,
    id: u64,
    ctx: &'static Ctx,
    fuses: Cell<[Option<Fuse>; 2]>,
    /// `capacity_bytes` calls answered so far, when it lies.
    lies: Option<Cell<usize>>,
}

impl Evil {
    /// A value of exactly `bytes` capacity, built by the test in `ctx`.
    pub fn new(ctx: &'static Ctx, bytes: usize) -> Self {
        ctx.built_by_test.fetch_add(1, SeqCst);
        Self::build(ctx, bytes)
    }

    fn build(ctx: &'static Ctx, bytes: usize) -> Self {
        let id = NEXT_ID.fetch_add(1, SeqCst);
        let buf = Vec::with_capacity(bytes);
        lock(&ctx.live).insert(id, buf.capacity());
        Self {
            buf,
            id,
            ctx,
            fuses: Cell::new([None; 2]),
            lies: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Arms a panic on one of this object's callbacks (two at most).
    pub fn fuse(&self, fuse: Fuse) {
        let mut fuses = self.fuses.get();
        let free = fuses
            .iter_mut()
            .find(|f| f.is_none())
            .expect("two fuses at most");
        *free = Some(fuse);
        self.fuses.set(fuses);
    }

    pub fn defuse(&self) {
        self.fuses.set([None; 2]);
    }

    /// From now on `capacity_bytes` reports a different value each time
    /// it is asked (until the context is made honest).
    pub fn make_liar(&mut self) {
        self.lies = Some(Cell::new(0));
    }

    /// Panics if a fuse is armed on `cb`.
    fn blow(&self, cb: Cb) {
        let mut fuses = self.fuses.get();
        let Some(slot) = fuses.iter_mut().find(|f| f.is_some_and(|f| f.cb == cb)) else {
            return;
        };
        if slot.is_some_and(|f| f.mode == Mode::Once) {
            *slot = None;
            self.fuses.set(fuses);
        }
        self.ctx.blown.fetch_add(1, SeqCst);
        panic::panic_any(Injected(cb));
    }

    /// At the top of every callback: the armed re-entry, then the armed
    /// panic (so a callback can do both, in that order).
    fn hook(&self, cb: Cb) {
        self.ctx.reenter(cb);
        self.blow(cb);
    }
}

impl Drop for Evil {
    fn drop(&mut self) {
        let ctx = self.ctx;
        ctx.drops.fetch_add(1, SeqCst);
        if lock(&ctx.live).remove(&self.id).is_none() {
            ctx.fault(format!("id {} dropped, but it is not alive", self.id));
            // A copy of an object already dropped: its buffer is freed.
            std::mem::forget(std::mem::take(&mut self.buf));
            return;
        }
        if lock(&ctx.held).contains(&self.id) {
            ctx.fault(format!(
                "id {} dropped while a live guard holds it",
                self.id
            ));
        }
        self.hook(Cb::Drop);
    }
}

impl Poolable for Evil {
    fn with_capacity_hint(bytes: usize) -> Self {
        let ctx = CURRENT
            .with(Cell::get)
            .expect("an Evil built on a thread that entered no Ctx");
        {
            let mut fuse = lock(&ctx.hint_fuse);
            if let Some(mode) = *fuse {
                if mode == Mode::Once {
                    *fuse = None;
                }
                drop(fuse);
                ctx.blown.fetch_add(1, SeqCst);
                panic::panic_any(Injected(Cb::Hint));
            }
        }
        ctx.reenter(Cb::Hint);
        ctx.built_by_pool.fetch_add(1, SeqCst);
        let obj = Evil::build(ctx, bytes);
        for fuse in std::mem::take(&mut *lock(&ctx.fresh_fuses)) {
            obj.fuse(fuse);
        }
        obj
    }

    fn reset(&mut self) {
        self.hook(Cb::Reset);
        self.buf.clear();
    }

    fn capacity_bytes(&self) -> usize {
        self.hook(Cb::CapacityBytes);
        match &self.lies {
            Some(n) if !self.ctx.honest.load(SeqCst) => {
                let k = n.get();
                n.set(k + 1);
                // Never the same twice in a row, around the real value.
                [SIZE, 2 * SIZE, SIZE / 2, 3 * SIZE + 1, 0, SIZE + 1, 7][k % 7]
            }
            _ => self.buf.capacity(),
        }
    }

    fn class_bytes(&self) -> usize {
        self.hook(Cb::ClassBytes);
        self.buf.capacity()
    }

    fn wipe(&mut self) {
        self.hook(Cb::Wipe);
        self.buf.fill(0);
    }

    fn spare_heap(&mut self) -> Option<&mut [MaybeUninit<u8>]> {
        self.hook(Cb::SpareHeap);
        Some(self.buf.spare_capacity_mut())
    }
}

// ----- checks ---------------------------------------------------------------

/// A panic payload as text.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(Injected(cb)) = payload.downcast_ref::<Injected>() {
        return format!("injected panic in {cb:?}");
    }
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string payload>".into())
}

/// Runs `f`, which must panic with an injected panic; returns which.
#[track_caller]
pub fn expect_injected<R>(f: impl FnOnce() -> R) -> Cb {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected an injected panic, but the call returned"),
        Err(payload) => match payload.downcast::<Injected>() {
            Ok(i) => i.0,
            Err(other) => panic!("expected an injected panic, got: {}", message(&*other)),
        },
    }
}

/// `PoolStats::drop_panics`: `T::drop` panics the pool caught while it
/// freed an object. Read by name from the serialized snapshot.
#[track_caller]
pub fn drop_panics(s: &PoolStats) -> usize {
    let v = serde_json::to_value(s).expect("PoolStats serializes");
    v.get("drop_panics")
        .and_then(|n| n.as_u64())
        .expect("PoolStats has a `drop_panics` counter") as usize
}

/// The pool's counters agree with the books, with nothing out: every
/// allocation, adoption, detach and free the test saw, and nothing else.
#[track_caller]
pub fn assert_counts(ctx: &Ctx, s: &PoolStats, what: &str) {
    let built = ctx.built_by_pool.load(SeqCst);
    let unpooled = ctx.unpooled.load(SeqCst);
    let unadopted = ctx.unadopted.load(SeqCst);
    assert_eq!(s.gets, ctx.gets.load(SeqCst), "{what}: gets\n{s}");
    assert_eq!(s.adopted, ctx.adopted.load(SeqCst), "{what}: adopted\n{s}");
    assert_eq!(
        s.detached,
        ctx.detached.load(SeqCst),
        "{what}: detached\n{s}"
    );
    assert_eq!(
        s.puts,
        ctx.returns.load(SeqCst) + ctx.adopted.load(SeqCst),
        "{what}: puts (guards returned + objects put)\n{s}"
    );
    assert_eq!(
        s.allocations,
        built - unpooled,
        "{what}: allocations (objects the pool built and handed out)\n{s}"
    );
    assert_eq!(
        s.freed,
        ctx.drops.load(SeqCst) - unpooled - unadopted,
        "{what}: freed (objects the pool dropped)\n{s}"
    );
}

/// The census: with no guard alive and nothing else running, every live
/// object is idle in the pool, reachable once and only once.
///
/// After one `get` (so that this thread's cache has caught up with a trim
/// or budget cut made elsewhere), checks the stats against the books (outstanding 0, retained = live
/// objects and their bytes, the counters), then takes `n` = live objects
/// with one `get_batch`: `n` distinct live ids, nothing built; one more
/// `get` builds a new object (the pool held nothing else). All are given
/// back afterwards (the pool ends with `n + 1` idle objects, budget
/// permitting).
#[track_caller]
pub fn census(ctx: &'static Ctx, pool: &Pool<Evil>, what: &str) {
    census_of(ctx, pool, what, true);
}

/// [`census`] without the check of idle bytes against the live objects'
/// capacities (for objects that lied about them when they came in).
#[track_caller]
pub fn census_of_liars(ctx: &'static Ctx, pool: &Pool<Evil>, what: &str) {
    census_of(ctx, pool, what, false);
}

#[track_caller]
fn census_of(ctx: &'static Ctx, pool: &Pool<Evil>, what: &str, exact_bytes: bool) {
    ctx.disarm();
    ctx.fuse_hint(None);
    ctx.fuse_next_fresh(&[]);
    ctx.set_honest(true);
    ctx.assert_no_faults(what);
    assert!(
        ctx.held().is_empty(),
        "{what}: guards still out {:?}",
        ctx.held()
    );
    // This thread's cache catches up first: a `trim` or budget cut made on
    // another thread (or from a callback running there) frees the objects
    // cached here at this thread's next operation.
    let g = pool.get(SIZE);
    ctx.took(&g);
    ctx.gave(&g);
    drop(g);
    let live = ctx.live();
    let n = live.len();
    let s = pool.stats();
    crate::common::assert_consistent(&s);
    assert!(s.bytes_retained < 1 << 60, "{what}: absurd\n{s}");
    assert!(s.bytes_reserved < 1 << 60, "{what}: absurd\n{s}");
    assert_eq!(s.objects_outstanding, 0, "{what}: objects out\n{s}");
    assert_eq!(
        s.objects_retained,
        n,
        "{what}: idle objects = live objects {:?}\n{s}",
        live.keys()
    );
    if exact_bytes {
        assert_eq!(
            s.bytes_retained,
            live.values().sum::<usize>(),
            "{what}: idle bytes = the live objects' capacities\n{s}"
        );
    }
    assert_counts(ctx, &s, what);

    let built = ctx.built();
    let guards = pool.get_batch(&vec![SIZE; n]);
    let ids: BTreeSet<u64> = guards.iter().map(|g| g.id()).collect();
    for g in &guards {
        ctx.took(g);
        g.defuse();
    }
    ctx.assert_no_faults(what);
    assert_eq!(ids.len(), n, "{what}: {n} idle objects, distinct");
    assert!(
        ids.iter().all(|id| live.contains_key(id)),
        "{what}: ids {ids:?} not all among the live {:?} (the pool built {} to serve \
         the batch: the idle objects it reported were not all reachable)\nbefore: {s}\nafter: {}",
        live.keys(),
        ctx.built() - built,
        pool.stats()
    );
    assert_eq!(ctx.built(), built, "{what}: the census built nothing");
    let extra = pool.get(SIZE);
    ctx.took(&extra);
    assert_eq!(
        ctx.built(),
        built + 1,
        "{what}: the pool held more than the {n} live objects (id {} came out again)",
        extra.id()
    );
    assert!(!live.contains_key(&extra.id()), "{what}");
    ctx.gave(&extra);
    drop(extra);
    for g in guards {
        ctx.gave(&g);
        drop(g);
    }
    ctx.assert_no_faults(what);
    let s = pool.stats();
    crate::common::assert_consistent(&s);
    assert_eq!(s.objects_outstanding, 0, "{what}\n{s}");
    assert_eq!(s.objects_retained, ctx.live().len(), "{what}\n{s}");
    assert_counts(ctx, &s, what);
    ctx.set_honest(false);
}

/// Drops the pool (the context's handle too) and checks that it freed
/// every object it held exactly once.
#[track_caller]
pub fn drop_pool(ctx: &'static Ctx, pool: Pool<Evil>, what: &str) {
    ctx.clear_pool();
    drop(pool);
    ctx.assert_no_faults(what);
    let live = ctx.live();
    assert!(
        live.is_empty(),
        "{what}: objects alive after the pool dropped: {:?}",
        live.keys()
    );
}

// ----- isolation ------------------------------------------------------------

/// Runs `scenario` in a child process (this test binary, filtered to
/// `name`), so that an abort, a double free or a hang fails this test
/// instead of the whole binary. Under Miri (no processes) it runs inline.
pub fn isolated(name: &str, scenario: impl FnOnce()) {
    const CHILD: &str = "ZEROPOOL_CALLBACKS_CHILD";
    if cfg!(miri) || std::env::var_os(CHILD).is_some() {
        scenario();
        return;
    }
    let timeout = std::env::var("ZEROPOOL_CHILD_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the test binary");
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        None => panic!("child {name} hung (killed after {timeout} s):\n{stdout}\n{stderr}"),
        Some(status) => assert!(
            status.success() && stdout.contains("1 passed"),
            "child {name} failed ({status}):\n{stdout}\n{stderr}"
        ),
    }
}
