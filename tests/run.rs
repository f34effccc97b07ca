//! `watchdog run` through the real binary against a fixture root: a FIFO
//! stands in for /dev/kmsg and another for the tracefs instance's
//! trace_pipe; proc/sysrq-trigger is a plain file that records what was
//! written to it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{bin, copy_tree, fixture, Dir};

const BOOT_ID: &str = "6a0e4a9e-9d0c-4c2e-8a43-3f1b2c3d4e5f";
/// Every wait in these tests is bounded by this.
const PATIENCE: Duration = Duration::from_secs(15);

struct Guard {
    dir: Dir,
    child: Option<Child>,
}

impl Guard {
    /// A host tree from the well-tuned fixture, with a FIFO for dev/kmsg,
    /// a boot id, and a config pointing every output into the temp dir.
    fn new(extra_config: &str) -> Guard {
        Guard::with_root("well-tuned", extra_config)
    }

    /// The same on another fixture tree.
    fn with_root(root: &str, extra_config: &str) -> Guard {
        let dir = Dir::new();
        copy_tree(&fixture(root), &dir.join("root"));
        if !dir.join("root/proc/sysrq-trigger").exists() {
            dir.write("root/proc/sysrq-trigger", "");
        }
        dir.write(
            "root/proc/sys/kernel/random/boot_id",
            format!("{BOOT_ID}\n"),
        );
        std::fs::create_dir_all(dir.join("root/dev")).unwrap();
        mkfifo(&dir.join("root/dev/kmsg"));
        let base = dir.path().display();
        dir.write(
            "config.yaml",
            format!(
                "run:\n  event_log: {base}/events.jsonl\n  state_file: {base}/state/kmsg.state\n  evidence_dir: {base}/evidence\n  kmsg_start: replay\n  kdump_check: {{at_start: false, interval_hours: 24}}\n{extra_config}"
            ),
        );
        Guard { dir, child: None }
    }

    fn start(&mut self, extra_args: &[&str]) {
        let mut args = vec!["run", "--root", "root", "--config", "config.yaml"];
        args.extend_from_slice(extra_args);
        let child = Command::new(bin())
            .args(&args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready when it has said where events go.
        self.wait_for("stderr", |_| self.stderr().contains("events go to"));
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    fn events(&self) -> Vec<Value> {
        use std::os::unix::fs::FileTypeExt;
        let path = self.dir.join("events.jsonl");
        // A test's FIFO event log is read by the test itself: opening it
        // here would wait for a writer.
        if std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_fifo()) {
            return Vec::new();
        }
        crate::util::json_lines_so_far(&path)
    }

    fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }

    fn sysrq(&self) -> String {
        std::fs::read_to_string(self.dir.join("root/proc/sysrq-trigger")).unwrap()
    }

    fn wait_for(&self, what: &str, cond: impl Fn(&Guard) -> bool) {
        let until = Instant::now() + PATIENCE;
        while Instant::now() < until {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "timed out waiting for {what}\n--- stderr:\n{}\n--- events:\n{:#?}",
            self.stderr(),
            self.events()
        );
    }

    /// Writes kmsg records (one FIFO open per call, like a burst).
    fn kmsg(&self, records: &[(u64, &str)]) {
        let mut text = String::new();
        for (seq, msg) in records {
            text.push_str(&format!("3,{seq},{},-;{msg}\n", seq * 10_000));
        }
        write_fifo(&self.dir.join("root/dev/kmsg"), text.as_bytes());
    }

    /// SIGTERM and wait; returns the exit code.
    fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let until = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < until,
                "did not stop on SIGTERM\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), sig)
            .unwrap();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

fn write_fifo(p: &PathBuf, data: &[u8]) {
    // Opening for write blocks until the daemon has the read end open,
    // which it always has; bounded anyway by the test harness timeout.
    let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all(data).unwrap();
}

const HUNG: &str = "INFO: task fsfreeze writer:412 blocked for more than 2 seconds.";

#[test]
fn hung_task_fires_sysrq_t_and_logs_actions() {
    let mut g = Guard::new("");
    g.start(&[]);
    g.kmsg(&[
        (10, HUNG),
        (11, "      Not tainted 6.1.0-26-amd64 #1 Debian 6.1.112-1"),
        (
            12,
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
        ),
        (
            13,
            "task:fsfreeze writer state:D stack:0     pid:412   ppid:1      flags:0x00004002",
        ),
    ]);
    g.wait_for("sysrq t", |g| g.sysrq() == "t");
    g.wait_for("two actions", |g| {
        g.kinds().iter().filter(|k| *k == "action").count() == 2
    });
    let ev = g.events();
    let hung = ev.iter().find(|e| e["kind"] == "hung_task").unwrap();
    assert_eq!(hung["comm"], "fsfreeze writer");
    assert_eq!(hung["pid"], 412);
    assert_eq!(hung["blocked_secs"], 2);
    assert_eq!(hung["source"], "kmsg");
    assert_eq!(hung["host"], "db01.example.com");
    assert!(hung["time"].as_str().unwrap().len() > 19);
    let actions: Vec<(&str, bool)> = ev
        .iter()
        .filter(|e| e["kind"] == "action")
        .map(|e| (e["action"].as_str().unwrap(), e["ok"].as_bool().unwrap()))
        .collect();
    // No flight recorder in this tree: the snapshot fails, and says so.
    assert_eq!(actions, [("sysrq t", true), ("ftrace_snapshot", false)]);
    assert!(
        g.stderr()
            .contains("<4>hung task: fsfreeze writer (pid 412) blocked for more than 2 s"),
        "{}",
        g.stderr()
    );
    assert_eq!(g.stop(), 0);
}

#[test]
fn cooldown_holds_and_windows_count() {
    let mut g = Guard::new(
        "  rules:\n    - {name: dump, kind: hung_task, cooldown_secs: 3600, actions: [{sysrq: t}]}\n    - {name: burst, kind: oom_kill, count: 2, window_secs: 60, actions: [{sysrq: m}]}\n",
    );
    g.start(&[]);
    g.kmsg(&[(1, HUNG), (2, "Out of memory: Killed process 900 (hog) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0")]);
    g.wait_for("first dump", |g| g.sysrq() == "t");
    g.kmsg(&[(3, "INFO: task other:77 blocked for more than 2 seconds."), (4, "Out of memory: Killed process 901 (hog) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0")]);
    g.wait_for("second oom fires the count-2 rule", |g| g.sysrq() == "tm");
    g.wait_for("both hung tasks logged", |g| {
        g.kinds().iter().filter(|k| *k == "hung_task").count() == 2
    });
    assert_eq!(g.stop(), 0);
    assert_eq!(
        g.sysrq(),
        "tm",
        "the second hung task is inside the cooldown"
    );
}

#[test]
fn restart_resumes_after_the_saved_sequence() {
    let mut g = Guard::new("");
    g.start(&[]);
    g.kmsg(&[(1, "hello"), (2, HUNG)]);
    g.wait_for("first hung task", |g| {
        g.kinds().contains(&"hung_task".to_string())
    });
    assert_eq!(g.stop(), 0);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(g.dir.join("state/kmsg.state")).unwrap())
            .unwrap();
    assert_eq!(state["boot_id"], BOOT_ID);
    assert_eq!(state["seq"], 2);

    // The kernel replays its buffer to a new reader: 1 and 2 again, then
    // a gap (3..5 were overwritten), then 6.
    g.start(&[]);
    g.kmsg(&[
        (1, "hello"),
        (2, HUNG),
        (6, "INFO: task late:9 blocked for more than 2 seconds."),
    ]);
    g.wait_for("second hung task", |g| {
        g.kinds().iter().filter(|k| *k == "hung_task").count() == 2
    });
    assert_eq!(g.stop(), 0);
    let ev = g.events();
    let hung: Vec<&str> = ev
        .iter()
        .filter(|e| e["kind"] == "hung_task")
        .map(|e| e["comm"].as_str().unwrap())
        .collect();
    assert_eq!(hung, ["fsfreeze writer", "late"], "nothing handled twice");
    let lost: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "lost").collect();
    assert_eq!(lost.len(), 1, "{ev:#?}");
    assert_eq!(lost[0]["count"], 3);
}

#[test]
fn a_reboot_reads_the_new_buffer_from_its_start() {
    let mut g = Guard::new("");
    g.dir.write(
        "state/kmsg.state",
        r#"{"boot_id":"another-boot","seq":500}"#,
    );
    g.start(&[]);
    g.kmsg(&[(1, HUNG)]);
    g.wait_for("hung task of the new boot", |g| {
        g.kinds().contains(&"hung_task".to_string())
    });
    assert_eq!(g.stop(), 0);
    assert!(!g.kinds().contains(&"lost".to_string()));
}

#[test]
fn sequence_gap_after_overrun_is_lost() {
    let mut g = Guard::new("");
    g.start(&[]);
    g.kmsg(&[(100, "a"), (101, "b"), (250, "c")]);
    g.wait_for("lost", |g| g.kinds().contains(&"lost".to_string()));
    let lost = g
        .events()
        .into_iter()
        .find(|e| e["kind"] == "lost")
        .unwrap();
    assert_eq!(lost["count"], 148);
    assert!(
        g.stderr().contains("148 kernel messages lost"),
        "{}",
        g.stderr()
    );
    assert_eq!(g.stop(), 0);
}

#[test]
fn dry_run_decides_but_does_nothing() {
    let mut g = Guard::new("");
    g.start(&["--dry-run"]);
    g.kmsg(&[(1, HUNG)]);
    g.wait_for("actions", |g| {
        g.kinds().iter().filter(|k| *k == "action").count() == 2
    });
    assert_eq!(g.stop(), 0);
    assert_eq!(g.sysrq(), "", "nothing written to sysrq-trigger");
    for a in g.events().iter().filter(|e| e["kind"] == "action") {
        assert_eq!(a["dry_run"], true);
        assert!(
            a["detail"].as_str().unwrap().starts_with("dry run: would"),
            "{a}"
        );
    }
}

#[test]
fn exec_action_gets_the_event() {
    let mut g = Guard::new("");
    let out = g.dir.join("exec-out.json");
    let yaml = format!(
        "  rules:\n    - name: page\n      kind: oom_kill\n      actions: [{{exec: {{command: [sh, -c, 'printf %s \"$WATCHDOG_EVENT\" > {}'], timeout_secs: 10}}}}]\n",
        out.display()
    );
    let cfg = std::fs::read_to_string(g.dir.join("config.yaml")).unwrap() + &yaml;
    g.dir.write("config.yaml", cfg);
    g.start(&[]);
    g.kmsg(&[(1, "Memory cgroup out of memory: Killed process 4242 (worker) total-vm:2000kB, anon-rss:1500kB, file-rss:10kB, shmem-rss:0kB, UID:1000 pgtables:44kB oom_score_adj:0")]);
    g.wait_for("exec action", |g| {
        g.events().iter().any(|e| e["action"] == "exec sh")
    });
    assert_eq!(g.stop(), 0);
    let ev: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(ev["kind"], "oom_kill");
    assert_eq!(ev["pid"], 4242);
    assert_eq!(ev["memcg"], true);
    let action = g
        .events()
        .into_iter()
        .find(|e| e["action"] == "exec sh")
        .unwrap();
    assert_eq!(action["ok"], true, "{action}");
}

#[test]
fn sighup_reloads_and_keeps_the_old_config_on_error() {
    let mut g = Guard::new("");
    g.start(&[]);
    let base = std::fs::read_to_string(g.dir.join("config.yaml")).unwrap();
    // A broken file: the running configuration stays.
    g.dir.write(
        "config.yaml",
        format!("{base}  rules: [{{name: x, kind: nope, actions: [log]}}]\n"),
    );
    g.signal(nix::sys::signal::Signal::SIGHUP);
    g.wait_for("refusal", |g| {
        g.stderr().contains("keeping the running configuration")
    });
    g.kmsg(&[(1, HUNG)]);
    g.wait_for("old rule still fires", |g| g.sysrq() == "t");
    // A good file: new rules from now on.
    g.dir.write(
        "config.yaml",
        format!("{base}  rules: [{{name: w, kind: hung_task, actions: [{{sysrq: w}}]}}]\n"),
    );
    g.signal(nix::sys::signal::Signal::SIGHUP);
    g.wait_for("reload", |g| g.stderr().contains("reloaded (1 rules)"));
    g.kmsg(&[(2, "INFO: task b:5 blocked for more than 2 seconds.")]);
    g.wait_for("new rule fires", |g| g.sysrq() == "tw");
    assert_eq!(g.stop(), 0);
}

/// Issue 18, defect 10: "SIGHUP resets rule cooldowns". A rule whose
/// compiled form is unchanged keeps its cooldown across a reload; a
/// changed one starts fresh.
#[test]
fn issue18_10_sighup_resets_rule_cooldowns() {
    let mut g = Guard::new(
        "  rules:\n    - {name: dump, kind: hung_task, cooldown_secs: 300, actions: [{sysrq: t}]}\n",
    );
    g.start(&[]);
    g.kmsg(&[(1, HUNG)]);
    g.wait_for("first dump", |g| g.sysrq() == "t");
    g.signal(nix::sys::signal::Signal::SIGHUP);
    g.wait_for("reload", |g| {
        g.stderr().contains("1 unchanged rules keep their windows")
    });
    g.kmsg(&[(2, "INFO: task b:5 blocked for more than 2 seconds.")]);
    g.wait_for("second hung task", |g| {
        g.kinds().iter().filter(|k| *k == "hung_task").count() == 2
    });
    // A longer cooldown is another rule: it starts with no cooldown.
    let cfg = std::fs::read_to_string(g.dir.join("config.yaml")).unwrap();
    g.dir.write(
        "config.yaml",
        cfg.replace("cooldown_secs: 300", "cooldown_secs: 600"),
    );
    g.signal(nix::sys::signal::Signal::SIGHUP);
    g.wait_for("second reload", |g| {
        g.stderr().contains("0 unchanged rules keep their windows")
    });
    g.kmsg(&[(3, "INFO: task c:6 blocked for more than 2 seconds.")]);
    g.wait_for("the changed rule fires", |g| {
        g.sysrq().len() >= 2 && g.kinds().iter().filter(|k| *k == "hung_task").count() == 3
    });
    // The loop logs an event, then decides on it; stopping lets it finish.
    assert_eq!(g.stop(), 0);
    assert_eq!(
        g.sysrq(),
        "tt",
        "one dump before the reloads and one by the changed rule"
    );
}

#[test]
fn rules_are_checked_against_the_event_schema_at_load() {
    let d = Dir::new();
    d.write(
        "bad.yaml",
        "run:\n  rules:\n    - {name: a, kind: action, actions: [log]}\n    - {name: b, kind: hung_task, where: {pidd: 5, comm: 7}, actions: [log]}\n    - {name: c, kind: oom_kill, where: {uid: {contains: '0'}}, actions: [log]}\n",
    );
    for args in [
        &["run", "--config", "bad.yaml"][..],
        &["config", "check", "bad.yaml"][..],
    ] {
        let r = d.run(args).expect_code(3);
        for needle in [
            "run.rules[0].kind: action events never reach the rules",
            "run.rules[1].where.pidd: hung_task has no field \"pidd\" (fields: comm, pid,",
            "run.rules[1].where.comm: comm is a string, found 7",
            "run.rules[2].where.uid: contains looks for text; uid is an integer",
        ] {
            assert!(r.stderr.contains(needle), "{needle}\n{}", r.dump());
        }
    }
}

#[test]
fn signal_deaths_from_a_fake_trace_pipe() {
    let mut g = Guard::new("");
    let t = "root/sys/kernel/tracing";
    let inst = format!("{t}/instances/watchdog");
    for ev in [
        "watchdog/do_exit",
        "signal/signal_generate",
        "oom/mark_victim",
        "vmscan/mm_shrink_slab_start",
    ] {
        g.dir.write(&format!("{inst}/events/{ev}/enable"), "0");
        g.dir.write(&format!("{inst}/events/{ev}/filter"), "none");
    }
    g.dir.write(&format!("{inst}/events/enable"), "0");
    mkfifo(&g.dir.join(&format!("{inst}/trace_pipe")));
    g.start(&[]);
    let pipe = g.dir.join(&format!("{inst}/trace_pipe"));
    write_fifo(
        &pipe,
        b"            kill-300     (    300) [001] d..1.  10.000000: signal_generate: sig=9 errno=0 code=0 comm=sleep pid=200 grp=1 res=0\n           sleep-200     (    200) [000] d..1.  10.100000: do_exit: (do_exit+0x0/0xa90) code=9\n",
    );
    g.wait_for("signal death", |g| {
        g.kinds().contains(&"signal_death".to_string())
    });
    assert_eq!(g.stop(), 0);
    let d = g
        .events()
        .into_iter()
        .find(|e| e["kind"] == "signal_death")
        .unwrap();
    assert_eq!(
        (
            d["pid"].as_u64(),
            d["signal"].as_u64(),
            d["signal_name"].as_str()
        ),
        (Some(200), Some(9), Some("SIGKILL"))
    );
    assert_eq!(
        (d["sender_pid"].as_u64(), d["sender_comm"].as_str()),
        (Some(300), Some("kill"))
    );
    assert_eq!(d["source"], "tracefs");
    // The kprobe was defined with the do_exit filter, and removed on exit.
    let kprobes = std::fs::read_to_string(g.dir.join(&format!("{t}/kprobe_events"))).unwrap();
    assert!(
        kprobes.contains("p:watchdog/do_exit do_exit code=$arg1:s32"),
        "{kprobes}"
    );
    assert!(
        kprobes.trim_end().ends_with("-:watchdog/do_exit"),
        "{kprobes}"
    );
    let filter = std::fs::read_to_string(
        g.dir
            .join(&format!("{inst}/events/watchdog/do_exit/filter")),
    )
    .unwrap();
    assert_eq!(filter, "code & 127");
    assert_eq!(
        std::fs::read_to_string(g.dir.join(&format!("{inst}/events/enable"))).unwrap(),
        "0"
    );
}

#[test]
fn metrics_file_counts_events_and_actions() {
    let mut g = Guard::new("");
    let prom = g.dir.join("metrics/watchdog.prom");
    let cfg = std::fs::read_to_string(g.dir.join("config.yaml")).unwrap()
        + &format!(
            "  metrics_file: {}\n  metrics_interval_secs: 1\n",
            prom.display()
        );
    g.dir.write("config.yaml", cfg);
    g.start(&[]);
    g.kmsg(&[(1, HUNG), (5, "later")]);
    // The hung task's two, and the default `lost-messages` rule's log.
    g.wait_for("actions", |g| {
        g.kinds().iter().filter(|k| *k == "action").count() == 3
    });
    // A second hung task inside the rule's cooldown: matched, swallowed.
    g.kmsg(&[(6, "INFO: task other:77 blocked for more than 2 seconds.")]);
    g.wait_for("the second hung task", |g| {
        g.kinds().iter().filter(|k| *k == "hung_task").count() == 2
    });
    assert_eq!(g.stop(), 0);
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = crate::metrics::parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        m["watchdog_events_total{kind=\"hung_task\"}"], 2.0,
        "{text}"
    );
    assert_eq!(m["watchdog_events_total{kind=\"lost\"}"], 1.0);
    assert_eq!(m["watchdog_kmsg_lost_total"], 3.0);
    assert_eq!(m["watchdog_records_lost_total{record=\"event\"}"], 0.0);
    assert_eq!(
        m["watchdog_rule_suppressed_total{rule=\"hung-task-evidence\"}"],
        1.0
    );
    assert_eq!(
        m["watchdog_actions_total{rule=\"hung-task-evidence\",action=\"sysrq t\",result=\"ok\"}"],
        1.0
    );
    assert_eq!(
        m["watchdog_actions_total{rule=\"hung-task-evidence\",action=\"ftrace_snapshot\",result=\"failed\"}"],
        1.0
    );
    assert_eq!(
        m["watchdog_actions_total{rule=\"lost-messages\",action=\"log\",result=\"ok\"}"],
        1.0
    );
}

#[test]
fn bad_config_exits_unknown_with_every_error() {
    let d = Dir::new();
    d.write(
        "bad.yaml",
        "run:\n  rules:\n    - {name: a, kind: hung_task, actions: [{sysrq: c}]}\n    - {name: b, kind: oom, actions: [reboot]}\n",
    );
    let r = d.run(&["run", "--config", "bad.yaml"]).expect_code(3);
    for needle in [
        "run.rules[0].actions[0].sysrq",
        "allow_destructive",
        "run.rules[1].kind",
        "run.rules[1].actions[0]",
    ] {
        assert!(r.stderr.contains(needle), "{needle}\n{}", r.dump());
    }
    let ok = d.run(&["run", "--check-config"]).expect_code(0);
    assert!(
        ok.stdout.contains("embedded configuration: OK (14 rules)"),
        "{}",
        ok.dump()
    );
}

/// The event log is a FIFO that nobody reads: every write to it blocks,
/// like a frozen or hung file system. SysRq must not wait for it, the
/// daemon must keep reading kmsg, and once a reader appears the queued
/// records arrive and a `lost` event counts the rest.
#[test]
fn an_event_log_that_blocks_never_delays_sysrq() {
    let mut g = Guard::new(
        "  record_queue: 16\n  rules:\n    - {name: dump, kind: hung_task, cooldown_secs: 3600, actions: [{sysrq: t}]}\n",
    );
    let fifo = g.dir.join("events.jsonl");
    mkfifo(&fifo);
    g.start(&[]);
    let sent = Instant::now();
    g.kmsg(&[(1, HUNG)]);
    g.wait_for("sysrq t while the event log blocks", |g| g.sysrq() == "t");
    eprintln!(
        "SysRq t written {} ms after the record, event log blocked",
        sent.elapsed().as_millis()
    );
    // 100 more hung tasks: far more than the queue holds. The daemon keeps
    // reading (the FIFO for kmsg would block this writer otherwise).
    let more: Vec<(u64, String)> = (2..=101)
        .map(|i| {
            (
                i,
                format!("INFO: task t{i}:{i} blocked for more than 2 seconds."),
            )
        })
        .collect();
    let refs: Vec<(u64, &str)> = more.iter().map(|(s, m)| (*s, m.as_str())).collect();
    for chunk in refs.chunks(10) {
        g.kmsg(chunk);
        // Handled (the journal lane has the last summary), while the
        // event log still blocks: far more than its queue holds.
        let last = format!("hung task: t{0} (pid {0})", chunk[chunk.len() - 1].0);
        g.wait_for(&last, |g| g.stderr().contains(&last));
    }
    // A reader appears: it hands each line over as it comes.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let f = std::fs::File::open(fifo).unwrap();
        for line in std::io::BufReader::new(f).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // 101 hung tasks and one action, each recorded or counted as lost
    // (the daemon retries the lost report every second).
    let (mut seen, mut lost, mut text) = (0u64, 0u64, String::new());
    let until = Instant::now() + PATIENCE;
    while seen + lost < 102 {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(l) = rx.recv_timeout(left) else {
            panic!("timed out: {seen} recorded, {lost} lost\n{text}");
        };
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
        match v["kind"].as_str() {
            Some("lost") => {
                lost += v["count"].as_u64().unwrap();
                assert!(
                    v["reason"].as_str().unwrap().contains("queue was full"),
                    "{l}"
                );
            }
            Some("hung_task" | "action") => seen += 1,
            // Written once at start, before the burst (docs/last-boot.md).
            Some("previous_boot") => continue,
            other => panic!("unexpected {other:?} in {l}"),
        }
        text.push_str(&l);
        text.push('\n');
    }
    assert_eq!(g.stop(), 0);
    assert!(
        lost > 0,
        "the queue of 16 cannot have held 102 records:\n{text}"
    );
    assert_eq!(seen + lost, 102, "{text}");
    assert_eq!(g.sysrq(), "t", "one dump: the rest is in the cooldown");
    // The journal lane is not the disk's: the last summary reached stderr.
    assert!(
        g.stderr().contains("hung task: t101 (pid 101)"),
        "{}",
        g.stderr()
    );
    assert!(
        g.stderr().contains(&format!(
            "; {lost} events could not be queued for the event log"
        )),
        "the stop summary counts them: {}",
        g.stderr()
    );
}

/// Every kmsg record of the real Debian 6.1 hung-task recording, with the
/// index of the first record of the SysRq-T answer.
fn real_hung_task_records() -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(
        crate::util::repo().join("tests/fixtures/kernel-logs/real/debian-6.1-hung-task.kmsg"),
    )
    .unwrap();
    let recs: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    let dump = recs
        .iter()
        .position(|l| l.ends_with(";sysrq: Show State"))
        .unwrap();
    (recs, dump)
}

/// A hung-task report and the kernel's SysRq-T answer on the fake kmsg
/// make one incident bundle: kmsg.txt holds both, proc/ the files the
/// root offers, the manifest what it could not read; `incidents
/// list/show/pack` work on it.
#[test]
fn a_hung_task_leaves_one_bundle_with_the_report_and_the_dump() {
    let mut g = Guard::with_root(
        "incident-hung",
        "  incidents:\n    sysrq_readback_quiet_ms: 300\n  rules:\n    - {name: dump, kind: hung_task, actions: [{sysrq: t}]}\n",
    );
    g.start(&[]);
    let (recs, dump) = real_hung_task_records();
    let fifo = g.dir.join("root/dev/kmsg");
    let mut before = recs[..dump].join("\n");
    before.push('\n');
    write_fifo(&fifo, before.as_bytes());
    g.wait_for("sysrq t", |g| g.sysrq() == "t");
    let mut answer = recs[dump..].join("\n");
    answer.push('\n');
    write_fifo(&fifo, answer.as_bytes());
    let incidents = g.dir.join("evidence/incidents");
    g.wait_for("the bundle to close", |g| {
        bundles(&g.dir.join("evidence/incidents"))
            .iter()
            .find(|b| b.to_string_lossy().contains("-hung_task-"))
            .is_some_and(|b| manifest(b)["closed"].is_string())
    });
    assert_eq!(g.stop(), 0);
    // (A fixture root has no record of its previous boot: that one has a
    // bundle of its own, `previous_boot`.)
    let all: Vec<PathBuf> = bundles(&incidents)
        .into_iter()
        .filter(|b| b.to_string_lossy().contains("-hung_task-"))
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    let b = &all[0];
    let m = manifest(b);
    let id = m["id"].as_str().unwrap();

    // The event log and the bundle agree on the incident.
    let ev = g.events();
    let hung = ev.iter().find(|e| e["kind"] == "hung_task").unwrap();
    assert_eq!(hung["incident"], id);
    assert_eq!(hung["comm"], "wd-writer");
    let act = ev.iter().find(|e| e["kind"] == "action").unwrap();
    assert_eq!(
        (act["action"].as_str(), act["incident"].as_str()),
        (Some("sysrq t"), Some(id))
    );
    assert_eq!(m["events"][0]["incident"], id);
    assert_eq!(m["actions"][0]["action"], "sysrq t");

    // kmsg.txt: the report from the look-back, then the answer.
    let kmsg = std::fs::read_to_string(b.join("kmsg.txt")).unwrap();
    let at = |pat: &str| {
        kmsg.find(pat)
            .unwrap_or_else(|| panic!("{pat:?} not in kmsg.txt"))
    };
    assert!(
        at("INFO: task wd-writer:110 blocked for more than 2 seconds.") < at("sysrq: Show State")
    );
    assert!(at("sysrq: Show State") < at("sysrq: Show Blocked State"));
    assert!(
        kmsg.contains("task:wd-writer"),
        "the dump's task lines are there"
    );

    // proc/: what the fixture root offers, and what it lacks, said.
    assert!(b.join("proc/meminfo").is_file());
    assert!(b.join("proc/pressure/memory").is_file());
    let missing = m["not_collected"].to_string();
    assert!(missing.contains("slabinfo"), "{missing}");
    let blocked = m["blocked_tasks"].to_string();
    assert!(blocked.contains("wd-writer"), "{blocked}");

    // The subcommand sees it, and packs it.
    let cfg = g.dir.join("config.yaml");
    let cfg = cfg.to_str().unwrap();
    let list = g
        .dir
        .run(&["--config", cfg, "incidents", "list"])
        .expect_code(0);
    assert!(list.stdout.contains(&id[..8]), "{}", list.dump());
    let show = g
        .dir
        .run(&["--config", cfg, "incidents", "show", &id[..6]])
        .expect_code(0);
    assert!(show.stdout.contains("wd-writer"), "{}", show.dump());
    let out = g.dir.join("bundle.tar.gz");
    g.dir
        .run(&[
            "--config",
            cfg,
            "incidents",
            "pack",
            id,
            "--output",
            out.to_str().unwrap(),
        ])
        .expect_code(0);
    let x = g.dir.join("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .args(["xzf", out.to_str().unwrap(), "-C", x.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let name = b.file_name().unwrap();
    for f in m["files"].as_array().unwrap() {
        let p = x.join(name).join(f["name"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&p).map(|m| m.len()).ok(),
            f["bytes"].as_u64(),
            "{}",
            p.display()
        );
    }
}

fn bundles(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap_or_default())
        .unwrap_or(Value::Null)
}

/// The kinds of issue 15 through `watchdog run` (fixture root, the kmsg
/// FIFO): each fixture's messages as /dev/kmsg records give the events
/// `scan` gives for the file.
#[test]
fn new_kinds_reach_the_event_log() {
    let mut g = Guard::new("");
    g.start(&[]);
    let mut seq = 0;
    let mut want = Vec::new();
    for name in [
        "warning-3.10-rhel7-and-5.14-rhel9.log",
        "hard-lockup-3.10-warn-4.x-and-6.x.log",
        "fs-error-ext4-xfs-btrfs-3.10-to-6.x.log",
        "io-error-storm-3.10-4.18-and-6.x.log",
        "netdev-timeout-3.10-and-6.6.log",
        "mce-edac-3.10-and-5.x.log",
    ] {
        // With the fixture's own kernel times: bursts are told apart by them.
        let mut text = String::new();
        for (usec, msg) in crate::scan::messages(name) {
            seq += 1;
            text.push_str(&format!("4,{seq},{usec},-;{msg}\n"));
        }
        write_fifo(&g.dir.join("root/dev/kmsg"), text.as_bytes());
        let text = std::fs::read_to_string(fixture("kernel-logs").join(name)).unwrap();
        for l in text.lines().filter_map(|l| l.strip_prefix("#> ")) {
            let v: Value = serde_json::from_str(l).unwrap();
            want.push(v["kind"].as_str().unwrap().to_string());
        }
    }
    let n = want.len();
    // (A fixture root also reports how its previous boot ended.)
    let reported = |k: &String| k != "action" && k != "previous_boot";
    g.wait_for("every event", |g| {
        g.kinds().iter().filter(|k| reported(k)).count() >= n
    });
    let got: Vec<String> = g.kinds().into_iter().filter(|k| reported(k)).collect();
    let mut sorted_got = got.clone();
    sorted_got.sort();
    want.sort();
    assert_eq!(sorted_got, want, "{}", g.stderr());
    let ev = g.events();
    let io: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "io_error").collect();
    assert_eq!(io[0]["count"], 5, "a storm is one event with a count");
    let w = ev.iter().find(|e| e["kind"] == "warning").unwrap();
    assert_eq!(w["source"], "kmsg");
    assert_eq!(w["comm"], "kswapd0");
    assert_eq!(w["frames"][0], "xfs_vm_releasepage+0xcb/0x100 [xfs]");
}

/// Issue 15 acceptance: two site patterns, a rule on one of them that
/// names a capture; only the matching message of that pattern fires it.
#[test]
fn site_patterns_are_events_and_rules_see_their_captures() {
    let mut g = Guard::new(
        r#"  rules:
    - name: mpath-evidence
      kind: pattern
      where: {pattern: mpath-fail, path: {contains: "8:"}}
      actions: [{sysrq: w}]
patterns:
  - name: mpath-fail
    regex: 'multipath: (?:\d+:\d+: )?Failing path (?P<path>\S+)\.'
    max_level: 4
  - name: nic-link-down
    regex: '^(?P<driver>\S+) \S+ (?P<iface>\S+): NIC Link is Down'
"#,
    );
    g.start(&[]);
    g.kmsg(&[
        (1, "i40e 0000:3b:00.0 ens1f0: NIC Link is Down"),
        (2, "device-mapper: multipath: 253:3: Failing path 65:32."),
        (3, "device-mapper: multipath: 253:3: Failing path 8:32."),
    ]);
    g.wait_for("sysrq w", |g| g.sysrq() == "w");
    g.wait_for("three patterns", |g| {
        g.kinds().iter().filter(|k| *k == "pattern").count() == 3
    });
    let ev = g.events();
    let pats: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "pattern").collect();
    assert_eq!(pats[0]["pattern"], "nic-link-down");
    assert_eq!(pats[0]["driver"], "i40e");
    assert_eq!(pats[0]["iface"], "ens1f0");
    assert_eq!(pats[1]["pattern"], "mpath-fail");
    assert_eq!(pats[1]["path"], "65:32");
    assert_eq!(pats[2]["path"], "8:32");
    let actions: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "action").collect();
    assert_eq!(actions.len(), 1, "only the 8: path fires: {actions:?}");
    assert_eq!(actions[0]["rule"], "mpath-evidence");
}

#[test]
fn a_rule_naming_an_unknown_capture_or_pattern_is_a_config_error() {
    let dir = Dir::new();
    dir.write(
        "c.yaml",
        "run:\n  rules:\n    - {name: a, kind: pattern, where: {pattern: mpath-fail, port: x}, actions: [log]}\n    - {name: b, kind: pattern, where: {pattern: nope}, actions: [log]}\n    - {name: c, kind: pattern, where: {path: x}, actions: [log]}\npatterns:\n  - {name: mpath-fail, regex: 'Failing path (?P<path>\\S+)'}\n  - {name: bad, regex: '(?P<x'}\n",
    );
    let r = dir.run(&["config", "check", "c.yaml"]).expect_code(3);
    for want in [
        "patterns[1].regex:",
        "run.rules[0].where.port: the pattern has no capture \"port\" (captures: path;",
        "run.rules[1].where.pattern: no site pattern named \"nope\"",
        "run.rules[2].where: name the pattern",
    ] {
        assert!(r.stderr.contains(want), "{want}\n{}", r.dump());
    }
}
