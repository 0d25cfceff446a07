//! Memory overhead of a default `BufferPool` under a Zipf-sized live set.
//!
//! Keeps `LIVE` guards alive; each step drops a random one and gets a new
//! buffer of a Zipf-distributed size (100 B .. 1 MiB). Every `EVERY` steps it
//! records
//!
//! ```text
//! ratio = (bytes_retained + bytes_outstanding) / Σ requested sizes of the live guards
//! ```
//!
//! i.e. all memory the pool holds or has lent out, over what the program
//! asked for. Prints the max and mean ratio (target: max <= 1.25) and a
//! `ZIPF_MEMORY key=value ...` line for `.ci/bench-report`.
//!
//! `cargo bench -p zeropool-tests --bench zipf_memory`; `ZIPF_STEPS`,
//! `ZIPF_LIVE` and `ZIPF_SEED` override the defaults.

mod common;

use common::{Rng, Zipf};
use zeropool::{BufferPool, PoolGuard};

const LIVE: usize = 4096;
const STEPS: usize = 200_000;
const EVERY: usize = 1000;

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sample {
    step: usize,
    ratio: f64,
    requested: usize,
    retained: usize,
    outstanding: usize,
    objects_retained: usize,
}

fn main() {
    let live_n = env_or("ZIPF_LIVE", LIVE).max(1);
    let steps = env_or("ZIPF_STEPS", STEPS);
    let seed = env_or("ZIPF_SEED", 0x2165) as u64;

    let pool = BufferPool::new();
    let zipf = Zipf::standard();
    let mut rng = Rng::new(seed);

    let mut live: Vec<Option<(PoolGuard<'_, Vec<u8>>, usize)>> = (0..live_n)
        .map(|_| {
            let n = zipf.sample(&mut rng);
            Some((pool.get(n), n))
        })
        .collect();
    let mut requested: usize = live.iter().flatten().map(|(_, n)| n).sum();

    let mut samples = Vec::with_capacity(steps / EVERY + 1);
    for step in 1..=steps {
        let i = rng.below(live_n);
        let (old, old_n) = live[i].take().expect("every slot is live between steps");
        drop(old);
        requested -= old_n;
        let n = zipf.sample(&mut rng);
        live[i] = Some((pool.get(n), n));
        requested += n;

        if step % EVERY == 0 {
            let s = pool.stats();
            samples.push(Sample {
                step,
                ratio: (s.bytes_retained + s.bytes_outstanding) as f64 / requested as f64,
                requested,
                retained: s.bytes_retained,
                outstanding: s.bytes_outstanding,
                objects_retained: s.objects_retained,
            });
        }
    }

    if samples.is_empty() {
        eprintln!("zipf_memory: fewer than {EVERY} steps, nothing measured");
        return;
    }
    let max = samples
        .iter()
        .max_by(|a, b| a.ratio.total_cmp(&b.ratio))
        .expect("non-empty");
    let mean = samples.iter().map(|s| s.ratio).sum::<f64>() / samples.len() as f64;
    let mean_outstanding = samples
        .iter()
        .map(|s| s.outstanding as f64 / s.requested as f64)
        .sum::<f64>()
        / samples.len() as f64;
    let mean_retained = samples
        .iter()
        .map(|s| s.retained as f64 / s.requested as f64)
        .sum::<f64>()
        / samples.len() as f64;
    let stats = pool.stats();

    println!(
        "zipf_memory: {live_n} live guards, {steps} steps, seed {seed}, default pool settings"
    );
    println!(
        "  max ratio  {:.3} at step {} (requested {} B, outstanding {} B, retained {} B in {} objects)",
        max.ratio, max.step, max.requested, max.outstanding, max.retained, max.objects_retained
    );
    println!(
        "  mean ratio {mean:.3} = outstanding/requested {mean_outstanding:.3} + retained/requested {mean_retained:.3}"
    );
    println!("  final stats: {}", stats.to_string().replace('\n', "; "));
    println!(
        "  target max <= 1.25: {}",
        if max.ratio <= 1.25 { "MET" } else { "MISSED" }
    );
    println!(
        "ZIPF_MEMORY max_ratio={:.4} mean_ratio={mean:.4} mean_outstanding_ratio={mean_outstanding:.4} mean_retained_ratio={mean_retained:.4} samples={}",
        max.ratio,
        samples.len()
    );
    drop(live);
}
