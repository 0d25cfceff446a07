//! What the soak pools: byte buffers (`Vec<u8>`, a `BufferPool`) and
//! [`Record`], a struct deriving `Poolable` whose `reset` panics when its
//! holder poisoned it. [`Subject`] gives both the canary interface the
//! holders use (see `canary`).

use crate::panics;
use zeropool::{Pool, PoolGuard, Poolable};

/// A pooled type the soak can stamp, check and (for records) poison.
pub trait Subject: Poolable + Sized {
    /// The pool's name in the output.
    const NAME: &'static str;
    /// Whether holders may poison values (make their `reset` panic).
    const POISONABLE: bool;
    /// Whether the pool has `get_zeroed` (byte buffers).
    const ZEROED: bool = false;

    /// A value made outside the pool, with `bytes` of data capacity.
    fn foreign(bytes: usize) -> Self;
    /// The data buffer's capacity (what requests ask for).
    fn data_capacity(&self) -> usize;
    /// Whether a value just handed out for `n` bytes is as `get` promises:
    /// empty (nothing of a previous holder), not poisoned, big enough.
    fn check_fresh(&self, n: usize) -> Result<(), String>;
    /// Writes the holder's canary: `k` bytes of `token` (`k <=` capacity, so
    /// nothing reallocates), and the token field where there is one.
    fn stamp(&mut self, token: u64, k: usize);
    /// Whether the canary written by [`stamp`](Self::stamp) is intact.
    fn verify(&self, token: u64, k: usize) -> Result<(), String>;
    /// The data buffer's address (`None` without an allocation).
    fn addr(&self) -> Option<usize>;
    /// Grows the data buffer by at least `extra` bytes (it reallocates).
    fn grow(&mut self, extra: usize);
    /// Makes the next `reset` panic (records only).
    fn poison(&mut self) {}
    /// Whether [`poison`](Self::poison) was called since the last reset.
    fn poisoned(&self) -> bool {
        false
    }
    /// `get_zeroed(n)` where the pool has it (byte buffers).
    fn get_zeroed(_pool: &Pool<Self>, _n: usize) -> Option<PoolGuard<'_, Self>> {
        None
    }
    /// Whether a value from `get_zeroed(n)` holds exactly `n` zero bytes.
    fn check_zeroed(&self, _n: usize) -> Result<(), String> {
        Ok(())
    }
}

/// Byte `i` of the canary of `token`.
fn canary_byte(token: u64, i: usize) -> u8 {
    (token >> ((i % 8) * 8)) as u8 ^ (i / 8) as u8
}

/// Writes `k` canary bytes into an emptied buffer.
fn stamp_bytes(buf: &mut Vec<u8>, token: u64, k: usize) {
    debug_assert!(k <= buf.capacity());
    buf.clear();
    buf.extend((0..k).map(|i| canary_byte(token, i)));
}

/// Checks the `k` canary bytes of `token`.
fn verify_bytes(buf: &[u8], token: u64, k: usize) -> Result<(), String> {
    if buf.len() != k {
        return Err(format!("length {} where the holder left {k}", buf.len()));
    }
    match (0..k).find(|&i| buf[i] != canary_byte(token, i)) {
        None => Ok(()),
        Some(i) => Err(format!(
            "byte {i} is {:#04x}, the holder wrote {:#04x} (token {token:#x})",
            buf[i],
            canary_byte(token, i)
        )),
    }
}

/// Grows a buffer by reallocating it.
fn grow_bytes(buf: &mut Vec<u8>, extra: usize) {
    let want = buf.capacity() + extra.max(1);
    buf.reserve_exact(want - buf.len());
}

impl Subject for Vec<u8> {
    const NAME: &'static str = "buffers";
    const POISONABLE: bool = false;
    const ZEROED: bool = true;

    fn foreign(bytes: usize) -> Self {
        Vec::with_capacity(bytes)
    }
    fn data_capacity(&self) -> usize {
        self.capacity()
    }
    fn check_fresh(&self, n: usize) -> Result<(), String> {
        if !self.is_empty() {
            return Err(format!("handed out with {} bytes in it", self.len()));
        }
        if self.capacity() < n {
            return Err(format!("capacity {} for a request of {n}", self.capacity()));
        }
        Ok(())
    }
    fn stamp(&mut self, token: u64, k: usize) {
        stamp_bytes(self, token, k);
    }
    fn verify(&self, token: u64, k: usize) -> Result<(), String> {
        verify_bytes(self, token, k)
    }
    fn addr(&self) -> Option<usize> {
        (self.capacity() > 0).then_some(self.as_ptr() as usize)
    }
    fn grow(&mut self, extra: usize) {
        grow_bytes(self, extra);
    }
    fn get_zeroed(pool: &Pool<Self>, n: usize) -> Option<PoolGuard<'_, Self>> {
        Some(pool.get_zeroed(n))
    }
    fn check_zeroed(&self, n: usize) -> Result<(), String> {
        if self.len() != n {
            return Err(format!("get_zeroed({n}) gave {} bytes", self.len()));
        }
        match self.iter().position(|&b| b != 0) {
            None => Ok(()),
            Some(i) => Err(format!("get_zeroed({n}): byte {i} is {:#04x}", self[i])),
        }
    }
}

/// A pooled struct: a payload buffer (the capacity field), a token field,
/// and a flag that makes `reset` panic.
#[derive(Debug, zeropool::Poolable)]
pub struct Record {
    /// Reset first: a poisoned record panics before anything else is reset.
    #[poolable(reset = "explode_if_poisoned")]
    poisoned: bool,
    #[poolable(capacity)]
    payload: Vec<u8>,
    /// The holder's token (reset to 0).
    token: u64,
}

/// The `reset` of the `poisoned` field: a deliberate panic if it is set.
fn explode_if_poisoned(flag: &mut bool) {
    if std::mem::take(flag) {
        panics::deliberate();
    }
}

impl Subject for Record {
    const NAME: &'static str = "records";
    const POISONABLE: bool = true;

    fn foreign(bytes: usize) -> Self {
        Record {
            poisoned: false,
            payload: Vec::with_capacity(bytes),
            token: 0,
        }
    }
    fn data_capacity(&self) -> usize {
        self.payload.capacity()
    }
    fn check_fresh(&self, n: usize) -> Result<(), String> {
        if self.poisoned {
            return Err("handed out poisoned (its reset never ran)".into());
        }
        if self.token != 0 {
            return Err(format!(
                "handed out with token {:#x} of a holder",
                self.token
            ));
        }
        self.payload.check_fresh(n)
    }
    fn stamp(&mut self, token: u64, k: usize) {
        self.token = token;
        stamp_bytes(&mut self.payload, token, k);
    }
    fn verify(&self, token: u64, k: usize) -> Result<(), String> {
        if self.token != token {
            return Err(format!(
                "token field {:#x}, the holder wrote {token:#x}",
                self.token
            ));
        }
        verify_bytes(&self.payload, token, k)
    }
    fn addr(&self) -> Option<usize> {
        self.payload.addr()
    }
    fn grow(&mut self, extra: usize) {
        grow_bytes(&mut self.payload, extra);
    }
    fn poison(&mut self) {
        self.poisoned = true;
    }
    fn poisoned(&self) -> bool {
        self.poisoned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panics::Caught;

    #[test]
    fn a_stamp_checks_out_and_a_foreign_write_does_not() {
        let mut v = <Vec<u8> as Subject>::foreign(64);
        v.stamp(0x1234_5678_9abc_def1, 40);
        assert!(v.verify(0x1234_5678_9abc_def1, 40).is_ok());
        assert!(v.verify(0x1234_5678_9abc_def2, 40).is_err());
        v[17] ^= 1;
        assert!(v.verify(0x1234_5678_9abc_def1, 40).is_err());
        let mut r = Record::foreign(64);
        assert!(r.check_fresh(64).is_ok());
        r.stamp(9, 8);
        assert!(r.check_fresh(64).is_err(), "a stamped record is not fresh");
        assert!(r.verify(9, 8).is_ok());
        r.token = 10;
        assert!(r.verify(9, 8).is_err());
    }

    #[test]
    fn a_poisoned_record_panics_in_reset_once() {
        let mut r = Record::foreign(16);
        r.poison();
        let caught = panics::catch(|| r.reset());
        assert!(matches!(caught, Caught::ResetPanic), "{caught:?}");
        r.reset(); // the flag was taken: no second panic
    }
}
