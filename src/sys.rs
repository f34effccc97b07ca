//! The only module allowed `unsafe`: thin wrappers over syscalls that `nix`
//! does not cover. Each block says why it is sound.
#![allow(unsafe_code)]

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
