//! I/O interop for byte guards, beyond what `guard` derives for every guard
//! (`Deref`, `Borrow`, `Debug`, `AsRef`/`AsMut<[u8]>`, `io::Write`):
//!
//! - `From<guard> for Vec<u8>` (always), detaching the buffer as
//!   [`into_inner`](crate::PoolGuard::into_inner) does;
//! - with the `bytes` feature, [`bytes::BufMut`] for any guard whose object is
//!   `BufMut` (`Vec<u8>`, `BytesMut`), so `tokio::io::AsyncReadExt::read_buf`
//!   and other `BufMut` writers fill a pooled buffer in place; and
//!   `into_bytes`, a cheap conversion to [`bytes::Bytes`] (the memory leaves
//!   the pool).

use crate::{OwnedPoolGuard, PoolGuard};

/// Detaches the buffer from its pool, as [`PoolGuard::into_inner`] does: the
/// memory leaves the pool and is freed when the `Vec` drops (or can be given
/// back with [`Pool::put`](crate::Pool::put)).
///
/// ```
/// use zeropool::BufferPool;
///
/// let pool = BufferPool::new();
/// let mut buf = pool.get(64);
/// buf.extend_from_slice(b"mine now");
/// let v: Vec<u8> = buf.into();
/// assert_eq!(v, b"mine now");
/// assert_eq!(pool.stats().detached, 1);
/// ```
impl From<PoolGuard<'_, Vec<u8>>> for Vec<u8> {
    #[inline]
    fn from(guard: PoolGuard<'_, Vec<u8>>) -> Self {
        guard.into_inner()
    }
}

/// Detaches the buffer from its pool, as [`OwnedPoolGuard::into_inner`]
/// does: the memory leaves the pool.
///
/// ```
/// use zeropool::BufferPool;
///
/// let pool = BufferPool::new();
/// let mut buf = pool.get_owned(64);
/// buf.extend_from_slice(b"owned");
/// let v = Vec::from(buf);
/// assert_eq!(v, b"owned");
/// assert_eq!(pool.stats().detached, 1);
/// ```
impl From<OwnedPoolGuard<Vec<u8>>> for Vec<u8> {
    #[inline]
    fn from(guard: OwnedPoolGuard<Vec<u8>>) -> Self {
        guard.into_inner()
    }
}

#[cfg(feature = "bytes")]
mod with_bytes {
    use crate::{OwnedPoolGuard, PoolGuard, Poolable};
    use bytes::buf::UninitSlice;
    use bytes::{Buf, BufMut, Bytes, BytesMut};

    /// `BufMut` forwarded to the object, so writers of the `bytes` and tokio
    /// ecosystems fill the guarded buffer in place.
    macro_rules! forward_buf_mut {
        () => {
            #[inline]
            fn remaining_mut(&self) -> usize {
                (**self).remaining_mut()
            }

            #[inline]
            unsafe fn advance_mut(&mut self, cnt: usize) {
                // SAFETY: the caller upholds `advance_mut`'s contract for this
                // guard, whose `chunk_mut` is the object's `chunk_mut`; so it
                // holds for the object.
                unsafe { (**self).advance_mut(cnt) }
            }

            #[inline]
            fn chunk_mut(&mut self) -> &mut UninitSlice {
                (**self).chunk_mut()
            }

            #[inline]
            fn put<B: Buf>(&mut self, src: B)
            where
                Self: Sized,
            {
                (**self).put(src)
            }

            #[inline]
            fn put_slice(&mut self, src: &[u8]) {
                (**self).put_slice(src)
            }

            #[inline]
            fn put_bytes(&mut self, val: u8, cnt: usize) {
                (**self).put_bytes(val, cnt)
            }

            #[inline]
            fn put_u8(&mut self, n: u8) {
                (**self).put_u8(n)
            }

            #[inline]
            fn put_i8(&mut self, n: i8) {
                (**self).put_i8(n)
            }
        };
    }

    /// The guarded object's [`BufMut`] (`Vec<u8>`, `BytesMut`), so a pooled
    /// buffer can be filled by `put_*` calls, `tokio::io::AsyncReadExt::read_buf`
    /// and any other `BufMut` writer. Growing past the capacity reallocates
    /// as the object would; the buffer still goes back to the pool, under
    /// the size class of its new capacity.
    ///
    /// ```
    /// use bytes::BufMut;
    /// use zeropool::BufferPool;
    ///
    /// let pool = BufferPool::new();
    /// let mut buf = pool.get(64);
    /// buf.put_u32(0xCAFE_F00D);
    /// buf.put_slice(b"!");
    /// assert_eq!(&buf[..], &[0xCA, 0xFE, 0xF0, 0x0D, b'!']);
    /// ```
    // SAFETY: every method is forwarded to the object's own `BufMut` impl on
    // the same object (and the defaults are built on those), so the object's
    // guarantees (`chunk_mut` is writable memory of the object, the bytes
    // `advance_mut` covers become its initialised length) hold unchanged.
    unsafe impl<T: Poolable + BufMut> BufMut for PoolGuard<'_, T> {
        forward_buf_mut!();
    }

    /// The guarded object's [`BufMut`], as for [`PoolGuard`]; an owned guard
    /// can move into a task and be filled there.
    ///
    /// ```
    /// use bytes::BufMut;
    /// use zeropool::Pool;
    ///
    /// let pool: Pool<bytes::BytesMut> = Pool::new();
    /// let mut buf = pool.get_owned(64);
    /// std::thread::spawn(move || {
    ///     buf.put_u16_le(7);
    ///     assert_eq!(&buf[..], &[7, 0]);
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    // SAFETY: as for `PoolGuard`: every method is forwarded to the object's
    // own `BufMut` impl on the same object.
    unsafe impl<T: Poolable + BufMut> BufMut for OwnedPoolGuard<T> {
        forward_buf_mut!();
    }

    impl PoolGuard<'_, Vec<u8>> {
        /// Detaches the buffer (see [`into_inner`](Self::into_inner)) and
        /// turns it into [`Bytes`] without copying: the memory leaves the
        /// pool and is freed when the last `Bytes` handle drops. (`Bytes`
        /// may allocate a small header when the length is below the
        /// capacity.)
        ///
        /// ```
        /// use zeropool::BufferPool;
        ///
        /// let pool = BufferPool::new();
        /// let mut buf = pool.get(1024);
        /// buf.extend_from_slice(b"frozen");
        /// let ptr = buf.as_ptr();
        /// let bytes = buf.into_bytes();
        /// assert_eq!(&bytes[..], b"frozen");
        /// assert_eq!(bytes.as_ptr(), ptr); // the same memory, not a copy
        /// assert_eq!(pool.stats().detached, 1);
        /// ```
        pub fn into_bytes(self) -> Bytes {
            Bytes::from(self.into_inner())
        }
    }

    impl OwnedPoolGuard<Vec<u8>> {
        /// Detaches the buffer and turns it into [`Bytes`] without copying
        /// (as `PoolGuard<Vec<u8>>::into_bytes` does).
        ///
        /// ```
        /// use zeropool::BufferPool;
        ///
        /// let pool = BufferPool::new();
        /// let mut buf = pool.get_owned(1024);
        /// buf.extend_from_slice(b"frozen");
        /// let bytes = buf.into_bytes();
        /// assert_eq!(&bytes[..], b"frozen");
        /// assert_eq!(pool.stats().detached, 1);
        /// ```
        pub fn into_bytes(self) -> Bytes {
            Bytes::from(self.into_inner())
        }
    }

    impl PoolGuard<'_, BytesMut> {
        /// Detaches the buffer and freezes it into [`Bytes`]
        /// ([`BytesMut::freeze`], no copy): the memory leaves the pool.
        ///
        /// ```
        /// use bytes::BufMut;
        /// use zeropool::Pool;
        ///
        /// let pool: Pool<bytes::BytesMut> = Pool::new();
        /// let mut buf = pool.get(256);
        /// buf.put_slice(b"frozen");
        /// assert_eq!(&buf.into_bytes()[..], b"frozen");
        /// assert_eq!(pool.stats().detached, 1);
        /// ```
        pub fn into_bytes(self) -> Bytes {
            self.into_inner().freeze()
        }
    }

    impl OwnedPoolGuard<BytesMut> {
        /// Detaches the buffer and freezes it into [`Bytes`] (no copy): the
        /// memory leaves the pool.
        ///
        /// ```
        /// use bytes::BufMut;
        /// use zeropool::Pool;
        ///
        /// let pool: Pool<bytes::BytesMut> = Pool::new();
        /// let mut buf = pool.get_owned(256);
        /// buf.put_slice(b"frozen");
        /// assert_eq!(&buf.into_bytes()[..], b"frozen");
        /// assert_eq!(pool.stats().detached, 1);
        /// ```
        pub fn into_bytes(self) -> Bytes {
            self.into_inner().freeze()
        }
    }

    /// Detaches the buffer from its pool (see
    /// [`PoolGuard::into_inner`]): the memory leaves the pool.
    ///
    /// ```
    /// use zeropool::Pool;
    ///
    /// let pool: Pool<bytes::BytesMut> = Pool::new();
    /// let mut buf = pool.get(16);
    /// buf.extend_from_slice(b"out");
    /// let b: bytes::BytesMut = buf.into();
    /// assert_eq!(&b[..], b"out");
    /// ```
    impl From<PoolGuard<'_, BytesMut>> for BytesMut {
        #[inline]
        fn from(guard: PoolGuard<'_, BytesMut>) -> Self {
            guard.into_inner()
        }
    }

    /// Detaches the buffer from its pool (see
    /// [`OwnedPoolGuard::into_inner`]): the memory leaves the pool.
    ///
    /// ```
    /// use zeropool::Pool;
    ///
    /// let pool: Pool<bytes::BytesMut> = Pool::new();
    /// let b = bytes::BytesMut::from(pool.get_owned(16));
    /// assert!(b.capacity() >= 16);
    /// ```
    impl From<OwnedPoolGuard<BytesMut>> for BytesMut {
        #[inline]
        fn from(guard: OwnedPoolGuard<BytesMut>) -> Self {
            guard.into_inner()
        }
    }
}
