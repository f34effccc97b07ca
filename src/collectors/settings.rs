//! The collectors' parts of the `run:` section: where kmsg reading
//! starts (`run.kmsg_start`), what the tracefs collector enables
//! (`run.tracefs`) and how often /proc is polled (`run.proc`), each with
//! its defaults and its validation.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Problems};

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

impl TracefsConfig {
    /// Every problem in the section at YAML path `path`.
    pub fn validate(&self, path: &str) -> Vec<ConfigError> {
        let mut p = Problems::new(path);
        let i = &self.instance;
        if i.is_empty() || i.contains('/') || i.starts_with('.') {
            p.at(
                "instance",
                format!("must be a plain directory name, found {i:?}"),
            );
        }
        for (i, ev) in self.flight_recorder_events.iter().enumerate() {
            let ok = ev.split_once('/').is_some_and(|(a, b)| {
                let plain = |s: &str| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                plain(a) && plain(b)
            });
            if !ok {
                p.at(
                    &format!("flight_recorder_events[{i}]"),
                    format!("expected SYSTEM/EVENT such as sched/sched_switch, found {ev:?}"),
                );
            }
        }
        if self.snapshot_keep == 0 {
            p.at("snapshot_keep", "must be at least 1");
        }
        p.into_errors()
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

impl ProcConfig {
    /// Every problem in the section at YAML path `path`.
    pub fn validate(&self, path: &str) -> Vec<ConfigError> {
        let mut p = Problems::new(path);
        if self.interval_secs == 0 {
            p.at("interval_secs", "must be at least 1");
        }
        let r = self.dentry_headroom_ratio;
        if !(r > 0.0 && r <= 1.0) {
            p.at(
                "dentry_headroom_ratio",
                format!("must be a fraction in (0, 1], found {r}"),
            );
        }
        p.into_errors()
    }
}

/// `run.psi`: the pressure-stall triggers armed in /proc/pressure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PsiConfig {
    pub enabled: bool,
    pub triggers: Vec<PsiTrigger>,
}

/// One trigger: wake when tasks stalled on `resource` for `stall_ms`
/// within `window_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsiTrigger {
    /// `memory`, `io` or `cpu`.
    pub resource: String,
    /// `some` or `full` (`full` for cpu needs Linux 5.13+).
    pub scope: String,
    pub stall_ms: u64,
    pub window_ms: u64,
}

impl Default for PsiConfig {
    fn default() -> Self {
        PsiConfig {
            enabled: true,
            triggers: vec![
                PsiTrigger {
                    resource: "memory".into(),
                    scope: "full".into(),
                    stall_ms: 100,
                    window_ms: 1000,
                },
                PsiTrigger {
                    resource: "io".into(),
                    scope: "full".into(),
                    stall_ms: 1000,
                    window_ms: 5000,
                },
            ],
        }
    }
}

impl PsiConfig {
    /// Every problem in the section at YAML path `path`.
    pub fn validate(&self, path: &str) -> Vec<ConfigError> {
        let mut p = Problems::new(path);
        for (i, t) in self.triggers.iter().enumerate() {
            if !matches!(t.resource.as_str(), "memory" | "io" | "cpu") {
                p.at(
                    &format!("triggers[{i}].resource"),
                    format!("must be memory, io or cpu, found {:?}", t.resource),
                );
            }
            if !matches!(t.scope.as_str(), "some" | "full") {
                p.at(
                    &format!("triggers[{i}].scope"),
                    format!("must be some or full, found {:?}", t.scope),
                );
            }
            // kernel/sched/psi.c psi_trigger_create: 500 ms to 10 s.
            if !(500..=10_000).contains(&t.window_ms) {
                p.at(
                    &format!("triggers[{i}].window_ms"),
                    format!("the kernel takes 500..10000, found {}", t.window_ms),
                );
            }
            if t.stall_ms == 0 || t.stall_ms > t.window_ms {
                p.at(
                    &format!("triggers[{i}].stall_ms"),
                    format!(
                        "must be 1..window_ms ({}), found {}",
                        t.window_ms, t.stall_ms
                    ),
                );
            }
        }
        p.into_errors()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(TracefsConfig::default().validate("t").is_empty());
        assert!(ProcConfig::default().validate("p").is_empty());
        assert!(PsiConfig::default().validate("s").is_empty());
    }

    #[test]
    fn psi_errors_name_their_trigger() {
        let c = PsiConfig {
            enabled: true,
            triggers: vec![PsiTrigger {
                resource: "disk".into(),
                scope: "all".into(),
                stall_ms: 3000,
                window_ms: 20_000,
            }],
        };
        let paths: Vec<String> = c.validate("run.psi").into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "run.psi.triggers[0].resource",
                "run.psi.triggers[0].scope",
                "run.psi.triggers[0].window_ms"
            ]
        );
    }

    #[test]
    fn errors_carry_the_section_path() {
        let t = TracefsConfig {
            instance: "../x".into(),
            flight_recorder_events: vec!["sched/sched_switch".into(), "sched".into()],
            snapshot_keep: 0,
            ..TracefsConfig::default()
        };
        let paths: Vec<String> = t
            .validate("run.tracefs")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "run.tracefs.instance",
                "run.tracefs.flight_recorder_events[1]",
                "run.tracefs.snapshot_keep"
            ]
        );
        let p = ProcConfig {
            interval_secs: 0,
            dentry_headroom_ratio: 1.5,
            ..ProcConfig::default()
        };
        let e = p.validate("run.proc");
        assert_eq!(e[0].path, "run.proc.interval_secs");
        assert_eq!(e[1].path, "run.proc.dentry_headroom_ratio");
        assert!(e[1].message.contains("1.5"), "{}", e[1].message);
    }
}
