//! Fault tests through the real binary (issue 18, Build 3): a full disk,
//! a descriptor limit of 10, the event log made unwritable mid-run, and
//! `check` and `scan` pointed at FIFOs, /dev/zero and sparse 1 GB files.
//! Each says what the fault must cost: nothing hangs, memory stays
//! bounded, lines stay whole, and every loss is counted.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::regression::{
    finding, mkfifo, peak_rss, spawn, udplogger, wait_bounded, Run, Tmpfs, HUNG,
};
use crate::util::{copy_tree, fixture, wait_until, Dir};

/// A sparse file of `len` bytes (no blocks on disk).
fn sparse(p: &Path, len: u64) {
    let f = std::fs::File::create(p).unwrap();
    f.set_len(len).unwrap();
}

#[test]
fn run_with_ten_descriptors_still_records_events() {
    let mut r = Run::new("");
    r.start_limited(Some(10));
    r.kmsg(&[(1, HUNG)]);
    r.wait_for("the hung task", |r| {
        r.kinds().contains(&"hung_task".to_string())
    });
    assert_eq!(r.stop(), 0);
}

#[test]
fn event_log_made_unwritable_mid_run_counts_what_was_lost() {
    let mut r = Run::new("");
    r.start();
    r.kmsg(&[(1, "INFO: task a:1 blocked for more than 2 seconds.")]);
    r.wait_for("the first event", |r| {
        r.kinds().contains(&"hung_task".to_string())
    });
    // Rotated away, and a directory where the file must be created again
    // (even root cannot write there); SIGHUP makes the daemon reopen.
    let log = r.dir.join("events.jsonl");
    std::fs::rename(&log, r.dir.join("events.old")).unwrap();
    std::fs::create_dir(&log).unwrap();
    r.signal(nix::sys::signal::Signal::SIGHUP);
    r.wait_for("the reload", |r| r.stderr().contains("SIGHUP"));
    r.kmsg(&[
        (2, "INFO: task b:2 blocked for more than 2 seconds."),
        (3, "INFO: task c:3 blocked for more than 2 seconds."),
    ]);
    r.wait_for("the failure", |r| {
        r.stderr().contains("cannot write event log")
    });
    std::fs::remove_dir(&log).unwrap();
    r.kmsg(&[(4, "INFO: task d:4 blocked for more than 2 seconds.")]);
    r.wait_for("the recovery", |r| r.kinds().contains(&"lost".to_string()));
    assert_eq!(r.stop(), 0);
    let events: Vec<Value> = r
        .event_lines("events.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lost = events
        .iter()
        .find(|e| e["kind"] == "lost" && e["source"] == "watchdog")
        .unwrap();
    // b was not written: counted. c was written or counted, never both
    // (it comes 200 ms later, when the kernel's report is complete, and
    // the directory may be gone by then).
    let c = events.iter().filter(|e| e["comm"] == "c").count() as u64;
    assert_eq!(lost["count"].as_u64().unwrap() + c, 2, "{events:#?}");
    assert!(events.iter().any(|e| e["comm"] == "d"), "{events:#?}");
    assert!(!events.iter().any(|e| e["comm"] == "b"), "{events:#?}");
    assert!(r.stderr().contains("writable again"), "{}", r.stderr());
}

#[test]
fn udplogger_on_a_full_disk_counts_every_dropped_line() {
    let dir = Dir::new();
    let Some(fs) = Tmpfs::mount(&dir, "small", "64k") else {
        return;
    };
    let logs = fs.0.join("logs");
    let cfg = dir.write(
        "c.yaml",
        "udplogger:\n  fault_hold_bytes: 2048\n  retry_max_ms: 200\n",
    );
    let mut d = crate::util::Daemon::start(
        dir.path(),
        &[
            "udplogger",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            logs.to_str().unwrap(),
            "--utc",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let err = d.wait_stderr("writing to");
    let addr = crate::util::listen_addr(&err);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"before the disk filled\n", addr).unwrap();
    wait_until("the first line", || {
        crate::regression::tree_text(&logs)
            .contains("before the disk")
            .then_some(())
    });
    let filler = fs.fill();
    let sent = 400;
    let pad = "z".repeat(80);
    let line = |i: usize| format!("full {i:03} {pad}\n");
    // More than the slack of the file's last page: the write fails.
    let first = 60;
    for i in 0..first {
        s.send_to(line(i).as_bytes(), addr).unwrap();
    }
    d.wait_stderr("retrying");
    // Now in a fault: past fault_hold_bytes, lines are dropped and counted.
    for i in first..sent {
        s.send_to(line(i).as_bytes(), addr).unwrap();
        if i % 20 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&filler).unwrap();
    let text = wait_until("the recovery marker", || {
        let t = crate::regression::tree_text(&logs);
        t.contains("writing resumed").then_some(t)
    });
    let r = d.stop();
    assert_eq!(r.code, 0, "{}", r.dump());
    let whole = text
        .lines()
        .filter(|l| l.contains(" full ") && l.ends_with(&pad))
        .count();
    let torn = text
        .lines()
        .filter(|l| l.contains(" full ") && !l.ends_with(&pad))
        .count();
    let dropped: usize = text
        .split("writing resumed: ")
        .nth(1)
        .and_then(|x| x.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(torn, 0, "{text}");
    assert!(dropped > 0, "{text}");
    assert_eq!(whole + dropped, sent, "{text}\n{}", r.dump());
}

#[test]
fn check_on_fifos_devices_and_sparse_files_finishes_with_unknowns() {
    let dir = Dir::new();
    copy_tree(&fixture("well-tuned"), &dir.join("root"));
    let root = dir.join("root");
    mkfifo(&root.join("proc/sys/kernel/hung_task_timeout_secs"));
    std::fs::remove_file(root.join("proc/cmdline")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("proc/cmdline")).unwrap();
    sparse(&root.join("proc/sys/vm/vfs_cache_pressure"), 1 << 30);
    let out = wait_bounded(
        spawn(dir.path(), &["check", "--root", "root", "--format", "json"]),
        "check on a FIFO, /dev/zero and a sparse 1 GB file",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (id, file, why) in [
        (
            "hung-task-timeout",
            "hung_task_timeout_secs",
            "not a regular file",
        ),
        ("cmdline-quiet", "proc/cmdline", "not a regular file"),
        ("vfs-cache-pressure", "vfs_cache_pressure", "larger than"),
    ] {
        let f = finding(&report, id);
        assert_eq!(f["status"], "unknown", "{f:#}");
        let summary = f["summary"].as_str().unwrap();
        assert!(summary.contains(file) && summary.contains(why), "{summary}");
    }
    // The audit ran to its end: every finding is there.
    assert!(
        report["findings"].as_array().unwrap().len() > 15,
        "{report:#}"
    );
}

#[test]
fn scan_reads_a_fifo_until_its_writer_closes() {
    let dir = Dir::new();
    let fifo = dir.join("console.fifo");
    mkfifo(&fifo);
    let child = spawn(dir.path(), &["scan", "console.fifo"]);
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        for i in 0..100 {
            writeln!(
                f,
                "[{i:>5}.000000] INFO: task t{i}:{i} blocked for more than 120 seconds."
            )
            .unwrap();
        }
    });
    let out = wait_bounded(child, "scan of a FIFO");
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("\"kind\":\"hung_task\"").count(),
        100,
        "{stdout}"
    );
}

#[test]
fn scan_refuses_dev_zero() {
    let dir = Dir::new();
    let out = wait_bounded(spawn(dir.path(), &["scan", "/dev/zero"]), "scan /dev/zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/dev/zero: is a device"), "{stderr}");
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn scan_of_a_sparse_1gb_file_stays_small() {
    let dir = Dir::new();
    sparse(&dir.join("holes.log"), 1 << 30);
    let (out, peak_kib) = peak_rss(dir.path(), &["scan", "--summary", "holes.log"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB"
    );
}

#[test]
fn udplogger_daily_file_replaced_by_a_symlink_is_refused() {
    let dir = Dir::new();
    let (mut d, addr) = udplogger(&dir, None, &[]);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"first\n", addr).unwrap();
    let logs = dir.join("logs");
    let file = wait_until("the day's file", || {
        std::fs::read_dir(&logs)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
    });
    wait_until("the first line", || {
        std::fs::read_to_string(&file)
            .is_ok_and(|t| t.contains("first"))
            .then_some(())
    });
    let target = dir.join("elsewhere.txt");
    std::fs::write(&target, "").unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    s.send_to(b"second\n", addr).unwrap();
    d.wait_stderr("symbolic link");
    let r = d.stop();
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
}
