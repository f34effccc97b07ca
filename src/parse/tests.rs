//! The state machine on literal kernel text.

use super::*;
use crate::events::Body;

/// Frames and parses lines as one file would be.
pub fn parse(text: &str) -> Vec<Event> {
    let mut fr = Framer::with_year(Some(2024));
    let mut p = Parser::new("t");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let rec = fr.frame(line.as_bytes());
        out.extend(p.push_at(&rec, Some(i as u64 + 1)));
    }
    out.extend(p.finish());
    out
}

fn kinds(ev: &[Event]) -> Vec<&'static str> {
    ev.iter().map(|e| e.body.kind()).collect()
}

#[test]
fn hung_task_report_is_one_event_with_blocker() {
    let ev = parse(
        "[  125.362000] INFO: task zsh:470 blocked for more than 122 seconds.\n\
         [  125.362100]       Not tainted 6.15.0 #1\n\
         [  125.362200] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.\n\
         [  125.362300] task:zsh             state:D stack:0     pid:470   tgid:470   ppid:430    task_flags:0x400100 flags:0x00004002\n\
         [  125.362363] INFO: task zsh:470 is blocked on a mutex likely owned by task zsh:471.\n\
         [  125.364467] task:zsh             state:D stack:0     pid:471   tgid:470   ppid:430    task_flags:0x400100 flags:0x00004002\n\
         [  300.000000] INFO: task zsh:470 blocked for more than 245 seconds.\n",
    );
    assert_eq!(kinds(&ev), ["hung_task", "hung_task"]);
    let Body::HungTask(h) = &ev[0].body else {
        panic!()
    };
    assert_eq!(
        (h.comm.as_deref(), h.pid, h.blocked_secs),
        (Some("zsh"), Some(470), Some(122))
    );
    assert_eq!(
        (h.blocker_comm.as_deref(), h.blocker_pid),
        (Some("zsh"), Some(471))
    );
    assert_eq!(ev[0].kernel_time, Some(125.362));
    assert_eq!(ev[0].line, Some(1));
    let Body::HungTask(h) = &ev[1].body else {
        panic!()
    };
    assert_eq!((h.blocked_secs, h.blocker_pid), (Some(245), None));
}

#[test]
fn oom_report_assembles_one_kill() {
    let ev = parse(
        "stress invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n\
         CPU: 1 PID: 4242 Comm: stress Not tainted 5.14.0-362.el9.x86_64 #1\n\
         Tasks state (memory values in pages):\n\
         [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name\n\
         [   4243]  1000  4243   500000   400000  3300000        0           500 stress worker\n\
         oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/user.slice,task=stress worker,pid=4243,uid=1000\n\
         Out of memory: Killed process 4243 (stress worker) total-vm:2000000kB, anon-rss:1600000kB, file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:3222kB oom_score_adj:500\n\
         oom_reaper: reaped process 4243 (stress worker), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n",
    );
    assert_eq!(kinds(&ev), ["oom_kill"]);
    let Body::OomKill(o) = &ev[0].body else {
        panic!()
    };
    assert_eq!(o.pid, Some(4243));
    assert_eq!(o.comm.as_deref(), Some("stress worker"));
    assert_eq!(o.trigger_comm.as_deref(), Some("stress"));
    assert_eq!(o.trigger_pid, Some(4242));
    assert_eq!(o.constraint.as_deref(), Some("CONSTRAINT_NONE"));
    assert_eq!(
        (o.uid, o.oom_score_adj, o.memcg),
        (Some(1000), Some(500), false)
    );
    assert_eq!(ev[0].line, Some(7));
}

#[test]
fn oops_with_bug_and_oops_lines_is_one_event() {
    let ev = parse(
        "BUG: unable to handle kernel NULL pointer dereference at 0000000000000008\n\
         IP: [<ffffffffa0123456>] foo+0x16/0x30 [bar]\n\
         Oops: 0000 [#1] SMP\n\
         ---[ end trace 1234567890abcdef ]---\n\
         Kernel panic - not syncing: Fatal exception\n\
         ---[ end Kernel panic - not syncing: Fatal exception\n",
    );
    assert_eq!(kinds(&ev), ["oops", "panic"]);
}

#[test]
fn kmsg_sequence_gap_is_lost() {
    let ev = parse("6,10,1000,-;a\n6,11,1000,-;b\n6,15,1000,-;c\n");
    assert_eq!(kinds(&ev), ["lost"]);
    let Body::Lost(l) = &ev[0].body else { panic!() };
    assert_eq!(l.count, 3);
}

#[test]
fn sequence_jumps_too_far_for_a_gap_are_restarts() {
    // 2^24 missing is still a gap; one more is a forged or corrupt
    // header, a restart (as udplogger's `reset`), not 2^64 lost messages.
    let max = crate::marker::MAX_GAP;
    let ev = parse(&format!("6,0,1,-;a\n6,{},1,-;b\n", max + 1));
    let Body::Lost(l) = &ev[0].body else {
        panic!("{ev:?}")
    };
    assert_eq!(l.count, max);
    let ev = parse(&format!(
        "6,0,1,-;a\n6,{},1,-;b\n6,{},1,-;c\n",
        max + 2,
        u64::MAX
    ));
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn senders_keep_separate_state() {
    let ev = parse(
        "2024-03-04T10:00:00.000001Z 10.0.0.1:6666 INFO: task a:1 blocked for more than 120 seconds.\n\
         2024-03-04T10:00:00.000002Z 10.0.0.2:6666 INFO: task b:2 blocked for more than 120 seconds.\n\
         2024-03-04T10:00:00.000003Z 10.0.0.1:6666 INFO: task a:1 is blocked on a mutex likely owned by task c:3.\n",
    );
    assert_eq!(kinds(&ev), ["hung_task", "hung_task"]);
    let a = ev
        .iter()
        .find(|e| e.host.as_deref() == Some("10.0.0.1:6666"))
        .unwrap();
    let Body::HungTask(h) = &a.body else { panic!() };
    assert_eq!(h.blocker_pid, Some(3));
}

#[test]
fn sources_are_bounded() {
    let mut p = Parser::new("t");
    let mut fr = Framer::new();
    for i in 0..(MAX_SOURCES * 2) {
        let line = format!(
            "2024-03-04T10:00:00Z 10.0.{}.{}:1 INFO: task a:1 blocked for more than 1 seconds.",
            i / 256,
            i % 256
        );
        let _ = p.push(&fr.frame(line.as_bytes()));
        assert!(p.states.len() <= MAX_SOURCES);
    }
    assert_eq!(p.flush().len(), MAX_SOURCES);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..40)) {
            let mut fr = Framer::new();
            let mut p = Parser::new("p");
            for l in &lines {
                let _ = p.push(&fr.frame(l));
            }
            let _ = p.finish();
        }

        #[test]
        fn kernel_shaped_text_never_panics(lines in proptest::collection::vec(
            "(\\[ *[0-9]{1,5}\\.[0-9]{6}\\] |<[0-9]>|[0-9],[0-9]{1,3},[0-9]{1,6},-;)?(INFO: task |Out of memory: |Killed process |oom-kill:|BUG: soft lockup - CPU#|\\[ pid \\]|\\[  *[0-9]+\\]|sysrq: |\\*\\* |traps: |CPU: 1 PID: |Oops: |---\\[ end trace)?[ -~]{0,60}", 0..60)) {
            let mut fr = Framer::new();
            let mut p = Parser::new("p");
            for l in &lines {
                let _ = p.push(&fr.frame(l.as_bytes()));
            }
            let _ = p.finish();
        }
    }
}

#[test]
fn journal_boot_marker_ends_every_hosts_incident() {
    let ev = parse(
        "Jan 09 10:41:33 app02 kernel: INFO: task a:1 blocked for more than 120 seconds.\n\
         -- Boot 0123456789abcdef0123456789abcdef --\n\
         Jan 09 10:50:00 app02 kernel: Linux version 5.14.0\n",
    );
    assert_eq!(kinds(&ev), ["hung_task"]);
    assert_eq!(ev[0].line, Some(1));
}

#[test]
fn one_death_reported_twice_is_one_event() {
    let ev = parse(
        "[ 1.000000] a.out[77]: segfault at 0 ip 1 sp 2 error 4 in a.out[400000+1000]\n\
         [ 1.000100] a.out/77: potentially unexpected fatal signal 11.\n\
         [ 9.000000] a.out[78]: segfault at 0 ip 1 sp 2 error 4 in a.out[400000+1000]\n",
    );
    assert_eq!(kinds(&ev), ["signal_death", "signal_death"]);
}

#[test]
fn framer_and_parser_take_kmsg_reads() {
    let mut f = Framer::new();
    let mut p = Parser::new("kmsg");
    let mut push = |b: &[u8]| p.push(&f.frame(b));
    assert!(push(
        b"3,10,5000000,-;INFO: task a b:c:7 blocked for more than 120 seconds.\n SUBSYSTEM=x\n"
    )
    .is_empty());
    let ev = push(b"4,11,5000100,-;Out of memory: Killed process 9 (x) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:5 pgtables:6kB oom_score_adj:7\n");
    assert_eq!(kinds(&ev), ["hung_task", "oom_kill"]);
    assert_eq!(ev[0].source, "kmsg");
    let Body::HungTask(h) = &ev[0].body else {
        panic!()
    };
    assert_eq!((h.comm.as_deref(), h.pid), (Some("a b:c"), Some(7)));
    assert!(p.flush().is_empty());
}

#[test]
fn separate_bug_reports_are_separate_reports() {
    // A BUG the kernel went on from is a `bug`; one that reached die()
    // (`Oops: ... [1]`) is an `oops` (issue 15).
    let ev = parse(
        "BUG: scheduling while atomic: kworker/0:1/12/0x00000002\n\
         CPU: 0 PID: 12 Comm: kworker/0:1 Not tainted 3.10.0-1160.el7.x86_64 #1\n\
         BUG: scheduling while atomic: kworker/0:1/12/0x00000002\n\
         Unable to handle kernel NULL pointer dereference at 0000000000000000 RIP: \n\
         Oops: 0000 [1] SMP \n",
    );
    assert_eq!(kinds(&ev), ["bug", "bug", "oops"]);
    let Body::Bug(b) = &ev[0].body else { panic!() };
    assert_eq!(
        (b.cpu, b.pid, b.comm.as_deref(), b.tainted.as_deref()),
        (Some(0), Some(12), Some("kworker/0:1"), Some(""))
    );
    assert_eq!(b.kernel_release.as_deref(), Some("3.10.0-1160.el7.x86_64"));
    let Body::Bug(b2) = &ev[1].body else { panic!() };
    assert_eq!(b.signature, b2.signature, "same bug, same signature");
}

#[test]
fn bare_fatal_signal_takes_the_task_from_the_next_line() {
    // 6.1: print_fatal_signal() prints no name; dump_stack's line does.
    let ev = parse(
        "[    1.751038] segv[83]: segfault at 0 ip 0000000000401625 sp 00007ffff5cabfc0 error 4 in segv[401000+78000] likely on CPU 0 (core 0, socket 0)\n\
         [    1.754377] potentially unexpected fatal signal 11.\n\
         [    1.754516] CPU: 0 PID: 83 Comm: segv Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2\n\
         [    2.000000] potentially unexpected fatal signal 6.\n\
         [    2.000100] CPU: 0 PID: 90 Comm: abrt me Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2\n",
    );
    assert_eq!(kinds(&ev), ["signal_death", "signal_death"]);
    let Body::SignalDeath(d) = &ev[1].body else {
        panic!()
    };
    assert_eq!((d.comm.as_str(), d.pid, d.signal), ("abrt me", Some(90), 6));
    assert_eq!(ev[1].kernel_time, Some(2.0));
}

/// Every fixture line that starts a report (or is the log's own word on
/// lost lines) holds a [`PREFILTER`] word, so `scan` may skip the others.
#[test]
fn every_report_line_of_the_fixtures_holds_a_prefilter_word() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel-logs");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut fr = Framer::with_year(Some(2024));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let rec = fr.frame(line.as_bytes());
            let m = classify(&rec.text);
            let inside_only = matches!(
                m,
                Msg::Other
                    | Msg::TaskLine { .. }
                    | Msg::CallTrace
                    | Msg::Rip(_)
                    | Msg::EndTrace
                    | Msg::MemcgHint
                    | Msg::OomTableHeader { .. }
                    | Msg::HungBlocker { .. }
                    | Msg::Boot
            );
            if inside_only && rec.lost.is_none() {
                continue;
            }
            checked += 1;
            assert!(
                PREFILTER.iter().any(|w| line.contains(w)),
                "{}: {line:?} ({m:?}) holds no prefilter word",
                path.display()
            );
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn an_idle_parser_is_one_without_an_open_incident() {
    let mut fr = Framer::new();
    let mut p = Parser::new("t");
    assert!(p.is_idle());
    p.push(&fr.frame(b"INFO: task a:1 blocked for more than 120 seconds."));
    assert!(!p.is_idle(), "a hung task report takes its stack lines");
    p.flush();
    assert!(p.is_idle());
}

#[test]
fn signature_ignores_cpu_pid_and_addresses_but_not_the_stack() {
    let report = |cpu: u32, pid: u32, caller: &str| {
        parse(&format!(
            "WARNING: CPU: {cpu} PID: {pid} at net/core/dev.c:3214 skb_warn_bad_offload+0x88/0x110\n\
             CPU: {cpu} PID: {pid} Comm: swapper/{cpu} Not tainted 5.14.0-362.el9.x86_64 #1\n\
             RIP: 0010:skb_warn_bad_offload+0x88/0x110\n\
             Call Trace:\n \
             <IRQ>\n \
             ? __warn+0x81/0x110\n \
             [<ffffffff8f781340>] {caller}+0x13f/0x150\n\
             ---[ end trace 7c3e0a2c1d52f87b ]---\n"
        ))
    };
    let sig = |ev: &[Event]| match &ev[0].body {
        Body::Warning(c) => (c.signature.clone(), c.frames.clone(), c.rip.clone()),
        b => panic!("{b:?}"),
    };
    let a = sig(&report(2, 0, "__skb_gso_segment"));
    let b = sig(&report(7, 4242, "__skb_gso_segment"));
    let c = sig(&report(2, 0, "validate_xmit_skb"));
    assert_eq!(a.0, b.0);
    assert_ne!(a.0, c.0);
    assert_eq!(a.1, ["__skb_gso_segment+0x13f/0x150"]);
    assert_eq!(a.2.as_deref(), Some("skb_warn_bad_offload+0x88/0x110"));
    assert_eq!(a.0.len(), 16);
}

use proptest::strategy::Strategy as _;

proptest::proptest! {
    /// The packed searcher a line at a time answers as the automaton
    /// does: lines of ordinary text with a prefilter word, part of one or
    /// none, short (under the searcher's minimum length) and long.
    #[test]
    fn the_line_search_agrees_with_the_automaton(
        parts in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(PREFILTER.to_vec()).prop_map(str::to_string),
                proptest::sample::select(PREFILTER.to_vec())
                    .prop_map(|w| w[..w.len() - 1].to_string()),
                "[ -~]{0,40}",
            ],
            0..6,
        ),
    ) {
        let line = parts.concat();
        let ac = crate::parse::prefilter().unwrap();
        proptest::prop_assert_eq!(
            crate::parse::line_has_prefilter_word(line.as_bytes()),
            ac.is_match(line.as_bytes()),
            "{:?}",
            line
        );
    }
}
