//! Guards: owned guards cross threads, `into_inner` detaches, and guards give
//! their object back while a panic unwinds.

mod common;

use common::assert_consistent;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use zeropool::{BufferPool, OwnedPoolGuard, Pool, PoolGuard};

fn assert_pool_handle<T: Clone + Send + Sync + 'static>() {}
fn assert_send_static<T: Send + 'static>() {}

#[test]
fn pool_is_clone_send_sync_and_owned_guards_are_send_static() {
    assert_pool_handle::<BufferPool>();
    assert_pool_handle::<Pool<String>>();
    assert_send_static::<OwnedPoolGuard<Vec<u8>>>();
    assert_send_static::<OwnedPoolGuard<String>>();
    // And a clone is a handle to the same pool.
    let a = BufferPool::new();
    let b = a.clone();
    drop(b.get(100));
    assert_eq!(a.stats().gets, 1);
}

#[test]
fn an_owned_guard_moves_into_another_thread() {
    let pool = BufferPool::builder().shards(1).build().unwrap();
    let mut buf = pool.get_owned(4096);
    buf.extend_from_slice(b"from main");
    let len = thread::spawn(move || {
        assert_eq!(buf.pool().stats().objects_outstanding, 1);
        buf.extend_from_slice(b", then a thread");
        buf.len()
        // dropped here, on the other thread
    })
    .join()
    .unwrap();
    assert_eq!(len, 24);
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.objects_outstanding), (1, 1, 0), "{s}");
    assert_eq!(
        s.objects_retained, 1,
        "kept (handed to a shard at thread exit): {s}"
    );
    assert_consistent(&s);
    // And it comes back empty.
    let again = pool.get(4096);
    assert!(again.is_empty());
    assert_eq!(pool.stats().allocations, 1);
}

#[test]
fn an_owned_guard_keeps_its_pool_alive() {
    let guard = {
        let pool = BufferPool::new();
        pool.get_owned(1000)
    };
    let pool = guard.pool().clone();
    assert_eq!(pool.stats().objects_outstanding, 1);
    drop(guard);
    let s = pool.stats();
    assert_eq!((s.objects_outstanding, s.objects_retained), (0, 1), "{s}");
    // The last handle can be an owned guard dropped on another thread.
    let guard = pool.get_owned(1000);
    drop(pool);
    thread::spawn(move || drop(guard)).join().unwrap();
}

#[test]
fn into_inner_detaches_the_object() {
    let pool = BufferPool::new();
    let mut g = pool.get(4096);
    g.extend_from_slice(b"keep me");
    let v: Vec<u8> = g.into_inner();
    assert_eq!(&v[..], b"keep me", "the object is handed over untouched");
    let s = pool.stats();
    assert_eq!(s.detached, 1, "{s}");
    assert_eq!((s.objects_outstanding, s.bytes_outstanding), (0, 0), "{s}");
    assert_eq!((s.puts, s.objects_retained), (0, 0), "{s}");
    assert_consistent(&s);
    drop(v);
    assert_eq!(
        pool.stats(),
        s,
        "dropping a detached object is none of the pool's business"
    );

    let owned = pool.get_owned(4096).into_inner();
    let s = pool.stats();
    assert_eq!((s.detached, s.objects_outstanding), (2, 0), "{s}");
    pool.put(owned);
    let s = pool.stats();
    assert_eq!((s.adopted, s.objects_retained), (1, 1), "{s}");
    assert_consistent(&s);
}

#[test]
fn guards_return_their_object_while_a_panic_unwinds() {
    let pool = BufferPool::builder().shards(1).build().unwrap();
    let err = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut g = pool.get(4096);
        g.extend_from_slice(b"in flight");
        let _owned = pool.get_owned(4096);
        assert_eq!(pool.stats().objects_outstanding, 2);
        panic!("boom");
    }))
    .unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    let s = pool.stats();
    assert_eq!(s.objects_outstanding, 0, "{s}");
    assert_eq!(s.bytes_outstanding, 0, "{s}");
    assert_eq!(s.objects_retained, 2, "{s}");
    assert_eq!(s.puts, 2, "{s}");
    assert_consistent(&s);
    let g = pool.get(4096);
    assert!(g.is_empty(), "reset on the way back");
    assert_eq!(pool.stats().tls_hits, 1);
}

#[test]
fn bytes_outstanding_follows_live_guards() {
    let pool = BufferPool::builder()
        .size_classes(&[4096, 16384])
        .build()
        .unwrap();
    let a = pool.get(100);
    let b = pool.get_owned(10_000);
    let c = pool.get(50_000); // oversize: exactly 50000
    let s = pool.stats();
    assert_eq!(s.objects_outstanding, 3);
    assert_eq!(s.bytes_outstanding, 4096 + 16384 + 50_000);
    drop(b);
    assert_eq!(pool.stats().bytes_outstanding, 4096 + 50_000);
    // Growing a guard's buffer does not change what was counted at checkout.
    let mut a = a;
    a.reserve(100_000);
    assert_eq!(pool.stats().bytes_outstanding, 4096 + 50_000);
    drop((a, c));
    let s = pool.stats();
    assert_eq!((s.objects_outstanding, s.bytes_outstanding), (0, 0), "{s}");
    assert_consistent(&s);
}

#[test]
fn guards_deref_borrow_and_write() {
    use std::borrow::{Borrow, BorrowMut};
    let pool = BufferPool::new();
    let mut g: PoolGuard<'_, Vec<u8>> = pool.get(64);
    write!(g, "{}-{}", 1, 2).unwrap();
    g.flush().unwrap();
    assert_eq!(AsRef::<[u8]>::as_ref(&g), b"1-2");
    AsMut::<[u8]>::as_mut(&mut g)[0] = b'9';
    let v: &Vec<u8> = g.borrow();
    assert_eq!(v, b"9-2");
    BorrowMut::<Vec<u8>>::borrow_mut(&mut g).push(b'!');
    assert_eq!(format!("{g:?}"), format!("{:?}", b"9-2!".to_vec()));

    let mut o = pool.get_owned(64);
    o.write_all(b"owned").unwrap();
    assert_eq!(&o[..], b"owned");
}

#[test]
fn a_borrowed_guard_can_be_dropped_on_another_thread() {
    let pool = BufferPool::builder().shards(1).build().unwrap();
    let mut g = pool.get(4096);
    g.push(1);
    thread::scope(|s| {
        s.spawn(move || drop(g)).join().unwrap();
    });
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.objects_outstanding), (1, 1, 0), "{s}");
    assert_eq!(s.objects_retained, 1, "{s}");
    assert_consistent(&s);
}
