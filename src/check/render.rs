//! Text and JSON renderings of a [`Report`].

use std::fmt::Write;

use super::{Report, Status};
use crate::output::paint;

fn colour(status: Status) -> &'static str {
    match status {
        Status::Critical => "1;31",
        Status::Warning => "1;33",
        Status::Unknown => "1;35",
        Status::Info => "36",
        Status::Ok => "32",
    }
}

/// The report for people: a header, then one block per finding, worst
/// first, aligned; remediation under every finding that is not OK.
pub fn render_text(report: &Report, color: bool, verbose: bool) -> String {
    let mut out = String::new();
    let host = one_line(report.host.as_deref().unwrap_or("(unknown host)"));
    let kernel = one_line(report.kernel.as_deref().unwrap_or("unknown kernel"));
    let overall = report.status.as_str().to_uppercase();
    let _ = writeln!(
        out,
        "watchdog check on {host} ({kernel}): {}",
        paint(color, colour(report.status), &overall)
    );
    let counts: Vec<String> = [
        Status::Critical,
        Status::Warning,
        Status::Unknown,
        Status::Info,
        Status::Ok,
    ]
    .iter()
    .map(|s| format!("{} {}", report.count(*s), s.as_str()))
    .collect();
    let _ = writeln!(out, "{}\n", counts.join(", "));

    let mut order: Vec<usize> = (0..report.findings.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(report.findings[i].status.severity()));
    let id_width = report
        .findings
        .iter()
        .map(|f| f.id.len())
        .max()
        .unwrap_or(0);
    let indent = " ".repeat(10 + id_width + 2);
    for i in order {
        let f = &report.findings[i];
        let label = format!("{:<8}", f.status.as_str().to_uppercase());
        let _ = writeln!(
            out,
            "{}  {:<id_width$}  {}",
            paint(color, colour(f.status), &label),
            f.id,
            one_line(&f.summary)
        );
        if f.status != Status::Ok && !f.remediation.is_empty() {
            let _ = writeln!(out, "{indent}fix: {}", one_line(&f.remediation));
        }
        if verbose {
            for (k, v) in &f.values {
                let _ = writeln!(out, "{indent}{k} = {v}");
            }
        }
    }
    out
}

/// Text read from the host may hold newlines or escape sequences: shown
/// escaped, so a finding stays one line and cannot drive the terminal.
fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

/// The report as one JSON document (docs/contracts.md "watchdog check").
pub fn render_json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        format!("{{\"status\": \"unknown\", \"exit_code\": 3, \"error\": \"{e}\"}}")
    });
    s.push('\n');
    s
}
