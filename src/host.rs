//! The one door into the kernel's files.
//!
//! Every path under /proc, /sys, /dev, /etc or /boot that watchdog touches is
//! named here, relative to a root directory (`/` in production, a fixture
//! tree under `--root` in tests). No other module spells such a path, so a
//! fixture tree can stand in for a whole host and every read has one place
//! that bounds its size and words its errors.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Kernel and system files, relative to the host root.
///
/// Kept in one table so an audit of "what does watchdog read or write" is a
/// look at this module.
pub mod paths {
    pub const OSRELEASE: &str = "proc/sys/kernel/osrelease";
    pub const HOSTNAME: &str = "proc/sys/kernel/hostname";
    pub const CMDLINE: &str = "proc/cmdline";
    pub const LOADAVG: &str = "proc/loadavg";
    pub const MEMINFO: &str = "proc/meminfo";
    pub const UPTIME: &str = "proc/uptime";
    pub const MOUNTS: &str = "proc/mounts";
    pub const FILESYSTEMS: &str = "proc/filesystems";
    pub const PROC: &str = "proc";
    pub const CONFIG_GZ: &str = "proc/config.gz";
    pub const SYSRQ_TRIGGER: &str = "proc/sysrq-trigger";
    pub const SYSRQ: &str = "proc/sys/kernel/sysrq";
    pub const HUNG_TASK_TIMEOUT: &str = "proc/sys/kernel/hung_task_timeout_secs";
    pub const HUNG_TASK_WARNINGS: &str = "proc/sys/kernel/hung_task_warnings";
    pub const HUNG_TASK_PANIC: &str = "proc/sys/kernel/hung_task_panic";
    pub const PANIC: &str = "proc/sys/kernel/panic";
    pub const PANIC_ON_OOPS: &str = "proc/sys/kernel/panic_on_oops";
    pub const SOFTLOCKUP_PANIC: &str = "proc/sys/kernel/softlockup_panic";
    pub const PANIC_ON_OOM: &str = "proc/sys/vm/panic_on_oom";
    pub const VFS_CACHE_PRESSURE: &str = "proc/sys/vm/vfs_cache_pressure";
    pub const DENTRY_STATE: &str = "proc/sys/fs/dentry-state";
    pub const KEXEC_CRASH_LOADED: &str = "sys/kernel/kexec_crash_loaded";
    pub const KEXEC_CRASH_SIZE: &str = "sys/kernel/kexec_crash_size";
    pub const PRINTK_TIME: &str = "sys/module/printk/parameters/time";
    pub const NETCONSOLE_CONFIGFS: &str = "sys/kernel/config/netconsole";
    pub const NETCONSOLE_MODULE: &str = "sys/module/netconsole";
    pub const NETCONSOLE_SYSCONFIG: &str = "etc/sysconfig/netconsole";
    pub const TRACEFS: &str = "sys/kernel/tracing";
    pub const DEBUGFS_TRACING: &str = "sys/kernel/debug/tracing";
    pub const BOOT: &str = "boot";
    pub const KMSG: &str = "dev/kmsg";
    pub const BOOT_ID: &str = "proc/sys/kernel/random/boot_id";
    pub const VMSTAT: &str = "proc/vmstat";
    pub const HUNG_TASK_DETECT_COUNT: &str = "proc/sys/kernel/hung_task_detect_count";
    pub const SELF_OOM_SCORE_ADJ: &str = "proc/self/oom_score_adj";
    pub const SLABINFO: &str = "proc/slabinfo";
    pub const BUDDYINFO: &str = "proc/buddyinfo";
    pub const ZONEINFO: &str = "proc/zoneinfo";
    /// PSI files (`cpu`, `memory`, `io`, `irq`; since Linux 4.20).
    pub const PRESSURE: &str = "proc/pressure";
    /// The pstore file system (records of earlier boots' crashes).
    pub const PSTORE: &str = "sys/fs/pstore";
    /// The registered pstore backend (`ramoops`, `efi_pstore`, `erst`).
    pub const PSTORE_BACKEND: &str = "sys/module/pstore/parameters/backend";
    pub const RAMOOPS_MEM_SIZE: &str = "sys/module/ramoops/parameters/mem_size";
    pub const EFI_PSTORE_MODULE: &str = "sys/module/efi_pstore";
    pub const EFI_FIRMWARE: &str = "sys/firmware/efi";
    pub const ACPI_ERST: &str = "sys/firmware/acpi/tables/ERST";
    /// Where systemd-pstore archives pstore records.
    pub const SYSTEMD_PSTORE: &str = "var/lib/systemd/pstore";
    pub const KDUMP_CONF: &str = "etc/kdump.conf";
    /// The persistent journal (its presence makes Storage=auto persistent).
    pub const JOURNAL_DIR: &str = "var/log/journal";
    pub const JOURNALD_CONF: &str = "etc/systemd/journald.conf";
    pub const VAR_LOG: &str = "var/log";
    pub const VAR_LOG_MESSAGES: &str = "var/log/messages";
    pub const VAR_LOG_KERN: &str = "var/log/kern.log";
}

/// Largest file watchdog reads whole. /proc and /sys values are a few bytes;
/// anything bigger than this is not the file we expected.
pub const MAX_READ: u64 = 1 << 20;

/// Why a read under the root failed, with the path it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    NotFound,
    PermissionDenied,
    /// Larger than the limit the caller gave.
    TooLarge(u64),
    NotUtf8,
    NotRegular,
    Io(String),
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        self.kind == ReadErrorKind::NotFound
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            ReadErrorKind::NotFound => write!(f, "{p}: no such file"),
            ReadErrorKind::PermissionDenied => write!(f, "{p}: permission denied"),
            ReadErrorKind::TooLarge(limit) => write!(f, "{p}: larger than {limit} bytes"),
            ReadErrorKind::NotUtf8 => write!(f, "{p}: not valid UTF-8 text"),
            ReadErrorKind::NotRegular => write!(f, "{p}: not a regular file"),
            ReadErrorKind::Io(e) => write!(f, "{p}: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// A host as seen through its root directory.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    /// The running system.
    pub fn system() -> Host {
        Host::new("/")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when this is the live system, so that syscalls (which cannot be
    /// redirected into a fixture tree) describe the same host as the files.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Absolute path of a file under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Reads at most `limit` bytes; a longer file is an error rather than a
    /// silent truncation (a truncated number would be a wrong number).
    pub fn read_bytes_limited(&self, rel: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let path = self.path(rel);
        let err = |kind| ReadError {
            path: path.clone(),
            kind,
        };
        let file = fs::File::open(&path).map_err(|e| err(io_kind(&e)))?;
        let meta = file.metadata().map_err(|e| err(io_kind(&e)))?;
        if meta.is_dir() {
            return Err(err(ReadErrorKind::NotRegular));
        }
        let mut buf = Vec::new();
        // /proc and /sys report size 0, so the limit is enforced on what is
        // actually read, one byte past the limit telling "too large".
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| err(io_kind(&e)))?;
        if buf.len() as u64 > limit {
            return Err(err(ReadErrorKind::TooLarge(limit)));
        }
        Ok(buf)
    }

    pub fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, ReadError> {
        self.read_bytes_limited(rel, MAX_READ)
    }

    /// Reads a text file whole (bounded by [`MAX_READ`]).
    pub fn read(&self, rel: &str) -> Result<String, ReadError> {
        let bytes = self.read_bytes(rel)?;
        String::from_utf8(bytes).map_err(|_| ReadError {
            path: self.path(rel),
            kind: ReadErrorKind::NotUtf8,
        })
    }

    /// Reads a one-value file (sysctl, sysfs attribute) and trims it.
    pub fn read_value(&self, rel: &str) -> Result<String, ReadError> {
        Ok(self.read(rel)?.trim().to_string())
    }

    /// Names in a directory under the root, sorted. Names that are not UTF-8
    /// are skipped: no kernel directory we list uses them.
    pub fn list_dir(&self, rel: &str) -> Result<Vec<String>, ReadError> {
        let path = self.path(rel);
        let rd = fs::read_dir(&path).map_err(|e| ReadError {
            path: path.clone(),
            kind: io_kind(&e),
        })?;
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.path(rel).is_dir()
    }

    /// Kernel release, from the same tree the checks read.
    pub fn kernel_release(&self) -> Option<String> {
        self.read_value(paths::OSRELEASE)
            .ok()
            .filter(|s| !s.is_empty() && s.len() < 256)
    }

    pub fn hostname(&self) -> Option<String> {
        self.read_value(paths::HOSTNAME)
            .ok()
            .filter(|s| !s.is_empty() && s.len() < 256)
    }

    /// The kernel build configuration of `release`, `boot/config-<release>`.
    pub fn kernel_config(release: &str) -> String {
        format!("{}/config-{release}", paths::BOOT)
    }

    /// Path of a process file, `proc/<pid>/<name>`.
    pub fn proc_pid(pid: u32, name: &str) -> String {
        format!("{}/{pid}/{name}", paths::PROC)
    }
}

fn io_kind(e: &io::Error) -> ReadErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ReadErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ReadErrorKind::PermissionDenied,
        _ => match e.raw_os_error() {
            Some(libc::ENOTDIR) => ReadErrorKind::NotFound,
            Some(libc::EISDIR) => ReadErrorKind::NotRegular,
            _ => ReadErrorKind::Io(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_joins_relative_to_root() {
        let h = Host::new("/tmp/fixture");
        assert_eq!(
            h.path(paths::SYSRQ),
            PathBuf::from("/tmp/fixture/proc/sys/kernel/sysrq")
        );
        assert_eq!(h.path("/proc/x"), PathBuf::from("/tmp/fixture/proc/x"));
        assert!(Host::system().is_live());
        assert!(!h.is_live());
    }

    #[test]
    fn reads_are_bounded_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; 100]).unwrap();
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe, b'1']).unwrap();
        let h = Host::new(dir.path());
        let e = h.read_bytes_limited("big", 10).unwrap_err();
        assert_eq!(e.kind, ReadErrorKind::TooLarge(10));
        assert!(e.to_string().contains("big"));
        assert_eq!(h.read_bytes_limited("big", 100).unwrap().len(), 100);
        assert_eq!(h.read("bin").unwrap_err().kind, ReadErrorKind::NotUtf8);
        assert!(h.read("missing").unwrap_err().is_not_found());
        assert!(h.read("big/below").unwrap_err().is_not_found());
        assert_eq!(h.read("").unwrap_err().kind, ReadErrorKind::NotRegular);
    }
}
