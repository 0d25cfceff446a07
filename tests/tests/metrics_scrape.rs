//! The pool's metrics served by metrics-exporter-prometheus on 127.0.0.1
//! and scraped over plain TCP, as Prometheus would.
#![cfg(feature = "metrics")]

use metrics_exporter_prometheus::PrometheusBuilder;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use zeropool::BufferPool;

/// Starts the exporter once for this process; returns its port.
fn exporter() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        PrometheusBuilder::new()
            .with_http_listener((Ipv4Addr::LOCALHOST, port))
            .install()
            .expect("exporter listening on 127.0.0.1");
        port
    })
}

/// `GET /metrics` on 127.0.0.1: the status line and the body.
fn scrape(port: u16) -> (String, String) {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a full response");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The value of the sample `name{...}` whose labels include all of `labels`.
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{')?;
        let ours = metric == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        ours.then(|| value.parse().ok()).flatten()
    })
}

#[test]
#[cfg_attr(miri, ignore = "an HTTP scrape over 127.0.0.1: Miri has no sockets")]
fn a_scrape_shows_totals_and_classes() {
    let port = exporter();
    let pool = BufferPool::builder()
        .size_classes(&[4096, 65536])
        .build()
        .expect("valid settings");
    for _ in 0..3 {
        drop(pool.get(4096));
    }
    drop(pool.get(65536));
    pool.publish_metrics("scraped");

    let (status, body) = scrape(port);
    assert!(status.contains(" 200 "), "{status}");
    let pool_label = [("pool", "scraped")];
    assert_eq!(
        sample(&body, "zeropool_gets_total", &pool_label),
        Some(4.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "zeropool_class_gets_total",
            &[("pool", "scraped"), ("class", "4096")]
        ),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "zeropool_class_tls_hits_total",
            &[("pool", "scraped"), ("class", "4096")]
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "zeropool_bytes_retained", &pool_label),
        Some((4096 + 65536) as f64),
        "{body}"
    );
    assert!(
        sample(&body, "zeropool_node_bytes_retained", &pool_label).is_some(),
        "{body}"
    );
    assert!(
        body.contains("# TYPE zeropool_gets_total counter"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE zeropool_bytes_retained gauge"),
        "{body}"
    );
    assert!(body.contains("# HELP zeropool_gets_total "), "{body}");
}

#[test]
#[cfg_attr(miri, ignore = "an HTTP scrape over 127.0.0.1: Miri has no sockets")]
fn an_interval_publisher_keeps_the_scrape_current() {
    let port = exporter();
    let pool = BufferPool::new();
    let _publisher = pool
        .publish_metrics_every("ticking", Duration::from_millis(10))
        .expect("a non-zero interval");
    for _ in 0..7 {
        drop(pool.get(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = scrape(port);
        if sample(&body, "zeropool_gets_total", &[("pool", "ticking")]) == Some(7.0) {
            break;
        }
        assert!(Instant::now() < deadline, "never saw 7 gets:\n{body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
