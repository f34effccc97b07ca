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
    pub incidents: crate::incident::IncidentsConfig,
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
            incidents: crate::incident::IncidentsConfig::default(),
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
                "sched/sched_process_exec".into(),
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

/// How `watchdog udplogger` reads datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpInput {
    Auto,
    Plain,
    Extended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpOutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpRotate {
    Daily,
    Hourly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpTimezone {
    Local,
    Utc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpLayout {
    Single,
    PerSender,
}

/// Settings of `watchdog udplogger`; see config/watchdog.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpLoggerConfig {
    pub listen: Vec<String>,
    pub dir: String,
    pub receive_buffer_bytes: usize,
    pub input: UdpInput,
    pub output_format: UdpOutputFormat,
    pub rotate: UdpRotate,
    pub timezone: UdpTimezone,
    pub max_file_bytes: u64,
    pub layout: UdpLayout,
    pub file_mode: String,
    pub partial_timeout_ms: u64,
    pub max_line_bytes: usize,
    pub max_senders: usize,
    pub max_buffered_bytes: usize,
    pub allow: Vec<String>,
    pub fault_hold_bytes: usize,
    pub retry_max_ms: u64,
    pub metrics_file: String,
}

impl Default for UdpLoggerConfig {
    fn default() -> Self {
        UdpLoggerConfig {
            listen: vec!["[::]:6666".into()],
            dir: "/var/log/udplogger".into(),
            receive_buffer_bytes: 8 << 20,
            input: UdpInput::Auto,
            output_format: UdpOutputFormat::Text,
            rotate: UdpRotate::Daily,
            timezone: UdpTimezone::Local,
            max_file_bytes: 0,
            layout: UdpLayout::Single,
            file_mode: "0600".into(),
            partial_timeout_ms: 10_000,
            max_line_bytes: 16384,
            max_senders: 1024,
            max_buffered_bytes: 16 << 20,
            allow: Vec::new(),
            fault_hold_bytes: 64 << 20,
            retry_max_ms: 30_000,
            metrics_file: String::new(),
        }
    }
}

impl UdpLoggerConfig {
    fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if let Some(e) = metrics_file_error(&self.metrics_file) {
            err("udplogger.metrics_file", e);
        }
        use crate::udplogger::{allow::Cidr, socket::parse_listen};
        if self.listen.is_empty() {
            err("udplogger.listen", "name at least one address".into());
        }
        for (i, l) in self.listen.iter().enumerate() {
            if let Err(e) = parse_listen(l) {
                err(&format!("udplogger.listen[{i}]"), e);
            }
        }
        for (i, a) in self.allow.iter().enumerate() {
            if let Err(e) = Cidr::parse(a) {
                err(&format!("udplogger.allow[{i}]"), e);
            }
        }
        if self.dir.is_empty() {
            err("udplogger.dir", "must name a directory".into());
        }
        if self.file_mode().is_none() {
            err(
                "udplogger.file_mode",
                format!(
                    "{:?}: must be octal permissions such as \"0600\"",
                    self.file_mode
                ),
            );
        }
        let ranges: [(&str, u64, u64, u64); 7] = [
            (
                "receive_buffer_bytes",
                self.receive_buffer_bytes as u64,
                4096,
                1 << 30,
            ),
            ("partial_timeout_ms", self.partial_timeout_ms, 1, 3_600_000),
            ("max_line_bytes", self.max_line_bytes as u64, 64, 1 << 20),
            ("max_senders", self.max_senders as u64, 1, 1 << 20),
            (
                "max_buffered_bytes",
                self.max_buffered_bytes as u64,
                1024,
                1 << 32,
            ),
            ("fault_hold_bytes", self.fault_hold_bytes as u64, 0, 1 << 34),
            ("retry_max_ms", self.retry_max_ms, 100, 3_600_000),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                err(
                    &format!("udplogger.{name}"),
                    format!("must be between {lo} and {hi}, found {v}"),
                );
            }
        }
        if self.max_file_bytes != 0 && self.max_file_bytes < 4096 {
            err(
                "udplogger.max_file_bytes",
                format!(
                    "must be 0 (no limit) or at least 4096, found {}",
                    self.max_file_bytes
                ),
            );
        }
    }

    /// `file_mode` as permission bits, if valid.
    pub fn file_mode(&self) -> Option<u32> {
        u32::from_str_radix(self.file_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
    }

    /// The receiver's settings; call on a validated configuration.
    pub fn settings(&self) -> crate::udplogger::Settings {
        use crate::udplogger::{
            allow::Cidr, clock, output::OutputConfig, socket::parse_listen, InputFormat, Settings,
        };
        Settings {
            listen: self
                .listen
                .iter()
                .filter_map(|l| parse_listen(l).ok())
                .collect(),
            listen_is_default: self.listen == UdpLoggerConfig::default().listen,
            receive_buffer: self.receive_buffer_bytes,
            format: match self.input {
                UdpInput::Auto => InputFormat::Auto,
                UdpInput::Plain => InputFormat::Plain,
                UdpInput::Extended => InputFormat::Extended,
            },
            zone: match self.timezone {
                UdpTimezone::Local => clock::Zone::Local,
                UdpTimezone::Utc => clock::Zone::Utc,
            },
            period: match self.rotate {
                UdpRotate::Daily => clock::Period::Daily,
                UdpRotate::Hourly => clock::Period::Hourly,
            },
            output: OutputConfig {
                dir: self.dir.clone().into(),
                per_sender: self.layout == UdpLayout::PerSender,
                json: self.output_format == UdpOutputFormat::Json,
                max_file_bytes: self.max_file_bytes,
                file_mode: self.file_mode().unwrap_or(0o600),
                hold_bytes: self.fault_hold_bytes,
                retry_max: std::time::Duration::from_millis(self.retry_max_ms),
            },
            partial_timeout: std::time::Duration::from_millis(self.partial_timeout_ms),
            metrics_file: (!self.metrics_file.is_empty())
                .then(|| std::path::PathBuf::from(&self.metrics_file)),
            max_line: self.max_line_bytes,
            max_senders: self.max_senders,
            max_buffered: self.max_buffered_bytes,
            allow: self
                .allow
                .iter()
                .filter_map(|a| Cidr::parse(a).ok())
                .collect(),
        }
    }
}

/// A metrics file node_exporter's textfile collector would not read (it
/// reads only `*.prom`); empty means "off" and is fine.
fn metrics_file_error(path: &str) -> Option<String> {
    (!path.is_empty() && !path.ends_with(".prom")).then(|| {
        format!("node_exporter's textfile collector reads only *.prom files, found {path:?}")
    })
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
            _ if c.kdump.recommended_crashkernel == "distribution" => {}
            Ok(CrashKernel::Auto) => err(
                "check.kdump.recommended_crashkernel",
                "must be \"distribution\", a size or ranges, not \"auto\"".into(),
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
        self.udplogger.validate(&mut err);
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
        if let Some(e) = metrics_file_error(&r.metrics_file) {
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
        if let Err(e) = r.incidents.compile("run.incidents") {
            errs.extend(e);
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
        let yaml = "udplogger:\n  listen: [\"nowhere:1\", \"127.0.0.1:6666\"]\n  allow: [10.0.0.0/99]\n  file_mode: rw\n  max_senders: 0\n";
        let e = Config::from_yaml(yaml, "x").unwrap_err();
        let paths: Vec<&str> = e.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "udplogger.listen[0]",
                "udplogger.allow[0]",
                "udplogger.file_mode",
                "udplogger.max_senders"
            ]
        );
        let c =
            Config::from_yaml("udplogger:\n  layout: per_sender\n  timezone: utc\n", "x").unwrap();
        let s = c.udplogger.settings();
        assert!(s.output.per_sender);
        assert_eq!(s.listen, ["[::]:6666".parse().unwrap()]);
        assert_eq!(s.output.file_mode, 0o600);
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
