//! The only module allowed `unsafe`: thin wrappers over syscalls that `nix`
//! does not cover. Each block says why it is sound.
#![allow(unsafe_code)]

mod mem;

use std::io;

/// `SYSLOG_ACTION_SIZE_BUFFER` from include/linux/syslog.h.
const SYSLOG_ACTION_SIZE_BUFFER: libc::c_int = 10;

/// Size in bytes of the kernel log buffer, from `syslog(2)`.
///
/// Needs CAP_SYSLOG when `kernel.dmesg_restrict` is 1; the caller falls back
/// to the kernel command line and build configuration.
pub fn kernel_log_buffer_size() -> io::Result<u64> {
    // SAFETY: SIZE_BUFFER ignores the buffer pointer and length (the kernel
    // only writes through the pointer for READ actions), so a null pointer
    // and 0 are valid arguments.
    let r = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(u64::from(r.unsigned_abs()))
    }
}

/// Bytes written to a TCP socket that the peer has not acknowledged yet
/// (`SIOCOUTQ`, which is `TIOCOUTQ` on Linux). The forwarder uses it to
/// tell whether a receiver that closed had taken everything.
pub fn tcp_unacked(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int through the pointer, which points to
    // a live, aligned c_int; the descriptor is borrowed, so it is open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(u64::from(n.unsigned_abs()))
    }
}

/// The socket's drop counter, `SK_MEMINFO_DROPS` of `SO_MEMINFO` (Linux
/// 4.6+; older kernels answer `ENOPROTOOPT`): datagrams the kernel
/// discarded because the receive buffer was full. The same counter
/// `SO_RXQ_OVFL` attaches to each datagram, read once per batch instead.
pub fn socket_drops(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    /// `SK_MEMINFO_DROPS` and `SK_MEMINFO_VARS` of linux/sock_diag.h.
    const DROPS: usize = 8;
    const VARS: usize = 9;
    let mut info = [0u32; VARS];
    let mut len = libc::socklen_t::try_from(std::mem::size_of_val(&info)).unwrap_or(0);
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is
    // that long, and stores the length it wrote in `len`; the descriptor is
    // borrowed, so it is open.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) <= DROPS * std::mem::size_of::<u32>() {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    Ok(info[DROPS])
}

/// Asks the kernel to drop this process's page mappings of its own code
/// and read-only data (the executable's mappings that hold no private,
/// modified page: `Anonymous: 0 kB` in `/proc/self/smaps`), as the kernel
/// frees its own `__init` text after boot. The pages stay in the page
/// cache; what runs afterwards is mapped again on first use. A daemon
/// calls it once its start-up (argument parsing, configuration, sockets)
/// is over: otherwise that code stays in its resident set for its whole
/// life, mapped in 64 KiB windows by the kernel's fault-around. Mappings
/// that were written to (relocated data) are never touched. Returns the
/// bytes of mappings released.
pub fn release_code_pages() -> io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy();
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for (range, anonymous) in own_clean_mappings(&smaps, &exe) {
        let Some(len) = range.1.checked_sub(range.0).filter(|l| *l > 0) else {
            continue;
        };
        if anonymous != 0 {
            continue;
        }
        // SAFETY: the range is a whole mapping of this process's own
        // executable, read-only and unmodified (no anonymous page): after
        // MADV_DONTNEED its pages read back from the same file, whose
        // inode cannot change under a running executable (ETXTBSY). The
        // range is not used as a Rust object.
        let r = unsafe { libc::madvise(range.0 as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if r == 0 {
            released += len;
        }
    }
    Ok(released)
}

/// The read-only mappings of `exe` in a `/proc/PID/smaps` text, each with
/// its `Anonymous:` kilobytes.
fn own_clean_mappings(smaps: &str, exe: &str) -> Vec<((usize, usize), u64)> {
    let mut out: Vec<((usize, usize), u64)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                let perms = f.next().unwrap_or("");
                // offset, device, inode, then the path (may hold spaces).
                let path = line
                    .splitn(6, char::is_whitespace)
                    .nth(5)
                    .unwrap_or("")
                    .trim();
                current = (path == exe && perms.starts_with('r') && !perms.contains('w'))
                    .then_some((a, b));
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some(r) = current.take() {
                let kb = f.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
                out.push((r, kb));
            }
        }
    }
    out
}

/// Whether `text` is printable ASCII, tabs and `also` only (udplogger's
/// check of every received line). Here because the check of a
/// datagram's worth of bytes runs compiled for AVX2 where the CPU has it
/// (32 bytes a step instead of the 16 of the SSE2 that every x86_64 has
/// and the binary is built for), which takes `unsafe`.
#[inline]
pub fn printable_or(text: &[u8], also: u8) -> bool {
    #[cfg(target_arch = "x86_64")]
    if text.len() >= 128 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just now.
        return unsafe { printable_or_avx2(text, also) };
    }
    printable_or_any(text, also)
}

/// [`printable_or_any`] compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn printable_or_avx2(text: &[u8], also: u8) -> bool {
    printable_or_any(text, also)
}

/// Checked in blocks with no early exit inside a block, so that the
/// compiler vectorises it.
#[inline(always)]
fn printable_or_any(text: &[u8], also: u8) -> bool {
    text.chunks(64).all(|c| {
        c.iter().fold(true, |ok, &b| {
            ok & ((b.wrapping_sub(0x20) < 0x5f) | (b == b'\t') | (b == also))
        })
    })
}

#[cfg(test)]
mod printable_tests {
    use super::printable_or;

    /// Every length up to 300 (both the AVX2 and the plain path, and
    /// every tail of a 64-byte block), each kind of byte at every place.
    #[test]
    fn printable_or_agrees_with_a_byte_model() {
        let model = |t: &[u8], also: u8| {
            t.iter()
                .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t' || b == also)
        };
        for len in 0..300 {
            let base: Vec<u8> = (0..len)
                .map(|i| b' ' + u8::try_from(i % 95).unwrap())
                .collect();
            assert!(printable_or(&base, b'\n'), "{len}");
            for at in 0..len {
                for b in [0u8, b'\t', b'\n', b'\r', 0x1f, 0x7e, 0x7f, 0x80, 0xff] {
                    let mut t = base.clone();
                    t[at] = b;
                    assert_eq!(printable_or(&t, b'\n'), model(&t, b'\n'), "{len} {at} {b}");
                    assert_eq!(printable_or(&t, b'\t'), model(&t, b'\t'), "{len} {at} {b}");
                }
            }
        }
    }
}

/// Room for one `SO_RXQ_OVFL` control message (a `u32`), in `u64` words so
/// the buffer has the alignment `cmsghdr` needs.
const CMSG_WORDS: usize = 4;

/// One received datagram, borrowed from a [`RecvBatch`].
#[derive(Debug)]
pub struct Datagram<'a> {
    pub data: &'a [u8],
    /// The sender; `None` only for an address family we do not handle.
    pub addr: Option<std::net::SocketAddr>,
    /// The socket's drop counter when this datagram was queued
    /// (`SO_RXQ_OVFL`); the kernel only attaches it once it is non-zero.
    pub drops: Option<u32>,
}

/// Preallocated buffers for `recvmmsg(2)`: many datagrams per system call.
///
/// Written here rather than with `nix::sys::socket::recvmmsg` because that
/// wrapper does not reset `msg_controllen` between calls: after a datagram
/// without a drop counter the next call on that slot has no room for one,
/// and kernel drops would go unreported.
pub struct RecvBatch {
    slot: usize,
    bufs: Vec<u8>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<[u64; CMSG_WORDS]>,
    hdrs: Vec<libc::mmsghdr>,
    received: usize,
}

impl RecvBatch {
    /// `count` slots of `slot` bytes each. Pages of a slot are only made
    /// resident when a datagram that long arrives.
    pub fn new(count: usize, slot: usize) -> RecvBatch {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs
        // for which all-zero bytes is a valid value.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        RecvBatch {
            slot,
            bufs: vec![0; count * slot],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                count
            ],
            addrs: vec![zero_addr; count],
            cmsgs: vec![[0; CMSG_WORDS]; count],
            hdrs: vec![zero_hdr; count],
            received: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Receives up to `capacity()` datagrams without blocking. Returns how
    /// many arrived; `WouldBlock` when none was queued.
    pub fn recv(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        self.received = 0;
        let base = self.bufs.as_mut_ptr();
        for i in 0..self.hdrs.len() {
            // SAFETY: i * slot is within `bufs`, which holds count * slot
            // bytes and is never resized.
            self.iovs[i].iov_base = unsafe { base.add(i * self.slot) }.cast();
            self.iovs[i].iov_len = self.slot;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = std::ptr::addr_of_mut!(self.addrs[i]).cast();
            h.msg_namelen =
                libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_storage>())
                    .unwrap_or(libc::socklen_t::MAX);
            h.msg_iov = std::ptr::addr_of_mut!(self.iovs[i]);
            h.msg_iovlen = 1;
            h.msg_control = self.cmsgs[i].as_mut_ptr().cast();
            // 32 bytes; size_t on glibc, socklen_t on musl.
            #[allow(clippy::cast_possible_truncation)]
            {
                h.msg_controllen = std::mem::size_of::<[u64; CMSG_WORDS]>() as _;
            }
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // glibc declares the flags `int`, musl `unsigned int`.
        #[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
        let flags = libc::MSG_DONTWAIT as _;
        let n = libc::c_uint::try_from(self.hdrs.len()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: every header points at buffers owned by `self` that live
        // as long as this call and are as long as the lengths say; `n` is
        // at most the number of headers; a null timeout is allowed.
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n,
                flags,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = usize::try_from(r).unwrap_or(0);
        Ok(self.received)
    }

    /// The `i`th datagram of the last `recv`.
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.received {
            return None;
        }
        let m = &self.hdrs[i];
        let len = (m.msg_len as usize).min(self.slot);
        let data = &self.bufs[i * self.slot..i * self.slot + len];
        let h = &m.msg_hdr;
        Some(Datagram {
            data,
            addr: sockaddr_to_std(&self.addrs[i], h.msg_namelen),
            drops: rxq_ovfl(h),
        })
    }
}

fn sockaddr_to_std(
    ss: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    let len = len as usize;
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, the
            // kernel wrote at least that many bytes, and sockaddr_storage is
            // aligned for every sockaddr type.
            let a = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn rxq_ovfl(h: &libc::msghdr) -> Option<u32> {
    // glibc's msg_controllen is size_t, musl's socklen_t.
    #[allow(clippy::unnecessary_cast)]
    let controllen = h.msg_controllen as usize;
    if h.msg_control.is_null() || controllen < std::mem::size_of::<libc::cmsghdr>() {
        return None;
    }
    // SAFETY: the header's control pointer and length were set by us and
    // updated by the kernel to the bytes it wrote; CMSG_FIRSTHDR/NXTHDR
    // stay inside that range and return null at its end.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                let p = libc::CMSG_DATA(c).cast::<u32>();
                return Some(std::ptr::read_unaligned(p));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// `openat(2)`: `name` relative to the directory `dir`, as an owned
/// descriptor. With `O_NOFOLLOW`, a symbolic link as `name` is refused
/// (ELOOP), which is what keeps writes inside a directory tree.
pub fn openat(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::path::Path,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, mode)?;
    // SAFETY: openat(2) just returned this descriptor: it is open and
    // nothing else owns it, so the OwnedFd may close it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod release_tests {
    use super::*;

    #[test]
    fn only_unwritten_read_only_mappings_of_the_executable_are_named() {
        let smaps = "\
55d0a0000000-55d0a0002000 r--p 00000000 fe:00 123    /usr/bin/watchdog
Rss:                   8 kB
Anonymous:             0 kB
55d0a0002000-55d0a04f9000 r-xp 00002000 fe:00 123    /usr/bin/watchdog
Rss:                2656 kB
Anonymous:             0 kB
55d0a04f9000-55d0a061a000 r--p 004f9000 fe:00 123    /usr/bin/watchdog
Anonymous:            12 kB
55d0a061a000-55d0a0650000 rw-p 0061a000 fe:00 123    /usr/bin/watchdog
Anonymous:           216 kB
7f0000000000-7f0000001000 r-xp 00000000 fe:00 999    /usr/lib/other
Anonymous:             0 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0      [stack]
Anonymous:            20 kB
";
        let got = own_clean_mappings(smaps, "/usr/bin/watchdog");
        assert_eq!(
            got,
            vec![
                ((0x55d0_a000_0000, 0x55d0_a000_2000), 0),
                ((0x55d0_a000_2000, 0x55d0_a04f_9000), 0),
                // Named with its private pages: the caller leaves it.
                ((0x55d0_a04f_9000, 0x55d0_a061_a000), 12),
            ]
        );
    }

    #[test]
    fn releasing_code_pages_leaves_a_working_process() {
        // Whatever it released, this test's own code still runs.
        let n = release_code_pages().unwrap();
        assert!(n > 0);
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
