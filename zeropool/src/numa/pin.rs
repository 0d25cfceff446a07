//! `pinned = true`: locking pool memory in RAM with `mlock`, and saying
//! why when the locked-memory limit refuses.
//!
//! `mlock` acts on whole pages, so it also locks the ends of neighbouring
//! allocations that share the area's first and last page. Locks do not nest:
//! [`unpin`] unlocks those shared pages for the neighbour too. The pool
//! unpins only memory it is about to free, so the worst case is a
//! neighbour's edge page becoming swappable.

use crate::ByteSize;
use std::fmt;
use std::io;
use std::mem::MaybeUninit;

/// Pinning failed; the memory stays usable, only unpinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PinError {
    /// The OS error number (`EPERM`, `ENOMEM`, `EAGAIN`, ...).
    pub(crate) errno: i32,
    message: String,
}

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `RLIMIT_MEMLOCK`: bytes a process may lock, `None` meaning unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemlockLimit {
    pub(crate) soft: Option<u64>,
    pub(crate) hard: Option<u64>,
}

/// Locks the pages of `area` in RAM.
///
/// # Errors
/// The OS refused; the message names the size, the OS error and (for a
/// refusal the limit explains) the `RLIMIT_MEMLOCK` soft and hard limits.
pub(crate) fn pin(area: &[MaybeUninit<u8>]) -> Result<(), PinError> {
    if area.is_empty() {
        return Ok(());
    }
    lock(area, true).map_err(|err| PinError {
        errno: err.raw_os_error().unwrap_or(0),
        message: failure_message(area.len(), &err, memlock_limit()),
    })
}

/// Unlocks the pages of `area` (see the module docs for shared pages).
///
/// # Errors
/// The OS refused (the area was not mapped).
#[cfg_attr(not(test), allow(dead_code))] // pool memory stays locked until freed
pub(crate) fn unpin(area: &[MaybeUninit<u8>]) -> Result<(), PinError> {
    if area.is_empty() {
        return Ok(());
    }
    lock(area, false).map_err(|err| PinError {
        errno: err.raw_os_error().unwrap_or(0),
        message: format!("cannot unpin {} bytes (munlock: {err})", area.len()),
    })
}

#[cfg(all(unix, not(miri)))]
fn lock(area: &[MaybeUninit<u8>], on: bool) -> io::Result<()> {
    let (ptr, len) = (area.as_ptr().cast::<libc::c_void>(), area.len());
    // SAFETY: `ptr .. ptr + len` is the borrowed slice `area`, mapped memory
    // of this process for the whole call. mlock/munlock read and write none
    // of it: they change only whether its pages may be swapped out.
    let rc = unsafe {
        if on {
            libc::mlock(ptr, len)
        } else {
            libc::munlock(ptr, len)
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn lock(_area: &[MaybeUninit<u8>], _on: bool) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "memory locking is only implemented on Unix",
    ))
}

/// Miri cannot call `mlock`: pinning fails as on a system without it, so
/// the pool's `pinned` path (and the failure it reports) still runs there.
#[cfg(all(unix, miri))]
fn lock(_area: &[MaybeUninit<u8>], _on: bool) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "memory locking is not available under Miri",
    ))
}

/// This process's `RLIMIT_MEMLOCK`, if the OS can say (not under Miri,
/// which cannot call `getrlimit`).
pub(crate) fn memlock_limit() -> Option<MemlockLimit> {
    #[cfg(all(unix, not(miri)))]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit that getrlimit fills in;
        // nothing else is read or written.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
        // rlim_t is u64 on 64-bit Linux, narrower on some targets.
        #[allow(clippy::unnecessary_cast)]
        let bytes = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v as u64);
        (rc == 0).then(|| MemlockLimit {
            soft: bytes(lim.rlim_cur),
            hard: bytes(lim.rlim_max),
        })
    }
    #[cfg(any(not(unix), miri))]
    {
        None
    }
}

/// The report of a refused `mlock` of `len` bytes: what, why, the limit in
/// bytes, and how to raise it.
fn failure_message(len: usize, err: &io::Error, limit: Option<MemlockLimit>) -> String {
    let mut msg = format!("cannot pin {len} bytes of pool memory (mlock: {err})");
    let limited = matches!(
        err.raw_os_error(),
        Some(libc::EPERM | libc::ENOMEM | libc::EAGAIN)
    );
    if limited {
        match limit {
            Some(MemlockLimit { soft, hard }) => {
                let show = |v: Option<u64>| match v {
                    Some(b) => format!("{b} bytes ({})", ByteSize(b)),
                    None => "unlimited".to_string(),
                };
                msg.push_str(&format!(
                    ": the locked-memory limit RLIMIT_MEMLOCK is {} (soft), {} (hard); raise it \
                     (`ulimit -l`, systemd `LimitMEMLOCK=`, /etc/security/limits.conf) or grant \
                     CAP_IPC_LOCK",
                    show(soft),
                    show(hard)
                ));
            }
            None => msg.push_str(": the locked-memory limit RLIMIT_MEMLOCK could not be read"),
        }
    }
    msg.push_str("; the memory stays in use, unpinned");
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot call mlock")]
    fn pinning_a_small_buffer_works_here() {
        let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
        let area = buf.spare_capacity_mut();
        // Root, or a limit above 16 KiB (the usual default is 8 MiB): works.
        pin(area).unwrap();
        unpin(area).unwrap();
        assert_eq!(pin(&[]), Ok(()));
    }

    #[test]
    fn the_message_names_the_limit_in_bytes() {
        let err = io::Error::from_raw_os_error(libc::ENOMEM);
        let limit = MemlockLimit {
            soft: Some(65536),
            hard: Some(8 << 20),
        };
        let msg = failure_message(1 << 20, &err, Some(limit));
        assert!(
            msg.starts_with("cannot pin 1048576 bytes of pool memory (mlock: "),
            "{msg}"
        );
        assert!(
            msg.contains(
                "RLIMIT_MEMLOCK is 65536 bytes (64 KiB) (soft), 8388608 bytes (8 MiB) (hard)"
            ),
            "{msg}"
        );
        assert!(msg.contains("CAP_IPC_LOCK"), "{msg}");
        assert!(msg.ends_with("the memory stays in use, unpinned"), "{msg}");

        let unlimited = MemlockLimit {
            soft: Some(0),
            hard: None,
        };
        let msg = failure_message(
            4096,
            &io::Error::from_raw_os_error(libc::EPERM),
            Some(unlimited),
        );
        assert!(
            msg.contains("is 0 bytes (0 B) (soft), unlimited (hard)"),
            "{msg}"
        );

        let msg = failure_message(4096, &err, None);
        assert!(msg.contains("RLIMIT_MEMLOCK could not be read"), "{msg}");
    }

    #[test]
    fn other_failures_do_not_blame_the_limit() {
        let msg = failure_message(
            4096,
            &io::Error::from_raw_os_error(libc::EINVAL),
            Some(MemlockLimit {
                soft: Some(1),
                hard: Some(1),
            }),
        );
        assert!(!msg.contains("RLIMIT_MEMLOCK"), "{msg}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot call getrlimit")]
    fn the_limit_is_readable_here() {
        let limit = memlock_limit().expect("getrlimit works on Linux");
        if let (Some(soft), Some(hard)) = (limit.soft, limit.hard) {
            assert!(soft <= hard);
        }
    }

    #[test]
    fn pin_error_carries_the_message() {
        let e = PinError {
            errno: libc::ENOMEM,
            message: failure_message(
                8,
                &io::Error::from_raw_os_error(libc::ENOMEM),
                memlock_limit(),
            ),
        };
        assert!(e.to_string().contains("RLIMIT_MEMLOCK"));
    }
}
