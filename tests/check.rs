//! `watchdog check` through the real binary, against the fixture host
//! trees in tests/fixtures (each has a FIXTURE.md saying what it shows).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{copy_tree, fixture, repo, run_in, Dir, Run};

/// Every check ID of DESIGN.md, in report order.
const IDS: [&str; 21] = [
    "kdump-reserved",
    "kdump-loaded",
    "kdump-size",
    "sysrq-trigger",
    "sysrq-keyboard",
    "cmdline-quiet",
    "log-buf-size",
    "printk-time",
    "remote-console",
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
];

/// Runs `check --format json` on a fixture from the repository root, so
/// that paths in findings are the stable `tests/fixtures/...`.
fn check_json(name: &str, extra: &[&str]) -> (Run, Value) {
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
            ("hung-task-warnings", "warning"),
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
            ("sysrq-keyboard", "warning"),
            ("hung-task-warnings", "warning"),
            ("ftrace-snapshot", "warning"),
            ("log-buf-size", "unknown"),
            ("panic-settings", "info"),
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
            // RHEL 8: PSI built in, off until psi=1.
            ("psi", "info"),
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
    // DESIGN.md: missing sysrq-trigger and hung_task_timeout_secs are
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
    ] {
        let root = format!("tests/fixtures/{name}");
        for (ext, extra) in [
            ("txt", &["--color", "never"][..]),
            ("json", &["--format", "json"][..]),
        ] {
            let mut args = vec!["check", "--root", root.as_str()];
            args.extend_from_slice(extra);
            let r = run_in(&repo(), &args, None);
            let path = dir.join(format!("check-{name}.{ext}"));
            if update {
                std::fs::write(&path, &r.stdout).unwrap();
            } else {
                let want = std::fs::read_to_string(&path).unwrap_or_default();
                if want != r.stdout {
                    failures.push(format!(
                        "{} differs:\n--- want\n{want}\n--- got\n{}",
                        path.display(),
                        r.stdout
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
    assert_eq!(lines.len(), 21);
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
