//! `memcpy`, `memmove`, `memcmp` and `bcmp` for the static musl build.
//!
//! musl's x86_64 `memcpy` copies with `rep movsq` and byte-wise `movsb`
//! loops: 40–60 ns for a copy of 7 to 300 bytes on the development
//! machines (glibc: 3–7 ns; a bare `rep movsb`: 8–20 ns). The receive
//! paths copy many short pieces (a time stamp, an address, a line), so
//! the static binary spent about a third of udplogger's CPU in `memcpy`
//! (`perf`, docs/udplogger.md). These replace musl's in that build only
//! (musl's `memmove` jumps into its `memcpy`, so both go):
//!
//! - up to 32 bytes: two overlapping unaligned loads, then two stores
//!   (every byte is loaded before any is stored, so overlap is harmless);
//! - longer, forward: `rep movsb`, which CPUs with ERMS/FSRM (Ivy Bridge
//!   and later, every x86_64 server RHEL 8+ supports) run at full speed;
//! - longer, backward (an overlapping move to a higher address): `rep
//!   movsb` with the direction flag set.
//!
//! musl's `memcmp` and `bcmp` compare byte by byte too: `==` on a
//! file's key or a host name (10–40 bytes, once per record) took about
//! 70 instructions. Ours compares eight bytes at a time and the tail as
//! one overlapping word.
//!
//! No byte loops: a load/store loop here could be turned back into a
//! call to `memcpy` by the compiler. Unit tests compare both directions
//! with a byte-by-byte model for every length up to 300 and every
//! overlap, and comparisons with one for every length up to 40 and every
//! place of the first difference.

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

/// Big-endian order of two words read from memory: the order of their
/// bytes compared one by one, first byte first.
fn word_order(x: u64, y: u64) -> i32 {
    if u64::from_be(x) < u64::from_be(y) {
        -1
    } else {
        1
    }
}

/// `memcmp`: compares `n` bytes as unsigned bytes, first byte first;
/// negative, zero or positive. Eight bytes at a time, the last eight
/// (or four, or two) read again overlapping the words before them: a
/// difference found there is the first, since the bytes before it were
/// equal. Only the word loop loops (see the module).
///
/// # Safety
/// `a..a+n` and `b..b+n` readable.
#[cfg_attr(not(target_env = "musl"), allow(dead_code))]
pub unsafe fn compare_bytes(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: every read below lies within the first or last `k` bytes
    // of the caller's `n`-byte ranges, with `k <= n`; unaligned reads are
    // what `read_unaligned` is for.
    unsafe {
        let word = |p: *const u8, at: usize| p.add(at).cast::<u64>().read_unaligned();
        if n >= 8 {
            let mut i = 0;
            while i + 8 <= n {
                let (x, y) = (word(a, i), word(b, i));
                if x != y {
                    return word_order(x, y);
                }
                i += 8;
            }
            if i < n {
                let (x, y) = (word(a, n - 8), word(b, n - 8));
                if x != y {
                    return word_order(x, y);
                }
            }
            return 0;
        }
        // Shorter: the first and the last `k` bytes as one number each.
        let ends = |p: *const u8, k: usize| -> (u64, u64) {
            match k {
                4 => (
                    u64::from(u32::from_be(p.cast::<u32>().read_unaligned())),
                    u64::from(u32::from_be(p.add(n - 4).cast::<u32>().read_unaligned())),
                ),
                2 => (
                    u64::from(u16::from_be(p.cast::<u16>().read_unaligned())),
                    u64::from(u16::from_be(p.add(n - 2).cast::<u16>().read_unaligned())),
                ),
                _ => (u64::from(p.read()), u64::from(p.read())),
            }
        };
        let k = match n {
            4..=7 => 4,
            2..=3 => 2,
            1 => 1,
            _ => return 0,
        };
        let ((a0, a1), (b0, b1)) = (ends(a, k), ends(b, k));
        match (a0.cmp(&b0), a1.cmp(&b1)) {
            (std::cmp::Ordering::Less, _) => -1,
            (std::cmp::Ordering::Greater, _) => 1,
            (_, std::cmp::Ordering::Less) => -1,
            (_, std::cmp::Ordering::Greater) => 1,
            _ => 0,
        }
    }
}

/// The C library's `memcmp`, for the static musl build (musl's compares
/// byte by byte: `==` on a short key cost more than hashing it).
///
/// Never inlined: link-time optimisation would otherwise copy its body
/// into every comparison of the program, the standard library's sorts
/// included (230 KB more binary), where a call did before.
///
/// # Safety
/// As `memcmp(3)`.
#[cfg(all(target_env = "musl", not(test)))]
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract is compare_bytes's.
    unsafe { compare_bytes(a, b, n) }
}

/// The C library's `bcmp` (zero when equal), which the compiler calls for
/// `==` on byte slices, for the static musl build.
///
/// Never inlined, as `memcmp`.
///
/// # Safety
/// As `bcmp(3)`.
#[cfg(all(target_env = "musl", not(test)))]
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract is compare_bytes's.
    unsafe { compare_bytes(a, b, n) }
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

    /// Every length to 40, a difference (either way) at every place or
    /// none, every alignment of the first 8: the sign `memcmp(3)` gives,
    /// from a byte-by-byte model.
    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn compares_match_a_byte_by_byte_model() {
        let base: Vec<u8> = (0..64u32).map(|i| ((i * 37 + 11) % 256) as u8).collect();
        for n in 0..=40usize {
            for align in 0..8 {
                let a = &base[align..align + n];
                for at in (0..n).map(Some).chain([None]) {
                    for delta in [1u8, 255, 128] {
                        let mut b = a.to_vec();
                        if let Some(i) = at {
                            b[i] = b[i].wrapping_add(delta);
                        }
                        let want = a.cmp(&b[..]) as i32;
                        // SAFETY: both slices hold `n` bytes.
                        let got = unsafe { compare_bytes(a.as_ptr(), b.as_ptr(), n) };
                        assert_eq!(
                            got.signum(),
                            want,
                            "n={n} align={align} at={at:?} delta={delta}"
                        );
                        // SAFETY: as above.
                        let back = unsafe { compare_bytes(b.as_ptr(), a.as_ptr(), n) };
                        assert_eq!(back.signum(), -want, "n={n} at={at:?} reversed");
                    }
                }
            }
        }
    }

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
