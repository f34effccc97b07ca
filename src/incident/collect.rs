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

use super::bundle::{rfc3339, Bundle, ProcessSummary, TaskSummary, CHECK};
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

        // The system-wide files after the tasks: a blocked task may be
        // released at any moment, memory counters change more slowly.
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
                        // The whole command line is in the file; the
                        // manifest keeps enough to recognise it.
                        let cmd: String =
                            text.replace('\0', " ").trim().chars().take(256).collect();
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

    /// Runs `watchdog check` against `host` and writes `check.json`. The
    /// checks read /proc too (every process's status for `oom-score-adj`),
    /// so they run on a helper thread, abandoned after
    /// `collect_timeout_secs` like a blocked file read.
    pub fn collect_check(
        &mut self,
        host: &Host,
        cfg: &crate::check::CheckConfig,
    ) -> Result<(), super::IncidentError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (h, c) = (host.clone(), cfg.clone());
        let spawned = std::thread::Builder::new()
            .name("incident-check".into())
            // Locked memory (mlockall in `run`): no 2 MiB default stack.
            .stack_size(1 << 20)
            .spawn(move || {
                let sel = crate::check::Selection::default();
                let findings = crate::check::run_checks(&h, &c, &sel);
                let report = crate::check::Report::new(&h, findings);
                let _ = tx.send(crate::check::render_json(&report));
            });
        let timeout = self.settings.collect_timeout;
        let why = match spawned {
            Err(e) => format!("cannot start a thread for the checks: {e}"),
            Ok(_) => match rx.recv_timeout(timeout) {
                Ok(json) => return self.write_check(&json),
                Err(_) => format!(
                    "timed out after {} s (a check's read is blocked in the kernel)",
                    timeout.as_secs()
                ),
            },
        };
        self.not_collected(CHECK, &why);
        self.write_manifest()
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
            tids.iter()
                .map(|t| (*t, format!("{task_dir}/{t}")))
                .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{IncidentsConfig, Manifest, Origin, MANIFEST};
    use std::path::{Path, PathBuf};

    fn fixture() -> Host {
        Host::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/incident-hung"))
    }

    fn bundle(ev: &Path, cfg: IncidentsConfig) -> Bundle {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-29T11:25:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let host = fixture();
        Bundle::create(
            ev,
            &cfg.compile("run.incidents").unwrap(),
            "5eed",
            "hung_task",
            at,
            Origin::of(&host),
        )
        .unwrap()
    }

    fn manifest(dir: &Path) -> Manifest {
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap()
    }

    #[test]
    fn copies_what_the_fixture_offers_and_names_what_it_lacks() {
        let ev = tempfile::tempdir().unwrap();
        let mut b = bundle(ev.path(), IncidentsConfig::default());
        let s = b.collect_proc(&fixture());
        let dir = b.close(chrono::Utc::now()).unwrap();
        let m = manifest(&dir);
        assert_eq!(m.host.as_deref(), Some("db1"));
        assert_eq!(
            m.boot_id.as_deref(),
            Some("6d0f4e0c-3c59-4b8e-9a59-2f5a1d6c7e01")
        );
        let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
        for want in [
            "proc/meminfo",
            "proc/vmstat",
            "proc/buddyinfo",
            "proc/zoneinfo",
            "proc/loadavg",
            "proc/mounts",
            "proc/pressure/memory",
            "proc/sys/fs/dentry-state",
            "proc/sys/kernel/hung_task_timeout_secs",
            "proc/sys/vm/panic_on_oom",
            "proc/110/stack",
            "proc/110/wchan",
            "proc/110/status",
            "proc/110/cmdline",
            "proc/913/stack",
            "proc/245/stack",
            "proc/2001/cmdline",
            "proc/2001/cgroup",
            "proc/2001/oom_score_adj",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        for f in &m.files {
            let copy = std::fs::read(dir.join(&f.name)).unwrap();
            assert_eq!(copy.len() as u64, f.bytes, "{}", f.name);
            let orig = std::fs::read(fixture().path(&f.name)).unwrap_or_default();
            if !f.name.starts_with("proc/913/") {
                assert_eq!(copy, orig, "{} is a faithful copy", f.name);
            }
        }
        // The thread's files come from its task directory.
        assert!(std::fs::read_to_string(dir.join("proc/913/stack"))
            .unwrap()
            .contains("folio_wait_bit_common"));
        let missing: Vec<(&str, &str)> = m
            .not_collected
            .iter()
            .map(|n| (n.what.as_str(), n.reason.as_str()))
            .collect();
        assert!(
            missing.contains(&("proc/slabinfo", "no such file")),
            "{missing:?}"
        );
        // D state: the hung writer, the journal thread, and a thread whose
        // leader sleeps; sorted by pid.
        let blocked: Vec<(u32, u32, &str, Option<&str>)> = m
            .blocked_tasks
            .iter()
            .map(|t| (t.pid, t.tgid, t.comm.as_str(), t.wchan.as_deref()))
            .collect();
        assert_eq!(
            blocked,
            [
                (110, 110, "wd-writer", Some("percpu_rwsem_wait")),
                (
                    245,
                    245,
                    "jbd2/vda1-8",
                    Some("jbd2_journal_commit_transaction")
                ),
                (913, 900, "ib_io_wr-1", Some("folio_wait_bit_common")),
            ]
        );
        // Largest by RSS, kernel threads (no RSS) left out.
        let large: Vec<(u32, &str)> = m
            .largest_processes
            .iter()
            .map(|p| (p.pid, p.comm.as_str()))
            .collect();
        assert_eq!(
            large,
            [
                (2001, "java"),
                (900, "mysqld"),
                (1, "systemd"),
                (613, "sshd"),
                (1200, "(sd-pam)"),
                (110, "wd-writer")
            ]
        );
        let java = &m.largest_processes[0];
        assert_eq!(java.rss_kb, Some(3_600_000));
        assert_eq!(
            java.cmdline.as_deref(),
            Some("/usr/lib/jvm/java-17/bin/java -Xmx4g -jar /opt/app/app.jar")
        );
        assert_eq!(m.largest_processes[3].oom_score_adj, Some(-1000));
        assert_eq!(s.blocked_tasks, 3);
        assert_eq!(s.largest_processes, 6);
        assert_eq!(s.tasks_scanned, 8);
        assert!(m.proc_collected.is_some());
    }

    #[test]
    fn check_json_holds_the_findings_at_the_trigger() {
        let ev = tempfile::tempdir().unwrap();
        let mut b = bundle(ev.path(), IncidentsConfig::default());
        b.collect_check(&fixture(), &Default::default()).unwrap();
        let dir = b.close(chrono::Utc::now()).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(CHECK)).unwrap()).unwrap();
        assert_eq!(v["host"], "db1");
        let ids: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["id"].as_str())
            .collect();
        assert!(ids.contains(&"hung-task-warnings"), "{ids:?}");
        assert!(manifest(&dir).files.iter().any(|f| f.name == CHECK));
    }

    #[test]
    fn limits_hold_per_file_and_per_list() {
        let ev = tempfile::tempdir().unwrap();
        let mut b = bundle(
            ev.path(),
            IncidentsConfig {
                proc_file_max_bytes: 4096,
                largest_processes: 2,
                max_blocked_tasks: 1,
                ..IncidentsConfig::default()
            },
        );
        b.collect_proc(&fixture());
        let dir = b.close(chrono::Utc::now()).unwrap();
        let m = manifest(&dir);
        let zone = m.files.iter().find(|f| f.name == "proc/zoneinfo").unwrap();
        assert_eq!(zone.bytes, 4096);
        assert!(zone.truncated);
        assert!(m
            .not_collected
            .iter()
            .any(|n| n.what == "proc/zoneinfo" && n.reason.contains("proc_file_max_bytes")));
        assert_eq!(m.blocked_tasks.len(), 1);
        assert!(m
            .not_collected
            .iter()
            .any(|n| n.reason.contains("3 tasks in D state, the first 1 copied")));
        assert_eq!(m.largest_processes.len(), 2);
    }

    #[test]
    fn a_read_that_blocks_is_abandoned_at_its_deadline() {
        // A root whose hung task's cmdline never answers (a FIFO without a
        // writer, as a cmdline read blocks on a hung process's mm lock).
        let root = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = root.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("proc/meminfo", "MemTotal: 1024 kB\n");
        w(
            "proc/77/stat",
            "77 (stuck) D 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 1000 10 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
        );
        w("proc/77/stack", "[<0>] rwsem_down_read_slowpath+0x1/0x2\n");
        nix::unistd::mkfifo(
            &root.path().join("proc/77/cmdline"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let ev = tempfile::tempdir().unwrap();
        let mut b = bundle(
            ev.path(),
            IncidentsConfig {
                proc_file_timeout_ms: 100,
                ..IncidentsConfig::default()
            },
        );
        let t = std::time::Instant::now();
        b.collect_proc(&Host::new(root.path()));
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        let dir = b.close(chrono::Utc::now()).unwrap();
        let m = manifest(&dir);
        let why = m
            .not_collected
            .iter()
            .find(|n| n.what == "proc/77/cmdline")
            .map(|n| n.reason.clone());
        assert!(
            why.as_deref()
                .is_some_and(|w| w.starts_with("timed out after 100 ms")),
            "{why:?}"
        );
        // The collection went on past it: the same task's status is noted
        // missing, its stack copied.
        assert!(m.files.iter().any(|f| f.name == "proc/77/stack"));
        assert!(m.not_collected.iter().any(|n| n.what == "proc/77/status"));
        // Release the abandoned reader.
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(root.path().join("proc/77/cmdline"));
    }
}
