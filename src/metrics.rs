//! Prometheus text-format metrics for node_exporter's textfile collector:
//! written whole to `FILE.tmp` and renamed, so the collector never reads
//! half a file.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use crate::check::{Finding, Status};

/// Escapes a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Nagios-style number of a status: 0 OK/INFO, 1 WARNING, 2 CRITICAL,
/// 3 UNKNOWN.
pub fn status_value(s: Status) -> u8 {
    match s {
        Status::Ok | Status::Info => 0,
        Status::Warning => 1,
        Status::Critical => 2,
        Status::Unknown => 3,
    }
}

/// Counters kept by `watchdog run`.
#[derive(Debug, Default, Clone)]
pub struct RunMetrics {
    pub events: BTreeMap<String, u64>,
    pub actions: BTreeMap<(String, String, bool), u64>,
    pub kmsg_lost: u64,
    /// Events the writer thread's queue had no room for.
    pub records_lost: u64,
    pub checks: BTreeMap<String, Status>,
    pub start_time: f64,
}

impl RunMetrics {
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP watchdog_start_time_seconds When watchdog run started (Unix time)."
        );
        let _ = writeln!(o, "# TYPE watchdog_start_time_seconds gauge");
        let _ = writeln!(o, "watchdog_start_time_seconds {:.3}", self.start_time);
        let _ = writeln!(o, "# HELP watchdog_events_total Events seen, by kind.");
        let _ = writeln!(o, "# TYPE watchdog_events_total counter");
        for kind in crate::engine::EVENT_KINDS {
            let n = self.events.get(*kind).copied().unwrap_or(0);
            let _ = writeln!(o, "watchdog_events_total{{kind=\"{}\"}} {n}", label(kind));
        }
        let _ = writeln!(
            o,
            "# HELP watchdog_actions_total Actions taken, by rule, action and result."
        );
        let _ = writeln!(o, "# TYPE watchdog_actions_total counter");
        for ((rule, action, ok), n) in &self.actions {
            let _ = writeln!(
                o,
                "watchdog_actions_total{{rule=\"{}\",action=\"{}\",result=\"{}\"}} {n}",
                label(rule),
                label(action),
                if *ok { "ok" } else { "failed" }
            );
        }
        let _ = writeln!(
            o,
            "# HELP watchdog_kmsg_lost_total Kernel messages overwritten before they were read."
        );
        let _ = writeln!(o, "# TYPE watchdog_kmsg_lost_total counter");
        let _ = writeln!(o, "watchdog_kmsg_lost_total {}", self.kmsg_lost);
        let _ = writeln!(
            o,
            "# HELP watchdog_records_lost_total Events not written because the recording queue was full (the event log's disk did not keep up)."
        );
        let _ = writeln!(o, "# TYPE watchdog_records_lost_total counter");
        let _ = writeln!(o, "watchdog_records_lost_total {}", self.records_lost);
        o.push_str(&render_checks(&self.checks));
        o
    }
}

/// `watchdog_check_status{id=…}` gauges (0 OK/INFO … 3 UNKNOWN).
pub fn render_checks(checks: &BTreeMap<String, Status>) -> String {
    let mut o = String::new();
    if checks.is_empty() {
        return o;
    }
    let _ = writeln!(o, "# HELP watchdog_check_status Last status of each check: 0 ok/info, 1 warning, 2 critical, 3 unknown.");
    let _ = writeln!(o, "# TYPE watchdog_check_status gauge");
    for (id, s) in checks {
        let _ = writeln!(
            o,
            "watchdog_check_status{{id=\"{}\",status=\"{}\"}} {}",
            label(id),
            s.as_str(),
            status_value(*s)
        );
    }
    o
}

/// The check report as metrics.
pub fn from_findings(findings: &[Finding]) -> String {
    let map: BTreeMap<String, Status> = findings
        .iter()
        .filter(|f| f.id != crate::check::DRIFT_ID)
        .map(|f| (f.id.clone(), f.status))
        .collect();
    let drift = findings
        .iter()
        .filter(|f| f.id == crate::check::DRIFT_ID)
        .count();
    let mut o = render_checks(&map);
    let _ = writeln!(
        o,
        "# HELP watchdog_check_drift Values changed since the baseline."
    );
    let _ = writeln!(o, "# TYPE watchdog_check_drift gauge");
    let _ = writeln!(o, "watchdog_check_drift {drift}");
    o
}

/// Writes `text` to `path` atomically.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn run_metrics_render() {
        let mut m = RunMetrics::default();
        m.events.insert("hung_task".into(), 2);
        m.actions
            .insert(("hung-task-evidence".into(), "sysrq t".into(), true), 2);
        m.checks.insert("kdump-loaded".into(), Status::Critical);
        let t = m.render();
        assert!(
            t.contains("watchdog_events_total{kind=\"hung_task\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("watchdog_events_total{kind=\"oom_kill\"} 0\n"),
            "{t}"
        );
        assert!(t.contains("watchdog_actions_total{rule=\"hung-task-evidence\",action=\"sysrq t\",result=\"ok\"} 2\n"));
        assert!(t.contains("watchdog_check_status{id=\"kdump-loaded\",status=\"critical\"} 2\n"));
    }
}
