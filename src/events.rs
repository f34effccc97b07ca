//! The events watchdog reports, and their JSON form (DESIGN.md "Event
//! JSON"): one flat object per event, common fields first (`kind`, `time`,
//! `kernel_time`, `source`, `host`), then the fields of its kind.
//!
//! Fields the kernel text did not carry are `null`, so every event of one
//! kind has the same keys and `jq` filters need no `?`.

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
    Oops(Summary),
    Panic(Summary),
    Sysrq(Sysrq),
    DentryPressure(DentryPressure),
    Lost(Lost),
    Action(Action),
}

impl Body {
    /// The `kind` string of DESIGN.md.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::HungTask(_) => "hung_task",
            Body::OomKill(_) => "oom_kill",
            Body::SignalDeath(_) => "signal_death",
            Body::SoftLockup(_) => "soft_lockup",
            Body::RcuStall(_) => "rcu_stall",
            Body::Oops(_) => "oops",
            Body::Panic(_) => "panic",
            Body::Sysrq(_) => "sysrq",
            Body::DentryPressure(_) => "dentry_pressure",
            Body::Lost(_) => "lost",
            Body::Action(_) => "action",
        }
    }

    /// Every kind, in the order of DESIGN.md's table.
    pub const KINDS: &'static [&'static str] = &[
        "hung_task",
        "oom_kill",
        "signal_death",
        "soft_lockup",
        "rcu_stall",
        "oops",
        "panic",
        "sysrq",
        "dentry_pressure",
        "lost",
        "action",
    ];

    /// The task the event is about, for summaries (`comm`, `pid`).
    pub fn task(&self) -> Option<(&str, Option<u32>)> {
        match self {
            Body::HungTask(h) => h.comm.as_deref().map(|c| (c, h.pid)),
            Body::OomKill(o) => o.comm.as_deref().map(|c| (c, o.pid)),
            Body::SignalDeath(s) => Some((s.comm.as_str(), s.pid)),
            Body::SoftLockup(s) => s.comm.as_deref().map(|c| (c, s.pid)),
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

#[derive(Serialize)]
#[serde(untagged)]
enum BodyRef<'a> {
    HungTask(&'a HungTask),
    OomKill(&'a OomKill),
    SignalDeath(&'a SignalDeath),
    SoftLockup(&'a SoftLockup),
    Summary(&'a Summary),
    Sysrq(&'a Sysrq),
    DentryPressure(&'a DentryPressure),
    Lost(&'a Lost),
    Action(&'a Action),
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
            Body::RcuStall(b) | Body::Oops(b) | Body::Panic(b) => BodyRef::Summary(b),
            Body::Sysrq(b) => BodyRef::Sysrq(b),
            Body::DentryPressure(b) => BodyRef::DentryPressure(b),
            Body::Lost(b) => BodyRef::Lost(b),
            Body::Action(b) => BodyRef::Action(b),
        };
        Wire {
            kind: self.body.kind(),
            time: self.time.as_ref(),
            kernel_time: self.kernel_time,
            source: &self.source,
            host: self.host.as_deref(),
            line: self.line,
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
