//! `watchdog scan` through the real binary: one fixture per kernel log
//! format and kernel version, each asserting every field of every event.
//!
//! A fixture (`tests/fixtures/kernel-logs/*.log`) starts with a header of
//! `#` lines: `# Source:` (where the text came from), `# Kernel:`,
//! `# Format:`, free comments, and one `#> {json}` line per expected event,
//! in order. The header is removed before the log is scanned.

use std::path::PathBuf;

use serde_json::Value;

use crate::util::{fixture, Dir};

struct Fixture {
    name: String,
    body: String,
    header: Vec<String>,
    expected: Vec<Value>,
}

fn load(path: &PathBuf) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut header = Vec::new();
    let mut expected = Vec::new();
    let mut body = String::new();
    let mut in_header = true;
    for line in text.split_inclusive('\n') {
        if in_header && line.starts_with('#') {
            let l = line.trim_end_matches('\n');
            if let Some(j) = l.strip_prefix("#> ") {
                expected.push(
                    serde_json::from_str(j)
                        .unwrap_or_else(|e| panic!("{name}: bad expectation {j}: {e}")),
                );
            } else {
                header.push(l.to_string());
            }
        } else {
            in_header = false;
            body.push_str(line);
        }
    }
    Fixture {
        name,
        body,
        header,
        expected,
    }
}

fn all() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture("kernel-logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths.iter().map(load).collect()
}

fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn every_fixture_yields_exactly_its_events() {
    let fixtures = all();
    assert!(fixtures.len() >= 20, "fixtures missing");
    let mut failures = Vec::new();
    for f in &fixtures {
        let dir = Dir::new();
        dir.write(&f.name, &f.body);
        let r = dir.run(&["scan", "--year", "2024", &f.name]).expect_code(0);
        let got = events(&r.stdout);
        if got != f.expected {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                f.name,
                f.expected
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    "),
                got.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_names_its_source_and_kernel() {
    for f in all() {
        for key in ["# Source: ", "# Kernel: ", "# Format: "] {
            assert!(
                f.header.iter().any(|h| h.starts_with(key)),
                "{}: header has no {key:?}",
                f.name
            );
        }
        assert!(!f.expected.is_empty(), "{}: no expected events", f.name);
        for e in &f.expected {
            assert_eq!(e["source"], Value::from(f.name.as_str()), "{}", f.name);
        }
    }
}

/// The body of a fixture, header removed.
fn body(name: &str) -> String {
    load(&fixture("kernel-logs").join(name)).body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_input_is_unpacked_and_stdin_is_read() {
    let dir = Dir::new();
    let text = body("oom-6.8-memcg-dmesg.log");
    dir.write("kern.log.gz", gzip(text.as_bytes()));
    let r = dir.run(&["scan", "kern.log.gz"]).expect_code(0);
    let ev = events(&r.stdout);
    assert_eq!(ev.len(), 1, "{}", r.dump());
    assert_eq!(ev[0]["kind"], "oom_kill");
    assert_eq!(ev[0]["source"], "kern.log.gz");
    let r = dir.run_stdin(&["scan"], text.as_bytes()).expect_code(0);
    let ev = events(&r.stdout);
    assert_eq!(ev[0]["source"], "stdin");
    assert_eq!(ev[0]["pid"], 4182);
}

#[test]
fn xz_input_is_unpacked_and_a_broken_one_does_not_stop_the_others() {
    let dir = Dir::new();
    let text = body("oom-6.8-memcg-dmesg.log");
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut text.as_bytes(), &mut xz).unwrap();
    assert!(xz.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]));
    dir.write("kern.log.xz", &xz);
    let r = dir.run(&["scan", "kern.log.xz"]).expect_code(0);
    let ev = events(&r.stdout);
    assert_eq!(ev.len(), 1, "{}", r.dump());
    assert_eq!(
        (ev[0]["kind"].as_str(), ev[0]["pid"].as_u64()),
        (Some("oom_kill"), Some(4182))
    );

    dir.write("old.log.xz", [0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]);
    dir.write("new.log", body("signal-deaths-x86.log"));
    let r = dir
        .run(&["scan", "old.log.xz", "missing.log", "new.log"])
        .expect_code(3);
    assert!(r.stderr.contains("old.log.xz: xz:"), "{}", r.dump());
    assert!(r.stderr.contains("missing.log"), "{}", r.dump());
    assert_eq!(events(&r.stdout).len(), 5, "{}", r.dump());
}

#[test]
fn kind_and_since_filter() {
    let dir = Dir::new();
    dir.write("s.log", body("sysrq-old-and-new-headers.log"));
    let r = dir
        .run(&["scan", "--kind", "panic", "s.log"])
        .expect_code(0);
    let ev = events(&r.stdout);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0]["summary"],
        "Kernel panic - not syncing: sysrq triggered crash"
    );
    // Kernel seconds: the syslog lines carry none and are kept.
    let r = dir.run(&["scan", "--since", "515", "s.log"]).expect_code(0);
    let kinds: Vec<Value> = events(&r.stdout)
        .iter()
        .map(|e| e["line"].clone())
        .collect();
    assert_eq!(kinds, [1, 4, 10, 11, 12, 13].map(Value::from));
    let r = dir
        .run(&[
            "scan",
            "--year",
            "2024",
            "--since",
            "2024-06-05 10:00:01",
            "s.log",
        ])
        .expect_code(0);
    assert_eq!(events(&r.stdout)[0]["line"], 4);
    let r = dir
        .run(&["scan", "--kind", "bogus", "s.log"])
        .expect_code(3);
    assert!(r.stderr.contains("unknown kind"), "{}", r.dump());
    let r = dir
        .run(&["scan", "--since", "soon", "s.log"])
        .expect_code(3);
    assert!(r.stderr.contains("--since"), "{}", r.dump());
}

#[test]
fn text_table_and_summary() {
    let dir = Dir::new();
    dir.write("h.log", body("udplogger-two-senders-interleaved.log"));
    let r = dir
        .run(&["scan", "--format", "text", "h.log"])
        .expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.dump());
    assert!(lines[0].starts_with("TIME"), "{}", r.dump());
    assert!(
        lines[1].contains("dd[7001] blocked for more than 120 s"),
        "{}",
        r.dump()
    );
    assert!(lines[1].contains("10.1.0.11:6665"), "{}", r.dump());
    assert!(lines[1].ends_with("h.log:1"), "{}", r.dump());
    assert!(
        lines[3].contains("tar[9100] killed by SIGSEGV"),
        "{}",
        r.dump()
    );

    let r = dir.run(&["scan", "--summary", "h.log"]).expect_code(0);
    assert_eq!(
        r.json(),
        serde_json::json!({
            "events": 3,
            "by_kind": {"hung_task": 2, "signal_death": 1},
            "top_tasks": [
                {"comm": "dd", "kind": "hung_task", "count": 1},
                {"comm": "tar", "kind": "hung_task", "count": 1},
                {"comm": "tar", "kind": "signal_death", "count": 1},
            ]
        })
    );
    let r = dir
        .run(&["scan", "--summary", "--format", "text", "h.log"])
        .expect_code(0);
    assert!(r.stdout.starts_with("3 events\n"), "{}", r.dump());
    assert!(r.stdout.contains("  hung_task     2\n"), "{}", r.dump());
}

#[test]
fn hostile_input_never_breaks_the_scan() {
    // Invalid UTF-8, NUL bytes, a 10 MB line, a truncated record, then a
    // real event that must still be found.
    let mut data = Vec::new();
    data.extend_from_slice(b"\xff\xfe\x00garbage\x00\n");
    data.extend_from_slice(b"[  1.000000] INFO: task a:1 blocked for more th");
    data.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    data.push(b'\n');
    data.extend_from_slice(b"6,12,abc;\n\x00\x00\n");
    data.extend_from_slice(b"[  2.000000] INFO: task b\xff:2 blocked for more than 120 seconds.\n");
    let r = Dir::new().run_stdin(&["scan"], &data).expect_code(0);
    let ev = events(&r.stdout);
    assert_eq!(ev.len(), 1, "{}", r.dump());
    assert_eq!(ev[0]["comm"], "b\u{fffd}");
    assert_eq!(ev[0]["pid"], 2);
    assert_eq!(ev[0]["line"], 5);
}

#[test]
fn a_100_mb_line_is_read_in_bounded_memory() {
    use std::io::Write;
    // Written in pieces: the test itself never holds the 100 MB.
    let dir = Dir::new();
    let mut f = std::fs::File::create(dir.join("long.log")).unwrap();
    f.write_all(b"[  1.000000] ").unwrap();
    let chunk = vec![b'y'; 1024 * 1024];
    for _ in 0..100 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n[  2.000000] Kernel panic - not syncing: after the long line\n")
        .unwrap();
    drop(f);
    // Run under a 48 MiB address-space limit: a line buffer that grew with
    // the line would fail to allocate 100 MB and abort.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 49152 && exec \"$0\" scan long.log")
        .arg(crate::util::bin())
        .current_dir(dir.path())
        .output()
        .expect("sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(events(&stdout).len(), 1, "{stdout}");
}

/// The fixtures of the kinds of issue 15, each of at least two kernel
/// generations.
const NEW_KINDS: &[&str] = &[
    "warning-3.10-rhel7-and-5.14-rhel9.log",
    "bug-scheduling-while-atomic-3.10-and-6.1.log",
    "hard-lockup-3.10-warn-4.x-and-6.x.log",
    "mce-edac-3.10-and-5.x.log",
    "fs-error-ext4-xfs-btrfs-3.10-to-6.x.log",
    "io-error-storm-3.10-4.18-and-6.x.log",
    "netdev-timeout-3.10-and-6.6.log",
    "alloc-failure-2.6.32-3.10-and-5.14.log",
    "oom-no-killable-3.10-and-6.x.log",
];

/// `(kernel microseconds, text)` of each line of a dmesg or syslog
/// fixture.
pub fn messages(name: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut clock = 1_000_000;
    for l in body(name).lines() {
        let text = l.split_once(" kernel: ").map_or(l, |(_, t)| t);
        if let Some(rest) = text.strip_prefix('[') {
            let (ts, t) = rest.split_once("] ").unwrap();
            let (s, us) = ts.trim().split_once('.').unwrap();
            let usec = s.parse::<u64>().unwrap() * 1_000_000 + us.parse::<u64>().unwrap();
            out.push((usec, t.to_string()));
        } else {
            clock += 1000;
            out.push((clock, text.to_string()));
        }
    }
    out
}

/// The fields of the event's own kind (common fields dropped).
fn own_fields(e: &Value) -> Value {
    let mut e = e.clone();
    let m = e.as_object_mut().unwrap();
    for k in ["time", "kernel_time", "source", "host", "line"] {
        m.remove(k);
    }
    e
}

#[test]
fn new_kinds_parse_alike_in_kmsg_syslog_and_journal_framings() {
    for name in NEW_KINDS {
        let f = load(&fixture("kernel-logs").join(name));
        let want: Vec<Value> = f.expected.iter().map(own_fields).collect();
        let msgs = messages(name);
        let mut kmsg = String::new();
        let mut syslog = String::new();
        let mut journal = String::new();
        for (i, (usec, text)) in msgs.iter().enumerate() {
            let ts = format!("{}.{:06}", usec / 1_000_000, usec % 1_000_000);
            kmsg.push_str(&format!("4,{},{usec},-;{text}\n", i + 1));
            syslog.push_str(&format!("Mar  1 10:00:00 db01 kernel: [{ts:>12}] {text}\n"));
            journal.push_str(
                &serde_json::json!({
                    "MESSAGE": text,
                    "__REALTIME_TIMESTAMP": (1_700_000_000_000_000u64 + usec).to_string(),
                    "_SOURCE_MONOTONIC_TIMESTAMP": usec.to_string(),
                    "_HOSTNAME": "db01",
                    "_TRANSPORT": "kernel",
                    "PRIORITY": "4",
                })
                .to_string(),
            );
            journal.push('\n');
        }
        for (framing, text) in [("kmsg", kmsg), ("syslog", syslog), ("journal", journal)] {
            let dir = Dir::new();
            dir.write("in.log", &text);
            let r = dir
                .run(&["scan", "--year", "2024", "in.log"])
                .expect_code(0);
            let got: Vec<Value> = events(&r.stdout).iter().map(own_fields).collect();
            assert_eq!(got, want, "{name} as {framing}:\n{}", r.dump());
        }
    }
}
