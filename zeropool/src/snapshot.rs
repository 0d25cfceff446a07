//! `stats()`: one snapshot summed from every thread slot, the retired
//! counters, the shards, the budget and the cap, without stopping anyone.
//!
//! ```text
//!  slots (lock the slot list) ─ counters + cached bytes/objects ┐
//!  retired counters ────────────────────────────────────────────┼─► PoolStats
//!  shards (lock-free mirrors) ─ bytes, objects per class, contention ┘
//!  budget: reserved (before/after, to bound double counting), bytes in care
//! ```

use crate::gate::NO_CAP;
use crate::pool::Inner;
use crate::stats::{ClassStats, Ev, Hit, NodeStats, PoolStats, Totals};
use crate::sync::{AtomicU64, Ordering};
use crate::Poolable;

impl<T: Poolable> Inner<T> {
    /// Sums every source into a [`PoolStats`].
    pub(crate) fn snapshot(&self) -> PoolStats {
        let inner = self;
        let (reload_errors, last_reload_error) = inner.config.errors();
        let n = inner.classes.len();
        let reserved_before = inner.budget.reserved();
        let mut totals = Totals::new(n);
        let mut shard_objects = vec![0usize; n];
        let mut bytes_retained = 0usize;
        let mut objects_retained = 0usize;
        let numa = &inner.numa;
        let mut nodes: Vec<NodeStats> = numa
            .locator
            .topology()
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, info)| NodeStats {
                node: info.os_index,
                local_hits: load(&numa.retired_hits[i]),
                remote_returns: load(&numa.remote_returns[i]),
                allocations: load(&numa.allocations[i]),
                bytes_retained: 0,
            })
            .collect();
        {
            let slots = inner.slots.lock();
            for slot in slots.iter() {
                slot.counters().add_into(&mut totals);
                bytes_retained += slot.cached_bytes();
                objects_retained += slot.cached_objects();
                if let Some(node) = nodes.get_mut(slot.node()) {
                    let hits = slot.counters().hits_total(Hit::Tls)
                        + slot.counters().hits_total(Hit::Shared);
                    node.local_hits += hits as usize;
                    node.bytes_retained += slot.cached_bytes();
                }
            }
            inner.retired.add_into(&mut totals);
        }
        for (i, shard) in inner.shards.iter().enumerate() {
            if let Some(node) = nodes.get_mut(numa.map.node_of_shard(i)) {
                node.bytes_retained += shard.bytes();
            }
        }
        let mut contention = 0;
        for shard in inner.shards.iter() {
            bytes_retained += shard.bytes();
            contention += shard.contention_events() as usize;
            for (c, acc) in shard_objects.iter_mut().enumerate() {
                *acc += shard.class_objects(c);
            }
        }
        objects_retained += shard_objects.iter().sum::<usize>();
        let reserved_after = inner.budget.reserved();
        // Objects moving between a cache and a shard while we read may be
        // seen twice; the reservation bounds the true figure at every instant.
        let bytes_retained = bytes_retained.min(reserved_before.max(reserved_after));
        let allocations = totals.hit_total(Hit::Alloc);
        let tls_hits = totals.hit_total(Hit::Tls);
        let shared_hits = totals.hit_total(Hit::Shared);
        let gets = tls_hits + shared_hits + allocations;
        let freed = totals.event(Ev::Freed);
        let detached = totals.event(Ev::Detached);
        let adopted = totals.event(Ev::Adopted);
        // Objects in the pool's care (a gauge kept whether or not stats are
        // on) that are not idle are out with a guard. The counters are not
        // used here, so `is_balanced` checks them against the gauge.
        let objects_outstanding = inner
            .budget
            .objects_in_care()
            .saturating_sub(objects_retained);
        let classes = (0..n)
            .map(|c| {
                let (t, s, a) = (
                    totals.hit(c, Hit::Tls),
                    totals.hit(c, Hit::Shared),
                    totals.hit(c, Hit::Alloc),
                );
                ClassStats {
                    size: inner.classes.size(c),
                    gets: t + s + a,
                    tls_hits: t,
                    shared_hits: s,
                    allocations: a,
                    shard_objects: shard_objects[c],
                }
            })
            .collect();
        PoolStats {
            gets,
            puts: gets.saturating_sub(objects_outstanding + detached) + adopted,
            tls_hits,
            shared_hits,
            steals: totals.hit_total(Hit::Steal),
            allocations,
            oversize_requests: totals.hit(n, Hit::Alloc),
            discards: totals.event(Ev::Discards),
            undersize_drops: totals.event(Ev::Undersize),
            oversize_drops: totals.event(Ev::Oversize),
            reset_panics: totals.event(Ev::ResetPanics),
            trimmed: totals.event(Ev::Trimmed),
            drop_panics: totals.event(Ev::DropPanics),
            freed,
            detached,
            adopted,
            contention_events: contention,
            objects_retained,
            bytes_retained,
            objects_outstanding,
            // Bytes in the pool's care less the idle ones (0 if a
            // concurrent move made the two reads disagree).
            bytes_outstanding: inner.budget.in_care().saturating_sub(bytes_retained),
            bytes_reserved: reserved_after,
            max_total_memory: inner.budget.limit(),
            bytes_retained_peak: inner.budget.peak_reserved(),
            bytes_outstanding_peak: {
                inner
                    .budget
                    .note_out(inner.budget.in_care().saturating_sub(bytes_retained));
                inner.budget.peak_out()
            },
            classes,
            reload_errors,
            last_reload_error,
            max_outstanding_memory: Some(inner.gate.cap()).filter(|&c| c != NO_CAP),
            bytes_charged: inner.gate.charged(),
            waits: load(&inner.gate.counters.waits),
            waiting: inner.gate.waiting(),
            wait_time_total: inner.gate.wait_times().0,
            wait_time_max: inner.gate.wait_times().1,
            timeouts: load(&inner.gate.counters.timeouts),
            exhausted_errors: load(&inner.gate.counters.exhausted),
            cap_overshoots: load(&inner.gate.counters.overshoots),
            numa: numa_summary(numa),
            nodes,
            bind_failures: load(&numa.bind_failures),
            pin_failures: load(&numa.pin_failures),
            numa_error: numa.first_error.lock().clone(),
        }
    }
}

/// Reads one of the cap's counters.
fn load(counter: &AtomicU64) -> usize {
    counter.load(Ordering::Relaxed) as usize
}

/// The placement in force, and why the pool runs as one node if it does.
fn numa_summary(numa: &crate::home::NumaState) -> String {
    let topology = numa.locator.topology();
    let mode = format!("{:?}", numa.placement.mode()).to_lowercase();
    match topology.fallback_reason() {
        Some(why) => format!("{mode} (one node: {why})"),
        None => format!("{mode} on {} node(s)", topology.nodes().len()),
    }
}
