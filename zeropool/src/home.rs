//! Home nodes: the pool's NUMA state, where fresh memory is placed, and how
//! an object freed on another node goes back to its home node's shards.
//!
//! ```text
//!  allocate ─ node_for_fresh(thread's node) ─ bind the fresh pages there
//!             (and mlock them if `pinned`) ─ the ticket records the node
//!  return ─ ticket.node == this thread's node? ─ yes: the usual path
//!           └ no: into this thread's remote batch for that node (idle,
//!             covered by the cache's budget credit); a full batch moves to
//!             the home node's group under one lock
//!  slow paths ─ the thread's node is looked up again (cheap: the CPU is
//!               cached); a thread that moved hands its cache to its old
//!               node's shards and adopts the new node
//! ```
//! On a one-node machine (or with `numa = "off"`) none of this runs: the
//! hot path compares two equal node numbers, and nothing else.

use crate::idle_object::Idle;
use crate::numa::{bind_fresh, pin, BindError, NodeLocator, Placement, PlacementMode, ShardMap};
use crate::pool::Inner;
use crate::sync::{AtomicU64, Mutex, Ordering};
use crate::thread_cache::{LocalCache, Slot};
use crate::Poolable;

/// What the pool knows about NUMA, fixed at build time but for counters.
#[derive(Debug)]
pub(crate) struct NumaState {
    pub(crate) locator: NodeLocator,
    pub(crate) placement: Placement,
    pub(crate) map: ShardMap,
    /// More than one node in use: objects carry and honour home nodes.
    pub(crate) active: bool,
    /// Lock fresh pool memory in RAM (`pinned = true`).
    pub(crate) pinned: bool,
    fresh: AtomicU64,
    /// Per node index: fresh allocations placed there.
    pub(crate) allocations: Box<[AtomicU64]>,
    /// Per node index: objects returned from other nodes to its shards.
    pub(crate) remote_returns: Box<[AtomicU64]>,
    /// Per node index: hits of threads that exited while on that node.
    pub(crate) retired_hits: Box<[AtomicU64]>,
    pub(crate) bind_failures: AtomicU64,
    pub(crate) pin_failures: AtomicU64,
    /// The first binding or pinning failure, said once and kept for stats.
    pub(crate) first_error: Mutex<Option<String>>,
}

impl NumaState {
    pub(crate) fn new(
        locator: NodeLocator,
        placement: Placement,
        map: ShardMap,
        pinned: bool,
    ) -> Self {
        let nodes = locator.topology().nodes().len().max(1);
        let counters = || (0..nodes).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
        let active = placement.mode() != PlacementMode::Off && nodes > 1;
        Self {
            locator,
            placement,
            map,
            active,
            pinned,
            fresh: AtomicU64::new(0),
            allocations: counters(),
            remote_returns: counters(),
            retired_hits: counters(),
            bind_failures: AtomicU64::new(0),
            pin_failures: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// The calling thread's node (0 when NUMA is not active).
    #[inline]
    pub(crate) fn current_node(&self) -> usize {
        if self.active {
            self.locator.current_node()
        } else {
            0
        }
    }

    /// Where a fresh object requested on `thread_node` lives, placing (and
    /// pinning) its memory there. Failures are counted, said once, and
    /// never fail the request.
    pub(crate) fn place<T: Poolable>(&self, obj: &mut T, thread_node: usize) -> usize {
        if !self.active && !self.pinned {
            return 0;
        }
        let node = if self.active {
            let counter = self.fresh.fetch_add(1, Ordering::Relaxed) as usize;
            self.placement.node_for_fresh(thread_node, counter)
        } else {
            0
        };
        if let Some(area) = obj.spare_heap() {
            if self.active {
                match bind_fresh(self.locator.topology(), area, &self.placement, node) {
                    Ok(_) => {}
                    Err(err @ (BindError::Unsupported(_) | BindError::Failed(_))) => {
                        self.bind_failures.fetch_add(1, Ordering::Relaxed);
                        self.say_once(err.to_string());
                    }
                }
            }
            if self.pinned {
                if let Err(err) = pin(area) {
                    self.pin_failures.fetch_add(1, Ordering::Relaxed);
                    self.say_once(err.to_string());
                }
            }
        }
        if let Some(count) = self.allocations.get(node) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        node
    }

    fn say_once(&self, message: String) {
        let mut first = self.first_error.lock();
        if first.is_none() {
            crate::trace::event!(warn, "{message}; the pool goes on without it");
            *first = Some(message);
        }
    }
}

impl<T: Poolable> Inner<T> {
    /// Keeps an object whose home is another node in this thread's remote
    /// batch for that node; a full batch moves to the home node's shards.
    /// Returns the object back if the budget has no room for it.
    pub(crate) fn return_remote(
        &self,
        slot: &Slot<T>,
        cache: &mut LocalCache<T>,
        idle: Idle<T>,
        class: usize,
        node: usize,
    ) -> Result<(), Idle<T>> {
        let bytes = idle.bytes;
        let need = bytes.saturating_sub(cache.credit - cache.cached);
        if need > 0 && !self.reserve_credit(cache, need) {
            return Err(idle);
        }
        if cache.remote.len() <= node {
            cache.remote.resize_with(node + 1, Vec::new);
        }
        cache.remote[node].push((class, idle));
        cache.cached += bytes;
        cache.objects += 1;
        let batch = self.batch_size.load(Ordering::Relaxed).max(1);
        if cache.remote[node].len() >= batch {
            self.flush_remote(cache, node);
        }
        slot.publish(cache);
        Ok(())
    }

    /// Moves this thread's remote batch for `node` to that node's shards
    /// under one lock; the bytes move from the cache's credit to the shard.
    pub(crate) fn flush_remote(&self, cache: &mut LocalCache<T>, node: usize) {
        let Some(run) = cache.remote.get_mut(node).filter(|r| !r.is_empty()) else {
            return;
        };
        let run = std::mem::take(run);
        let shard = self.numa.map.home_shard(node, cache.seq);
        let count = run.len();
        let bytes = self.shards[shard].lock().push_mixed(run);
        cache.cached -= bytes;
        cache.objects -= count;
        cache.credit -= bytes;
        self.numa.remote_returns[node].fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Flushes every remote batch of this thread.
    pub(crate) fn flush_all_remote(&self, cache: &mut LocalCache<T>) {
        for node in 0..cache.remote.len() {
            self.flush_remote(cache, node);
        }
    }

    /// On a slow path: if this thread now runs on another node, its cached
    /// objects go to its old node's shards and it adopts the new node.
    pub(crate) fn follow_thread(&self, slot: &Slot<T>, cache: &mut LocalCache<T>) {
        if !self.numa.active {
            return;
        }
        let node = self.numa.current_node();
        if node == cache.node {
            return;
        }
        let old_home = cache.home;
        {
            let mut locked = self.shards[old_home].lock();
            for class in 0..cache.stacks.len() {
                let stack = &mut cache.stacks[class];
                let n = stack.len();
                let bytes = locked.push_run(class, stack.drain(..));
                cache.cached -= bytes;
                cache.objects -= n;
                cache.credit -= bytes;
            }
        }
        cache.node = node;
        cache.home = self.numa.map.home_shard(node, cache.seq);
        slot.set_node(node);
        slot.publish(cache);
    }
}
