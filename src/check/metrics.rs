//! The check statuses as Prometheus gauges: `watchdog check --metrics` and
//! the `run` daemon's periodic kdump checks both render them here.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Finding, Report, Status, DRIFT_ID};
use crate::metrics::label;

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
        .filter(|f| f.id != DRIFT_ID)
        .map(|f| (f.id.clone(), f.status))
        .collect();
    let drift = findings.iter().filter(|f| f.id == DRIFT_ID).count();
    let mut o = render_checks(&map);
    let _ = writeln!(
        o,
        "# HELP watchdog_check_drift Values changed since the baseline."
    );
    let _ = writeln!(o, "# TYPE watchdog_check_drift gauge");
    let _ = writeln!(o, "watchdog_check_drift {drift}");
    o
}

/// What a fleet groups and orders hosts by: an info gauge with the tool
/// version, OS release, kernel and boot id as labels, the time the checks
/// ran and the uptime then.
pub fn fleet(report: &Report) -> String {
    let mut o = String::new();
    let opt = |v: &Option<String>| label(v.as_deref().unwrap_or(""));
    let _ = writeln!(o, "# HELP watchdog_check_info The checked host: watchdog version, OS release, kernel, boot id.");
    let _ = writeln!(o, "# TYPE watchdog_check_info gauge");
    let _ = writeln!(
        o,
        "watchdog_check_info{{watchdog_version=\"{}\",os_id=\"{}\",os_version_id=\"{}\",kernel=\"{}\",boot_id=\"{}\"}} 1",
        label(report.watchdog_version),
        opt(&report.os_release.id),
        opt(&report.os_release.version_id),
        opt(&report.kernel),
        opt(&report.boot_id)
    );
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&report.time) {
        let _ = writeln!(
            o,
            "# HELP watchdog_check_time_seconds When the checks ran (Unix time)."
        );
        let _ = writeln!(o, "# TYPE watchdog_check_time_seconds gauge");
        let _ = writeln!(o, "watchdog_check_time_seconds {}", t.timestamp());
    }
    if let Some(up) = report.uptime_secs {
        let _ = writeln!(
            o,
            "# HELP watchdog_check_uptime_seconds The host's uptime when the checks ran."
        );
        let _ = writeln!(o, "# TYPE watchdog_check_uptime_seconds gauge");
        let _ = writeln!(o, "watchdog_check_uptime_seconds {up}");
    }
    o
}
