//! The main demo: a pool of byte buffers shared by a small pipeline.
//!
//! Two reader threads fill pooled buffers (owned guards, sent over a channel),
//! a writer thread consumes and drops them (back into the pool), a batch is
//! taken and given back, the budget is lowered at run time, and the pool's
//! statistics are printed at each step.
//!
//! Run: `cargo run --release -p examples --example demo`

use std::io::Write;
use std::sync::mpsc;
use std::thread;
use zeropool::{BufferPool, OwnedPoolGuard};

fn main() -> Result<(), zeropool::Error> {
    let pool = BufferPool::builder()
        .size_classes(&[4096, 16384, 65536, 262144])
        .max_total_memory(8 << 20)
        .build()?;
    println!(
        "pool: {} shards, classes {:?}, budget {} bytes",
        pool.shards(),
        pool.size_classes(),
        pool.max_total_memory()
    );

    // Two producers fill buffers; one consumer checks and drops them.
    let (tx, rx) = mpsc::sync_channel::<(usize, OwnedPoolGuard<Vec<u8>>)>(32);
    let producers: Vec<_> = (0..2)
        .map(|id| {
            let (pool, tx) = (pool.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..20_000usize {
                    let size = [1000, 5000, 20_000, 60_000][i % 4];
                    let mut buf = pool.get_owned(size);
                    assert!(buf.is_empty(), "a pooled buffer always starts empty");
                    write!(buf, "producer {id} message {i}:")
                        .expect("writing to a Vec cannot fail");
                    buf.resize(size, b'.');
                    tx.send((id, buf)).expect("consumer alive");
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = thread::spawn(move || {
        let mut bytes = 0;
        for (id, buf) in rx {
            assert!(buf.starts_with(format!("producer {id} ").as_bytes()));
            bytes += buf.len();
        }
        bytes
    });
    for p in producers {
        p.join().expect("producer panicked");
    }
    let bytes = consumer.join().expect("consumer panicked");
    let s = pool.stats();
    println!("\npipeline moved {bytes} bytes through {} buffers", s.gets);
    println!("{s}");

    // A batch: each shard lock taken at most once.
    let batch = pool.get_batch(&[4096; 64]);
    pool.put_guards(batch);
    println!(
        "\nafter a batch of 64: {} idle objects, {} idle bytes",
        pool.stats().objects_retained,
        pool.stats().bytes_retained
    );

    // Lower the budget at run time: idle memory is trimmed at once.
    pool.set_max_total_memory(256 << 10);
    let s = pool.stats();
    println!(
        "budget lowered to 256 KiB: {} idle bytes (trimmed {})",
        s.bytes_retained, s.trimmed
    );
    assert!(s.bytes_retained <= 256 << 10);

    pool.trim();
    println!(
        "after trim: {} idle bytes; ledger balanced: {}",
        pool.stats().bytes_retained,
        pool.stats().is_balanced()
    );
    Ok(())
}
