//! The `run:` section of the configuration: where `watchdog run` records
//! (event log, position file, evidence, metrics), how it protects itself,
//! and its rules. The collectors' subsections are theirs
//! ([`crate::collectors::settings`]); the rules are compiled by the
//! engine ([`crate::engine::compile_rules`]), and this section only asks
//! them for their problems.

use serde::{Deserialize, Serialize};

use crate::collectors::settings::{KmsgStart, ProcConfig, PsiConfig, TracefsConfig};
use crate::error::{ConfigError, Problems};

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
    /// Records (event-log lines, messages, position and metrics writes)
    /// each writer thread may have waiting; past it they are counted and
    /// reported as a `lost` event, and the loop never waits.
    pub record_queue: usize,
    pub tracefs: TracefsConfig,
    pub proc: ProcConfig,
    pub psi: PsiConfig,
    pub kdump_check: KdumpSchedule,
    pub incidents: crate::incident::IncidentsConfig,
    pub rules: Vec<crate::engine::RuleConfig>,
    /// Syslog receivers every event and action is also sent to (RFC 5424;
    /// see [`crate::forward`]).
    pub forward: Vec<crate::forward::TargetConfig>,
    /// Where the one-line summaries go: the journal's native socket or
    /// stderr (see [`JournalMode`]).
    pub journal: JournalMode,
}

/// `run.journal`: how events reach the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalMode {
    /// Native when the journal's socket exists, stderr otherwise.
    #[default]
    Auto,
    /// Native always; while the socket cannot be reached, stderr.
    On,
    /// stderr only (`<N>` priority prefixes, which journald reads when it
    /// runs the service).
    Off,
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
            record_queue: 1024,
            tracefs: TracefsConfig::default(),
            proc: ProcConfig::default(),
            psi: PsiConfig::default(),
            kdump_check: KdumpSchedule::default(),
            incidents: crate::incident::IncidentsConfig::default(),
            rules: default_rules(),
            forward: Vec::new(),
            journal: JournalMode::Auto,
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
- name: oops-evidence
  kind: oops
  cooldown_secs: 300
  actions: [{sysrq: l}, ftrace_snapshot, kdump_check]
- name: panic-record
  kind: panic
  actions: [log]
- name: bug-evidence
  kind: bug
  cooldown_secs: 600
  actions: [{sysrq: l}, ftrace_snapshot]
- name: warning-snapshot
  kind: warning
  cooldown_secs: 3600
  actions: [ftrace_snapshot]
- name: hard-lockup-backtraces
  kind: hard_lockup
  cooldown_secs: 300
  actions: [{sysrq: l}, ftrace_snapshot]
- name: rcu-stall-backtraces
  kind: rcu_stall
  cooldown_secs: 300
  actions: [{sysrq: l}]
- name: fs-error-blocked-tasks
  kind: fs_error
  cooldown_secs: 600
  actions: [{sysrq: w}, ftrace_snapshot]
- name: io-error-storm
  kind: io_error
  where: {count: {gte: 10}}
  cooldown_secs: 600
  actions: [{sysrq: w}, ftrace_snapshot]
- name: memory-pressure-evidence
  kind: pressure
  where: {resource: memory, scope: full}
  cooldown_secs: 300
  actions: [{sysrq: m}, ftrace_snapshot]
- name: lost-messages
  kind: lost
  cooldown_secs: 3600
  actions: [log]
";

fn default_rules() -> Vec<crate::engine::RuleConfig> {
    serde_yaml::from_str(DEFAULT_RULES_YAML).unwrap_or_default()
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

/// What `run` works with: the section's typed, compiled parts. Made by
/// [`RunConfig::compile`] only, the one place rules and incident settings
/// are compiled (for `config check`, at start and on SIGHUP alike).
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub rules: Vec<crate::engine::Rule>,
    /// `None` when incident bundles are off (`incidents.enabled: false`).
    pub incidents: Option<crate::incident::IncidentSettings>,
}

impl RunConfig {
    /// Every problem in the section at YAML path `path`, in document
    /// order, the rules' included.
    pub fn validate(&self, path: &str) -> Vec<ConfigError> {
        self.validate_with(path, &[])
    }

    /// [`validate`](Self::validate), with the site patterns' names and
    /// captures that rules on `kind: pattern` may name.
    pub fn validate_with(
        &self,
        path: &str,
        patterns: &[(String, Vec<String>)],
    ) -> Vec<ConfigError> {
        self.compile(path, patterns).err().unwrap_or_default()
    }

    /// The typed settings, or every problem with its YAML path; rules on
    /// `kind: pattern` may name the captures of `patterns`.
    pub fn compile(
        &self,
        path: &str,
        patterns: &[(String, Vec<String>)],
    ) -> Result<RunSettings, Vec<ConfigError>> {
        let mut p = Problems::new(path);
        for (name, v) in [
            ("event_log", &self.event_log),
            ("state_file", &self.state_file),
            ("evidence_dir", &self.evidence_dir),
        ] {
            if v.is_empty() {
                p.at(name, "must not be empty");
            }
        }
        if self.event_log_max_bytes < 4096 {
            p.at(
                "event_log_max_bytes",
                format!("must be at least 4096, found {}", self.event_log_max_bytes),
            );
        }
        if !(-1000..=1000).contains(&self.oom_score_adj) {
            p.at(
                "oom_score_adj",
                format!(
                    "must be between -1000 and 1000, found {}",
                    self.oom_score_adj
                ),
            );
        }
        p.extend(self.tracefs.validate(&p.path("tracefs")));
        if self.metrics_interval_secs == 0 {
            p.at("metrics_interval_secs", "must be at least 1");
        }
        if !(16..=65536).contains(&self.record_queue) {
            p.at(
                "record_queue",
                format!("must be 16..65536, found {}", self.record_queue),
            );
        }
        if let Some(e) = crate::metrics::file_error(&self.metrics_file) {
            p.at("metrics_file", e);
        }
        p.extend(self.proc.validate(&p.path("proc")));
        p.extend(self.psi.validate(&p.path("psi")));
        if self.kdump_check.interval_hours == 0 {
            p.at(
                "kdump_check.interval_hours",
                "must be at least 1 (set at_start: false and a large interval to turn it down)",
            );
        }
        let incidents = self
            .incidents
            .compile(&p.path("incidents"))
            .map_err(|e| p.extend(e))
            .ok();
        p.extend(crate::forward::target::validate(
            &self.forward,
            &p.path("forward"),
        ));
        let rules = crate::engine::compile_rules_with(
            &self.rules,
            &p.path("rules"),
            self.allow_destructive,
            patterns,
        )
        .map_err(|e| p.extend(e))
        .ok();
        let errors = p.into_errors();
        match (incidents, rules) {
            (Some(incidents), Some(rules)) if errors.is_empty() => Ok(RunSettings {
                rules,
                incidents: incidents.enabled.then_some(incidents),
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_parse() {
        assert_eq!(default_rules().len(), 14);
        assert!(crate::engine::compile_rules(&default_rules(), "run.rules", false).is_ok());
    }

    #[test]
    fn every_problem_in_document_order() {
        let r = RunConfig {
            state_file: String::new(),
            metrics_file: "/tmp/m.txt".into(),
            tracefs: TracefsConfig {
                snapshot_keep: 0,
                ..TracefsConfig::default()
            },
            proc: ProcConfig {
                interval_secs: 0,
                ..ProcConfig::default()
            },
            kdump_check: KdumpSchedule {
                at_start: true,
                interval_hours: 0,
            },
            ..RunConfig::default()
        };
        let paths: Vec<String> = r.validate("run").into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "run.state_file",
                "run.tracefs.snapshot_keep",
                "run.metrics_file",
                "run.proc.interval_secs",
                "run.kdump_check.interval_hours"
            ]
        );
    }
}
