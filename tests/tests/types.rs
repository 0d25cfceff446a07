//! Every built-in `Poolable` type: `reset` empties it before it is handed out
//! again, and pools of each type work.

mod common;

use common::assert_consistent;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use zeropool::{Pool, Poolable};

/// A pool with a single class of `class` bytes, so that any returned object
/// whose capacity lies in `class..=2*class` comes back for `get(class)`.
fn one_class_pool<T: Poolable>(class: usize) -> Pool<T> {
    Pool::builder()
        .shards(1)
        .size_classes(&[class])
        .build()
        .expect("valid settings")
}

/// Takes an object, fills it, returns it, takes it again: it must be the same
/// object (same capacity, served from the thread cache) and empty.
fn check_reset<T: Poolable>(
    class: usize,
    fill: impl Fn(&mut T),
    is_empty: impl Fn(&T) -> bool,
    what: &str,
) {
    let pool = one_class_pool::<T>(class);
    let mut obj = pool.get(class);
    assert!(is_empty(&obj), "{what}: a fresh object is empty");
    assert!(obj.capacity_bytes() >= class, "{what}: capacity");
    fill(&mut obj);
    assert!(!is_empty(&obj), "{what}: the fill did something");
    let cap = obj.capacity_bytes();
    drop(obj);
    let s = pool.stats();
    assert_eq!(s.objects_retained, 1, "{what}: kept (capacity {cap}): {s}");

    let again = pool.get(class);
    let s = pool.stats();
    assert_eq!(
        (s.gets, s.allocations, s.tls_hits),
        (2, 1, 1),
        "{what}: reused: {s}"
    );
    assert_eq!(again.capacity_bytes(), cap, "{what}: the same object");
    assert!(is_empty(&again), "{what}: reset left it non-empty");
    drop(again);
    assert_consistent(&pool.stats());
}

#[test]
fn vec_u8_is_reset() {
    check_reset::<Vec<u8>>(
        1024,
        |v| v.extend_from_slice(b"secret"),
        Vec::is_empty,
        "Vec<u8>",
    );
}

#[test]
fn vec_u64_is_reset_and_sized_in_bytes() {
    check_reset::<Vec<u64>>(1024, |v| v.extend(0..100), Vec::is_empty, "Vec<u64>");
    let pool = one_class_pool::<Vec<u64>>(1000);
    let v = pool.get(1000);
    // A hint of 1000 bytes is room for ceil(1000 / 8) = 125 elements.
    assert!(v.capacity() >= 125, "{}", v.capacity());
}

#[test]
fn vec_of_strings_is_reset() {
    check_reset::<Vec<String>>(
        1024,
        |v| v.extend(["a".to_string(), "b".to_string()]),
        Vec::is_empty,
        "Vec<String>",
    );
}

#[test]
fn reset_drops_the_elements() {
    let marker = Arc::new(());
    let pool = one_class_pool::<Vec<Arc<()>>>(1024);
    let mut v = pool.get(1024);
    v.extend((0..10).map(|_| marker.clone()));
    assert_eq!(Arc::strong_count(&marker), 11);
    drop(v);
    assert_eq!(pool.stats().objects_retained, 1);
    assert_eq!(Arc::strong_count(&marker), 1, "reset dropped the elements");
}

#[test]
fn string_is_reset() {
    check_reset::<String>(256, |s| s.push_str("hello"), String::is_empty, "String");
    // The example from the docs, with the default settings.
    let pool: Pool<String> = Pool::new();
    let mut s = pool.get(100);
    s.push_str("reused");
    drop(s);
    let s = pool.get(100);
    assert!(s.is_empty());
    assert!(s.capacity() >= 100);
    assert_eq!(pool.stats().tls_hits, 1);
}

#[test]
fn vecdeque_is_reset() {
    check_reset::<VecDeque<u32>>(
        1024,
        |d| {
            d.push_back(1);
            d.push_front(2);
        },
        VecDeque::is_empty,
        "VecDeque<u32>",
    );
}

#[test]
fn hashmap_is_reset() {
    check_reset::<HashMap<u32, String>>(
        4096,
        |m| {
            m.insert(7, "seven".into());
            m.insert(8, "eight".into());
        },
        HashMap::is_empty,
        "HashMap<u32, String>",
    );
    let pool = one_class_pool::<HashMap<u32, String>>(4096);
    let mut m = pool.get(4096);
    m.insert(1, "one".into());
    drop(m);
    let m = pool.get(4096);
    assert_eq!(m.get(&1), None, "no previous user's data");
}

#[test]
fn hashmap_with_custom_hasher_is_reset() {
    type Map = HashMap<u64, u64, BuildHasherDefault<DefaultHasher>>;
    check_reset::<Map>(
        4096,
        |m| {
            m.insert(1, 2);
        },
        Map::is_empty,
        "HashMap<_, _, BuildHasherDefault>",
    );
}

#[test]
fn hashset_is_reset() {
    check_reset::<HashSet<u64>>(
        4096,
        |s| {
            s.extend([1, 2, 3]);
        },
        HashSet::is_empty,
        "HashSet<u64>",
    );
}

#[test]
fn pools_of_each_type_build_and_work_with_defaults() {
    fn exercise<T: Poolable>(fill: impl Fn(&mut T)) {
        let pool: Pool<T> = Pool::new();
        for _ in 0..3 {
            let mut obj = pool.get(500);
            assert!(obj.capacity_bytes() >= 500);
            fill(&mut obj);
        }
        let s = pool.stats();
        assert_eq!(s.gets, 3);
        assert_consistent(&s);
    }
    exercise::<Vec<u8>>(|v| v.push(1));
    exercise::<Vec<u32>>(|v| v.push(1));
    exercise::<String>(|s| s.push('x'));
    exercise::<VecDeque<u16>>(|d| d.push_back(1));
    exercise::<HashMap<String, u8>>(|m| {
        m.insert("k".into(), 1);
    });
    exercise::<HashSet<u32>>(|s| {
        s.insert(1);
    });
}

#[test]
// Regression: in bfb8495 `Vec<ZST>::with_capacity_hint(n).capacity_bytes()`
// was 0 < n and `Inner::allocate`'s debug_assert panicked.
fn vec_of_zero_sized_elements_can_be_pooled() {
    // `Poolable` is implemented for every `Vec<T: Send + 'static>`, including
    // zero-sized `T`, so a pool of them must work (at worst without reuse).
    let pool: Pool<Vec<()>> = Pool::new();
    let mut v = pool.get(16);
    v.push(());
    drop(v);
    let s = pool.stats();
    assert_eq!(s.objects_outstanding, 0);
    assert_consistent(&s);
}

#[test]
fn zero_byte_values_are_handed_out_but_never_kept() {
    // Documented on `Poolable`: collections of zero-sized elements report 0
    // bytes; "the pool hands them out but never keeps them, as for any value
    // below the smallest class".
    let pool: Pool<Vec<()>> = Pool::new();
    drop(pool.get(16));
    let s = pool.stats();
    assert_eq!((s.objects_retained, s.undersize_drops), (0, 1), "{s}");
    assert_consistent(&s);
}

#[test]
// Regression: same as above for `VecDeque<ZST>`.
fn vecdeque_of_zero_sized_elements_can_be_pooled() {
    let pool: Pool<VecDeque<()>> = Pool::new();
    let mut d = pool.get(16);
    d.push_back(());
    drop(d);
    assert_consistent(&pool.stats());
}
