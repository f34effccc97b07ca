//! Incident bundles: one directory per incident holding everything a
//! support engineer asks for first, collected at the moment it exists.
//!
//! This module owns the `run.incidents` configuration section, the bundle
//! layout (`<evidence_dir>/incidents/<UTC time>-<kind>-<short id>/`), the
//! collectors that copy /proc state into it with a size cap and a deadline
//! per file, retention, and the `watchdog incidents` subcommand. The daemon's
//! writer thread drives a [`Bundle`]; nothing here runs in the poll loop.
//!
//! One incident, in the order the writer thread calls it:
//! [`Bundle::create`] → [`Bundle::add_event`] (each event of the incident) →
//! [`Bundle::append_kmsg`] (the look-back ring, then each SysRq answer as it
//! is read back) → [`Bundle::collect_proc`] → [`Bundle::write_check`] →
//! [`Bundle::adopt_file`] (the ftrace snapshot) → [`Bundle::add_action`]
//! (each action's outcome) → [`Bundle::close`] → [`store::apply_retention`].

mod bundle;
pub mod cli;
mod collect;
pub mod kmsg;
pub mod pack;
mod read;
pub mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

pub use bundle::{
    ActionRecord, Bundle, FileEntry, Manifest, NotCollected, Origin, ProcessSummary, TaskSummary,
    CHECK, KMSG, MANIFEST, MANIFEST_FORMAT,
};
pub use collect::CollectSummary;

/// Name of the directory under `run.evidence_dir` that holds the bundles.
pub const INCIDENTS_DIR: &str = "incidents";

/// Permissions of bundle directories and files: readable by the group (a
/// support team), never by everyone, since task dumps and command lines
/// can carry secrets.
pub const DIR_MODE: u32 = 0o750;
pub const FILE_MODE: u32 = 0o640;

/// `run.incidents` as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// Record a bundle for each incident.
    pub enabled: bool,
    /// Bundles kept (oldest removed first).
    pub keep: u32,
    /// All bundles together, in bytes.
    pub max_bytes: u64,
    /// One bundle, in bytes, manifest included.
    pub max_bundle_bytes: u64,
    /// Kernel records kept in memory to start `kmsg.txt` with.
    pub kmsg_lookback_records: usize,
    /// Reading back the kernel's answer to a SysRq: at most this many
    /// records, bytes and milliseconds, ending earlier after this many
    /// milliseconds of quiet.
    pub sysrq_readback_max_records: usize,
    pub sysrq_readback_max_bytes: u64,
    pub sysrq_readback_timeout_ms: u64,
    pub sysrq_readback_quiet_ms: u64,
    /// One /proc file: at most this many bytes, within this many ms.
    pub proc_file_max_bytes: u64,
    pub proc_file_timeout_ms: u64,
    /// All of the /proc collection together.
    pub collect_timeout_secs: u64,
    /// Processes copied by resident memory, largest first.
    pub largest_processes: usize,
    /// Tasks in D state copied (stack, wchan, status, cmdline).
    pub max_blocked_tasks: usize,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            enabled: true,
            keep: 50,
            max_bytes: 1 << 30,
            max_bundle_bytes: 64 << 20,
            kmsg_lookback_records: 200,
            sysrq_readback_max_records: 100_000,
            sysrq_readback_max_bytes: 32 << 20,
            sysrq_readback_timeout_ms: 10_000,
            sysrq_readback_quiet_ms: 1_000,
            proc_file_max_bytes: 4 << 20,
            proc_file_timeout_ms: 1_000,
            collect_timeout_secs: 30,
            largest_processes: 20,
            max_blocked_tasks: 200,
        }
    }
}

/// Validated `run.incidents`: what the writer thread and the
/// `incidents` subcommand use.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSettings {
    pub enabled: bool,
    pub keep: u32,
    pub max_bytes: u64,
    pub max_bundle_bytes: u64,
    pub kmsg_lookback_records: usize,
    pub readback: kmsg::ReadbackLimits,
    pub proc_file_max_bytes: u64,
    pub proc_file_timeout: Duration,
    pub collect_timeout: Duration,
    pub largest_processes: usize,
    pub max_blocked_tasks: usize,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        // The defaults are valid by construction (a test keeps them so).
        IncidentsConfig::default().settings()
    }
}

/// Smallest bundle cap accepted: a manifest with a few events and the
/// small /proc files must fit.
pub const MIN_BUNDLE_BYTES: u64 = 64 << 10;

impl IncidentsConfig {
    /// Checks every setting; errors carry their YAML path under `prefix`
    /// (`run.incidents`).
    pub fn compile(&self, prefix: &str) -> Result<IncidentSettings, Vec<ConfigError>> {
        let mut errs = Vec::new();
        let mut err = |name: &str, message: String| {
            errs.push(ConfigError {
                path: format!("{prefix}.{name}"),
                message,
            })
        };
        let ranges: [(&str, u64, u64, u64); 11] = [
            ("keep", self.keep.into(), 1, 100_000),
            (
                "max_bundle_bytes",
                self.max_bundle_bytes,
                MIN_BUNDLE_BYTES,
                1 << 40,
            ),
            (
                "kmsg_lookback_records",
                self.kmsg_lookback_records as u64,
                0,
                1_000_000,
            ),
            (
                "sysrq_readback_max_records",
                self.sysrq_readback_max_records as u64,
                1,
                10_000_000,
            ),
            (
                "sysrq_readback_max_bytes",
                self.sysrq_readback_max_bytes,
                4096,
                1 << 32,
            ),
            (
                "sysrq_readback_timeout_ms",
                self.sysrq_readback_timeout_ms,
                100,
                600_000,
            ),
            (
                "sysrq_readback_quiet_ms",
                self.sysrq_readback_quiet_ms,
                10,
                600_000,
            ),
            (
                "proc_file_max_bytes",
                self.proc_file_max_bytes,
                4096,
                1 << 30,
            ),
            (
                "proc_file_timeout_ms",
                self.proc_file_timeout_ms,
                10,
                600_000,
            ),
            ("collect_timeout_secs", self.collect_timeout_secs, 1, 3600),
            (
                "max_blocked_tasks",
                self.max_blocked_tasks as u64,
                0,
                100_000,
            ),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                err(name, format!("must be between {lo} and {hi}, found {v}"));
            }
        }
        if self.largest_processes > 10_000 {
            err(
                "largest_processes",
                format!(
                    "must be between 0 and 10000, found {}",
                    self.largest_processes
                ),
            );
        }
        if self.max_bytes < self.max_bundle_bytes {
            err(
                "max_bytes",
                format!(
                    "must be at least max_bundle_bytes ({}), found {}",
                    self.max_bundle_bytes, self.max_bytes
                ),
            );
        }
        if self.sysrq_readback_quiet_ms > self.sysrq_readback_timeout_ms {
            err(
                "sysrq_readback_quiet_ms",
                format!(
                    "must not exceed sysrq_readback_timeout_ms ({}), found {}",
                    self.sysrq_readback_timeout_ms, self.sysrq_readback_quiet_ms
                ),
            );
        }
        if errs.is_empty() {
            Ok(self.settings())
        } else {
            Err(errs)
        }
    }

    fn settings(&self) -> IncidentSettings {
        IncidentSettings {
            enabled: self.enabled,
            keep: self.keep,
            max_bytes: self.max_bytes,
            max_bundle_bytes: self.max_bundle_bytes,
            kmsg_lookback_records: self.kmsg_lookback_records,
            readback: kmsg::ReadbackLimits {
                max_records: self.sysrq_readback_max_records,
                max_bytes: self.sysrq_readback_max_bytes,
                timeout: Duration::from_millis(self.sysrq_readback_timeout_ms),
                quiet: Duration::from_millis(self.sysrq_readback_quiet_ms),
            },
            proc_file_max_bytes: self.proc_file_max_bytes,
            proc_file_timeout: Duration::from_millis(self.proc_file_timeout_ms),
            collect_timeout: Duration::from_secs(self.collect_timeout_secs),
            largest_processes: self.largest_processes,
            max_blocked_tasks: self.max_blocked_tasks,
        }
    }
}

/// `<evidence_dir>/incidents`.
pub fn incidents_dir(evidence_dir: &Path) -> PathBuf {
    evidence_dir.join(INCIDENTS_DIR)
}

/// A new incident id: 16 hex digits, unique enough to name a directory
/// and to be typed as a short prefix. Drawn from the standard library's
/// randomly keyed hasher, mixed with the boot id and the time, so no
/// random device needs opening.
pub fn new_id(boot_id: Option<&str>, opened_at: chrono::DateTime<chrono::Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(boot_id.unwrap_or("").as_bytes());
    h.write_i64(opened_at.timestamp());
    h.write_u32(opened_at.timestamp_subsec_nanos());
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Directory name of an incident: `<UTC time>-<kind>-<short id>`, which
/// sorts by time, so retention removes the oldest first by name alone.
pub fn bundle_name(opened_at: chrono::DateTime<chrono::Utc>, kind: &str, id: &str) -> String {
    let kind: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let short: String = id.chars().take(8).collect();
    format!("{}-{kind}-{short}", opened_at.format("%Y%m%dT%H%M%SZ"))
}

/// What went wrong with a bundle or the incidents directory; each names
/// the path or the id it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentError {
    Io { path: PathBuf, message: String },
    Invalid(String),
    NotFound(String),
}

impl IncidentError {
    pub(crate) fn io(path: &Path, e: impl fmt::Display) -> IncidentError {
        IncidentError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for IncidentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IncidentError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            IncidentError::Invalid(s) | IncidentError::NotFound(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for IncidentError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_compile() {
        let s = IncidentsConfig::default().compile("run.incidents").unwrap();
        assert_eq!(s, IncidentSettings::default());
        assert_eq!(s.kmsg_lookback_records, 200);
        assert_eq!(s.largest_processes, 20);
    }

    #[test]
    fn every_error_names_its_path() {
        let c = IncidentsConfig {
            keep: 0,
            max_bundle_bytes: 100,
            max_bytes: 10,
            sysrq_readback_quiet_ms: 700_000,
            ..IncidentsConfig::default()
        };
        let errs = c.compile("run.incidents").unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "run.incidents.keep",
                "run.incidents.max_bundle_bytes",
                "run.incidents.sysrq_readback_quiet_ms",
                "run.incidents.max_bytes",
                "run.incidents.sysrq_readback_quiet_ms",
            ]
        );
        assert!(errs[0].message.contains("found 0"), "{}", errs[0].message);
    }

    #[test]
    fn names_sort_by_time_and_are_safe() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-29T11:25:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            bundle_name(t, "hung_task", "0123456789abcdef"),
            "20261129T112500Z-hung_task-01234567"
        );
        assert_eq!(bundle_name(t, "../x y", "ab"), "20261129T112500Z-___x_y-ab");
        let a = new_id(Some("boot"), t);
        let b = new_id(Some("boot"), t);
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b, "two incidents in the same instant get different ids");
    }
}
