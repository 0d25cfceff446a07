//! The pool's stats in Prometheus text format: metrics-exporter-prometheus
//! serves them on 127.0.0.1, a publisher thread refreshes them on an
//! interval, and the example scrapes its own `/metrics` once (a hand-written
//! HTTP/1.1 GET over plain TCP) and prints the `zeropool_` lines.
//!
//! Run: `cargo run -p examples --example prometheus --features metrics`

use metrics_exporter_prometheus::PrometheusBuilder;
use std::error::Error;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;
use zeropool::BufferPool;

fn main() -> Result<(), Box<dyn Error>> {
    // A free port on 127.0.0.1 (the exporter does not report the one it got).
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    PrometheusBuilder::new()
        .with_http_listener((Ipv4Addr::LOCALHOST, port))
        .install()?;
    println!("serving http://127.0.0.1:{port}/metrics");

    let pool = BufferPool::builder()
        .size_classes(&[4096, 16384, 65536])
        .max_total_memory(8 << 20)
        .build()?;
    let publisher = pool.publish_metrics_every("frames", Duration::from_millis(50))?;

    // A small workload: four threads borrow buffers of three sizes.
    let workers: Vec<_> = (0..4)
        .map(|id| {
            let pool = pool.clone();
            thread::spawn(move || {
                for i in 0..10_000usize {
                    let size = [1000, 12_000, 60_000][(i + id) % 3];
                    let mut buf = pool.get(size);
                    buf.resize(size, id as u8);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked");
    }
    // Let the publisher catch up with the finished workload.
    thread::sleep(Duration::from_millis(200));

    let body = scrape(port)?;
    println!("\n{}", pool.stats());
    println!("\nzeropool_ lines of GET /metrics:");
    let mut lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("zeropool_"))
        .collect();
    lines.sort_unstable();
    for line in lines {
        println!("{line}");
    }
    drop(publisher);
    Ok(())
}

/// `GET /metrics` from 127.0.0.1:`port`; returns the body.
fn scrape(port: u16) -> Result<String, Box<dyn Error>> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("incomplete HTTP response")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(format!("scrape failed: {status}").into());
    }
    Ok(body.to_owned())
}
