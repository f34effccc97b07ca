//! Regression tests, one per defect fixed, named after what went wrong
//! (ripgrep's habit). Issue 18: hostile inputs and faults. Each test goes
//! through the real binary where the binary can reach the fault. The
//! helpers here serve tests/faults.rs too.

use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{bin, copy_tree, fixture, Daemon, Dir};

pub(crate) const BOOT_ID: &str = "0b0e4a9e-9d0c-4c2e-8a43-3f1b2c3d4e5f";
/// Every wait in these tests is bounded by this.
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);
pub(crate) const HUNG: &str = "INFO: task writer:412 blocked for more than 2 seconds.";

/// `watchdog run` on a copy of the well-tuned fixture, with a FIFO for
/// dev/kmsg; stderr goes to a file.
pub(crate) struct Run {
    pub dir: Dir,
    child: Option<Child>,
}

impl Run {
    pub(crate) fn new(config: &str) -> Run {
        let dir = Dir::new();
        copy_tree(&fixture("well-tuned"), &dir.join("root"));
        dir.write(
            "root/proc/sys/kernel/random/boot_id",
            format!("{BOOT_ID}\n"),
        );
        std::fs::create_dir_all(dir.join("root/dev")).unwrap();
        nix::unistd::mkfifo(
            &dir.join("root/dev/kmsg"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let base = dir.path().display();
        dir.write(
            "config.yaml",
            format!(
                "run:\n  event_log: {base}/events.jsonl\n  state_file: {base}/state/kmsg.state\n  evidence_dir: {base}/evidence\n  kdump_check: {{at_start: false, interval_hours: 24}}\n{config}"
            ),
        );
        Run { dir, child: None }
    }

    pub(crate) fn start(&mut self) {
        self.start_limited(None);
    }

    /// Starts `run`, under a descriptor limit when `nofile` is given.
    pub(crate) fn start_limited(&mut self, nofile: Option<u32>) {
        let args = ["run", "--root", "root", "--config", "config.yaml"];
        let mut cmd = match nofile {
            None => Command::new(bin()),
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &crate::util::nofile_script(n), bin()]);
                c
            }
        };
        let child = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_for("start", |r| r.stderr().contains("events go to"));
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    pub(crate) fn event_lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn kinds(&self) -> Vec<String> {
        self.event_lines("events.jsonl")
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| e["kind"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub(crate) fn wait_for(&self, what: &str, cond: impl Fn(&Run) -> bool) {
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
            self.event_lines("events.jsonl")
        );
    }

    pub(crate) fn kmsg(&self, records: &[(u64, &str)]) {
        let mut text = String::new();
        for (seq, msg) in records {
            text.push_str(&format!("3,{seq},{},-;{msg}\n", seq * 10_000));
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("root/dev/kmsg"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    pub(crate) fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().expect("running").id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), sig)
            .unwrap();
    }

    pub(crate) fn stop(&mut self) -> i32 {
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
            assert!(Instant::now() < until, "no exit\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits at most `PATIENCE` for a child; kills it and panics on timeout,
/// so a hang fails the test instead of hanging the suite.
pub(crate) fn wait_bounded(mut child: Child, what: &str) -> std::process::Output {
    let until = Instant::now() + PATIENCE;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} hung\n--- stdout:\n{}\n--- stderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn spawn(cwd: &Path, args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

// Defect 1: a saved kmsg position beyond the kernel's buffer blinded `run`.
#[test]
fn kmsg_position_beyond_buffer_is_refused() {
    let mut r = Run::new("  kmsg_start: end\n");
    r.dir.write(
        "state/kmsg.state",
        format!(r#"{{"boot_id":"{BOOT_ID}","seq":{}}}"#, 1u64 << 40),
    );
    r.start();
    r.kmsg(&[(1, "a"), (2, "b")]);
    r.wait_for("the warning", |r| {
        r.stderr().contains("is beyond the kernel buffer")
    });
    r.kmsg(&[(3, HUNG)]);
    r.wait_for("the hung task after it", |r| {
        r.kinds().contains(&"hung_task".to_string())
    });
    assert_eq!(r.stop(), 0);
    assert_eq!(r.stderr().matches("beyond the kernel buffer").count(), 1);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(r.dir.join("state/kmsg.state")).unwrap())
            .unwrap();
    assert_eq!(state["seq"], 3);
}

pub(crate) fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

pub(crate) fn finding<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id} in {report:#}"))
}

// Defect 4: `check` opened files blocking before looking at their type, so
// a FIFO in the tree hung it for ever.
#[test]
fn check_on_a_fifo_does_not_hang() {
    let dir = Dir::new();
    copy_tree(&fixture("well-tuned"), &dir.join("root"));
    mkfifo(&dir.join("root/proc/sys/kernel/sysrq"));
    let out = wait_bounded(
        spawn(dir.path(), &["check", "--root", "root", "--format", "json"]),
        "check with a FIFO for proc/sys/kernel/sysrq",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = finding(&report, "sysrq-keyboard");
    assert_eq!(f["status"], "unknown", "{f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("proc/sys/kernel/sysrq") && summary.contains("not a regular file"),
        "{summary}"
    );
    assert_eq!(out.status.code(), Some(3), "{report:#}");
}

// Defect 11: with /proc/cmdline unreadable, `check` fell back to the build
// default of the log buffer and warned about it, as if no log_buf_len=
// could be on the command line.
#[test]
fn log_buf_size_is_unknown_when_cmdline_is_unreadable() {
    let dir = Dir::new();
    copy_tree(&fixture("well-tuned"), &dir.join("root"));
    // Not UTF-8: unreadable as a command line.
    dir.write("root/proc/cmdline", [0xff, 0xfe, b'q', b'\n']);
    let out = wait_bounded(
        spawn(
            dir.path(),
            &[
                "check",
                "--root",
                "root",
                "--format",
                "json",
                "--only",
                "log-buf-size",
            ],
        ),
        "check",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = finding(&report, "log-buf-size");
    assert_eq!(f["status"], "unknown", "{f:#}");
    assert!(
        f["summary"].as_str().unwrap().contains("proc/cmdline"),
        "{f:#}"
    );
    assert_eq!(out.status.code(), Some(3));
}

/// One xz stream of `zeros` zero bytes and a newline, from the crate's
/// own encoder (preset 1: a 1 MiB dictionary).
fn xz_of_zeros(zeros: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut w =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        w.write_all(&block[..n]).unwrap();
        left -= n;
    }
    w.write_all(b"\n").unwrap();
    w.finish().unwrap()
}

fn xz_of(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut w =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6)).unwrap();
    w.write_all(text.as_bytes()).unwrap();
    w.finish().unwrap()
}

/// Runs `watchdog ARGS` and returns its output and its peak resident set
/// (VmHWM, KiB), read from its status file while it runs: the high-water
/// mark only grows, so the last reading before it exits is the peak.
pub(crate) fn peak_rss(cwd: &Path, args: &[&str]) -> (std::process::Output, u64) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes so the child never blocks on them.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).unwrap();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut v).unwrap();
        v
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let until = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("{args:?} did not finish in 600 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = std::process::Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    (out, peak)
}

// Defect 6: xz was unpacked whole in memory (8.4 GB resident for 4 GB of
// zeros), and concatenated streams were refused.
#[test]
fn xz_bomb_is_streamed_in_bounded_memory() {
    let dir = Dir::new();
    // 4 streams of 64 MiB of zeros (256 MiB unpacked from a few KB), then
    // a stream with a kernel line: reaching it proves every stream is read.
    let zeros = xz_of_zeros(64 << 20);
    let mut bomb = Vec::new();
    for _ in 0..4 {
        bomb.extend_from_slice(&zeros);
    }
    bomb.extend_from_slice(&xz_of(
        "[  100.000000] INFO: task dd:4242 blocked for more than 120 seconds.\n",
    ));
    dir.write("bomb.log.xz", &bomb);
    let (out, peak_kib) = peak_rss(dir.path(), &["scan", "bomb.log.xz"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"kind\":\"hung_task\""), "{stdout}");
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB"
    );
}

// Defect 7: `scan --format text` kept every event until the end (1.4 GB for
// 2 million events) to size its columns.
#[test]
fn text_table_of_many_events_is_streamed() {
    use std::io::Write as _;
    let dir = Dir::new();
    let n = 200_000;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..n {
        writeln!(
            gz,
            "[{i:>6}.000000] INFO: task worker-{i}:{i} blocked for more than 120 seconds."
        )
        .unwrap();
    }
    dir.write("many.log.gz", gz.finish().unwrap());
    let (out, peak_kib) = peak_rss(dir.path(), &["scan", "--format", "text", "many.log.gz"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(rows[0].starts_with("TIME"), "{}", rows[0]);
    assert_eq!(rows.len(), n + 1);
    assert_eq!(rows.iter().filter(|l| l.contains("hung_task")).count(), n);
    assert!(rows[n].contains("worker-199999"), "{}", rows[n]);
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB"
    );
}

/// `watchdog udplogger` writing under `dir/logs`, optionally with a
/// descriptor limit (set by the shell that execs it).
pub(crate) fn udplogger(
    dir: &Dir,
    nofile: Option<u32>,
    extra: &[&str],
) -> (crate::util::Daemon, std::net::SocketAddr) {
    let logs = dir.join("logs");
    let mut args = vec![
        "udplogger".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--dir".into(),
        logs.to_str().unwrap().into(),
        "--utc".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut d = match nofile {
        None => {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::util::Daemon::start(dir.path(), &a)
        }
        Some(n) => {
            let script = crate::util::nofile_script(n);
            let mut a: Vec<&str> = vec!["-c", &script, bin()];
            a.extend(args.iter().map(String::as_str));
            crate::util::Daemon::start_program(dir.path(), "sh", &a)
        }
    };
    let err = d.wait_stderr("writing to");
    let addr = crate::util::listen_addr(&err);
    (d, addr)
}

/// Every file under `dir`, concatenated in name order.
pub(crate) fn tree_text(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

// Defect 12: with --per-sender, a sender directory replaced by a symbolic
// link sent the writes outside the log directory.
#[test]
fn per_sender_directory_symlink_is_not_followed() {
    let dir = Dir::new();
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let (mut d, addr) = udplogger(&dir, None, &["--per-sender"]);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let name = s.local_addr().unwrap().to_string();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("logs").join(&name)).unwrap();
    s.send_to(b"must not leave the log directory\n", addr)
        .unwrap();
    d.wait_stderr("refusing to write");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // Once the link is gone, the held line lands where it belongs, with a
    // marker saying what happened.
    std::fs::remove_file(dir.join("logs").join(&name)).unwrap();
    let log = crate::util::wait_until("the held line", || {
        let t = tree_text(&dir.join("logs"));
        t.contains("writing resumed").then_some(t)
    });
    let r = d.stop();
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        log.contains(&format!("{name} must not leave the log directory")),
        "{log}"
    );
    assert!(log.contains("symbolic link"), "{log}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

// Defect 2: with --per-sender and a low RLIMIT_NOFILE, nearly every line
// ended as "bytes unwritten" at shutdown, with no marker.
#[test]
fn per_sender_at_low_nofile_loses_no_line() {
    let dir = Dir::new();
    let (d, addr) = udplogger(&dir, Some(10), &["--per-sender"]);
    let senders: Vec<std::net::UdpSocket> = (0..50)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let total = 1000;
    for i in 0..total {
        let s = &senders[i % senders.len()];
        s.send_to(format!("line {i:04} of the burst\n").as_bytes(), addr)
            .unwrap();
        if i % 100 == 99 {
            // Within the receive buffer, but let it breathe.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Every line reaches the disk while the receiver runs; on a timeout
    // the receiver is stopped and its stderr shown.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tree_text(&dir.join("logs"))
        .matches(" of the burst")
        .count()
        < total
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = d.stop();
    assert_eq!(r.code, 0, "{}", r.dump());
    let log = tree_text(&dir.join("logs"));
    for i in 0..total {
        assert!(
            log.contains(&format!("line {i:04} of the burst")),
            "line {i} lost\n{}",
            r.dump()
        );
    }
    assert!(r.stderr.contains(" 0 bytes unwritten"), "{}", r.dump());
}

// Defect 8: with a raised max_senders, each sender cost ~1 KB outside
// max_buffered_bytes (80 MB for 60,000 senders). Now what senders and
// their files cost counts against the cap, which bounds the table.
#[test]
fn per_sender_memory_counts_against_the_cap() {
    let dir = Dir::new();
    let cfg = dir.write(
        "c.yaml",
        "udplogger:\n  max_senders: 60000\n  max_buffered_bytes: 262144\n",
    );
    let (d, addr) = udplogger(
        &dir,
        None,
        &["--per-sender", "--config", cfg.to_str().unwrap()],
    );
    let n = 3000;
    for i in 0..n {
        let ip = format!("127.1.{}.{}", i / 250, 1 + i % 250);
        let s = std::net::UdpSocket::bind((ip.as_str(), 0)).unwrap();
        s.send_to(format!("sender {i:04} says hello\n").as_bytes(), addr)
            .unwrap();
        if i % 500 == 499 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    crate::util::wait_until("every line", || {
        let t = tree_text(&dir.join("logs"));
        (t.matches(" says hello").count() >= n).then_some(())
    });
    let r = d.stop();
    assert_eq!(r.code, 0, "{}", r.dump());
    let peak: usize = r
        .stderr
        .split("(peak ")
        .nth(1)
        .and_then(|x| x.split(')').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.dump()));
    // 256 KiB at a few hundred bytes per sender and file: far below 3,000.
    assert!(peak < 1000, "peak senders {peak}\n{}", r.dump());
    assert!(r.stderr.contains(" 0 bytes unwritten"), "{}", r.dump());
}

/// A tmpfs of `size` mounted at `dir/name`, unmounted on drop; `None`
/// when mounting is not allowed (not root), and the test says so.
pub(crate) struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    pub(crate) fn mount(dir: &Dir, name: &str, size: &str) -> Option<Tmpfs> {
        let m = dir.join(name);
        std::fs::create_dir_all(&m).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&m)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(Tmpfs(m))
    }

    /// Fills what is left with a file, which is returned.
    pub(crate) fn fill(&self) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        let _ = std::fs::write(&filler, vec![b'F'; 1 << 20]);
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: detached even while a daemon that failed its test still
        // has a file open there.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// Defect 3, the event log: after ENOSPC half-way through a line, the next
// event was glued to the torn one, and not counted as lost.
#[test]
fn event_log_line_torn_by_enospc_is_rolled_back() {
    let mut r = Run::new("");
    let Some(fs) = Tmpfs::mount(&r.dir, "small", "64k") else {
        return;
    };
    // The event log on the small filesystem.
    let cfg = std::fs::read_to_string(r.dir.join("config.yaml")).unwrap();
    let log = fs.0.join("events.jsonl");
    let cfg = cfg.replace(
        &format!("{}/events.jsonl", r.dir.path().display()),
        log.to_str().unwrap(),
    );
    r.dir.write("config.yaml", cfg);
    r.start();
    r.kmsg(&[(1, "INFO: task first:1 blocked for more than 2 seconds.")]);
    r.wait_for("the first event", |_| {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("hung_task"))
    });
    let filler = fs.fill();
    // ~40 events of ~300 bytes: the first ones fit in the slack of the
    // file's last page, one is cut by ENOSPC, the rest fail.
    let pad = "p".repeat(60);
    let records: Vec<(u64, String)> = (2..42)
        .map(|i| {
            (
                i,
                format!("INFO: task w{i}{pad}:{i} blocked for more than 2 seconds."),
            )
        })
        .collect();
    let refs: Vec<(u64, &str)> = records.iter().map(|(i, t)| (*i, t.as_str())).collect();
    r.kmsg(&refs);
    r.wait_for("the write failure", |r| {
        r.stderr().contains("cannot write event log")
    });
    std::fs::remove_file(&filler).unwrap();
    r.kmsg(&[(50, "INFO: task last:50 blocked for more than 2 seconds.")]);
    r.wait_for("the lost event", |_| {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"lost\""))
    });
    assert_eq!(r.stop(), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}\n{text}")))
        .collect();
    let on_disk = events.iter().filter(|e| e["kind"] != "lost").count();
    let lost: u64 = events
        .iter()
        .filter(|e| e["kind"] == "lost" && e["source"] == "watchdog")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert!(lost > 0, "{text}");
    let hung = events.iter().filter(|e| e["kind"] == "hung_task").count();
    // Every hung task is on disk or counted (other kinds may be lost too).
    assert!(
        hung as u64 + lost >= 42,
        "{hung} on disk, {lost} lost\n{text}"
    );
    assert!(on_disk >= 2, "{text}");
}

// Defect 3, udplogger: a torn line stayed on disk and the next line (after
// a restart, or once the file was deleted) was glued to it.
#[test]
fn udplogger_line_torn_by_enospc_is_rolled_back() {
    let dir = Dir::new();
    let Some(fs) = Tmpfs::mount(&dir, "small", "64k") else {
        return;
    };
    let cfg = dir.write(
        "c.yaml",
        format!(
            "udplogger:\n  dir: {}\n  fault_hold_bytes: 1000000\n  retry_max_ms: 200\n  output_format: json\n",
            fs.0.join("logs").display()
        ),
    );
    let logs = fs.0.join("logs");
    let mut d = crate::util::Daemon::start(
        dir.path(),
        &[
            "udplogger",
            "--listen",
            "127.0.0.1:0",
            "--utc",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let err = d.wait_stderr("writing to");
    let addr = crate::util::listen_addr(&err);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"first line\n", addr).unwrap();
    crate::util::wait_until("the first line", || {
        tree_text(&logs).contains("first line").then_some(())
    });
    let filler = fs.fill();
    let pad = "q".repeat(100);
    let sent = 200;
    for i in 0..sent {
        s.send_to(format!("line {i:03} {pad}\n").as_bytes(), addr)
            .unwrap();
    }
    d.wait_stderr("retrying");
    // While the disk is full, nothing on it may end in the middle of a line.
    std::thread::sleep(Duration::from_millis(300));
    let during = tree_text(&logs);
    assert!(
        during.ends_with('\n'),
        "torn: {:?}",
        &during[during.len().saturating_sub(80)..]
    );
    std::fs::remove_file(&filler).unwrap();
    let text = crate::util::wait_until("writing resumed", || {
        let t = tree_text(&logs);
        t.contains("writing resumed").then_some(t)
    });
    let r = d.stop();
    assert_eq!(r.code, 0, "{}", r.dump());
    let mut got = 0;
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}"));
        if v["text"].as_str().is_some_and(|t| t.ends_with(&pad)) {
            got += 1;
        }
    }
    // Held in memory meanwhile: every line lands, whole.
    assert_eq!(got, sent, "{text}\n{}", r.dump());
}

// --- udplogger sequence arithmetic and line length (issue 18, defects 5 and 9)

/// `watchdog udplogger` on an ephemeral loopback port writing into
/// `DIR/logs` (UTC file names); returns it and its address.
fn start_udplogger(dir: &Dir, extra: &[&str]) -> (Daemon, std::net::SocketAddr) {
    crate::util::udplogger_on_loopback(dir, extra)
}

/// The day file(s) of `DIR/logs`, concatenated.
fn udplogger_log(dir: &Dir) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

/// Issue 18, defect 5: sequence arithmetic on sender data overflowed.
/// A record numbered u64::MAX after record 0 was taken as a gap of
/// 2^64 - 2 records; the next gap overflowed `missing_records`: a debug
/// build panicked, a release build's Prometheus counter went backwards.
/// Now a jump past `MAX_GAP` is a `reset`, and every counter saturates.
#[test]
fn issue18_defect5_sequence_arithmetic_on_sender_data_overflows() {
    let dir = Dir::new();
    let prom = dir.join("udplogger.prom");
    let (d, addr) = start_udplogger(&dir, &["--metrics", prom.to_str().unwrap()]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for dgram in [
        &b"6,0,1000,-;first\n"[..],
        b"6,18446744073709551615,2000,-;crafted: the largest sequence number\n",
        b"6,0,3000,-;sequence restarted\n",
        b"6,5,4000,-;after four missing\n",
    ] {
        s.send_to(dgram, addr).unwrap();
    }
    let run = d.stop().expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = crate::metrics::parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let src = s.local_addr().unwrap();
    assert_eq!(m["watchdog_udplogger_missing_records_total"], 4.0, "{text}");
    assert_eq!(
        m[&format!("watchdog_udplogger_sender_missing_records_total{{sender=\"{src}\"}}")],
        4.0,
        "{text}"
    );
    let log = udplogger_log(&dir);
    assert!(
        log.contains(&format!(
            "udplogger {src} reset: sequence jumped from 0 to 18446744073709551615, more than 16777216 records: taken as a restart, not as missing records last=0 seq=18446744073709551615\n"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "udplogger {src} gap: 4 records missing count=4 from=1 to=4\n"
        )),
        "{log}"
    );
}

/// Issue 18, defect 9: extended continuation records (`c` then `+`,
/// kernels before 5.10) were joined without regard to `max_line_bytes`:
/// one line came out at 660,044 bytes. Now the joined line is written in
/// `max_line_bytes` pieces, each followed by a `cut` marker; nothing is
/// lost.
#[test]
fn issue18_defect9_extended_continuation_records_ignore_max_line_bytes() {
    let dir = Dir::new();
    let cfg = dir.write("c.yaml", "udplogger:\n  max_line_bytes: 100\n");
    let (d, addr) = start_udplogger(&dir, &["--config", cfg.to_str().unwrap()]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = String::new();
    let piece = |i: usize| format!("{i:02}{}", "x".repeat(88));
    s.send_to(format!("4,1,1000,c;{}", piece(0)).as_bytes(), addr)
        .unwrap();
    sent.push_str(&piece(0));
    for i in 1..40 {
        let seq = 1 + i;
        s.send_to(format!("4,{seq},1000,+;{}", piece(i)).as_bytes(), addr)
            .unwrap();
        sent.push_str(&piece(i));
    }
    s.send_to(b"6,41,2000,-;the next record\n", addr).unwrap();
    d.stop().expect_code(0);
    let log = udplogger_log(&dir);
    let src = s.local_addr().unwrap().to_string();
    let texts: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(' ').map(|x| x.1))
        .filter_map(|l| l.strip_prefix(src.as_str()))
        .filter_map(|l| l.strip_prefix(' '))
        // The kernel's time before the text (`[    0.001000] `) is not
        // part of the line's text.
        .map(|l| l.split_once("] ").map_or(l, |x| x.1))
        .collect();
    assert!(texts.iter().all(|t| t.len() <= 100), "{log}");
    assert_eq!(texts.last(), Some(&"the next record"), "{log}");
    assert_eq!(texts[..texts.len() - 1].concat(), sent, "{log}");
    // 40 × 90 = 3600 bytes: 35 full pieces cut, the last 100 bytes whole.
    assert_eq!(
        log.matches(&format!(
            "udplogger {src} cut: record 1 cut at 100 bytes; it continues on the next line seq=1 kept=100\n"
        ))
        .count(),
        35,
        "{log}"
    );
}
