//! Copies of /proc taken at the trigger, into a bundle's `proc/` directory
//! with the host's layout (`proc/meminfo`, `proc/sys/vm/panic_on_oom`,
//! `proc/<pid>/stack`).
//!
//! Every read goes through [`Host`] (so fixture roots stand in for a host),
//! is capped at `proc_file_max_bytes`, and has a deadline of its own
//! ([`super::read`]): a file that cannot be read is noted in the manifest
//! with the reason, and the collection goes on.

use std::collections::BTreeSet;

use procfs_core::process::Stat;
use procfs_core::FromRead;

use super::bundle::{rfc3339, Bundle, ProcessSummary, TaskSummary};
use super::read::{DeadlineReader, Failure, Outcome};
use crate::host::{paths, Host};

/// System-wide files copied whole (within the cap): memory, reclaim and
/// fragmentation state, load, the dentry cache, mounts, and the sysctls
/// `watchdog check` judges, so the bundle shows the settings in force.
const SYSTEM_FILES: &[&str] = &[
    paths::MEMINFO,
    paths::VMSTAT,
    paths::SLABINFO,
    paths::BUDDYINFO,
    paths::ZONEINFO,
    paths::LOADAVG,
    paths::UPTIME,
    paths::DENTRY_STATE,
    paths::MOUNTS,
    paths::OSRELEASE,
    paths::SYSRQ,
    paths::HUNG_TASK_TIMEOUT,
    paths::HUNG_TASK_WARNINGS,
    paths::HUNG_TASK_PANIC,
    paths::PANIC,
    paths::PANIC_ON_OOPS,
    paths::SOFTLOCKUP_PANIC,
    paths::PANIC_ON_OOM,
    paths::VFS_CACHE_PRESSURE,
];

/// Files of a task in D state: where it sleeps and who it is.
const BLOCKED_TASK_FILES: &[&str] = &["stack", "wchan", "status", "cmdline"];
/// Files of a large process: what it is, where it is confined, and how the
/// OOM killer regards it.
const LARGE_PROCESS_FILES: &[&str] = &["cmdline", "cgroup", "oom_score_adj", "status"];

/// `/proc/PID/stat` is one line well under this.
const STAT_CAP: u64 = 4096;

/// What [`Bundle::collect_proc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectSummary {
    pub files: usize,
    pub failed: usize,
    pub tasks_scanned: usize,
    pub blocked_tasks: usize,
    pub largest_processes: usize,
}

/// A task seen in the scan.
struct Task {
    pid: u32,
    tgid: u32,
    /// `proc/<tgid>/task/<pid>` or `proc/<pid>`.
    base: String,
    comm: String,
    state: char,
    rss_pages: u64,
    stat: Vec<u8>,
}

struct Copier<'a> {
    host: &'a Host,
    reader: DeadlineReader,
    cap: u64,
    written: BTreeSet<String>,
    summary: CollectSummary,
}

impl Copier<'_> {
    /// Copies `rel` (under the root) to `name` (in the bundle); the bytes
    /// read, or `None` with the reason noted in the manifest.
    fn copy(&mut self, b: &mut Bundle, rel: &str, name: &str) -> Option<Vec<u8>> {
        if self.written.contains(name) {
            return None;
        }
        match self.reader.read(self.host.path(rel), self.cap) {
            Outcome::Data { bytes, truncated } => {
                self.store(b, name, &bytes, truncated);
                if truncated {
                    b.not_collected(
                        rel,
                        &format!("cut at proc_file_max_bytes ({} bytes)", self.cap),
                    );
                }
                Some(bytes)
            }
            Outcome::Failed(f) => {
                self.summary.failed += 1;
                b.not_collected(rel, &f.to_string());
                None
            }
        }
    }

    fn store(&mut self, b: &mut Bundle, name: &str, bytes: &[u8], truncated: bool) {
        match b.add_file_marked(name, bytes, truncated) {
            Ok(()) => {
                self.summary.files += 1;
                self.written.insert(name.to_string());
            }
            Err(e) => {
                self.summary.failed += 1;
                b.not_collected(name, &e.to_string());
            }
        }
    }
}

impl Bundle {
    /// Copies the /proc state of `host` into `proc/`: the system files, PSI,
    /// every task in D state with its kernel stack, and the largest
    /// processes by resident memory. Bounded in bytes per file, in time per
    /// file and in time overall; never fails, noting what it could not read.
    pub fn collect_proc(&mut self, host: &Host) -> CollectSummary {
        let s = &self.settings;
        let mut c = Copier {
            host,
            reader: DeadlineReader::new(s.proc_file_timeout, s.collect_timeout),
            cap: s.proc_file_max_bytes,
            written: BTreeSet::new(),
            summary: CollectSummary::default(),
        };
        let (max_blocked, max_large) = (s.max_blocked_tasks, s.largest_processes);
        self.set_proc_collected(rfc3339(chrono::Utc::now()));
        for rel in SYSTEM_FILES {
            c.copy(self, rel, rel);
        }
        match host.list_dir(paths::PRESSURE) {
            Ok(names) => {
                for n in names {
                    let rel = format!("{}/{n}", paths::PRESSURE);
                    c.copy(self, &rel, &rel);
                }
            }
            Err(e) if e.is_not_found() => self.not_collected(
                paths::PRESSURE,
                "no such directory (PSI needs Linux 4.20+ with CONFIG_PSI, and not psi=0)",
            ),
            Err(e) => self.not_collected(paths::PRESSURE, &e.to_string()),
        }

        let tasks = scan_tasks(&mut c, self);
        c.summary.tasks_scanned = tasks.len();

        let mut blocked: Vec<&Task> = tasks.iter().filter(|t| t.state == 'D').collect();
        blocked.sort_by_key(|t| t.pid);
        if blocked.len() > max_blocked {
            self.not_collected(
                "blocked tasks",
                &format!(
                    "{} tasks in D state, the first {max_blocked} copied (max_blocked_tasks)",
                    blocked.len()
                ),
            );
        }
        let mut summaries = Vec::new();
        for t in blocked.iter().take(max_blocked) {
            let dir = format!("{}/{}", paths::PROC, t.pid);
            c.store(self, &format!("{dir}/stat"), &t.stat, false);
            let mut wchan = None;
            for f in BLOCKED_TASK_FILES {
                let got = c.copy(self, &format!("{}/{f}", t.base), &format!("{dir}/{f}"));
                if *f == "wchan" {
                    wchan = got
                        .map(|w| String::from_utf8_lossy(&w).trim().to_string())
                        .filter(|w| !w.is_empty() && w != "0");
                }
            }
            summaries.push(TaskSummary {
                pid: t.pid,
                tgid: t.tgid,
                comm: t.comm.clone(),
                wchan,
            });
        }
        c.summary.blocked_tasks = summaries.len();
        self.set_blocked_tasks(summaries);

        let mut large: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.pid == t.tgid && t.rss_pages > 0)
            .collect();
        // Pages rank processes as bytes would: one page size for all.
        large.sort_by(|a, b| b.rss_pages.cmp(&a.rss_pages).then(a.pid.cmp(&b.pid)));
        let mut procs = Vec::new();
        for t in large.into_iter().take(max_large) {
            let dir = format!("{}/{}", paths::PROC, t.pid);
            let mut p = ProcessSummary {
                pid: t.pid,
                comm: t.comm.clone(),
                rss_kb: None,
                oom_score_adj: None,
                cmdline: None,
            };
            for f in LARGE_PROCESS_FILES {
                let rel = Host::proc_pid(t.pid, f);
                let name = format!("{dir}/{f}");
                // A blocked process already copied: read the bundle's copy.
                let got = if c.written.contains(&name) {
                    std::fs::read(self.dir().join(&name)).ok()
                } else {
                    c.copy(self, &rel, &name)
                };
                let Some(bytes) = got else { continue };
                let text = String::from_utf8_lossy(&bytes);
                match *f {
                    "cmdline" => {
                        let cmd = text.replace('\0', " ").trim().to_string();
                        p.cmdline = (!cmd.is_empty()).then_some(cmd);
                    }
                    "oom_score_adj" => p.oom_score_adj = text.trim().parse().ok(),
                    "status" => {
                        p.rss_kb = crate::kernel::tables::kb_field(&text, "VmRSS")
                            .ok()
                            .map(|b| b / 1024);
                    }
                    _ => {}
                }
            }
            procs.push(p);
        }
        c.summary.largest_processes = procs.len();
        self.set_largest(procs);
        if let Err(e) = self.write_manifest() {
            self.not_collected("manifest.json", &e.to_string());
        }
        c.summary
    }

    /// Runs `watchdog check` against `host` and writes `check.json`.
    pub fn collect_check(
        &mut self,
        host: &Host,
        cfg: &crate::config::CheckConfig,
    ) -> Result<(), super::IncidentError> {
        let findings = crate::check::run_checks(host, cfg, &crate::check::Selection::default());
        let report = crate::check::Report::new(host, findings);
        let json = crate::check::render_json(&report);
        self.write_check(&json)
    }
}

/// Every task's stat: threads under `proc/<pid>/task/` where the kernel
/// lists them (a hung thread is rarely its process's leader), else the
/// process alone. Tasks that vanish meanwhile are skipped silently;
/// reads that block or fail otherwise are noted.
fn scan_tasks(c: &mut Copier<'_>, b: &mut Bundle) -> Vec<Task> {
    let pids: Vec<u32> = match c.host.list_dir(paths::PROC) {
        Ok(names) => names.iter().filter_map(|n| n.parse().ok()).collect(),
        Err(e) => {
            b.not_collected(paths::PROC, &format!("cannot list tasks: {e}"));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for pid in pids {
        let task_dir = Host::proc_pid(pid, "task");
        let tids: Vec<u32> = c
            .host
            .list_dir(&task_dir)
            .map(|n| n.iter().filter_map(|t| t.parse().ok()).collect())
            .unwrap_or_default();
        let bases: Vec<(u32, String)> = if tids.is_empty() {
            vec![(pid, format!("{}/{pid}", paths::PROC))]
        } else {
            tids.iter().map(|t| (*t, format!("{task_dir}/{t}"))).collect()
        };
        for (tid, base) in bases {
            let rel = format!("{base}/stat");
            match c.reader.read(c.host.path(&rel), STAT_CAP) {
                Outcome::Data { bytes, .. } => match Stat::from_read(bytes.as_slice()) {
                    Ok(st) => out.push(Task {
                        pid: tid,
                        tgid: pid,
                        base,
                        comm: st.comm,
                        state: st.state,
                        rss_pages: st.rss,
                        stat: bytes,
                    }),
                    Err(e) => b.not_collected(&rel, &format!("cannot parse: {e}")),
                },
                Outcome::Failed(Failure::NotFound) => {}
                Outcome::Failed(f) => {
                    c.summary.failed += 1;
                    b.not_collected(&rel, &f.to_string());
                }
            }
        }
    }
    out
}
