//! An async TCP echo server whose buffers come from a pool with a hard cap
//! on the memory handed out, hammered by a load generator in the same
//! process.
//!
//! The server reads each chunk into a pooled 16 KiB buffer
//! (`get_owned_async`, then tokio's `read_buf` into the guard) and writes it
//! back. The pool hands out at most 64 such buffers at once
//! (`max_outstanding_memory` = 1 MiB, `on_exhausted = wait`): a connection
//! that finds them all taken parks its task, not a thread, until another
//! connection gives one back. A connection takes a buffer only once its
//! socket is readable, so idle connections hold none. Each chunk is held
//! for a millisecond of simulated work, so 200 busy connections want more
//! than 64 buffers and many wait; the peak of the bytes charged, sampled
//! after every acquire, never goes past the cap.
//!
//! All traffic stays on 127.0.0.1 (an ephemeral port). The load generator
//! is bounded: 200 connections × 50 round trips, each under a deadline.
//!
//! Run: `cargo run --release -p examples --example echo`

use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use zeropool::{BufferPool, OnExhausted};

/// One read buffer.
const BUF: usize = 16 * 1024;
/// Buffers handed out at most at once.
const BUFFERS: usize = 64;
const CAP: usize = BUFFERS * BUF;
const CONNECTIONS: usize = 200;
const ROUND_TRIPS: usize = 50;
/// What the server spends on each chunk while holding its buffer, standing
/// in for real work (parsing, forwarding to a backend): long enough that
/// 200 connections want more than 64 buffers at once.
const WORK: Duration = Duration::from_millis(1);
/// A round trip slower than this fails the run.
const ROUND_TRIP_DEADLINE: Duration = Duration::from_secs(10);

type AnyError = Box<dyn Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), AnyError> {
    let pool = BufferPool::builder()
        .size_classes(&[BUF])
        .max_outstanding_memory(CAP)
        .on_exhausted(OnExhausted::Wait)
        .build()?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    println!(
        "echo server on {addr}: {BUFFERS} buffers of {} KiB at most ({} KiB cap)",
        BUF / 1024,
        CAP / 1024
    );

    let peak = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(serve(listener, pool.clone(), peak.clone(), stopped));

    // The load generator: every connection at once, each with its own
    // sequence of message sizes.
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for id in 0..CONNECTIONS {
        clients.spawn(client(addr, id));
    }
    let mut echoed = 0usize;
    while let Some(done) = clients.join_next().await {
        echoed += done??;
    }
    let elapsed = started.elapsed();

    // Every client has closed its connection; the server finishes them.
    let _ = stop.send(());
    let connections = server.await??;

    let stats = pool.stats();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "{CONNECTIONS} connections × {ROUND_TRIPS} round trips: {} MiB echoed in {elapsed:.2?} ({:.0} MiB/s)",
        echoed >> 20,
        echoed as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "served {connections} connections; peak charged {peak} B of the {CAP} B cap ({} buffers); \
         {} gets waited for a buffer (longest {:.2?})",
        peak / BUF,
        stats.waits,
        stats.wait_time_max
    );
    println!("{stats}");
    assert_eq!(connections, CONNECTIONS);
    assert!(peak <= CAP, "peak charged {peak} B past the cap of {CAP} B");
    assert_eq!(pool.charged_bytes(), 0, "buffers still charged at the end");
    assert_eq!((stats.waiting, stats.cap_overshoots), (0, 0));
    println!("ok: the cap held");
    Ok(())
}

/// Accepts connections until told to stop, then waits for the open ones
/// to finish. Returns how many it served.
async fn serve(
    listener: TcpListener,
    pool: BufferPool,
    peak: Arc<AtomicUsize>,
    mut stop: oneshot::Receiver<()>,
) -> Result<usize, AnyError> {
    let mut handlers = JoinSet::new();
    let mut served = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true)?;
                handlers.spawn(echo(stream, pool.clone(), peak.clone()));
            }
            Some(done) = handlers.join_next() => {
                done??;
                served += 1;
            }
            _ = &mut stop => break,
        }
    }
    while let Some(done) = handlers.join_next().await {
        done??;
        served += 1;
    }
    Ok(served)
}

/// Echoes one connection until the peer closes it.
async fn echo(
    mut stream: TcpStream,
    pool: BufferPool,
    peak: Arc<AtomicUsize>,
) -> Result<(), AnyError> {
    loop {
        // Take a buffer only when there is something to read.
        stream.readable().await?;
        // Parks this task while the cap is reached.
        let mut buf = pool.get_owned_async(BUF).await;
        peak.fetch_max(pool.charged_bytes(), Ordering::Relaxed);
        // `&mut *buf` is a `Vec<u8>`: tokio reads into its spare capacity
        // (empty, 16 KiB: one read never grows it).
        let n = stream.read_buf(&mut *buf).await?;
        if n == 0 {
            return Ok(());
        }
        tokio::time::sleep(WORK).await;
        stream.write_all(&buf).await?;
        // `buf` drops here: back to the pool, and the next waiter is woken.
    }
}

/// One client connection: `ROUND_TRIPS` messages of 1 B to 16 KiB, each
/// echoed back and checked. Returns the bytes echoed.
async fn client(addr: SocketAddr, id: usize) -> Result<usize, AnyError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut rng = XorShift::new(id as u64 + 1);
    let mut echoed = 0;
    let mut back = Vec::with_capacity(BUF);
    for trip in 0..ROUND_TRIPS {
        let len = 1 + rng.below(BUF);
        let fill = (id + trip) as u8;
        let message: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
        back.resize(len, 0);
        let round_trip = async {
            stream.write_all(&message).await?;
            stream.read_exact(&mut back).await?;
            Ok::<_, std::io::Error>(())
        };
        tokio::time::timeout(ROUND_TRIP_DEADLINE, round_trip)
            .await
            .map_err(|_| format!("client {id}, round trip {trip}: no echo in time"))??;
        if back != message {
            return Err(format!("client {id}, round trip {trip}: echo differs").into());
        }
        echoed += len;
    }
    stream.shutdown().await?;
    // The server sees the end of the stream and closes its side.
    let rest = stream.read(&mut back).await?;
    if rest != 0 {
        return Err(format!("client {id}: {rest} unexpected bytes").into());
    }
    Ok(echoed)
}

/// A tiny deterministic generator (xorshift64*) for message sizes.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}
