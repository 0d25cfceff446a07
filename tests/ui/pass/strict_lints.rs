//! The generated impl compiles without a warning under strict lints, for a
//! generic struct with every kind of field.
#![deny(
    warnings,
    missing_docs,
    unsafe_code,
    unused_qualifications,
    unused_results,
    unreachable_pub,
    elided_lifetimes_in_paths,
    single_use_lifetimes,
    trivial_casts,
    trivial_numeric_casts
)]

use std::marker::PhantomData;
use zeropool::{PoolField, Poolable};

/// Scratch space with a reset of its own.
#[derive(Debug, Default)]
pub struct Scratch {
    words: Vec<String>,
}

fn clear_scratch(s: &mut Scratch) {
    s.words.clear();
}

fn restart<T>(record: &mut Record<T>) {
    record.seq = 1;
}

/// A record with every kind of field.
#[derive(Debug, Poolable)]
#[poolable(reset = restart)]
pub struct Record<T> {
    #[poolable(capacity)]
    body: Vec<u8>,
    items: Vec<T>,
    last: Option<T>,
    seq: u64,
    #[poolable(keep)]
    name: &'static str,
    #[poolable(reset = "clear_scratch")]
    scratch: Scratch,
    _marker: PhantomData<T>,
}

/// A tuple struct built by a function of its own.
#[derive(Debug, Poolable)]
#[poolable(new = "Pair::new")]
pub struct Pair(String, u8);

impl Pair {
    fn new(bytes: usize) -> Self {
        Pair(String::with_capacity(bytes), 1)
    }
}

fn main() {
    let mut r = Record::<u32>::with_capacity_hint(64);
    r.items.push(1);
    r.scratch.words.push(String::from("w"));
    r.reset();
    assert!(r.items.is_empty() && r.scratch.words.is_empty());
    assert_eq!((r.seq, r.name, r.last), (1, "", None));
    assert!(r.body.capacity() >= 64);
    let mut p = Pair::with_capacity_hint(8);
    p.reset();
    assert_eq!(p.1, 0);
    assert_eq!(p.heap_bytes(), p.0.capacity());
}
