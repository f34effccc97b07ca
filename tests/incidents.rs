//! `watchdog incidents list|show|pack|prune` through the real binary, on
//! bundles recorded the way the daemon's writer thread records them: with
//! the library, fed the real 6.1 hung-task recording and the incident-hung
//! fixture root.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use watchdog::host::Host;
use watchdog::incident::kmsg::{Lookback, Readback};
use watchdog::incident::{self, Bundle, IncidentSettings, IncidentsConfig, Origin};

use crate::util::{fixture, repo, Dir};

const REAL_HUNG: &str = "tests/fixtures/kernel-logs/real/debian-6.1-hung-task.kmsg";

/// A configuration file putting the evidence under the test's directory.
fn config(d: &Dir, incidents_yaml: &str) -> PathBuf {
    let ev = d.join("evidence");
    d.write(
        "watchdog.yaml",
        format!(
            "run:\n  evidence_dir: {}\n  incidents:\n{incidents_yaml}",
            ev.display()
        ),
    )
}

fn settings(d: &Dir) -> IncidentSettings {
    let text = std::fs::read_to_string(d.join("watchdog.yaml")).unwrap();
    let c = watchdog::config::Config::from_yaml(&text, "test").unwrap();
    c.run.incidents.compile("run.incidents").unwrap()
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The records of the real recording (header comments dropped).
fn real_records() -> Vec<String> {
    std::fs::read_to_string(repo().join(REAL_HUNG))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The hung_task event `watchdog scan` reports for the recording: the
/// same JSON the event log carries.
fn hung_event(d: &Dir) -> String {
    let r = d
        .run(&[
            "scan",
            &repo().join(REAL_HUNG).display().to_string(),
            "--kind",
            "hung_task",
        ])
        .expect_code(0);
    r.stdout.lines().next().unwrap().to_string()
}

/// Records one hung-task incident as the writer thread would: look-back
/// ring, the report and the SysRq answers read back, /proc, check, the
/// snapshot moved in, the actions, close, retention.
fn record_hung_task(d: &Dir, s: &IncidentSettings, opened: &str) -> PathBuf {
    let host = Host::new(fixture("incident-hung"));
    let records = real_records();
    let start = records
        .iter()
        .position(|r| r.contains("INFO: task wd-writer:110 blocked"))
        .unwrap();
    let mut ring = Lookback::new(s.kmsg_lookback_records);
    for r in &records[..start] {
        ring.push(r.clone());
    }
    let opened = at(opened);
    let id = incident::new_id(Some("6d0f4e0c"), opened);
    let mut b = Bundle::create(
        &d.join("evidence"),
        s,
        &id,
        "hung_task",
        opened,
        Origin::of(&host),
    )
    .unwrap();
    b.add_event(&hung_event(d)).unwrap();
    b.append_kmsg(&ring.text()).unwrap();
    b.collect_proc(&host);
    b.collect_check(&host, &Default::default()).unwrap();
    // The report and the kernel's answer to SysRq t and w, fed as the
    // kmsg reader would, a millisecond apart.
    let t0 = Instant::now();
    let mut rb = Readback::start(s.readback, t0);
    for (i, r) in records[start..].iter().enumerate() {
        let now = t0 + Duration::from_millis(i as u64);
        if !rb.accept(r, now) {
            break;
        }
        b.append_kmsg(r).unwrap();
    }
    let snap = d.join("snapshot-20261129T112501.txt");
    std::fs::write(
        &snap,
        "# tracer: nop\n wd-writer-110 [000] ..... 4.477: sched_process_exec: filename=/bin/wdhelper pid=110 old_pid=110\n",
    )
    .unwrap();
    b.adopt_file(&snap, "ftrace-snapshot.txt").unwrap();
    assert!(!snap.exists(), "the snapshot is moved, not copied");
    b.add_action(
        "hung-task-evidence",
        "sysrq t",
        true,
        "wrote t to proc/sysrq-trigger",
    )
    .unwrap();
    b.add_action("hung-task-evidence", "ftrace_snapshot", true, "saved")
        .unwrap();
    let dir = b.close(opened + chrono::Duration::seconds(3)).unwrap();
    incident::store::apply_retention(&d.join("evidence"), s).unwrap();
    dir
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn hung_task_bundle_through_list_show_and_pack() {
    let d = Dir::new();
    let cfg = config(&d, "    keep: 3\n");
    let cfg = cfg.to_str().unwrap();
    let s = settings(&d);
    let dir = record_hung_task(&d, &s, "2026-11-29T11:25:00Z");
    let m = manifest(&dir);
    let id = m["id"].as_str().unwrap().to_string();
    let name = dir.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("20261129T112500Z-hung_task-"), "{name}");

    // kmsg.txt: the look-back, the report, both dumps.
    let kmsg = std::fs::read_to_string(dir.join("kmsg.txt")).unwrap();
    let pos = |pat: &str| {
        kmsg.find(pat)
            .unwrap_or_else(|| panic!("{pat} not in kmsg.txt"))
    };
    assert!(pos("INFO: task wd-writer:110 blocked") < pos("sysrq: Show State"));
    assert!(pos("sysrq: Show State") < pos("sysrq: Show Blocked State"));
    assert!(kmsg.lines().count() > 200);
    // The event, byte for byte as the event log has it.
    let raw = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(raw.contains(hung_event(&d).trim()));
    assert_eq!(m["kind"], "hung_task");
    assert_eq!(m["host"], "db1");

    let list = d
        .run(&["--config", cfg, "incidents", "list"])
        .expect_code(0);
    assert!(list.stdout.starts_with("ID "), "{}", list.dump());
    assert!(list.stdout.contains(&id[..8]), "{}", list.dump());
    assert!(
        list.stdout
            .contains("wd-writer:110 blocked for more than 2 s"),
        "{}",
        list.dump()
    );
    let json = d
        .run(&["--config", cfg, "incidents", "list", "--format", "json"])
        .expect_code(0)
        .json();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(json[0]["name"], name.as_str());
    assert_eq!(json[0]["closed"], "2026-11-29T11:25:03.000Z");

    let show = d
        .run(&["--config", cfg, "incidents", "show", &id[..5]])
        .expect_code(0);
    for want in [
        "Tasks in D state",
        "110 wd-writer  wchan percpu_rwsem_wait",
        "[<0>] percpu_rwsem_wait+0x116/0x140",
        "913 ib_io_wr-1 (thread of 900)",
        // The recording fired SysRq t, then w: the blocked tasks are shown.
        "Task dump (kmsg.txt, from the SysRq answer)",
        "sysrq: Show Blocked State",
        "task:wd-writer       state:D",
        "/usr/lib/jvm/java-17/bin/java -Xmx4g",
        "proc/slabinfo: no such file",
        "ok     hung-task-evidence sysrq t",
        "ftrace-snapshot.txt",
    ] {
        assert!(
            show.stdout.contains(want),
            "{want:?} missing\n{}",
            show.dump()
        );
    }
    let shown = d
        .run(&[
            "--config",
            cfg,
            "incidents",
            "show",
            &name,
            "--format",
            "json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(shown["id"], id.as_str());

    // pack: extracts with the host's tar, and matches the manifest.
    let out = d.join("case.tar.gz");
    let packed = d
        .run(&[
            "--config",
            cfg,
            "incidents",
            "pack",
            &id[..6],
            "--output",
            out.to_str().unwrap(),
        ])
        .expect_code(0);
    assert!(packed.stdout.starts_with("wrote "), "{}", packed.dump());
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    let st = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&out)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    let top: Vec<String> = std::fs::read_dir(&x)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(top, std::slice::from_ref(&name));
    let ex = x.join(&name);
    assert_eq!(manifest(&ex), m);
    for f in m["files"].as_array().unwrap() {
        let p = ex.join(f["name"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            f["bytes"].as_u64().unwrap(),
            "{}",
            p.display()
        );
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(dir.join(f["name"].as_str().unwrap())).unwrap()
        );
    }
    // Nothing in the archive that the manifest does not list.
    let listed = m["files"].as_array().unwrap().len() + 1;
    let walked = walk(&ex).len();
    assert_eq!(walked, listed);
    // The default output name is the incident's, in the working directory.
    d.run(&["--config", cfg, "incidents", "pack", &id])
        .expect_code(0);
    assert!(d.join(&format!("{name}.tar.gz")).is_file());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn keep_3_removes_the_oldest_bundle_and_prune_applies_a_new_limit() {
    let d = Dir::new();
    let cfg = config(&d, "    keep: 3\n").to_str().unwrap().to_string();
    let s = settings(&d);
    let times = [
        "2026-11-29T08:00:00Z",
        "2026-11-29T09:00:00Z",
        "2026-11-29T10:00:00Z",
        "2026-11-29T11:00:00Z",
    ];
    let dirs: Vec<PathBuf> = times.iter().map(|t| record_hung_task(&d, &s, t)).collect();
    assert!(!dirs[0].exists(), "the fourth incident removed the oldest");
    assert!(dirs[1..].iter().all(|p| p.exists()));
    let json = d
        .run(&["--config", &cfg, "incidents", "list", "--format", "json"])
        .expect_code(0)
        .json();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names[0].starts_with("20261129T090000Z"), "{names:?}");

    let cfg1 = d.write(
        "keep1.yaml",
        format!(
            "run:\n  evidence_dir: {}\n  incidents:\n    keep: 1\n",
            d.join("evidence").display()
        ),
    );
    let r = d
        .run(&["--config", cfg1.to_str().unwrap(), "incidents", "prune"])
        .expect_code(0);
    assert!(r.stdout.contains("2 removed, 1 kept"), "{}", r.dump());
    assert!(
        r.stdout.contains("removed 20261129T090000Z-hung_task-"),
        "{}",
        r.dump()
    );
    assert!(dirs[3].exists());
}

#[test]
fn a_bundle_never_exceeds_max_bundle_bytes() {
    let d = Dir::new();
    let cfg = config(
        &d,
        "    max_bundle_bytes: 65536\n    sysrq_readback_max_bytes: 16384\n",
    );
    let s = settings(&d);
    let dir = record_hung_task(&d, &s, "2026-11-29T11:25:00Z");
    let total: u64 = walk(&dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= 65536, "{total} bytes");
    let m = manifest(&dir);
    assert_eq!(m["capped"], true);
    // The start of the incident is what is kept.
    let kmsg = std::fs::read_to_string(dir.join("kmsg.txt")).unwrap();
    assert!(kmsg.contains("INFO: task wd-writer:110 blocked"));
    let show = d
        .run(&[
            "--config",
            cfg.to_str().unwrap(),
            "incidents",
            "show",
            m["id"].as_str().unwrap(),
        ])
        .expect_code(0);
    assert!(show.stdout.contains("capped"), "{}", show.dump());
    assert!(show.stdout.contains("max_bundle_bytes"), "{}", show.dump());
}

#[test]
fn an_oom_bundle_shows_the_memory_report_and_the_largest_processes() {
    let d = Dir::new();
    let cfg = config(&d, "    keep: 10\n");
    let s = settings(&d);
    let host = Host::new(fixture("incident-hung"));
    let opened = at("2026-11-29T12:00:00Z");
    let mut b = Bundle::create(
        &d.join("evidence"),
        &s,
        "00c0ffee",
        "oom_kill",
        opened,
        Origin::of(&host),
    )
    .unwrap();
    b.add_event(r#"{"kind":"oom_kill","time":"2026-11-29T12:00:00Z","source":"kmsg","pid":2001,"comm":"java","memcg":false}"#)
        .unwrap();
    // The kernel's answer to SysRq m, from the real 6.1 recording.
    let text = std::fs::read_to_string(
        repo().join("tests/fixtures/kernel-logs/real/debian-6.1-sysrq.kmsg"),
    )
    .unwrap();
    let answer: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("sysrq: Show Memory"))
        .take_while(|l| !l.contains("wd-scenario: end"))
        .collect();
    assert!(answer.len() > 10);
    b.append_kmsg(&answer.join("\n")).unwrap();
    b.collect_proc(&host);
    b.close(opened).unwrap();
    let show = d
        .run(&[
            "--config",
            cfg.to_str().unwrap(),
            "incidents",
            "show",
            "00c0",
        ])
        .expect_code(0);
    for want in [
        "kind:      oom_kill: killed java:2001",
        "Memory report (kmsg.txt, from the SysRq answer):",
        "sysrq: Show Memory",
        "Largest processes by resident memory:",
        "2001     3.4 GiB        0  /usr/lib/jvm/java-17/bin/java",
    ] {
        assert!(
            show.stdout.contains(want),
            "{want:?} missing\n{}",
            show.dump()
        );
    }
    assert!(!show.stdout.contains("Task dump"), "{}", show.dump());
}

#[test]
fn unknown_and_ambiguous_ids_are_clear_errors() {
    let d = Dir::new();
    let cfg = config(&d, "    keep: 10\n").to_str().unwrap().to_string();
    let empty = d
        .run(&["--config", &cfg, "incidents", "list"])
        .expect_code(0);
    assert!(
        empty.stdout.starts_with("no incidents in "),
        "{}",
        empty.dump()
    );
    let s = settings(&d);
    record_hung_task(&d, &s, "2026-11-29T10:00:00Z");
    record_hung_task(&d, &s, "2026-11-29T11:00:00Z");
    let r = d
        .run(&["--config", &cfg, "incidents", "show", "zzz"])
        .expect_code(3);
    assert!(r.stderr.contains("no incident \"zzz\""), "{}", r.dump());
    let r = d
        .run(&["--config", &cfg, "incidents", "pack", "2026"])
        .expect_code(3);
    assert!(
        r.stderr.contains("ambiguous: 2 incidents match"),
        "{}",
        r.dump()
    );
}

#[test]
fn incidents_settings_are_validated_with_their_paths() {
    let d = Dir::new();
    let cfg = config(&d, "    keep: 0\n    max_bundle_bytes: 10\n    bogus: 1\n");
    let r = d
        .run(&["config", "check", cfg.to_str().unwrap()])
        .expect_code(3);
    assert!(r.stderr.contains("run.incidents.bogus"), "{}", r.dump());
    let cfg = config(&d, "    keep: 0\n    max_bundle_bytes: 10\n");
    let r = d
        .run(&["config", "check", cfg.to_str().unwrap()])
        .expect_code(3);
    assert!(
        r.stderr.contains("run.incidents.keep: must be between 1"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains("run.incidents.max_bundle_bytes"),
        "{}",
        r.dump()
    );
    // The defaults are valid.
    assert!(IncidentsConfig::default().compile("run.incidents").is_ok());
}
