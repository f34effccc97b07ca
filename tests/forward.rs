//! Forwarding to a real receiver: Debian's rsyslog, started by each test
//! on loopback with its own configuration and work directory, receives
//! from `watchdog run` (fixture root, kmsg FIFO) and from `watchdog
//! udplogger` (loopback netconsole datagrams) over UDP, TCP and TLS. What
//! rsyslog wrote, through a template printing HOSTNAME, APP-NAME, MSGID,
//! STRUCTURED-DATA and MSG, is compared with what watchdog wrote itself.
//!
//! rsyslog is installed on first use (apt-get, as .ci/run does); the
//! tests skip, saying so, only when it cannot be installed.

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::{copy_tree, fixture, wait_until, Daemon, Dir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
    Tls,
}

/// rsyslogd's path, installing rsyslog and rsyslog-gnutls when missing.
fn rsyslogd() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let find = || {
                ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.exists())
            };
            let gnutls = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so");
            if find().is_none() || !gnutls.exists() {
                let _ = Command::new("apt-get")
                    .args(["install", "-y", "-qq", "rsyslog", "rsyslog-gnutls"])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            find()
        })
        .as_deref()
}

macro_rules! need_rsyslog {
    () => {
        match rsyslogd() {
            Some(p) => p,
            None => {
                eprintln!("SKIPPED: rsyslogd is not installed and `apt-get install rsyslog rsyslog-gnutls` failed");
                return;
            }
        }
    };
}

/// A free loopback port (TCP and UDP), as far as one can tell.
fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

fn sh(cwd: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-ec", script])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `localhost` and 127.0.0.1, and a client
/// certificate, all made with openssl in `dir`.
fn certificates(dir: &Path) {
    sh(
        dir,
        "ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
         openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=watchdog-test-ca \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
         for who in server client; do
           openssl req $ec -keyout $who.key -out $who.csr -subj /CN=$who 2>/dev/null
         done
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
         printf 'subjectAltName=DNS:client.example\\nextendedKeyUsage=clientAuth\\n' > client.ext
         for who in server client; do
           openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
              -out $who.pem -days 2 -extfile $who.ext 2>/dev/null
         done",
    );
}

/// The fenced block of docs/fleet.md whose info string is `name`.
pub fn doc_block(name: &str) -> String {
    let doc = std::fs::read_to_string(crate::util::repo().join("docs/fleet.md")).unwrap();
    let open = format!("```{name}\n");
    let start = doc
        .find(&open)
        .unwrap_or_else(|| panic!("no {open:?} block in docs/fleet.md"))
        + open.len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

/// Every YAML block of docs/fleet.md passes `watchdog config check`.
#[test]
fn fleet_doc_configs_are_valid() {
    let doc = std::fs::read_to_string(crate::util::repo().join("docs/fleet.md")).unwrap();
    let dir = Dir::new();
    let mut n = 0;
    for (i, block) in doc.split("```yaml\n").skip(1).enumerate() {
        let yaml = &block[..block.find("```").unwrap()];
        dir.write(&format!("fleet{i}.yaml"), yaml);
        let r = crate::util::run_in(
            dir.path(),
            &["config", "check", &format!("fleet{i}.yaml")],
            None,
        );
        assert_eq!(r.code, 0, "{yaml}\n{}", r.dump());
        n += 1;
    }
    assert!(n >= 2, "the run and udplogger examples");
}

/// One message as rsyslog wrote it.
#[derive(Debug, Clone)]
struct Got {
    host: String,
    app: String,
    msgid: String,
    sd: String,
    msg: String,
}

impl Got {
    /// An SD parameter's value (unescaped), from the first element.
    fn param(&self, name: &str) -> Option<String> {
        let pat = format!(" {name}=\"");
        let start = self.sd.find(&pat)? + pat.len();
        let mut out = String::new();
        let mut chars = self.sd[start..].chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    }
}

struct Rsyslog {
    dir: PathBuf,
    exe: PathBuf,
    proto: Proto,
    port: u16,
    child: Option<Child>,
    starts: usize,
}

impl Rsyslog {
    fn new(dir: &Dir, exe: &Path, proto: Proto) -> Rsyslog {
        let d = dir.join("rsyslog");
        std::fs::create_dir_all(d.join("work")).unwrap();
        let port = free_port();
        // The receiver and output blocks of docs/fleet.md, on loopback, a
        // free port and this test's directory.
        let block = match proto {
            Proto::Udp => "rsyslog-udp",
            Proto::Tcp => "rsyslog-tcp",
            Proto::Tls => {
                certificates(&d);
                "rsyslog-tls"
            }
        };
        let local = |text: String| {
            text.replace("/etc/pki/rsyslog/", &format!("{}/", d.display()))
                .replace("/var/log/fleet/", &format!("{}/", d.display()))
                .replace(
                    "port=\"6514\"",
                    &format!("address=\"127.0.0.1\" port=\"{port}\""),
                )
                .replace(
                    "port=\"514\"",
                    &format!("address=\"127.0.0.1\" port=\"{port}\""),
                )
        };
        let conf = format!(
            "global(workDirectory=\"{}/work\" maxMessageSize=\"64k\")\n{}{}",
            d.display(),
            local(doc_block(block)),
            local(doc_block("rsyslog-output"))
        );
        std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
        Rsyslog {
            dir: d,
            exe: exe.to_path_buf(),
            proto,
            port,
            child: None,
            starts: 0,
        }
    }

    /// Starts rsyslogd in the foreground and waits until it takes
    /// messages: a probe datagram shows up (UDP), or its port accepts.
    fn start(&mut self) {
        let pid = self.dir.join("rsyslogd.pid");
        let _ = std::fs::remove_file(&pid);
        let child = Command::new(&self.exe)
            .args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        if self.proto == Proto::Udp {
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            let text = format!("probe {}", self.starts);
            wait_until("rsyslogd to take a probe", || {
                let m = format!("<13>1 - - probe - - - {text}");
                let _ = probe.send_to(m.as_bytes(), ("127.0.0.1", self.port));
                std::thread::sleep(Duration::from_millis(50));
                self.all()
                    .iter()
                    .any(|g| g.app == "probe" && g.msg == text)
                    .then_some(())
            });
        } else {
            wait_until("rsyslogd to listen", || {
                std::net::TcpStream::connect(("127.0.0.1", self.port))
                    .ok()
                    .map(|_| ())
            });
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap()),
                nix::sys::signal::Signal::SIGTERM,
            )
            .unwrap();
            c.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        match self.proto {
            Proto::Udp => format!("syslog+udp://127.0.0.1:{}", self.port),
            Proto::Tcp => format!("syslog+tcp://127.0.0.1:{}", self.port),
            Proto::Tls => format!(
                "syslog+tls://127.0.0.1:{}?ca={1}/ca.pem&cert={1}/client.pem&key={1}/client.key&name=localhost",
                self.port,
                self.dir.display()
            ),
        }
    }

    fn all(&self) -> Vec<Got> {
        std::fs::read_to_string(self.dir.join("received.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(5, '\t');
                Some(Got {
                    host: f.next()?.into(),
                    app: f.next()?.into(),
                    msgid: f.next()?.into(),
                    sd: f.next()?.into(),
                    msg: f.next()?.into(),
                })
            })
            .collect()
    }

    /// Messages from watchdog (not rsyslog's own).
    fn got(&self) -> Vec<Got> {
        self.all()
            .into_iter()
            .filter(|g| g.app != "rsyslogd" && g.app != "probe")
            .collect()
    }

    fn dump(&self) -> String {
        format!(
            "--- rsyslog received:\n{}\n--- rsyslog stderr:\n{}",
            std::fs::read_to_string(self.dir.join("received.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
        )
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// --- watchdog run ---------------------------------------------------------

pub const HUNG: &str = "INFO: task fsfreeze writer:412 blocked for more than 2 seconds.";

/// A fixture host with a kmsg FIFO and a config whose `run:` section ends
/// with `extra` (`run.journal` is `auto`: the tree has no journal socket).
pub fn run_host(extra: &str) -> Dir {
    let dir = Dir::new();
    copy_tree(&fixture("well-tuned"), &dir.join("root"));
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
            "run:\n  event_log: {base}/events.jsonl\n  state_file: {base}/kmsg.state\n  evidence_dir: {base}/evidence\n  kmsg_start: replay\n  kdump_check: {{at_start: false, interval_hours: 24}}\n{extra}"
        ),
    );
    dir
}

pub fn start_run(dir: &Dir, args: &[&str]) -> Daemon {
    let mut a = vec!["run", "--root", "root", "--config", "config.yaml"];
    a.extend_from_slice(args);
    let mut d = Daemon::start(dir.path(), &a);
    d.wait_stderr("events go to");
    d
}

pub fn kmsg(dir: &Dir, records: &[(u64, String)]) {
    let mut text = String::new();
    for (seq, msg) in records {
        text.push_str(&format!("3,{seq},{},-;{msg}\n", seq * 10_000));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("root/dev/kmsg"))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn events(dir: &Dir) -> Vec<serde_json::Value> {
    crate::util::json_lines_so_far(&dir.join("events.jsonl"))
}

/// `run` forwards a hung task and its actions; rsyslog gets each event
/// once, fields intact.
fn run_to(proto: Proto) {
    let exe = need_rsyslog!();
    let dir = run_host("");
    let mut rs = Rsyslog::new(&dir, exe, proto);
    rs.start();
    let url = rs.url();
    let d = start_run(&dir, &["--forward", &url]);
    kmsg(&dir, &[(10, HUNG.to_string())]);
    // The previous boot's end, the hung task and two actions (sysrq t,
    // ftrace_snapshot).
    wait_until("four events in the event log", || {
        (events(&dir).len() >= 4).then_some(())
    });
    wait_until("four events at rsyslog", || {
        (rs.got().len() >= 4).then_some(())
    });
    let r = d.stop();
    std::thread::sleep(Duration::from_millis(300));
    let got = rs.got();
    let evs = events(&dir);
    assert_eq!(got.len(), evs.len(), "{}\n{}", r.dump(), rs.dump());
    for (ev, g) in evs.iter().zip(&got) {
        assert_eq!(g.app, "watchdog", "{g:?}");
        assert_eq!(g.host, "db01.example.com", "{g:?}");
        assert_eq!(g.msgid, ev["kind"].as_str().unwrap(), "{g:?}");
        assert!(g.sd.starts_with("[watchdog@32473 "), "{g:?}");
        assert_eq!(g.param("time").as_deref(), ev["time"].as_str(), "{g:?}");
    }
    // (First comes the previous boot's end: a fixture root has no record.)
    let hung = got.iter().find(|g| g.msgid == "hung_task").unwrap();
    assert_eq!(hung.param("comm").as_deref(), Some("fsfreeze writer"));
    assert_eq!(hung.param("pid").as_deref(), Some("412"));
    assert_eq!(hung.param("blocked_secs").as_deref(), Some("2"));
    assert_eq!(
        hung.msg,
        "hung task: fsfreeze writer (pid 412) blocked for more than 2 s"
    );
    let actions: Vec<String> = got
        .iter()
        .filter(|g| g.msgid == "action")
        .map(|g| g.param("action").unwrap_or_default())
        .collect();
    assert_eq!(actions, ["sysrq t", "ftrace_snapshot"]);
    assert!(
        r.stderr
            .contains(&format!("forward to {}", url.split('?').next().unwrap()))
            && r.stderr.contains("4 messages sent, 0 dropped"),
        "{}",
        r.dump()
    );
}

#[test]
fn run_forwards_to_rsyslog_over_udp() {
    run_to(Proto::Udp);
}

#[test]
fn run_forwards_to_rsyslog_over_tcp() {
    run_to(Proto::Tcp);
}

#[test]
fn run_forwards_to_rsyslog_over_tls() {
    run_to(Proto::Tls);
}

/// The acceptance test of a stuck receiver: a TCP listener that accepts
/// nothing and reads nothing. Thousands of events fill its queue and the
/// socket buffers; a hung task still gets its SysRq within a second.
#[test]
fn a_target_that_reads_nothing_never_delays_sysrq() {
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("syslog+tcp://{}?queue=16", sink.local_addr().unwrap());
    let dir = run_host("  record_queue: 65536\n");
    let d = start_run(&dir, &["--forward", &url]);
    let flood: Vec<(u64, String)> = (1..=20_000)
        .map(|i| (i, format!("sysrq: Show Memory {i}")))
        .collect();
    for chunk in flood.chunks(2000) {
        kmsg(&dir, chunk);
    }
    // Wait until the flood is handled (the event log stops growing), so
    // what is timed is the hung task alone.
    let mut last = (0, Instant::now());
    wait_until("the flood to be handled", || {
        let n = std::fs::metadata(dir.join("events.jsonl")).map_or(0, |m| m.len());
        if n != last.0 {
            last = (n, Instant::now());
        }
        (n > 0 && last.1.elapsed() > Duration::from_millis(500)).then_some(())
    });
    let sent = Instant::now();
    kmsg(&dir, &[(20_001, HUNG.to_string())]);
    let trigger = dir.join("root/proc/sysrq-trigger");
    wait_until("sysrq t", || {
        (std::fs::read_to_string(&trigger).unwrap_or_default() == "t").then_some(())
    });
    let took = sent.elapsed();
    eprintln!("SysRq t written {} ms after the record", took.as_millis());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let r = d.stop();
    let dropped: u64 = r
        .stderr
        .lines()
        .find_map(|l| l.split(" messages sent, ").nth(1))
        .and_then(|t| t.split(" dropped").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no forward summary\n{}", r.dump()));
    assert!(
        dropped > 0,
        "the target cannot have taken it all\n{}",
        r.dump()
    );
    drop(sink);
}

// --- watchdog udplogger ---------------------------------------------------

fn start_udplogger(dir: &Dir, extra: &[&str]) -> (Daemon, std::net::SocketAddr) {
    crate::util::udplogger_on_loopback(dir, extra)
}

/// `(source, text)` of every line udplogger wrote (markers included).
fn written(dir: &Dir) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir.join("logs")) else {
        return out;
    };
    let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files {
        for l in std::fs::read_to_string(f).unwrap().lines() {
            let mut p = l.splitn(3, ' ');
            let (_, src, text) = (p.next(), p.next(), p.next());
            out.push((src.unwrap().to_string(), text.unwrap_or("").to_string()));
        }
    }
    out
}

/// Plain and extended lines and a gap marker reach rsyslog once each.
fn udplogger_to(proto: Proto) {
    let exe = need_rsyslog!();
    let dir = Dir::new();
    let mut rs = Rsyslog::new(&dir, exe, proto);
    rs.start();
    let url = rs.url();
    let (d, addr) = start_udplogger(&dir, &["--forward", &url]);
    let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ext = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50 {
        plain
            .send_to(format!("plain line {i} \"quoted\" [x]\n").as_bytes(), addr)
            .unwrap();
    }
    for seq in (100..150).filter(|s| *s != 120) {
        ext.send_to(
            format!("4,{seq},{seq}000,-;extended record {seq}\n SUBSYSTEM=block").as_bytes(),
            addr,
        )
        .unwrap();
    }
    // 50 plain lines, 49 extended records and the gap marker.
    wait_until("every line on disk", || {
        (written(&dir).len() >= 100).then_some(())
    });
    wait_until("every line at rsyslog", || {
        (rs.got().len() >= 100).then_some(())
    });
    let r = d.stop();
    std::thread::sleep(Duration::from_millis(300));
    let got = rs.got();
    let plain_src = plain.local_addr().unwrap();
    let ext_src = ext.local_addr().unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for g in &got {
        *seen.entry(g.msg.clone()).or_default() += 1;
        assert_eq!(g.host, "127.0.0.1", "{g:?}");
        assert_eq!(g.app, "kernel", "{g:?}");
    }
    for i in 0..50 {
        let text = format!("plain line {i} \"quoted\" [x]");
        assert_eq!(seen.get(&text), Some(&1), "{text}\n{}", rs.dump());
        let g = got.iter().find(|g| g.msg == text).unwrap();
        assert_eq!(g.msgid, "netconsole");
        assert_eq!(g.param("port"), Some(plain_src.port().to_string()));
        assert_eq!(g.param("addr").as_deref(), Some("127.0.0.1"));
        assert_eq!(g.param("seq"), None);
    }
    for seq in (100..150).filter(|s| *s != 120) {
        let text = format!("extended record {seq}");
        assert_eq!(seen.get(&text), Some(&1), "{text}\n{}", rs.dump());
        let g = got.iter().find(|g| g.msg == text).unwrap();
        assert_eq!(g.param("seq"), Some(seq.to_string()), "{g:?}");
        assert_eq!(g.param("ts_usec"), Some(format!("{seq}000")), "{g:?}");
        assert_eq!(g.param("port"), Some(ext_src.port().to_string()));
        assert_eq!(g.param("dict").as_deref(), Some("SUBSYSTEM=block"), "{g:?}");
    }
    let gap: Vec<&Got> = got
        .iter()
        .filter(|g| g.msgid == "udplogger-marker")
        .collect();
    assert_eq!(gap.len(), 1, "{}", rs.dump());
    assert_eq!(gap[0].param("kind").as_deref(), Some("gap"));
    assert_eq!(gap[0].param("from").as_deref(), Some("120"));
    assert_eq!(gap[0].param("about"), Some(ext_src.to_string()));
    assert_eq!(got.len(), 100, "{}\n{}", r.dump(), rs.dump());
}

#[test]
fn udplogger_forwards_to_rsyslog_over_udp() {
    udplogger_to(Proto::Udp);
}

#[test]
fn udplogger_forwards_to_rsyslog_over_tcp() {
    udplogger_to(Proto::Tcp);
}

#[test]
fn udplogger_forwards_to_rsyslog_over_tls() {
    udplogger_to(Proto::Tls);
}

/// rsyslog restarts in the middle of a stream: every line arrives, and a
/// line arrives twice only as the forwarder says it sent it again.
fn restart_mid_stream(proto: Proto) {
    let exe = need_rsyslog!();
    let dir = Dir::new();
    let mut rs = Rsyslog::new(&dir, exe, proto);
    rs.start();
    let url = rs.url();
    let (d, addr) = start_udplogger(&dir, &["--forward", &url]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    const N: usize = 600;
    let send = |range: std::ops::Range<usize>| {
        for i in range {
            s.send_to(format!("stream line {i}\n").as_bytes(), addr)
                .unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    send(0..200);
    rs.stop();
    send(200..400);
    rs.start();
    send(400..N);
    wait_until("every line on disk", || {
        (written(&dir).len() >= N).then_some(())
    });
    let all_there = || {
        let got = rs.got();
        (0..N)
            .all(|i| {
                let t = format!("stream line {i}");
                got.iter().any(|g| g.msg == t)
            })
            .then_some(())
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while all_there().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = d.stop();
    std::thread::sleep(Duration::from_millis(300));
    let got = rs.got();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for g in &got {
        *count.entry(g.msg.as_str()).or_default() += 1;
    }
    let missing: Vec<usize> = (0..N)
        .filter(|i| !count.contains_key(format!("stream line {i}").as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}\n{}\n{}",
        r.dump(),
        rs.dump()
    );
    let resent: u64 = r
        .stderr
        .lines()
        .find_map(|l| l.split(" dropped, ").nth(1))
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no forward summary\n{}", r.dump()));
    let twice = count.values().filter(|&&n| n > 1).count() as u64;
    assert!(
        count.values().all(|&n| n <= 2) && twice <= resent,
        "{twice} lines twice, {resent} resent\n{}",
        r.dump()
    );
    eprintln!("restart: {N} lines, {twice} arrived twice, {resent} sent again");
}

#[test]
fn rsyslog_restart_loses_nothing_over_tcp() {
    restart_mid_stream(Proto::Tcp);
}

#[test]
fn rsyslog_restart_loses_nothing_over_tls() {
    restart_mid_stream(Proto::Tls);
}

/// The other acceptance test of a stuck receiver: udplogger writes every
/// line it receives while its forward target takes nothing.
#[test]
fn udplogger_writes_every_line_while_its_target_reads_nothing() {
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("syslog+tcp://{}?queue=16", sink.local_addr().unwrap());
    let dir = Dir::new();
    let prom = dir.join("udplogger.prom");
    let (d, addr) = start_udplogger(
        &dir,
        &["--forward", &url, "--metrics", prom.to_str().unwrap()],
    );
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    const N: usize = 20_000;
    for i in 0..N {
        s.send_to(format!("line {i} {}\n", "x".repeat(200)).as_bytes(), addr)
            .unwrap();
        // Paced (about 12,000 lines/s, so that the parallel tests of a
        // busy 2-core machine cannot starve the receiver): this is about
        // the target, not about the receive buffer.
        if i % 25 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let until = Instant::now() + Duration::from_secs(30);
    while written(&dir).len() < N && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = d.stop();
    let lines = written(&dir);
    assert_eq!(lines.len(), N, "{}", r.dump());
    assert!(!r.stderr.contains("kernel dropped"), "{}", r.dump());
    let dropped: u64 = r
        .stderr
        .lines()
        .find_map(|l| l.split(" messages sent, ").nth(1))
        .and_then(|t| t.split(" dropped").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no forward summary\n{}", r.dump()));
    assert!(dropped > 0, "{}", r.dump());
    // The same count in the metrics, per target.
    let metrics = std::fs::read_to_string(&prom).unwrap();
    let name = url.split('?').next().unwrap();
    assert!(
        metrics.contains(&format!(
            "watchdog_udplogger_forward_dropped_total{{target=\"{name}\"}} {dropped}"
        )),
        "{metrics}"
    );
    drop(sink);
}

/// A TLS target whose certificate does not carry the name asked for gets
/// nothing: the name is checked.
#[test]
fn tls_checks_the_server_name() {
    let exe = need_rsyslog!();
    let dir = Dir::new();
    let mut rs = Rsyslog::new(&dir, exe, Proto::Tls);
    rs.start();
    let url = rs.url().replace("name=localhost", "name=elsewhere.example");
    let (d, addr) = start_udplogger(&dir, &["--forward", &url]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"not for strangers\n", addr).unwrap();
    let mut d = d;
    d.wait_stderr("cannot connect");
    let r = d.stop();
    assert!(
        r.stderr.contains("certificate") || r.stderr.contains("Certificate"),
        "{}",
        r.dump()
    );
    assert!(rs.got().is_empty(), "{}", rs.dump());
}

#[test]
fn bad_forward_urls_are_usage_errors() {
    let dir = Dir::new();
    let r = crate::util::run_in(
        dir.path(),
        &["run", "--forward", "syslog+tls://127.0.0.1:6514"],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("needs a CA file"), "{}", r.dump());
    let r = crate::util::run_in(
        dir.path(),
        &["udplogger", "--dir", "logs", "--forward", "http://x"],
        None,
    );
    assert_ne!(r.code, 0, "{}", r.dump());
    assert!(r.stderr.contains("unknown scheme"), "{}", r.dump());
    // TLS files are read at start: a missing one stops it, named.
    let r = crate::util::run_in(
        dir.path(),
        &[
            "udplogger",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            "logs",
            "--forward",
            "syslog+tls://127.0.0.1:6514?ca=/nonexistent/ca.pem",
        ],
        None,
    );
    assert_ne!(r.code, 0, "{}", r.dump());
    assert!(
        r.stderr
            .contains("/nonexistent/ca.pem: cannot read the CA file"),
        "{}",
        r.dump()
    );
}
