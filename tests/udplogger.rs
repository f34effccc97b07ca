//! `watchdog udplogger` over loopback: the real binary, real sockets, real
//! files. Every loop is bounded; nothing asserts on timing.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

use nix::sys::signal::Signal;

use crate::util::{wait_until, Daemon, Dir};

/// Starts the receiver on an ephemeral loopback port, writing into
/// `DIR/logs`; returns it and its address.
fn start(dir: &Dir, extra: &[&str]) -> (Daemon, std::net::SocketAddr) {
    crate::util::udplogger_on_loopback(dir, extra)
}

fn sender() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// All log files under `dir`, concatenated in name order.
fn logs(dir: &Path) -> String {
    crate::regression::tree_text(dir)
}

/// The text column of each line from `src`.
fn texts<'a>(log: &'a str, src: &str) -> Vec<&'a str> {
    log.lines()
        .filter_map(|l| l.split_once(' ').map(|x| x.1))
        .filter_map(|l| l.strip_prefix(src))
        .filter_map(|l| l.strip_prefix(' '))
        .collect()
}

#[test]
fn a_line_split_across_datagrams_and_many_lines_in_one() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &[]);
    let s = sender();
    for part in [
        &b"[   12.345678] sd 0:0:0:0: "[..],
        b"[sda] Synchronizing",
        b" SCSI cache\nsecond\r\nthird\n\nfifth\n",
    ] {
        s.send_to(part, addr).unwrap();
    }
    let r = d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let src = s.local_addr().unwrap().to_string();
    assert_eq!(
        texts(&log, &src),
        [
            "[   12.345678] sd 0:0:0:0: [sda] Synchronizing SCSI cache",
            "second",
            "third",
            "",
            "fifth"
        ],
        "{log}\n{}",
        r.dump()
    );
    // <RFC 3339 UTC with microseconds> <source> <text>
    let first = log.lines().next().unwrap();
    let stamp = first.split(' ').next().unwrap();
    assert_eq!(stamp.len(), "2026-01-01T00:00:00.000000Z".len(), "{first}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
        "{first}"
    );
}

#[test]
fn interleaved_senders_on_one_ip_keep_their_own_halves() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &[]);
    let a = sender();
    let b = sender();
    for i in 0..50 {
        a.send_to(format!("alpha {i} first half, ").as_bytes(), addr)
            .unwrap();
        b.send_to(format!("beta {i} first half, ").as_bytes(), addr)
            .unwrap();
        a.send_to(format!("alpha {i} second half\n").as_bytes(), addr)
            .unwrap();
        b.send_to(format!("beta {i} second half\n").as_bytes(), addr)
            .unwrap();
    }
    d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let ta = texts(&log, &a.local_addr().unwrap().to_string());
    let tb = texts(&log, &b.local_addr().unwrap().to_string());
    assert_eq!(ta.len(), 50, "{log}");
    assert_eq!(tb.len(), 50, "{log}");
    for i in 0..50 {
        assert_eq!(
            ta[i],
            format!("alpha {i} first half, alpha {i} second half")
        );
        assert_eq!(tb[i], format!("beta {i} first half, beta {i} second half"));
    }
}

#[test]
fn datagrams_over_1023_bytes_are_not_truncated() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &[]);
    let s = sender();
    let long = "x".repeat(8000);
    s.send_to(format!("{long}\n").as_bytes(), addr).unwrap();
    let many: String = (0..600)
        .map(|i| format!("line {i:04} {}\n", "y".repeat(90)))
        .collect();
    assert!(many.len() > 60_000);
    s.send_to(many.as_bytes(), addr).unwrap();
    d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let t = texts(&log, &s.local_addr().unwrap().to_string());
    assert_eq!(t.len(), 601);
    assert_eq!(t[0], long);
    assert_eq!(t[600], format!("line 0599 {}", "y".repeat(90)));
}

#[test]
fn over_long_line_is_cut_with_a_marker_and_binary_is_escaped() {
    let dir = Dir::new();
    let cfg = dir.write("c.yaml", "udplogger:\n  max_line_bytes: 100\n");
    let (d, addr) = start(&dir, &["--config", cfg.to_str().unwrap()]);
    let s = sender();
    s.send_to(format!("{}\n", "z".repeat(250)).as_bytes(), addr)
        .unwrap();
    s.send_to(b"bell\x07 invalid \xff\xfe end\n", addr).unwrap();
    d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let src = s.local_addr().unwrap().to_string();
    let t = texts(&log, &src);
    assert_eq!(t.len(), 4, "{log}");
    assert_eq!(t[3], "bell\\x07 invalid \\xff\\xfe end");
    assert_eq!(
        log.matches(&format!(
            "udplogger {src} cut: line cut at 100 bytes; it continues on the next line kept=100\n"
        ))
        .count(),
        2,
        "{log}"
    );
}

#[test]
fn partial_line_is_written_after_the_timeout() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &["--partial-timeout-ms", "200"]);
    let s = sender();
    s.send_to(b"Rebooting in 5 seconds..", addr).unwrap();
    let log = wait_until("the partial line on disk", || {
        let l = logs(&dir.join("logs"));
        l.contains("Rebooting in 5 seconds..").then_some(l)
    });
    assert!(log.ends_with("Rebooting in 5 seconds..\n"), "{log}");
    d.stop().expect_code(0);
}

#[test]
fn files_switch_at_midnight_without_a_restart() {
    // The receiver's wall clock is read from a file the test rewrites, so
    // midnight comes when the test says, with no sleeping.
    let dir = Dir::new();
    let now = dir.write("now", "2026-12-31T23:59:59.250Z");
    let (d, addr) = start(&dir, &["--fake-clock-file", now.to_str().unwrap()]);
    let s = sender();
    s.send_to(b"last line of the year\n", addr).unwrap();
    wait_until("the first line", || {
        logs(&dir.join("logs")).contains("last line").then_some(())
    });
    dir.write("now", "2027-01-01T00:00:00.125Z");
    s.send_to(b"first line of the year\n", addr).unwrap();
    let r = d.stop().expect_code(0);
    let old = std::fs::read_to_string(dir.join("logs/2026-12-31.log")).unwrap();
    let new = std::fs::read_to_string(dir.join("logs/2027-01-01.log"))
        .unwrap_or_else(|e| panic!("{e}\n{}", r.dump()));
    assert_eq!(
        old,
        format!(
            "2026-12-31T23:59:59.250000Z {} last line of the year\n",
            s.local_addr().unwrap()
        )
    );
    assert_eq!(
        new,
        format!(
            "2027-01-01T00:00:00.125000Z {} first line of the year\n",
            s.local_addr().unwrap()
        )
    );
}

#[test]
fn shifted_clock_starts_where_asked() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &["--fake-clock-start", "2030-06-01T12:00:00Z"]);
    let s = sender();
    s.send_to(b"from the future\n", addr).unwrap();
    d.stop().expect_code(0);
    let t = std::fs::read_to_string(dir.join("logs/2030-06-01.log")).unwrap();
    assert!(
        t.starts_with("2030-06-01T12:0") && t.ends_with(" from the future\n"),
        "{t}"
    );
}

#[test]
fn extended_records_fragments_gaps_and_reboots() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &[]);
    let s = sender();
    let body = format!("{}\n SUBSYSTEM=net\n DEVICE=+net:eth0", "w".repeat(1500));
    let total = body.len();
    let frags: Vec<String> = body
        .as_bytes()
        .chunks(900)
        .scan(0, |off, c| {
            let o = *off;
            *off += c.len();
            Some(format!(
                "6.1.0-18-amd64,4,101,5000000,-,ncfrag={o}/{total};{}",
                String::from_utf8_lossy(c)
            ))
        })
        .collect();
    s.send_to(b"6.1.0-18-amd64,6,100,4000000,-;first record\n", addr)
        .unwrap();
    for f in &frags {
        s.send_to(f.as_bytes(), addr).unwrap();
    }
    s.send_to(b"6.1.0-18-amd64,6,105,6000000,-;after a gap\n", addr)
        .unwrap();
    // A reboot takes a while: the sender is quiet for longer than the
    // reorder window waits, then numbering and time start again.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    s.send_to(
        b"6.1.0-18-amd64,6,0,1000,-;Linux version 6.1.0-18-amd64\n",
        addr,
    )
    .unwrap();
    d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let src = s.local_addr().unwrap().to_string();
    let t = texts(&log, &src);
    assert_eq!(
        t,
        [
            "[    4.000000] first record".to_string(),
            format!("[    5.000000] {}", "w".repeat(1500)),
            " SUBSYSTEM=net".into(),
            " DEVICE=+net:eth0".into(),
            "[    6.000000] after a gap".into(),
            "[    0.001000] Linux version 6.1.0-18-amd64".into()
        ],
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "udplogger {src} gap: 3 records missing count=3 from=102 to=104\n"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "udplogger {src} reset: sequence restarted at 0 after 105: the sender rebooted or reloaded netconsole last=105 seq=0\n"
        )),
        "{log}"
    );
}

#[test]
fn json_lines_keep_the_kernel_sequence() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &["--json", "--input", "extended"]);
    let s = sender();
    s.send_to(b"3,7,123456,-;disk \"sda\" failed\n", addr)
        .unwrap();
    d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let v: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(v["text"], "disk \"sda\" failed");
    assert_eq!(v["seq"], 7);
    assert_eq!(v["level"], 3);
    assert_eq!(v["source"], s.local_addr().unwrap().to_string());
}

#[test]
fn sighup_reopens_the_file_for_logrotate() {
    let dir = Dir::new();
    let (mut d, addr) = start(&dir, &["--hourly"]);
    let s = sender();
    s.send_to(b"before rotation\n", addr).unwrap();
    let file = wait_until("the first file", || {
        std::fs::read_dir(dir.join("logs"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("before rotation")))
    });
    let rotated = dir.join("rotated.log");
    std::fs::rename(&file, &rotated).unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_stderr("SIGHUP: reopening");
    s.send_to(b"after rotation\n", addr).unwrap();
    d.stop().expect_code(0);
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&file).unwrap();
    assert!(
        old.contains("before rotation") && !old.contains("after"),
        "{old}"
    );
    assert!(
        new.contains("after rotation") && !new.contains("before"),
        "{new}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn allowlist_drops_other_senders() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &["--allow", "127.0.0.2/32"]);
    let denied = sender();
    let allowed = UdpSocket::bind("127.0.0.2:0").unwrap();
    denied.send_to(b"not welcome\n", addr).unwrap();
    allowed.send_to(b"welcome\n", addr).unwrap();
    let r = d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    assert!(
        log.contains("welcome") && !log.contains("not welcome"),
        "{log}"
    );
    assert!(r.stderr.contains("1 denied"), "{}", r.dump());
}

#[test]
fn kernel_drops_are_counted_and_marked() {
    let dir = Dir::new();
    let (mut d, addr) = start(&dir, &["--receive-buffer", "4096"]);
    let s = sender();
    s.send_to(b"warm up\n", addr).unwrap();
    wait_until("the first line", || {
        logs(&dir.join("logs")).contains("warm up").then_some(())
    });
    // Stopped, the receiver cannot drain its small buffer: most of these
    // are dropped by the kernel, and the drop counter says how many.
    d.signal(Signal::SIGSTOP);
    for i in 0..200 {
        s.send_to(format!("burst {i}\n").as_bytes(), addr).unwrap();
    }
    d.signal(Signal::SIGCONT);
    let mut probes = 0;
    wait_until("the stopped receiver to run", || {
        probes += 1;
        s.send_to(b"probe\n", addr).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        logs(&dir.join("logs")).contains("probe").then_some(())
    });
    let _ = d.wait_stderr("listening");
    d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let got = log.matches(" burst ").count() + log.matches(" probe").count();
    let dropped: usize = log
        .lines()
        .filter_map(|l| l.split("the kernel dropped ").nth(1))
        .map(|r| r.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert!(dropped > 0, "{log}");
    assert_eq!(got + dropped, 200 + probes, "{log}");
}

#[test]
fn random_source_flood_stays_under_the_memory_cap() {
    let dir = Dir::new();
    let cfg = dir.write(
        "c.yaml",
        "udplogger:\n  max_senders: 50\n  max_buffered_bytes: 20000\n",
    );
    let (d, addr) = start(&dir, &["--config", cfg.to_str().unwrap()]);
    let n = 600;
    for i in 0..n {
        let ip = format!("127.0.{}.{}", 10 + i / 200, 1 + i % 200);
        let s = UdpSocket::bind((ip.as_str(), 0)).unwrap();
        // Unfinished lines only: every one must be buffered or flushed.
        s.send_to(format!("flood {i:04} {}", "f".repeat(400)).as_bytes(), addr)
            .unwrap();
    }
    // An RSS ceiling (earlyoom's habit): generous, as this is a debug build.
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(hwm_kb < 64 * 1024, "VmHWM {hwm_kb} kB");
    let r = d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    assert_eq!(log.matches(" flood ").count(), n, "{}", r.dump());
    let peak: usize = r
        .stderr
        .split("peak buffered ")
        .nth(1)
        .and_then(|x| x.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.dump()));
    assert!(peak <= 20000, "{}", r.dump());
    // max_senders bounds the table; so does the memory cap, which counts
    // what each sender costs besides its unfinished line.
    let peak_senders: usize = r
        .stderr
        .split("(peak ")
        .nth(1)
        .and_then(|x| x.split(')').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.dump()));
    assert!((10..=50).contains(&peak_senders), "{}", r.dump());
}

#[test]
fn disk_full_keeps_receiving_and_says_what_was_dropped() {
    let dir = Dir::new();
    let mnt = dir.join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped disk_full_keeps_receiving_and_says_what_was_dropped: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    // Fill the tmpfs, leaving no room for a log line.
    let filler = mnt.join("filler");
    let _ = std::fs::write(&filler, vec![b'F'; 64 * 1024]);
    let cfg = dir.write(
        "c.yaml",
        "udplogger:\n  fault_hold_bytes: 4096\n  retry_max_ms: 200\n",
    );
    let logs_dir = mnt.join("logs");
    let mut d = Daemon::start(
        dir.path(),
        &[
            "udplogger",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            logs_dir.to_str().unwrap(),
            "--utc",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let err = d.wait_stderr("writing to");
    let addr = crate::util::listen_addr(&err);
    let s = sender();
    let sent = 300;
    let line = |i: usize| format!("line {i:03} written while the disk is full\n");
    s.send_to(line(0).as_bytes(), addr).unwrap();
    d.wait_stderr("retrying");
    for i in 1..sent {
        s.send_to(line(i).as_bytes(), addr).unwrap();
    }
    std::fs::remove_file(&filler).unwrap();
    let log = wait_until("the recovery marker", || {
        let l = logs(&logs_dir);
        l.contains("write_failed: writing resumed").then_some(l)
    });
    let r = d.stop().expect_code(0);
    let on_disk = log.matches(" written while the disk is full").count();
    let dropped: usize = log
        .split("writing resumed: ")
        .nth(1)
        .and_then(|x| x.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    assert!(dropped > 0, "{log}");
    assert_eq!(on_disk + dropped, sent, "{log}\n{}", r.dump());
    assert!(log.contains("No space left on device"), "{log}");
}

#[test]
fn bad_listen_address_is_a_config_error_with_its_path() {
    let r = Dir::new()
        .run(&["udplogger", "--listen", "nowhere:66", "--dir", "x"])
        .expect_code(3);
    assert!(r.stderr.contains("udplogger.listen[0]"), "{}", r.dump());
}

#[test]
fn a_vanished_directory_is_created_again() {
    let dir = Dir::new();
    let (mut d, addr) = start(&dir, &[]);
    let s = sender();
    s.send_to(b"before\n", addr).unwrap();
    wait_until("the first line", || {
        logs(&dir.join("logs")).contains("before").then_some(())
    });
    std::fs::remove_dir_all(dir.join("logs")).unwrap();
    s.send_to(b"after\n", addr).unwrap();
    d.wait_stderr("creating it again");
    let r = d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    assert!(
        log.contains(" after\n") && !log.contains("before"),
        "{log}\n{}",
        r.dump()
    );
}

#[test]
fn ipv6_and_ipv4_listeners_name_sources_by_address_and_port() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!(
            "skipped ipv6_and_ipv4_listeners_name_sources_by_address_and_port: no IPv6 loopback"
        );
        return;
    }
    let dir = Dir::new();
    let logs_dir = dir.join("logs");
    let mut d = Daemon::start(
        dir.path(),
        &[
            "udplogger",
            "--listen",
            "[::1]:0",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            logs_dir.to_str().unwrap(),
            "--per-sender",
        ],
    );
    let err = d.wait_stderr("writing to");
    let listen: Vec<SocketAddr> = err
        .lines()
        .filter_map(|l| l.split("listening on ").nth(1))
        .filter_map(|r| r.split(',').next()?.parse().ok())
        .collect();
    assert_eq!(listen.len(), 2, "{err}");
    let v6 = UdpSocket::bind("[::1]:0").unwrap();
    let v4 = sender();
    v6.send_to(b"over ipv6\n", listen[0]).unwrap();
    v4.send_to(b"over ipv4\n", listen[1]).unwrap();
    let r = d.stop().expect_code(0);
    let src6 = format!("[::1]:{}", v6.local_addr().unwrap().port());
    let src4 = v4.local_addr().unwrap().to_string();
    let six = logs(&logs_dir.join(&src6));
    let four = logs(&logs_dir.join(&src4));
    assert!(
        six.contains(&format!(" {src6} over ipv6")),
        "{six}\n{}",
        r.dump()
    );
    assert!(
        four.contains(&format!(" {src4} over ipv4")),
        "{four}\n{}",
        r.dump()
    );
}

#[test]
fn dual_stack_socket_takes_ipv4_and_ipv6_in_a_private_network_namespace() {
    // `[::]` binds every address, so this runs only inside a network
    // namespace of its own (root, `unshare`, `ip`); skipped otherwise.
    let dir = Dir::new();
    let logs_dir = dir.join("logs");
    let script = format!(
        "ip link set lo up && exec {} udplogger --listen [::]:6666 --dir {} --utc",
        crate::util::bin(),
        logs_dir.display()
    );
    let usable = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("skipped dual_stack_socket_takes_ipv4_and_ipv6_in_a_private_network_namespace: cannot create a network namespace (needs root, unshare and ip)");
        return;
    }
    let mut d = Daemon::start_program(dir.path(), "unshare", &["-n", "sh", "-c", &script]);
    let err = d.wait_stderr("writing to");
    assert!(err.contains("listening on [::]:6666"), "{err}");
    let ns = format!("/proc/{}/ns/net", d.pid());
    // Senders live in the receiver's namespace: a thread joins it.
    let sources = std::thread::spawn(move || {
        let f = std::fs::File::open(ns).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let v6 = UdpSocket::bind("[::1]:0").unwrap();
        v4.send_to(b"ipv4 to a dual-stack socket\n", "127.0.0.1:6666")
            .unwrap();
        v6.send_to(b"ipv6 to a dual-stack socket\n", "[::1]:6666")
            .unwrap();
        (v4.local_addr().unwrap(), v6.local_addr().unwrap())
    })
    .join()
    .unwrap();
    let r = d.stop().expect_code(0);
    let log = logs(&logs_dir);
    assert!(
        log.contains(&format!(" {} ipv4 to a dual-stack socket\n", sources.0)),
        "{log}\n{}",
        r.dump()
    );
    assert!(
        log.contains(&format!(" {} ipv6 to a dual-stack socket\n", sources.1)),
        "{log}\n{}",
        r.dump()
    );
}

/// netconsd keyed senders by IP alone: twenty senders on one address
/// corrupted each other's sequence state. Here each address:port has its
/// own, so interleaved extended senders show no false gaps.
#[test]
fn twenty_extended_senders_on_one_ip_keep_their_own_sequences() {
    let dir = Dir::new();
    let (d, addr) = start(&dir, &[]);
    let senders: Vec<UdpSocket> = (0..20).map(|_| sender()).collect();
    for seq in 0..50 {
        for (i, s) in senders.iter().enumerate() {
            s.send_to(
                format!("6,{seq},{seq}000,-;sender {i} record {seq}\n").as_bytes(),
                addr,
            )
            .unwrap();
        }
    }
    let r = d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    assert!(
        !log.contains(" gap: ") && !log.contains(" reset: "),
        "{log}"
    );
    assert!(r.stderr.contains(" 0 gaps"), "{}", r.dump());
    for (i, s) in senders.iter().enumerate() {
        let t = texts(&log, &s.local_addr().unwrap().to_string());
        let want: Vec<String> = (0..50)
            .map(|q| format!("[    0.{:06}] sender {i} record {q}", q * 1000))
            .collect();
        assert_eq!(t, want);
    }
}

#[test]
fn runs_unprivileged_and_says_which_buffer_took_effect() {
    let setpriv = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !setpriv {
        eprintln!(
            "skipped runs_unprivileged_and_says_which_buffer_took_effect: needs root and setpriv"
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let logs_dir = dir.join("logs");
    std::fs::create_dir(&logs_dir).unwrap();
    nix::unistd::chown(&logs_dir, Some(65534.into()), Some(65534.into())).unwrap();
    let mut args = vec![
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        crate::util::bin(),
    ];
    args.extend([
        "udplogger",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        logs_dir.to_str().unwrap(),
    ]);
    // A buffer above net.core.rmem_max, which only CAP_NET_ADMIN may pass.
    args.extend(["--receive-buffer", "1073741824"]);
    let mut d = Daemon::start_program(dir.path(), "setpriv", &args);
    let err = d.wait_stderr("writing to");
    assert!(err.contains("(SO_RCVBUF"), "{err}");
    assert!(!err.contains("SO_RCVBUFFORCE)"), "{err}");
    let addr = crate::util::listen_addr(&err);
    sender()
        .send_to(b"from an unprivileged receiver\n", addr)
        .unwrap();
    let r = d.stop().expect_code(0);
    assert!(
        logs(&logs_dir).contains(" from an unprivileged receiver\n"),
        "{}",
        r.dump()
    );
}

#[test]
fn an_unwritable_directory_is_reported_at_start_and_receiving_goes_on() {
    let dir = Dir::new();
    dir.write("logs", "a file where the directory should be");
    let (d, addr) = start(&dir, &[]);
    sender().send_to(b"kept in memory\n", addr).unwrap();
    let r = d.stop().expect_code(0);
    assert!(
        r.stderr.contains("lines will be held in memory"),
        "{}",
        r.dump()
    );
    let unwritten: usize = r
        .stderr
        .rsplit(" bytes unwritten")
        .nth(1)
        .and_then(|x| x.rsplit(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.dump()));
    assert!(unwritten > 0, "{}", r.dump());
}

#[test]
fn per_sender_files_stay_under_a_low_open_file_limit() {
    let prlimit = std::process::Command::new("prlimit")
        .args(["--nofile=40", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !prlimit {
        eprintln!("skipped per_sender_files_stay_under_a_low_open_file_limit: no prlimit");
        return;
    }
    let dir = Dir::new();
    let logs_dir = dir.join("logs");
    let args = [
        "--nofile=40",
        crate::util::bin(),
        "udplogger",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        logs_dir.to_str().unwrap(),
        "--per-sender",
    ];
    let mut d = Daemon::start_program(dir.path(), "prlimit", &args);
    let err = d.wait_stderr("writing to");
    let addr = crate::util::listen_addr(&err);
    let senders: Vec<UdpSocket> = (0..100).map(|_| sender()).collect();
    for round in 0..3 {
        for (i, s) in senders.iter().enumerate() {
            s.send_to(format!("sender {i} round {round}\n").as_bytes(), addr)
                .unwrap();
        }
        // Each round is on disk before the next: files are reopened.
        wait_until("the round on disk", || {
            (logs(&logs_dir)
                .matches(&format!(" round {round}\n"))
                .count()
                == 100)
                .then_some(())
        });
    }
    let r = d.stop().expect_code(0);
    assert!(!r.stderr.contains("Too many open files"), "{}", r.dump());
    assert_eq!(logs(&logs_dir).lines().count(), 300, "{}", r.dump());
}

#[test]
fn metrics_count_lines_and_missing_records_per_sender() {
    let dir = Dir::new();
    let prom = dir.join("metrics/udplogger.prom");
    let (d, addr) = start(&dir, &["--metrics", prom.to_str().unwrap()]);
    let plain = sender();
    plain.send_to(b"one\ntwo\nthree\n", addr).unwrap();
    let ext = sender();
    ext.send_to(b"6,10,1000,-;first\n", addr).unwrap();
    ext.send_to(b"6,14,2000,-;after three missing\n", addr)
        .unwrap();
    d.stop().expect_code(0);
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = crate::metrics::parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let p = plain.local_addr().unwrap();
    let e = ext.local_addr().unwrap();
    assert_eq!(
        m[&format!("watchdog_udplogger_sender_lines_total{{sender=\"{p}\"}}")],
        3.0,
        "{text}"
    );
    assert_eq!(
        m[&format!("watchdog_udplogger_sender_lines_total{{sender=\"{e}\"}}")],
        2.0,
        "{text}"
    );
    assert_eq!(
        m[&format!("watchdog_udplogger_sender_missing_records_total{{sender=\"{e}\"}}")],
        3.0
    );
    assert_eq!(m["watchdog_udplogger_datagrams_total"], 3.0);
    assert_eq!(m["watchdog_udplogger_lines_total"], 5.0);
    assert_eq!(m["watchdog_udplogger_missing_records_total"], 3.0);
    assert_eq!(m["watchdog_udplogger_kernel_drops_total"], 0.0);
}

#[test]
fn scan_reads_the_counts_udplogger_wrote_from_marker_fields() {
    // One vocabulary: what udplogger writes (text form, then JSON form),
    // scan reads back as `lost` events with the markers' counts, and as
    // kernel events.
    let dir = Dir::new();
    let (d, addr) = start(&dir, &[]);
    let s = sender();
    for dgram in [
        &b"6,100,5000000000,-;first\n"[..],
        b"6,104,5001000000,-;after three missing\n",
        b"",
        b"6,3,3000000,-;rebooted\n",
        b"6,10,4000000,-;after six missing\n",
    ] {
        if dgram.is_empty() {
            // The reboot: quiet for longer than the reorder window waits.
            std::thread::sleep(std::time::Duration::from_millis(1200));
            continue;
        }
        s.send_to(dgram, addr).unwrap();
    }
    d.stop().expect_code(0);
    let src = s.local_addr().unwrap().to_string();
    let log = logs(&dir.join("logs"));
    assert!(
        log.contains(&format!(
            "udplogger {src} gap: 3 records missing count=3 from=101 to=103\n"
        )),
        "{log}"
    );
    dir.write("day.log", &log);
    let r = dir.run(&["scan", "day.log"]).expect_code(0);
    let lost: Vec<(String, u64)> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "lost")
        .map(|v| {
            (
                v["host"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lost, [(src.clone(), 3), (src, 6)], "{}", r.dump());

    let dir = Dir::new();
    let (d, addr) = start(&dir, &["--json"]);
    s.send_to(b"6,100,1000,-;first\n", addr).unwrap();
    s.send_to(
        b"3,104,2000,-;INFO: task fsfreeze:412 blocked for more than 2 seconds.\n",
        addr,
    )
    .unwrap();
    d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    dir.write("day.json", &log);
    let r = dir.run(&["scan", "day.json"]).expect_code(0);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let src = s.local_addr().unwrap().to_string();
    assert_eq!(
        events
            .iter()
            .map(|v| (v["kind"].as_str().unwrap(), v["host"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("lost", src.as_str()), ("hung_task", src.as_str())],
        "{}",
        r.dump()
    );
    assert_eq!(
        (
            events[0]["count"].as_u64(),
            events[1]["kernel_time"].as_f64()
        ),
        (Some(3), Some(0.002)),
        "{}",
        r.dump()
    );
    let marker: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["source"] == "udplogger")
        .unwrap_or_else(|| panic!("no marker in {log}"));
    assert_eq!(
        (
            marker["marker"].as_str(),
            marker["about"].as_str(),
            marker["count"].as_u64(),
            marker["from"].as_u64(),
            marker["to"].as_u64()
        ),
        (
            Some("gap"),
            Some(s.local_addr().unwrap().to_string().as_str()),
            Some(3),
            Some(101),
            Some(103)
        ),
        "{log}"
    );
}

/// The kernel lines at the end of a real 6.12 serial capture: a memcg OOM
/// kill, `sysrq: Trigger a crash` and the panic with its stack
/// (tests/fixtures/kernel-logs/real-6.12-serial-console.log), as
/// `(kernel time in µs, text)`; shell output between them left out.
fn real_panic_tail() -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(crate::util::fixture(
        "kernel-logs/real-6.12-serial-console.log",
    ))
    .unwrap();
    let lines: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (ts, text) = rest.split_once("] ")?;
            let (s, us) = ts.trim().split_once('.')?;
            let us = s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?;
            Some((us, text.to_string()))
        })
        .collect();
    lines[lines.len() - 260..].to_vec()
}

/// Events of one kind from an event log.
fn events_of(path: &Path, kind: &str) -> Vec<serde_json::Value> {
    crate::util::json_lines(path)
        .into_iter()
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[test]
fn a_panic_from_a_plain_and_an_extended_sender_is_one_event_each_with_last_words() {
    let dir = Dir::new();
    let hosts = dir.write(
        "hosts",
        "127.0.0.2 web-plain\n127.0.0.3 db-ext # extended\n",
    );
    let events = dir.join("events.jsonl");
    let (d, addr) = start(
        &dir,
        &[
            "--hosts-file",
            hosts.to_str().unwrap(),
            "--event-log",
            events.to_str().unwrap(),
        ],
    );
    let plain = UdpSocket::bind("127.0.0.2:0").unwrap();
    let ext = UdpSocket::bind("127.0.0.3:0").unwrap();
    let tail = real_panic_tail();
    // The plain sender: console text with printk.time, ~10 lines a datagram.
    for chunk in tail.chunks(10) {
        let text: String = chunk
            .iter()
            .map(|(us, t)| format!("[{:5}.{:06}] {t}\n", us / 1_000_000, us % 1_000_000))
            .collect();
        plain.send_to(text.as_bytes(), addr).unwrap();
    }
    // The extended sender: one record a datagram.
    for (i, (us, t)) in tail.iter().enumerate() {
        let level = if t.starts_with("Kernel panic") { 0 } else { 6 };
        ext.send_to(
            format!("{level},{},{us},-;{t}\n", 5000 + i).as_bytes(),
            addr,
        )
        .unwrap();
    }
    let r = d.stop().expect_code(0);
    let panics = events_of(&events, "panic");
    let hosts: Vec<&str> = panics.iter().map(|v| v["host"].as_str().unwrap()).collect();
    assert_eq!(hosts.len(), 2, "{panics:?}\n{}", r.dump());
    assert!(
        hosts.contains(&"web-plain") && hosts.contains(&"db-ext"),
        "{hosts:?}"
    );
    for p in &panics {
        assert_eq!(p["source"], "netconsole");
        assert_eq!(
            p["summary"], "Kernel panic - not syncing: sysrq triggered crash",
            "{p}"
        );
        assert_eq!(p["kernel_time"].as_f64(), Some(12.487423), "{p}");
        let file = p["last_words"].as_str().unwrap_or_else(|| panic!("{p}"));
        let words = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = words.lines().collect();
        // The lines before the panic (200 by default), the panic, and the
        // report after it.
        let at = lines
            .iter()
            .position(|l| l.contains("Kernel panic - not syncing"))
            .unwrap_or_else(|| panic!("{words}"));
        assert_eq!(at, 199, "{words}");
        assert!(
            lines[at - 1].ends_with("] sysrq: Trigger a crash"),
            "{words}"
        );
        assert!(
            lines[..at]
                .iter()
                .any(|l| l.contains("Memory cgroup out of memory: Killed process 151 (hog)")),
            "{words}"
        );
        assert!(lines.last().unwrap().contains("Kernel Offset:"), "{words}");
        assert!(lines.iter().all(|l| l.starts_with('[')), "{words}");
    }
    // The other events of the report (a global and a memcg OOM kill, the
    // SysRq), once per sender.
    for (kind, n) in [("oom_kill", 4), ("sysrq", 2)] {
        let got = events_of(&events, kind).len();
        assert_eq!(
            got,
            n,
            "{kind}: {}",
            std::fs::read_to_string(&events).unwrap()
        );
    }
}

#[test]
fn per_sender_directories_take_the_name_and_lines_keep_the_address() {
    let dir = Dir::new();
    let hosts = dir.write("hosts", "127.0.0.2 web1\n");
    let metrics = dir.join("u.prom");
    let (d, addr) = start(
        &dir,
        &[
            "--per-sender",
            "--hosts-file",
            hosts.to_str().unwrap(),
            "--metrics",
            metrics.to_str().unwrap(),
        ],
    );
    let named = UdpSocket::bind("127.0.0.2:0").unwrap();
    let hinted = sender();
    named
        .send_to(b"[   12.000001] sysrq: Show Memory\n", addr)
        .unwrap();
    // netconsole userdata (configfs, 6.9+): a dictionary line on every
    // record names the sender.
    hinted
        .send_to(b"6,1,2000000,-;sysrq: Show State\n hostname=db7\n", addr)
        .unwrap();
    d.stop().expect_code(0);
    let src = named.local_addr().unwrap().to_string();
    let web1 = logs(&dir.join("logs/web1"));
    assert!(
        web1.ends_with(&format!(" {src} [   12.000001] sysrq: Show Memory\n")),
        "{web1}"
    );
    let db7 = logs(&dir.join("logs/db7"));
    let src = hinted.local_addr().unwrap().to_string();
    assert!(
        db7.contains(&format!(" {src} [    2.000000] sysrq: Show State\n")),
        "{db7}"
    );
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("watchdog_udplogger_events_total{host=\"web1\",kind=\"sysrq\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("watchdog_udplogger_events_total{host=\"db7\",kind=\"sysrq\"} 1"),
        "{m}"
    );
}

/// Sends a mixed load (10 plain and 10 extended senders, lines cut
/// across datagrams, records reordered in pairs, some duplicated) and
/// returns each sender's text column, by sender index.
fn mixed_load(extra: &[&str]) -> (Vec<Vec<String>>, String) {
    let dir = Dir::new();
    let (d, addr) = start(&dir, extra);
    let senders: Vec<UdpSocket> = (0..20).map(|_| sender()).collect();
    let n = 200u64;
    for round in 0..n / 2 {
        for (i, s) in senders.iter().enumerate() {
            if i % 2 == 0 {
                // Plain: two lines, the second cut across two datagrams.
                let a = format!("plain {i} line {}\nplain {i} li", 2 * round);
                let b = format!("ne {}\n", 2 * round + 1);
                s.send_to(a.as_bytes(), addr).unwrap();
                s.send_to(b.as_bytes(), addr).unwrap();
            } else {
                // Extended: the pair's second record first, the first twice.
                let q = 2 * round;
                let rec = |q: u64| format!("6,{q},{q}000,-;ext {i} record {q}\n");
                s.send_to(rec(q + 1).as_bytes(), addr).unwrap();
                s.send_to(rec(q).as_bytes(), addr).unwrap();
                s.send_to(rec(q).as_bytes(), addr).unwrap();
            }
        }
    }
    let r = d.stop().expect_code(0);
    let log = logs(&dir.join("logs"));
    let per: Vec<Vec<String>> = senders
        .iter()
        .map(|s| {
            texts(&log, &s.local_addr().unwrap().to_string())
                .into_iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert!(!log.contains(" udplogger "), "markers: {log}");
    (per, r.stderr)
}

#[test]
fn two_workers_write_the_same_lines_as_one() {
    let (one, _) = mixed_load(&["--workers", "1"]);
    let (two, err) = mixed_load(&["--workers", "2"]);
    assert!(err.contains("2 workers"), "{err}");
    assert!(err.contains(" 1000 duplicates"), "{err}");
    for (i, lines) in one.iter().enumerate() {
        let want: Vec<String> = (0..200u64)
            .map(|q| {
                if i % 2 == 0 {
                    format!("plain {i} line {q}")
                } else {
                    format!(
                        "[    {}.{:06}] ext {i} record {q}",
                        q / 1000,
                        (q % 1000) * 1000
                    )
                }
            })
            .collect();
        assert_eq!(lines, &want, "sender {i}, one worker");
        assert_eq!(&two[i], &want, "sender {i}, two workers");
    }
}

#[test]
fn workers_and_hosts_are_checked_with_their_paths() {
    let dir = Dir::new();
    let r = dir
        .run(&["udplogger", "--workers", "many", "--dir", "x"])
        .expect_code(3);
    assert!(r.stderr.contains("udplogger.workers"), "{}", r.dump());
    let hosts = dir.write("hosts", "127.0.0.1 ok\nwhat name\n");
    let r = dir
        .run(&[
            "udplogger",
            "--hosts-file",
            hosts.to_str().unwrap(),
            "--dir",
            "x",
        ])
        .expect_code(3);
    assert!(
        r.stderr.contains("udplogger.hosts_file") && r.stderr.contains("hosts:2:"),
        "{}",
        r.dump()
    );
}

/// Plain datagrams cut anywhere (every line and most words split across
/// two datagrams) yield the same events as whole lines: detection's
/// per-datagram search for ordinary text never covers a line that began
/// in an earlier datagram.
#[test]
fn a_panic_report_cut_at_every_37_bytes_gives_the_same_events() {
    let dir = Dir::new();
    let events = dir.join("events.jsonl");
    let (d, addr) = start(&dir, &["--event-log", events.to_str().unwrap()]);
    let s = sender();
    let text: String = real_panic_tail()
        .iter()
        .map(|(us, t)| format!("[{:5}.{:06}] {t}\n", us / 1_000_000, us % 1_000_000))
        .collect();
    for piece in text.as_bytes().chunks(37) {
        s.send_to(piece, addr).unwrap();
    }
    let r = d.stop().expect_code(0);
    let kinds: Vec<String> = crate::util::json_lines(&events)
        .iter()
        .map(|v| v["kind"].to_string())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| x.trim_matches('"') == k).count();
    assert_eq!(
        (count("panic"), count("oom_kill"), count("sysrq")),
        (1, 2, 1),
        "{kinds:?}\n{}",
        r.dump()
    );
    let panic = &events_of(&events, "panic")[0];
    assert_eq!(
        panic["summary"], "Kernel panic - not syncing: sysrq triggered crash",
        "{panic}"
    );
}
