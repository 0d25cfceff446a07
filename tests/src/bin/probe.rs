//! A probe for instruction counts: runs one pool operation in a loop, so
//! `valgrind --tool=callgrind` can count what one iteration costs.
//!
//! ```text
//! probe <operation> <iterations>
//! ```
//! `.ci/instructions` runs it at two iteration counts and divides the
//! difference, so start-up and warm-up cancel out.

use std::hint::black_box;
use zeropool::BufferPool;

const SIZE: usize = 64 * 1024;

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "get_drop".into());
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    match op.as_str() {
        // `get(64 KiB)` + drop on a default pool (stats on): the hit path.
        "get_drop" => {
            let pool = BufferPool::new();
            drop(pool.get(SIZE));
            for _ in 0..n {
                drop(black_box(pool.get(black_box(SIZE))));
            }
        }
        other => {
            eprintln!("probe: unknown operation `{other}` (known: get_drop)");
            std::process::exit(2);
        }
    }
}
