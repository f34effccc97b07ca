//! `watchdog run` against the real systemd-journald: a private journald
//! instance (a journal namespace, `systemd-journald NAME`, which binds its
//! own sockets under /run/systemd/journal.NAME/) receives the native
//! entries, and `journalctl --namespace=NAME -o json` reads them back.
//!
//! Needs root and systemd's journald binary; skips, saying so, otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::forward::{kmsg, run_host, HUNG};
use crate::util::{wait_until, Daemon};

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// A journald instance of its own namespace; removed with its files.
struct Journald {
    ns: String,
    child: Child,
}

impl Journald {
    fn start() -> Option<Journald> {
        if !nix::unistd::geteuid().is_root() || !Path::new(JOURNALD).exists() {
            return None;
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ns = format!("wdtest{}x{n}", std::process::id());
        let child = Command::new(JOURNALD)
            .arg(&ns)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let j = Journald { ns, child };
        let sock = j.socket();
        wait_until("journald's socket", || sock.exists().then_some(()));
        Some(j)
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}/socket", self.ns))
    }

    /// Entries of watchdog, as `journalctl -o json` prints them.
    fn entries(&self) -> Vec<Value> {
        let out = Command::new("journalctl")
            .args([
                &format!("--namespace={}", self.ns),
                "-o",
                "json",
                // Long fields too (otherwise printed as null).
                "--all",
                "--no-pager",
                "SYSLOG_IDENTIFIER=watchdog",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.ns));
        if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
            for base in ["/var/log/journal", "/run/log/journal"] {
                let _ = std::fs::remove_dir_all(format!("{base}/{}.{}", id.trim(), self.ns));
            }
        }
    }
}

#[test]
fn a_hung_task_reaches_journald_with_its_message_id_and_fields() {
    let Some(j) = Journald::start() else {
        eprintln!("SKIPPED: needs root and {JOURNALD} to run a private journald");
        return;
    };
    let dir = run_host("  journal: on\n");
    // The fixture root's journal socket is the private journald's.
    std::fs::create_dir_all(dir.join("root/run/systemd/journal")).unwrap();
    std::os::unix::fs::symlink(j.socket(), dir.join("root/run/systemd/journal/socket")).unwrap();
    // Ready when it said where events go: in the journal, not on stderr.
    let d = Daemon::start(
        dir.path(),
        &["run", "--root", "root", "--config", "config.yaml"],
    );
    wait_until("watchdog's first words in the journal", || {
        j.entries()
            .iter()
            .any(|v| {
                v["MESSAGE"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("events go to"))
            })
            .then_some(())
    });
    kmsg(&dir, &[(10, HUNG.to_string())]);
    let hung_id = "67778d9a27f04f93914ef2f5371a4709";
    let entries = wait_until("the hung task and its actions in the journal", || {
        let e = j.entries();
        (e.iter().any(|v| v["MESSAGE_ID"] == hung_id)
            && e.iter().filter(|v| v["WATCHDOG_KIND"] == "action").count() == 2)
            .then_some(e)
    });
    let r = d.stop();
    let hung = entries.iter().find(|v| v["MESSAGE_ID"] == hung_id).unwrap();
    assert_eq!(hung["PRIORITY"], "4", "{hung:#}");
    assert_eq!(hung["SYSLOG_IDENTIFIER"], "watchdog");
    assert_eq!(
        hung["MESSAGE"],
        "hung task: fsfreeze writer (pid 412) blocked for more than 2 s"
    );
    assert_eq!(hung["WATCHDOG_KIND"], "hung_task");
    assert_eq!(hung["WATCHDOG_COMM"], "fsfreeze writer");
    assert_eq!(hung["WATCHDOG_PID"], "412");
    assert_eq!(hung["WATCHDOG_BLOCKED_SECS"], "2");
    assert_eq!(hung["WATCHDOG_SOURCE"], "kmsg");
    assert_eq!(hung["WATCHDOG_HOST"], "db01.example.com");
    assert!(
        hung.get("WATCHDOG_BLOCKER_COMM").is_none(),
        "null fields are left out"
    );
    let action = entries
        .iter()
        .find(|v| v["WATCHDOG_ACTION"] == "sysrq t")
        .unwrap();
    assert_eq!(action["MESSAGE_ID"], "7c7f464a46514a6c95ae220f4a4a2bff");
    assert_eq!(action["WATCHDOG_RULE"], "hung-task-evidence");
    assert_eq!(action["WATCHDOG_OK"], "true");
    // Never both: what went to the journal is not on stderr.
    assert!(!r.stderr.contains("hung task: fsfreeze"), "{}", r.dump());
}

/// journalctl itself reads the shipped catalog: every MESSAGE_ID has its
/// subject (what `journalctl -x` shows).
#[test]
fn journalctl_reads_the_message_catalog() {
    if Command::new("journalctl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: journalctl is not installed");
        return;
    }
    let dir = crate::util::Dir::new();
    let cat = dir.join("usr/lib/systemd/catalog");
    std::fs::create_dir_all(&cat).unwrap();
    std::fs::copy(
        crate::util::repo().join("packaging/watchdog.catalog"),
        cat.join("watchdog.catalog"),
    )
    .unwrap();
    let root = dir.path().to_str().unwrap();
    let up = Command::new("journalctl")
        .args(["--root", root, "--update-catalog"])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let list = Command::new("journalctl")
        .args(["--root", root, "--list-catalog"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("67778d9a27f04f93914ef2f5371a4709 watchdog: A task was blocked"),
        "{text}\n{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert_eq!(text.lines().count(), 23, "{text}");
}

/// An entry larger than a datagram goes through a sealed memfd, and the
/// real journald takes it whole.
#[test]
fn a_large_entry_reaches_journald_through_a_memfd() {
    let Some(j) = Journald::start() else {
        eprintln!("SKIPPED: needs root and {JOURNALD} to run a private journald");
        return;
    };
    let big = "x".repeat(600 * 1024);
    let mut fields = watchdog::journal::base_fields(5, "a large entry");
    fields.push(("WATCHDOG_BIG".into(), big.clone().into_bytes()));
    fields.push(("WATCHDOG_LINES".into(), b"one\ntwo".to_vec()));
    let conn = watchdog::journal::Journal::connect(&j.socket()).unwrap();
    conn.send(&fields).unwrap();
    let e = wait_until("the large entry", || {
        j.entries()
            .into_iter()
            .find(|v| v["MESSAGE"] == "a large entry")
    });
    assert_eq!(e["WATCHDOG_BIG"].as_str().map(str::len), Some(big.len()));
    assert_eq!(e["WATCHDOG_LINES"], "one\ntwo");
}
