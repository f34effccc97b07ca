//! `watchdog check`: the pre-incident configuration audit.
//!
//! Each check reads a few kernel files through [`Host`] and produces one
//! [`Finding`]. A check never fails the run: a file it cannot read or
//! understand makes its finding `unknown`, naming the path and the reason,
//! and the other checks go on. The registry [`CHECKS`] is the one table of
//! check IDs; `--list`, `--only`, `--skip` and the config all use it.

mod baseline;
pub mod fleet;
mod hung_task;
mod kdump;
mod kdump_target;
mod kernel_log;
mod lastboot;
mod memory;
pub mod metrics;
mod misc;
mod plan;
mod psi;
pub mod remedy;
mod render;
pub mod settings;
mod sysrq;
mod tracing;

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::host::{Host, ReadError, ReadErrorKind};
use crate::kernel::{self, Cmdline, KernelVersion};

pub use baseline::Baseline;
pub use plan::{render_plan, render_plan_json};
pub use remedy::Bootloader;
pub use render::{render_json, render_text};
pub use settings::CheckConfig;

/// A finding's status, from best to worst as Nagios orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Info,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }

    /// Sort key for "worst first": critical, warning, unknown, info, ok.
    pub fn severity(self) -> u8 {
        match self {
            Status::Critical => 4,
            Status::Warning => 3,
            Status::Unknown => 2,
            Status::Info => 1,
            Status::Ok => 0,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: String,
    pub status: Status,
    pub summary: String,
    /// Every value the check read, by name (sysctl names where one exists).
    pub values: BTreeMap<String, Value>,
    pub remediation: String,
    /// Names in `values` that change by themselves (uptime, counts of
    /// processes): recorded in a baseline but not reported as drift.
    #[serde(skip)]
    pub volatile: BTreeSet<String>,
}

impl Finding {
    pub fn new(id: &str) -> Finding {
        Finding {
            id: id.to_string(),
            status: Status::Unknown,
            summary: String::new(),
            values: BTreeMap::new(),
            remediation: String::new(),
            volatile: BTreeSet::new(),
        }
    }

    /// Records a value the check read.
    pub fn value(&mut self, name: &str, v: impl Into<Value>) {
        self.values.insert(name.to_string(), v.into());
    }

    /// Records a value that changes by itself (not compared to a baseline).
    pub fn volatile_value(&mut self, name: &str, v: impl Into<Value>) {
        self.value(name, v);
        self.volatile.insert(name.to_string());
    }

    pub fn set(
        &mut self,
        status: Status,
        summary: impl Into<String>,
        remediation: impl Into<String>,
    ) {
        self.status = status;
        self.summary = summary.into();
        self.remediation = remediation.into();
    }

    pub fn ok(&mut self, summary: impl Into<String>) {
        self.set(Status::Ok, summary, "");
    }
}

/// Why a check could not decide: the file and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: String,
    pub kind: ProblemKind,
}

/// What an operator can do about a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Permission denied: run as root.
    Denied,
    /// The file does not exist on this kernel or tree.
    Missing,
    /// The file exists but holds something unexpected.
    Invalid,
}

impl Problem {
    pub fn new(kind: ProblemKind, reason: impl Into<String>) -> Problem {
        Problem {
            reason: reason.into(),
            kind,
        }
    }

    fn remediation(&self, id: &str) -> String {
        match self.kind {
            ProblemKind::Denied => format!(
                "Run watchdog check as root (or with read access to that file), or skip this check: --skip {id}"
            ),
            ProblemKind::Missing => format!(
                "This kernel or tree does not provide that file; if that is expected, skip this check: --skip {id}"
            ),
            ProblemKind::Invalid => format!(
                "The file does not hold what this kernel interface should: check what wrote it (a broken image, a bind mount), or skip this check: --skip {id}"
            ),
        }
    }
}

impl From<ReadError> for Problem {
    fn from(e: ReadError) -> Problem {
        let kind = match e.kind {
            ReadErrorKind::NotFound => ProblemKind::Missing,
            ReadErrorKind::PermissionDenied => ProblemKind::Denied,
            _ => ProblemKind::Invalid,
        };
        Problem::new(kind, format!("cannot read {e}"))
    }
}

type CheckFn = fn(&Ctx, &mut Finding) -> Result<(), Problem>;

/// One entry of the check registry.
pub struct CheckDef {
    pub id: &'static str,
    pub about: &'static str,
    run: CheckFn,
}

/// Every check, in report order. IDs are a contract: users grep and
/// suppress them.
pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "kdump-reserved",
        about: "memory is reserved for a crash kernel",
        run: kdump::reserved,
    },
    CheckDef {
        id: "kdump-loaded",
        about: "a crash kernel is loaded (kdump operational)",
        run: kdump::loaded,
    },
    CheckDef {
        id: "kdump-size",
        about: "the crash-kernel reservation fits this RAM size",
        run: kdump::size,
    },
    CheckDef {
        id: "kdump-target",
        about: "kdump's dump target exists, is writable and has room for a dump; sane core_collector and failure_action",
        run: kdump_target::target,
    },
    CheckDef {
        id: "kdump-initramfs",
        about: "the kdump initramfs for the running kernel exists and is newer than kdump.conf and the kernel",
        run: kdump_target::initramfs,
    },
    CheckDef {
        id: "sysrq-trigger",
        about: "/proc/sysrq-trigger exists so tasks can be dumped",
        run: sysrq::trigger,
    },
    CheckDef {
        id: "sysrq-keyboard",
        about: "kernel.sysrq (or sysrq_always_enabled) lets console users dump tasks (SysRq-T)",
        run: sysrq::keyboard,
    },
    CheckDef {
        id: "cmdline-quiet",
        about: "no quiet/rhgb hiding kernel messages",
        run: kernel_log::quiet,
    },
    CheckDef {
        id: "log-buf-size",
        about: "the kernel log buffer holds a whole SysRq-T dump",
        run: kernel_log::log_buf_size,
    },
    CheckDef {
        id: "printk-time",
        about: "kernel messages carry timestamps",
        run: kernel_log::printk_time,
    },
    CheckDef {
        id: "remote-console",
        about: "a serial console or netconsole keeps the last words",
        run: kernel_log::remote_console,
    },
    CheckDef {
        id: "console-loglevel",
        about: "kernel.printk lets SysRq-T and hung-task reports reach the remote console",
        run: kernel_log::console_loglevel,
    },
    CheckDef {
        id: "hung-task-timeout",
        about: "the hung-task detector is on and fires before failover",
        run: hung_task::timeout,
    },
    CheckDef {
        id: "hung-task-warnings",
        about: "the hung-task detector has warnings left",
        run: hung_task::warnings,
    },
    CheckDef {
        id: "panic-on-oom",
        about: "what an OOM does (kill or panic)",
        run: memory::panic_on_oom,
    },
    CheckDef {
        id: "oom-score-adj",
        about: "no large process is excluded from the OOM killer",
        run: memory::oom_score_adj,
    },
    CheckDef {
        id: "vfs-cache-pressure",
        about: "vm.vfs_cache_pressure is in a sane range",
        run: memory::vfs_cache_pressure,
    },
    CheckDef {
        id: "dentry-overflow",
        about: "the dentry shrinker is far from overflowing",
        run: memory::dentry_overflow,
    },
    CheckDef {
        id: "psi",
        about: "pressure stall information (PSI) is on, for pressure events",
        run: psi::psi,
    },
    CheckDef {
        id: "uptime-208-days",
        about: "no RHEL 6 kernel near its 208.5-day uptime crash",
        run: misc::uptime_208_days,
    },
    CheckDef {
        id: "tracefs",
        about: "tracefs is available for snapshots and tracing",
        run: tracing::tracefs,
    },
    CheckDef {
        id: "ftrace-snapshot",
        about: "ftrace snapshots are supported",
        run: tracing::snapshot,
    },
    CheckDef {
        id: "kprobe-events",
        about: "kprobe events are supported (signal-death tracing)",
        run: tracing::kprobe_events,
    },
    CheckDef {
        id: "panic-settings",
        about: "panic, panic_on_oops, hung_task_panic, softlockup_panic",
        run: misc::panic_settings,
    },
    CheckDef {
        id: "nmi-panic",
        about: "the BMC's NMI button panics the kernel (a vmcore of a hung host)",
        run: misc::nmi_panic,
    },
    CheckDef {
        id: "hardware-watchdog",
        about: "no hardware watchdog resets the host before a hang is reported",
        run: hung_task::hardware_watchdog,
    },
    CheckDef {
        id: "tainted",
        about: "kernel.tainted: proprietary or out-of-tree modules, an earlier oops or warning",
        run: misc::tainted,
    },
    CheckDef {
        id: "sysstat",
        about: "a resource history is kept (sysstat/sar, atop or PCP)",
        run: misc::sysstat,
    },
    CheckDef {
        id: "pstore",
        about: "a persistent pstore backend keeps a panic's last messages",
        run: lastboot::pstore,
    },
    CheckDef {
        id: "persistent-journal",
        about: "the kernel log of the previous boot survives a reboot",
        run: lastboot::persistent_journal,
    },
];

/// The ID of findings reporting a change since a baseline.
pub const DRIFT_ID: &str = "baseline-drift";

/// All check IDs, in report order.
pub const CHECK_IDS: [&str; CHECKS.len()] = {
    let mut ids = [""; CHECKS.len()];
    let mut i = 0;
    while i < CHECKS.len() {
        ids[i] = CHECKS[i].id;
        i += 1;
    }
    ids
};

/// What every check may need, read at most once per run.
pub struct Ctx<'a> {
    pub host: &'a Host,
    pub cfg: &'a CheckConfig,
    cmdline: OnceCell<Result<Cmdline, Problem>>,
    version: OnceCell<Option<KernelVersion>>,
    bootloader: OnceCell<Bootloader>,
}

impl<'a> Ctx<'a> {
    pub fn new(host: &'a Host, cfg: &'a CheckConfig) -> Ctx<'a> {
        Ctx {
            host,
            cfg,
            cmdline: OnceCell::new(),
            version: OnceCell::new(),
            bootloader: OnceCell::new(),
        }
    }

    /// How this host's kernel command line is changed.
    pub fn bootloader(&self) -> Bootloader {
        *self
            .bootloader
            .get_or_init(|| Bootloader::for_host(self.host))
    }

    /// A remediation that adds/removes kernel command-line words.
    pub fn cmdline_fix(&self, add: &[&str], remove: &[&str]) -> String {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        let remove: Vec<String> = remove.iter().map(|s| s.to_string()).collect();
        self.bootloader().one_line(&add, &remove)
    }

    pub fn cmdline(&self) -> Result<&Cmdline, Problem> {
        self.cmdline
            .get_or_init(|| {
                let text = self.host.read(crate::host::paths::CMDLINE)?;
                Ok(Cmdline::parse(&text))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn version(&self) -> Option<&KernelVersion> {
        self.version
            .get_or_init(|| {
                self.host
                    .kernel_release()
                    .and_then(|r| KernelVersion::parse(&r))
            })
            .as_ref()
    }

    /// A boolean option of the running kernel's build configuration
    /// (`/boot/config-RELEASE`): `Some(true)` for `=y`/`=m`, `Some(false)`
    /// for "is not set" or absent from a readable config, `None` when there
    /// is no config to read.
    pub fn kconfig(&self, name: &str) -> Option<bool> {
        let release = self.host.kernel_release()?;
        let text = self.host.read(&Host::kernel_config(&release)).ok()?;
        Some(matches!(
            kernel::tables::kconfig_value(&text, name),
            Some("y" | "m")
        ))
    }

    /// Reads a one-value file as text.
    pub fn text(&self, rel: &str) -> Result<String, Problem> {
        Ok(self.host.read_value(rel)?)
    }

    /// Reads a one-value file as an integer.
    pub fn int(&self, rel: &str) -> Result<i64, Problem> {
        let t = self.text(rel)?;
        kernel::parse_int(&t).map_err(|e| self.bad(rel, e))
    }

    /// Reads a one-value file as a non-negative integer.
    pub fn uint(&self, rel: &str) -> Result<u64, Problem> {
        let t = self.text(rel)?;
        kernel::parse_uint(&t).map_err(|e| self.bad(rel, e))
    }

    /// A problem with the content of `rel`.
    pub fn bad(&self, rel: &str, reason: impl fmt::Display) -> Problem {
        Problem::new(
            ProblemKind::Invalid,
            format!("{}: {reason}", self.host.path(rel).display()),
        )
    }
}

/// Which checks to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Selection {
    /// Unknown IDs in `--only`/`--skip`.
    pub fn unknown_ids(&self) -> Vec<String> {
        self.only
            .iter()
            .chain(&self.skip)
            .filter(|id| !CHECK_IDS.contains(&id.as_str()))
            .cloned()
            .collect()
    }

    fn wants(&self, id: &str, cfg: &CheckConfig) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == id))
            && !self.skip.iter().any(|s| s == id)
            && !cfg.skip.iter().any(|s| s == id)
    }
}

/// The whole audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub status: Status,
    pub exit_code: u8,
    pub host: Option<String>,
    pub kernel: Option<String>,
    /// When the checks ran (RFC 3339, UTC); `SOURCE_DATE_EPOCH` overrides
    /// it for reproducible output (see [`report_time`]).
    pub time: String,
    pub watchdog_version: &'static str,
    /// `ID` and `VERSION_ID` of os-release(5) under the root.
    pub os_release: OsRelease,
    pub boot_id: Option<String>,
    pub uptime_secs: Option<u64>,
    pub findings: Vec<Finding>,
}

/// The two os-release(5) fields a fleet groups hosts by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OsRelease {
    #[serde(rename = "ID")]
    pub id: Option<String>,
    #[serde(rename = "VERSION_ID")]
    pub version_id: Option<String>,
}

/// The tool's version as reports carry it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Now, or `SOURCE_DATE_EPOCH` (seconds since 1970, the
/// reproducible-builds.org convention) when set: golden files and
/// reproducible reports need a time that does not move.
pub fn report_time() -> String {
    let fixed = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    fixed
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Report {
    pub fn new(host: &Host, findings: Vec<Finding>) -> Report {
        let (status, exit_code) = overall(&findings);
        let os = host.os_release();
        Report {
            status,
            exit_code,
            host: host.hostname(),
            kernel: host.kernel_release(),
            time: report_time(),
            watchdog_version: VERSION,
            os_release: OsRelease {
                id: os.get("ID").cloned(),
                version_id: os.get("VERSION_ID").cloned(),
            },
            boot_id: host.boot_id(),
            uptime_secs: host.uptime_secs(),
            findings,
        }
    }

    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }
}

/// Nagios convention: CRITICAL beats WARNING beats UNKNOWN; OK and INFO
/// are both 0.
pub fn overall(findings: &[Finding]) -> (Status, u8) {
    let has = |s| findings.iter().any(|f| f.status == s);
    if has(Status::Critical) {
        (Status::Critical, 2)
    } else if has(Status::Warning) {
        (Status::Warning, 1)
    } else if has(Status::Unknown) {
        (Status::Unknown, 3)
    } else {
        (Status::Ok, 0)
    }
}

/// Runs the selected checks. Never panics on what it reads and never stops
/// early: each check's problem is its own finding.
pub fn run_checks(host: &Host, cfg: &CheckConfig, sel: &Selection) -> Vec<Finding> {
    let ctx = Ctx::new(host, cfg);
    CHECKS
        .iter()
        .filter(|c| sel.wants(c.id, cfg))
        .map(|c| {
            let mut f = Finding::new(c.id);
            if let Err(p) = (c.run)(&ctx, &mut f) {
                let fix = p.remediation(c.id);
                f.set(Status::Unknown, p.reason, fix);
            }
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_complete() {
        let set: BTreeSet<_> = CHECK_IDS.iter().collect();
        assert_eq!(set.len(), CHECKS.len());
        assert!(CHECK_IDS.iter().all(|id| !id.is_empty()));
    }

    fn f(status: Status) -> Finding {
        let mut f = Finding::new("x");
        f.status = status;
        f
    }

    /// Every file any check reads, filled with arbitrary bytes: the audit
    /// must finish with one finding per check and never panic.
    mod hostile {
        use super::super::*;
        use crate::host::paths;
        use proptest::prelude::*;

        const FILES: &[&str] = &[
            paths::OSRELEASE,
            paths::HOSTNAME,
            paths::CMDLINE,
            paths::LOADAVG,
            paths::MEMINFO,
            paths::UPTIME,
            paths::MOUNTS,
            paths::FILESYSTEMS,
            paths::SYSRQ,
            paths::HUNG_TASK_TIMEOUT,
            paths::HUNG_TASK_WARNINGS,
            paths::HUNG_TASK_PANIC,
            paths::PANIC,
            paths::PANIC_ON_OOPS,
            paths::SOFTLOCKUP_PANIC,
            paths::PANIC_ON_OOM,
            paths::VFS_CACHE_PRESSURE,
            paths::DENTRY_STATE,
            paths::KEXEC_CRASH_LOADED,
            paths::KEXEC_CRASH_SIZE,
            paths::PRINTK_TIME,
            paths::NETCONSOLE_SYSCONFIG,
            "proc/1/status",
            "proc/1/oom_score_adj",
            "proc/1/oom_adj",
            "proc/1/comm",
            "sys/kernel/config/netconsole/t/enabled",
            "sys/kernel/tracing/trace",
            paths::PRINTK,
            paths::TAINTED,
            paths::UNKNOWN_NMI_PANIC,
            paths::PANIC_ON_IO_NMI,
            paths::HUNG_TASK_CHECK_INTERVAL,
            paths::HUNG_TASK_CHECK_COUNT,
            paths::WATCHDOG_THRESH,
            paths::KDUMP_CONF,
            paths::KDUMP_TOOLS_DEFAULT,
            paths::OS_RELEASE,
            paths::BOOT_ID,
            paths::SYSSTAT_DEFAULT,
            "sys/class/watchdog/watchdog0/timeout",
            "sys/class/watchdog/watchdog0/state",
            "sys/class/watchdog/watchdog0/pretimeout",
            "boot/vmlinuz-x",
            "var/lib/kdump/initrd.img-x",
        ];

        /// Values that look almost right, to reach deeper than a parse error.
        fn content() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                "-?[0-9]{0,25}( [0-9]{1,12}){0,6}\n?".prop_map(String::into_bytes),
                "[A-Za-z]{1,10}:[ \t]*-?[0-9]{0,20}( kB)?\n".prop_map(String::into_bytes),
                "[0-9]\\.[0-9]{1,2}\\.[0-9]{1,3}-[0-9.]{1,12}el[0-9]".prop_map(String::into_bytes),
                "([a-z_]{1,8}(=[A-Za-z0-9:,\\-]{0,12})? ){0,6}".prop_map(String::into_bytes),
                "((path|core_collector|failure_action|nfs|ext4|raw) [/a-z0-9 -]{0,20}\n){0,4}"
                    .prop_map(String::into_bytes),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
            #[test]
            fn random_trees_never_break_the_audit(
                files in proptest::collection::vec(proptest::option::of(content()), FILES.len())
            ) {
                let dir = tempfile::tempdir().unwrap();
                for (rel, data) in FILES.iter().zip(&files) {
                    if let Some(data) = data {
                        let p = dir.path().join(rel);
                        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                        std::fs::write(p, data).unwrap();
                    }
                }
                let host = Host::new(dir.path());
                let cfg = CheckConfig::default();
                let findings = run_checks(&host, &cfg, &Selection::default());
                prop_assert_eq!(findings.len(), CHECKS.len());
                for f in &findings {
                    prop_assert!(!f.summary.is_empty(), "{} has no summary", f.id);
                }
                let report = Report::new(&host, findings);
                let _ = render_text(&report, true, true);
                let _ = render_json(&report);
            }
        }
    }

    #[test]
    fn exit_codes_follow_nagios() {
        use Status::*;
        assert_eq!(overall(&[f(Ok), f(Info)]), (Ok, 0));
        assert_eq!(overall(&[f(Ok), f(Unknown)]), (Unknown, 3));
        assert_eq!(overall(&[f(Unknown), f(Warning)]), (Warning, 1));
        assert_eq!(
            overall(&[f(Warning), f(Critical), f(Unknown)]),
            (Critical, 2)
        );
        assert_eq!(overall(&[]), (Ok, 0));
    }
}
