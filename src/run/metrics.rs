//! The counters `watchdog run` exports as Prometheus metrics
//! (`run.metrics_file`), rendered with the shared text helpers in
//! [`crate::metrics`].

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::check::metrics::render_checks;
use crate::check::Status;
use crate::metrics::label;

/// Counters kept by `watchdog run`.
#[derive(Debug, Default, Clone)]
pub struct RunMetrics {
    pub events: BTreeMap<String, u64>,
    pub actions: BTreeMap<(String, String, bool), u64>,
    pub kmsg_lost: u64,
    /// Event-log lines a writer thread's queue had no room for.
    pub records_lost: u64,
    /// Other records dropped the same way: stderr lines, evidence work,
    /// position and metrics writes.
    pub records_lost_other: u64,
    /// Matches each rule's cooldown swallowed.
    pub suppressed: BTreeMap<String, u64>,
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
            "# HELP watchdog_records_lost_total Records not written because a writer thread's queue was full (its disk, or the journal, did not keep up): event-log lines, and other records (stderr lines, evidence, position and metrics writes)."
        );
        let _ = writeln!(o, "# TYPE watchdog_records_lost_total counter");
        let _ = writeln!(
            o,
            "watchdog_records_lost_total{{record=\"event\"}} {}",
            self.records_lost
        );
        let _ = writeln!(
            o,
            "watchdog_records_lost_total{{record=\"other\"}} {}",
            self.records_lost_other
        );
        let _ = writeln!(
            o,
            "# HELP watchdog_rule_suppressed_total Matches a rule's cooldown swallowed (no action taken)."
        );
        let _ = writeln!(o, "# TYPE watchdog_rule_suppressed_total counter");
        for (rule, n) in &self.suppressed {
            let _ = writeln!(
                o,
                "watchdog_rule_suppressed_total{{rule=\"{}\"}} {n}",
                label(rule)
            );
        }
        o.push_str(&render_checks(&self.checks));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
