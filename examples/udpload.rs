//! Load generator and loss checker for `watchdog udplogger` benchmarks.
//!
//! ```text
//! udpload send --target 127.0.0.1:6666 --senders 20 --lines 5000 [--rate N] [--seconds S]
//!              [--per-datagram 10] [--line-len 90] [--split BYTES] [--extended] [--batch 16] --tag T
//! udpload check --tag T --senders 20 --lines 5000 FILE...
//! udpload sink --listen 127.0.0.1:6666 --seconds S
//! udpload replay --workers N --senders 20 --lines 50000 [--extended] [--staged] --dir D
//! ```
//!
//! `send` writes numbered lines `loadgen T s=SS n=NNNNNNN xxx...END` from
//! `--senders` sockets (each its own port), round-robin, `--per-datagram`
//! lines per datagram (or, with `--split`, the stream cut every BYTES
//! bytes, so lines straddle datagrams). With `--rate`, lines per second
//! over all senders; with `--seconds`, the run ends after that long even
//! if lines remain. Only loopback targets are accepted. Every loop is
//! bounded by the line count. Datagrams go out `--batch` at a time per
//! sender with `sendmmsg(2)` (one system call), so that on a small machine
//! the generator is not what limits the rate; it prints the rate it
//! achieved (`RATE`), which is what a benchmark must report.
//!
//! `check` counts the distinct lines found intact in the files (any
//! format: one per line, or joined as rsyslog does) and reports the loss.
//!
//! `sink` is the floor: udplogger's receive loop with nothing behind it
//! (`watchdog::floor`: the same socket, `poll`, `recvmmsg` batches and
//! pause), for `--seconds`; it prints `DATAGRAMS n BYTES b LINES l` (`l`:
//! newlines, the lines of plain text). Its CPU is what the kernel's
//! socket interface costs any receiver that reads this way, before it
//! does anything with a datagram.
//!
//! `replay` is udplogger's workers without sockets
//! (`watchdog::replay`): `--workers` threads, each with its own receiver
//! and `--senders` senders of `--lines` lines (one extended record per
//! datagram, or eight plain lines), fed in batches of 64 as `recvmmsg`
//! hands them over, through the one-worker path (the shared lock held per
//! batch) or `--staged` (parsed without the lock, handed over per batch),
//! writing under `--dir`. It prints `LINES n WALL s CPU s`: how parsing
//! scales with the workers, without the socket's cost or a sender on the
//! same cores.

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| die(&format!("{name}: bad or missing value"))),
        None => default.unwrap_or_else(|| die(&format!("{name} is required"))),
    }
}

fn die(msg: &str) -> ! {
    eprintln!("udpload: {msg}");
    std::process::exit(2)
}

/// First word of every line. Not `udpload`: its first three bytes are
/// those of the prefilter word `udplogger`, which made every benchmark
/// line a candidate match for detection's search, unlike kernel text.
const HEAD: &str = "loadgen";

fn line(tag: &str, s: usize, n: usize, len: usize) -> String {
    let head = format!("{HEAD} {tag} s={s:02} n={n:07} ");
    let pad = len.saturating_sub(head.len() + 3).max(1);
    format!("{head}{}END", "x".repeat(pad))
}

/// Sends `dgrams` on the connected `sock` with `sendmmsg(2)`, as many per
/// system call as the kernel takes, so that the generator (not the
/// receiver) is not the limit. Returns the datagrams that failed.
fn send_all(sock: &UdpSocket, dgrams: &[Vec<u8>]) -> usize {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let mut errors = 0;
    let mut at = 0;
    while at < dgrams.len() {
        let rest = &dgrams[at..];
        let iovs: Vec<[IoSlice<'_>; 1]> = rest.iter().map(|d| [IoSlice::new(d)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = vec![None; rest.len()];
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(rest.len(), None);
        match sendmmsg(
            sock.as_raw_fd(),
            &mut headers,
            &iovs,
            &addrs,
            [],
            MsgFlags::empty(),
        ) {
            Ok(r) => at += r.count().max(1),
            Err(nix::Error::EINTR) => {}
            // ECONNREFUSED (no receiver yet) and the like: count, go on.
            Err(_) => {
                errors += 1;
                at += 1;
            }
        }
    }
    errors
}

fn send(args: &[String]) {
    let target: SocketAddr = arg(args, "--target", None);
    if !target.ip().is_loopback() {
        die("only loopback targets (127.0.0.0/8, ::1) are allowed");
    }
    let senders: usize = arg(args, "--senders", Some(20));
    let lines: usize = arg(args, "--lines", Some(5000));
    let rate: f64 = arg(args, "--rate", Some(0.0));
    let seconds: f64 = arg(args, "--seconds", Some(0.0));
    let per: usize = arg(args, "--per-datagram", Some(10));
    let len: usize = arg(args, "--line-len", Some(90));
    let split: usize = arg(args, "--split", Some(0));
    // Datagrams per sendmmsg call (and per sender per round).
    let batch: usize = arg(args, "--batch", Some(16));
    let extended = args.iter().any(|a| a == "--extended");
    let tag: String = arg(args, "--tag", Some("run".to_string()));
    let bind = if target.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socks: Vec<UdpSocket> = (0..senders)
        .map(|_| {
            let s = UdpSocket::bind(bind).unwrap_or_else(|e| die(&format!("bind: {e}")));
            s.connect(target)
                .unwrap_or_else(|e| die(&format!("connect: {e}")));
            s
        })
        .collect();
    let mut next = vec![0usize; senders];
    let mut carry: Vec<Vec<u8>> = vec![Vec::new(); senders];
    let start = Instant::now();
    let (mut sent_lines, mut datagrams, mut errors) = (0usize, 0usize, 0usize);
    let mut dgrams: Vec<Vec<u8>> = Vec::with_capacity(batch);
    'outer: loop {
        let mut any = false;
        for (s, sock) in socks.iter().enumerate() {
            if next[s] >= lines {
                continue;
            }
            any = true;
            dgrams.clear();
            let mut k_total = 0;
            while dgrams.len() < batch.max(1) && next[s] < lines {
                let k = per.min(lines - next[s]);
                if extended {
                    // One record per datagram, as the kernel sends them.
                    for _ in 0..k {
                        let n = next[s];
                        let rec = format!("6,{n},{},-;{}\n", n * 10, line(&tag, s, n, len));
                        dgrams.push(rec.into_bytes());
                        next[s] += 1;
                    }
                } else {
                    let mut buf = Vec::with_capacity(per * (len + 1));
                    for _ in 0..k {
                        buf.extend_from_slice(line(&tag, s, next[s], len).as_bytes());
                        buf.push(b'\n');
                        next[s] += 1;
                    }
                    if split > 0 {
                        carry[s].extend_from_slice(&buf);
                        let last = next[s] >= lines;
                        while carry[s].len() >= split || (last && !carry[s].is_empty()) {
                            let n = split.min(carry[s].len());
                            dgrams.push(carry[s][..n].to_vec());
                            carry[s].drain(..n);
                        }
                    } else {
                        dgrams.push(buf);
                    }
                }
                k_total += k;
            }
            errors += send_all(sock, &dgrams);
            datagrams += dgrams.len();
            sent_lines += k_total;
            if rate > 0.0 {
                let due = Duration::from_secs_f64(sent_lines as f64 / rate);
                let el = start.elapsed();
                if due > el + Duration::from_millis(1) {
                    std::thread::sleep(due - el);
                }
            }
            if seconds > 0.0 && start.elapsed().as_secs_f64() >= seconds {
                break 'outer;
            }
        }
        if !any {
            break;
        }
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "sent {sent_lines} lines in {datagrams} datagrams from {senders} senders in {el:.3} s ({:.0} lines/s), {errors} send errors",
        sent_lines as f64 / el
    );
    // Machine-readable last lines for the benchmark scripts: what was
    // sent, and the rate achieved (not the rate asked for).
    println!("RATE {:.0}", sent_lines as f64 / el);
    println!("SENT {sent_lines}");
}

fn check(args: &[String]) {
    let tag: String = arg(args, "--tag", None);
    let len: usize = arg(args, "--line-len", Some(90));
    let files: Vec<&String> = {
        let mut v = Vec::new();
        let mut skip = false;
        for a in args {
            if skip {
                skip = false;
                continue;
            }
            if a.starts_with("--") {
                skip = true;
                continue;
            }
            v.push(a);
        }
        v
    };
    let needle = format!("{HEAD} {tag} s=");
    let mut found: HashSet<(usize, usize)> = HashSet::new();
    let mut corrupt = 0usize;
    for f in files {
        let data = std::fs::read(f).unwrap_or_default();
        let mut at = 0;
        while let Some(i) = memchr::memmem::find(&data[at..], needle.as_bytes()) {
            let p = at + i;
            at = p + needle.len();
            let ok = (|| {
                let rest = data.get(p..p + len)?;
                let text = std::str::from_utf8(rest).ok()?;
                let mut it = text[needle.len()..].split(' ');
                let s: usize = it.next()?.parse().ok()?;
                let n: usize = it.next()?.strip_prefix("n=")?.parse().ok()?;
                (text == line(&tag, s, n, len)).then_some((s, n))
            })();
            match ok {
                Some(k) => {
                    found.insert(k);
                }
                None => corrupt += 1,
            }
        }
    }
    println!("FOUND {} CORRUPT {corrupt}", found.len());
}

fn sink(args: &[String]) {
    let listen: std::net::SocketAddr = arg(args, "--listen", None);
    if !listen.ip().is_loopback() {
        die("--listen: only loopback addresses");
    }
    let secs: u64 = arg(args, "--seconds", Some(10));
    // udplogger's default receive buffer.
    match watchdog::floor::receive(listen, 8 << 20, std::time::Duration::from_secs(secs)) {
        Ok(r) => println!(
            "DATAGRAMS {} BYTES {} LINES {}",
            r.datagrams, r.bytes, r.newlines
        ),
        Err(e) => die(&e),
    }
}

fn replay(args: &[String]) {
    let workers: usize = arg(args, "--workers", Some(1));
    let senders: usize = arg(args, "--senders", Some(20));
    let lines: usize = arg(args, "--lines", Some(50000));
    let dir: std::path::PathBuf = arg(args, "--dir", None);
    let extended = args.iter().any(|a| a == "--extended");
    let staged = args.iter().any(|a| a == "--staged");
    match watchdog::replay::replay(&dir, workers, senders, lines, extended, staged) {
        Ok(r) => println!(
            "LINES {} WALL {:.6} CPU {:.6}",
            r.lines,
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64()
        ),
        Err(e) => die(&e),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("send") => send(&args[1..]),
        Some("check") => check(&args[1..]),
        Some("sink") => sink(&args[1..]),
        Some("replay") => replay(&args[1..]),
        _ => die("usage: udpload send|check|sink|replay ... (see the source header)"),
    }
}
