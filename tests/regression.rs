//! One test per defect fixed, named after it, with the input that broke it
//! (ripgrep's `tests/regression.rs` habit). Each failed before its fix.

use std::net::{SocketAddr, UdpSocket};

use crate::util::{Daemon, Dir};

/// `watchdog udplogger` on an ephemeral loopback port writing into
/// `DIR/logs` (UTC file names); returns it and its address.
fn start_udplogger(dir: &Dir, extra: &[&str]) -> (Daemon, SocketAddr) {
    let logs = dir.join("logs");
    let mut args = vec![
        "udplogger",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        logs.to_str().unwrap(),
        "--utc",
    ];
    args.extend_from_slice(extra);
    let mut d = Daemon::start(dir.path(), &args);
    let err = d.wait_stderr("writing to");
    let addr = err
        .lines()
        .find_map(|l| l.split("listening on ").nth(1))
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no listen address in {err}"))
        .parse()
        .unwrap();
    (d, addr)
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
