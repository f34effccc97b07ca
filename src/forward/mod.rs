//! Forwarding to syslog receivers (`run.forward`, `udplogger.forward`,
//! `--forward URL`): RFC 5424 messages over UDP, TCP or TLS.
//!
//! Each target has its own thread and a bounded queue. Producers (the
//! `run` loop, the udplogger receive loop) call [`Forwarder::send`], which
//! never blocks: when a target's queue is full the message is dropped and
//! counted, and once the target takes messages again the thread first
//! sends it a notice of how many were dropped (for `run` a `lost` event,
//! for udplogger a `dropped` marker), then what is queued.
//!
//! A target that is down is retried with exponential backoff (0.1 s to
//! 30 s); while it is down the queue holds what it can.
//!
//! When a message can arrive twice: TCP and TLS have no acknowledgement a
//! sender can see. The thread looks at the connection before every write
//! and, while messages it wrote in the last [`REPLAY`] could still be sent
//! again, every quarter second. When the receiver closed it in
//! order (a FIN, with or without TLS close_notify) and nothing we wrote is
//! unacknowledged (`SIOCOUTQ` is 0), the receiver read everything: Linux
//! answers with a reset, not a FIN, when a socket is closed with data
//! unread or data arrives after the close. Then nothing is sent again. In
//! every other case (a reset, a failed write, bytes unacknowledged, a
//! receiver that took nothing for [`transport::WRITE_STALL`]), the thread
//! cannot know what was read, and sends again, on the new connection, the
//! messages it wrote during the [`REPLAY`] (2 s) before it noticed: a
//! receiver that had read them sees them twice. They are counted as
//! `resent`. Over UDP nothing is sent twice, and a receiver that is down
//! loses what is sent to it until the ICMP error tells us (RFC 5426: UDP
//! has no delivery guarantee).
//!
//! - [`message`]: building RFC 5424 messages (pure)
//! - [`target`]: URLs and settings
//! - [`transport`]: connections, framing, TLS
//! - [`udplogger`]: what the netconsole receiver forwards

pub mod message;
pub mod target;
pub mod transport;
pub mod udplogger;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use target::{Target, TargetConfig, Transport};
use transport::{Conn, State};

/// Messages written this long before a broken connection was noticed are
/// sent again on the next one.
pub const REPLAY: Duration = Duration::from_secs(2);
/// How often an idle connection is looked at while messages written to it
/// are recent enough to be sent again.
const HEALTH: Duration = Duration::from_millis(250);
/// The longest sleep of an idle target's thread otherwise.
const IDLE: Duration = Duration::from_secs(3600);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Messages written per system call, at most.
const BATCH: usize = 256;
/// With fewer than [`BATCH`] messages waiting, the thread lets more gather
/// this long before it writes: one write and no wake-up of this thread per
/// message under load (a producer's send only wakes a thread that waits
/// on the queue), for a millisecond of latency.
const COALESCE: Duration = Duration::from_millis(1);

/// Builds the notice a target gets about `count` messages it did not get.
pub type NoticeFn = Arc<dyn Fn(&str, u64) -> Vec<u8> + Send + Sync>;
/// Says something to the operator: (syslog severity, text).
pub type LogFn = fn(u8, &str);

/// A metric: name, type, help, and how to read it from a target's stats.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TargetStats) -> u64,
);

/// Counters of one target, shared by its thread and the producers.
#[derive(Debug, Default)]
struct Shared {
    sent: AtomicU64,
    dropped: AtomicU64,
    /// Dropped and not yet told to the target.
    untold: AtomicU64,
    resent: AtomicU64,
    reconnects: AtomicU64,
    connected: AtomicBool,
    /// Messages in the queue now (the channel cannot say): lets a
    /// producer skip building a message no target has room for.
    queued: AtomicUsize,
}

/// A target's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetStats {
    pub name: String,
    /// Messages written (datagrams sent, frames written), notices included.
    pub sent: u64,
    /// Messages dropped: the queue was full, or they were still queued at
    /// the stop deadline.
    pub dropped: u64,
    /// Messages sent again after a broken connection (see the module doc).
    pub resent: u64,
    pub reconnects: u64,
    pub connected: bool,
}

enum Msg {
    Data(Arc<[u8]>),
    Stop(Instant),
}

struct Handle {
    name: String,
    capacity: usize,
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    finished: Receiver<()>,
}

/// Every target of one process.
#[derive(Default)]
pub struct Forwarder {
    targets: Vec<Handle>,
}

impl Forwarder {
    /// Starts one thread per target. Fails (naming the target and file)
    /// when a TLS file cannot be used; connecting is the threads' job.
    pub fn start(targets: &[Target], notice: &NoticeFn, log: LogFn) -> Result<Forwarder, String> {
        let mut out = Forwarder::default();
        for t in targets {
            let tls = match &t.tls {
                Some(f) => Some(
                    transport::tls_config(f).map_err(|e| format!("forward to {}: {e}", t.name))?,
                ),
                None => None,
            };
            let (tx, rx) = mpsc::sync_channel(t.queue);
            let (fin_tx, finished) = mpsc::channel();
            let shared = Arc::new(Shared::default());
            let mut w = Worker {
                target: t.clone(),
                tls,
                rx,
                shared: Arc::clone(&shared),
                notice: Arc::clone(notice),
                log,
            };
            let thread = std::thread::Builder::new()
                .name(format!("forward-{}", out.targets.len()))
                .spawn(move || {
                    w.run();
                    let _ = fin_tx.send(());
                })
                .map_err(|e| format!("forward to {}: cannot start its thread: {e}", t.name))?;
            out.targets.push(Handle {
                name: t.name.clone(),
                capacity: t.queue,
                tx,
                shared,
                thread: Some(thread),
                finished,
            });
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Queues one message for every target without blocking; a full
    /// queue drops it for that target and counts it.
    pub fn send(&self, msg: &[u8]) {
        if self.targets.is_empty() {
            return;
        }
        let m: Arc<[u8]> = Arc::from(msg);
        for h in &self.targets {
            let room = h.shared.queued.load(Ordering::Relaxed) < h.capacity;
            if room && h.tx.try_send(Msg::Data(Arc::clone(&m))).is_ok() {
                h.shared.queued.fetch_add(1, Ordering::Relaxed);
            } else {
                h.shared.dropped.fetch_add(1, Ordering::Relaxed);
                h.shared.untold.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// False when every target's queue is full: the caller need not build
    /// the message and calls [`Forwarder::drop_one`] instead. This keeps a
    /// stuck target from costing the producer more than a counter.
    pub fn has_room(&self) -> bool {
        self.targets
            .iter()
            .any(|h| h.shared.queued.load(Ordering::Relaxed) < h.capacity)
    }

    /// Counts one message as dropped for every target.
    pub fn drop_one(&self) {
        for h in &self.targets {
            h.shared.dropped.fetch_add(1, Ordering::Relaxed);
            h.shared.untold.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> Vec<TargetStats> {
        self.targets
            .iter()
            .map(|h| TargetStats {
                name: h.name.clone(),
                sent: h.shared.sent.load(Ordering::Relaxed),
                dropped: h.shared.dropped.load(Ordering::Relaxed),
                resent: h.shared.resent.load(Ordering::Relaxed),
                reconnects: h.shared.reconnects.load(Ordering::Relaxed),
                connected: h.shared.connected.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Prometheus text for every target, metric names starting `prefix`
    /// (`watchdog_forward`, `watchdog_udplogger_forward`).
    pub fn metrics(&self, prefix: &str) -> String {
        use std::fmt::Write;
        let stats = self.stats();
        let mut m = String::new();
        if stats.is_empty() {
            return m;
        }
        let rows: [Row; 5] = [
            (
                "messages_total",
                "counter",
                "Messages written to the target.",
                |s| s.sent,
            ),
            (
                "dropped_total",
                "counter",
                "Messages dropped for the target (queue full, or still queued at stop).",
                |s| s.dropped,
            ),
            (
                "resent_total",
                "counter",
                "Messages sent again after a broken connection.",
                |s| s.resent,
            ),
            (
                "reconnects_total",
                "counter",
                "Connections made again after a failure.",
                |s| s.reconnects,
            ),
            (
                "connected",
                "gauge",
                "1 while the target is connected.",
                |s| u64::from(s.connected),
            ),
        ];
        for (name, kind, help, get) in rows {
            let _ = writeln!(m, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(m, "# TYPE {prefix}_{name} {kind}");
            for s in &stats {
                let _ = writeln!(
                    m,
                    "{prefix}_{name}{{target=\"{}\"}} {}",
                    crate::metrics::label(&s.name),
                    get(s)
                );
            }
        }
        m
    }

    /// One line per target for the stop summary.
    pub fn summary(&self) -> Vec<String> {
        self.stats()
            .iter()
            .map(|s| {
                format!(
                    "forward to {}: {} messages sent, {} dropped, {} sent again after {} reconnects",
                    s.name, s.sent, s.dropped, s.resent, s.reconnects
                )
            })
            .collect()
    }

    /// Lets every target send what is queued, waiting until `deadline` at
    /// the most; a target that is down or stuck is left behind and what it
    /// still held counts as dropped. True when all finished.
    pub fn finish(&mut self, deadline: Instant) -> bool {
        let mut all = true;
        for h in &mut self.targets {
            let mut stop = Msg::Stop(deadline);
            let queued = loop {
                match h.tx.try_send(stop) {
                    Ok(()) => break true,
                    Err(TrySendError::Disconnected(_)) => break true,
                    Err(TrySendError::Full(m)) => {
                        if Instant::now() >= deadline {
                            break false;
                        }
                        stop = m;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            };
            let done = queued
                && h.finished
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .is_ok();
            if done {
                if let Some(t) = h.thread.take() {
                    let _ = t.join();
                }
            }
            all &= done;
        }
        all
    }
}

/// The RFC 5424 form of an event of `watchdog run`: facility daemon,
/// the summary's severity, APP-NAME `watchdog`, MSGID the event kind,
/// every non-null field of its JSON as a parameter of one
/// [`message::SD_EVENT`] element (strings as they are, other values as
/// JSON text), MSG the one-line summary.
pub fn event_message(
    b: &mut message::Builder,
    ev: &crate::events::Event,
    json: &str,
    severity: u8,
    summary: &str,
) -> Vec<u8> {
    let time = ev
        .time
        .filter(|t| t.offset.is_some())
        .map(|t| t.to_string());
    let pid = std::process::id().to_string();
    b.start(&message::Header {
        facility: message::FACILITY_DAEMON,
        severity,
        timestamp: time.as_deref(),
        hostname: ev.host.as_deref(),
        app_name: "watchdog",
        procid: Some(&pid),
        msgid: ev.body.kind(),
    });
    {
        let mut sd = b.element(message::SD_EVENT);
        for (k, v) in &crate::journal::json_members(json) {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    sd.param(k, s.as_bytes());
                }
                other => {
                    sd.param(k, other.to_string().as_bytes());
                }
            }
        }
    }
    b.finish(summary.as_bytes()).to_vec()
}

/// The notice a target of `watchdog run` gets about messages it missed:
/// a `lost` event, as the event log has for its own drops.
pub fn run_notice(host: Option<String>) -> NoticeFn {
    Arc::new(move |target: &str, count: u64| {
        let ev = crate::events::Event {
            time: Some(crate::events::WallTime::now()),
            kernel_time: None,
            source: "watchdog".into(),
            host: host.clone(),
            line: None,
            incident: None,
            body: crate::events::Body::Lost(crate::events::Lost {
                count,
                reason: Some(format!(
                    "not forwarded to {target}: its queue was full while it was slow or down"
                )),
            }),
        };
        let text = format!("{count} events were not forwarded to {target}: its queue was full");
        event_message(
            &mut message::Builder::default(),
            &ev,
            &ev.to_json(),
            4,
            &text,
        )
    })
}

/// A target's thread.
struct Worker {
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    notice: NoticeFn,
    log: LogFn,
}

impl Worker {
    fn say(&self, sev: u8, text: &str) {
        (self.log)(sev, &format!("forward to {}: {text}", self.target.name));
    }

    fn lose(&self, conn: &mut Option<Conn>) {
        *conn = None;
        self.shared.connected.store(false, Ordering::Relaxed);
    }

    fn run(&mut self) {
        let mut conn: Option<Conn> = None;
        let mut pending: VecDeque<Arc<[u8]>> = VecDeque::new();
        let mut recent: VecDeque<(Instant, Arc<[u8]>)> = VecDeque::new();
        let mut scratch = Vec::new();
        let mut backoff = MIN_BACKOFF;
        let mut next_try = Instant::now();
        let mut broke_at: Option<Instant> = None;
        let mut down: Option<String> = None;
        let mut ever_connected = false;
        let mut stop: Option<Instant> = None;
        let stream = self.target.transport != Transport::Udp;
        loop {
            if pending.is_empty() && stop.is_none() {
                // The connection is watched while messages written to it
                // could still be sent again; after that a break is noticed
                // before the next write, and an idle target costs no
                // wake-ups.
                let now = Instant::now();
                while recent.front().is_some_and(|(t, _)| *t + REPLAY < now) {
                    recent.pop_front();
                }
                let wait = if recent.is_empty() { IDLE } else { HEALTH };
                match self.rx.recv_timeout(wait) {
                    Ok(Msg::Data(m)) => {
                        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                        pending.push_back(m);
                    }
                    Ok(Msg::Stop(d)) => stop = Some(d),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => stop = Some(Instant::now()),
                }
            }
            if !pending.is_empty() && pending.len() < BATCH && stop.is_none() {
                std::thread::sleep(COALESCE);
            }
            while stop.is_none() && pending.len() < BATCH {
                match self.rx.try_recv() {
                    Ok(Msg::Data(m)) => {
                        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                        pending.push_back(m);
                    }
                    Ok(Msg::Stop(d)) => stop = Some(d),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            let untold = self.shared.untold.load(Ordering::Relaxed);
            if let Some(d) = stop {
                if (pending.is_empty() && untold == 0) || now >= d {
                    break;
                }
            }
            let state = conn.as_mut().map_or(State::Open, Conn::state);
            if state != State::Open {
                self.lose(&mut conn);
                // After an orderly close that took everything, nothing is
                // sent again.
                broke_at = (state == State::Broken).then_some(now);
                if state == State::Drained {
                    recent.clear();
                }
                next_try = now;
                let why = if stream {
                    "closed by the receiver"
                } else {
                    "refused by the receiver (ICMP port unreachable)"
                };
                self.say(4, &format!("{why}; reconnecting"));
                down = Some(why.into());
            }
            if pending.is_empty() && untold == 0 {
                continue;
            }
            if conn.is_none() {
                if now < next_try {
                    std::thread::sleep((next_try - now).min(Duration::from_millis(100)));
                    continue;
                }
                match Conn::open(&self.target, self.tls.as_ref()) {
                    Ok(c) => {
                        conn = Some(c);
                        self.shared.connected.store(true, Ordering::Relaxed);
                        backoff = MIN_BACKOFF;
                        if ever_connected {
                            self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        ever_connected = true;
                        if let Some(why) = down.take() {
                            self.say(5, &format!("connected again (was: {why})"));
                        }
                        if let Some(b) = broke_at.take().filter(|_| stream) {
                            let again: Vec<Arc<[u8]>> = recent
                                .iter()
                                .filter(|(t, _)| *t + REPLAY >= b)
                                .map(|(_, m)| Arc::clone(m))
                                .collect();
                            self.shared
                                .resent
                                .fetch_add(again.len() as u64, Ordering::Relaxed);
                            for m in again.into_iter().rev() {
                                pending.push_front(m);
                            }
                        }
                        recent.clear();
                    }
                    Err(e) => {
                        let why = e.to_string();
                        if down.as_deref() != Some(why.as_str()) {
                            self.say(
                                4,
                                &format!(
                                    "cannot connect: {why}; retrying (backoff up to {} s), queueing up to {} messages",
                                    MAX_BACKOFF.as_secs(),
                                    self.target.queue
                                ),
                            );
                            down = Some(why);
                        }
                        next_try = now + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let untold = self.shared.untold.swap(0, Ordering::Relaxed);
            if untold > 0 {
                pending.push_front(Arc::from((self.notice)(&self.target.name, untold)));
            }
            match c.send(pending.make_contiguous(), &mut scratch) {
                Ok(()) => {
                    self.shared
                        .sent
                        .fetch_add(pending.len() as u64, Ordering::Relaxed);
                    if stream {
                        recent.extend(pending.drain(..).map(|m| (now, m)));
                        while recent.len() > self.target.queue
                            || recent.front().is_some_and(|(t, _)| *t + REPLAY < now)
                        {
                            recent.pop_front();
                        }
                    } else {
                        pending.clear();
                    }
                }
                Err((done, e)) => {
                    // What was surely sent (UDP datagrams before the
                    // failing one) is done; the rest stays pending and
                    // goes first on the next connection.
                    pending.drain(..done.min(pending.len()));
                    self.shared.sent.fetch_add(done as u64, Ordering::Relaxed);
                    self.lose(&mut conn);
                    broke_at = Some(now);
                    next_try = now;
                    let why = format!("write failed: {e}");
                    self.say(4, &format!("{why}; reconnecting"));
                    down = Some(why);
                }
            }
        }
        if let Some(c) = conn.take() {
            c.close();
        }
        self.shared.connected.store(false, Ordering::Relaxed);
        let left = pending.len() as u64
            + self
                .rx
                .try_iter()
                .filter(|m| matches!(m, Msg::Data(_)))
                .count() as u64;
        if left > 0 {
            self.shared.dropped.fetch_add(left, Ordering::Relaxed);
            self.say(
                4,
                &format!("{left} messages were still queued at stop and are not sent"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn notice() -> NoticeFn {
        Arc::new(|_: &str, n: u64| format!("dropped {n}").into_bytes())
    }

    fn quiet(sev: u8, text: &str) {
        eprintln!("<{sev}>{text}");
    }

    fn frames(mut data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let sp = data.iter().position(|&b| b == b' ').unwrap();
            let n: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().unwrap();
            out.push(String::from_utf8(data[sp + 1..sp + 1 + n].to_vec()).unwrap());
            data = &data[sp + 1 + n..];
        }
        out
    }

    #[test]
    fn tcp_frames_are_octet_counted_and_arrive_in_order() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = target::parse(
            &format!("syslog+tcp://{}", l.local_addr().unwrap()),
            &Default::default(),
        )
        .unwrap();
        let mut f = Forwarder::start(&[t], &notice(), quiet).unwrap();
        for i in 0..100 {
            f.send(format!("message {i} with spaces").as_bytes());
        }
        let (mut s, _) = l.accept().unwrap();
        assert!(f.finish(Instant::now() + Duration::from_secs(10)));
        let mut data = Vec::new();
        s.read_to_end(&mut data).unwrap();
        let got = frames(&data);
        let want: Vec<String> = (0..100)
            .map(|i| format!("message {i} with spaces"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(f.stats()[0].sent, 100);
    }

    #[test]
    fn udp_sends_one_message_per_datagram_unframed() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t = target::parse(
            &format!("syslog+udp://{}", rx.local_addr().unwrap()),
            &Default::default(),
        )
        .unwrap();
        let mut f = Forwarder::start(&[t], &notice(), quiet).unwrap();
        for i in 0..10 {
            f.send(format!("<13>1 - - - - - - m{i}").as_bytes());
        }
        let mut buf = [0u8; 2048];
        for i in 0..10 {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("<13>1 - - - - - - m{i}").as_bytes());
        }
        assert!(f.finish(Instant::now() + Duration::from_secs(10)));
        assert_eq!(f.stats()[0].sent, 10);
    }

    #[test]
    fn a_full_queue_drops_counts_and_tells_the_target_later() {
        // Nobody listens yet: the thread backs off, the queue (16) fills.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let t = target::parse(
            &format!("syslog+tcp://{addr}?queue=16"),
            &Default::default(),
        )
        .unwrap();
        let mut f = Forwarder::start(&[t], &notice(), quiet).unwrap();
        // The thread holds one batch at most, the queue 16: the rest is
        // dropped.
        for i in 0..1000 {
            f.send(format!("m{i}").as_bytes());
        }
        let dropped = f.stats()[0].dropped;
        assert!(dropped >= 1000 - 16 - BATCH as u64, "{dropped}");
        let l = TcpListener::bind(addr).unwrap();
        let (mut s, _) = l.accept().unwrap();
        assert!(f.finish(Instant::now() + Duration::from_secs(20)));
        let mut data = Vec::new();
        s.read_to_end(&mut data).unwrap();
        let got = frames(&data);
        let told: u64 = got
            .iter()
            .filter_map(|m| m.strip_prefix("dropped "))
            .map(|n| n.parse::<u64>().unwrap())
            .sum();
        assert_eq!(told, dropped, "{got:?}");
        let kept = got.iter().filter(|m| m.starts_with('m')).count() as u64;
        assert_eq!(kept + dropped, 1000, "{got:?}");
        assert_eq!(f.stats()[0].dropped, dropped);
    }

    #[test]
    fn a_target_that_reads_nothing_never_blocks_the_sender() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = target::parse(
            &format!("syslog+tcp://{}?queue=64", l.local_addr().unwrap()),
            &Default::default(),
        )
        .unwrap();
        let mut f = Forwarder::start(&[t], &notice(), quiet).unwrap();
        let big = vec![b'x'; 4000];
        // Keep sending until the socket buffers are full and the thread
        // is stuck in a write: every send stays quick.
        let start = Instant::now();
        let mut last = (0, Instant::now());
        loop {
            let t = Instant::now();
            for _ in 0..100 {
                f.send(&big);
            }
            assert!(t.elapsed() < Duration::from_millis(500), "a send blocked");
            let sent = f.stats()[0].sent;
            if sent != last.0 {
                last = (sent, Instant::now());
            } else if last.1.elapsed() > Duration::from_millis(500) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "never stuck");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(f.stats()[0].dropped > 0);
        assert!(!f.finish(Instant::now() + Duration::from_millis(300)));
    }
}
