//! Guards: an object on loan from the pool, returned when the guard drops.
//!
//! [`PoolGuard`] borrows the pool (the cheapest form); [`OwnedPoolGuard`]
//! holds a handle to it and is `'static + Send`, so it can move into
//! `thread::spawn` or an async task. Both return their object on drop, also
//! while a panic unwinds, and [`into_inner`](PoolGuard::into_inner) leaves
//! nothing for drop to do.

use crate::pool::{Inner, Ticket};
use crate::{Pool, Poolable};
use std::borrow::{Borrow, BorrowMut};
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

/// An object borrowed from a [`Pool`]; dereferences to `T` and goes back to
/// the pool when dropped.
///
/// # Example
/// ```
/// use zeropool::BufferPool;
///
/// let pool = BufferPool::new();
/// let mut buf = pool.get(1024);
/// buf.extend_from_slice(b"hello");
/// assert_eq!(&buf[..], b"hello");
/// drop(buf); // back in this thread's cache
/// assert_eq!(pool.stats().objects_retained, 1);
/// ```
#[must_use = "dropping the guard at once returns the object to the pool"]
pub struct PoolGuard<'a, T: Poolable> {
    obj: ManuallyDrop<T>,
    ticket: Ticket,
    pool: &'a Inner<T>,
}

/// An object taken from a [`Pool`] with [`Pool::get_owned`]: like
/// [`PoolGuard`] but `'static`, so it can be sent to other threads and tasks.
///
/// # Example
/// ```
/// use zeropool::BufferPool;
///
/// let pool = BufferPool::new();
/// let mut buf = pool.get_owned(4096);
/// let t = std::thread::spawn(move || {
///     buf.extend_from_slice(b"from another thread");
///     buf.len()
/// });
/// assert_eq!(t.join().unwrap(), 19);
/// assert_eq!(pool.stats().objects_outstanding, 0);
/// ```
#[must_use = "dropping the guard at once returns the object to the pool"]
pub struct OwnedPoolGuard<T: Poolable> {
    obj: ManuallyDrop<T>,
    ticket: Ticket,
    pool: ManuallyDrop<Pool<T>>,
}

impl<'a, T: Poolable> PoolGuard<'a, T> {
    /// A guard for a loan taken by the caller's caller (`#[track_caller]`
    /// carries the user's call site here for the outstanding report).
    #[inline]
    #[track_caller]
    pub(crate) fn new(pool: &'a Inner<T>, loan: (T, Ticket)) -> Self {
        Self::new_at(pool, loan, Location::caller())
    }

    /// A guard for a loan taken at `at`.
    #[inline]
    pub(crate) fn new_at(
        pool: &'a Inner<T>,
        (obj, ticket): (T, Ticket),
        at: &'static Location<'static>,
    ) -> Self {
        if pool.fixed.track {
            return Self::tracked(pool, (obj, ticket), at);
        }
        Self {
            obj: ManuallyDrop::new(obj),
            ticket,
            pool,
        }
    }

    /// `new_at` for a pool with `track_outstanding`: out of line, so the
    /// common path builds its guard with no call in sight (measured: a call
    /// on that path cost it a fifth of its speed).
    #[cold]
    #[inline(never)]
    fn tracked(
        pool: &'a Inner<T>,
        (obj, mut ticket): (T, Ticket),
        at: &'static Location<'static>,
    ) -> Self {
        ticket.track = pool.track(at, ticket.bytes);
        Self {
            obj: ManuallyDrop::new(obj),
            ticket,
            pool,
        }
    }

    /// Takes the object out of the pool for good; dropping it later frees
    /// it. It can be given back with [`Pool::put`].
    ///
    /// ```
    /// use zeropool::BufferPool;
    ///
    /// let pool = BufferPool::new();
    /// let v: Vec<u8> = pool.get(100).into_inner();
    /// assert!(v.capacity() >= 100);
    /// assert_eq!(pool.stats().detached, 1);
    /// ```
    pub fn into_inner(self) -> T {
        let mut me = ManuallyDrop::new(self);
        me.pool.detach(me.ticket);
        // SAFETY: `me` is never dropped, so the object is taken exactly once.
        unsafe { ManuallyDrop::take(&mut me.obj) }
    }

    /// The loan itself, for a batch return to `pool`, if this guard belongs
    /// to `pool` and `plain` accepts its ticket; else the guard, untouched
    /// (its drop then returns it as usual).
    #[inline]
    pub(crate) fn into_loan_if(
        self,
        pool: &Inner<T>,
        plain: impl FnOnce(&Ticket) -> bool,
    ) -> Result<(T, Ticket), Self> {
        if !std::ptr::eq(self.pool, pool) || !plain(&self.ticket) {
            return Err(self);
        }
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the object is taken exactly once;
        // the caller takes over the return its drop would have made.
        Ok((unsafe { ManuallyDrop::take(&mut me.obj) }, me.ticket))
    }
}

impl<T: Poolable> OwnedPoolGuard<T> {
    /// An owned guard for a loan taken by the caller's caller.
    #[inline]
    #[track_caller]
    pub(crate) fn new(pool: Pool<T>, loan: (T, Ticket)) -> Self {
        Self::new_at(pool, loan, Location::caller())
    }

    /// An owned guard for a loan taken at `at`.
    #[inline]
    pub(crate) fn new_at(
        pool: Pool<T>,
        (obj, mut ticket): (T, Ticket),
        at: &'static Location<'static>,
    ) -> Self {
        if pool.inner.fixed.track {
            ticket.track = pool.inner.track(at, ticket.bytes);
        }
        Self {
            obj: ManuallyDrop::new(obj),
            ticket,
            pool: ManuallyDrop::new(pool),
        }
    }

    /// Takes the object out of the pool for good (see [`PoolGuard::into_inner`]).
    ///
    /// ```
    /// use zeropool::BufferPool;
    ///
    /// let pool = BufferPool::new();
    /// let v = pool.get_owned(10).into_inner();
    /// pool.put(v); // and back again
    /// assert_eq!(pool.stats().adopted, 1);
    /// ```
    pub fn into_inner(self) -> T {
        let mut me = ManuallyDrop::new(self);
        me.pool.inner.detach(me.ticket);
        // SAFETY: `me` is never dropped, so each field is taken exactly once.
        let (obj, pool) = unsafe {
            (
                ManuallyDrop::take(&mut me.obj),
                ManuallyDrop::take(&mut me.pool),
            )
        };
        drop(pool);
        obj
    }

    /// The pool this guard returns to.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let buf = pool.get_owned(4096);
    /// std::thread::spawn(move || {
    ///     // Take a second buffer from the same pool, without another handle.
    ///     let more = buf.pool().get(4096);
    ///     assert_eq!(buf.pool().stats().objects_outstanding, 2);
    ///     drop(more);
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn pool(&self) -> &Pool<T> {
        &self.pool
    }
}

impl<T: Poolable> Drop for PoolGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: drop runs once and `obj` is not used after this.
        unsafe { self.pool.release(&mut self.obj, self.ticket) };
    }
}

impl<T: Poolable> Drop for OwnedPoolGuard<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: drop runs once and neither field is used after this. The
        // handle is a local, so it is dropped even if `reset` panics.
        unsafe {
            let pool = ManuallyDrop::take(&mut self.pool);
            pool.inner.release(&mut self.obj, self.ticket);
        }
    }
}

macro_rules! guard_traits {
    ($($guard:ident $(<$lt:lifetime>)?),*) => {$(
        impl<$($lt,)? T: Poolable> Deref for $guard<$($lt,)? T> {
            type Target = T;
            #[inline(always)]
            fn deref(&self) -> &T {
                &self.obj
            }
        }

        impl<$($lt,)? T: Poolable> DerefMut for $guard<$($lt,)? T> {
            #[inline(always)]
            fn deref_mut(&mut self) -> &mut T {
                &mut self.obj
            }
        }

        impl<$($lt,)? T: Poolable> Borrow<T> for $guard<$($lt,)? T> {
            fn borrow(&self) -> &T {
                &self.obj
            }
        }

        impl<$($lt,)? T: Poolable> BorrowMut<T> for $guard<$($lt,)? T> {
            fn borrow_mut(&mut self) -> &mut T {
                &mut self.obj
            }
        }

        impl<$($lt,)? T: Poolable + fmt::Debug> fmt::Debug for $guard<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.obj, f)
            }
        }

        impl<$($lt,)? T: Poolable + AsRef<[u8]>> AsRef<[u8]> for $guard<$($lt,)? T> {
            fn as_ref(&self) -> &[u8] {
                (*self.obj).as_ref()
            }
        }

        impl<$($lt,)? T: Poolable + AsMut<[u8]>> AsMut<[u8]> for $guard<$($lt,)? T> {
            fn as_mut(&mut self) -> &mut [u8] {
                (*self.obj).as_mut()
            }
        }

        impl<$($lt,)? T: Poolable + std::io::Write> std::io::Write for $guard<$($lt,)? T> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (*self.obj).write(buf)
            }
            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                (*self.obj).write_all(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                (*self.obj).flush()
            }
        }
    )*};
}

guard_traits!(PoolGuard<'a>, OwnedPoolGuard);
