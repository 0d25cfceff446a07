//! Adversarial re-entry: every callback of a `Poolable` (`with_capacity_hint`,
//! `reset`, `capacity_bytes`, `class_bytes`, `wipe`, `spare_heap`, and
//! `Drop`) re-enters the SAME pool through every public operation (`get`,
//! `get_owned`, dropping a guard, `put`, `get_batch`, `put_batch`,
//! `put_guards`, `trim`, `trim_to`, `set_max_total_memory`, `stats`,
//! `try_get`, `get_timeout`, `reload`), while the pool is driven through
//! every path that may call that callback: a get that hits, one that
//! misses, an oversize get, `get_batch` of one size and of mixed sizes
//! over the thread cache and several shards, guard drops (with a spill),
//! `put`, `put_batch`, `put_guards`, budget discards, `trim`, `trim_to`, a
//! budget cut, `reload`, a thread exit (with and without a pending trim)
//! and the pool's drop.
//!
//! `Poolable` is a safe trait, so none of this may corrupt the pool. After
//! each scenario a census, kept by the test's own books (every object's
//! constructor and `Drop`, every guard handed out and returned), checks
//! that no object was dropped twice or handed to two live guards, that the
//! pool's counters agree with the books, and that every object the pool
//! kept is reachable once and only once (see `callbacks_support::census`).
//!
//! Each test runs in a child process (inline under Miri), so a double free
//! or a deadlock fails that test alone.

mod callbacks_support;
mod common;

use callbacks_support::{census, drop_pool, isolated, message, Cb, Ctx, Evil, Op, SIZE};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Barrier};
use zeropool::{ByteSize, OwnedPoolGuard, Pool, PoolConfig, PoolGuard};

/// Idle bytes the pools may keep: plenty for every scenario.
const BUDGET: usize = 64 * SIZE;
/// An oversize request (the one class is `SIZE`).
const OVERSIZE: usize = 3 * SIZE;
/// Objects a fill puts in each place (fewer under Miri, which is slow).
const K: usize = if cfg!(miri) { 2 } else { 6 };
/// More than a fill (or `GetBatchOne`'s setup) leaves idle: a batch this
/// long also builds objects.
const LONG: usize = 2 * K + 4;

/// Four shards, one size class, a small thread cache moving runs of two,
/// wiping on return (so `wipe` runs); capped with room to spare when the
/// op is `try_get`/`get_timeout`; pinned (so fresh objects' `spare_heap`
/// runs) when the callback is `spare_heap`.
fn pool(cb: Cb, op: Op) -> Pool<Evil> {
    let mut b = Pool::builder()
        .shards(4)
        .size_classes(&[SIZE])
        .tls_cache_size(4)
        .batch_size(2)
        .wipe_on_return(true)
        .max_total_memory(BUDGET);
    if op.wants_cap() {
        b = b.max_outstanding_memory(1 << 20);
    }
    if cb == Cb::SpareHeap {
        b = b.pinned(true);
    }
    b.build().unwrap()
}

/// Where the pool is driven while a callback is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `get` served by the thread cache.
    GetHit,
    /// `get` of an empty pool: a fresh object.
    GetMiss,
    /// `get` larger than every class.
    GetOversize,
    /// `get_owned` served by the thread cache.
    GetOwnedHit,
    /// `get_batch` of one size after `put_guards` filled the cache and a
    /// thread's exit filled a shard: cache, shards, then fresh objects.
    GetBatchOne,
    /// The same after `put_batch` filled the cache and the home shard.
    GetBatchOneAfterPutBatch,
    /// `get_batch` of mixed sizes (one oversize) over cache and shards.
    GetBatchMixed,
    /// A guard dropped into a full cache (a run spills to the home shard).
    GuardDropSpill,
    /// `get` on a thread whose cache another thread's `trim` made stale:
    /// the cache frees its objects first.
    StaleGet,
    /// The same with `get_batch`.
    StaleGetBatch,
    /// The same with a guard dropped.
    StaleDrop,
    /// An owned guard dropped.
    OwnedDrop,
    /// An oversize guard dropped (the object is freed).
    OversizeDrop,
    /// Guards dropped with the budget full (the objects are discarded).
    Discard,
    Put,
    /// `put_batch` overflowing the thread cache into the home shard.
    PutBatch,
    /// `put_batch` with the budget full (the overflow is discarded).
    PutBatchDiscard,
    /// `put_guards` of fresh guards, overflowing into the home shard.
    PutGuards,
    Trim,
    TrimTo,
    /// `set_max_total_memory` cutting the budget below what is idle.
    SetMax,
    /// `reload` with a smaller budget, cache and batch.
    Reload,
    /// A thread whose cache holds objects exits (they go to a shard).
    ThreadExit,
    /// The same after a `trim` (the exiting thread frees them).
    ThreadExitTrimmed,
    /// An exiting thread's other thread-local, destroyed after the pool's
    /// table of thread caches, gets, drops and puts (the pool serves it
    /// from the shards).
    LateThreadLocal,
    /// The last handle drops with objects idle everywhere.
    PoolDrop,
}

impl Path {
    const ALL: [Path; 26] = [
        Path::GetHit,
        Path::GetMiss,
        Path::GetOversize,
        Path::GetOwnedHit,
        Path::GetBatchOne,
        Path::GetBatchOneAfterPutBatch,
        Path::GetBatchMixed,
        Path::GuardDropSpill,
        Path::StaleGet,
        Path::StaleGetBatch,
        Path::StaleDrop,
        Path::OwnedDrop,
        Path::OversizeDrop,
        Path::Discard,
        Path::Put,
        Path::PutBatch,
        Path::PutBatchDiscard,
        Path::PutGuards,
        Path::Trim,
        Path::TrimTo,
        Path::SetMax,
        Path::Reload,
        Path::ThreadExit,
        Path::ThreadExitTrimmed,
        Path::LateThreadLocal,
        Path::PoolDrop,
    ];

    /// Whether any sound pool must call `cb` on this path (so an armed
    /// re-entry must have been made): fresh objects are built, returned
    /// objects are wiped, reset and measured, adopted ones classified,
    /// freed ones dropped.
    fn must_call(self, cb: Cb) -> bool {
        use Path::*;
        match cb {
            Cb::Hint => matches!(
                self,
                GetMiss | GetOversize | GetBatchOne | GetBatchOneAfterPutBatch
            ),
            Cb::Reset | Cb::Wipe => matches!(
                self,
                GuardDropSpill
                    | OwnedDrop
                    | Discard
                    | Put
                    | PutBatch
                    | PutBatchDiscard
                    | PutGuards
                    | LateThreadLocal
            ),
            Cb::CapacityBytes => matches!(
                self,
                GetMiss
                    | GuardDropSpill
                    | OwnedDrop
                    | Put
                    | PutBatch
                    | PutBatchDiscard
                    | LateThreadLocal
            ),
            Cb::ClassBytes => matches!(self, Put | PutBatch | PutBatchDiscard | LateThreadLocal),
            Cb::SpareHeap => matches!(self, GetMiss | GetOversize),
            Cb::Drop => matches!(
                self,
                StaleGet
                    | StaleGetBatch
                    | StaleDrop
                    | OversizeDrop
                    | Discard
                    | PutBatchDiscard
                    | Trim
                    | TrimTo
                    | SetMax
                    | Reload
                    | ThreadExitTrimmed
                    | PoolDrop
            ),
        }
    }
}

/// A scenario's state: the guards the test holds, kept in the books.
struct Scene<'p> {
    ctx: &'static Ctx,
    pool: &'p Pool<Evil>,
    held: Vec<PoolGuard<'p, Evil>>,
    owned: Vec<OwnedPoolGuard<Evil>>,
}

impl<'p> Scene<'p> {
    fn get(&self, n: usize) -> PoolGuard<'p, Evil> {
        let g = self.pool.get(n);
        self.ctx.took(&g);
        g
    }

    fn get_owned(&self, n: usize) -> OwnedPoolGuard<Evil> {
        let g = self.pool.get_owned(n);
        self.ctx.took(&g);
        g
    }

    fn get_batch(&self, sizes: &[usize]) -> Vec<PoolGuard<'p, Evil>> {
        let gs = self.pool.get_batch(sizes);
        assert_eq!(gs.len(), sizes.len());
        for g in &gs {
            self.ctx.took(g);
        }
        gs
    }

    fn give(&self, g: PoolGuard<'p, Evil>) {
        self.ctx.gave(&g);
        drop(g);
    }

    fn give_owned(&self, g: OwnedPoolGuard<Evil>) {
        self.ctx.gave(&g);
        drop(g);
    }

    fn put_guards(&self, gs: Vec<PoolGuard<'p, Evil>>) {
        for g in &gs {
            self.ctx.gave(g);
        }
        self.pool.put_guards(gs);
    }

    fn fresh(&self, k: usize) -> Vec<Evil> {
        (0..k).map(|_| Evil::new(self.ctx, SIZE)).collect()
    }

    fn put(&self, obj: Evil) {
        self.ctx
            .adopted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.pool.put(obj);
    }

    fn put_batch(&self, objs: Vec<Evil>) {
        self.ctx
            .adopted
            .fetch_add(objs.len(), std::sync::atomic::Ordering::SeqCst);
        self.pool.put_batch(objs);
    }

    /// Runs `body` on a new thread (in this context) and joins it, thread
    /// exit hooks included.
    fn on_thread(&self, body: impl FnOnce(&'static Ctx, &Pool<Evil>) + Send + 'static) {
        let (ctx, pool) = (self.ctx, self.pool.clone());
        std::thread::spawn(move || {
            ctx.enter_for_good();
            body(ctx, &pool);
        })
        .join()
        .expect("the helper thread");
    }

    /// A thread takes `k` objects (from the shards, then fresh), returns
    /// them to its cache and exits: they end in its home shard.
    fn helper(&self, k: usize) {
        self.on_thread(move |ctx, pool| {
            let gs = pool.get_batch(&vec![SIZE; k]);
            for g in gs {
                ctx.took(&g);
                ctx.gave(&g);
                drop(g);
            }
        });
    }

    /// Idle objects everywhere: `K` in a shard (a thread's exit), `K`
    /// fresh ones given with `put_batch` (the thread cache, the home
    /// shard), and three taken and dropped (from the cache or a shard,
    /// then returns into the thread cache).
    fn fill(&self) {
        self.helper(K);
        self.put_batch(self.fresh(K));
        let gs = self.get_batch(&[SIZE; 3]);
        for g in gs {
            self.give(g);
        }
    }

    /// The budget only has room for what is idle now (and one object).
    fn squeeze_budget(&self) {
        let idle = self.pool.stats().bytes_retained;
        self.pool.set_max_total_memory(idle + SIZE);
    }

    /// Drives the pool through `path` with `cb` armed to re-enter with `op`.
    fn drive(&mut self, path: Path, cb: Cb, op: Op) {
        let (ctx, pool) = (self.ctx, self.pool);
        let arm = || ctx.arm(cb, op);
        match path {
            Path::GetHit => {
                self.fill();
                arm();
                let g = self.get(SIZE);
                self.held.push(g);
            }
            Path::GetMiss => {
                arm();
                let g = self.get(SIZE);
                self.held.push(g);
            }
            Path::GetOversize => {
                arm();
                let g = self.get(OVERSIZE);
                self.held.push(g);
            }
            Path::GetOwnedHit => {
                self.fill();
                arm();
                let g = self.get_owned(SIZE);
                self.owned.push(g);
            }
            Path::GetBatchOne => {
                let gs = self.get_batch(&[SIZE; K + 2]);
                self.put_guards(gs);
                self.helper(K);
                arm();
                let gs = self.get_batch(&[SIZE; LONG]);
                self.held.extend(gs);
            }
            Path::GetBatchOneAfterPutBatch => {
                self.fill();
                arm();
                let gs = self.get_batch(&[SIZE; LONG]);
                self.held.extend(gs);
            }
            Path::GetBatchMixed => {
                self.fill();
                arm();
                let sizes = [
                    SIZE,
                    SIZE / 2,
                    SIZE,
                    1,
                    SIZE - 1,
                    OVERSIZE,
                    SIZE,
                    SIZE / 4,
                    SIZE,
                    SIZE,
                    SIZE - 7,
                    SIZE,
                    OVERSIZE + 1,
                    SIZE,
                    SIZE,
                ];
                let gs = self.get_batch(&sizes);
                self.held.extend(gs);
            }
            Path::GuardDropSpill => {
                let mut gs = self.get_batch(&[SIZE; 6]);
                let last = gs.pop().unwrap();
                let spilling = gs.pop().unwrap();
                for g in gs {
                    self.give(g);
                }
                arm();
                self.give(spilling);
                self.held.push(last);
            }
            Path::StaleGet | Path::StaleGetBatch | Path::StaleDrop => {
                self.fill();
                let g = self.get(SIZE);
                // Another thread trims: the shards at once, this thread's
                // cache at its next operation.
                self.on_thread(|_, pool| pool.trim());
                arm();
                match path {
                    Path::StaleGet => {
                        let g = self.get(SIZE);
                        self.held.push(g);
                    }
                    Path::StaleGetBatch => {
                        let gs = self.get_batch(&[SIZE; 3]);
                        self.held.extend(gs);
                    }
                    _ => {}
                }
                self.give(g);
            }
            Path::OwnedDrop => {
                self.fill();
                let g = self.get_owned(SIZE);
                arm();
                self.give_owned(g);
            }
            Path::OversizeDrop => {
                let g = self.get(OVERSIZE);
                arm();
                self.give(g);
            }
            Path::Discard => {
                self.fill();
                let gs = self.get_batch(&[SIZE; 4]);
                self.squeeze_budget();
                arm();
                for g in gs {
                    self.give(g);
                }
            }
            Path::Put => {
                self.fill();
                arm();
                self.put(Evil::new(ctx, SIZE));
            }
            Path::PutBatch => {
                self.fill();
                let objs = self.fresh(K);
                arm();
                self.put_batch(objs);
            }
            Path::PutBatchDiscard => {
                self.fill();
                self.squeeze_budget();
                let objs = self.fresh(K);
                arm();
                self.put_batch(objs);
            }
            Path::PutGuards => {
                let gs = self.get_batch(&[SIZE; 8]);
                arm();
                self.put_guards(gs);
            }
            Path::Trim => {
                self.fill();
                arm();
                pool.trim();
            }
            Path::TrimTo => {
                self.fill();
                arm();
                pool.trim_to(3 * SIZE);
            }
            Path::SetMax => {
                self.fill();
                arm();
                pool.set_max_total_memory(2 * SIZE);
            }
            Path::Reload => {
                self.fill();
                let mut cfg = pool.config();
                cfg.max_total_memory = ByteSize(2 * SIZE as u64);
                cfg.tls_cache_size = 2;
                cfg.batch_size = 1;
                arm();
                pool.reload(&cfg).unwrap();
            }
            Path::ThreadExit => {
                self.fill();
                self.on_thread(move |ctx, pool| {
                    let gs = pool.get_batch(&[SIZE; K]);
                    for g in gs {
                        ctx.took(&g);
                        ctx.gave(&g);
                        drop(g);
                    }
                    // Fires in the thread-exit hook, if anywhere.
                    ctx.arm(cb, op);
                });
            }
            Path::ThreadExitTrimmed => {
                self.fill();
                let sync = Arc::new(Barrier::new(2));
                let their = sync.clone();
                let (ctx, other) = (self.ctx, pool.clone());
                let t = std::thread::spawn(move || {
                    ctx.enter_for_good();
                    let gs = other.get_batch(&[SIZE; 4]);
                    for g in gs {
                        ctx.took(&g);
                        ctx.gave(&g);
                        drop(g);
                    }
                    drop(other);
                    their.wait(); // cached here, now trimmed by the test
                    their.wait();
                    ctx.arm(cb, op);
                });
                sync.wait();
                pool.trim();
                sync.wait();
                t.join().expect("the exiting thread");
            }
            Path::LateThreadLocal => {
                self.fill();
                self.on_thread(move |ctx, pool| {
                    // Registered first, so destroyed after the pool's table.
                    LATE.with(|late| {
                        *late.borrow_mut() = Some(Late {
                            ctx,
                            pool: pool.clone(),
                            armed: (cb, op),
                        })
                    });
                    let gs = pool.get_batch(&[SIZE; 3]);
                    for g in gs {
                        ctx.took(&g);
                        ctx.gave(&g);
                        drop(g);
                    }
                });
            }
            Path::PoolDrop => unreachable!("driven by `scenario`"),
        }
    }

    /// Returns every guard the test (or a callback) still holds.
    fn release_all(&mut self) {
        for g in std::mem::take(&mut self.held) {
            self.give(g);
        }
        for g in std::mem::take(&mut self.owned) {
            self.give_owned(g);
        }
        self.ctx.drain_stash();
    }
}

thread_local! {
    static LATE: RefCell<Option<Late>> = const { RefCell::new(None) };
}

/// Uses the pool from a thread-local destructor, armed.
struct Late {
    ctx: &'static Ctx,
    pool: Pool<Evil>,
    armed: (Cb, Op),
}

impl Drop for Late {
    fn drop(&mut self) {
        let (ctx, pool) = (self.ctx, &self.pool);
        ctx.arm(self.armed.0, self.armed.1);
        let g = pool.get(SIZE);
        ctx.took(&g);
        ctx.gave(&g);
        drop(g);
        ctx.adopted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        pool.put(Evil::new(ctx, SIZE));
        let gs = pool.get_batch(&[SIZE; 2]);
        for g in &gs {
            ctx.took(g);
        }
        for g in gs {
            ctx.gave(&g);
            drop(g);
        }
    }
}

/// Whether a path (or an op) changes the pool's limits, to be restored.
fn changes_limits(path: Path, op: Op) -> bool {
    matches!(
        path,
        Path::Discard | Path::PutBatchDiscard | Path::SetMax | Path::Reload
    ) || matches!(op, Op::SetMax | Op::Reload)
}

/// One scenario, starting from an empty pool; returns whether the re-entry
/// was made. The census follows.
fn scenario(
    ctx: &'static Ctx,
    pool: &Pool<Evil>,
    config: &PoolConfig,
    path: Path,
    cb: Cb,
    op: Op,
) -> bool {
    let what = format!("{cb:?} re-entering with {op:?}, on {path:?}");
    eprintln!("{what}");
    pool.trim();
    if op == Op::DropGuard {
        // Guards for the callback to drop.
        for _ in 0..2 {
            let g = pool.get_owned(SIZE);
            ctx.took(&g);
            ctx.stash(g);
        }
    }
    let mut scene = Scene {
        ctx,
        pool,
        held: Vec::new(),
        owned: Vec::new(),
    };
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| scene.drive(path, cb, op))) {
        ctx.disarm();
        let faults = ctx.faults();
        panic!(
            "{what}: the operation panicked: {}\nfaults: {faults:#?}",
            message(&*payload)
        );
    }
    let fired = ctx.disarm();
    scene.release_all();
    if changes_limits(path, op) {
        pool.reload(config).unwrap();
    }
    // Under Miri, which is slow and looks for undefined behaviour, the
    // census runs once, before the pool drops.
    if !cfg!(miri) {
        census(ctx, pool, &what);
    }
    fired
}

/// Every path with `cb` armed to re-enter with `op`, on one pool (emptied
/// between paths), the pool's drop last; the re-entry must be made on
/// every path that must call `cb`.
fn reenter_everywhere(name: &str, cb: Cb, op: Op) {
    isolated(name, || {
        let ctx = Ctx::new();
        let _in = ctx.enter();
        let pool = pool(cb, op);
        let config = pool.config();
        ctx.set_pool(&pool);
        let mut missed = Vec::new();
        for path in Path::ALL {
            // Miri (slow, and there to find undefined behaviour) takes the
            // paths where the re-entry happens, and one where it may not.
            if cfg!(miri) && !path.must_call(cb) && path != Path::GetHit {
                continue;
            }
            let fired = match path {
                Path::PoolDrop => continue,
                _ => scenario(ctx, &pool, &config, path, cb, op),
            };
            if path.must_call(cb) && !fired {
                missed.push(path);
            }
        }
        if cfg!(miri) && !Path::PoolDrop.must_call(cb) {
            let what = format!("{cb:?} re-entering with {op:?}");
            census(ctx, &pool, &what);
            drop_pool(ctx, pool, &what);
        } else if !pool_drop(ctx, pool, cb, op) && Path::PoolDrop.must_call(cb) {
            missed.push(Path::PoolDrop);
        }
        assert!(
            missed.is_empty(),
            "{cb:?} was never called on {missed:?}: the re-entry did not happen"
        );
    });
}

/// The last handle drops, with `cb` armed, while objects are idle in the
/// thread cache and the shards: every object is freed exactly once.
fn pool_drop(ctx: &'static Ctx, pool: Pool<Evil>, cb: Cb, op: Op) -> bool {
    let what = format!("{cb:?} re-entering with {op:?}, on {:?}", Path::PoolDrop);
    eprintln!("{what}");
    let scene = Scene {
        ctx,
        pool: &pool,
        held: Vec::new(),
        owned: Vec::new(),
    };
    scene.fill();
    let gs = scene.get_batch(&[SIZE; 3]);
    scene.put_guards(gs);
    drop(scene);
    census(ctx, &pool, &what);
    ctx.clear_pool();
    ctx.arm(cb, op);
    drop(pool);
    let fired = ctx.disarm();
    ctx.assert_no_faults(&what);
    let live = ctx.live();
    assert!(
        live.is_empty(),
        "{what}: objects alive after the pool dropped: {:?}",
        live.keys()
    );
    fired
}

macro_rules! grid {
    ($($(#[$attr:meta])* $cb:ident => $cbv:expr;)*) => {$(
        $(#[$attr])*
        mod $cb {
            use super::*;
            grid!(@ops $cb, $cbv;
                get => Op::Get,
                get_owned => Op::GetOwned,
                drop_guard => Op::DropGuard,
                put_eight => Op::Put8,
                get_batch => Op::GetBatch,
                put_batch => Op::PutBatch,
                put_guards => Op::PutGuards,
                trim => Op::Trim,
                trim_to => Op::TrimTo,
                set_max_total_memory => Op::SetMax,
                stats => Op::Stats,
                try_get => Op::TryGet,
                get_timeout => Op::GetTimeout,
                reload => Op::Reload,
            );
        }
    )*};
    (@ops $cb:ident, $cbv:expr; $($op:ident => $opv:expr,)*) => {$(
        #[test]
        fn $op() {
            reenter_everywhere(concat!(stringify!($cb), "::", stringify!($op)), $cbv, $opv);
        }
    )*};
}

grid! {
    with_capacity_hint => Cb::Hint;
    reset => Cb::Reset;
    capacity_bytes => Cb::CapacityBytes;
    class_bytes => Cb::ClassBytes;
    wipe => Cb::Wipe;
    // `pinned` locks fresh memory with mlock, which Miri does not support.
    #[cfg(not(miri))]
    spare_heap => Cb::SpareHeap;
    drop => Cb::Drop;
}

/// The known reproducer: a `capacity_bytes` that calls `pool.put` eight
/// times, met by `get_batch` right after a batch came back. It used to hand
/// out duplicate buffers and then abort with `double free or corruption`.
#[test]
fn capacity_bytes_putting_eight_times_during_get_batch() {
    isolated(
        "capacity_bytes_putting_eight_times_during_get_batch",
        || {
            let what = "capacity_bytes puts eight times during get_batch";
            let ctx = Ctx::new();
            let _in = ctx.enter();
            let pool = pool(Cb::CapacityBytes, Op::Put8);
            ctx.set_pool(&pool);
            let scene = Scene {
                ctx,
                pool: &pool,
                held: Vec::new(),
                owned: Vec::new(),
            };
            let gs = scene.get_batch(&[SIZE; 8]);
            scene.put_guards(gs);
            let gs = scene.get_batch(&[SIZE; 8]);
            for g in gs {
                scene.give(g);
            }
            // Three calls in a row re-enter (the puts' own calls included).
            ctx.arm_times(Cb::CapacityBytes, Op::Put8, 3);
            let gs = scene.get_batch(&[SIZE; 8]);
            ctx.disarm();
            let ids: std::collections::BTreeSet<u64> = gs.iter().map(|g| g.id()).collect();
            assert_eq!(ids.len(), 8, "{what}: duplicate objects handed out");
            ctx.assert_no_faults(what);
            for g in gs {
                scene.give(g);
            }
            drop(scene);
            census(ctx, &pool, what);
            drop_pool(ctx, pool, what);
        },
    );
}

/// Re-entry from many callbacks at once: every callback re-enters three
/// times in a row with each op in turn, on a mixed workload.
#[test]
fn a_storm_of_reentry_keeps_the_census() {
    isolated("a_storm_of_reentry_keeps_the_census", || {
        let cbs = [
            Cb::Hint,
            Cb::Reset,
            Cb::CapacityBytes,
            Cb::ClassBytes,
            Cb::Wipe,
            Cb::Drop,
        ];
        for (i, op) in Op::ALL.into_iter().enumerate() {
            let cb = cbs[i % cbs.len()];
            let what = format!("storm: {cb:?} re-entering with {op:?} three times");
            let ctx = Ctx::new();
            let _in = ctx.enter();
            let pool = pool(cb, op);
            let config = pool.config();
            ctx.set_pool(&pool);
            if op == Op::DropGuard {
                for _ in 0..3 {
                    let g = pool.get_owned(SIZE);
                    ctx.took(&g);
                    ctx.stash(g);
                }
            }
            let mut scene = Scene {
                ctx,
                pool: &pool,
                held: Vec::new(),
                owned: Vec::new(),
            };
            scene.fill();
            ctx.arm_times(cb, op, 3);
            let gs = scene.get_batch(&[SIZE, SIZE / 2, SIZE, OVERSIZE, SIZE, SIZE]);
            let mut objs = Vec::new();
            for g in gs {
                if g.buf.capacity() == SIZE {
                    ctx.detaching(&g);
                    objs.push(PoolGuard::into_inner(g));
                } else {
                    scene.give(g);
                }
            }
            scene.put_batch(objs);
            let g = scene.get(SIZE);
            scene.give(g);
            pool.trim_to(4 * SIZE);
            let gs = scene.get_batch(&[SIZE; 5]);
            scene.put_guards(gs);
            pool.trim();
            ctx.disarm();
            scene.release_all();
            drop(scene);
            pool.reload(&config).unwrap();
            census(ctx, &pool, &what);
            drop_pool(ctx, pool, &what);
        }
    });
}
