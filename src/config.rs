//! Configuration: YAML into plain structs (serde, unknown keys rejected),
//! then one validation pass that reports every problem with its YAML path.
//!
//! The default configuration is `config/watchdog.yaml`, embedded in the
//! binary; the same values are this module's `Default` impls, and a test
//! keeps the two in step.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::{Status, CHECK_IDS};
use crate::kernel::size::CrashKernel;

/// The embedded default configuration file.
pub const DEFAULT_YAML: &str = include_str!("../config/watchdog.yaml");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub check: CheckConfig,
}

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
            recommended_crashkernel: "1G-4G:192M,4G-64G:256M,64G-:512M".into(),
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

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// YAML path such as `check.dentry.warning_ratio` (empty: the document).
    pub path: String,
    pub message: String,
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} configuration error{}",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            if e.path.is_empty() {
                write!(f, "\n  {}", e.message)?;
            } else {
                write!(f, "\n  {}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// The embedded default configuration.
    pub fn embedded() -> Config {
        Config::default()
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            source: source.clone(),
            errors: vec![ConfigError {
                path: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::from_yaml(&text, &source)
    }

    /// Parses and validates YAML text; `source` names it in errors.
    pub fn from_yaml(text: &str, source: &str) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            source: source.to_string(),
            errors,
        };
        // An empty file (or one of comments only) is the defaults.
        let config: Config = if text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        }) {
            Config::default()
        } else {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let mut message = inner.to_string();
                if let Some(loc) = inner.location() {
                    if !message.contains("line ") {
                        message = format!("line {}: {message}", loc.line());
                    }
                }
                fail(vec![ConfigError {
                    path: if path == "." { String::new() } else { path },
                    message,
                }])
            })?
        };
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(fail(errors))
        }
    }

    /// Every semantic problem, each with its YAML path.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut err = |path: &str, message: String| {
            errs.push(ConfigError {
                path: path.to_string(),
                message,
            })
        };
        let c = &self.check;
        for (i, id) in c.skip.iter().enumerate() {
            if !CHECK_IDS.contains(&id.as_str()) {
                err(
                    &format!("check.skip[{i}]"),
                    format!("unknown check id {id:?} (see `watchdog check --list`)"),
                );
            }
        }
        if c.hung_task.failover_timeout_secs == 0 {
            err(
                "check.hung_task.failover_timeout_secs",
                "must be at least 1 second".into(),
            );
        }
        if c.hung_task.min_warnings < 0 {
            err(
                "check.hung_task.min_warnings",
                format!("must be 0 or more, found {}", c.hung_task.min_warnings),
            );
        }
        match CrashKernel::parse(&c.kdump.recommended_crashkernel) {
            Ok(CrashKernel::Auto) => err(
                "check.kdump.recommended_crashkernel",
                "must be a size or ranges, not \"auto\"".into(),
            ),
            Ok(_) => {}
            Err(e) => err("check.kdump.recommended_crashkernel", e),
        }
        if c.log_buf.bytes_per_thread == 0 || c.log_buf.bytes_per_thread > 1 << 20 {
            err(
                "check.log_buf.bytes_per_thread",
                format!(
                    "must be between 1 and 1048576, found {}",
                    c.log_buf.bytes_per_thread
                ),
            );
        }
        if !(-1000..=1000).contains(&c.oom_score_adj.at_or_below) {
            err(
                "check.oom_score_adj.at_or_below",
                format!(
                    "must be between -1000 and 1000, found {}",
                    c.oom_score_adj.at_or_below
                ),
            );
        }
        let r = &c.vfs_cache_pressure;
        if r.min < 0 || r.max < r.min {
            err(
                "check.vfs_cache_pressure",
                format!("need 0 <= min <= max, found min {} max {}", r.min, r.max),
            );
        }
        let d = &c.dentry;
        for (name, v) in [
            ("warning_ratio", d.warning_ratio),
            ("critical_ratio", d.critical_ratio),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                err(
                    &format!("check.dentry.{name}"),
                    format!("must be a fraction in (0, 1], found {v}"),
                );
            }
        }
        if d.warning_ratio > d.critical_ratio {
            err(
                "check.dentry",
                "warning_ratio must not exceed critical_ratio".into(),
            );
        }
        if !(c.uptime_208.margin_days >= 0.0 && c.uptime_208.margin_days <= 208.0) {
            err(
                "check.uptime_208.margin_days",
                format!(
                    "must be between 0 and 208, found {}",
                    c.uptime_208.margin_days
                ),
            );
        }
        if matches!(c.baseline.drift_status, Status::Ok | Status::Unknown) {
            err(
                "check.baseline.drift_status",
                "must be info, warning or critical".into(),
            );
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_file_is_the_defaults() {
        let parsed = Config::from_yaml(DEFAULT_YAML, "embedded").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c = Config::from_yaml("check:\n  hung_task:\n    failover_timeout_secs: 30\n", "t")
            .unwrap();
        assert_eq!(c.check.hung_task.failover_timeout_secs, 30);
        assert_eq!(c.check.hung_task.min_warnings, 100);
        assert_eq!(
            Config::from_yaml("# nothing\n", "t").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_key_names_its_path() {
        let e =
            Config::from_yaml("check:\n  hung_task:\n    failover: 30\n", "x.yaml").unwrap_err();
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].path, "check.hung_task.failover");
        assert!(
            e.errors[0].message.contains("unknown field `failover`"),
            "{e}"
        );
        assert!(e.to_string().starts_with("x.yaml: 1 configuration error"));
    }

    #[test]
    fn wrong_type_names_its_path() {
        let e =
            Config::from_yaml("check:\n  log_buf:\n    bytes_per_thread: lots\n", "x").unwrap_err();
        assert_eq!(e.errors[0].path, "check.log_buf.bytes_per_thread");
    }

    #[test]
    fn every_semantic_error_is_reported() {
        let yaml = "check:\n  skip: [nope]\n  dentry: {warning_ratio: 2, critical_ratio: 0.5}\n  kdump: {recommended_crashkernel: lots}\n  baseline: {drift_status: ok}\n";
        let e = Config::from_yaml(yaml, "x").unwrap_err();
        let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "check.skip[0]",
                "check.kdump.recommended_crashkernel",
                "check.dentry.warning_ratio",
                "check.dentry",
                "check.baseline.drift_status"
            ]
        );
    }
}
