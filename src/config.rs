//! Configuration: YAML into plain structs (serde, unknown keys rejected),
//! then one validation pass that reports every problem with its YAML path.
//!
//! The default configuration is `config/watchdog.yaml`, embedded in the
//! binary; the same values are this module's `Default` impls, and a test
//! keeps the two in step.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::check::CheckConfig;
pub use crate::error::{ConfigError, ConfigErrors};
pub use crate::udplogger::settings::UdpLoggerConfig;

/// The embedded default configuration file.
pub const DEFAULT_YAML: &str = include_str!("../config/watchdog.yaml");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub check: CheckConfig,
    pub run: RunConfig,
    pub udplogger: UdpLoggerConfig,
}

/// Where `watchdog run` starts reading /dev/kmsg the first time (no saved
/// position for this boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KmsgStart {
    /// Only what the kernel logs from now on.
    End,
    /// Everything still in the kernel's buffer.
    Replay,
}

/// Settings of `watchdog run`, the always-on guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub event_log: String,
    pub event_log_max_bytes: u64,
    pub event_log_keep: u32,
    pub state_file: String,
    pub evidence_dir: String,
    pub kmsg_start: KmsgStart,
    pub allow_destructive: bool,
    pub oom_score_adj: i64,
    pub mlockall: bool,
    pub metrics_file: String,
    pub metrics_interval_secs: u64,
    pub tracefs: TracefsConfig,
    pub proc: ProcConfig,
    pub kdump_check: KdumpSchedule,
    pub rules: Vec<crate::engine::RuleConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            event_log: "/var/log/watchdog/events.jsonl".into(),
            event_log_max_bytes: 16 << 20,
            event_log_keep: 4,
            state_file: "/var/lib/watchdog/kmsg.state".into(),
            evidence_dir: "/var/lib/watchdog/evidence".into(),
            kmsg_start: KmsgStart::End,
            allow_destructive: false,
            oom_score_adj: -1000,
            mlockall: true,
            metrics_file: String::new(),
            metrics_interval_secs: 15,
            tracefs: TracefsConfig::default(),
            proc: ProcConfig::default(),
            kdump_check: KdumpSchedule::default(),
            rules: default_rules(),
        }
    }
}

/// The default rules, as in config/watchdog.yaml (a test keeps them equal).
pub const DEFAULT_RULES_YAML: &str = "\
- name: hung-task-evidence
  kind: hung_task
  cooldown_secs: 300
  actions: [{sysrq: t}, ftrace_snapshot]
- name: oom-memory-state
  kind: oom_kill
  cooldown_secs: 60
  actions: [{sysrq: m}]
- name: soft-lockup-backtraces
  kind: soft_lockup
  cooldown_secs: 300
  actions: [{sysrq: l}]
- name: dentry-pressure
  kind: dentry_pressure
  cooldown_secs: 3600
  actions: [log]
";

fn default_rules() -> Vec<crate::engine::RuleConfig> {
    serde_yaml::from_str(DEFAULT_RULES_YAML).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracefsConfig {
    pub enabled: bool,
    pub instance: String,
    pub signal_deaths: bool,
    pub oom_victims: bool,
    pub shrink_slab: bool,
    pub shrink_slab_min_total_scan: u64,
    pub flight_recorder_events: Vec<String>,
    pub flight_recorder_buffer_kb: u64,
    pub snapshot_keep: u32,
    pub snapshot_max_bytes: u64,
}

impl Default for TracefsConfig {
    fn default() -> Self {
        TracefsConfig {
            enabled: true,
            instance: "watchdog".into(),
            signal_deaths: true,
            oom_victims: true,
            shrink_slab: true,
            shrink_slab_min_total_scan: 10_000_000,
            flight_recorder_events: vec![
                "sched/sched_switch".into(),
                "sched/sched_wakeup".into(),
                "sched/sched_process_exit".into(),
                "signal/signal_generate".into(),
            ],
            flight_recorder_buffer_kb: 1024,
            snapshot_keep: 10,
            snapshot_max_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcConfig {
    pub interval_secs: u64,
    pub dentry_headroom_ratio: f64,
    pub dentry_growth_per_min: u64,
}

impl Default for ProcConfig {
    fn default() -> Self {
        ProcConfig {
            interval_secs: 10,
            dentry_headroom_ratio: 0.5,
            dentry_growth_per_min: 5_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KdumpSchedule {
    pub at_start: bool,
    pub interval_hours: u64,
}

impl Default for KdumpSchedule {
    fn default() -> Self {
        KdumpSchedule {
            at_start: true,
            interval_hours: 24,
        }
    }
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
        let mut errs = self.check.validate("check");
        if let Err(e) = self.udplogger.compile("udplogger") {
            errs.extend(e);
        }
        let mut err = |path: &str, message: String| {
            errs.push(ConfigError {
                path: path.to_string(),
                message,
            })
        };
        let r = &self.run;
        for (name, v) in [
            ("run.event_log", &r.event_log),
            ("run.state_file", &r.state_file),
            ("run.evidence_dir", &r.evidence_dir),
        ] {
            if v.is_empty() {
                err(name, "must not be empty".into());
            }
        }
        if r.event_log_max_bytes < 4096 {
            err(
                "run.event_log_max_bytes",
                format!("must be at least 4096, found {}", r.event_log_max_bytes),
            );
        }
        if !(-1000..=1000).contains(&r.oom_score_adj) {
            err(
                "run.oom_score_adj",
                format!("must be between -1000 and 1000, found {}", r.oom_score_adj),
            );
        }
        let t = &r.tracefs;
        if t.instance.is_empty() || t.instance.contains('/') || t.instance.starts_with('.') {
            err(
                "run.tracefs.instance",
                format!("must be a plain directory name, found {:?}", t.instance),
            );
        }
        for (i, ev) in t.flight_recorder_events.iter().enumerate() {
            let ok = ev.split_once('/').is_some_and(|(a, b)| {
                let plain = |s: &str| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                plain(a) && plain(b)
            });
            if !ok {
                err(
                    &format!("run.tracefs.flight_recorder_events[{i}]"),
                    format!("expected SYSTEM/EVENT such as sched/sched_switch, found {ev:?}"),
                );
            }
        }
        if t.snapshot_keep == 0 {
            err("run.tracefs.snapshot_keep", "must be at least 1".into());
        }
        if r.metrics_interval_secs == 0 {
            err("run.metrics_interval_secs", "must be at least 1".into());
        }
        if let Some(e) = crate::metrics::file_error(&r.metrics_file) {
            err("run.metrics_file", e);
        }
        if r.proc.interval_secs == 0 {
            err("run.proc.interval_secs", "must be at least 1".into());
        }
        if !(r.proc.dentry_headroom_ratio > 0.0 && r.proc.dentry_headroom_ratio <= 1.0) {
            err(
                "run.proc.dentry_headroom_ratio",
                format!(
                    "must be a fraction in (0, 1], found {}",
                    r.proc.dentry_headroom_ratio
                ),
            );
        }
        if r.kdump_check.interval_hours == 0 {
            err(
                "run.kdump_check.interval_hours",
                "must be at least 1 (set at_start: false and a large interval to turn it down)"
                    .into(),
            );
        }
        if let Err(rule_errs) =
            crate::engine::compile_rules(&r.rules, "run.rules", r.allow_destructive)
        {
            errs.extend(rule_errs);
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
    fn default_rules_parse() {
        assert_eq!(default_rules().len(), 4);
        assert!(crate::engine::compile_rules(&default_rules(), "run.rules", false).is_ok());
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
