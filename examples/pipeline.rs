//! A parse -> transform -> serialize pipeline over two threads, with a
//! `#[derive(Poolable)]` frame type.
//!
//! The parser (the main thread) takes a `Frame` from a `Pool<Frame>` as an
//! owned guard, parses a raw HTTP-like request into it and sends it over a
//! channel. The worker thread transforms the frame (normalizes header names,
//! counts the body's words), serializes it into the frame's own output
//! buffer, and drops it: the frame goes back to the pool, reset, and the
//! parser gets it again. Each frame's `Vec`s and `String`s keep their
//! allocations from one request to the next; the pool's statistics are
//! printed at the end.
//!
//! Run: `cargo run --release -p examples --example pipeline`

use std::fmt::Write as _;
use std::sync::mpsc;
use std::thread;
use zeropool::{OwnedPoolGuard, Pool, Poolable};

/// One request on its way through the pipeline.
#[derive(Poolable)]
struct Frame {
    /// The request body; sized by the capacity hint given to `get`.
    #[poolable(capacity)]
    body: Vec<u8>,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    seq: u64,
    body_words: usize,
    /// The serialized form, written by the worker.
    out: String,
    /// How many requests this frame has carried: survives `reset`.
    #[poolable(keep)]
    uses: u64,
}

impl Frame {
    /// Parses `raw` (request line, headers, blank line, body) into the frame.
    fn parse(&mut self, seq: u64, raw: &str) -> Result<(), String> {
        self.seq = seq;
        self.uses += 1;
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .ok_or("no blank line after the headers")?;
        let mut lines = head.split("\r\n");
        let mut request = lines.next().ok_or("empty request")?.split(' ');
        self.method
            .push_str(request.next().ok_or("no method in the request line")?);
        self.path
            .push_str(request.next().ok_or("no path in the request line")?);
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| format!("header without `: `: {line:?}"))?;
            self.headers.push((name.to_owned(), value.to_owned()));
        }
        self.body.extend_from_slice(body.as_bytes());
        Ok(())
    }

    /// Lower-cases header names and counts the body's words.
    fn transform(&mut self) {
        for (name, _) in &mut self.headers {
            name.make_ascii_lowercase();
        }
        self.body_words = self
            .body
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .count();
    }

    /// Writes the frame as one JSON line into `out`.
    fn serialize(&mut self) {
        let out = &mut self.out;
        let _ = write!(
            out,
            r#"{{"seq":{},"method":"{}","path":"{}","headers":{{"#,
            self.seq, self.method, self.path
        );
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(out, r#"{comma}"{name}":"{value}""#);
        }
        let _ = writeln!(
            out,
            r#"}},"body_bytes":{},"body_words":{}}}"#,
            self.body.len(),
            self.body_words
        );
    }
}

/// A request of a few hundred bytes to a few dozen KiB.
fn raw_request(seq: u64) -> String {
    let words = [20, 300, 2500, 6000][seq as usize % 4];
    let body = "lorem ipsum dolor sit amet ".repeat(words / 5);
    format!(
        "POST /items/{seq} HTTP/1.1\r\nHost: example.invalid\r\nX-Request-Id: {seq}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const REQUESTS: u64 = 20_000;
    // A frame's size class follows its `capacity` field (the body buffer);
    // the budget counts every field's heap bytes.
    let frames: Pool<Frame> = Pool::builder().max_total_memory(16 << 20).build()?;
    let (tx, rx) = mpsc::sync_channel::<OwnedPoolGuard<Frame>>(64);

    let worker = thread::spawn(move || {
        let (mut lines, mut bytes, mut most_uses) = (0u64, 0usize, 0u64);
        for mut frame in rx {
            frame.transform();
            frame.serialize();
            lines += 1;
            bytes += frame.out.len();
            most_uses = most_uses.max(frame.uses);
            // Dropping the guard resets the frame and returns it to the pool.
        }
        (lines, bytes, most_uses)
    });

    for seq in 0..REQUESTS {
        let raw = raw_request(seq);
        let mut frame = frames.get_owned(raw.len());
        assert!(
            frame.body.is_empty() && frame.headers.is_empty() && frame.out.is_empty(),
            "a pooled frame never shows a previous request"
        );
        frame.parse(seq, &raw)?;
        tx.send(frame)?;
    }
    drop(tx);
    let (lines, bytes, most_uses) = worker.join().expect("the worker panicked");

    println!("{lines} requests serialized into {bytes} bytes of JSON lines");
    println!("the busiest frame carried {most_uses} requests");
    println!("{}", frames.stats());
    Ok(())
}
