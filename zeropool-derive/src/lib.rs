//! `#[derive(Poolable)]` for [zeropool](https://docs.rs/zeropool). Use it
//! through `zeropool::Poolable` (the `derive` feature, on by default); this
//! crate is an implementation detail.
//!
//! Layout: `ast` is the parsed model, `attr` parses `#[poolable(...)]`
//! into it, `valid` checks it, `expand` generates the impl from it.

mod ast;
mod attr;
mod expand;
mod generics;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Implements `zeropool::Poolable` for a struct, field by field, so that no
/// field of a previous user survives `reset`.
///
/// | on a field | `with_capacity_hint(bytes)` | `reset` | `capacity_bytes` |
/// |---|---|---|---|
/// | `#[poolable(capacity)]` (one field) | `Poolable::with_capacity_hint(bytes)` | `PoolField::reset_field` | counted |
/// | no attribute | `PoolField::new_field()` (empty) | `PoolField::reset_field` | counted |
/// | `#[poolable(reset = "path")]` | `Default::default()` | `path(&mut self.field)` | counted if its type is a `PoolField` |
/// | `#[poolable(keep)]` | `Default::default()` | untouched | counted if its type is a `PoolField` |
///
/// `zeropool::PoolField` says how a field starts, how it resets and how many
/// heap bytes it holds. Every `Poolable` type is one (`Vec` and `String` are
/// cleared and keep their allocation, a nested derived struct is built with
/// a hint of 0 and resets and counts its own fields), and so are the scalar
/// types, `&'static str`, `Duration` and `Option` (reset to their
/// `Default`), arrays and tuples of fields, and the std collections.
///
/// `capacity_bytes`, what the pool's memory budget counts, is the sum over
/// all fields. `class_bytes`, what routes a returned value to a size class,
/// is the `capacity` field's bytes alone, so a value always serves requests
/// its `capacity` field can hold, however much its other fields grew.
///
/// On the struct:
/// - `#[poolable(new = "path")]`: `with_capacity_hint(bytes)` returns
///   `path(bytes)`, a `fn(usize) -> Self` you write (no field is then built
///   by the derive, so no field needs `Default`, and none may be `capacity`);
/// - `#[poolable(reset = "path")]`: a `fn(&mut Self)` called at the end of
///   `reset`, after every field is reset.
///
/// Either a `capacity` field or `new` is required: the pool asks for values
/// of at least `bytes` bytes and routes them by their size. `wipe` (used
/// when the pool zeroes returned values) is forwarded to the `capacity` field
/// and to every field the derive resets. Paths may be written with or
/// without quotes. Generic structs get the bounds their fields need (for
/// example `T: PoolField + Send + 'static` for a field of type `T`); a
/// `keep` or custom-reset field whose type names a generic parameter counts
/// 0 bytes.
///
/// # Example
/// ```
/// use zeropool::{Pool, Poolable};
///
/// #[derive(Default)]
/// struct Scratch {
///     words: Vec<String>,
///     hits: u32,
/// }
///
/// fn reset_scratch(s: &mut Scratch) {
///     s.words.clear();
///     s.hits = 0;
/// }
///
/// #[derive(Poolable)]
/// struct Frame {
///     #[poolable(capacity)] // receives the capacity hint
///     payload: Vec<u8>,
///     headers: Vec<(String, String)>, // cleared on reset, allocation kept
///     seq: u64,                       // reset to 0
///     #[poolable(keep)] // survives reset unchanged
///     created_by: &'static str,
///     #[poolable(reset = "reset_scratch")]
///     scratch: Scratch,
/// }
///
/// let frames: Pool<Frame> = Pool::builder().build()?;
/// let mut f = frames.get(16 * 1024);
/// assert!(f.payload.capacity() >= 16 * 1024);
/// f.payload.extend_from_slice(b"GET /");
/// f.headers.push(("host".into(), "example".into()));
/// f.seq = 7;
/// f.created_by = "listener";
/// f.scratch.hits = 3;
/// drop(f);
///
/// let f = frames.get(16 * 1024); // the same frame, reset
/// assert!(f.payload.is_empty() && f.headers.is_empty());
/// assert_eq!((f.seq, f.scratch.hits, f.created_by), (0, 0, "listener"));
/// # Ok::<(), zeropool::Error>(())
/// ```
///
/// A tuple struct built by a function of its own, with a whole-value reset:
/// ```
/// use zeropool::Poolable;
///
/// #[derive(Poolable)]
/// #[poolable(new = "Line::new", reset = "Line::restart")]
/// struct Line(String, usize);
///
/// impl Line {
///     fn new(bytes: usize) -> Self {
///         Line(String::with_capacity(bytes), 1)
///     }
///     fn restart(&mut self) {
///         self.1 = 1; // numbering starts at 1, not at `Default`
///     }
/// }
///
/// let mut line = Line::with_capacity_hint(80);
/// line.0.push_str("hello");
/// line.1 = 42;
/// line.reset();
/// assert_eq!((line.0.as_str(), line.1), ("", 1));
/// assert_eq!(line.capacity_bytes(), line.0.capacity());
/// ```
///
/// Misuse is a compile error on your own tokens, for example a field type
/// the derive cannot reset:
/// ```compile_fail
/// #[derive(zeropool::Poolable)]
/// struct Conn {
///     #[poolable(capacity)]
///     buf: Vec<u8>,
///     socket: std::net::TcpStream, // mark it `#[poolable(keep)]` or `reset = "..."`
/// }
/// ```
#[proc_macro_derive(Poolable, attributes(poolable))]
pub fn derive_poolable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
