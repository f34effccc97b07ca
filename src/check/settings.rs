//! The `check:` section of the configuration: thresholds and choices of
//! `watchdog check` (and of the kdump checks `watchdog run` repeats), with
//! their defaults and their validation. The checks read these structs
//! directly once [`CheckConfig::validate`] found nothing wrong.

use serde::{Deserialize, Serialize};

use super::{Status, CHECK_IDS};
use crate::error::{ConfigError, Problems};
use crate::kernel::size::CrashKernel;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    pub skip: Vec<String>,
    pub hung_task: HungTaskCheck,
    pub kdump: KdumpCheck,
    pub log_buf: LogBufCheck,
    pub oom_score_adj: OomScoreAdjCheck,
    pub vfs_cache_pressure: PressureRange,
    pub dentry: DentryCheck,
    pub uptime_208: Uptime208Check,
    pub baseline: BaselineCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HungTaskCheck {
    pub failover_timeout_secs: u64,
    pub min_warnings: i64,
}

impl Default for HungTaskCheck {
    fn default() -> Self {
        HungTaskCheck {
            failover_timeout_secs: 120,
            min_warnings: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KdumpCheck {
    pub recommended_crashkernel: String,
}

impl Default for KdumpCheck {
    fn default() -> Self {
        KdumpCheck {
            recommended_crashkernel: "distribution".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogBufCheck {
    pub bytes_per_thread: u64,
}

impl Default for LogBufCheck {
    fn default() -> Self {
        LogBufCheck {
            bytes_per_thread: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OomScoreAdjCheck {
    pub at_or_below: i64,
    pub min_rss_mib: u64,
    pub ignore: Vec<String>,
}

impl Default for OomScoreAdjCheck {
    fn default() -> Self {
        OomScoreAdjCheck {
            at_or_below: -1000,
            min_rss_mib: 256,
            ignore: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PressureRange {
    pub min: i64,
    pub max: i64,
}

impl Default for PressureRange {
    fn default() -> Self {
        PressureRange { min: 1, max: 100 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DentryCheck {
    pub warning_ratio: f64,
    pub critical_ratio: f64,
}

impl Default for DentryCheck {
    fn default() -> Self {
        DentryCheck {
            warning_ratio: 0.5,
            critical_ratio: 0.9,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Uptime208Check {
    pub margin_days: f64,
}

impl Default for Uptime208Check {
    fn default() -> Self {
        Uptime208Check { margin_days: 14.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineCheck {
    pub drift_status: Status,
}

impl Default for BaselineCheck {
    fn default() -> Self {
        BaselineCheck {
            drift_status: Status::Warning,
        }
    }
}

impl CheckConfig {
    /// Every problem in the section at YAML path `path`, in document order.
    pub fn validate(&self, path: &str) -> Vec<ConfigError> {
        let mut p = Problems::new(path);
        for (i, id) in self.skip.iter().enumerate() {
            if !CHECK_IDS.contains(&id.as_str()) {
                p.at(
                    &format!("skip[{i}]"),
                    format!("unknown check id {id:?} (see `watchdog check --list`)"),
                );
            }
        }
        if self.hung_task.failover_timeout_secs == 0 {
            p.at(
                "hung_task.failover_timeout_secs",
                "must be at least 1 second",
            );
        }
        if self.hung_task.min_warnings < 0 {
            p.at(
                "hung_task.min_warnings",
                format!("must be 0 or more, found {}", self.hung_task.min_warnings),
            );
        }
        match CrashKernel::parse(&self.kdump.recommended_crashkernel) {
            _ if self.kdump.recommended_crashkernel == "distribution" => {}
            Ok(CrashKernel::Auto) => p.at(
                "kdump.recommended_crashkernel",
                "must be \"distribution\", a size or ranges, not \"auto\"",
            ),
            Ok(_) => {}
            Err(e) => p.at("kdump.recommended_crashkernel", e),
        }
        if self.log_buf.bytes_per_thread == 0 || self.log_buf.bytes_per_thread > 1 << 20 {
            p.at(
                "log_buf.bytes_per_thread",
                format!(
                    "must be between 1 and 1048576, found {}",
                    self.log_buf.bytes_per_thread
                ),
            );
        }
        if !(-1000..=1000).contains(&self.oom_score_adj.at_or_below) {
            p.at(
                "oom_score_adj.at_or_below",
                format!(
                    "must be between -1000 and 1000, found {}",
                    self.oom_score_adj.at_or_below
                ),
            );
        }
        let r = &self.vfs_cache_pressure;
        if r.min < 0 || r.max < r.min {
            p.at(
                "vfs_cache_pressure",
                format!("need 0 <= min <= max, found min {} max {}", r.min, r.max),
            );
        }
        let d = &self.dentry;
        for (name, v) in [
            ("warning_ratio", d.warning_ratio),
            ("critical_ratio", d.critical_ratio),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                p.at(
                    &format!("dentry.{name}"),
                    format!("must be a fraction in (0, 1], found {v}"),
                );
            }
        }
        if d.warning_ratio > d.critical_ratio {
            p.at("dentry", "warning_ratio must not exceed critical_ratio");
        }
        if !(self.uptime_208.margin_days >= 0.0 && self.uptime_208.margin_days <= 208.0) {
            p.at(
                "uptime_208.margin_days",
                format!(
                    "must be between 0 and 208, found {}",
                    self.uptime_208.margin_days
                ),
            );
        }
        if matches!(self.baseline.drift_status, Status::Ok | Status::Unknown) {
            p.at("baseline.drift_status", "must be info, warning or critical");
        }
        p.into_errors()
    }
}
