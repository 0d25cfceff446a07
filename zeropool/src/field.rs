//! [`PoolField`]: how `#[derive(Poolable)]` builds, resets, measures and
//! wipes one field of a pooled struct.
//!
//! Every [`Poolable`] type is a `PoolField` (reset keeps its allocation, its
//! capacity is counted); so are scalars, `Option`, `PhantomData`, arrays and
//! tuples of fields, `BTreeMap`, `BTreeSet` and `BinaryHeap`. A type of your
//! own can implement `PoolField` (or `Poolable`) to be used as a plain field.

use crate::Poolable;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::marker::PhantomData;
use std::mem::size_of;
use std::time::Duration;

/// One field of a struct that derives [`Poolable`]: how the derive builds it
/// empty, empties it on `reset`, and how many heap bytes it adds to
/// `capacity_bytes` (what the memory budget counts).
///
/// Implemented for every [`Poolable`] type (so `Vec`, `String`, `VecDeque`,
/// `HashMap`, `HashSet` and nested derived structs, built with a capacity
/// hint of 0), and for types that start and reset as their `Default` and
/// hold no heap memory: the integer and float types,
/// `bool`, `char`, `()`, `&'static str`, `Duration`, `Option<T>` (reset to
/// `None`) and `PhantomData<T>`. Arrays and tuples (up to 6) of fields reset
/// and count element by element. `BTreeMap` and `BTreeSet` are cleared (which
/// frees their nodes, so they count 0); `BinaryHeap` is cleared and keeps its
/// allocation.
///
/// Implement it for a field type of your own that is not `Poolable`. Keep
/// the promise `Poolable` makes: after `reset_field` the value holds no data
/// of its previous user, and `heap_bytes` does not change while the value is
/// idle. A type that implements `Poolable` gets this trait from it and cannot
/// also implement it by hand.
///
/// # Example
#[cfg_attr(feature = "derive", doc = "```")]
#[cfg_attr(not(feature = "derive"), doc = "```ignore")]
/// use zeropool::{PoolField, Poolable};
///
/// /// A histogram whose buckets are reused across requests.
/// struct Histogram {
///     buckets: Box<[u32; 64]>,
///     total: u64,
/// }
///
/// impl PoolField for Histogram {
///     fn new_field() -> Self {
///         Histogram { buckets: Box::new([0; 64]), total: 0 }
///     }
///     fn reset_field(&mut self) {
///         self.buckets.fill(0);
///         self.total = 0;
///     }
///     fn heap_bytes(&self) -> usize {
///         std::mem::size_of::<[u32; 64]>()
///     }
/// }
///
/// #[derive(Poolable)]
/// struct Request {
///     #[poolable(capacity)]
///     body: Vec<u8>,
///     latency: Histogram,
/// }
///
/// let mut req = Request::with_capacity_hint(1024);
/// req.latency.buckets[3] = 7;
/// req.latency.total = 7;
/// req.reset();
/// assert_eq!(req.latency.total, 0);
/// assert!(req.latency.buckets.iter().all(|&b| b == 0));
/// assert_eq!(req.capacity_bytes(), req.body.capacity() + 256);
/// ```
#[diagnostic::on_unimplemented(
    message = "`#[derive(Poolable)]` does not know how to reset a field of type `{Self}`",
    label = "this field has no reset",
    note = "mark the field `#[poolable(keep)]` to leave it untouched, or `#[poolable(reset = \"path\")]` to reset it with a `fn(&mut {Self})`",
    note = "or implement `zeropool::PoolField` (or `zeropool::Poolable`) for `{Self}`"
)]
pub trait PoolField {
    /// A new, empty value: what `with_capacity_hint` puts in a field that
    /// is not the `capacity` field.
    ///
    /// ```
    /// use zeropool::PoolField;
    ///
    /// assert_eq!(<Vec<u8> as PoolField>::new_field().capacity(), 0); // a Poolable: hint 0
    /// assert_eq!(<Option<String> as PoolField>::new_field(), None);   // its Default
    /// assert_eq!(<(u32, bool) as PoolField>::new_field(), (0, false));
    /// ```
    fn new_field() -> Self
    where
        Self: Sized;

    /// Empties the field for the next user, keeping what allocation it can.
    ///
    /// ```
    /// use zeropool::PoolField;
    ///
    /// let mut names = vec![String::from("a"), String::from("b")];
    /// let cap = names.capacity();
    /// names.reset_field();
    /// assert!(names.is_empty());
    /// assert_eq!(names.capacity(), cap);
    ///
    /// let mut pair = (7u64, Some(3u8));
    /// pair.reset_field();
    /// assert_eq!(pair, (0, None));
    /// ```
    fn reset_field(&mut self);

    /// Heap bytes the field holds; added into the struct's
    /// [`capacity_bytes`](Poolable::capacity_bytes).
    ///
    /// ```
    /// use zeropool::PoolField;
    ///
    /// assert_eq!(Vec::<u16>::with_capacity(10).heap_bytes(), 20);
    /// assert_eq!(42u64.heap_bytes(), 0);
    /// let arr = [Vec::<u8>::with_capacity(4), Vec::with_capacity(6)];
    /// assert_eq!(arr.heap_bytes(), 10); // arrays and tuples add up their elements
    /// ```
    fn heap_bytes(&self) -> usize;

    /// Zeroes the bytes in use before `reset_field`, when the pool was built
    /// with `wipe_on_return(true)`. The default does nothing.
    ///
    /// ```
    /// use zeropool::PoolField;
    ///
    /// let mut token = String::from("hunter2");
    /// token.wipe_field();            // a Poolable field: its own `wipe`
    /// assert_eq!(token, "\0".repeat(7));
    /// let mut n = 5u32;
    /// n.wipe_field();                // scalars: nothing to do (reset zeroes them)
    /// assert_eq!(n, 5);
    /// ```
    fn wipe_field(&mut self) {}
}

#[diagnostic::do_not_recommend]
impl<T: Poolable> PoolField for T {
    #[inline]
    fn new_field() -> Self {
        T::with_capacity_hint(0)
    }

    #[inline]
    fn reset_field(&mut self) {
        self.reset();
    }

    #[inline]
    fn heap_bytes(&self) -> usize {
        self.capacity_bytes()
    }

    #[inline]
    fn wipe_field(&mut self) {
        self.wipe();
    }
}

/// `PoolField` for types that hold no heap memory and reset to `Default`.
macro_rules! reset_to_default {
    ($($ty:ty),* $(,)?) => {$(
        impl PoolField for $ty {
            #[inline]
            fn new_field() -> Self {
                <$ty as Default>::default()
            }

            #[inline]
            fn reset_field(&mut self) {
                *self = <$ty as Default>::default();
            }

            #[inline]
            fn heap_bytes(&self) -> usize {
                0
            }
        }
    )*};
}

reset_to_default!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    bool,
    char,
    (),
    &'static str,
    Duration,
);

/// Reset to `None`, dropping the value; counts 0 bytes (an idle field is
/// always `None`).
impl<T> PoolField for Option<T> {
    #[inline]
    fn new_field() -> Self {
        None
    }

    #[inline]
    fn reset_field(&mut self) {
        *self = None;
    }

    #[inline]
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl<T: ?Sized> PoolField for PhantomData<T> {
    #[inline]
    fn new_field() -> Self {
        PhantomData
    }

    #[inline]
    fn reset_field(&mut self) {}

    #[inline]
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl<T: PoolField, const N: usize> PoolField for [T; N] {
    fn new_field() -> Self {
        std::array::from_fn(|_| T::new_field())
    }

    fn reset_field(&mut self) {
        self.iter_mut().for_each(T::reset_field);
    }

    fn heap_bytes(&self) -> usize {
        self.iter()
            .fold(0, |sum, item| sum.saturating_add(item.heap_bytes()))
    }

    fn wipe_field(&mut self) {
        self.iter_mut().for_each(T::wipe_field);
    }
}

/// `PoolField` for a tuple whose elements are all fields.
macro_rules! tuple_field {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: PoolField),+> PoolField for ($($name,)+) {
            fn new_field() -> Self {
                ($($name::new_field(),)+)
            }

            fn reset_field(&mut self) {
                $(self.$idx.reset_field();)+
            }

            fn heap_bytes(&self) -> usize {
                0usize $(.saturating_add(self.$idx.heap_bytes()))+
            }

            fn wipe_field(&mut self) {
                $(self.$idx.wipe_field();)+
            }
        }
    };
}

tuple_field!(A.0);
tuple_field!(A.0, B.1);
tuple_field!(A.0, B.1, C.2);
tuple_field!(A.0, B.1, C.2, D.3);
tuple_field!(A.0, B.1, C.2, D.3, E.4);
tuple_field!(A.0, B.1, C.2, D.3, E.4, F.5);

/// Cleared; clearing frees the nodes, so it counts 0 bytes.
impl<K, V> PoolField for BTreeMap<K, V> {
    fn new_field() -> Self {
        BTreeMap::new()
    }

    fn reset_field(&mut self) {
        self.clear();
    }

    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Cleared; clearing frees the nodes, so it counts 0 bytes.
impl<T> PoolField for BTreeSet<T> {
    fn new_field() -> Self {
        BTreeSet::new()
    }

    fn reset_field(&mut self) {
        self.clear();
    }

    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Cleared, keeping its allocation.
impl<T: Ord> PoolField for BinaryHeap<T> {
    fn new_field() -> Self {
        BinaryHeap::new()
    }

    fn reset_field(&mut self) {
        self.clear();
    }

    fn heap_bytes(&self) -> usize {
        self.capacity().saturating_mul(size_of::<T>())
    }
}

/// Support for the code `#[derive(Poolable)]` generates. Not a public API:
/// it may change in any release.
#[doc(hidden)]
pub mod __private {
    use super::PoolField;
    use crate::Poolable;

    /// Builds the `#[poolable(capacity)]` field; names the problem when the
    /// field's type has no capacity.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be the `#[poolable(capacity)]` field: it does not implement `Poolable`",
        label = "this type has no capacity to size",
        note = "put `#[poolable(capacity)]` on the field that holds the bulk of the memory: a `Vec<_>`, `String`, `VecDeque<_>`, `HashMap<_, _>`, `HashSet<_>`, a nested `#[derive(Poolable)]` struct, or any type that implements `zeropool::Poolable`",
        note = "or build the whole value yourself with `#[poolable(new = \"path\")]` on the struct"
    )]
    pub trait CapacityField: Sized {
        fn capacity_field(bytes: usize) -> Self;
        fn capacity_bytes_of(&self) -> usize;
        fn wipe_capacity_field(&mut self);
    }

    #[diagnostic::do_not_recommend]
    impl<T: Poolable> CapacityField for T {
        #[inline]
        fn capacity_field(bytes: usize) -> Self {
            T::with_capacity_hint(bytes)
        }

        #[inline]
        fn capacity_bytes_of(&self) -> usize {
            self.capacity_bytes()
        }

        #[inline]
        fn wipe_capacity_field(&mut self) {
            self.wipe();
        }
    }

    /// Builds a `keep` or custom-reset field; names the problem when the
    /// field's type has no `Default`.
    #[diagnostic::on_unimplemented(
        message = "`#[derive(Poolable)]` cannot build this `{Self}`: a `keep` or `reset = ...` field starts as its `Default`, and `{Self}` has none",
        label = "this field has no `Default`",
        note = "build the whole value yourself with `#[poolable(new = \"path\")]` on the struct, a `fn(usize) -> Self` that gets the capacity hint in bytes",
        note = "or implement `Default` for `{Self}`"
    )]
    pub trait DefaultField: Sized {
        fn default_field() -> Self;
    }

    impl<T: Default> DefaultField for T {
        #[inline]
        fn default_field() -> Self {
            T::default()
        }
    }

    /// Measures a `keep` or custom-reset field: `(&&Probe(&field)).heap_bytes_of()`
    /// is the field's [`PoolField::heap_bytes`] when its type implements
    /// `PoolField`, else 0 (autoref-based selection: the first impl applies
    /// one reference deeper, so it wins whenever its bound holds).
    pub struct Probe<'a, T: ?Sized>(pub &'a T);

    impl<T: ?Sized> std::fmt::Debug for Probe<'_, T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Probe")
        }
    }

    pub trait MeasureField {
        fn heap_bytes_of(&self) -> usize;
    }

    impl<T: PoolField + ?Sized> MeasureField for &Probe<'_, T> {
        #[inline]
        fn heap_bytes_of(&self) -> usize {
            self.0.heap_bytes()
        }
    }

    pub trait MeasureOther {
        fn heap_bytes_of(&self) -> usize;
    }

    impl<T: ?Sized> MeasureOther for Probe<'_, T> {
        #[inline]
        fn heap_bytes_of(&self) -> usize {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::__private::{MeasureField as _, MeasureOther as _, Probe};
    use super::*;

    #[test]
    fn new_fields_are_empty() {
        let v = <Vec<u8> as PoolField>::new_field();
        let a = <[Option<String>; 3] as PoolField>::new_field();
        let t = <(u32, String, PhantomData<u8>) as PoolField>::new_field();
        assert_eq!(v.capacity(), 0);
        assert!(a.iter().all(Option::is_none));
        assert_eq!((t.0, t.1.as_str()), (0, ""));
    }

    #[test]
    fn scalars_reset_to_default() {
        let mut n = 7u64;
        let mut s = "previous";
        let mut d = Duration::from_secs(3);
        n.reset_field();
        s.reset_field();
        d.reset_field();
        assert_eq!((n, s, d), (0, "", Duration::ZERO));
        assert_eq!(n.heap_bytes() + s.heap_bytes() + d.heap_bytes(), 0);
    }

    #[test]
    fn poolable_types_keep_their_allocation() {
        let mut v: Vec<u32> = Vec::with_capacity(16);
        v.push(1);
        v.reset_field();
        assert!(v.is_empty());
        assert_eq!(v.heap_bytes(), v.capacity() * 4);
    }

    #[test]
    fn arrays_and_tuples_reset_each_element() {
        let mut a = [String::from("x"), String::from("yy")];
        let bytes = a.heap_bytes();
        a.reset_field();
        assert!(a.iter().all(String::is_empty));
        assert_eq!(a.heap_bytes(), bytes);
        let mut t = (5u8, Some(3), String::from("z"));
        t.reset_field();
        assert_eq!(t, (0, None, String::new()));
    }

    #[test]
    fn collections_are_cleared() {
        let mut m = BTreeMap::from([(1, 2)]);
        let mut h = BinaryHeap::from(vec![3u64, 1, 2]);
        m.reset_field();
        h.reset_field();
        assert!(m.is_empty() && h.is_empty());
        assert_eq!(h.heap_bytes(), h.capacity() * 8);
    }

    #[test]
    // The two borrows select the impl: without them `MeasureOther` always wins.
    #[allow(clippy::needless_borrow)]
    fn probe_measures_fields_and_counts_others_as_zero() {
        struct Opaque(#[allow(dead_code)] Vec<u8>);
        let v: Vec<u8> = Vec::with_capacity(32);
        let o = Opaque(Vec::with_capacity(32));
        assert_eq!((&&Probe(&v)).heap_bytes_of(), v.capacity());
        assert_eq!((&&Probe(&o)).heap_bytes_of(), 0);
    }
}
