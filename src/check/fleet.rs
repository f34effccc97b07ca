//! `watchdog report FILE|DIR...`: many hosts' `check --format json`
//! documents rolled up — per check ID how many hosts are in each status
//! and which hosts are worst, per host its worst findings — as text, JSON
//! or CSV (one row per host, one column per check ID, for a spreadsheet).
//! The exit code is the worst status, by the same Nagios rule as `check`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{OsRelease, Status};

/// The fields of a `check` JSON document the roll-up reads. Documents
/// from older versions lack the fleet fields: they are optional.
#[derive(Debug, Clone, Deserialize)]
struct Doc {
    status: Status,
    host: Option<String>,
    kernel: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    watchdog_version: Option<String>,
    #[serde(default)]
    os_release: Option<OsRelease>,
    findings: Vec<DocFinding>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct DocFinding {
    id: String,
    status: Status,
    summary: String,
}

/// One host's line of the roll-up.
#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub host: String,
    pub file: String,
    pub status: Status,
    pub kernel: Option<String>,
    pub os_release: Option<OsRelease>,
    pub time: Option<String>,
    pub watchdog_version: Option<String>,
    /// Findings that are not OK, worst first.
    worst: Vec<DocFinding>,
    #[serde(skip)]
    by_id: BTreeMap<String, Status>,
}

/// One check ID's line of the roll-up.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub id: String,
    /// Hosts per status.
    pub counts: BTreeMap<&'static str, usize>,
    /// Hosts in this check's worst status (not OK), up to [`WORST_HOSTS`].
    pub worst_hosts: Vec<String>,
    pub worst_status: Status,
}

/// How many hosts a check row names.
pub const WORST_HOSTS: usize = 5;

/// The roll-up of every document read.
#[derive(Debug, Clone, Serialize)]
pub struct Rollup {
    pub status: Status,
    pub exit_code: u8,
    pub hosts: usize,
    /// Hosts per overall status.
    pub counts: BTreeMap<&'static str, usize>,
    pub checks: Vec<CheckRow>,
    pub host_reports: Vec<HostRow>,
    /// Files that could not be read as a check report, with why.
    pub errors: Vec<String>,
}

const ORDER: [Status; 5] = [
    Status::Critical,
    Status::Warning,
    Status::Unknown,
    Status::Info,
    Status::Ok,
];

/// Every `*.json` file under the given files and directories (directories
/// searched recursively, files in name order).
pub fn inputs(args: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                errors.push(format!("{}: {e}", dir.display()));
                return;
            }
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, files, errors);
            } else if p.extension().is_some_and(|e| e == "json") {
                files.push(p);
            }
        }
    }
    for a in args {
        if a.is_dir() {
            walk(a, &mut files, &mut errors);
        } else {
            files.push(a.clone());
        }
    }
    (files, errors)
}

/// Reads and rolls up the documents in `files`. A file that cannot be read
/// or is not a check report is an error of its own; the others still count.
pub fn rollup(files: &[PathBuf], mut errors: Vec<String>) -> Rollup {
    let mut hosts = Vec::new();
    for path in files {
        let doc: Result<Doc, String> =
            std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice(&b)
                        .map_err(|e| format!("not a `watchdog check --format json` document: {e}"))
                });
        match doc {
            Ok(d) => hosts.push(host_row(path, d)),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    // Worst hosts first, everywhere hosts are listed.
    hosts.sort_by(|a, b| {
        b.status
            .severity()
            .cmp(&a.status.severity())
            .then_with(|| a.host.cmp(&b.host))
    });
    let mut ids: Vec<String> = Vec::new();
    for h in &hosts {
        for id in h.by_id.keys() {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    // Report order of `check` where known, others after.
    ids.sort_by_key(|id| {
        (
            super::CHECK_IDS
                .iter()
                .position(|c| c == id)
                .unwrap_or(usize::MAX),
            id.clone(),
        )
    });
    let checks = ids
        .iter()
        .map(|id| {
            let mut counts: BTreeMap<&'static str, usize> =
                ORDER.iter().map(|s| (s.as_str(), 0)).collect();
            let mut worst = Status::Ok;
            for h in &hosts {
                if let Some(s) = h.by_id.get(id) {
                    *counts.entry(s.as_str()).or_default() += 1;
                    if s.severity() > worst.severity() {
                        worst = *s;
                    }
                }
            }
            let worst_hosts = if worst == Status::Ok {
                Vec::new()
            } else {
                hosts
                    .iter()
                    .filter(|h| h.by_id.get(id) == Some(&worst))
                    .map(|h| h.host.clone())
                    .take(WORST_HOSTS)
                    .collect()
            };
            CheckRow {
                id: id.clone(),
                counts,
                worst_hosts,
                worst_status: worst,
            }
        })
        .collect();
    let mut counts: BTreeMap<&'static str, usize> = ORDER.iter().map(|s| (s.as_str(), 0)).collect();
    for h in &hosts {
        *counts.entry(h.status.as_str()).or_default() += 1;
    }
    let has = |s: Status| hosts.iter().any(|h| h.status == s);
    let (status, exit_code) = if has(Status::Critical) {
        (Status::Critical, 2)
    } else if has(Status::Warning) {
        (Status::Warning, 1)
    } else if has(Status::Unknown) || !errors.is_empty() || hosts.is_empty() {
        (Status::Unknown, 3)
    } else {
        (Status::Ok, 0)
    };
    Rollup {
        status,
        exit_code,
        hosts: hosts.len(),
        counts,
        checks,
        host_reports: hosts,
        errors,
    }
}

fn host_row(path: &Path, d: Doc) -> HostRow {
    let mut worst: Vec<DocFinding> = d
        .findings
        .iter()
        .filter(|f| f.status != Status::Ok)
        .cloned()
        .collect();
    worst.sort_by_key(|f| std::cmp::Reverse(f.status.severity()));
    // Drift findings share one ID; the worst of them stands for it.
    let mut by_id: BTreeMap<String, Status> = BTreeMap::new();
    for f in &d.findings {
        let e = by_id.entry(f.id.clone()).or_insert(f.status);
        if f.status.severity() > e.severity() {
            *e = f.status;
        }
    }
    HostRow {
        host: d.host.unwrap_or_else(|| path.display().to_string()),
        file: path.display().to_string(),
        status: d.status,
        kernel: d.kernel,
        os_release: d.os_release,
        time: d.time,
        watchdog_version: d.watchdog_version,
        worst,
        by_id,
    }
}

fn os(h: &HostRow) -> String {
    match &h.os_release {
        Some(OsRelease {
            id: Some(id),
            version_id,
        }) => format!("{id} {}", version_id.as_deref().unwrap_or(""))
            .trim_end()
            .to_string(),
        _ => "-".into(),
    }
}

impl Rollup {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let counts: Vec<String> = ORDER
            .iter()
            .map(|s| format!("{} {}", self.counts[s.as_str()], s.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "watchdog report: {} host{}: {}: {}",
            self.hosts,
            if self.hosts == 1 { "" } else { "s" },
            self.status.as_str().to_uppercase(),
            counts.join(", ")
        );
        let w = self
            .checks
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "\n{:<w$}  {:>4} {:>4} {:>4} {:>4} {:>4}  WORST HOSTS",
            "CHECK", "CRIT", "WARN", "UNKN", "INFO", "OK"
        );
        for c in &self.checks {
            let n = |s: Status| c.counts.get(s.as_str()).copied().unwrap_or(0);
            let worst = if c.worst_hosts.is_empty() {
                "-".to_string()
            } else {
                format!("{} ({})", c.worst_hosts.join(", "), c.worst_status.as_str())
            };
            let _ = writeln!(
                out,
                "{:<w$}  {:>4} {:>4} {:>4} {:>4} {:>4}  {worst}",
                c.id,
                n(Status::Critical),
                n(Status::Warning),
                n(Status::Unknown),
                n(Status::Info),
                n(Status::Ok),
            );
        }
        let hw = self
            .host_reports
            .iter()
            .map(|h| h.host.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "\n{:<hw$}  {:<8}  {:<12}  WORST FINDINGS",
            "HOST", "STATUS", "OS"
        );
        for h in &self.host_reports {
            let worst: Vec<String> = h
                .worst
                .iter()
                .filter(|f| {
                    f.status.severity() == h.worst.first().map_or(0, |f| f.status.severity())
                })
                .map(|f| f.id.clone())
                .collect();
            let _ = writeln!(
                out,
                "{:<hw$}  {:<8}  {:<12}  {}",
                h.host,
                h.status.as_str().to_uppercase(),
                os(h),
                if worst.is_empty() {
                    "-".to_string()
                } else {
                    worst.join(", ")
                }
            );
        }
        for e in &self.errors {
            let _ = writeln!(out, "\nerror: {e}");
        }
        out
    }

    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!("{{\"status\": \"unknown\", \"exit_code\": 3, \"error\": \"{e}\"}}")
        });
        s.push('\n');
        s
    }

    /// RFC 4180 CSV: one row per host, one column per check ID.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let mut head: Vec<String> = [
            "host",
            "file",
            "status",
            "kernel",
            "os_id",
            "os_version_id",
            "time",
            "watchdog_version",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        head.extend(self.checks.iter().map(|c| c.id.clone()));
        let _ = writeln!(out, "{}", row(&head));
        for h in &self.host_reports {
            let os = h.os_release.clone().unwrap_or_default();
            let mut r = vec![
                h.host.clone(),
                h.file.clone(),
                h.status.as_str().to_string(),
                h.kernel.clone().unwrap_or_default(),
                os.id.unwrap_or_default(),
                os.version_id.unwrap_or_default(),
                h.time.clone().unwrap_or_default(),
                h.watchdog_version.clone().unwrap_or_default(),
            ];
            r.extend(
                self.checks
                    .iter()
                    .map(|c| h.by_id.get(&c.id).map_or("", |s| s.as_str()).to_string()),
            );
            let _ = writeln!(out, "{}", row(&r));
        }
        out
    }
}

fn row(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            row(&["a".into(), "b,c".into(), "say \"x\"".into()]),
            "a,\"b,c\",\"say \"\"x\"\"\""
        );
    }

    #[test]
    fn worst_host_decides_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let doc = |host: &str, status: &str, fs: &str| {
            format!("{{\"status\":\"{status}\",\"exit_code\":0,\"host\":\"{host}\",\"kernel\":null,\"findings\":[{fs}]}}")
        };
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(
            &a,
            doc(
                "a",
                "ok",
                "{\"id\":\"x\",\"status\":\"ok\",\"summary\":\"s\"}",
            ),
        )
        .unwrap();
        std::fs::write(
            &b,
            doc(
                "b",
                "warning",
                "{\"id\":\"x\",\"status\":\"warning\",\"summary\":\"s\"}",
            ),
        )
        .unwrap();
        let (files, errors) = inputs(&[dir.path().to_path_buf()]);
        let r = rollup(&files, errors);
        assert_eq!((r.status, r.exit_code, r.hosts), (Status::Warning, 1, 2));
        assert_eq!(r.checks[0].worst_hosts, vec!["b".to_string()]);
        std::fs::write(dir.path().join("c.json"), "{}").unwrap();
        let (files, errors) = inputs(&[dir.path().to_path_buf()]);
        let r = rollup(&files, errors);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].contains("c.json"));
        assert_eq!(r.exit_code, 1, "a warning beats an unreadable file");
    }
}
