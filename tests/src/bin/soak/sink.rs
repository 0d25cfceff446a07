//! Where owned guards travel: a sink thread per pool that holds what it
//! receives for a moment and drops it (so objects come back on a thread
//! other than the one that took them), and async tasks that do the same.
//! Neither ever waits for the pool, so what they hold always comes back.

use crate::canary::Stamp;
use crate::holder::drop_owned;
use crate::report;
use crate::rng::Rng;
use crate::subject::Subject;
use crate::unit::{Tally, Unit};
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use zeropool::OwnedPoolGuard;

/// An owned guard on its way to another thread, with its holder's canary.
#[derive(Debug)]
pub struct Sent<T: Subject> {
    pub guard: OwnedPoolGuard<T>,
    pub stamp: Stamp,
}

/// Guards a sink holds at most.
const SINK_HOLDS: usize = 4;

/// The sink thread: holds up to [`SINK_HOLDS`] guards, drops the oldest
/// when more arrive or when nothing arrives for a millisecond, and ends
/// when every sender is gone.
pub fn run_sink<T: Subject>(unit: Arc<Unit<T>>, rx: Receiver<Sent<T>>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let mut queue: VecDeque<Sent<T>> = VecDeque::new();
    let poison = unit.plan.poison_percent;
    let mut drop_oldest = |queue: &mut VecDeque<Sent<T>>, rng: &mut Rng| {
        if let Some(s) = queue.pop_front() {
            tally.ops += 1;
            drop_owned(s.guard, &s.stamp, poison, rng, &mut tally);
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(1)) {
            Ok(s) => {
                queue.push_back(s);
                if queue.len() > SINK_HOLDS {
                    drop_oldest(&mut queue, &mut rng);
                }
            }
            Err(RecvTimeoutError::Timeout) => drop_oldest(&mut queue, &mut rng),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    while !queue.is_empty() {
        drop_oldest(&mut queue, &mut rng);
    }
    unit.add(&tally);
}

/// Tasks that receive owned guards; joined when the phase ends.
pub type Receivers = Arc<Mutex<JoinSet<()>>>;

/// Hands an owned guard to a new async task, which holds it for up to a
/// millisecond and drops it.
pub fn spawn_receiver<T: Subject>(
    unit: &Arc<Unit<T>>,
    receivers: &Receivers,
    rt: &tokio::runtime::Handle,
    guard: OwnedPoolGuard<T>,
    stamp: Stamp,
    seed: u64,
) {
    let unit = unit.clone();
    let task = async move {
        let mut rng = Rng::new(seed);
        let mut tally = Tally::default();
        tokio::time::sleep(Duration::from_micros(rng.range(0, 1000) as u64)).await;
        tally.ops += 1;
        drop_owned(
            guard,
            &stamp,
            unit.plan.poison_percent,
            &mut rng,
            &mut tally,
        );
        unit.add(&tally);
    };
    receivers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .spawn_on(task, rt);
    report::add_tasks(1);
}
