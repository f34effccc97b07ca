//! Configuration: assembles the sections of the YAML file. Serde fills
//! each section's plain struct (unknown keys rejected); then each section
//! validates itself and every problem is reported with its YAML path.
//!
//! The sections belong to their subsystems, with their defaults and their
//! checks: `check:` is [`crate::check::settings`], `run:` is
//! [`crate::run::settings`] (with [`crate::collectors::settings`]), and
//! `udplogger:` is [`crate::udplogger::settings`]. This module only puts
//! them together, so none of them imports it.
//!
//! The default configuration is `config/watchdog.yaml`, embedded in the
//! binary; the same values are the sections' `Default` impls, and a test
//! keeps the two in step.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::CheckConfig;
use crate::error::{ConfigError, ConfigErrors};
use crate::patterns::{PatternConfig, SitePatterns};
use crate::run::settings::RunConfig;
use crate::udplogger::settings::UdpLoggerConfig;

/// The embedded default configuration file.
pub const DEFAULT_YAML: &str = include_str!("../config/watchdog.yaml");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub check: CheckConfig,
    pub run: RunConfig,
    pub udplogger: UdpLoggerConfig,
    /// Site patterns ([`crate::patterns`]): `run` and `scan` report their
    /// matches as `pattern` events.
    pub patterns: Vec<PatternConfig>,
}

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
            errors: vec![ConfigError::new("", format!("cannot read: {e}"))],
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

    /// Every semantic problem, each with its YAML path: each section's
    /// own validation, in a fixed order (check, udplogger, patterns, run;
    /// the rules are checked against the patterns' captures).
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errs = self.check.validate("check");
        if let Err(e) = self.udplogger.compile("udplogger") {
            errs.extend(e);
        }
        let (patterns, e) = crate::patterns::compile_all(&self.patterns, "patterns");
        errs.extend(e);
        errs.extend(self.run.validate_with("run", &patterns.fields()));
        errs
    }

    /// The compiled site patterns (none when they do not compile: a
    /// loaded configuration has been validated already).
    pub fn site_patterns(&self) -> SitePatterns {
        crate::patterns::compile(&self.patterns, "patterns").unwrap_or_default()
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
    fn udplogger_errors_name_their_paths() {
        let yaml = "udplogger:\n  listen: [\"nowhere:1\", \"127.0.0.1:6666\"]\n  max_senders: 0\n  timezone: utc\n";
        let e = Config::from_yaml(yaml, "x").unwrap_err();
        let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["udplogger.listen[0]", "udplogger.max_senders"]);
        let c =
            Config::from_yaml("udplogger:\n  layout: per_sender\n  rotate: hourly\n", "x").unwrap();
        let s = c.udplogger.compile("udplogger").unwrap();
        assert!(s.output.per_sender);
        assert_eq!(s.period, crate::udplogger::clock::Period::Hourly);
        let e = Config::from_yaml("udplogger:\n  input: both\n", "x").unwrap_err();
        assert_eq!(e.errors[0].path, "udplogger.input");
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
