//! `watchdog last-boot` and `watchdog run`'s previous-boot report through
//! the real binary, on the fixture roots of tests/fixtures/lastboot (one
//! per source and class; FIXTURE.md names where each text comes from).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{bin, copy_tree, fixture, Daemon, Dir, Run};

const THIS_BOOT: &str = "6a0e4a9e-9d0c-4c2e-8a43-3f1b2c3d4e5f";

/// A copy of a fixture root as a host that booted 300 s ago, its files
/// dated an hour back (evidence of the previous boot, before any report).
fn host(dir: &Dir, name: &str) {
    let root = dir.join("root");
    copy_tree(&fixture(&format!("lastboot/{name}")), &root);
    dir.write("root/proc/uptime", "300.00 250.00\n");
    dir.write(
        "root/proc/sys/kernel/random/boot_id",
        format!("{THIS_BOOT}\n"),
    );
    backdate(&root);
}

fn backdate(root: &Path) {
    let ok = Command::new("find")
        .arg(root)
        .args(["-exec", "touch", "-h", "-d", "1 hour ago", "{}", "+"])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// A stand-in `journalctl` printing the fixture's recorded JSON: the
/// kernel messages for `-k`, the last entries otherwise.
fn fake_journalctl(dir: &Dir) -> String {
    let fx = fixture("lastboot/journal-reboot");
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *\" -k\"*) cat '{0}/journal-k.json';; *) cat '{0}/journal-tail.json';; esac\n",
        fx.display()
    );
    let p = dir.write("journalctl", script);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn last_boot(dir: &Dir, format: &str) -> Run {
    let journalctl = fake_journalctl(dir);
    let out = Command::new(bin())
        .args([
            "last-boot",
            "--root",
            "root",
            "--state-dir",
            "state",
            "--format",
            format,
        ])
        .env("WATCHDOG_JOURNALCTL", journalctl)
        .current_dir(dir.path())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        cmdline: format!("watchdog last-boot --format {format}"),
    }
}

fn lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", run.dump())))
        .collect()
}

#[test]
fn each_fixture_root_gives_its_cause() {
    for (name, cause, code, source) in [
        (
            "pstore-hung-task-panic",
            "hung_task_panic",
            1,
            "dmesg-ramoops-0",
        ),
        (
            "ramoops-real-6.1-hung-task-panic",
            "hung_task_panic",
            1,
            "dmesg-ramoops-0",
        ),
        ("kdump-oom-panic", "oom_panic", 1, "vmcore-dmesg.txt"),
        (
            "pstore-console-sysrq-crash",
            "sysrq_crash",
            1,
            "console-ramoops-0",
        ),
        ("systemd-pstore-efi-oops", "oops", 1, "dmesg.txt"),
        (
            "messages-soft-lockup-panic",
            "soft_lockup_panic",
            1,
            "var/log/messages",
        ),
        ("journal-reboot", "reboot", 0, "journalctl -k -b -1"),
        ("ramoops-real-6.1-reboot", "reboot", 0, "dmesg-ramoops-0"),
    ] {
        let dir = Dir::new();
        host(&dir, name);
        let run = last_boot(&dir, "json").expect_code(code);
        let events = lines(&run);
        let pb = &events[0];
        assert_eq!(pb["kind"], "previous_boot", "{name}\n{}", run.dump());
        assert_eq!(pb["cause"], cause, "{name}\n{}", run.dump());
        assert!(
            pb["sources"].as_str().unwrap().contains(source),
            "{name}: {pb}"
        );
        for e in &events[1..] {
            assert_eq!(e["previous_boot"], true, "{name}: {e}");
        }
        let text = last_boot(&dir, "text").expect_code(code);
        assert!(
            text.stdout
                .starts_with(&format!("previous boot: {cause}\n")),
            "{}",
            text.dump()
        );
    }
}

#[test]
fn hung_task_panic_names_the_panic_line_and_the_task() {
    let dir = Dir::new();
    host(&dir, "pstore-hung-task-panic");
    let run = last_boot(&dir, "json").expect_code(1);
    let events = lines(&run);
    assert_eq!(
        events[0]["summary"],
        "Kernel panic - not syncing: hung_task: blocked tasks"
    );
    assert_eq!(events[0]["last_kernel_time"], 4.482113);
    let hung: Vec<&Value> = events.iter().filter(|e| e["kind"] == "hung_task").collect();
    assert_eq!(hung.len(), 1, "{}", run.dump());
    assert_eq!(hung[0]["comm"], "wd-writer");
    assert_eq!(hung[0]["pid"], 110);
    // The two ramoops parts were joined oldest first: the report's header
    // is in Part2, its stack in Part1.
    assert!(hung[0]["source"]
        .as_str()
        .unwrap()
        .ends_with("dmesg-ramoops-1"));
}

/// The record a real Debian 6.1 kernel left in ramoops (tests/vm,
/// prevboot-panic boot): the hung task and the panic it caused.
#[test]
fn a_real_ramoops_record_of_a_hung_task_panic() {
    let dir = Dir::new();
    host(&dir, "ramoops-real-6.1-hung-task-panic");
    let events = lines(&last_boot(&dir, "json").expect_code(1));
    assert_eq!(
        events[0]["summary"],
        "Kernel panic - not syncing: hung_task: blocked tasks"
    );
    assert_eq!(events[0]["last_kernel_time"], 14.128656);
    let hung: Vec<&Value> = events.iter().filter(|e| e["kind"] == "hung_task").collect();
    assert_eq!(hung.len(), 1);
    assert_eq!(
        (hung[0]["comm"].as_str(), hung[0]["pid"].as_u64()),
        (Some("wd-writer"), Some(123))
    );
}

#[test]
fn the_journal_marks_the_previous_boots_incidents_with_its_id() {
    let dir = Dir::new();
    host(&dir, "journal-reboot");
    let events = lines(&last_boot(&dir, "json").expect_code(0));
    assert_eq!(events[0]["boot_id"], "4f1c6f9e0c2b4b7e9a4c1d2e3f405162");
    assert_eq!(events[1]["kind"], "hung_task");
    assert_eq!(events[1]["comm"], "xfsaild/dm-3");
    assert_eq!(events[1]["boot_id"], "4f1c6f9e0c2b4b7e9a4c1d2e3f405162");
}

#[test]
fn a_compressed_pstore_record_is_reported_not_parsed() {
    let dir = Dir::new();
    host(&dir, "systemd-pstore-efi-oops");
    let run = last_boot(&dir, "text").expect_code(1);
    assert!(
        run.stdout
            .contains("dmesg-efi-171720000001002.enc.z: compressed record"),
        "{}",
        run.dump()
    );
}

#[test]
fn nothing_to_read_is_exit_3_and_runs_own_record_decides_otherwise() {
    let dir = Dir::new();
    dir.write("root/proc/uptime", "300.00 250.00\n");
    dir.write(
        "root/proc/sys/kernel/random/boot_id",
        format!("{THIS_BOOT}\n"),
    );
    let run = last_boot(&dir, "text").expect_code(3);
    assert!(
        run.stdout.contains("nothing could be read"),
        "{}",
        run.dump()
    );

    // run was watching when the boot ended: no evidence, and say so.
    let record = |stopped: &str| {
        format!(
            r#"{{"current":{{"boot_id":"0b0e","started":"2026-01-01T00:00:00+00:00","stopped":{stopped}}},"previous":null}}"#
        )
    };
    dir.write("state/boot-record.json", record("null"));
    let run = last_boot(&dir, "json").expect_code(1);
    let pb = &lines(&run)[0];
    assert_eq!(pb["cause"], "no_evidence");
    assert_eq!(pb["boot_id"], "0b0e");
    assert!(pb["summary"]
        .as_str()
        .unwrap()
        .contains("while watchdog run was watching"));
    assert!(pb["summary"].as_str().unwrap().contains("BMC"));

    // run was stopped by SIGTERM: an orderly shutdown.
    dir.write(
        "state/boot-record.json",
        record("\"2026-01-02T00:00:00+00:00\""),
    );
    let pb = &lines(&last_boot(&dir, "json").expect_code(0))[0];
    assert_eq!(pb["cause"], "clean_shutdown");
}

fn config(dir: &Dir) {
    let base = dir.path().display();
    dir.write(
        "config.yaml",
        format!(
            "run:\n  event_log: {base}/events.jsonl\n  state_file: {base}/state/kmsg.state\n  evidence_dir: {base}/evidence\n  kdump_check: {{at_start: false, interval_hours: 24}}\n  tracefs: {{enabled: false}}\n"
        ),
    );
}

fn run_once(dir: &Dir) -> Run {
    let mut d = Daemon::start(
        dir.path(),
        &["run", "--root", "root", "--config", "config.yaml"],
    );
    d.wait_stderr("events go to");
    std::thread::sleep(std::time::Duration::from_millis(100));
    d.stop()
}

fn events(dir: &Dir) -> Vec<Value> {
    crate::util::json_lines(&dir.join("events.jsonl"))
}

#[test]
fn run_reports_the_previous_boot_once_per_boot_id() {
    let dir = Dir::new();
    host(&dir, "pstore-hung-task-panic");
    config(&dir);
    let first = run_once(&dir);
    assert!(
        first
            .stderr
            .contains("previous boot ended: hung_task_panic: Kernel panic - not syncing: hung_task: blocked tasks"),
        "{}",
        first.dump()
    );
    let ev = events(&dir);
    let pb: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "previous_boot").collect();
    assert_eq!(pb.len(), 1, "{ev:?}");
    assert_eq!(pb[0]["cause"], "hung_task_panic");
    let hung: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "hung_task").collect();
    assert_eq!(hung.len(), 1);
    assert_eq!(hung[0]["previous_boot"], true);
    assert_eq!(
        (hung[0]["comm"].as_str(), hung[0]["pid"].as_u64()),
        (Some("wd-writer"), Some(110))
    );
    // History: no rule acts on it (the default rules SysRq-T a hung task).
    assert!(ev.iter().all(|e| e["kind"] != "action"), "{ev:?}");
    // Its own incident bundle, with copies of the pstore records (the
    // originals stay where systemd-pstore or the next look expects them).
    let id = pb[0]["incident"]
        .as_str()
        .expect("previous_boot has an incident");
    let bundles: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join("evidence/incidents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-previous_boot-"))
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let m: Value =
        serde_json::from_slice(&std::fs::read(bundles[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["id"], id);
    assert!(m["closed"].is_string(), "{m}");
    for rec in ["dmesg-ramoops-0", "dmesg-ramoops-1"] {
        let copy = std::fs::read(bundles[0].join("previous-boot").join(rec)).unwrap();
        let orig = std::fs::read(dir.join("root/sys/fs/pstore").join(rec)).unwrap();
        assert_eq!(copy, orig, "{rec}");
    }
    let rec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/boot-record.json")).unwrap())
            .unwrap();
    assert_eq!(rec["current"]["boot_id"], THIS_BOOT);
    let (started, stopped) = (
        rec["current"]["started"].as_str().unwrap(),
        rec["current"]["stopped"].as_str().unwrap(),
    );
    assert!(
        stopped > started,
        "stopped when it stopped, not at start: {rec}"
    );

    // A restart in the same boot says nothing new.
    run_once(&dir);
    let again = events(&dir);
    assert_eq!(
        again
            .iter()
            .filter(|e| e["kind"] == "previous_boot")
            .count(),
        1
    );

    // The next boot: the pstore records were reported already; run's own
    // record says it was stopped on SIGTERM.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    dir.write(
        "root/proc/sys/kernel/random/boot_id",
        "7b1f5baf-0000-4c2e-8a43-3f1b2c3d4e5f\n",
    );
    run_once(&dir);
    let third = events(&dir);
    let pb: Vec<&Value> = third
        .iter()
        .filter(|e| e["kind"] == "previous_boot")
        .collect();
    assert_eq!(pb.len(), 2, "{third:?}");
    assert_eq!(pb[1]["cause"], "clean_shutdown", "{}", pb[1]);
    assert_eq!(pb[1]["boot_id"], THIS_BOOT);
}
