//! `#[derive(Poolable)]` at run time: derived types pooled across threads
//! keep no field of a previous user (except `keep` fields), generic, nested
//! and tuple structs work, custom constructors and resets run, and the
//! budget counts every field's heap bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use zeropool::{Pool, PoolField, Poolable};

// ----- the issue's `Frame` --------------------------------------------------

/// A field type with no `PoolField` impl, reset by a function of its own.
#[derive(Debug, Default)]
struct Scratch {
    words: Vec<String>,
    owner: Option<usize>,
}

fn reset_scratch(s: &mut Scratch) {
    s.words.clear();
    s.owner = None;
}

#[derive(Poolable)]
struct Frame {
    #[poolable(capacity)]
    payload: Vec<u8>,
    headers: Vec<(String, String)>,
    seq: u64,
    #[poolable(keep)]
    created_by: &'static str,
    #[poolable(reset = "reset_scratch")]
    scratch: Scratch,
    queue: VecDeque<u32>,
    index: HashMap<String, usize>,
    sorted: BTreeMap<u32, String>,
    text: String,
    flag: bool,
    ratio: f64,
    letter: char,
    timeout: Duration,
    last_error: Option<String>,
    pair: (u16, String),
    slots: [u32; 4],
    r#type: u8,
}

const MARKERS: [&str; 2] = ["thread-0", "thread-1"];

impl Frame {
    /// Writes `user`'s data into every field.
    fn fill(&mut self, user: usize, round: u64) {
        let tag = format!("{}:{round}", MARKERS[user]);
        self.payload.extend_from_slice(tag.as_bytes());
        self.headers.push(("x-user".into(), tag.clone()));
        self.seq = round + 1;
        self.created_by = MARKERS[user];
        self.scratch.words.push(tag.clone());
        self.scratch.owner = Some(user);
        self.queue.push_back(user as u32 + 1);
        self.index.insert(tag.clone(), user);
        self.sorted.insert(round as u32, tag.clone());
        self.text.push_str(&tag);
        self.flag = true;
        self.ratio = 0.5 + user as f64;
        self.letter = 'x';
        self.timeout = Duration::from_millis(round + 1);
        self.last_error = Some(tag.clone());
        self.pair = (user as u16 + 1, tag);
        self.slots = [user as u32 + 1; 4];
        self.r#type = 9;
    }

    /// Panics if any field other than `created_by` holds a user's data.
    fn assert_clean(&self) {
        assert!(self.payload.is_empty(), "payload: {:?}", self.payload);
        assert!(self.headers.is_empty(), "headers: {:?}", self.headers);
        assert_eq!(self.seq, 0);
        assert!(self.scratch.words.is_empty() && self.scratch.owner.is_none());
        assert!(self.queue.is_empty() && self.index.is_empty() && self.sorted.is_empty());
        assert!(self.text.is_empty());
        assert!(!self.flag);
        assert_eq!(self.ratio, 0.0);
        assert_eq!(self.letter, '\0');
        assert_eq!(self.timeout, Duration::ZERO);
        assert_eq!(self.last_error, None);
        assert_eq!(self.pair, (0, String::new()));
        assert_eq!(self.slots, [0; 4]);
        assert_eq!(self.r#type, 0);
        // `keep`: a fresh frame has the default, a reused one its last writer's.
        assert!(self.created_by.is_empty() || MARKERS.contains(&self.created_by));
    }
}

#[test]
fn get_sizes_the_capacity_field() {
    let frames: Pool<Frame> = Pool::builder().build().unwrap();
    let f = frames.get(16 * 1024);
    assert!(f.payload.capacity() >= 16 * 1024);
    f.assert_clean();
}

/// Two threads pass frames to each other through channels: every frame a
/// thread gets back was last filled by the other thread, and must come out
/// of the pool with no field of that user left.
#[test]
fn no_field_of_a_previous_user_survives_across_two_threads() {
    const ROUNDS: u64 = 300;
    let frames: Pool<Frame> = Pool::builder()
        .shards(1)
        .tls_cache_size(2)
        .batch_size(1)
        .build()
        .unwrap();
    let (to_1, from_0) = mpsc::channel();
    let (to_0, from_1) = mpsc::channel();
    let run = |user: usize, send: mpsc::Sender<_>, recv: mpsc::Receiver<_>| {
        let frames = frames.clone();
        thread::spawn(move || {
            let mut reused_from_other = 0;
            for round in 0..ROUNDS {
                let mut frame = frames.get_owned(1024 + round as usize % 3 * 4096);
                frame.assert_clean();
                if frame.created_by == MARKERS[1 - user] {
                    reused_from_other += 1;
                }
                frame.fill(user, round);
                send.send(frame).unwrap();
                let theirs: zeropool::OwnedPoolGuard<Frame> = recv.recv().unwrap();
                assert_eq!(theirs.scratch.owner, Some(1 - user));
                drop(theirs); // reset here, cached by this thread
            }
            reused_from_other
        })
    };
    let t0 = run(0, to_1, from_1);
    let t1 = run(1, to_0, from_0);
    let reused = t0.join().unwrap() + t1.join().unwrap();
    let stats = frames.stats();
    assert_eq!(stats.objects_outstanding, 0);
    assert!(stats.allocations < stats.gets, "{stats:?}");
    assert!(reused > 0, "no frame went from one thread to the other");
}

/// A pool with one class of `size` bytes: a value that grew (up to twice the
/// class) still goes back to it, so the next `get` reuses it.
fn one_class<T: Poolable>(size: usize) -> Pool<T> {
    Pool::builder().size_classes(&[size]).build().unwrap()
}

#[test]
fn keep_fields_survive_reset() {
    let frames: Pool<Frame> = one_class(512);
    let mut f = frames.get(512);
    f.fill(1, 0);
    drop(f);
    let f = frames.get(512);
    assert_eq!(frames.stats().allocations, 1, "the frame was reused");
    f.assert_clean();
    assert_eq!(f.created_by, "thread-1");
}

#[test]
fn wipe_reaches_the_fields_the_derive_resets() {
    let mut f = Frame::with_capacity_hint(64);
    f.fill(0, 0);
    let len = f.payload.len();
    f.wipe();
    assert!(f.payload.iter().all(|&b| b == 0));
    assert_eq!(f.payload.len(), len, "wipe zeroes, reset empties");
    assert!(f.text.bytes().all(|b| b == 0));
}

// ----- memory accounting ----------------------------------------------------

#[derive(Poolable)]
struct Buffers {
    #[poolable(capacity)]
    main: Vec<u8>,
    side: Vec<u64>,
    names: Vec<String>,
    #[poolable(keep)]
    label: String,
    #[poolable(reset = "String::clear")]
    note: String,
    #[poolable(reset = "reset_scratch")]
    scratch: Scratch,
}

impl Buffers {
    fn heap(&self) -> usize {
        self.main.capacity()
            + self.side.capacity() * 8
            + self.names.capacity() * std::mem::size_of::<String>()
            + self.label.capacity()
            + self.note.capacity()
    }
}

#[test]
fn capacity_bytes_is_the_sum_of_every_field() {
    let mut b = Buffers::with_capacity_hint(1000);
    assert!(b.main.capacity() >= 1000);
    assert_eq!(b.capacity_bytes(), b.main.capacity());
    b.side.reserve_exact(10);
    b.names.reserve_exact(3);
    b.label.push_str("kept and counted");
    b.note.reserve_exact(50);
    // `Scratch` is not a `PoolField`: its bytes are not counted.
    b.scratch.words.push("x".repeat(100));
    assert_eq!(b.capacity_bytes(), b.heap());
    let before = b.capacity_bytes();
    b.reset();
    assert_eq!(b.capacity_bytes(), before, "reset keeps every allocation");
    assert_eq!(b.label, "kept and counted");
    assert!(b.note.is_empty() && b.scratch.words.is_empty());
}

#[test]
fn the_budget_counts_the_fields_beyond_the_capacity_field() {
    // One class of 4 KiB; a frame is kept if its capacity is in [4 KiB, 8 KiB]
    // and the budget has room.
    let pool: Pool<Buffers> = Pool::builder()
        .size_classes(&[4096])
        .max_total_memory(5000)
        .shards(1)
        .build()
        .unwrap();

    let small = pool.get(4096);
    assert_eq!(small.capacity_bytes(), 4096);
    drop(small); // 4096 bytes fit the 5000-byte budget
    let after_small = pool.stats();
    assert_eq!(after_small.bytes_retained, 4096);
    assert_eq!(after_small.discards, 0);

    let mut big = pool.get(4096); // the same value, reused
    big.side.reserve_exact(256); // 2 KiB more, in another field
    assert_eq!(big.capacity_bytes(), 4096 + 2048);
    drop(big); // 6144 bytes do not fit
    let after_big = pool.stats();
    assert_eq!(after_big.discards, 1, "{after_big:?}");
    assert_eq!(after_big.bytes_retained, 0);
}

// ----- generic structs --------------------------------------------------------

#[derive(Poolable)]
struct Batch<T> {
    #[poolable(capacity)]
    items: Vec<T>,
    last: Option<T>,
    tag: T,
    count: usize,
    _marker: PhantomData<fn() -> T>,
}

#[test]
fn generic_structs_get_the_bounds_they_need() {
    let ints: Pool<Batch<u32>> = Pool::new();
    let mut b = ints.get(400);
    assert!(b.items.capacity() >= 100, "400 bytes of u32");
    b.items.extend([1, 2, 3]);
    b.last = Some(3);
    b.tag = 7;
    b.count = 3;
    drop(b);
    let b = ints.get(400);
    assert!(b.items.is_empty() && b.last.is_none());
    assert_eq!((b.tag, b.count), (0, 0));

    let strings: Pool<Batch<String>> = one_class(1024);
    let mut s = strings.get(1024);
    s.tag.push_str("owned by the last user");
    s.items.push("item".into());
    let bytes = s.capacity_bytes();
    assert_eq!(
        bytes,
        s.items.capacity() * std::mem::size_of::<String>() + s.tag.capacity()
    );
    drop(s);
    let s = strings.get(1024);
    assert!(s.tag.is_empty() && s.items.is_empty());
    assert_eq!(s.capacity_bytes(), bytes, "the tag keeps its allocation");
}

#[derive(Poolable)]
struct Keyed<K, V, const N: usize>
where
    K: std::hash::Hash + Eq,
{
    #[poolable(capacity)]
    map: HashMap<K, V>,
    recent: [Option<K>; N],
    #[poolable(keep)]
    name: &'static str,
}

#[test]
fn generic_structs_with_where_clauses_and_const_parameters() {
    let pool: Pool<Keyed<String, u64, 4>> = Pool::new();
    let mut k = pool.get(2048);
    k.map.insert("a".into(), 1);
    k.recent[0] = Some("a".into());
    k.name = "index";
    drop(k);
    let k = pool.get(2048);
    assert!(k.map.is_empty() && k.recent.iter().all(Option::is_none));
    assert_eq!(k.name, "index");
}

// ----- nested derived structs -----------------------------------------------

#[derive(Poolable)]
struct Header {
    #[poolable(capacity)]
    raw: Vec<u8>,
    fields: Vec<(String, String)>,
    version: u8,
}

#[derive(Poolable)]
struct Message {
    #[poolable(capacity)]
    body: Header,
    trailer: Header,
    id: u64,
}

#[test]
fn nested_derived_structs_reset_and_count_through() {
    let pool: Pool<Message> = one_class(8192);
    let mut m = pool.get(8192);
    assert!(
        m.body.raw.capacity() >= 8192,
        "the hint reaches the inner capacity field"
    );
    m.body.raw.extend_from_slice(b"body");
    m.body.fields.push(("k".into(), "v".into()));
    m.body.version = 2;
    m.trailer.raw.extend_from_slice(&[1; 300]);
    m.trailer.version = 1;
    m.id = 9;
    let expected = m.body.raw.capacity()
        + m.body.fields.capacity() * std::mem::size_of::<(String, String)>()
        + m.trailer.raw.capacity();
    assert_eq!(m.capacity_bytes(), expected);
    drop(m);

    let m = pool.get(8192);
    assert_eq!(pool.stats().allocations, 1);
    assert!(m.body.raw.is_empty() && m.body.fields.is_empty() && m.trailer.raw.is_empty());
    assert_eq!((m.body.version, m.trailer.version, m.id), (0, 0, 0));
    assert_eq!(m.capacity_bytes(), expected);
}

// ----- tuple structs, custom constructors and resets --------------------------

#[derive(Poolable)]
struct Chunk(#[poolable(capacity)] Vec<u8>, u32, #[poolable(keep)] u64);

#[test]
fn tuple_structs() {
    let pool: Pool<Chunk> = Pool::new();
    let mut c = pool.get(300);
    assert!(c.0.capacity() >= 300);
    c.0.push(1);
    c.1 = 5;
    c.2 = 77;
    drop(c);
    let c = pool.get(300);
    assert!(c.0.is_empty());
    assert_eq!((c.1, c.2), (0, 77));
}

/// A connection-like struct: a field with no `Default` and a counter that
/// must restart at 1, so it has its own constructor and a whole-value reset.
#[derive(Poolable)]
#[poolable(new = "Session::open", reset = "Session::restart")]
struct Session {
    buffer: Vec<u8>,
    #[poolable(keep)]
    id: std::num::NonZeroU64,
    next_seq: u64,
    resets: u32,
}

impl Session {
    fn open(bytes: usize) -> Self {
        Session {
            buffer: Vec::with_capacity(bytes),
            id: std::num::NonZeroU64::new(42).unwrap(),
            next_seq: 1,
            resets: 0,
        }
    }

    fn restart(&mut self) {
        // Fields are reset first: `next_seq` is 0 here.
        assert_eq!(self.next_seq, 0);
        self.next_seq = 1;
        self.resets += 1; // reset to 0 by the field pass, so this stays 1
    }
}

#[test]
fn custom_constructor_and_whole_value_reset() {
    let pool: Pool<Session> = Pool::new();
    let mut s = pool.get(2000);
    assert!(s.buffer.capacity() >= 2000, "`new` got the hint");
    assert_eq!((s.id.get(), s.next_seq), (42, 1));
    s.buffer.extend_from_slice(b"hello");
    s.next_seq = 10;
    drop(s);
    let s = pool.get(2000);
    assert!(s.buffer.is_empty());
    assert_eq!((s.id.get(), s.next_seq, s.resets), (42, 1, 1));
}

// ----- a field type of the user's own ----------------------------------------

/// Not `Poolable` itself (nor `Default`); implements `PoolField` to be a
/// plain field.
struct Histogram {
    buckets: Vec<u32>,
}

impl PoolField for Histogram {
    fn new_field() -> Self {
        Histogram {
            buckets: Vec::new(),
        }
    }

    fn reset_field(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = 0);
    }

    fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * 4
    }
}

#[derive(Poolable)]
struct Stats {
    #[poolable(capacity)]
    samples: Vec<f64>,
    histogram: Histogram,
}

#[test]
fn user_field_types_implement_pool_field() {
    let mut s = Stats::with_capacity_hint(80);
    s.histogram.buckets = vec![3; 16];
    assert_eq!(
        s.capacity_bytes(),
        s.samples.capacity() * 8 + s.histogram.buckets.capacity() * 4
    );
    s.reset();
    assert_eq!(s.histogram.buckets, [0; 16], "reset by the user's impl");
}
