//! The [`Poolable`] trait and its implementations for std (and `bytes`) types.
//!
//! Sizes are bytes everywhere in the pool: the capacity hint given to
//! [`Poolable::with_capacity_hint`], the value [`Poolable::capacity_bytes`]
//! reports, the size classes and the memory budget. For a `Vec<T>` a hint of
//! `n` bytes means room for `ceil(n / size_of::<T>())` elements.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::mem::{size_of, MaybeUninit};

/// A type whose values a [`Pool`](crate::Pool) can keep and hand out again.
///
/// Implementations must keep three promises, which the pool relies on for
/// correct size-class routing and an exact budget:
/// - `with_capacity_hint(n).capacity_bytes() >= n` (collections of
///   zero-sized elements hold no heap bytes and report 0: the pool hands them
///   out but never keeps them, as for any value below the smallest class);
/// - `reset` leaves the value as a freshly built one would look to safe code
///   (empty, no previous user's data), keeping its allocation;
/// - `capacity_bytes` does not change while the value sits idle in the pool.
///
/// A `reset` that panics is handled: the pool drops the value, stays
/// consistent, and lets the panic continue.
///
/// # What the pool guarantees whatever an implementation does
/// The trait is safe, so the pool stays sound (no object handed to two
/// owners, none used after it is freed) and its books exact even when an
/// implementation breaks the promises above:
/// - Every method, and `Drop` of `T`, may call back into the same pool (any
///   operation: `get`, `put`, batches, `trim`, `stats`, `reload`, ...): the
///   pool never runs them while it holds a borrow of its own state or a lock.
/// - The pool asks `capacity_bytes` and `class_bytes` once when an object
///   enters its care (allocated, returned, given with `put`) and keeps the
///   answer beside the object; an answer that changes later changes nothing.
/// - A panic in `reset`, `wipe`, `capacity_bytes` or `class_bytes` while an
///   object comes back drops that object, counts it in
///   [`PoolStats::reset_panics`](crate::PoolStats::reset_panics) and
///   continues (unless the thread is already unwinding). A panic while a
///   fresh object is built or measured reaches the `get` with nothing
///   counted. A panic in `Drop` while the pool frees an object is caught and
///   counted in [`PoolStats::drop_panics`](crate::PoolStats::drop_panics);
///   it never aborts the process, at thread exit or pool drop included.
///
/// # Example
/// ```
/// use zeropool::{Pool, Poolable};
///
/// struct Scratch {
///     words: Vec<u32>,
/// }
///
/// impl Poolable for Scratch {
///     fn with_capacity_hint(bytes: usize) -> Self {
///         Scratch { words: Vec::with_capacity(bytes.div_ceil(4)) }
///     }
///     fn reset(&mut self) {
///         self.words.clear();
///     }
///     fn capacity_bytes(&self) -> usize {
///         self.words.capacity() * 4
///     }
/// }
///
/// let pool: Pool<Scratch> = Pool::new();
/// let s = pool.get(1024);
/// assert!(s.words.capacity() >= 256);
/// ```
pub trait Poolable: Send + 'static {
    /// Builds a new value able to hold at least `bytes` bytes without
    /// reallocating. The pool calls it with the size of the class a request
    /// falls in (or the request itself when it is larger than every class).
    ///
    /// ```
    /// use zeropool::Poolable;
    ///
    /// let v = <Vec<u32> as Poolable>::with_capacity_hint(10); // bytes, not elements
    /// assert!(v.capacity() >= 3);
    /// assert!(v.capacity_bytes() >= 10);
    /// ```
    fn with_capacity_hint(bytes: usize) -> Self;

    /// Empties the value, keeping its allocation.
    ///
    /// ```
    /// use zeropool::Poolable;
    ///
    /// let mut s = String::with_capacity_hint(64);
    /// s.push_str("previous user's data");
    /// let before = s.capacity_bytes();
    /// s.reset();
    /// assert!(s.is_empty());
    /// assert_eq!(s.capacity_bytes(), before);
    /// ```
    fn reset(&mut self);

    /// Heap bytes this value holds; routes it to a size class and is what the
    /// memory budget counts.
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use zeropool::Poolable;
    ///
    /// assert_eq!(Vec::<u64>::with_capacity(8).capacity_bytes(), 64);
    /// assert!(VecDeque::<u8>::with_capacity_hint(100).capacity_bytes() >= 100);
    /// ```
    fn capacity_bytes(&self) -> usize;

    /// The bytes that decide which size class this value serves; by default
    /// [`capacity_bytes`](Self::capacity_bytes). A type whose memory is
    /// spread over several buffers (a derived struct) routes by the one the
    /// capacity hint sized, while the budget still counts all of them.
    ///
    /// ```
    /// use zeropool::Poolable;
    ///
    /// struct Message {
    ///     body: Vec<u8>,
    ///     index: Vec<u32>,
    /// }
    ///
    /// impl Poolable for Message {
    ///     fn with_capacity_hint(bytes: usize) -> Self {
    ///         Message { body: Vec::with_capacity(bytes), index: Vec::with_capacity(16) }
    ///     }
    ///     fn reset(&mut self) {
    ///         self.body.clear();
    ///         self.index.clear();
    ///     }
    ///     fn capacity_bytes(&self) -> usize {
    ///         self.body.capacity() + self.index.capacity() * 4 // the budget counts both
    ///     }
    ///     fn class_bytes(&self) -> usize {
    ///         self.body.capacity() // requests are for body bytes: route by them
    ///     }
    /// }
    ///
    /// let pool: zeropool::Pool<Message> = zeropool::Pool::builder().size_classes(&[1024, 4096]).build()?;
    /// drop(pool.get(1024));
    /// let m = pool.get(1024); // the same message: its body serves 1024 bytes
    /// assert_eq!(pool.stats().tls_hits, 1);
    /// assert_eq!(m.capacity_bytes(), 1024 + 64);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[inline(always)]
    fn class_bytes(&self) -> usize {
        self.capacity_bytes()
    }

    /// Overwrites the bytes in use with zeros before [`reset`](Self::reset),
    /// when the pool was built with `wipe_on_return(true)`. The default does
    /// nothing; byte buffers override it.
    ///
    /// ```
    /// use zeropool::Poolable;
    ///
    /// let mut key = b"secret".to_vec();
    /// let ptr = key.as_ptr();
    /// key.wipe();
    /// assert_eq!(key, [0u8; 6]); // zeroed in place, same length until reset
    /// assert_eq!(key.as_ptr(), ptr);
    /// key.reset();
    /// assert!(key.is_empty());
    /// ```
    fn wipe(&mut self) {}

    /// The config-file table this type's pools read by default:
    /// `Some("frames")` makes [`Pool::from_config`](crate::Pool::from_config)
    /// read `[pools.frames]` (and `ZEROPOOL_POOLS__FRAMES__*`). The default,
    /// `None`, reads `[pool]`. `#[poolable(config = "frames")]` sets it.
    ///
    /// ```
    /// use zeropool::{Pool, Poolable};
    ///
    /// struct Frame(Vec<u8>);
    /// impl Poolable for Frame {
    ///     fn with_capacity_hint(n: usize) -> Self { Frame(Vec::with_capacity(n)) }
    ///     fn reset(&mut self) { self.0.clear() }
    ///     fn capacity_bytes(&self) -> usize { self.0.capacity() }
    ///     fn config_section() -> Option<&'static str> { Some("frames") }
    /// }
    ///
    /// let pool = Pool::<Frame>::from_config()?;
    /// assert_eq!(pool.config_section(), "pools.frames");
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    fn config_section() -> Option<&'static str> {
        None
    }

    /// The value's unused heap memory, for placing a fresh value's pages on a
    /// NUMA node (and locking them, with `pinned`) before anything touches
    /// them. The default, `None`, leaves placement to the OS; vectors and
    /// strings return their spare capacity.
    ///
    /// ```
    /// use zeropool::Poolable;
    ///
    /// let mut v: Vec<u32> = Vec::with_capacity(16);
    /// v.push(1);
    /// assert_eq!(v.spare_heap().map(|s| s.len()), Some(15 * 4));
    /// ```
    fn spare_heap(&mut self) -> Option<&mut [MaybeUninit<u8>]> {
        None
    }

    /// `true` when [`reset`](Self::reset), [`wipe`](Self::wipe),
    /// [`capacity_bytes`](Self::capacity_bytes) and
    /// [`class_bytes`](Self::class_bytes) can never panic (e.g. clearing a
    /// `Vec` of plain bytes): the pool then skips its panic guard on the
    /// return path. Leave it `false` when unsure. A wrong `true` stays sound
    /// (nothing is handed out twice or freed twice), but a panic there
    /// unwinds past the pool uncounted: the object is leaked and its bytes
    /// stay counted as handed out.
    ///
    /// ```
    /// use zeropool::Poolable;
    ///
    /// assert!(<Vec<u8> as Poolable>::RESET_NEVER_PANICS);      // clearing bytes cannot panic
    /// assert!(!<Vec<String> as Poolable>::RESET_NEVER_PANICS); // dropping elements runs their code
    /// ```
    const RESET_NEVER_PANICS: bool = false;
}

/// Zeroes `bytes` so that the stores are not elided as dead.
fn wipe_bytes(bytes: &mut [u8]) {
    bytes.fill(0);
    // The buffer stays allocated and reachable through the pool, so the
    // stores are observable anyway; the fence documents that they must stay.
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Elements of `T` needed to hold `bytes` bytes (zero-sized types need none).
fn elements_for<T>(bytes: usize) -> usize {
    match size_of::<T>() {
        0 => 0,
        size => bytes.div_ceil(size),
    }
}

impl<T: Send + 'static> Poolable for Vec<T> {
    const RESET_NEVER_PANICS: bool = !std::mem::needs_drop::<T>();

    fn with_capacity_hint(bytes: usize) -> Self {
        Vec::with_capacity(elements_for::<T>(bytes))
    }

    #[inline]
    fn reset(&mut self) {
        self.clear();
    }

    #[inline]
    fn capacity_bytes(&self) -> usize {
        self.capacity().saturating_mul(size_of::<T>())
    }

    fn spare_heap(&mut self) -> Option<&mut [MaybeUninit<u8>]> {
        let spare = self.spare_capacity_mut();
        let bytes = spare.len() * size_of::<T>();
        // SAFETY: the spare capacity is `bytes` bytes of allocated memory
        // owned by this vector; viewing `MaybeUninit<T>` as `MaybeUninit<u8>`
        // asserts nothing about its contents, and the borrow of `self` keeps
        // the vector from reallocating while the slice lives.
        Some(unsafe {
            std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<u8>>(), bytes)
        })
    }

    /// Zeroes the elements in use when `T` is a plain byte (`u8` or `i8`),
    /// a type for which every bit pattern, zero included, is a valid value.
    /// Other element types are left alone: zero may not be a valid value of
    /// them (`NonZeroU8`, a `#[repr(u8)]` enum without a zero variant, a
    /// reference), and `reset` drops the elements right after anyway.
    fn wipe(&mut self) {
        if is_plain_byte::<T>() {
            let len = self.len();
            // SAFETY: `T` is `u8` or `i8` (checked by `TypeId` above), so the
            // `len` initialised elements are `len` initialised bytes, and
            // zero is a valid value of either type.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr().cast::<u8>(), len) };
            wipe_bytes(bytes);
        }
    }
}

/// Whether `T` is `u8` or `i8`: the element types `Vec::wipe` zeroes.
fn is_plain_byte<T: 'static>() -> bool {
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    t == TypeId::of::<u8>() || t == TypeId::of::<i8>()
}

impl Poolable for String {
    const RESET_NEVER_PANICS: bool = true;

    fn with_capacity_hint(bytes: usize) -> Self {
        String::with_capacity(bytes)
    }

    #[inline]
    fn reset(&mut self) {
        self.clear();
    }

    #[inline]
    fn capacity_bytes(&self) -> usize {
        self.capacity()
    }

    fn spare_heap(&mut self) -> Option<&mut [MaybeUninit<u8>]> {
        // SAFETY: only the spare capacity is exposed, as `MaybeUninit` bytes
        // (nothing can be read through it, and writing there does not change
        // the string's length, so it stays valid UTF-8).
        Some(unsafe { self.as_mut_vec() }.spare_capacity_mut())
    }

    fn wipe(&mut self) {
        // SAFETY: zero bytes are valid UTF-8 (NUL), so the string stays valid.
        wipe_bytes(unsafe { self.as_bytes_mut() });
    }
}

impl<T: Send + 'static> Poolable for VecDeque<T> {
    const RESET_NEVER_PANICS: bool = !std::mem::needs_drop::<T>();

    fn with_capacity_hint(bytes: usize) -> Self {
        VecDeque::with_capacity(elements_for::<T>(bytes))
    }

    fn reset(&mut self) {
        self.clear();
    }

    fn capacity_bytes(&self) -> usize {
        self.capacity().saturating_mul(size_of::<T>())
    }
}

/// Bytes one entry of a hash table costs: key, value and a control byte. The
/// figure is approximate (the table rounds its bucket count up).
const fn entry_bytes<K, V>() -> usize {
    size_of::<K>() + size_of::<V>() + 1
}

impl<K, V, S> Poolable for HashMap<K, V, S>
where
    K: Eq + Hash + Send + 'static,
    V: Send + 'static,
    S: BuildHasher + Default + Send + 'static,
{
    fn with_capacity_hint(bytes: usize) -> Self {
        HashMap::with_capacity_and_hasher(bytes.div_ceil(entry_bytes::<K, V>()), S::default())
    }

    fn reset(&mut self) {
        self.clear();
    }

    fn capacity_bytes(&self) -> usize {
        self.capacity().saturating_mul(entry_bytes::<K, V>())
    }
}

impl<K, S> Poolable for HashSet<K, S>
where
    K: Eq + Hash + Send + 'static,
    S: BuildHasher + Default + Send + 'static,
{
    fn with_capacity_hint(bytes: usize) -> Self {
        HashSet::with_capacity_and_hasher(bytes.div_ceil(entry_bytes::<K, ()>()), S::default())
    }

    fn reset(&mut self) {
        self.clear();
    }

    fn capacity_bytes(&self) -> usize {
        self.capacity().saturating_mul(entry_bytes::<K, ()>())
    }
}

#[cfg(feature = "bytes")]
impl Poolable for bytes::BytesMut {
    const RESET_NEVER_PANICS: bool = true;

    fn with_capacity_hint(bytes: usize) -> Self {
        bytes::BytesMut::with_capacity(bytes)
    }

    fn reset(&mut self) {
        self.clear();
    }

    fn capacity_bytes(&self) -> usize {
        self.capacity()
    }

    fn wipe(&mut self) {
        wipe_bytes(&mut self[..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_of_wide_elements_rounds_up() {
        let v = <Vec<u64> as Poolable>::with_capacity_hint(17);
        assert!(v.capacity() >= 3);
        assert!(v.capacity_bytes() >= 17);
    }

    #[test]
    fn wipe_zeroes_used_bytes_only_for_byte_vectors() {
        let mut v = vec![7u8; 16];
        v.wipe();
        assert!(v.iter().all(|&b| b == 0));
        let mut i = vec![-7i8; 3];
        i.wipe();
        assert_eq!(i, [0; 3]);
        let mut w = vec![7u32; 4];
        w.wipe();
        assert_eq!(w, [7; 4]);
    }

    /// One-byte types for which zero is not a valid value are never zeroed
    /// (Miri reports an invalid value if they are).
    #[test]
    fn wipe_leaves_one_byte_types_without_a_zero_value_alone() {
        use std::num::NonZeroU8;
        let mut v = vec![NonZeroU8::MIN; 4];
        v.wipe();
        assert_eq!(v[0], NonZeroU8::MIN);

        #[derive(Debug, Clone, Copy, PartialEq)]
        #[repr(u8)]
        enum Tag {
            A = 1,
            B = 2,
        }
        let mut tags = vec![Tag::A, Tag::B];
        tags.wipe();
        assert_eq!(tags, [Tag::A, Tag::B]);

        let mut flags = vec![true; 2];
        flags.wipe();
        assert_eq!(flags, [true, true]);
    }

    #[test]
    fn spare_heap_covers_the_unused_capacity_in_bytes() {
        let mut v: Vec<u32> = Poolable::with_capacity_hint(64);
        v.push(1);
        assert_eq!(
            v.spare_heap().map(|s| s.len()),
            Some((v.capacity() - 1) * 4)
        );
        let mut s = String::with_capacity(10);
        s.push('x');
        assert_eq!(s.spare_heap().map(|h| h.len()), Some(s.capacity() - 1));
    }

    #[test]
    fn reset_keeps_allocation() {
        let mut m: HashMap<u32, u32> = Poolable::with_capacity_hint(1000);
        m.insert(1, 2);
        let cap = m.capacity_bytes();
        m.reset();
        assert!(m.is_empty());
        assert_eq!(m.capacity_bytes(), cap);
    }
}
