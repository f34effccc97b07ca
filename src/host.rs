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
use std::time::Duration;

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
    pub const SELF_FD: &str = "proc/self/fd";
    /// `kernel.printk`: console, default, minimum and boot-default log levels.
    pub const PRINTK: &str = "proc/sys/kernel/printk";
    pub const TAINTED: &str = "proc/sys/kernel/tainted";
    /// x86 only: panic on an NMI nothing claimed (the BMC's NMI button).
    pub const UNKNOWN_NMI_PANIC: &str = "proc/sys/kernel/unknown_nmi_panic";
    /// x86 only: panic on an I/O check NMI (some BMCs send these).
    pub const PANIC_ON_IO_NMI: &str = "proc/sys/kernel/panic_on_io_nmi";
    /// Since Linux 4.19; absent or 0 means "every hung_task_timeout_secs".
    pub const HUNG_TASK_CHECK_INTERVAL: &str = "proc/sys/kernel/hung_task_check_interval_secs";
    pub const HUNG_TASK_CHECK_COUNT: &str = "proc/sys/kernel/hung_task_check_count";
    /// Soft-lockup threshold is twice this (kernel/watchdog.c).
    pub const WATCHDOG_THRESH: &str = "proc/sys/kernel/watchdog_thresh";
    /// Hardware watchdog devices (`watchdogN/timeout`, `state`, `identity`).
    pub const WATCHDOG_CLASS: &str = "sys/class/watchdog";
    pub const OS_RELEASE: &str = "etc/os-release";
    pub const OS_RELEASE_USR: &str = "usr/lib/os-release";
    /// RHEL/Fedora kdump (kexec-tools) configuration.
    pub const KDUMP_CONF: &str = "etc/kdump.conf";
    /// Debian/Ubuntu kdump-tools configuration.
    pub const KDUMP_TOOLS_DEFAULT: &str = "etc/default/kdump-tools";
    /// Where kdump-tools keeps its initramfs (`initrd.img-RELEASE`).
    pub const KDUMP_TOOLS_STATE: &str = "var/lib/kdump";
    /// sysstat's daily files: RHEL `var/log/sa`, Debian `var/log/sysstat`.
    pub const SYSSTAT_DIRS: &[&str] = &["var/log/sa", "var/log/sysstat"];
    pub const SYSSTAT_DEFAULT: &str = "etc/default/sysstat";
    /// Other resource histories: atop's and PCP's archives.
    pub const ATOP_LOG: &str = "var/log/atop";
    pub const PCP_LOG: &str = "var/log/pcp/pmlogger";
    pub const SYSTEMD_UNITS_ENABLED: &str = "etc/systemd/system";
    /// The journal's native socket (systemd).
    pub const JOURNAL_SOCKET: &str = "run/systemd/journal/socket";
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
            ReadErrorKind::NotRegular => write!(
                f,
                "{p}: not a regular file (a FIFO, device, socket or directory where a kernel file should be)"
            ),
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
    ///
    /// Only regular files are read: a FIFO, a device or a socket planted
    /// where a kernel file should be is refused before any read (opening
    /// is non-blocking, so a FIFO without a writer cannot hang the open
    /// either). The read itself runs on a helper thread and is abandoned
    /// after [`READ_DEADLINE`], so a file on a hung filesystem costs a
    /// stuck thread, not a stuck `check` or `run`.
    pub fn read_bytes_limited(&self, rel: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let path = self.path(rel);
        let kind = deadline::read(path.clone(), limit);
        kind.map_err(|kind| ReadError { path, kind })
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

    /// `ID`, `VERSION_ID` and the other `KEY=value` pairs of os-release(5)
    /// (`etc/os-release`, else `usr/lib/os-release`), quotes removed.
    /// Empty when neither can be read.
    pub fn os_release(&self) -> std::collections::BTreeMap<String, String> {
        let text = self
            .read(paths::OS_RELEASE)
            .or_else(|_| self.read(paths::OS_RELEASE_USR))
            .unwrap_or_default();
        parse_os_release(&text)
    }

    /// This boot's id (`kernel.random.boot_id`).
    pub fn boot_id(&self) -> Option<String> {
        self.read_value(paths::BOOT_ID)
            .ok()
            .filter(|s| !s.is_empty() && s.len() < 64)
    }

    /// Whole seconds since boot, from `proc/uptime`.
    pub fn uptime_secs(&self) -> Option<u64> {
        // The first field, `12345.67`: the whole seconds are enough, and
        // parsing them here keeps this module free of the kernel parsers.
        let text = self.read(paths::UPTIME).ok()?;
        let first = text.split_whitespace().next()?;
        let whole = first.split_once('.').map_or(first, |(w, _)| w);
        whole.parse().ok()
    }

    /// The kernel build configuration of `release`, `boot/config-<release>`.
    pub fn kernel_config(release: &str) -> String {
        format!("{}/config-{release}", paths::BOOT)
    }

    /// Descriptors this process has open now (of the running system,
    /// whatever the root), or `None` when /proc cannot tell.
    pub fn open_descriptors() -> Option<usize> {
        // The listing holds one descriptor of its own while it runs.
        Host::system()
            .list_dir(paths::SELF_FD)
            .ok()
            .map(|v| v.len().saturating_sub(1))
    }

    /// Path of a process file, `proc/<pid>/<name>`.
    pub fn proc_pid(pid: u32, name: &str) -> String {
        format!("{}/{pid}/{name}", paths::PROC)
    }
}

/// How long one read of a kernel file may take. /proc and /sys answer in
/// microseconds; a root on NFS or a FUSE tree may not answer at all.
pub const READ_DEADLINE: Duration = Duration::from_secs(2);

/// Reads with a deadline: one long-lived helper thread does the reads, so
/// the caller can stop waiting. A helper that misses the deadline is
/// abandoned (it ends when its read returns) and the next read starts a
/// new one.
mod deadline {
    use super::*;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    type Reply = mpsc::SyncSender<Result<Vec<u8>, ReadErrorKind>>;
    /// A read to do, its answer channel, and who finished first: the
    /// helper (`DONE`) or the caller giving up (`ABANDONED`).
    type Job = (PathBuf, u64, Reply, Arc<AtomicU8>);

    const WAITING: u8 = 0;
    const DONE: u8 = 1;
    const ABANDONED: u8 = 2;

    static HELPER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);
    /// Helpers abandoned in a read that has not returned yet.
    static STUCK: AtomicUsize = AtomicUsize::new(0);
    /// Past this many, reads fail at once: a filesystem that hangs every
    /// read must not cost a thread per read.
    const MAX_STUCK: usize = 4;
    /// Enough for one open and read; every helper is a thread that
    /// `mlockall` would otherwise pin 2 MiB of stack for.
    const STACK: usize = 64 * 1024;

    pub fn read(path: PathBuf, limit: u64) -> Result<Vec<u8>, ReadErrorKind> {
        let stuck = STUCK.load(Ordering::SeqCst);
        if stuck >= MAX_STUCK {
            return Err(ReadErrorKind::Io(format!(
                "not read: {stuck} earlier reads have not returned (hung filesystem?)"
            )));
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let state = Arc::new(AtomicU8::new(WAITING));
        let mut helper = HELPER.lock().unwrap_or_else(|p| p.into_inner());
        let tx = match helper.take() {
            Some(tx) => tx,
            None => match spawn() {
                Some(tx) => tx,
                // No thread to be had: read here, without a deadline,
                // rather than not at all.
                None => return read_now(&path, limit),
            },
        };
        if tx
            .send((path.clone(), limit, reply, Arc::clone(&state)))
            .is_err()
        {
            // The helper is gone (it cannot be, but a read is cheap).
            return read_now(&path, limit);
        }
        if let Ok(r) = answer.recv_timeout(READ_DEADLINE) {
            *helper = Some(tx);
            return r;
        }
        match state.compare_exchange(WAITING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {
                // The helper keeps this read; the next read starts another.
                STUCK.fetch_add(1, Ordering::SeqCst);
                Err(ReadErrorKind::Io(format!(
                    "no answer within {} s (hung filesystem?)",
                    READ_DEADLINE.as_secs()
                )))
            }
            // It answered just now.
            Err(_) => {
                *helper = Some(tx);
                answer
                    .recv()
                    .unwrap_or_else(|_| Err(ReadErrorKind::Io("read helper vanished".into())))
            }
        }
    }

    fn spawn() -> Option<mpsc::Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("host-read".into())
            .stack_size(STACK)
            .spawn(move || {
                for (path, limit, reply, state) in rx {
                    let r = read_now(&path, limit);
                    let finished =
                        state.compare_exchange(WAITING, DONE, Ordering::SeqCst, Ordering::SeqCst);
                    if finished.is_err() {
                        // Its caller gave up on it: no longer stuck, and no
                        // longer anyone's helper (its sender is gone, so
                        // the loop ends).
                        STUCK.fetch_sub(1, Ordering::SeqCst);
                    }
                    let _ = reply.send(r);
                }
            })
            .ok()?;
        Some(tx)
    }

    pub fn read_now(path: &Path, limit: u64) -> Result<Vec<u8>, ReadErrorKind> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| io_kind(&e))?;
        let meta = file.metadata().map_err(|e| io_kind(&e))?;
        if !meta.is_file() {
            return Err(ReadErrorKind::NotRegular);
        }
        let mut buf = Vec::new();
        // /proc and /sys report size 0, so the limit is enforced on what is
        // actually read, one byte past the limit telling "too large".
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| io_kind(&e))?;
        if buf.len() as u64 > limit {
            return Err(ReadErrorKind::TooLarge(limit));
        }
        Ok(buf)
    }
}

/// os-release(5): `KEY=value` lines, values optionally quoted; comments
/// and malformed lines are skipped.
pub fn parse_os_release(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            if k.is_empty()
                || k.starts_with('#')
                || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return None;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.to_string(), v.to_string()))
        })
        .collect()
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
    fn os_release_lines() {
        let m =
            parse_os_release("# c\nID=rhel\nVERSION_ID=\"9.4\"\nID_LIKE='fedora'\nbad line\n=x\n");
        assert_eq!(m["ID"], "rhel");
        assert_eq!(m["VERSION_ID"], "9.4");
        assert_eq!(m["ID_LIKE"], "fedora");
        assert_eq!(m.len(), 3);
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

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let h = Host::new(dir.path());
        let e = h.read("fifo").unwrap_err();
        assert_eq!(e.kind, ReadErrorKind::NotRegular);
        assert!(e.to_string().contains("fifo: not a regular file"), "{e}");
    }
}
