//! `memcpy` and `memmove` for the static musl build.
//!
//! musl's x86_64 `memcpy` copies with `rep movsq` and byte-wise `movsb`
//! loops: 40–60 ns for a copy of 7 to 300 bytes on the development
//! machines (glibc: 3–7 ns; a bare `rep movsb`: 8–20 ns). The receive
//! paths copy many short pieces (a time stamp, an address, a line), so
//! the static binary spent about a third of udplogger's CPU in `memcpy`
//! (`perf`, docs/udplogger.md). These two replace musl's in that build
//! only (musl's `memmove` jumps into its `memcpy`, so both go):
//!
//! - up to 32 bytes: two overlapping unaligned loads, then two stores
//!   (every byte is loaded before any is stored, so overlap is harmless);
//! - longer, forward: `rep movsb`, which CPUs with ERMS/FSRM (Ivy Bridge
//!   and later, every x86_64 server RHEL 8+ supports) run at full speed;
//! - longer, backward (an overlapping move to a higher address): `rep
//!   movsb` with the direction flag set.
//!
//! No loops: a load/store loop here could be turned back into a call to
//! `memcpy` by the compiler. Unit tests compare both directions with a
//! byte-by-byte model for every length up to 300 and every overlap.

use std::arch::asm;

/// Copies `n <= 32` bytes, loading all of them before storing any.
///
/// # Safety
/// `src..src+n` readable, `dst..dst+n` writable (they may overlap).
#[inline(always)]
unsafe fn small(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: each access lies within the first or last `k` bytes of
    // the `n`-byte ranges the caller vouches for, with `k <= n`;
    // unaligned accesses are what `read_unaligned` and `write_unaligned`
    // are for.
    unsafe {
        if n >= 16 {
            let a = src.cast::<u128>().read_unaligned();
            let b = src.add(n - 16).cast::<u128>().read_unaligned();
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
        } else if n >= 8 {
            let a = src.cast::<u64>().read_unaligned();
            let b = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        } else if n >= 4 {
            let a = src.cast::<u32>().read_unaligned();
            let b = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        } else if n >= 2 {
            let a = src.cast::<u16>().read_unaligned();
            let b = src.add(n - 2).cast::<u16>().read_unaligned();
            dst.cast::<u16>().write_unaligned(a);
            dst.add(n - 2).cast::<u16>().write_unaligned(b);
        } else if n == 1 {
            dst.write(src.read());
        }
    }
}

/// `memmove`: copies `n` bytes from `src` to `dst`; the ranges may
/// overlap.
///
/// # Safety
/// `src..src+n` readable, `dst..dst+n` writable.
#[cfg_attr(not(target_env = "musl"), allow(dead_code))]
pub unsafe fn move_bytes(dst: *mut u8, src: *const u8, n: usize) {
    if n <= 32 {
        // SAFETY: the caller's ranges, n <= 32.
        unsafe { small(dst, src, n) };
        return;
    }
    let (d, s) = (dst as usize, src as usize);
    if d.wrapping_sub(s) >= n {
        // `dst` is below `src` or past its end: a forward copy never
        // overwrites a byte before reading it.
        // SAFETY: rep movsb copies rcx bytes from [rsi] to [rdi] upward
        // (the direction flag is clear at every call by the ABI); both
        // ranges are the caller's.
        unsafe {
            asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags)
            );
        }
    } else {
        // `dst` is inside `src..src+n`: copy from the last byte down.
        // SAFETY: with the direction flag set, rep movsb copies rcx bytes
        // downward from the given last bytes, which lie in the caller's
        // ranges; the flag is cleared again, as the ABI requires.
        unsafe {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dst.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack)
            );
        }
    }
}

/// The C library's `memcpy`, for the static musl build.
///
/// # Safety
/// As `memcpy(3)`: `src..src+n` readable, `dst..dst+n` writable.
#[cfg(all(target_env = "musl", not(test)))]
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract is move_bytes's (which also allows
    // the overlap memcpy's callers promise not to have).
    unsafe { move_bytes(dst, src, n) };
    dst
}

/// The C library's `memmove`, for the static musl build.
///
/// # Safety
/// As `memmove(3)`.
#[cfg(all(target_env = "musl", not(test)))]
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract is move_bytes's.
    unsafe { move_bytes(dst, src, n) };
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length to 300, every overlap in both directions, every
    /// alignment of the first 16: the same bytes as a byte-wise model.
    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn moves_match_a_byte_by_byte_model() {
        let init: Vec<u8> = (0..1024u32)
            .map(|i| ((i * 7 + i / 251) % 256) as u8)
            .collect();
        for n in 0..=300usize {
            for (src, dst) in [(0, 400), (400, 0), (16, 3), (3, 16)]
                .into_iter()
                .chain((0..40).map(|k| (100, 100 + k)))
                .chain((0..40).map(|k| (140, 140 - k)))
                .chain((0..16).map(|a| (a, 600 + (a * 5) % 16)))
            {
                let mut got = init.clone();
                let mut want = init.clone();
                let tmp: Vec<u8> = want[src..src + n].to_vec();
                want[dst..dst + n].copy_from_slice(&tmp);
                let p = got.as_mut_ptr();
                // SAFETY: both ranges lie inside `got` (1024 bytes).
                unsafe { move_bytes(p.add(dst), p.add(src), n) };
                assert_eq!(got, want, "n={n} src={src} dst={dst}");
            }
        }
    }
}
