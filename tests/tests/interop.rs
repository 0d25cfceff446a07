//! I/O interop of byte guards: `io::Write`, `bytes::BufMut`, `AsRef`/`AsMut`,
//! `Borrow`, `Debug`, conversions out of the pool (`Vec<u8>`, `Bytes`), and
//! tokio's `read_buf` filling a pooled buffer in place.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::assert_consistent;
use std::borrow::{Borrow, BorrowMut};
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeropool::{BufferPool, OwnedPoolGuard, Pool, PoolGuard};

fn pool() -> BufferPool {
    BufferPool::builder().shards(1).build().unwrap()
}

/// A payload that is not all one byte, so misplaced bytes show.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

// ----- io::Write -----------------------------------------------------------

fn write_through(w: &mut impl Write) {
    let (name, n) = ("id", 7);
    write!(w, "{name}-{n:04}").unwrap();
    w.write_all(b"|tail").unwrap();
    assert_eq!(w.write(b"!").unwrap(), 1);
    w.flush().unwrap();
}

#[test]
fn io_write_appends_to_both_guards() {
    let pool = pool();
    let mut g = pool.get(64);
    write_through(&mut g);
    assert_eq!(&g[..], b"id-0007|tail!");

    let mut o = pool.get_owned(64);
    write_through(&mut o);
    assert_eq!(&o[..], b"id-0007|tail!");

    drop((g, o));
    let s = pool.stats();
    assert_eq!(s.objects_outstanding, 0);
    assert_consistent(&s);
}

// ----- bytes::BufMut -------------------------------------------------------

/// Writes through the `BufMut` API only (generic, so no inherent `Vec`
/// method can stand in for it).
fn put_all<B: BufMut>(b: &mut B) {
    b.put_u32(0xDEAD_BEEF);
    b.put_u16_le(0x0102);
    b.put_u8(b'x');
    b.put_i8(-1);
    b.put_slice(b"slice");
    b.put_bytes(b'z', 3);
    b.put(&b"buf"[..]);
    // The raw path: write into `chunk_mut`, then commit with `advance_mut`.
    let chunk = b.chunk_mut();
    assert!(chunk.len() >= 4);
    chunk[..4].copy_from_slice(b"raw!");
    // SAFETY: the first 4 bytes of `chunk_mut` were just initialised.
    unsafe { b.advance_mut(4) };
}

/// Takes a `BufMut` by value: `&mut guard` is one through bytes' blanket impl.
fn put_more(mut b: impl BufMut) {
    b.put_slice(b"+more");
}

fn expected() -> Vec<u8> {
    let mut v = Vec::new();
    put_all(&mut v);
    v
}

#[test]
fn buf_mut_on_a_pool_guard_writes_what_a_vec_would() {
    let pool = pool();
    let mut g: PoolGuard<'_, Vec<u8>> = pool.get(256);
    let cap = g.capacity();
    assert_eq!(g.remaining_mut(), Vec::<u8>::new().remaining_mut());
    assert!(g.has_remaining_mut());
    put_all(&mut g);
    assert_eq!(&g[..], &expected()[..]);
    assert_eq!(g.capacity(), cap, "fitted in place, no reallocation");
    drop(g);
    let s = pool.stats();
    assert_eq!((s.objects_outstanding, s.objects_retained), (0, 1));
    assert_consistent(&s);
}

#[test]
fn buf_mut_on_an_owned_guard_writes_what_a_vec_would() {
    let pool = pool();
    let mut o: OwnedPoolGuard<Vec<u8>> = pool.get_owned(256);
    put_all(&mut o);
    assert_eq!(&o[..], &expected()[..]);
    // And through `&mut guard` as a `BufMut` by value (bytes' blanket impl).
    put_more(&mut o);
    assert!(o.ends_with(b"+more"));
    drop(o);
    assert_eq!(pool.stats().objects_outstanding, 0);
}

#[test]
fn buf_mut_grows_a_full_guard_and_it_still_returns() {
    let pool = pool();
    let mut g = pool.get(16);
    let cap = g.capacity();
    g.put_bytes(1, cap); // full
    assert_eq!(g.len(), cap);
    assert!(g.chunk_mut().len() > 0, "chunk_mut grows a full Vec");
    g.put_slice(&payload(cap));
    assert_eq!(g.len(), 2 * cap);
    drop(g);
    let s = pool.stats();
    assert_eq!(s.objects_outstanding, 0);
    assert_consistent(&s);
}

#[test]
fn buf_mut_on_bytes_mut_guards() {
    let pool: Pool<BytesMut> = Pool::builder().shards(1).build().unwrap();
    let mut g = pool.get(256);
    put_all(&mut g);
    assert_eq!(&g[..], &expected()[..]);
    let mut o = pool.get_owned(256);
    put_all(&mut o);
    assert_eq!(&o[..], &expected()[..]);
    drop((g, o));
    assert_eq!(pool.stats().objects_outstanding, 0);
}

// ----- AsRef / AsMut / Borrow / Debug --------------------------------------

fn sum(b: impl AsRef<[u8]>) -> u32 {
    b.as_ref().iter().map(|&x| u32::from(x)).sum()
}

fn bump(mut b: impl AsMut<[u8]>) {
    b.as_mut().iter_mut().for_each(|x| *x += 1);
}

#[test]
fn as_ref_and_as_mut_see_the_bytes_in_use() {
    let pool = pool();
    let mut g = pool.get(64);
    g.extend_from_slice(&[1, 2, 3]);
    bump(&mut *g);
    bump(AsMut::<[u8]>::as_mut(&mut g));
    assert_eq!(AsRef::<[u8]>::as_ref(&g), &[3, 4, 5]);
    assert_eq!(sum(AsRef::<[u8]>::as_ref(&g)), 12);

    let mut o = pool.get_owned(64);
    o.extend_from_slice(&[10, 20]);
    AsMut::<[u8]>::as_mut(&mut o)[0] = 11;
    assert_eq!(AsRef::<[u8]>::as_ref(&o), &[11, 20]);
    assert_eq!(sum(o), 31); // by value: the guard itself is `AsRef<[u8]>`
}

fn len_of(v: impl Borrow<Vec<u8>>) -> usize {
    v.borrow().len()
}

fn push_one(mut v: impl BorrowMut<Vec<u8>>) {
    v.borrow_mut().push(1);
}

#[test]
fn guards_borrow_as_the_vec() {
    let pool = pool();
    let mut g = pool.get(64);
    push_one(&mut *g);
    let v: &mut Vec<u8> = g.borrow_mut();
    v.push(2);
    let v: &Vec<u8> = g.borrow();
    assert_eq!(v, &[1, 2]);
    assert_eq!(len_of(g), 2);

    let mut o = pool.get_owned(64);
    BorrowMut::<Vec<u8>>::borrow_mut(&mut o).push(9);
    assert_eq!(Borrow::<Vec<u8>>::borrow(&o), &[9]);
    assert_eq!(len_of(o), 1);
    assert_eq!(pool.stats().objects_outstanding, 0);
}

#[test]
fn debug_is_the_objects_debug() {
    let pool = pool();
    let mut g = pool.get(64);
    g.extend_from_slice(b"ab\0");
    assert_eq!(format!("{g:?}"), format!("{:?}", b"ab\0".to_vec()));
    assert_eq!(format!("{g:#?}"), format!("{:#?}", b"ab\0".to_vec()));
    let mut o = pool.get_owned(64);
    o.push(200);
    assert_eq!(format!("{o:?}"), "[200]");
    assert_eq!(format!("{:?}", pool.get(8)), "[]");
}

// ----- conversions out of the pool -----------------------------------------

#[test]
fn into_bytes_keeps_the_memory_and_counts_a_detach() {
    let pool = pool();
    let mut g = pool.get(1024);
    g.put_slice(b"frozen pooled bytes");
    let ptr = g.as_ptr();
    let b: Bytes = g.into_bytes();
    assert_eq!(&b[..], b"frozen pooled bytes");
    assert_eq!(b.as_ptr(), ptr, "no copy");

    let mut o = pool.get_owned(1024);
    o.put_slice(b"owned");
    let ob = o.into_bytes();
    assert_eq!(&ob[..], b"owned");

    let s = pool.stats();
    assert_eq!(s.detached, 2);
    assert_eq!(s.objects_outstanding, 0);
    assert_eq!(s.objects_retained, 0);
    assert_consistent(&s);
    // The `Bytes` outlive nothing of the pool: dropping them changes nothing.
    drop((b, ob));
    let after = pool.stats();
    assert_eq!((after.detached, after.objects_retained), (2, 0));
    assert_consistent(&after);
}

#[test]
fn into_bytes_of_bytes_mut_guards_freezes() {
    let pool: Pool<BytesMut> = Pool::builder().shards(1).build().unwrap();
    let mut g = pool.get(128);
    g.put_slice(b"bm");
    let ptr = g.as_ptr();
    let b = g.into_bytes();
    assert_eq!((&b[..], b.as_ptr()), (&b"bm"[..], ptr));
    let mut o = pool.get_owned(128);
    o.put_u8(1);
    assert_eq!(&o.into_bytes()[..], &[1]);
    let back: BytesMut = pool.get(8).into();
    assert!(back.is_empty());
    let back = BytesMut::from(pool.get_owned(8));
    assert!(back.capacity() >= 8);
    let s = pool.stats();
    assert_eq!((s.detached, s.objects_outstanding), (4, 0));
    assert_consistent(&s);
}

#[test]
fn from_guard_for_vec_detaches() {
    let pool = pool();
    let mut g = pool.get(100);
    g.extend_from_slice(b"vec");
    let v: Vec<u8> = g.into();
    assert_eq!(v, b"vec");
    assert!(v.capacity() >= 100);

    let mut o = pool.get_owned(100);
    o.extend_from_slice(b"owned vec");
    let ov = Vec::from(o);
    assert_eq!(ov, b"owned vec");

    let s = pool.stats();
    assert_eq!((s.detached, s.objects_outstanding), (2, 0));
    assert_consistent(&s);
    // Given back, they are adopted.
    pool.put(v);
    pool.put(ov);
    let s = pool.stats();
    assert_eq!(s.adopted, 2);
    assert_consistent(&s);
}

// ----- tokio read_buf ------------------------------------------------------

#[tokio::test]
async fn read_buf_fills_a_pool_guard_from_a_duplex_pipe() {
    let pool = pool();
    let data = payload(10_000);
    // A small pipe, so the reader sees many partial reads.
    let (mut tx, mut rx) = tokio::io::duplex(256);
    let mut buf = pool.get(4096);
    let cap = buf.capacity();
    let writer = async {
        tx.write_all(&data).await.unwrap();
        tx.shutdown().await.unwrap();
        drop(tx);
    };
    let reader = async {
        let mut reads = 0;
        loop {
            let n = rx.read_buf(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            reads += 1;
        }
        reads
    };
    let ((), reads) = tokio::join!(writer, reader);
    assert!(reads > 1);
    assert_eq!(buf.len(), data.len());
    assert_eq!(&buf[..], &data[..]);
    assert!(buf.capacity() > cap, "read_buf grew it past 4096");
    drop(buf);
    let s = pool.stats();
    assert_eq!(s.objects_outstanding, 0);
    assert_consistent(&s);
}

#[tokio::test]
async fn read_buf_fills_a_bytes_mut_guard_without_growing() {
    let pool: Pool<BytesMut> = Pool::builder().shards(1).build().unwrap();
    let (mut tx, mut rx) = tokio::io::duplex(64);
    tx.write_all(b"0123456789").await.unwrap();
    drop(tx);
    let mut buf = pool.get(1024);
    let cap = buf.capacity();
    while rx.read_buf(&mut buf).await.unwrap() != 0 {}
    assert_eq!(&buf[..], b"0123456789");
    assert_eq!(buf.capacity(), cap);
    let frozen = buf.into_bytes();
    assert_eq!(&frozen[..], b"0123456789");
}

#[tokio::test]
#[cfg_attr(miri, ignore = "a TCP connection over 127.0.0.1: Miri has no sockets")]
async fn read_buf_fills_an_owned_guard_from_tcp() {
    let pool = pool();
    let data = payload(100_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = data.clone();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(&sent).await.unwrap();
        sock.shutdown().await.unwrap();
    });
    // The owned guard is 'static + Send: it moves into a task, is filled
    // there and comes back through the join handle.
    let buf = pool.get_owned(data.len());
    let client = tokio::spawn(async move {
        let mut buf = buf;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        while stream.read_buf(&mut buf).await.unwrap() != 0 {}
        buf
    });
    server.await.unwrap();
    let buf = client.await.unwrap();
    assert_eq!(buf.len(), data.len());
    assert_eq!(&buf[..], &data[..]);
    assert_eq!(pool.stats().objects_outstanding, 1);
    let frozen = buf.into_bytes();
    assert_eq!(&frozen[..], &data[..]);
    let s = pool.stats();
    assert_eq!((s.objects_outstanding, s.detached), (0, 1));
    assert_consistent(&s);
}
