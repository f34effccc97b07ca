//! `watchdog incidents list|show|pack|prune`: the bundles `run` recorded,
//! for the people who read them.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::bundle::{summarize, KMSG};
use super::store::{self, Entry};
use super::{incidents_dir, pack, IncidentSettings, Manifest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// One line per bundle, oldest first: id, time, kind, size, summary
    List {
        #[arg(long, value_enum, default_value = "text")]
        format: ListFormat,
    },
    /// One bundle's manifest for people (or as JSON), with the start of
    /// the task dump
    Show {
        /// Incident id, or a unique prefix of it (or of the directory name)
        id: String,
        #[arg(long, value_enum, default_value = "text")]
        format: ListFormat,
    },
    /// Write a bundle as a .tar.gz whose top directory is the incident's name
    Pack {
        /// Incident id, or a unique prefix of it
        id: String,
        /// Archive to write (default: ./<incident name>.tar.gz)
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Apply retention now (run.incidents keep / max_bytes), oldest first
    Prune,
}

/// Runs one `incidents` subcommand against `<evidence_dir>/incidents`.
pub fn run(
    cmd: &IncidentsCommand,
    evidence_dir: &Path,
    settings: &IncidentSettings,
) -> Result<(), String> {
    let mut out = String::new();
    match cmd {
        IncidentsCommand::List { format } => {
            let entries = store::list(evidence_dir).map_err(|e| e.to_string())?;
            out = match format {
                ListFormat::Text => list_text(&entries, evidence_dir),
                ListFormat::Json => list_json(&entries),
            };
        }
        IncidentsCommand::Show { id, format } => {
            let e = store::resolve(evidence_dir, id).map_err(|e| e.to_string())?;
            let m = e
                .manifest
                .as_ref()
                .ok_or_else(|| e.error.clone().unwrap_or_default())?;
            out = match format {
                ListFormat::Json => {
                    let mut s = serde_json::to_string_pretty(m).map_err(|e| e.to_string())?;
                    s.push('\n');
                    s
                }
                ListFormat::Text => show_text(&e, m),
            };
        }
        IncidentsCommand::Pack { id, output } => {
            let e = store::resolve(evidence_dir, id).map_err(|e| e.to_string())?;
            let (path, size) = pack::pack(&e, output.as_deref()).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "wrote {} ({size} bytes)", path.display());
        }
        IncidentsCommand::Prune => {
            let r = store::apply_retention(evidence_dir, settings).map_err(|e| e.to_string())?;
            for name in &r.removed {
                let _ = writeln!(out, "removed {name}");
            }
            let _ = writeln!(
                out,
                "{} removed, {} kept ({}; keep {}, max_bytes {})",
                r.removed.len(),
                r.kept,
                human_bytes(r.kept_bytes),
                settings.keep,
                settings.max_bytes
            );
            if !r.errors.is_empty() {
                print(&out);
                return Err(format!("incidents prune: {}", r.errors.join("; ")));
            }
        }
    }
    print(&out);
    Ok(())
}

fn print(s: &str) {
    let mut o = std::io::stdout().lock();
    // A closed pipe (`| head`) is not worth an error.
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn list_text(entries: &[Entry], evidence_dir: &Path) -> String {
    if entries.is_empty() {
        return format!(
            "no incidents in {}\n",
            incidents_dir(evidence_dir).display()
        );
    }
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            let (id, kind, mut summary) = match &e.manifest {
                Some(m) => (
                    m.id.chars().take(8).collect(),
                    m.kind.clone(),
                    m.summary.clone(),
                ),
                None => (
                    "?".into(),
                    "?".into(),
                    format!("unreadable: {}", e.error.as_deref().unwrap_or("")),
                ),
            };
            if let Some(m) = &e.manifest {
                if m.closed.is_none() {
                    summary.push_str(" [recording]");
                }
                if m.capped {
                    summary.push_str(" [capped]");
                }
            }
            let time = e
                .opened()
                .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
            [id, time, kind, human_bytes(e.bytes), summary]
        })
        .collect();
    let head = ["ID", "OPENED (UTC)", "KIND", "SIZE", "SUMMARY"];
    let mut w = [0usize; 4];
    for r in rows
        .iter()
        .map(|r| r.each_ref().map(String::as_str))
        .chain([head])
    {
        for (i, c) in r.iter().take(4).enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(head.map(String::from)).chain(rows) {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        );
    }
    out
}

fn list_json(entries: &[Entry]) -> String {
    let v: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let m = e.manifest.as_ref();
            json!({
                "id": m.map(|m| m.id.as_str()),
                "name": e.name,
                "kind": m.map(|m| m.kind.as_str()),
                "summary": m.map(|m| m.summary.as_str()),
                "opened": m.map(|m| m.opened.as_str()),
                "closed": m.and_then(|m| m.closed.as_deref()),
                "bytes": e.bytes,
                "capped": m.map(|m| m.capped),
                "path": e.dir.display().to_string(),
                "error": e.error,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// Lines of the task dump shown by `show`.
const DUMP_LINES: usize = 25;
/// Frames of each blocked task's stack shown by `show`.
const STACK_LINES: usize = 6;

fn show_text(e: &Entry, m: &Manifest) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Incident {}  {}", m.id, m.name);
    let _ = writeln!(
        o,
        "  kind:      {}: {}",
        m.kind,
        if m.summary.is_empty() {
            "(no event recorded yet)"
        } else {
            &m.summary
        }
    );
    let _ = writeln!(
        o,
        "  host:      {}  kernel {}  boot {}",
        m.host.as_deref().unwrap_or("?"),
        m.kernel.as_deref().unwrap_or("?"),
        m.boot_id.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        o,
        "  opened:    {}  closed: {}",
        m.opened,
        m.closed.as_deref().unwrap_or("(still recording)")
    );
    let _ = writeln!(o, "  directory: {}", e.dir.display());
    let _ = writeln!(
        o,
        "  size:      {} of max_bundle_bytes {}{}",
        human_bytes(e.bytes),
        human_bytes(m.max_bundle_bytes),
        if m.capped {
            " (capped: something was cut or left out, see below)"
        } else {
            ""
        }
    );

    let _ = writeln!(
        o,
        "\nEvents ({}):",
        m.events.len() as u64 + m.events_omitted
    );
    for ev in &m.events {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(ev.get()) {
            let time = match (v.get("time").and_then(|t| t.as_str()), v.get("kernel_time")) {
                (Some(t), _) => t.to_string(),
                (None, Some(k)) if k.is_number() => format!("[{k} s after boot]"),
                _ => String::new(),
            };
            let kind = v.get("kind").and_then(|t| t.as_str()).unwrap_or("?");
            let _ = writeln!(o, "  {time}  {kind}  {}", summarize(&v));
        }
    }
    if m.events_omitted > 0 {
        let _ = writeln!(o, "  ... {} more left out at the cap", m.events_omitted);
    }

    if !m.actions.is_empty() {
        let _ = writeln!(o, "\nActions:");
        for a in &m.actions {
            let _ = writeln!(
                o,
                "  {}  {:<6} {} {}: {}",
                a.time,
                if a.ok { "ok" } else { "FAILED" },
                a.rule,
                a.action,
                a.detail
            );
        }
    }

    if !m.blocked_tasks.is_empty() {
        let _ = writeln!(
            o,
            "\nTasks in D state at {}:",
            m.proc_collected.as_deref().unwrap_or("the trigger")
        );
        for t in &m.blocked_tasks {
            let _ = writeln!(
                o,
                "  {} {}{}  wchan {}",
                t.pid,
                t.comm,
                if t.tgid == t.pid {
                    String::new()
                } else {
                    format!(" (thread of {})", t.tgid)
                },
                t.wchan.as_deref().unwrap_or("?")
            );
            let stack = read_head(&e.dir.join(format!("proc/{}/stack", t.pid)), 64 << 10);
            for l in stack.lines().take(STACK_LINES) {
                let _ = writeln!(o, "      {l}");
            }
        }
    }

    if !m.largest_processes.is_empty() {
        let _ = writeln!(o, "\nLargest processes by resident memory:");
        let _ = writeln!(
            o,
            "  {:>8}  {:>10}  {:>7}  COMMAND",
            "PID", "RSS", "OOM_ADJ"
        );
        for p in &m.largest_processes {
            let _ = writeln!(
                o,
                "  {:>8}  {:>10}  {:>7}  {}",
                p.pid,
                p.rss_kb.map_or("?".into(), |k| human_bytes(k * 1024)),
                p.oom_score_adj.map_or("?".into(), |a| a.to_string()),
                clip(p.cmdline.as_deref().unwrap_or(&p.comm), 100)
            );
        }
    }

    let kmsg = read_head(&e.dir.join(KMSG), 1 << 20);
    if let Some((from, lines)) = task_dump(&kmsg, &m.kind) {
        let _ = writeln!(o, "\nTask dump ({KMSG}, from {from}):");
        for l in lines {
            let _ = writeln!(o, "  {l}");
        }
    }
    // SysRq m and l answer an OOM kill and a soft lockup by default.
    for (title, header) in [
        ("Memory report", "sysrq: Show Memory"),
        ("CPU backtraces", "sysrq: Show backtrace of all active CPUs"),
    ] {
        let lines: Vec<&str> = kmsg
            .lines()
            .skip_while(|l| !l.contains(header))
            .take(DUMP_LINES)
            .collect();
        if !lines.is_empty() {
            let _ = writeln!(o, "\n{title} ({KMSG}, from the SysRq answer):");
            for l in lines {
                let _ = writeln!(o, "  {l}");
            }
        }
    }

    let _ = writeln!(o, "\nFiles ({} and {}):", m.files.len(), super::MANIFEST);
    for f in &m.files {
        let _ = writeln!(
            o,
            "  {:>10}  {}{}",
            f.bytes,
            f.name,
            if f.truncated { "  (cut)" } else { "" }
        );
    }
    if !m.not_collected.is_empty() {
        let _ = writeln!(o, "\nNot collected ({}):", m.not_collected.len());
        for n in &m.not_collected {
            let _ = writeln!(o, "  {}: {}", n.what, n.reason);
        }
    }
    o
}

/// The start of the kernel's task dump: the blocked tasks of a SysRq
/// answer if one was read back (SysRq w prints only those; from SysRq t's
/// dump of every task, the `state:D` ones), else, for a hung task, the
/// kernel's own report.
fn task_dump<'a>(kmsg: &'a str, kind: &str) -> Option<(&'static str, Vec<&'a str>)> {
    let lines: Vec<&str> = kmsg.lines().collect();
    let from = |pat: &str| lines.iter().position(|l| l.contains(pat));
    if let Some(i) = from("sysrq: Show Blocked State") {
        let dump = lines[i..].iter().take(DUMP_LINES).copied().collect();
        return Some(("the SysRq answer", dump));
    }
    if let Some(i) = from("sysrq: Show State") {
        // Task headers read `task:NAME state:X ...` since Linux 5.x.
        let mut dump = Vec::new();
        let mut in_d = false;
        for l in &lines[i + 1..] {
            if l.contains("sysrq: ") {
                break;
            }
            if l.contains(" state:") {
                in_d = l.contains(" state:D");
            }
            if in_d {
                dump.push(*l);
                if dump.len() == DUMP_LINES {
                    break;
                }
            }
        }
        if !dump.is_empty() {
            return Some(("tasks in D state from the SysRq answer", dump));
        }
        let dump = lines[i..].iter().take(DUMP_LINES).copied().collect();
        return Some(("the SysRq answer", dump));
    }
    if kind == "hung_task" {
        let i = from("blocked for more than")?;
        let dump = lines[i..].iter().take(DUMP_LINES).copied().collect();
        return Some(("the hung-task report", dump));
    }
    None
}

/// At most `max` characters of `s`, marked when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

fn read_head(path: &Path, limit: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(limit).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_dump_shows_the_blocked_tasks() {
        let k = "a\nINFO: task x:1 blocked for more than 120 seconds.\nsysrq: Show State\ntask:init state:S pid:1\n schedule\ntask:x state:D pid:9\n percpu_rwsem_wait\ntask:y state:R pid:3\n";
        let (label, lines) = task_dump(k, "hung_task").unwrap();
        assert_eq!(label, "tasks in D state from the SysRq answer");
        assert_eq!(lines, ["task:x state:D pid:9", " percpu_rwsem_wait"]);
        let w = format!("{k}sysrq: Show Blocked State\ntask:x state:D pid:9\n");
        let (label, lines) = task_dump(&w, "hung_task").unwrap();
        assert_eq!(label, "the SysRq answer");
        assert_eq!(lines, ["sysrq: Show Blocked State", "task:x state:D pid:9"]);
        let (label, lines) = task_dump(
            "INFO: task x:1 blocked for more than 1 seconds.\n",
            "hung_task",
        )
        .unwrap();
        assert_eq!(label, "the hung-task report");
        assert_eq!(lines.len(), 1);
        assert!(task_dump("nothing\n", "oom_kill").is_none());
    }

    #[test]
    fn long_command_lines_are_clipped() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdefghijkl", 10), "abcdefg...");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
    }
}
