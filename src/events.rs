//! The events watchdog reports, and their JSON form (docs/contracts.md "Event
//! JSON"): one flat object per event, common fields first (`kind`, `time`,
//! `kernel_time`, `source`, `host`), then the fields of its kind.
//!
//! Fields the kernel text did not carry are `null`, so every event of one
//! kind has the same keys and `jq` filters need no `?`.
//!
//! [`SCHEMA`] is the one list of kinds and their fields, in JSON order:
//! rules are checked against it when the configuration is loaded, and
//! [`Event::field`] reads a field by name without going through JSON. A
//! test serializes a sample of every kind and holds the schema, the
//! accessors and the JSON to each other.

use std::borrow::Cow;
use std::fmt;

use chrono::{FixedOffset, NaiveDateTime};
use serde::{Serialize, Serializer};

/// A wall-clock time as the log printed it. Logs such as `dmesg -T` or
/// `/var/log/messages` print local time without a zone; those keep no
/// offset rather than invent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallTime {
    pub local: NaiveDateTime,
    pub offset: Option<FixedOffset>,
}

impl WallTime {
    /// The local wall clock now, to the microsecond.
    pub fn now() -> WallTime {
        use chrono::Timelike;
        let now = chrono::Local::now();
        // Microseconds are plenty, and print as six digits.
        let now = now
            .with_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now);
        WallTime {
            local: now.naive_local(),
            offset: Some(*now.offset()),
        }
    }

    /// Comparable instant: UTC when the offset is known, else the local
    /// reading as is.
    pub fn comparable(&self) -> NaiveDateTime {
        match self.offset {
            Some(o) => self.local - o,
            None => self.local,
        }
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.local.format("%Y-%m-%dT%H:%M:%S%.f"))?;
        match self.offset {
            Some(o) if o.local_minus_utc() == 0 => f.write_str("Z"),
            Some(o) => write!(f, "{o}"),
            None => Ok(()),
        }
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One event, ready to be written as a JSON line.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Wall clock of the line that carried the event, when the log had one.
    pub time: Option<WallTime>,
    /// Seconds since boot, when the line had the kernel's timestamp.
    pub kernel_time: Option<f64>,
    /// `kmsg`, `tracefs`, `proc`, or the scanned file's name.
    pub source: String,
    /// Host name (syslog, journal) or sender address (udplogger).
    pub host: Option<String>,
    /// Line number in the scanned file (not set for live sources).
    pub line: Option<u64>,
    /// The incident this event belongs to (`watchdog run`), when any.
    pub incident: Option<String>,
    pub body: Body,
}

/// What happened, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    HungTask(HungTask),
    OomKill(OomKill),
    SignalDeath(SignalDeath),
    SoftLockup(SoftLockup),
    RcuStall(Summary),
    Oops(Crash),
    Panic(Crash),
    Sysrq(Sysrq),
    DentryPressure(DentryPressure),
    Lost(Lost),
    Action(Action),
    Warning(Crash),
    Bug(Crash),
    HardLockup(Crash),
    Mce(Mce),
    FsError(FsError),
    IoError(IoError),
    NetdevTimeout(NetdevTimeout),
    AllocFailure(AllocFailure),
    OomNoKillable(Summary),
    Pressure(Pressure),
    Pattern(Pattern),
    PreviousBoot(PreviousBoot),
}

impl Body {
    /// The kind's entry in [`SCHEMA`]. Exhaustive, so a new variant cannot
    /// compile without one.
    pub fn schema(&self) -> &'static KindSchema {
        match self {
            Body::HungTask(_) => &HUNG_TASK,
            Body::OomKill(_) => &OOM_KILL,
            Body::SignalDeath(_) => &SIGNAL_DEATH,
            Body::SoftLockup(_) => &SOFT_LOCKUP,
            Body::RcuStall(_) => &RCU_STALL,
            Body::Oops(_) => &OOPS,
            Body::Panic(_) => &PANIC,
            Body::Sysrq(_) => &SYSRQ,
            Body::DentryPressure(_) => &DENTRY_PRESSURE,
            Body::Lost(_) => &LOST,
            Body::Action(_) => &ACTION,
            Body::Warning(_) => &WARNING,
            Body::Bug(_) => &BUG,
            Body::HardLockup(_) => &HARD_LOCKUP,
            Body::Mce(_) => &MCE,
            Body::FsError(_) => &FS_ERROR,
            Body::IoError(_) => &IO_ERROR,
            Body::NetdevTimeout(_) => &NETDEV_TIMEOUT,
            Body::AllocFailure(_) => &ALLOC_FAILURE,
            Body::OomNoKillable(_) => &OOM_NO_KILLABLE,
            Body::Pressure(_) => &PRESSURE,
            Body::Pattern(_) => &PATTERN,
            Body::PreviousBoot(_) => &PREVIOUS_BOOT,
        }
    }

    /// The `kind` string of docs/contracts.md.
    pub fn kind(&self) -> &'static str {
        self.schema().name
    }

    /// Every kind, in the order of the table in docs/contracts.md.
    pub const KINDS: &'static [&'static str] = &kind_names::<{ SCHEMA.len() }>();

    /// A field of the kind's own (not the common fields); `None` when the
    /// kind has no field of that name.
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        match self {
            Body::HungTask(b) => b.field(name),
            Body::OomKill(b) => b.field(name),
            Body::SignalDeath(b) => b.field(name),
            Body::SoftLockup(b) => b.field(name),
            Body::RcuStall(b) | Body::OomNoKillable(b) => {
                (name == "summary").then(|| b.summary.as_str().into())
            }
            Body::Oops(b)
            | Body::Panic(b)
            | Body::Warning(b)
            | Body::Bug(b)
            | Body::HardLockup(b) => b.field(name),
            Body::Mce(b) => b.field(name),
            Body::FsError(b) => b.field(name),
            Body::IoError(b) => b.field(name),
            Body::NetdevTimeout(b) => b.field(name),
            Body::AllocFailure(b) => b.field(name),
            Body::Pressure(b) => b.field(name),
            Body::Pattern(b) => b.field(name),
            Body::Sysrq(b) => (name == "command").then(|| b.command.as_str().into()),
            Body::DentryPressure(b) => b.field(name),
            Body::Lost(b) => match name {
                "count" => Some(b.count.into()),
                "reason" => Some(b.reason.as_deref().into()),
                _ => None,
            },
            Body::Action(b) => b.field(name),
            Body::PreviousBoot(b) => b.field(name),
        }
    }

    /// A journald priority and one line for the kinds of kernel reports
    /// with a stack and the one-line reports (oops, panic, warning, bug,
    /// hard_lockup, mce, fs_error, io_error, netdev_timeout,
    /// alloc_failure, oom_no_killable, pressure, pattern); `None` for the
    /// others, which `run` and `scan` word themselves.
    pub fn headline(&self) -> Option<(u8, String)> {
        let crash = |what: &str, c: &Crash| {
            let mut s = format!("{what}: {}", c.summary);
            if let Some(comm) = &c.comm {
                s.push_str(&format!(" [{comm}"));
                if let Some(p) = c.pid {
                    s.push_str(&format!(" pid {p}"));
                }
                s.push(']');
            }
            if let Some(f) = c.frames.first().or(c.rip.as_ref()) {
                s.push_str(&format!(" at {f}"));
            }
            s
        };
        let opt = |v: &Option<String>| v.as_deref().unwrap_or("?").to_string();
        Some(match self {
            Body::Oops(c) => (2, crash("oops", c)),
            Body::Panic(c) => (0, crash("panic", c)),
            Body::Bug(c) => (3, crash("bug", c)),
            Body::Warning(c) => (4, crash("warning", c)),
            Body::HardLockup(c) => (
                2,
                format!(
                    "hard lockup on CPU {}",
                    c.cpu.map_or("?".into(), |n| n.to_string())
                ),
            ),
            Body::Mce(m) => (
                match m.corrected {
                    Some(true) => 4,
                    _ => 2,
                },
                format!("machine check: {}", m.summary),
            ),
            Body::FsError(f) => (
                if f.read_only { 2 } else { 3 },
                format!(
                    "{} error on {}{}",
                    opt(&f.fs),
                    opt(&f.device),
                    if f.read_only {
                        " (read-only / shut down)"
                    } else {
                        ""
                    }
                ),
            ),
            Body::IoError(e) => (
                3,
                format!(
                    "{} I/O error(s) on {}{}{}",
                    e.count,
                    opt(&e.device),
                    e.op.as_ref().map_or(String::new(), |o| format!(", {o}")),
                    e.sector.map_or(String::new(), |s| format!(", sector {s}"))
                ),
            ),
            Body::NetdevTimeout(n) => (
                3,
                format!(
                    "transmit timeout on {} ({}) queue {}",
                    opt(&n.interface),
                    opt(&n.driver),
                    n.queue.map_or("?".into(), |q| q.to_string())
                ),
            ),
            Body::AllocFailure(a) => (
                4,
                format!(
                    "page allocation failure in {}: order {} mode {}",
                    opt(&a.comm),
                    a.order.map_or("?".into(), |o| o.to_string()),
                    opt(&a.mode)
                ),
            ),
            Body::OomNoKillable(s) => (0, s.summary.clone()),
            Body::Pressure(p) => (
                4,
                format!(
                    "{} pressure ({}): {} us stalled in {} us{}",
                    p.resource,
                    p.scope,
                    p.stall_us,
                    p.window_us,
                    p.avg10
                        .map_or(String::new(), |a| format!(", avg10 {a:.2}%"))
                ),
            ),
            Body::Pattern(p) => (
                5,
                format!(
                    "pattern {}{}",
                    p.pattern,
                    p.captures
                        .iter()
                        .filter_map(|(k, v)| v.as_ref().map(|v| format!(" {k}={v}")))
                        .collect::<String>()
                ),
            ),
            _ => return None,
        })
    }

    /// The task the event is about, for summaries (`comm`, `pid`).
    pub fn task(&self) -> Option<(&str, Option<u32>)> {
        match self {
            Body::HungTask(h) => h.comm.as_deref().map(|c| (c, h.pid)),
            Body::OomKill(o) => o.comm.as_deref().map(|c| (c, o.pid)),
            Body::SignalDeath(s) => Some((s.comm.as_str(), s.pid)),
            Body::SoftLockup(s) => s.comm.as_deref().map(|c| (c, s.pid)),
            Body::Oops(c)
            | Body::Panic(c)
            | Body::Warning(c)
            | Body::Bug(c)
            | Body::HardLockup(c) => c.comm.as_deref().map(|n| (n, c.pid)),
            Body::AllocFailure(a) => a.comm.as_deref().map(|c| (c, None)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HungTask {
    /// `null` only for hung tasks the kernel counted but did not print
    /// (`source: proc`, from `hung_task_detect_count`).
    pub comm: Option<String>,
    pub pid: Option<u32>,
    pub blocked_secs: Option<u64>,
    /// The task holding the lock this one waits for (since Linux 6.14:
    /// `... is blocked on a mutex likely owned by task comm:pid`).
    pub blocker_comm: Option<String>,
    pub blocker_pid: Option<u32>,
    /// What it waits on: `mutex`, `semaphore`, `rw-semaphore` (since
    /// Linux 6.14).
    pub blocker_lock: Option<String>,
    /// The top frames of its stack (`symbol+off/len`), scheduler frames
    /// left out, at most [`MAX_FRAMES`].
    pub frames: Vec<String>,
    /// Hung tasks the kernel detected without reporting them (its
    /// hung_task_warnings ran out), since the previous reading (on new
    /// kernels that have /proc/sys/kernel/hung_task_detect_count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreported: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OomKill {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// Killed by a memory cgroup's limit rather than the whole system
    /// running out.
    pub memcg: bool,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    /// (since Linux 4.5)
    pub shmem_rss_kb: Option<u64>,
    pub uid: Option<u32>,
    pub oom_score_adj: Option<i32>,
    /// `CONSTRAINT_NONE`, `CONSTRAINT_MEMCG`, ... (since Linux 4.19)
    pub constraint: Option<String>,
    /// The task whose allocation invoked the OOM killer.
    pub trigger_comm: Option<String>,
    pub trigger_pid: Option<u32>,
    /// The victim's memory cgroup path, `task_memcg=` (since Linux 4.19).
    pub task_memcg: Option<String>,
    /// The cgroup whose limit was hit, `oom_memcg=` (since Linux 4.19;
    /// memcg kills only).
    pub oom_memcg: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalDeath {
    /// The id the kernel printed as `comm[pid]` (`task_pid_nr`: the
    /// thread's id, which is the process id for a single-threaded process).
    pub pid: Option<u32>,
    /// The same number: kernel text names the thread, never its process.
    pub tid: Option<u32>,
    pub comm: String,
    pub signal: u8,
    pub signal_name: String,
    pub core_dumped: Option<bool>,
    pub sender_pid: Option<u32>,
    pub sender_comm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoftLockup {
    pub cpu: Option<u32>,
    pub stuck_secs: Option<u64>,
    pub comm: Option<String>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub summary: String,
}

/// Frames kept from a stack trace: enough to tell bugs apart, small
/// enough for a JSON line.
pub const MAX_FRAMES: usize = 8;

/// A kernel report with the task and stack it printed: `oops`, `bug`,
/// `warning`, `panic`, `hard_lockup`. Fields are `null` when the text
/// lacked them (a panic line alone, a truncated log).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Crash {
    /// The report's first line (`WARNING: CPU: 1 PID: 2 at fs/x.c:5 f+0x1/0x2`).
    pub summary: String,
    pub cpu: Option<u32>,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// The taint flags after `Tainted: ` (`G        W  O`, spaces kept
    /// as printed), `""` for `Not tainted`.
    pub tainted: Option<String>,
    pub kernel_release: Option<String>,
    /// The faulting function, `symbol+off/len` (x86 `RIP:`, arm64 `pc :`).
    pub rip: Option<String>,
    /// Top call frames, `symbol+off/len`, no addresses, at most
    /// [`MAX_FRAMES`].
    pub frames: Vec<String>,
    /// 16 hex digits: a hash over the summary (numbers taken out) and the
    /// frames' symbols, equal for the same bug on any host or boot.
    pub signature: String,
}

/// A machine check or an EDAC error count (arch/x86/kernel/cpu/mce,
/// drivers/edac).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mce {
    pub cpu: Option<u32>,
    pub bank: Option<u32>,
    /// `true` for corrected errors (CE), `false` for uncorrected (UE),
    /// `null` when the text does not say.
    pub corrected: Option<bool>,
    pub summary: String,
}

/// A filesystem error: ext4/ext3/ext2, xfs, btrfs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FsError {
    pub fs: Option<String>,
    pub device: Option<String>,
    /// The kernel remounted it read-only or shut it down.
    pub read_only: bool,
    pub summary: String,
}

/// Block-layer and buffer I/O errors. A burst on one device is one event
/// with its `count`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IoError {
    pub device: Option<String>,
    /// The first failing sector of the burst.
    pub sector: Option<u64>,
    /// `READ`, `WRITE`, `FLUSH`, … as the kernel named it.
    pub op: Option<String>,
    pub count: u64,
}

/// net/sched/sch_generic.c dev_watchdog: a transmit queue stuck.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetdevTimeout {
    pub interface: Option<String>,
    pub driver: Option<String>,
    pub queue: Option<u32>,
}

/// mm/page_alloc.c warn_alloc: `comm: page allocation failure: order:N,
/// mode:0x...(GFP_...)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocFailure {
    pub comm: Option<String>,
    pub order: Option<u32>,
    /// The GFP mask as printed (`0x480020(GFP_ATOMIC)`).
    pub mode: Option<String>,
}

/// A PSI trigger fired (/proc/pressure/*).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pressure {
    /// `memory`, `io` or `cpu`.
    pub resource: String,
    /// `some` (at least one task stalled) or `full` (all non-idle tasks).
    pub scope: String,
    /// The trigger's threshold: this much stall within `window_us`.
    pub stall_us: u64,
    pub window_us: u64,
    /// The kernel's running averages (percent) when the trigger fired.
    pub avg10: Option<f64>,
    pub avg60: Option<f64>,
}

/// A site pattern matched (`patterns:` in the configuration): its name
/// and its named captures, as fields of the event.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub pattern: String,
    /// Capture name and the text it matched (`None`: an optional group
    /// that did not take part).
    pub captures: Vec<(String, Option<String>)>,
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1 + self.captures.len()))?;
        m.serialize_entry("pattern", &self.pattern)?;
        for (k, v) in &self.captures {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sysrq {
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DentryPressure {
    pub nr_dentry: u64,
    pub nr_unused: u64,
    pub vfs_cache_pressure: u64,
    /// Fraction of INT_MAX left before the pre-3.12 shrinker count
    /// `(nr_unused / 100) * vfs_cache_pressure` wraps.
    pub headroom: f64,
    /// What crossed a threshold (headroom, growth, a huge shrink_slab).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Objects a shrink_slab call was asked to scan (tracefs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_scan: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrinker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lost {
    pub count: u64,
    /// Why, when it is not the kernel overwriting records before they were
    /// read (for example: the recording queue was full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub rule: String,
    pub action: String,
    pub ok: bool,
    pub detail: String,
    /// `watchdog run --dry-run`: decided and logged, not done.
    pub dry_run: bool,
}

/// What ended the previous boot (`watchdog run` at start, `watchdog
/// last-boot`; see docs/last-boot.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviousBoot {
    /// `panic`, `oops`, `hung_task_panic`, `oom_panic`,
    /// `soft_lockup_panic`, `hard_lockup`, `mce`, `sysrq_crash`,
    /// `clean_shutdown`, `reboot` or `no_evidence`.
    pub cause: String,
    /// The panic reason, or the last meaningful line, or why nothing is
    /// known.
    pub summary: String,
    /// The previous boot's id, when a source named it.
    pub boot_id: Option<String>,
    /// The last kernel timestamp (seconds since that boot) seen.
    pub last_kernel_time: Option<f64>,
    /// The files (and commands) read, separated by `, `.
    pub sources: String,
}

impl HungTask {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "comm" => self.comm.as_deref().into(),
            "pid" => self.pid.into(),
            "blocked_secs" => self.blocked_secs.into(),
            "blocker_comm" => self.blocker_comm.as_deref().into(),
            "blocker_pid" => self.blocker_pid.into(),
            "blocker_lock" => self.blocker_lock.as_deref().into(),
            "frames" => FieldValue::List(&self.frames),
            "unreported" => self.unreported.into(),
            _ => return None,
        })
    }
}

impl OomKill {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "pid" => self.pid.into(),
            "comm" => self.comm.as_deref().into(),
            "memcg" => self.memcg.into(),
            "total_vm_kb" => self.total_vm_kb.into(),
            "anon_rss_kb" => self.anon_rss_kb.into(),
            "file_rss_kb" => self.file_rss_kb.into(),
            "shmem_rss_kb" => self.shmem_rss_kb.into(),
            "uid" => self.uid.into(),
            "oom_score_adj" => self.oom_score_adj.into(),
            "constraint" => self.constraint.as_deref().into(),
            "trigger_comm" => self.trigger_comm.as_deref().into(),
            "trigger_pid" => self.trigger_pid.into(),
            "task_memcg" => self.task_memcg.as_deref().into(),
            "oom_memcg" => self.oom_memcg.as_deref().into(),
            _ => return None,
        })
    }
}

impl Crash {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "summary" => self.summary.as_str().into(),
            "cpu" => self.cpu.into(),
            "pid" => self.pid.into(),
            "comm" => self.comm.as_deref().into(),
            "tainted" => self.tainted.as_deref().into(),
            "kernel_release" => self.kernel_release.as_deref().into(),
            "rip" => self.rip.as_deref().into(),
            "frames" => FieldValue::List(&self.frames),
            "signature" => self.signature.as_str().into(),
            _ => return None,
        })
    }
}

impl Mce {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "cpu" => self.cpu.into(),
            "bank" => self.bank.into(),
            "corrected" => self.corrected.into(),
            "summary" => self.summary.as_str().into(),
            _ => return None,
        })
    }
}

impl FsError {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "fs" => self.fs.as_deref().into(),
            "device" => self.device.as_deref().into(),
            "read_only" => self.read_only.into(),
            "summary" => self.summary.as_str().into(),
            _ => return None,
        })
    }
}

impl IoError {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "device" => self.device.as_deref().into(),
            "sector" => self.sector.into(),
            "op" => self.op.as_deref().into(),
            "count" => self.count.into(),
            _ => return None,
        })
    }
}

impl NetdevTimeout {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "interface" => self.interface.as_deref().into(),
            "driver" => self.driver.as_deref().into(),
            "queue" => self.queue.into(),
            _ => return None,
        })
    }
}

impl AllocFailure {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "comm" => self.comm.as_deref().into(),
            "order" => self.order.into(),
            "mode" => self.mode.as_deref().into(),
            _ => return None,
        })
    }
}

impl Pressure {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "resource" => self.resource.as_str().into(),
            "scope" => self.scope.as_str().into(),
            "stall_us" => self.stall_us.into(),
            "window_us" => self.window_us.into(),
            "avg10" => self.avg10.into(),
            "avg60" => self.avg60.into(),
            _ => return None,
        })
    }
}

impl Pattern {
    /// `pattern`, or a capture of the pattern (`null` when its group did
    /// not take part; `None` when the pattern has no such capture).
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        if name == "pattern" {
            return Some(self.pattern.as_str().into());
        }
        self.captures
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref().into())
    }
}

impl SignalDeath {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "pid" => self.pid.into(),
            "tid" => self.tid.into(),
            "comm" => self.comm.as_str().into(),
            "signal" => self.signal.into(),
            "signal_name" => self.signal_name.as_str().into(),
            "core_dumped" => self.core_dumped.into(),
            "sender_pid" => self.sender_pid.into(),
            "sender_comm" => self.sender_comm.as_deref().into(),
            _ => return None,
        })
    }
}

impl SoftLockup {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "cpu" => self.cpu.into(),
            "stuck_secs" => self.stuck_secs.into(),
            "comm" => self.comm.as_deref().into(),
            "pid" => self.pid.into(),
            _ => return None,
        })
    }
}

impl DentryPressure {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "nr_dentry" => self.nr_dentry.into(),
            "nr_unused" => self.nr_unused.into(),
            "vfs_cache_pressure" => self.vfs_cache_pressure.into(),
            "headroom" => self.headroom.into(),
            "reason" => self.reason.as_deref().into(),
            "total_scan" => self.total_scan.into(),
            "shrinker" => self.shrinker.as_deref().into(),
            _ => return None,
        })
    }
}

impl PreviousBoot {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "cause" => self.cause.as_str().into(),
            "summary" => self.summary.as_str().into(),
            "boot_id" => self.boot_id.as_deref().into(),
            "last_kernel_time" => self.last_kernel_time.into(),
            "sources" => self.sources.as_str().into(),
            _ => return None,
        })
    }
}

impl Action {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "rule" => self.rule.as_str().into(),
            "action" => self.action.as_str().into(),
            "ok" => self.ok.into(),
            "detail" => self.detail.as_str().into(),
            "dry_run" => self.dry_run.into(),
            _ => return None,
        })
    }
}

/// The type of a field as rules see it; JSON shows the same type, or
/// `null` for a nullable field the event did not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Str,
    /// Whole numbers (pids, sizes, counts, signal numbers).
    Int,
    Float,
    Bool,
    /// A list of strings (stack frames); never null, empty when unknown.
    List,
}

impl FieldType {
    /// How error messages name the type.
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Str => "a string",
            FieldType::Int => "an integer",
            FieldType::Float => "a number",
            FieldType::Bool => "true or false",
            FieldType::List => "a list of strings",
        }
    }
}

/// One field of an event's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    /// May be `null` (or left out of the JSON) when the text lacked it.
    pub nullable: bool,
}

/// One kind: its name and its own fields, in JSON order, after
/// [`COMMON_FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSchema {
    pub name: &'static str,
    pub fields: &'static [Field],
    /// Whether events of this kind reach the rules. `action` events do
    /// not: they are what rules cause, and a rule on them could feed
    /// itself.
    pub rule_trigger: bool,
}

impl KindSchema {
    /// A field by name: the kind's own or a common one.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields
            .iter()
            .chain(COMMON_FIELDS)
            .find(|f| f.name == name)
    }
}

const fn req(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        nullable: false,
    }
}

const fn opt(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        nullable: true,
    }
}

const fn kind(name: &'static str, fields: &'static [Field]) -> KindSchema {
    KindSchema {
        name,
        fields,
        rule_trigger: true,
    }
}

// Bare type names keep the table below one field per short line.
use FieldType::{Bool, Float, Int, List, Str};

/// Fields every event has, first in its JSON. `line` appears only in
/// `scan` output (the line number in the scanned file).
pub const COMMON_FIELDS: &[Field] = &[
    req("kind", Str),
    opt("time", Str),
    opt("kernel_time", Float),
    req("source", Str),
    opt("host", Str),
    opt("line", Int),
    opt("incident", Str),
];

const HUNG_TASK: KindSchema = kind(
    "hung_task",
    &[
        opt("comm", Str),
        opt("pid", Int),
        opt("blocked_secs", Int),
        opt("blocker_comm", Str),
        opt("blocker_pid", Int),
        opt("blocker_lock", Str),
        req("frames", List),
        opt("unreported", Int),
    ],
);
const OOM_KILL: KindSchema = kind(
    "oom_kill",
    &[
        opt("pid", Int),
        opt("comm", Str),
        req("memcg", Bool),
        opt("total_vm_kb", Int),
        opt("anon_rss_kb", Int),
        opt("file_rss_kb", Int),
        opt("shmem_rss_kb", Int),
        opt("uid", Int),
        opt("oom_score_adj", Int),
        opt("constraint", Str),
        opt("trigger_comm", Str),
        opt("trigger_pid", Int),
        opt("task_memcg", Str),
        opt("oom_memcg", Str),
    ],
);
const SIGNAL_DEATH: KindSchema = kind(
    "signal_death",
    &[
        opt("pid", Int),
        opt("tid", Int),
        req("comm", Str),
        req("signal", Int),
        req("signal_name", Str),
        opt("core_dumped", Bool),
        opt("sender_pid", Int),
        opt("sender_comm", Str),
    ],
);
const SOFT_LOCKUP: KindSchema = kind(
    "soft_lockup",
    &[
        opt("cpu", Int),
        opt("stuck_secs", Int),
        opt("comm", Str),
        opt("pid", Int),
    ],
);
const SUMMARY: &[Field] = &[req("summary", Str)];
const RCU_STALL: KindSchema = kind("rcu_stall", SUMMARY);
/// oops, panic, warning, bug, hard_lockup.
const CRASH: &[Field] = &[
    req("summary", Str),
    opt("cpu", Int),
    opt("pid", Int),
    opt("comm", Str),
    opt("tainted", Str),
    opt("kernel_release", Str),
    opt("rip", Str),
    req("frames", List),
    req("signature", Str),
];
const OOPS: KindSchema = kind("oops", CRASH);
const PANIC: KindSchema = kind("panic", CRASH);
const WARNING: KindSchema = kind("warning", CRASH);
const BUG: KindSchema = kind("bug", CRASH);
const HARD_LOCKUP: KindSchema = kind("hard_lockup", CRASH);
const MCE: KindSchema = kind(
    "mce",
    &[
        opt("cpu", Int),
        opt("bank", Int),
        opt("corrected", Bool),
        req("summary", Str),
    ],
);
const FS_ERROR: KindSchema = kind(
    "fs_error",
    &[
        opt("fs", Str),
        opt("device", Str),
        req("read_only", Bool),
        req("summary", Str),
    ],
);
const IO_ERROR: KindSchema = kind(
    "io_error",
    &[
        opt("device", Str),
        opt("sector", Int),
        opt("op", Str),
        req("count", Int),
    ],
);
const NETDEV_TIMEOUT: KindSchema = kind(
    "netdev_timeout",
    &[opt("interface", Str), opt("driver", Str), opt("queue", Int)],
);
const ALLOC_FAILURE: KindSchema = kind(
    "alloc_failure",
    &[opt("comm", Str), opt("order", Int), opt("mode", Str)],
);
const OOM_NO_KILLABLE: KindSchema = kind("oom_no_killable", SUMMARY);
const PRESSURE: KindSchema = kind(
    "pressure",
    &[
        req("resource", Str),
        req("scope", Str),
        req("stall_us", Int),
        req("window_us", Int),
        opt("avg10", Float),
        opt("avg60", Float),
    ],
);
/// Site patterns: `pattern` and, per pattern, its named captures (text,
/// nullable), which rules may name once they say which pattern
/// (`where: {pattern: NAME}`).
const PATTERN: KindSchema = kind("pattern", &[req("pattern", Str)]);
const SYSRQ: KindSchema = kind("sysrq", &[req("command", Str)]);
const DENTRY_PRESSURE: KindSchema = kind(
    "dentry_pressure",
    &[
        req("nr_dentry", Int),
        req("nr_unused", Int),
        req("vfs_cache_pressure", Int),
        req("headroom", Float),
        opt("reason", Str),
        opt("total_scan", Int),
        opt("shrinker", Str),
    ],
);
const LOST: KindSchema = kind("lost", &[req("count", Int), opt("reason", Str)]);
const ACTION: KindSchema = KindSchema {
    rule_trigger: false,
    ..kind(
        "action",
        &[
            req("rule", Str),
            req("action", Str),
            req("ok", Bool),
            req("detail", Str),
            req("dry_run", Bool),
        ],
    )
};

const PREVIOUS_BOOT: KindSchema = kind(
    "previous_boot",
    &[
        req("cause", Str),
        req("summary", Str),
        opt("boot_id", Str),
        opt("last_kernel_time", Float),
        req("sources", Str),
    ],
);

/// Every kind with its fields, in the order of the table in docs/contracts.md.
pub const SCHEMA: &[KindSchema] = &[
    HUNG_TASK,
    OOM_KILL,
    SIGNAL_DEATH,
    SOFT_LOCKUP,
    RCU_STALL,
    OOPS,
    PANIC,
    SYSRQ,
    DENTRY_PRESSURE,
    LOST,
    ACTION,
    WARNING,
    BUG,
    HARD_LOCKUP,
    MCE,
    FS_ERROR,
    IO_ERROR,
    NETDEV_TIMEOUT,
    ALLOC_FAILURE,
    OOM_NO_KILLABLE,
    PRESSURE,
    PATTERN,
    PREVIOUS_BOOT,
];

/// The kind of this name.
pub fn kind_schema(name: &str) -> Option<&'static KindSchema> {
    SCHEMA.iter().find(|k| k.name == name)
}

const fn kind_names<const N: usize>() -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = SCHEMA[i].name;
        i += 1;
    }
    out
}

/// A field's value, borrowed from the event: what rules compare.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Str(Cow<'a, str>),
    /// Wide enough for every integer field (u64 and i32 alike).
    Int(i128),
    Float(f64),
    Bool(bool),
    /// Stack frames.
    List(&'a [String]),
    /// The event did not carry this field (JSON `null`, or left out).
    Null,
}

impl<'a> From<&'a str> for FieldValue<'a> {
    fn from(s: &'a str) -> Self {
        FieldValue::Str(Cow::Borrowed(s))
    }
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl From<$t> for FieldValue<'_> {
            fn from(n: $t) -> Self {
                FieldValue::Int(i128::from(n))
            }
        }
    )*};
}
int_field!(u8, u32, u64, i32);

impl From<f64> for FieldValue<'_> {
    fn from(x: f64) -> Self {
        FieldValue::Float(x)
    }
}

impl From<bool> for FieldValue<'_> {
    fn from(b: bool) -> Self {
        FieldValue::Bool(b)
    }
}

impl<'a, T: Into<FieldValue<'a>>> From<Option<T>> for FieldValue<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(FieldValue::Null, Into::into)
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum BodyRef<'a> {
    HungTask(&'a HungTask),
    OomKill(&'a OomKill),
    SignalDeath(&'a SignalDeath),
    SoftLockup(&'a SoftLockup),
    Summary(&'a Summary),
    Crash(&'a Crash),
    Mce(&'a Mce),
    FsError(&'a FsError),
    IoError(&'a IoError),
    NetdevTimeout(&'a NetdevTimeout),
    AllocFailure(&'a AllocFailure),
    Pressure(&'a Pressure),
    Pattern(&'a Pattern),
    Sysrq(&'a Sysrq),
    DentryPressure(&'a DentryPressure),
    Lost(&'a Lost),
    Action(&'a Action),
    PreviousBoot(&'a PreviousBoot),
}

#[derive(Serialize)]
struct Wire<'a> {
    kind: &'static str,
    time: Option<&'a WallTime>,
    kernel_time: Option<f64>,
    source: &'a str,
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<&'a str>,
    #[serde(flatten)]
    body: BodyRef<'a>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let body = match &self.body {
            Body::HungTask(b) => BodyRef::HungTask(b),
            Body::OomKill(b) => BodyRef::OomKill(b),
            Body::SignalDeath(b) => BodyRef::SignalDeath(b),
            Body::SoftLockup(b) => BodyRef::SoftLockup(b),
            Body::RcuStall(b) | Body::OomNoKillable(b) => BodyRef::Summary(b),
            Body::Oops(b)
            | Body::Panic(b)
            | Body::Warning(b)
            | Body::Bug(b)
            | Body::HardLockup(b) => BodyRef::Crash(b),
            Body::Mce(b) => BodyRef::Mce(b),
            Body::FsError(b) => BodyRef::FsError(b),
            Body::IoError(b) => BodyRef::IoError(b),
            Body::NetdevTimeout(b) => BodyRef::NetdevTimeout(b),
            Body::AllocFailure(b) => BodyRef::AllocFailure(b),
            Body::Pressure(b) => BodyRef::Pressure(b),
            Body::Pattern(b) => BodyRef::Pattern(b),
            Body::Sysrq(b) => BodyRef::Sysrq(b),
            Body::DentryPressure(b) => BodyRef::DentryPressure(b),
            Body::Lost(b) => BodyRef::Lost(b),
            Body::Action(b) => BodyRef::Action(b),
            Body::PreviousBoot(b) => BodyRef::PreviousBoot(b),
        };
        Wire {
            kind: self.body.kind(),
            time: self.time.as_ref(),
            kernel_time: self.kernel_time,
            source: &self.source,
            host: self.host.as_deref(),
            line: self.line,
            incident: self.incident.as_deref(),
            body,
        }
        .serialize(s)
    }
}

impl Event {
    /// The event as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        // Serializing plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A field by its JSON name, common or of the kind, with the value the
    /// JSON shows; `None` when this kind has no such field (see
    /// [`KindSchema::field`]).
    pub fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "kind" => self.body.kind().into(),
            "time" => self.time.map_or(FieldValue::Null, |t| {
                FieldValue::Str(Cow::Owned(t.to_string()))
            }),
            "kernel_time" => self.kernel_time.into(),
            "source" => self.source.as_str().into(),
            "host" => self.host.as_deref().into(),
            "line" => self.line.into(),
            "incident" => self.incident.as_deref().into(),
            _ => return self.body.field(name),
        })
    }
}

/// Name of a Linux signal number (x86/arm/generic numbering).
pub fn signal_name(sig: u8) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGIO",
        30 => "SIGPWR",
        31 => "SIGSYS",
        _ => "SIGRT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_flat_with_common_fields_first() {
        let e = Event {
            time: None,
            kernel_time: Some(12.5),
            source: "kmsg".into(),
            host: None,
            line: None,
            incident: None,
            body: Body::Lost(Lost {
                count: 3,
                reason: None,
            }),
        };
        assert_eq!(
            e.to_json(),
            r#"{"kind":"lost","time":null,"kernel_time":12.5,"source":"kmsg","host":null,"count":3}"#
        );
    }

    /// One event of every kind, every field set (`full`) or every
    /// optional field left out (`!full`).
    fn samples(full: bool) -> Vec<Event> {
        let o = |v: &str| full.then(|| v.to_string());
        let n = |v: u32| full.then_some(v);
        let summary = || Summary {
            summary: "BUG: unable to handle page fault".into(),
        };
        let crash = || Crash {
            summary: "BUG: unable to handle page fault".into(),
            cpu: n(1),
            pid: n(2),
            comm: o("insmod"),
            tainted: o("G           O"),
            kernel_release: o("6.1.0-18-amd64"),
            rip: o("f+0x1/0x10 [m]"),
            frames: vec!["do_one_initcall+0x41/0x200".into()],
            signature: "0123456789abcdef".into(),
        };
        let bodies = vec![
            Body::HungTask(HungTask {
                comm: o("fsfreeze writer"),
                pid: n(412),
                blocked_secs: full.then_some(120),
                blocker_comm: o("jbd2/sda1-8"),
                blocker_pid: n(301),
                blocker_lock: o("mutex"),
                frames: vec!["schedule+0x3d/0xb0".into()],
                unreported: full.then_some(2),
            }),
            Body::OomKill(OomKill {
                pid: n(900),
                comm: o("hog"),
                memcg: true,
                total_vm_kb: full.then_some(1000),
                anon_rss_kb: full.then_some(900),
                file_rss_kb: full.then_some(0),
                shmem_rss_kb: full.then_some(0),
                uid: n(1000),
                oom_score_adj: full.then_some(-17),
                constraint: o("CONSTRAINT_MEMCG"),
                trigger_comm: o("java"),
                trigger_pid: n(77),
                task_memcg: o("/system.slice/hog.service"),
                oom_memcg: o("/system.slice/hog.service"),
            }),
            Body::SignalDeath(SignalDeath {
                pid: n(200),
                tid: n(200),
                comm: "sleep".into(),
                signal: 9,
                signal_name: "SIGKILL".into(),
                core_dumped: full.then_some(false),
                sender_pid: n(300),
                sender_comm: o("kill"),
            }),
            Body::SoftLockup(SoftLockup {
                cpu: n(3),
                stuck_secs: full.then_some(22),
                comm: o("spin"),
                pid: n(5),
            }),
            Body::RcuStall(summary()),
            Body::Oops(crash()),
            Body::Panic(crash()),
            Body::Sysrq(Sysrq {
                command: "Show State".into(),
            }),
            Body::DentryPressure(DentryPressure {
                nr_dentry: 9000,
                nr_unused: 5000,
                vfs_cache_pressure: 100,
                headroom: 0.25,
                reason: o("headroom"),
                total_scan: full.then_some(1 << 40),
                shrinker: o("super_cache_scan"),
            }),
            Body::Lost(Lost {
                count: 3,
                reason: o("the recording queue was full"),
            }),
            Body::Action(Action {
                rule: "hung-task-evidence".into(),
                action: "sysrq t".into(),
                ok: true,
                detail: "wrote".into(),
                dry_run: false,
            }),
            Body::Warning(crash()),
            Body::Bug(crash()),
            Body::HardLockup(crash()),
            Body::Mce(Mce {
                cpu: n(0),
                bank: n(4),
                corrected: full.then_some(true),
                summary: "mce: [Hardware Error]: Machine check events logged".into(),
            }),
            Body::FsError(FsError {
                fs: o("ext4"),
                device: o("sda1"),
                read_only: true,
                summary: "EXT4-fs error (device sda1)".into(),
            }),
            Body::IoError(IoError {
                device: o("sda"),
                sector: full.then_some(2048),
                op: o("READ"),
                count: 12,
            }),
            Body::NetdevTimeout(NetdevTimeout {
                interface: o("eth0"),
                driver: o("e1000e"),
                queue: n(0),
            }),
            Body::AllocFailure(AllocFailure {
                comm: o("kworker/0:1"),
                order: n(3),
                mode: o("0x40c20(GFP_KERNEL|__GFP_COMP)"),
            }),
            Body::OomNoKillable(Summary {
                summary: "Out of memory and no killable processes...".into(),
            }),
            Body::Pressure(Pressure {
                resource: "memory".into(),
                scope: "full".into(),
                stall_us: 100_000,
                window_us: 1_000_000,
                avg10: full.then_some(12.5),
                avg60: full.then_some(3.25),
            }),
            Body::Pattern(Pattern {
                pattern: "multipath-fail".into(),
                captures: Vec::new(),
            }),
            Body::PreviousBoot(PreviousBoot {
                cause: "hung_task_panic".into(),
                summary: "Kernel panic - not syncing: hung_task: blocked tasks".into(),
                boot_id: o("0f4c3e1d-7a44-4d6e-9b1e-2f1d0c7e9a11"),
                last_kernel_time: full.then_some(245.88),
                sources: "/sys/fs/pstore/dmesg-ramoops-0".into(),
            }),
        ];
        let time = WallTime {
            local: NaiveDateTime::parse_from_str("2024-03-01 10:00:00.5", "%Y-%m-%d %H:%M:%S%.f")
                .unwrap(),
            offset: FixedOffset::east_opt(0),
        };
        bodies
            .into_iter()
            .map(|body| Event {
                time: full.then_some(time),
                kernel_time: full.then_some(12.5),
                source: "kmsg".into(),
                host: o("db01"),
                line: full.then_some(40),
                incident: full.then(|| "5f1c2a9e0b7d4c3a".to_string()),
                body,
            })
            .collect()
    }

    /// Exhaustive: a new variant does not compile until it is numbered
    /// here, and then the test below wants a sample and a schema entry.
    fn variant(b: &Body) -> usize {
        match b {
            Body::HungTask(_) => 0,
            Body::OomKill(_) => 1,
            Body::SignalDeath(_) => 2,
            Body::SoftLockup(_) => 3,
            Body::RcuStall(_) => 4,
            Body::Oops(_) => 5,
            Body::Panic(_) => 6,
            Body::Sysrq(_) => 7,
            Body::DentryPressure(_) => 8,
            Body::Lost(_) => 9,
            Body::Action(_) => 10,
            Body::Warning(_) => 11,
            Body::Bug(_) => 12,
            Body::HardLockup(_) => 13,
            Body::Mce(_) => 14,
            Body::FsError(_) => 15,
            Body::IoError(_) => 16,
            Body::NetdevTimeout(_) => 17,
            Body::AllocFailure(_) => 18,
            Body::OomNoKillable(_) => 19,
            Body::Pressure(_) => 20,
            Body::Pattern(_) => 21,
            Body::PreviousBoot(_) => 22,
        }
    }

    /// An object's keys in the order written (serde_json's map sorts).
    fn top_level_keys(json: &str) -> Vec<String> {
        struct Keys(Vec<String>);
        impl<'de> serde::Deserialize<'de> for Keys {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Keys;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> Result<Keys, A::Error> {
                        let mut keys = Vec::new();
                        while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                            keys.push(k);
                        }
                        Ok(Keys(keys))
                    }
                }
                d.deserialize_map(V)
            }
        }
        serde_json::from_str::<Keys>(json).unwrap().0
    }

    fn json_of(v: FieldValue) -> serde_json::Value {
        match v {
            FieldValue::Str(s) => s.into_owned().into(),
            FieldValue::Int(n) => serde_json::from_str(&n.to_string()).unwrap(),
            FieldValue::Float(x) => x.into(),
            FieldValue::Bool(b) => b.into(),
            FieldValue::List(l) => l.to_vec().into(),
            FieldValue::Null => serde_json::Value::Null,
        }
    }

    #[test]
    fn schema_names_every_kind_once_in_order() {
        let all = samples(true);
        let variants: Vec<usize> = all.iter().map(|e| variant(&e.body)).collect();
        assert_eq!(variants, (0..SCHEMA.len()).collect::<Vec<_>>());
        let names: Vec<&str> = all.iter().map(|e| e.body.kind()).collect();
        let schema: Vec<&str> = SCHEMA.iter().map(|k| k.name).collect();
        assert_eq!(names, schema);
        assert_eq!(Body::KINDS, schema.as_slice());
        for k in SCHEMA {
            assert_eq!(kind_schema(k.name), Some(k));
            for f in k.fields {
                assert!(
                    COMMON_FIELDS.iter().all(|c| c.name != f.name),
                    "{}.{} shadows a common field",
                    k.name,
                    f.name
                );
            }
        }
        let triggers: Vec<&str> = SCHEMA
            .iter()
            .filter(|k| !k.rule_trigger)
            .map(|k| k.name)
            .collect();
        assert_eq!(triggers, ["action"]);
    }

    /// The schema, `Event::field` and the JSON agree: the same keys in the
    /// same order, the same values, the declared types and nullability.
    #[test]
    fn schema_accessors_and_json_agree() {
        for full in [true, false] {
            for ev in samples(full) {
                let schema = ev.body.schema();
                let json: serde_json::Value = serde_json::from_str(&ev.to_json()).unwrap();
                let keys = top_level_keys(&ev.to_json());
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let fields: Vec<&Field> = COMMON_FIELDS.iter().chain(schema.fields).collect();
                let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                if full {
                    assert_eq!(keys, names, "{}", schema.name);
                } else {
                    // Left out only when null (line, unreported, …).
                    let present: Vec<&str> =
                        names.iter().copied().filter(|n| keys.contains(n)).collect();
                    assert_eq!(keys, present, "{}", schema.name);
                }
                for f in fields {
                    let v = ev
                        .field(f.name)
                        .unwrap_or_else(|| panic!("{}.{} has no accessor", schema.name, f.name));
                    let what = format!("{}.{} ({v:?})", schema.name, f.name);
                    match (&v, f.ty) {
                        (FieldValue::Null, _) => assert!(
                            f.nullable && !full,
                            "{what}: null only where nullable, and only when left out"
                        ),
                        (FieldValue::Str(_), FieldType::Str)
                        | (FieldValue::Int(_), FieldType::Int)
                        | (FieldValue::Float(_), FieldType::Float)
                        | (FieldValue::Bool(_), FieldType::Bool)
                        | (FieldValue::List(_), FieldType::List) => {
                            assert!(full || !f.nullable, "{what}: nullable yet set")
                        }
                        _ => panic!("{what}: declared {:?}", f.ty),
                    }
                    let shown = json.get(f.name).cloned().unwrap_or_default();
                    assert_eq!(json_of(v), shown, "{what}");
                }
                assert_eq!(ev.field("no_such_field"), None);
            }
        }
    }

    #[test]
    fn pattern_captures_are_fields() {
        let e = Event {
            time: None,
            kernel_time: Some(1.0),
            source: "kmsg".into(),
            host: None,
            line: None,
            incident: None,
            body: Body::Pattern(Pattern {
                pattern: "mpath".into(),
                captures: vec![("map".into(), Some("mpatha".into())), ("path".into(), None)],
            }),
        };
        assert_eq!(
            e.to_json(),
            r#"{"kind":"pattern","time":null,"kernel_time":1.0,"source":"kmsg","host":null,"pattern":"mpath","map":"mpatha","path":null}"#
        );
        assert_eq!(e.field("map"), Some(FieldValue::from("mpatha")));
        assert_eq!(e.field("path"), Some(FieldValue::Null));
        assert_eq!(e.field("other"), None);
    }

    #[test]
    fn wall_time_keeps_what_the_log_said() {
        let local =
            NaiveDateTime::parse_from_str("2024-03-01 10:00:00.5", "%Y-%m-%d %H:%M:%S%.f").unwrap();
        let w = WallTime {
            local,
            offset: None,
        };
        assert_eq!(w.to_string(), "2024-03-01T10:00:00.500");
        let w = WallTime {
            local,
            offset: FixedOffset::east_opt(3600),
        };
        assert_eq!(w.to_string(), "2024-03-01T10:00:00.500+01:00");
        assert_eq!(w.comparable().to_string(), "2024-03-01 09:00:00.500");
    }
}
