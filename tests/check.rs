//! `watchdog check` through the real binary, against the fixture host
//! trees in tests/fixtures (each has a FIXTURE.md saying what it shows).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{copy_tree, fixture, repo, run_env, run_in, Dir, Run};

/// Every check ID of docs/contracts.md, in report order.
const IDS: [&str; 30] = [
    "kdump-reserved",
    "kdump-loaded",
    "kdump-size",
    "kdump-target",
    "kdump-initramfs",
    "sysrq-trigger",
    "sysrq-keyboard",
    "cmdline-quiet",
    "log-buf-size",
    "printk-time",
    "remote-console",
    "console-loglevel",
    "hung-task-timeout",
    "hung-task-warnings",
    "panic-on-oom",
    "oom-score-adj",
    "vfs-cache-pressure",
    "dentry-overflow",
    "psi",
    "uptime-208-days",
    "tracefs",
    "ftrace-snapshot",
    "kprobe-events",
    "panic-settings",
    "nmi-panic",
    "hardware-watchdog",
    "tainted",
    "sysstat",
    "pstore",
    "persistent-journal",
];

/// Runs `check --format json` on a fixture from the repository root, so
/// that paths in findings are the stable `tests/fixtures/...`.
fn check_json(name: &str, extra: &[&str]) -> (Run, Value) {
    fixture(name);
    let root = format!("tests/fixtures/{name}");
    let mut args = vec!["check", "--root", &root, "--format", "json"];
    args.extend_from_slice(extra);
    let r = run_in(&repo(), &args, None);
    let v = r.json();
    (r, v)
}

fn statuses(v: &Value) -> BTreeMap<String, String> {
    v["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts the listed statuses; every other check must be `ok`.
fn expect(name: &str, code: i32, not_ok: &[(&str, &str)]) {
    let (r, v) = check_json(name, &[]);
    assert_eq!(r.code, code, "{name}: exit code\n{}", r.dump());
    assert_eq!(v["exit_code"], code, "{name}: exit_code field");
    let got = statuses(&v);
    let ids: Vec<&str> = got.keys().map(String::as_str).collect();
    let mut want_ids = IDS.to_vec();
    want_ids.sort();
    assert_eq!(ids, want_ids, "{name}: every check ID once");
    for id in IDS {
        let want = not_ok
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("ok", |(_, s)| *s);
        assert_eq!(got[id], want, "{name}: status of {id}\n{}", r.dump());
    }
    // Every finding carries the contract fields.
    for f in v["findings"].as_array().unwrap() {
        assert!(!f["summary"].as_str().unwrap().is_empty(), "{f}");
        assert!(f["values"].is_object(), "{f}");
        if f["status"] != "ok" {
            assert!(!f["remediation"].as_str().unwrap().is_empty(), "{f}");
        }
    }
}

#[test]
fn well_tuned_host_is_all_ok() {
    expect("well-tuned", 0, &[]);
}

#[test]
fn default_rhel9_install_warns_about_the_usual_suspects() {
    expect(
        "rhel9-default",
        1,
        &[
            ("sysrq-keyboard", "warning"),
            ("cmdline-quiet", "warning"),
            ("remote-console", "warning"),
            ("hung-task-timeout", "warning"),
            ("hung-task-warnings", "warning"),
            ("nmi-panic", "warning"),
            ("kdump-target", "info"),
            ("sysstat", "info"),
            ("pstore", "warning"),
            ("persistent-journal", "unknown"),
        ],
    );
}

#[test]
fn neglected_host_is_critical() {
    expect(
        "neglected",
        2,
        &[
            ("kdump-reserved", "critical"),
            ("kdump-loaded", "critical"),
            ("kdump-size", "warning"),
            ("sysrq-keyboard", "warning"),
            ("cmdline-quiet", "warning"),
            ("log-buf-size", "warning"),
            ("printk-time", "warning"),
            ("remote-console", "warning"),
            ("hung-task-timeout", "critical"),
            ("hung-task-warnings", "critical"),
            ("oom-score-adj", "warning"),
            ("vfs-cache-pressure", "warning"),
            ("dentry-overflow", "critical"),
            ("tracefs", "info"),
            ("panic-settings", "info"),
            ("nmi-panic", "info"),
            ("tainted", "info"),
            ("sysstat", "info"),
            ("pstore", "warning"),
            ("persistent-journal", "unknown"),
        ],
    );
}

#[test]
fn old_rhel6_kernel_near_208_days() {
    expect(
        "rhel6-old",
        2,
        &[
            ("uptime-208-days", "critical"),
            ("kdump-initramfs", "warning"),
            ("sysrq-keyboard", "warning"),
            ("hung-task-timeout", "warning"),
            ("hung-task-warnings", "warning"),
            ("ftrace-snapshot", "warning"),
            ("nmi-panic", "warning"),
            ("tainted", "warning"),
            ("log-buf-size", "unknown"),
            ("kdump-target", "info"),
            ("panic-settings", "info"),
            ("sysstat", "info"),
            ("pstore", "warning"),
            ("persistent-journal", "unknown"),
        ],
    );
}

#[test]
fn host_without_tracefs() {
    expect(
        "no-tracefs",
        1,
        &[
            ("tracefs", "warning"),
            ("ftrace-snapshot", "warning"),
            ("kprobe-events", "warning"),
            ("hung-task-timeout", "warning"),
            ("hardware-watchdog", "warning"),
            ("kdump-target", "info"),
            ("pstore", "warning"),
            ("persistent-journal", "warning"),
            // RHEL 8: PSI built in, off until psi=1.
            ("psi", "info"),
        ],
    );
}

#[test]
fn kdump_broken_after_an_update() {
    expect(
        "kdump-broken",
        2,
        &[
            ("kdump-loaded", "critical"),
            ("kdump-target", "critical"),
            ("kdump-initramfs", "critical"),
            ("cmdline-quiet", "warning"),
            ("console-loglevel", "warning"),
            ("hung-task-timeout", "warning"),
            ("hung-task-warnings", "warning"),
            ("hardware-watchdog", "warning"),
            ("tainted", "warning"),
            ("panic-settings", "info"),
            ("nmi-panic", "info"),
            ("sysstat", "info"),
            ("pstore", "warning"),
            ("persistent-journal", "warning"),
        ],
    );
}

#[test]
fn garbage_tree_reports_instead_of_crashing() {
    let (r, v) = check_json("garbage", &[]);
    assert!(r.code == 2 || r.code == 3, "{}", r.dump());
    assert!(r.stderr.is_empty(), "{}", r.dump());
    let got = statuses(&v);
    assert_eq!(got.len(), IDS.len());
    let unknown = got.values().filter(|s| *s == "unknown").count();
    assert!(unknown >= 15, "most findings unknown: {got:?}");
    // Each unknown names the file and why.
    for f in v["findings"].as_array().unwrap() {
        if f["status"] == "unknown" {
            let s = f["summary"].as_str().unwrap();
            assert!(s.contains("tests/fixtures/garbage/"), "{s}");
        }
    }
    let summary = |id: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap()["summary"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(summary("sysrq-keyboard").contains("expected an integer, found \"on\""));
    assert!(summary("cmdline-quiet").contains("not valid UTF-8"));
    assert!(summary("panic-settings").contains("99999999999999999999999"));
    // The text rendering escapes the hostile hostname instead of printing
    // the escape sequence.
    let t = run_in(
        &repo(),
        &["check", "--root", "tests/fixtures/garbage"],
        None,
    );
    assert!(!t.stdout.contains('\x1b'), "{}", t.dump());
}

#[test]
fn enormous_and_odd_files_are_unknown_not_fatal() {
    let d = Dir::new();
    let root = d.join("host");
    copy_tree(&fixture("well-tuned"), &root);
    // 10 MB where a number belongs, a directory where a file belongs, a
    // FIFO that would block a naive reader is left out: /proc has none.
    std::fs::write(root.join("proc/sys/kernel/sysrq"), vec![b'1'; 10 << 20]).unwrap();
    std::fs::remove_file(root.join("proc/sys/vm/panic_on_oom")).unwrap();
    std::fs::create_dir(root.join("proc/sys/vm/panic_on_oom")).unwrap();
    std::fs::write(root.join("proc/sys/kernel/panic"), "").unwrap();
    let r = d.run(&["check", "--root", "host", "--format", "json"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    let v = r.json();
    let st = statuses(&v);
    assert_eq!(st["sysrq-keyboard"], "unknown");
    assert_eq!(st["panic-on-oom"], "unknown");
    assert_eq!(st["panic-settings"], "unknown");
    let text = r.stdout;
    assert!(text.contains("larger than 1048576 bytes"), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
}

#[test]
fn missing_files_follow_the_contract() {
    let d = Dir::new();
    let root = d.join("host");
    copy_tree(&fixture("well-tuned"), &root);
    for f in [
        "proc/sysrq-trigger",
        "proc/sys/kernel/hung_task_timeout_secs",
        "proc/sys/kernel/hung_task_warnings",
        "sys/module/printk/parameters/time",
    ] {
        std::fs::remove_file(root.join(f)).unwrap();
    }
    let r = d.run(&["check", "--root", "host", "--format", "json"]);
    let st = statuses(&r.json());
    // docs/contracts.md: missing sysrq-trigger and hung_task_timeout_secs are
    // CRITICAL; any other unreadable file is UNKNOWN.
    assert_eq!(st["sysrq-trigger"], "critical");
    assert_eq!(st["hung-task-timeout"], "critical");
    assert_eq!(st["hung-task-warnings"], "critical");
    assert_eq!(st["printk-time"], "unknown");
    assert_eq!(r.code, 2, "{}", r.dump());
}

/// Golden files: tests/golden/check-NAME.{txt,json}. Regenerate with
/// `UPDATE_GOLDEN=1 cargo test golden` and review the diff.
#[test]
fn golden_outputs() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = repo().join("tests/golden");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for name in [
        "well-tuned",
        "rhel9-default",
        "neglected",
        "rhel6-old",
        "no-tracefs",
        "garbage",
        "kdump-broken",
    ] {
        fixture(name);
        let root = format!("tests/fixtures/{name}");
        for (ext, extra) in [
            ("txt", &["--color", "never"][..]),
            ("json", &["--format", "json"][..]),
            ("plan.txt", &["--plan"][..]),
            ("plan.json", &["--plan", "--format", "json"][..]),
        ] {
            let mut args = vec!["check", "--root", root.as_str()];
            args.extend_from_slice(extra);
            // A fixed report time (reproducible-builds' SOURCE_DATE_EPOCH).
            let r = run_env(&repo(), &args, None, &[("SOURCE_DATE_EPOCH", "1735689600")]);
            let got = normalize_free_bytes(&r.stdout);
            let path = dir.join(format!("check-{name}.{ext}"));
            if update {
                std::fs::write(&path, &got).unwrap();
            } else {
                let want = std::fs::read_to_string(&path).unwrap_or_default();
                if want != got {
                    failures.push(format!(
                        "{} differs:\n--- want\n{want}\n--- got\n{}",
                        path.display(),
                        got
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// kdump-target records the free space of the dump directory's file
/// system, which is this machine's disk under a fixture: not golden.
fn normalize_free_bytes(out: &str) -> String {
    out.lines()
        .map(|l| match l.find("\"free_bytes\": ") {
            Some(i) => {
                let end = if l.ends_with(',') { "," } else { "" };
                format!("{}\"free_bytes\": \"(this machine)\"{end}", &l[..i])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if out.ends_with('\n') { "\n" } else { "" }
}

#[test]
fn text_is_worst_first_and_aligned() {
    let r = run_in(
        &repo(),
        &[
            "check",
            "--root",
            "tests/fixtures/neglected",
            "--color",
            "never",
        ],
        None,
    )
    .expect_code(2);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with(' '))
        .collect();
    let rank = |l: &str| match l.split_whitespace().next().unwrap() {
        "CRITICAL" => 0,
        "WARNING" => 1,
        "UNKNOWN" => 2,
        "INFO" => 3,
        _ => 4,
    };
    let ranks: Vec<i32> = lines.iter().map(|l| rank(l)).collect();
    let mut sorted = ranks.clone();
    sorted.sort();
    assert_eq!(ranks, sorted, "{}", r.stdout);
    // The summary column starts at the same place on every line.
    let starts: Vec<usize> = lines
        .iter()
        .map(|l| {
            let id = l.split_whitespace().nth(1).unwrap();
            let after = l.find(id).unwrap() + id.len();
            after + l[after..].find(|c: char| c != ' ').unwrap()
        })
        .collect();
    assert_eq!(lines.len(), IDS.len());
    assert!(
        starts.iter().all(|&s| s == starts[0]),
        "{starts:?}\n{}",
        r.stdout
    );
    assert!(!r.stdout.contains('\x1b'), "no colour off a TTY");
    let c = run_in(
        &repo(),
        &[
            "check",
            "--root",
            "tests/fixtures/neglected",
            "--color",
            "always",
        ],
        None,
    );
    assert!(c.stdout.contains("\x1b[1;31mCRITICAL"), "{}", c.dump());
}

#[test]
fn only_and_skip_select_checks() {
    let (r, v) = check_json("neglected", &["--only", "sysrq-trigger,panic-on-oom"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        statuses(&v).keys().collect::<Vec<_>>(),
        ["panic-on-oom", "sysrq-trigger"]
    );
    let (_, v) = check_json("neglected", &["--skip", "kdump-reserved,kdump-loaded"]);
    let st = statuses(&v);
    assert_eq!(st.len(), IDS.len() - 2);
    assert!(!st.contains_key("kdump-loaded"));
    let r = Dir::new()
        .run(&["check", "--only", "kdump-lodaed"])
        .expect_code(3);
    assert!(
        r.stderr.contains("unknown check id kdump-lodaed"),
        "{}",
        r.dump()
    );
}

#[test]
fn baseline_reports_exactly_the_changed_sysctl() {
    let d = Dir::new();
    copy_tree(&fixture("rhel9-default"), &d.join("host"));
    d.run(&["check", "--root", "host", "--save-baseline", "base.json"]);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("base.json")).unwrap()).unwrap();
    assert_eq!(saved["values"]["vm.vfs_cache_pressure"], 100);
    assert_eq!(
        saved["read_by"]["vm.vfs_cache_pressure"],
        serde_json::json!(["vfs-cache-pressure", "dentry-overflow"])
    );
    assert_eq!(saved["volatile"]["threads"], 301);

    // Nothing changed: no drift, same exit code as without a baseline.
    let r = d.run(&[
        "check",
        "--root",
        "host",
        "--baseline",
        "base.json",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.stdout.contains("baseline-drift"), "{}", r.stdout);

    // One sysctl changes; volatile values change too and must not count.
    d.write("host/proc/sys/vm/vfs_cache_pressure", "500\n");
    d.write("host/proc/loadavg", "1.00 1.00 1.00 3/999 99999\n");
    d.write(
        "host/proc/sys/fs/dentry-state",
        "99999\t88888\t45\t0\t0\t0\n",
    );
    let r = d.run(&[
        "check",
        "--root",
        "host",
        "--baseline",
        "base.json",
        "--format",
        "json",
    ]);
    let v = r.json();
    let drift: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "baseline-drift")
        .collect();
    // Two checks read that sysctl: still one change, one finding.
    assert_eq!(drift.len(), 1, "{}", r.stdout);
    assert_eq!(drift[0]["values"]["value"], "vm.vfs_cache_pressure");
    assert_eq!(
        drift[0]["values"]["checks"],
        serde_json::json!(["vfs-cache-pressure", "dentry-overflow"])
    );
    for f in &drift {
        assert_eq!(f["status"], "warning");
        assert_eq!(f["values"]["old"], 100);
        assert_eq!(f["values"]["new"], 500);
        assert!(f["summary"].as_str().unwrap().contains("100 → 500"), "{f}");
    }
    let t = d.run(&[
        "check",
        "--root",
        "host",
        "--baseline",
        "base.json",
        "--color",
        "never",
    ]);
    assert!(t.stdout.contains("baseline-drift"), "{}", t.stdout);
}

#[test]
fn baseline_errors_are_clear() {
    let d = Dir::new();
    d.write("bad.json", "{not json");
    let r = d
        .run(&[
            "check",
            "--root",
            &fixture("well-tuned").display().to_string(),
            "--baseline",
            "bad.json",
        ])
        .expect_code(3);
    assert!(
        r.stderr.contains("bad.json: not a watchdog baseline"),
        "{}",
        r.dump()
    );
    let r = d
        .run(&["check", "--baseline", "missing.json"])
        .expect_code(3);
    assert!(
        r.stderr.contains("cannot read baseline missing.json"),
        "{}",
        r.dump()
    );
}

#[test]
fn config_changes_thresholds_and_errors_name_every_path() {
    let d = Dir::new();
    let root = fixture("rhel9-default").display().to_string();
    d.write(
        "strict.yaml",
        "check:\n  hung_task:\n    failover_timeout_secs: 60\n  skip: [remote-console]\n",
    );
    let r = d.run(&[
        "check",
        "--root",
        &root,
        "--config",
        "strict.yaml",
        "--format",
        "json",
    ]);
    let st = statuses(&r.json());
    assert_eq!(st["hung-task-timeout"], "warning", "120 s > 60 s failover");
    assert!(!st.contains_key("remote-console"));

    d.write(
        "bad.yaml",
        "check:\n  dentry: {warning_ratio: 3}\n  oom_score_adj: {at_or_below: -5000}\n",
    );
    let r = d.run(&["check", "--config", "bad.yaml"]).expect_code(3);
    assert!(
        r.stderr.contains("bad.yaml: 3 configuration errors"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains("check.dentry.warning_ratio"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains("check.oom_score_adj.at_or_below"),
        "{}",
        r.dump()
    );
    let r = d.run(&["config", "check", "bad.yaml"]).expect_code(3);
    assert!(
        r.stderr.contains("check.dentry.warning_ratio"),
        "{}",
        r.dump()
    );
    d.write("typo.yaml", "check:\n  hung_tsk: {}\n");
    let r = d.run(&["config", "check", "typo.yaml"]).expect_code(3);
    assert!(r.stderr.contains("check.hung_tsk"), "{}", r.dump());
    assert!(r.stderr.contains("unknown field"), "{}", r.dump());
}

#[test]
fn embedded_default_config_prints_and_validates() {
    let d = Dir::new();
    let r = d.run(&["config", "default"]).expect_code(0);
    d.write("default.yaml", &r.stdout);
    d.run(&["config", "check", "default.yaml"]).expect_code(0);
}

#[test]
fn bad_invocations_exit_unknown() {
    let d = Dir::new();
    let r = d
        .run(&["check", "--root", "/nonexistent/dir"])
        .expect_code(3);
    assert!(
        r.stderr
            .contains("--root /nonexistent/dir: not a directory"),
        "{}",
        r.dump()
    );
    d.run(&["check", "--format", "yaml"]).expect_code(3);
    d.run(&["--help"]).expect_code(0);
    let v = d.run(&["--version"]).expect_code(0);
    assert!(v.stdout.starts_with("watchdog "), "{}", v.dump());
}

#[test]
fn live_host_report_is_consistent() {
    // Whatever this machine's state, the report lists every check and the
    // exit code agrees with the document.
    let r = Dir::new().run(&["check", "--format", "json"]);
    let v = r.json();
    assert_eq!(
        i64::from(r.code),
        v["exit_code"].as_i64().unwrap(),
        "{}",
        r.dump()
    );
    assert_eq!(statuses(&v).len(), IDS.len());
}

#[test]
fn works_as_an_unprivileged_user() {
    // Only when this test runs as root with runuser available, and the
    // binary is reachable by `nobody`.
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !is_root
        || std::process::Command::new("runuser")
            .arg("--help")
            .output()
            .is_err()
    {
        eprintln!("skipped: needs root and runuser to switch to nobody");
        return;
    }
    let out = std::process::Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            crate::util::bin(),
            "check",
            "--format",
            "json",
        ])
        .current_dir("/")
        .output()
        .unwrap();
    if out.stdout.is_empty() && String::from_utf8_lossy(&out.stderr).contains("Permission denied") {
        eprintln!("skipped: the binary is not reachable by nobody");
        return;
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(statuses(&v).len(), IDS.len());
    assert_eq!(
        i64::from(out.status.code().unwrap()),
        v["exit_code"].as_i64().unwrap()
    );
}

/// Applies a plan to a fixture copy the way the kernel would after the
/// reboot, then checks again: what the plan addresses must be OK.
#[test]
fn plan_applied_to_the_neglected_host_turns_its_findings_ok() {
    let d = Dir::new();
    copy_tree(&fixture("neglected"), &d.join("host"));
    let r = d.run(&["check", "--root", "host", "--plan"]).expect_code(2);
    let plan = r.stdout;
    assert!(plan.contains("Nothing has been changed"), "{plan}");
    // 1. The sysctl.d file.
    let start = plan.find("<<'EOF'\n").expect("a sysctl.d file") + 8;
    let end = start + plan[start..].find("\nEOF\n").unwrap();
    for line in plan[start..end].lines().filter(|l| !l.starts_with('#')) {
        let (key, rest) = line.split_once(" = ").unwrap();
        let value = rest.split_whitespace().next().unwrap();
        let file = format!("host/proc/sys/{}", key.replace('.', "/"));
        assert!(
            d.join(&file).exists(),
            "{file} is a real sysctl of the fixture"
        );
        d.write(&file, format!("{value}\n"));
    }
    // 2. The command line: grubby --remove-args="…" --args="…".
    let grubby = plan
        .lines()
        .find(|l| l.starts_with("grubby "))
        .expect("grubby line");
    let quoted = |flag: &str| -> Vec<String> {
        grubby
            .split(&format!("{flag}=\""))
            .nth(1)
            .map(|r| {
                r.split('"')
                    .next()
                    .unwrap()
                    .split(' ')
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let cmdline = std::fs::read_to_string(d.join("host/proc/cmdline")).unwrap();
    let remove = quoted("--remove-args");
    let mut words: Vec<String> = cmdline
        .split_whitespace()
        .filter(|w| !remove.contains(&w.to_string()))
        .map(str::to_string)
        .collect();
    let add = quoted("--args");
    words.extend(add.iter().cloned());
    d.write("host/proc/cmdline", words.join(" ") + "\n");
    // The reboot: the kernel honours crashkernel= and printk.time=, and
    // the "after the reboot" steps start kdump.
    if add.iter().any(|a| a.starts_with("crashkernel=")) {
        d.write(
            "host/sys/kernel/kexec_crash_size",
            format!("{}\n", 512u64 << 20),
        );
    }
    if add.iter().any(|a| a == "printk.time=1") {
        d.write("host/sys/module/printk/parameters/time", "Y\n");
    }
    assert!(plan.contains("systemctl enable --now kdump"));
    d.write("host/sys/kernel/kexec_crash_loaded", "1\n");

    let after = d.run(&["check", "--root", "host", "--format", "json"]);
    let st = statuses(&after.json());
    for id in [
        "kdump-reserved",
        "kdump-loaded",
        "kdump-size",
        "sysrq-keyboard",
        "cmdline-quiet",
        "log-buf-size",
        "printk-time",
        "remote-console",
        "hung-task-timeout",
        "hung-task-warnings",
        "vfs-cache-pressure",
        "dentry-overflow",
    ] {
        assert_eq!(
            st[id], "ok",
            "{id} after the plan\n{plan}\n{}",
            after.stdout
        );
    }
    // What needs a person is listed as such.
    assert!(plan.contains("- oom-score-adj:"), "{plan}");
    // Only oom-score-adj is left as a warning.
    assert_eq!(after.code, 1, "{}", after.stdout);
}

#[test]
fn plan_for_a_healthy_host_is_empty() {
    let r = run_in(
        &repo(),
        &["check", "--root", "tests/fixtures/well-tuned", "--plan"],
        None,
    )
    .expect_code(0);
    assert!(r.stdout.contains("Nothing to change"), "{}", r.stdout);
}

#[test]
fn dentry_and_208_day_thresholds_follow_the_contract() {
    let d = Dir::new();
    // A modern kernel: the count cannot wrap, but the same thresholds hold.
    copy_tree(&fixture("rhel9-default"), &d.join("el9"));
    d.write("el9/proc/sys/vm/vfs_cache_pressure", "10000\n");
    d.write(
        "el9/proc/sys/fs/dentry-state",
        "31000000\t30000000\t45\t0\t0\t0\n",
    );
    let st = statuses(
        &d.run(&["check", "--root", "el9", "--format", "json"])
            .json(),
    );
    assert_eq!(st["dentry-overflow"], "critical");
    d.write(
        "el9/proc/sys/fs/dentry-state",
        "12000000\t11000000\t45\t0\t0\t0\n",
    );
    let st = statuses(
        &d.run(&["check", "--root", "el9", "--format", "json"])
            .json(),
    );
    assert_eq!(
        st["dentry-overflow"], "warning",
        "11M unused x 10000 / 100 is 51% of INT_MAX"
    );
    // An affected RHEL 6 kernel far from 208.5 days: a heads-up, not a failure.
    copy_tree(&fixture("rhel6-old"), &d.join("el6"));
    d.write("el6/proc/uptime", "8640000.00 9000000.00\n");
    let r = d.run(&["check", "--root", "el6", "--format", "json"]);
    let v = r.json();
    assert_eq!(statuses(&v)["uptime-208-days"], "info", "{}", r.stdout);
    // Past it: critical.
    d.write("el6/proc/uptime", "18100000.00 9000000.00\n");
    let st = statuses(
        &d.run(&["check", "--root", "el6", "--format", "json"])
            .json(),
    );
    assert_eq!(st["uptime-208-days"], "critical");
    // Fixed kernel: ok whatever the uptime.
    d.write(
        "el6/proc/sys/kernel/osrelease",
        "2.6.32-358.23.2.el6.x86_64\n",
    );
    let st = statuses(
        &d.run(&["check", "--root", "el6", "--format", "json"])
            .json(),
    );
    assert_eq!(st["uptime-208-days"], "ok");
}

#[test]
fn netconsole_module_with_invisible_targets_counts() {
    let d = Dir::new();
    copy_tree(&fixture("rhel9-default"), &d.join("h"));
    // Loaded with targets as its parameter; no configfs to show them.
    d.write("h/sys/module/netconsole/refcnt", "0\n");
    let r = d.run(&[
        "check",
        "--root",
        "h",
        "--format",
        "json",
        "--only",
        "remote-console",
    ]);
    let v = r.json();
    assert_eq!(statuses(&v)["remote-console"], "ok", "{}", r.stdout);
    // configfs shows targets, none enabled, nothing configured it: not sending.
    d.write("h/sys/kernel/config/netconsole/t1/enabled", "0\n");
    let r = d.run(&[
        "check",
        "--root",
        "h",
        "--format",
        "json",
        "--only",
        "remote-console",
    ]);
    assert_eq!(
        statuses(&r.json())["remote-console"],
        "warning",
        "{}",
        r.stdout
    );
}

/// Runs `script` with `sh -e` in a new user and mount namespace where
/// /etc/sysctl.d is `dir/etc-sysctl.d`, every other directory
/// `sysctl --system` reads is empty, and /proc/sys is `dir/proc-sys`: the
/// real procps `sysctl` then parses and applies files exactly as on a host,
/// writing into our files instead of the kernel (and, as a user-namespace
/// root, it could not write the host's sysctls even if a bind failed).
/// None when this machine cannot create such a namespace.
fn in_sysctl_sandbox(dir: &std::path::Path, script: &str) -> Option<Run> {
    let probe = std::process::Command::new("unshare")
        .args(["-rm", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success())
        || std::process::Command::new("sysctl")
            .arg("--version")
            .output()
            .is_err()
    {
        return None;
    }
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::write(dir.join("proc-sys/MARKER"), "").unwrap();
    let setup = r#"
cd "$SANDBOX"
mount --bind proc-sys /proc/sys
test -e /proc/sys/MARKER
for d in /run/sysctl.d /usr/local/lib/sysctl.d /usr/lib/sysctl.d /lib/sysctl.d; do
    if [ -d "$d" ]; then mount --bind empty "$d"; fi
done
mount --bind etc-sysctl.d /etc/sysctl.d
if [ -e /etc/sysctl.conf ]; then mount --bind /dev/null /etc/sysctl.conf; fi
"#;
    let out = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-ec", &format!("{setup}\n{script}")])
        .env("SANDBOX", dir)
        .output()
        .unwrap();
    Some(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        cmdline: script.to_string(),
    })
}

/// The plan's sysctl file, written by the plan's own commands and loaded by
/// the real `sysctl --system`, sets every key to exactly the planned value;
/// keys of the file the plan does not own survive, and so do two
/// per-finding fixes applied one after the other.
#[test]
fn plan_and_fixes_apply_with_real_sysctl_semantics() {
    let d = Dir::new();
    fixture("neglected");
    let r = run_in(
        &repo(),
        &[
            "check",
            "--root",
            "tests/fixtures/neglected",
            "--plan",
            "--format",
            "json",
        ],
        None,
    );
    let plan = r.json();
    let steps = plan["steps"].as_array().unwrap();
    let want: Vec<(String, String)> = steps
        .iter()
        .filter(|s| s["kind"] == "sysctl")
        .map(|s| {
            assert_eq!(s["file"], "/etc/sysctl.d/90-watchdog.conf");
            (
                s["key"].as_str().unwrap().to_string(),
                s["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(want.len() >= 5, "{}", r.stdout);
    // The fake /proc/sys: every key the plan sets, and one it does not.
    let sandbox = d.join("sb");
    for (k, _) in want
        .iter()
        .chain([&("net.ipv4.ip_forward".to_string(), String::new())])
    {
        d.write(&format!("sb/proc-sys/{}", k.replace('.', "/")), "unset\n");
    }
    // An existing file: a key of someone else's, an old value of ours.
    d.write(
        "sb/etc-sysctl.d/90-watchdog.conf",
        "# kept\nnet.ipv4.ip_forward = 1\nkernel.sysrq=0\n",
    );
    // The plan's section 1, as printed for people, run as is.
    let text = run_in(
        &repo(),
        &["check", "--root", "tests/fixtures/neglected", "--plan"],
        None,
    )
    .stdout;
    let start = text
        .find("f=/etc/sysctl.d/90-watchdog.conf\n")
        .expect("plan section 1");
    let end = start + text[start..].find("sysctl -p \"$f\"\n").unwrap();
    let section = &text[start..end];
    let Some(run) = in_sysctl_sandbox(&sandbox, &format!("{section}\nsysctl --system")) else {
        eprintln!("skipped: no user+mount namespaces (unshare -rm) or no procps sysctl here");
        return;
    };
    assert_eq!(run.code, 0, "{}", run.dump());
    let file = std::fs::read_to_string(sandbox.join("etc-sysctl.d/90-watchdog.conf")).unwrap();
    for line in file
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (_, v) = line.split_once('=').unwrap();
        assert!(
            !v.contains('#'),
            "sysctl.d(5) has no trailing comments: {line}\n{file}"
        );
    }
    assert!(file.contains("net.ipv4.ip_forward = 1"), "{file}");
    assert_eq!(
        file.matches("kernel.sysrq").filter(|_| true).count(),
        2,
        "one comment, one line:\n{file}"
    );
    for (k, v) in &want {
        let got =
            std::fs::read_to_string(sandbox.join("proc-sys").join(k.replace('.', "/"))).unwrap();
        assert_eq!(
            got.trim_end_matches('\n'),
            v,
            "{k} after sysctl --system\n{file}\n{}",
            run.dump()
        );
    }
    let fwd = std::fs::read_to_string(sandbox.join("proc-sys/net/ipv4/ip_forward")).unwrap();
    assert_eq!(
        fwd.trim(),
        "1",
        "a key the plan does not own is still applied"
    );

    // Two per-finding fixes, one after the other, each run as printed.
    let doc = check_json("neglected", &[]).1;
    let fix_of = |id: &str| -> String {
        let f = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap();
        let fix = f["remediation"].as_str().unwrap();
        let start = fix.find("f=/etc/sysctl.d/").expect("a sysctl fix");
        let end = start + fix[start..].find("sysctl -p \"$f\"").unwrap() + "sysctl -p \"$f\"".len();
        fix[start..end].to_string()
    };
    let sb2 = d.join("sb2");
    for k in ["kernel/sysrq", "kernel/hung_task_timeout_secs", "MARKER"] {
        d.write(&format!("sb2/proc-sys/{k}"), "unset\n");
    }
    std::fs::create_dir_all(sb2.join("etc-sysctl.d")).unwrap();
    let script = format!(
        "{}\n{}\nsysctl --system",
        fix_of("sysrq-keyboard"),
        fix_of("hung-task-timeout")
    );
    let run = in_sysctl_sandbox(&sb2, &script).unwrap();
    assert_eq!(run.code, 0, "{}", run.dump());
    let file = std::fs::read_to_string(sb2.join("etc-sysctl.d/90-watchdog.conf")).unwrap();
    assert!(file.contains("\nkernel.sysrq = 1\n"), "{file}");
    assert!(
        file.contains("\nkernel.hung_task_timeout_secs = 60\n"),
        "{file}"
    );
    let read = |k: &str| std::fs::read_to_string(sb2.join("proc-sys").join(k)).unwrap();
    assert_eq!(read("kernel/sysrq").trim_end(), "1");
    assert_eq!(read("kernel/hung_task_timeout_secs").trim_end(), "60");
}

/// `watchdog report` over the JSON of every fixture tree: the roll-up in
/// text, JSON and CSV (read back with the csv crate's reader), exit code
/// the worst host's.
#[test]
fn report_rolls_up_every_fixture() {
    let d = Dir::new();
    let names = [
        "well-tuned",
        "rhel9-default",
        "neglected",
        "rhel6-old",
        "no-tracefs",
        "garbage",
        "kdump-broken",
    ];
    for name in names {
        let (r, _) = check_json(name, &[]);
        d.write(&format!("fleet/{name}.json"), &r.stdout);
    }
    d.write("fleet/notes.txt", "not a report, not *.json: ignored\n");
    let text = d.run(&["report", "fleet"]).expect_code(2);
    assert!(
        text.stdout.starts_with(
            "watchdog report: 7 hosts: CRITICAL: 3 critical, 2 warning, 1 unknown, 0 info, 1 ok"
        ),
        "{}",
        text.dump()
    );
    assert!(text.stdout.contains("kdump-initramfs"), "{}", text.stdout);
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("kdump-loaded "))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(1).take(5).collect();
    assert_eq!(
        nums,
        ["2", "0", "1", "0", "4"],
        "crit warn unkn info ok: {line}"
    );
    assert!(
        line.contains("legacy-app07") && line.contains("deb12-app"),
        "{line}"
    );

    let json = d
        .run(&["report", "--format", "json", "fleet"])
        .expect_code(2)
        .json();
    assert_eq!(json["hosts"], 7);
    assert_eq!(json["exit_code"], 2);
    let check = |id: &str| {
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(check("tainted")["counts"]["warning"], 2);
    assert_eq!(check("tainted")["worst_hosts"].as_array().unwrap().len(), 2);
    let first = &json["host_reports"][0];
    assert_eq!(first["status"], "critical");

    let csv_text = d
        .run(&["report", "--format", "csv", "fleet"])
        .expect_code(2)
        .stdout;
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    let head: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(&head[..4], ["host", "file", "status", "kernel"]);
    assert!(head.contains(&"kdump-target".to_string()));
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 7);
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let deb = rows
        .iter()
        .find(|r| &r[0] == "deb12-app")
        .expect("deb12-app row");
    assert_eq!(&deb[col("os_id")], "debian");
    assert_eq!(&deb[col("kdump-initramfs")], "critical");
    // The garbage host's name holds an escape and a NUL: still one field.
    assert!(rows.iter().all(|r| r.len() == head.len()));

    // Only healthy hosts: 0; a broken file and a healthy host: 3.
    d.write(
        "ok/a.json",
        std::fs::read_to_string(d.join("fleet/well-tuned.json")).unwrap(),
    );
    d.run(&["report", "ok"]).expect_code(0);
    d.write("ok/b.json", "{\"not\": \"a report\"}");
    let r = d.run(&["report", "ok"]).expect_code(3);
    assert!(r.stderr.contains("b.json"), "{}", r.dump());
    d.run(&["report"]).expect_code(3);
}

/// A value that moved to the recommended side is an improvement (INFO);
/// one that moved away keeps the configured drift status.
#[test]
fn drift_improvements_are_info_regressions_keep_their_status() {
    let d = Dir::new();
    copy_tree(&fixture("rhel9-default"), &d.join("h"));
    d.run(&["check", "--root", "h", "--save-baseline", "base.json"]);
    d.write("h/proc/sys/kernel/hung_task_warnings", "-1\n");
    d.write("h/proc/sys/kernel/printk", "8\t4\t1\t7\n");
    d.write("h/proc/sys/vm/vfs_cache_pressure", "500\n");
    let r = d.run(&[
        "check",
        "--root",
        "h",
        "--baseline",
        "base.json",
        "--format",
        "json",
    ]);
    let v = r.json();
    let drift: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "baseline-drift")
        .collect();
    let by_key = |k: &str| {
        drift
            .iter()
            .find(|f| f["values"]["value"] == k)
            .unwrap_or_else(|| panic!("{k}\n{}", r.stdout))
    };
    assert_eq!(
        by_key("kernel.hung_task_warnings")["status"],
        "info",
        "{}",
        r.stdout
    );
    assert_eq!(
        by_key("kernel.hung_task_warnings")["values"]["improved"],
        true
    );
    assert_eq!(by_key("vm.vfs_cache_pressure")["status"], "warning");
    // console-loglevel was OK before (no remote console) and still is: a
    // change, not an improvement.
    assert_eq!(by_key("kernel.printk")["status"], "warning");
}

/// The fleet fields: time (SOURCE_DATE_EPOCH when set), version, OS
/// release, kernel, boot id, uptime; also in the metrics.
#[test]
fn fleet_fields_in_json_and_metrics() {
    let d = Dir::new();
    fixture("well-tuned");
    let root = repo().join("tests/fixtures/well-tuned");
    let prom = d.join("check.prom");
    let r = run_env(
        d.path(),
        &[
            "check",
            "--root",
            root.to_str().unwrap(),
            "--format",
            "json",
            "--metrics",
            prom.to_str().unwrap(),
        ],
        None,
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    let v = r.json();
    assert_eq!(v["time"], "2023-11-14T22:13:20Z");
    assert_eq!(v["watchdog_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["os_release"]["ID"], "rhel");
    assert_eq!(v["os_release"]["VERSION_ID"], "9.4");
    assert_eq!(v["boot_id"], "3f1c2a9e-5b7d-4c61-9e2f-8a0b1c2d3e4f");
    assert!(v["uptime_secs"].as_u64().unwrap() > 0);
    let m = std::fs::read_to_string(prom).unwrap();
    assert!(m.contains("watchdog_check_time_seconds 1700000000"), "{m}");
    assert!(m.contains("os_id=\"rhel\",os_version_id=\"9.4\""), "{m}");
    assert!(
        m.contains(&format!(
            "watchdog_check_uptime_seconds {}",
            v["uptime_secs"]
        )),
        "{m}"
    );
    // Without the variable: now.
    let r = run_in(
        d.path(),
        &[
            "check",
            "--root",
            root.to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
    );
    let t = r.json()["time"].as_str().unwrap().to_string();
    assert!(
        t.starts_with("20") && t.ends_with('Z') && t != "2023-11-14T22:13:20Z",
        "{t}"
    );
}

/// hung-task-timeout judges the worst-case report time: timeout plus the
/// check interval (which defaults to the timeout), and the per-pass count.
#[test]
fn hung_task_worst_case_report_time() {
    let d = Dir::new();
    copy_tree(&fixture("rhel9-default"), &d.join("h"));
    let check = |d: &Dir| {
        let r = d.run(&[
            "check",
            "--root",
            "h",
            "--format",
            "json",
            "--only",
            "hung-task-timeout",
        ]);
        let v = r.json();
        v["findings"][0].clone()
    };
    d.write("h/proc/sys/kernel/hung_task_timeout_secs", "60\n");
    let f = check(&d);
    assert_eq!(f["status"], "ok", "60 + 60 fits 120: {f}");
    assert_eq!(f["values"]["worst_case_report_secs"], 120);
    d.write("h/proc/sys/kernel/hung_task_check_interval_secs", "90\n");
    let f = check(&d);
    assert_eq!(f["status"], "warning", "60 + 90 > 120: {f}");
    assert!(
        f["summary"].as_str().unwrap().contains("up to 150 s"),
        "{f}"
    );
    let plan = d
        .run(&[
            "check",
            "--root",
            "h",
            "--only",
            "hung-task-timeout",
            "--plan",
            "--format",
            "json",
        ])
        .json();
    let keys: Vec<(String, String)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "sysctl")
        .map(|s| {
            (
                s["key"].as_str().unwrap().into(),
                s["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (
                "kernel.hung_task_check_interval_secs".to_string(),
                "60".to_string()
            ),
            (
                "kernel.hung_task_timeout_secs".to_string(),
                "60".to_string()
            )
        ]
    );
    d.write("h/proc/sys/kernel/hung_task_check_interval_secs", "0\n");
    d.write("h/proc/sys/kernel/hung_task_check_count", "100\n");
    let f = check(&d);
    assert_eq!(f["status"], "warning", "301 threads, 100 checked: {f}");
    assert!(
        f["summary"].as_str().unwrap().contains("never checked"),
        "{f}"
    );
}

/// kdump-target's other paths on a copy of the well-tuned host: a
/// read-only dump file system, a dump that cannot fit, a collector that is
/// not makedumpfile; kdump-initramfs older than an edited kdump.conf.
#[test]
fn kdump_target_and_initramfs_paths() {
    let d = Dir::new();
    copy_tree(&fixture("well-tuned"), &d.join("h"));
    let finding = |d: &Dir, id: &str| {
        let r = d.run(&["check", "--root", "h", "--format", "json", "--only", id]);
        r.json()["findings"][0].clone()
    };
    assert_eq!(finding(&d, "kdump-target")["status"], "ok");
    // /var mounted read-only.
    let mounts = std::fs::read_to_string(d.join("h/proc/mounts")).unwrap();
    d.write(
        "h/proc/mounts",
        format!("{mounts}/dev/vdb /var xfs ro,relatime 0 0\n"),
    );
    let f = finding(&d, "kdump-target");
    assert_eq!(f["status"], "critical", "{f}");
    assert!(f["summary"].as_str().unwrap().contains("read-only"), "{f}");
    d.write("h/proc/mounts", &mounts);
    // 64 TiB of RAM, nothing excluded: no disk here has that much free.
    d.write(
        "h/proc/meminfo",
        "MemTotal: 68719476736 kB\nMemFree: 0 kB\n",
    );
    d.write(
        "h/etc/kdump.conf",
        "path /var/crash\ncore_collector makedumpfile -E -d 0\nfailure_action shell\n",
    );
    let f = finding(&d, "kdump-target");
    assert_eq!(f["status"], "warning", "{f}");
    let s = f["summary"].as_str().unwrap();
    assert!(
        s.contains("-d 0 keeps free or zero pages") && s.contains("less than the estimated 64.0T"),
        "{f}"
    );
    // cp is no collector for a dump.
    d.write(
        "h/etc/kdump.conf",
        "path /var/crash\ncore_collector cp --sparse=always\nfailure_action shell\n",
    );
    assert!(finding(&d, "kdump-target")["summary"]
        .as_str()
        .unwrap()
        .contains("not makedumpfile"));
    // kdump.conf edited after the initramfs was built.
    let f = finding(&d, "kdump-initramfs");
    assert_eq!(f["status"], "warning", "{f}");
    assert_eq!(f["values"]["newer_than_initramfs"][0], "/etc/kdump.conf");
    // The path is gone.
    std::fs::remove_dir_all(d.join("h/var/crash")).unwrap();
    let f = finding(&d, "kdump-target");
    assert_eq!(f["status"], "critical", "{f}");
    // kdump-tools turned off: not applicable.
    std::fs::remove_file(d.join("h/etc/kdump.conf")).unwrap();
    d.write("h/etc/default/kdump-tools", "USE_KDUMP=0\n");
    let f = finding(&d, "kdump-target");
    assert_eq!(f["status"], "ok", "{f}");
    assert!(
        f["summary"].as_str().unwrap().contains("USE_KDUMP=0"),
        "{f}"
    );
}
