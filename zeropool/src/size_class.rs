//! Size classes: which class serves a request, and which class a returned
//! object belongs to.
//!
//! ```text
//! classes:      4 KiB      16 KiB      64 KiB
//! request n:  (0,4K] -> 0  (4K,16K] -> 1  (16K,64K] -> 2  >64K -> oversize
//! capacity c: [4K,16K) -> 0  [16K,64K) -> 1  [64K,128K] -> 2  <4K: undersize, >128K: oversize
//! ```
//! A request goes to the smallest class that fits it; an object goes back to
//! the largest class its real capacity can serve. An object more than twice
//! the largest class is not kept (it would pin memory no request needs).
//!
//! Both lookups start from a table indexed by the bit length of the size and
//! the three bits after its leading one (eight buckets per doubling), so they
//! cost one load and, for classes as close as the defaults (four per
//! doubling), at most one more compare: no division, no binary search.

/// Where a returned object goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Class(usize),
    Undersize,
    Oversize,
}

/// Sub-buckets per doubling in the lookup tables (3 bits of mantissa).
const SUB: usize = 8;
/// Table entries: bit lengths 0..=64, `SUB` sub-buckets each.
const BUCKETS: usize = 65 * SUB;

/// The validated, sorted set of class sizes with its lookup tables.
#[derive(Debug, Clone)]
pub(crate) struct SizeClasses {
    sizes: Box<[usize]>,
    /// `first_fit[b]`: first class whose size is `>=` the smallest value of
    /// bucket `b`, a lower bound for the class of any request in `b`.
    first_fit: Box<[u16; BUCKETS]>,
    /// `last_fit[b]`: last class whose size is `<=` the largest value of
    /// bucket `b` (or -1), an upper bound for the class of any capacity in `b`.
    last_fit: Box<[i16; BUCKETS]>,
}

/// The bucket of `n`: its bit length and the 3 bits that follow the leading
/// one (zero-padded below 8). Branch-free: shift the leading one to the top.
#[inline(always)]
fn bucket(n: usize) -> usize {
    let lz = n.leading_zeros();
    let len = (usize::BITS - lz) as usize;
    let mantissa = ((n << (lz & (usize::BITS - 1))) >> (usize::BITS - 4)) & (SUB - 1);
    len * SUB + mantissa
}

/// The smallest and largest value of bucket `b`, or `None` if no value maps to it.
fn bucket_range(b: usize) -> Option<(u128, u128)> {
    let (len, sub) = (b / SUB, (b % SUB) as u128);
    let top = SUB as u128 + sub; // the leading one and the three bits after it
    match len {
        0 => (sub == 0).then_some((0, 0)),
        1..=3 => {
            let pad = 4 - len as u32;
            (top & ((1 << pad) - 1) == 0).then_some((top >> pad, top >> pad))
        }
        _ => {
            let lo = top << (len - 4);
            Some((lo, lo + (1u128 << (len - 4)) - 1))
        }
    }
}

impl SizeClasses {
    /// Builds the tables; `sizes` must be non-empty, strictly ascending, and
    /// hold at most `i16::MAX` entries (checked by the builder).
    pub(crate) fn new(sizes: &[usize]) -> Self {
        debug_assert!(!sizes.is_empty() && sizes.windows(2).all(|w| w[0] < w[1]));
        let mut first_fit = Box::new([0u16; BUCKETS]);
        let mut last_fit = Box::new([-1i16; BUCKETS]);
        for b in 0..BUCKETS {
            let Some((lo, hi)) = bucket_range(b) else {
                continue;
            };
            first_fit[b] = sizes.iter().take_while(|&&s| (s as u128) < lo).count() as u16;
            last_fit[b] = sizes.iter().take_while(|&&s| (s as u128) <= hi).count() as i16 - 1;
        }
        Self {
            sizes: sizes.into(),
            first_fit,
            last_fit,
        }
    }

    /// The class sizes, ascending.
    pub(crate) fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    pub(crate) fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Size in bytes of class `class`.
    #[inline(always)]
    pub(crate) fn size(&self, class: usize) -> usize {
        self.sizes[class]
    }

    /// The smallest class that serves a request of `n` bytes, or `None` when
    /// `n` is larger than every class.
    #[inline(always)]
    pub(crate) fn for_request(&self, n: usize) -> Option<usize> {
        let mut i = self.first_fit[bucket(n)] as usize;
        while i < self.sizes.len() {
            if self.sizes[i] >= n {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// The class an object of `capacity` bytes returns to.
    #[inline(always)]
    pub(crate) fn for_capacity(&self, capacity: usize) -> Route {
        let mut i = self.last_fit[bucket(capacity)] as isize;
        while i >= 0 {
            if self.sizes[i as usize] <= capacity {
                let top = self.sizes.len() - 1;
                if i as usize == top && capacity > self.sizes[top].saturating_mul(2) {
                    return Route::Oversize;
                }
                return Route::Class(i as usize);
            }
            i -= 1;
        }
        Route::Undersize
    }
}

/// The default classes: four per doubling (each about 19% above the last)
/// from 256 B to 4 MiB, rounded to 16 bytes. Four steps per doubling keep
/// the waste of rounding a request up near 19% at worst (about 9% on
/// average), which is what the Zipf memory target needs.
pub(crate) fn default_sizes() -> Vec<usize> {
    geometric_sizes(256, 4 << 20, 4)
}

/// Class sizes from `min` to `max` with `per_doubling` steps per doubling,
/// rounded to the nearest multiple of 16 bytes (sizes under 16 stay exact),
/// deduplicated.
pub(crate) fn geometric_sizes(min: usize, max: usize, per_doubling: u32) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut base = min;
    while base <= max {
        for step in 0..per_doubling {
            let exact = base as f64 * 2f64.powf(step as f64 / per_doubling as f64);
            let mut size = exact.round() as usize;
            if size > 16 {
                size = (size + 8) / 16 * 16;
            }
            if size > max {
                break;
            }
            if out.last().is_none_or(|&last| last < size) {
                out.push(size);
            }
        }
        match base.checked_mul(2) {
            Some(next) => base = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_request(sizes: &[usize], n: usize) -> Option<usize> {
        sizes.iter().position(|&s| s >= n)
    }

    fn naive_capacity(sizes: &[usize], c: usize) -> Route {
        match sizes.iter().rposition(|&s| s <= c) {
            None => Route::Undersize,
            Some(i) if i == sizes.len() - 1 && c > sizes[i].saturating_mul(2) => Route::Oversize,
            Some(i) => Route::Class(i),
        }
    }

    #[test]
    fn tables_agree_with_a_linear_scan() {
        let sets: [Vec<usize>; 4] = [
            vec![4096, 16384, 65536],
            vec![1],
            vec![3, 5, 6, 7, 1000, 1 << 20],
            default_sizes(),
        ];
        for sizes in sets {
            let c = SizeClasses::new(&sizes);
            let mut probes = vec![0usize, 1, 2, usize::MAX, usize::MAX / 2];
            for &s in &sizes {
                probes.extend([s - 1, s, s + 1, s * 2, s * 2 + 1]);
            }
            // And pseudo-random sizes of every magnitude (fewer under Miri:
            // safe arithmetic, and slow there).
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            for _ in 0..if cfg!(miri) { 200 } else { 5000 } {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                probes.push((x >> (x % 64)) as usize);
            }
            for n in probes {
                assert_eq!(
                    c.for_request(n),
                    naive_request(&sizes, n),
                    "request {n} in {sizes:?}"
                );
                assert_eq!(
                    c.for_capacity(n),
                    naive_capacity(&sizes, n),
                    "capacity {n} in {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn default_sizes_step_at_most_22_percent() {
        let s = default_sizes();
        assert_eq!(s[0], 256);
        assert_eq!(*s.last().unwrap(), 4 << 20);
        for w in s.windows(2) {
            assert!(w[1] as f64 / w[0] as f64 <= 1.22, "{w:?}");
        }
    }
}
