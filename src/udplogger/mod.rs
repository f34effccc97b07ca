//! `watchdog udplogger`: the netconsole / serial-over-UDP log server.
//!
//! `udplogger.workers` receiving threads (default one), each with its own
//! `SO_REUSEPORT` socket per listen address: the kernel hashes a sender's
//! address and port to one socket, so a sender is always on one worker
//! and its order and state never split. Each worker runs one `poll(2)`
//! loop: drain its sockets with `recvmmsg`, hand each datagram to its
//! sender's assembler (plain text) or reorder window (extended), run the
//! parser on the lines (detection), and append lines to the shared file
//! buffers ([`Shared`]), which are written at the end of each round. One
//! worker holds the shared lock for a batch of datagrams and appends each
//! line as it comes; with several, a worker stages a batch's output
//! without the lock and takes it once to hand the batch over
//! ([`staged`]), so the parsing runs on every worker's core at once. One
//! set of files, whatever the number of workers.
//!
//! - [`socket`]: binding, receive buffer, drop counter
//! - [`assemble`]: per-sender line assembly (pure)
//! - [`extended`]: extended netconsole reorder window and reassembly (pure)
//! - [`detect`]: the parser on every sender's lines, last-words files
//! - [`names`]: what a sender is called
//! - [`output`]: file naming, rotation, formatting, write faults
//! - [`replay`]: workers fed made-up datagrams, for the benchmark
//! - [`staged`]: where a worker's output goes (straight to the shared
//!   buffers, or staged for them)
//! - [`clock`]: wall and monotonic time, injectable for tests
//! - [`allow`]: sender allowlist
//! - [`settings`]: the `udplogger:` section, its command-line overrides,
//!   and their validation into [`Settings`]

pub mod allow;
pub mod assemble;
pub mod clock;
pub mod detect;
pub mod extended;
pub mod floor;
pub mod names;
pub mod output;
pub mod replay;
pub mod settings;
pub mod socket;
pub mod staged;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::eventlog::EventLog;
use crate::events::{Body as EventBody, Event as KernelEvent, WallTime};
use crate::kernel::printk;
use crate::marker::{Body, Marker};
use crate::sys::RecvBatch;
use assemble::{Assembler, End};
use clock::{Clock, Stamp, Stamper};
use detect::Detector;
use extended::{Event, ExtState, Meta};
use names::{Hints, Names};
use output::Output;
pub use settings::{InputFormat, Settings};
use staged::{Batch, Direct, Sink, Staged};

/// Datagrams per `recvmmsg` call.
pub(crate) const BATCH: usize = 64;
/// Slot per datagram: any UDP payload fits, nothing is truncated.
pub(crate) const SLOT: usize = 65536;
/// A round that read this many datagrams means load: wait `COALESCE`
/// before the next round.
pub(crate) const COALESCE_AT: usize = 16;
pub(crate) const COALESCE: Duration = Duration::from_millis(2);
/// Batches taken from one socket before the others get their turn.
pub(crate) const BATCHES_PER_ROUND: usize = 16;
/// (host, kind) pairs counted for the metrics; beyond, events count under
/// host `other`, so a fleet of renamed senders cannot grow the file
/// without bound.
const MAX_EVENT_SERIES: usize = 4096;

/// Counters printed when the receiver stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub datagrams: u64,
    pub bytes: u64,
    pub kernel_drops: u64,
    pub denied: u64,
    pub cut: u64,
    pub gaps: u64,
    pub evicted: u64,
    pub memory_flushes: u64,
    pub peak_buffered: usize,
    pub peak_senders: usize,
    /// Extended records reported missing in gap markers.
    pub missing_records: u64,
    /// Extended datagrams that added nothing (a record or fragment
    /// already held or written).
    pub duplicates: u64,
    /// Extended records that came after their gap was declared.
    pub late: u64,
    /// Events detected.
    pub events: u64,
}

impl Stats {
    /// Adds a worker's counters since it last reported (peaks: the
    /// larger).
    fn absorb(&mut self, d: &Stats) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.datagrams, d.datagrams);
        add(&mut self.bytes, d.bytes);
        add(&mut self.kernel_drops, d.kernel_drops);
        add(&mut self.denied, d.denied);
        add(&mut self.cut, d.cut);
        add(&mut self.gaps, d.gaps);
        add(&mut self.evicted, d.evicted);
        add(&mut self.memory_flushes, d.memory_flushes);
        add(&mut self.missing_records, d.missing_records);
        add(&mut self.duplicates, d.duplicates);
        add(&mut self.late, d.late);
        add(&mut self.events, d.events);
        self.peak_buffered = self.peak_buffered.max(d.peak_buffered);
        self.peak_senders = self.peak_senders.max(d.peak_senders);
    }
}

/// How often the metrics file is rewritten.
pub const METRICS_EVERY: Duration = Duration::from_secs(15);

struct Sender {
    source: String,
    /// What events, forwarding and per-sender directories call it
    /// ([`Names::name_of`]).
    name: String,
    hints: Hints,
    asm: Assembler,
    ext: ExtState,
    ext_since: Option<Instant>,
    last_seen: Instant,
    /// Lines written for this sender, and extended records it lost.
    lines: u64,
    missing: u64,
    detect: Option<Box<Detector>>,
    /// Lines given to the parser since it was last flushed.
    undetected: bool,
}

/// What one sender costs beyond its unfinished text: its state, name and
/// table slot (counted against `max_buffered_bytes`).
const SENDER_COST: usize = std::mem::size_of::<Sender>() + std::mem::size_of::<SocketAddr>() + 96;

/// What every worker writes to: the files, the event log, the counters.
/// One lock, taken once per batch of datagrams.
pub struct Shared {
    pub out: Output,
    pub stats: Stats,
    events: Option<EventLog>,
    /// Events per (host, kind), for the metrics.
    kinds: BTreeMap<(String, &'static str), u64>,
    /// Per-sender counters of each worker, as of its last report.
    senders: Vec<Vec<(String, u64, u64)>>,
    dir: PathBuf,
}

impl Shared {
    pub(crate) fn new(settings: &Settings) -> Shared {
        Shared {
            out: Output::new(settings.output.clone()),
            stats: Stats::default(),
            events: settings
                .event_log
                .as_deref()
                .map(|t| EventLog::new(t, settings.event_log_max_bytes, settings.event_log_keep)),
            kinds: BTreeMap::new(),
            senders: vec![Vec::new(); settings.workers],
            dir: settings.output.dir.clone(),
        }
    }

    /// One detected event: to the event log (with the last-words file and
    /// the sender's kernel release as extra members) and the counters.
    fn event(&mut self, ev: &KernelEvent, last_words: Option<&str>, release: Option<&str>) {
        self.stats.events = self.stats.events.saturating_add(1);
        let host = ev.host.clone().unwrap_or_default();
        let kind = ev.body.kind();
        let key = if self.kinds.len() < MAX_EVENT_SERIES
            || self.kinds.contains_key(&(host.clone(), kind))
        {
            (host, kind)
        } else {
            ("other".to_string(), kind)
        };
        let n = self.kinds.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        let Some(log) = &mut self.events else {
            return;
        };
        let mut line = ev.to_json();
        // Extra members at the end, the schema's order kept before them.
        let mut extra = |key: &str, value: &str| {
            if line.ends_with('}') {
                line.pop();
                line.push_str(&format!(",\"{key}\":"));
                line.push_str(&serde_json::Value::from(value).to_string());
                line.push('}');
            }
        };
        if let Some(p) = last_words {
            let path = output::file_path(&self.dir, p, 0);
            extra("last_words", &path.display().to_string());
        }
        if let Some(r) = release {
            extra("kernel_release", r);
        }
        if let Some(e) = log.write(&line) {
            eprintln!("watchdog udplogger: {e}");
        }
    }

    /// The counters in Prometheus text format.
    pub fn metrics(&self) -> String {
        use crate::metrics::label;
        use std::fmt::Write;
        let s = &self.stats;
        let o = &self.out.stats;
        let mut m = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(m, "# HELP watchdog_udplogger_{name} {help}");
            let _ = writeln!(m, "# TYPE watchdog_udplogger_{name} counter");
            let _ = writeln!(m, "watchdog_udplogger_{name} {v}");
        };
        counter(
            "datagrams_total",
            "Datagrams received from allowed senders.",
            s.datagrams,
        );
        counter(
            "bytes_total",
            "Bytes received from allowed senders.",
            s.bytes,
        );
        counter("lines_total", "Lines written.", o.lines);
        counter(
            "markers_total",
            "Marker lines written (gaps, drops, cuts, faults).",
            o.markers,
        );
        counter(
            "kernel_drops_total",
            "Datagrams the kernel dropped (receive buffer full).",
            s.kernel_drops,
        );
        counter(
            "denied_total",
            "Datagrams from senders outside the allowlist.",
            s.denied,
        );
        counter(
            "missing_records_total",
            "Extended netconsole records reported missing.",
            s.missing_records,
        );
        counter(
            "duplicates_total",
            "Extended netconsole datagrams dropped as duplicates.",
            s.duplicates,
        );
        counter(
            "late_total",
            "Extended netconsole records dropped because they came after their gap was declared.",
            s.late,
        );
        counter(
            "lines_dropped_total",
            "Lines dropped because the log could not be written.",
            o.dropped,
        );
        counter(
            "senders_evicted_total",
            "Idle senders evicted to make room.",
            s.evicted,
        );
        let mut senders: Vec<&(String, u64, u64)> = self.senders.iter().flatten().collect();
        senders.sort();
        let _ = writeln!(
            m,
            "# HELP watchdog_udplogger_senders Senders with state held now."
        );
        let _ = writeln!(m, "# TYPE watchdog_udplogger_senders gauge");
        let _ = writeln!(m, "watchdog_udplogger_senders {}", senders.len());
        let _ = writeln!(m, "# HELP watchdog_udplogger_sender_lines_total Lines written per sender (since it was last evicted).");
        let _ = writeln!(m, "# TYPE watchdog_udplogger_sender_lines_total counter");
        for (src, lines, _) in &senders {
            let _ = writeln!(
                m,
                "watchdog_udplogger_sender_lines_total{{sender=\"{}\"}} {lines}",
                label(src),
            );
        }
        let _ = writeln!(m, "# HELP watchdog_udplogger_sender_missing_records_total Extended records missing per sender.");
        let _ = writeln!(
            m,
            "# TYPE watchdog_udplogger_sender_missing_records_total counter"
        );
        for (src, _, missing) in &senders {
            let _ = writeln!(
                m,
                "watchdog_udplogger_sender_missing_records_total{{sender=\"{}\"}} {missing}",
                label(src),
            );
        }
        let _ = writeln!(m, "# HELP watchdog_udplogger_events_total Events detected in the senders' kernel logs, per host and kind.");
        let _ = writeln!(m, "# TYPE watchdog_udplogger_events_total counter");
        for ((host, kind), n) in &self.kinds {
            let _ = writeln!(
                m,
                "watchdog_udplogger_events_total{{host=\"{}\",kind=\"{kind}\"}} {n}",
                label(host),
            );
        }
        m
    }
}

/// Locks the shared state; a worker that panicked mid-batch left counters
/// and buffers that are still usable.
pub(crate) fn lock(sh: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    sh.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A sender's address as the key of the sender table: the address as
/// integers, IPv4 seen through a dual-stack socket as IPv4, the port and
/// (IPv6) the scope. Hashing one feeds the hasher two words
/// (`SocketAddr`'s own `Hash` goes field by field, 3 % of the CPU at
/// 400,000 datagrams a second). The IPv6 flow label is not part of it:
/// it is no part of who sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Peer {
    ip: u128,
    /// Port in bits 0–15, IPv6 scope in 16–47, bit 48 set for IPv6.
    rest: u64,
}

impl Peer {
    const V6: u64 = 1 << 48;

    fn of(addr: SocketAddr) -> Peer {
        match addr {
            SocketAddr::V4(a) => Peer {
                ip: u128::from(a.ip().to_bits()),
                rest: u64::from(a.port()),
            },
            SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                Some(v4) => Peer {
                    ip: u128::from(v4.to_bits()),
                    rest: u64::from(a.port()),
                },
                None => Peer {
                    ip: a.ip().to_bits(),
                    rest: Peer::V6 | u64::from(a.scope_id()) << 16 | u64::from(a.port()),
                },
            },
        }
    }

    fn addr(self) -> SocketAddr {
        // Each fits: `of` put it there.
        let port = u16::try_from(self.rest & 0xffff).unwrap_or_default();
        if self.rest & Peer::V6 == 0 {
            let ip = u32::try_from(self.ip).unwrap_or_default();
            SocketAddr::from((std::net::Ipv4Addr::from_bits(ip), port))
        } else {
            let scope = u32::try_from(self.rest >> 16 & 0xffff_ffff).unwrap_or_default();
            SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from_bits(self.ip),
                port,
                0,
                scope,
            ))
        }
    }
}

/// One worker's state between datagrams: its senders.
pub struct Receiver {
    settings: Arc<Settings>,
    names: Names,
    /// Looked up once or twice per datagram: foldhash, seeded per process
    /// (a sender cannot choose its address's bucket); the table is
    /// bounded by `max_senders` whatever happens.
    senders: HashMap<Peer, Sender, foldhash::fast::RandomState>,
    buffered: usize,
    /// Senders whose parser saw lines since it was last flushed.
    undetected: usize,
    /// Where the lines of the datagram at hand end (see
    /// [`output::Lines`]), kept from one datagram to the next.
    ends: Vec<u32>,
}

/// Where one sender's output goes, for the emit callbacks.
struct Put<'a, S: Sink> {
    st: &'a mut S,
    /// The sender as noted in `st`.
    who: staged::Who,
    stamp: &'a Stamp,
    max: usize,
    addr: SocketAddr,
    source: &'a str,
    name: &'a mut String,
    hints: &'a mut Hints,
    names: &'a Names,
    detect: Option<&'a mut Detector>,
    release: Option<&'a str>,
    lines: &'a mut u64,
    missing: &'a mut u64,
    undetected: &'a mut bool,
    /// Every line given to this context holds none of the prefilter's
    /// words (the datagram was searched once).
    ordinary: bool,
}

/// `20261129T120000Z` of a stamp: sorts, and is safe in a file name.
fn compact_utc(stamp: &Stamp) -> String {
    chrono::DateTime::<chrono::Utc>::from(stamp.wall)
        .format("%Y%m%dT%H%M%S%.6fZ")
        .to_string()
}

/// A sender's name as part of a file name: letters, digits, `.`, `-`,
/// `_`; anything else (`:` and brackets of an address) becomes `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn wall_of(stamp: &Stamp) -> WallTime {
    WallTime {
        local: stamp.utc,
        offset: chrono::FixedOffset::east_opt(0),
    }
}

impl<S: Sink> Put<'_, S> {
    /// One line of the sender: to the file, then to the parser.
    fn line(&mut self, text: &[u8], meta: Option<&Meta>, dict: &[&[u8]]) {
        if !dict.is_empty() && self.hints.learn(dict) {
            *self.name = self.names.name_of(self.addr, self.hints);
            self.who = self.st.who(self.name, self.source);
        }
        let text = output::Text::new(text);
        self.st
            .line(self.who, self.name, self.source, text, meta, dict);
        *self.lines = self.lines.saturating_add(1);
        let Some(d) = self.detect.as_deref_mut() else {
            return;
        };
        *self.undetected = true;
        let stamp = self.stamp;
        let name = self.name.as_str();
        let stem_for = |kind: &str| {
            format!(
                "last-words/{}-{}-{kind}",
                compact_utc(stamp),
                file_safe(name),
            )
        };
        let found = d.line_of(name, text, self.ordinary, meta, wall_of(stamp), &stem_for);
        for (stem, bytes) in found.last_words {
            self.st.append(stem, bytes);
        }
        if !found.events.is_empty() {
            let capture = d.capture().map(|c| c.stem.clone());
            for ev in found.events {
                let lw = match ev.body {
                    EventBody::Panic(_) | EventBody::Oops(_) => capture.as_deref(),
                    _ => None,
                };
                self.st.event(ev, lw, self.release);
            }
        }
    }

    /// A datagram of whole plain lines ([`detect::whole_plain_lines`])
    /// from a sender with no unfinished line, that detection already has
    /// (or that has none): to the file at once.
    fn block(&mut self, lines: output::Lines<'_>) {
        let n = self.st.block(self.who, self.name, self.source, lines);
        *self.lines = self.lines.saturating_add(n);
        if self.detect.is_some() {
            *self.undetected = true;
        }
    }

    /// A plain line and, for a cut, the marker after it.
    fn plain(&mut self, line: &[u8], end: End) {
        self.line(line, None, &[]);
        if end == End::Cut {
            let stats = self.st.stats();
            stats.cut = stats.cut.saturating_add(1);
            let body = Body::Cut {
                seq: None,
                kept: u64::try_from(self.max).unwrap_or(u64::MAX),
                total: None,
            };
            self.marker(body);
        }
    }

    fn marker(&mut self, body: Body) {
        let m = Marker::new(self.source, body);
        self.st.marker(Some((self.who, self.name.as_str())), m);
    }

    fn event(&mut self, ev: Event<'_>) {
        let body = match ev {
            Event::Record { meta, text, dict } => return self.line(text, Some(&meta), &dict),
            Event::Duplicate => {
                let stats = self.st.stats();
                stats.duplicates = stats.duplicates.saturating_add(1);
                return;
            }
            Event::Late => {
                let stats = self.st.stats();
                stats.late = stats.late.saturating_add(1);
                return;
            }
            Event::Marker(body) => body,
        };
        let stats = self.st.stats();
        let mut found = Vec::new();
        match &body {
            Body::Gap { from, to } => {
                stats.gaps = stats.gaps.saturating_add(1);
                let lost = to.saturating_sub(*from).saturating_add(1);
                // Counters saturate: a sender's numbers must never wrap one.
                stats.missing_records = stats.missing_records.saturating_add(lost);
                *self.missing = self.missing.saturating_add(lost);
                if let Some(d) = self.detect.as_deref_mut() {
                    found = d.lost(self.name, lost, wall_of(self.stamp));
                }
            }
            Body::Reset { .. } => {
                if let Some(d) = self.detect.as_deref_mut() {
                    found = d.reset(self.name);
                }
            }
            Body::Cut { .. } => stats.cut = stats.cut.saturating_add(1),
            _ => {}
        }
        self.marker(body);
        for ev in found {
            self.st.event(ev, None, self.release);
        }
    }
}

/// `a.b.c.d:port` or `[v6]:port`; IPv4 seen through a dual-stack socket
/// is shown as IPv4.
pub fn source_name(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// Runs `f` with the output context of one sender (split borrows: the
/// sender's reassembly state stays free for the caller).
macro_rules! put {
    ($st:expr, $names:expr, $stamp:expr, $max:expr, $addr:expr, $s:expr, $release:expr) => {
        Put {
            who: $st.who(&$s.name, &$s.source),
            st: $st,
            stamp: $stamp,
            max: $max,
            addr: $addr,
            source: $s.source.as_str(),
            name: &mut $s.name,
            hints: &mut $s.hints,
            names: $names,
            detect: $s.detect.as_deref_mut(),
            release: $release,
            lines: &mut $s.lines,
            missing: &mut $s.missing,
            undetected: &mut $s.undetected,
            ordinary: false,
        }
    };
}

impl Receiver {
    pub fn new(settings: Arc<Settings>, names: Names) -> Receiver {
        Receiver {
            settings,
            names,
            senders: HashMap::default(),
            buffered: 0,
            undetected: 0,
            ends: Vec::new(),
        }
    }

    /// SIGHUP: the hosts file again, and every sender renamed by it.
    pub fn reload_names(&mut self) {
        if let Err(e) = self.names.reload() {
            eprintln!("watchdog udplogger: hosts file: {e}; keeping the names read before");
            return;
        }
        for (addr, s) in &mut self.senders {
            s.name = self.names.name_of(addr.addr(), &s.hints);
        }
    }

    /// This worker's per-sender counters, for the metrics.
    fn sender_counters(&self) -> Vec<(String, u64, u64)> {
        self.senders
            .values()
            .map(|s| (s.source.clone(), s.lines, s.missing))
            .collect()
    }

    /// Handles one datagram from `addr`: what it yields goes to `sink`.
    pub fn datagram(
        &mut self,
        sink: &mut impl Sink,
        addr: SocketAddr,
        data: &[u8],
        stamp: &Stamp,
        now: Instant,
    ) {
        let key = Peer::of(addr);
        let addr = key.addr();
        let stats = sink.stats();
        if !allow::allowed(&self.settings.allow, addr.ip()) {
            stats.denied = stats.denied.saturating_add(1);
            return;
        }
        stats.datagrams = stats.datagrams.saturating_add(1);
        stats.bytes = stats.bytes.saturating_add(data.len() as u64);
        if !self.senders.contains_key(&key) {
            let full = sink.with_shared(|sh| {
                if self.over_memory_with_new_sender(sh) {
                    // Idle files first: they cost memory and nothing to
                    // drop.
                    sh.out.release_idle(now);
                }
                self.senders.len() >= self.settings.max_senders
                    || self.over_memory_with_new_sender(sh)
            });
            if full {
                self.evict(sink, stamp);
            }
            let hints = Hints::default();
            self.senders.insert(
                key,
                Sender {
                    source: source_name(addr),
                    name: self.names.name_of(addr, &hints),
                    hints,
                    asm: Assembler::default(),
                    ext: ExtState::new(self.settings.window),
                    ext_since: None,
                    last_seen: now,
                    lines: 0,
                    missing: 0,
                    detect: self
                        .settings
                        .detect
                        .then(|| Box::new(Detector::new(self.settings.last_words_lines))),
                    undetected: false,
                },
            );
            let stats = sink.stats();
            stats.peak_senders = stats.peak_senders.max(self.senders.len());
        }
        let Receiver {
            settings,
            senders,
            buffered,
            names,
            undetected,
            ends,
        } = self;
        let Some(s) = senders.get_mut(&key) else {
            return;
        };
        s.last_seen = now;
        let was_undetected = s.undetected;
        let before = s.asm.pending() + s.ext.pending();
        let max = settings.max_line;
        let ext = match settings.format {
            InputFormat::Plain => None,
            _ if s.asm.pending() > 0 => None,
            _ => printk::parse(data),
        };
        match ext {
            // The window (or assembler) and the output context borrow
            // different fields of the sender: nothing is moved.
            Some((h, body)) => {
                let mut p = put!(sink, names, stamp, max, addr, s, h.release);
                s.ext.feed(&h, body, max, now, &mut |ev| p.event(ev));
            }
            None => {
                // With nothing pending, every line this datagram yields is
                // made of its bytes alone: one prefilter search covers
                // them all.
                let fresh = s.asm.pending() == 0;
                let ordinary = fresh
                    && s.detect.as_ref().is_some_and(|d| d.idle())
                    && detect::prefilter_skips(data);
                // Whole plain lines (the common datagram) go to the file
                // and to the last-words ring in one piece each, not line
                // by line: the assembler would hand them over unchanged.
                // With detection, `ordinary` holds too: the ring must
                // take the datagram in one piece, or it goes line by line.
                let block = if fresh && (ordinary || s.detect.is_none()) {
                    detect::whole_plain_lines(data, max, ends)
                } else {
                    None
                }
                .filter(|&l| s.detect.as_deref_mut().is_none_or(|d| d.keep_block(l)));
                let mut p = put!(sink, names, stamp, max, addr, s, None);
                if let Some(lines) = block {
                    p.block(lines);
                } else {
                    p.ordinary = ordinary;
                    s.asm.feed(data, max, now, &mut |l, e| p.plain(l, e));
                }
            }
        }
        if s.undetected && !was_undetected {
            *undetected += 1;
        }
        let ext_pending = s.ext.pending();
        if ext_pending == 0 {
            s.ext_since = None;
        } else if s.ext_since.is_none() {
            s.ext_since = Some(now);
        }
        let after = s.asm.pending() + ext_pending;
        *buffered = *buffered + after - before;
        if *buffered > settings.max_buffered {
            // Over the memory cap: this sender's unfinished text goes to
            // disk now, as it is; nothing is dropped.
            let stats = sink.stats();
            stats.memory_flushes = stats.memory_flushes.saturating_add(1);
            flush_sender(sink, names, stamp, addr, s, max);
            *buffered -= after;
        }
        let stats = sink.stats();
        stats.peak_buffered = stats.peak_buffered.max(*buffered);
    }

    /// Reports kernel drops seen on a socket's counter.
    pub fn kernel_drops(sink: &mut impl Sink, listen: SocketAddr, n: u64) {
        let stats = sink.stats();
        stats.kernel_drops = stats.kernel_drops.saturating_add(n);
        let m = Marker::new(listen.to_string(), Body::KernelDrop { count: n });
        sink.marker(None, m);
    }

    /// True when one more sender would take the receiver past
    /// `max_buffered_bytes`: what each sender and each open file costs
    /// counts against it too, not only their unfinished text.
    fn over_memory_with_new_sender(&self, sh: &Shared) -> bool {
        let senders = (self.senders.len() + 1).saturating_mul(SENDER_COST);
        // Each sender's last-words ring (detection) is its memory too.
        let rings: usize = self
            .senders
            .values()
            .filter_map(|s| s.detect.as_ref().map(|d| d.held()))
            .sum();
        self.buffered
            .saturating_add(senders)
            .saturating_add(rings)
            .saturating_add(sh.out.overhead())
            > self.settings.max_buffered
    }

    /// Makes room for a new sender: the least recently heard eighth of the
    /// table goes, their unfinished lines written first, their open
    /// incidents closed.
    fn evict(&mut self, st: &mut impl Sink, stamp: &Stamp) {
        let mut ages: Vec<(Instant, Peer)> = self
            .senders
            .iter()
            .map(|(a, s)| (s.last_seen, *a))
            .collect();
        let k = (ages.len() / 8).max(1).min(ages.len());
        if k < ages.len() {
            ages.select_nth_unstable(k - 1);
        }
        for (_, a) in &ages[..k] {
            if let Some(mut s) = self.senders.remove(a) {
                let was = s.undetected;
                self.buffered -= s.asm.pending() + s.ext.pending();
                flush_sender(
                    st,
                    &self.names,
                    stamp,
                    a.addr(),
                    &mut s,
                    self.settings.max_line,
                );
                if was {
                    self.undetected = self.undetected.saturating_sub(1);
                }
                flush_detector(st, &mut s);
                let stats = st.stats();
                stats.evicted = stats.evicted.saturating_add(1);
            }
        }
    }

    /// Ticks the reorder windows (holes whose wait ran out become gaps),
    /// writes unfinished lines older than the partial timeout (all of them
    /// when `all`, at shutdown), and ends the open incidents of senders
    /// quiet that long.
    pub fn flush_partials(&mut self, sink: &mut impl Sink, stamp: &Stamp, now: Instant, all: bool) {
        let timeout = self.settings.partial_timeout;
        let old = |t: Option<Instant>| t.is_some_and(|t| all || now.duration_since(t) >= timeout);
        let max = self.settings.max_line;
        let Receiver {
            senders,
            names,
            buffered,
            undetected,
            ..
        } = self;
        for (addr, s) in senders.iter_mut() {
            let was = s.undetected;
            if s.ext.pending() > 0 && !all {
                let before = s.ext.pending();
                let mut st = std::mem::take(&mut s.ext);
                let release = st.release().map(str::to_owned);
                {
                    let mut p = put!(sink, names, stamp, max, addr.addr(), s, release.as_deref());
                    st.tick(now, max, &mut |ev| p.event(ev));
                }
                s.ext = st;
                *buffered = (*buffered + s.ext.pending()).saturating_sub(before);
                if s.ext.pending() == 0 {
                    s.ext_since = None;
                }
            }
            if old(s.asm.since()) || old(s.ext_since) {
                *buffered -= s.asm.pending() + s.ext.pending();
                flush_sender(sink, names, stamp, addr.addr(), s, max);
            }
            if s.undetected && !was {
                // Lines the window let out just now.
                *undetected += 1;
            }
            if s.undetected && (all || now.duration_since(s.last_seen) >= timeout) {
                flush_detector(sink, s);
                *undetected = undetected.saturating_sub(1);
            }
        }
    }

    /// Time until the next sweep may have work, if any.
    fn next_partial_check(&self) -> Option<Duration> {
        (self.buffered > 0 || self.undetected > 0).then(|| {
            (self.settings.partial_timeout / 4)
                .min(self.settings.window.wait / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(1))
        })
    }
}

fn flush_sender(
    st: &mut impl Sink,
    names: &Names,
    stamp: &Stamp,
    addr: SocketAddr,
    s: &mut Sender,
    max: usize,
) {
    let mut asm = std::mem::take(&mut s.asm);
    let mut ext = std::mem::take(&mut s.ext);
    let release = ext.release().map(str::to_owned);
    {
        let mut p = put!(st, names, stamp, max, addr, s, release.as_deref());
        asm.flush(&mut |l, e| p.plain(l, e));
        ext.flush(max, &mut |ev| p.event(ev));
    }
    s.asm = asm;
    s.ext = ext;
    s.ext_since = None;
}

/// Ends the sender's open incidents (it went quiet, or is evicted).
fn flush_detector(st: &mut impl Sink, s: &mut Sender) {
    s.undetected = false;
    if let Some(d) = s.detect.as_deref_mut() {
        let release = s.ext.release();
        // A panic or oops that ends only now names the capture its first
        // line opened.
        let capture = d.capture().map(|c| c.stem.clone());
        for ev in d.flush() {
            let lw = match ev.body {
                EventBody::Panic(_) | EventBody::Oops(_) => capture.as_deref(),
                _ => None,
            };
            st.event(ev, lw, release);
        }
    }
}

/// Signals the loop reacts to.
struct Signals {
    pipe: std::fs::File,
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        // A pipe, not a socketpair: the unit may then forbid AF_UNIX.
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
        let (read, write) = (std::fs::File::from(read), std::fs::File::from(write));
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [(SIGTERM, &term), (SIGINT, &term), (SIGHUP, &hup)] {
            signal_hook::flag::register(sig, Arc::clone(flag))?;
            signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
        }
        Ok(Signals {
            pipe: read,
            term,
            hup,
        })
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.pipe.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Binds the sockets (reporting each on stderr), then receives on
/// `settings.workers` threads until SIGTERM or SIGINT. Returns the
/// counters.
pub fn run(settings: Settings, clock: &dyn Clock) -> Result<Stats, String> {
    let workers = settings.workers.max(1);
    let reuse = workers > 1;
    // sockets[w]: worker w's socket for each listen address.
    let mut sockets: Vec<Vec<socket::Listener>> = (0..workers).map(|_| Vec::new()).collect();
    for addr in &settings.listen {
        let bind = |a: SocketAddr| socket::listen(a, settings.receive_buffer, reuse);
        let first = match bind(*addr) {
            Err(nix::Error::EAFNOSUPPORT) if settings.listen_is_default => {
                let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
                eprintln!("watchdog udplogger: IPv6 is not available; listening on {v4} only");
                bind(v4)
            }
            r => r,
        }
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!(
            "watchdog udplogger: listening on {}, {}",
            first.addr, first.buffer
        );
        // The other workers bind the address the first socket got (the
        // port an ephemeral `:0` became).
        let bound = first.addr;
        sockets[0].push(first);
        for w in sockets.iter_mut().skip(1) {
            w.push(bind(bound).map_err(|e| format!("cannot listen on {bound}: {e}"))?);
        }
    }
    if reuse {
        eprintln!(
            "watchdog udplogger: {workers} workers (SO_REUSEPORT: a sender stays on one worker)"
        );
    }
    let names = Names::new(settings.hosts.clone(), settings.hosts_file.clone())
        .map_err(|e| format!("hosts file: {e}"))?;
    let mut signals = Vec::with_capacity(workers);
    for _ in 0..workers {
        signals
            .push(Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?);
    }
    // A start-up self-test: a directory that cannot be written is said
    // now, not at the first line; receiving starts anyway (lines are held
    // and retried, as for any write failure).
    if let Err(e) = output::check_dir(&settings.output.dir) {
        eprintln!(
            "watchdog udplogger: {}: {e}; lines will be held in memory and writing retried",
            settings.output.dir.display()
        );
    }
    if let Some(t) = &settings.event_log {
        eprintln!("watchdog udplogger: detected events go to {t}");
    }
    eprintln!(
        "watchdog udplogger: writing to {}",
        settings.output.dir.display()
    );
    let forward = if settings.forward.is_empty() {
        None
    } else {
        Some(crate::forward::udplogger::UdpForward::start(
            &settings.forward,
            |_, text| eprintln!("watchdog udplogger: {text}"),
        )?)
    };
    let settings = Arc::new(settings);
    let mut first = Shared::new(&settings);
    first.out.forward = forward;
    let shared = Mutex::new(first);
    let result: Result<(), String> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut own = None;
        for (w, (listeners, sig)) in sockets.into_iter().zip(signals).enumerate() {
            let rx = Receiver::new(Arc::clone(&settings), names.clone());
            let job = Worker {
                id: w,
                rx,
                listeners,
                signals: sig,
                shared: &shared,
                clock,
            };
            if w == 0 {
                own = Some(job);
            } else {
                let h = std::thread::Builder::new()
                    .name(format!("udplogger-{w}"))
                    .spawn_scoped(scope, move || job.run())
                    .map_err(|e| format!("cannot start worker {w}: {e}"))?;
                handles.push(h);
            }
        }
        let mut result = own.map_or(Ok(()), Worker::run);
        for h in handles {
            match h.join() {
                Ok(r) => result = result.and(r),
                Err(_) => result = result.and(Err("a worker thread panicked".into())),
            }
        }
        result
    });
    let mut sh = lock(&shared);
    let stamp = Stamper::new(settings.zone, settings.period).stamp(clock.wall());
    let now = clock.mono();
    sh.out.flush(&stamp, now);
    if sh.out.held() > 0 {
        // One last try, a moment later, before what is held is lost.
        std::thread::sleep(Duration::from_millis(300));
        sh.out.flush(&stamp, now + Duration::from_secs(3600));
    }
    if let Some(mut f) = sh.out.forward.take() {
        // What is queued for the targets gets a few seconds, not more.
        for line in f.finish(Instant::now() + Duration::from_secs(5)) {
            eprintln!("watchdog udplogger: {line}");
        }
        sh.out.forward = Some(f);
    }
    write_metrics(&settings, &sh);
    let s = sh.stats;
    let o = sh.out.stats;
    eprintln!(
        "watchdog udplogger: stopped: {} datagrams, {} bytes, {} lines, {} markers, {} kernel drops, {} denied, {} lines cut, {} gaps, {} duplicates, {} late, {} events, {} senders evicted (peak {}), {} memory-cap flushes, peak buffered {} bytes, {} lines dropped on write failure, {} bytes unwritten",
        s.datagrams, s.bytes, o.lines, o.markers, s.kernel_drops, s.denied, s.cut, s.gaps, s.duplicates, s.late, s.events, s.evicted, s.peak_senders, s.memory_flushes, s.peak_buffered, o.dropped, sh.out.held()
    );
    result.map(|()| s)
}

fn write_metrics(settings: &Settings, sh: &Shared) {
    if let Some(p) = &settings.metrics_file {
        let mut text = sh.metrics();
        if let Some(f) = &sh.out.forward {
            text.push_str(&f.metrics());
        }
        if let Err(e) = crate::metrics::write_atomic(p, &text) {
            eprintln!(
                "watchdog udplogger: cannot write metrics to {}: {e}",
                p.display()
            );
        }
    }
}

/// A reading `c` of the socket's drop counter: what it grew by since the
/// last reading becomes a marker (a counter that went back is ignored).
fn note_drops(l: &mut socket::Listener, c: u32, sink: &mut impl Sink) {
    let new = c.wrapping_sub(l.drops);
    if new > 0 && new < u32::MAX / 2 {
        Receiver::kernel_drops(sink, l.addr, u64::from(new));
        l.drops = c;
    }
}

/// One batch of `n` datagrams from listener `l` into `sink`, with the
/// drops the socket's counter reported (`batch_drops`: up to now, marked
/// after the batch's datagrams, some of which the kernel may have queued
/// earlier).
#[allow(clippy::too_many_arguments)]
fn handle_batch(
    rx: &mut Receiver,
    sink: &mut impl Sink,
    l: &mut socket::Listener,
    batch: &RecvBatch,
    n: usize,
    batch_drops: Option<u32>,
    stamp: &Stamp,
    now: Instant,
) {
    for i in 0..n {
        let Some(d) = batch.get(i) else { break };
        if let Some(c) = d.drops {
            note_drops(l, c, sink);
        }
        if let Some(addr) = d.addr {
            rx.datagram(sink, addr, d.data, stamp, now);
        }
    }
    if let Some(c) = batch_drops {
        note_drops(l, c, sink);
    }
}

/// One receiving thread: its sockets, its senders, its signal pipe.
struct Worker<'a> {
    id: usize,
    rx: Receiver,
    listeners: Vec<socket::Listener>,
    signals: Signals,
    shared: &'a Mutex<Shared>,
    clock: &'a dyn Clock,
}

impl Worker<'_> {
    fn run(self) -> Result<(), String> {
        let Worker {
            id,
            mut rx,
            mut listeners,
            mut signals,
            shared,
            clock,
        } = self;
        let settings = Arc::clone(&rx.settings);
        let mut stamper = Stamper::new(settings.zone, settings.period);
        let mut batch = RecvBatch::new(BATCH, SLOT);
        // With one worker, lines go into the shared buffers as they come
        // (the lock is this worker's alone); with several, each batch is
        // staged without the lock and handed over at its end.
        let mut staged = (settings.workers > 1).then(Staged::default);
        let mut last_recv_error: Option<Instant> = None;
        let mut next_sweep: Option<Instant> = None;
        let mut last_round = 0usize;
        let mut backlog = false;
        let mut next_metrics = clock.mono();
        if id == 0 {
            // Start-up is over (the other workers only enter this loop):
            // its code need not stay resident (see the function).
            let _ = crate::sys::release_code_pages();
        }
        loop {
            if last_round >= COALESCE_AT && !backlog {
                // Busy, but every queue was emptied: let datagrams gather
                // for a moment, so the next round takes full batches
                // instead of waking up for every few. The receive buffer
                // holds many milliseconds of traffic. With a backlog there
                // is no pause.
                std::thread::sleep(COALESCE);
            }
            last_round = 0;
            backlog = false;
            let now = clock.mono();
            let mut wait = Duration::from_secs(1);
            if let Some(t) = next_sweep {
                wait = wait.min(t.saturating_duration_since(now));
            }
            if let Some(t) = lock(shared).out.next_retry() {
                wait = wait.min(t.saturating_duration_since(now));
            }
            let ms = i32::try_from(wait.as_millis()).unwrap_or(1000);
            {
                let mut fds: Vec<PollFd<'_>> = listeners
                    .iter()
                    .map(|l| PollFd::new(l.fd.as_fd(), PollFlags::POLLIN))
                    .collect();
                fds.push(PollFd::new(signals.pipe.as_fd(), PollFlags::POLLIN));
                match poll(
                    &mut fds,
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
                ) {
                    Ok(_) | Err(nix::Error::EINTR) => {}
                    // Out of kernel memory for a moment: wait, do not exit.
                    Err(nix::Error::ENOMEM) => std::thread::sleep(Duration::from_millis(10)),
                    Err(e) => return Err(format!("poll: {e}")),
                }
            }
            signals.drain();
            // On SIGTERM, what is already queued is still read (bounded by
            // the receive buffer) before the unfinished lines are written.
            let stopping = signals.term.load(Ordering::Relaxed);
            let rounds = if stopping { 1 << 16 } else { BATCHES_PER_ROUND };
            for l in &mut listeners {
                let mut emptied = false;
                for _ in 0..rounds {
                    // Set back below when this batch came back full.
                    emptied = true;
                    let n = match batch.recv(l.fd.as_fd()) {
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            // ICMP errors and the like: report now and then, go on.
                            let now = clock.mono();
                            if last_recv_error
                                .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
                            {
                                eprintln!("watchdog udplogger: receive on {}: {e}", l.addr);
                                last_recv_error = Some(now);
                            }
                            break;
                        }
                    };
                    last_round += n;
                    // Drops up to now: marked after this batch's datagrams
                    // (some of which the kernel may have queued earlier).
                    let batch_drops = l.batch_drops();
                    let stamp = stamper.stamp(clock.wall());
                    let now = clock.mono();
                    if let Some(st) = staged.as_mut() {
                        // Several workers: parsed, reordered and searched
                        // without the lock; only writing the batch's lines
                        // into the shared buffers takes it.
                        let mut b = Batch { st, shared };
                        handle_batch(&mut rx, &mut b, l, &batch, n, batch_drops, &stamp, now);
                        st.apply(&mut lock(shared), &stamp, now);
                    } else {
                        let mut sh = lock(shared);
                        let mut d = Direct::new(&mut sh, &stamp, now);
                        handle_batch(&mut rx, &mut d, l, &batch, n, batch_drops, &stamp, now);
                    }
                    if n < batch.capacity() {
                        break;
                    }
                    emptied = false;
                }
                backlog |= !emptied;
            }
            let stamp = stamper.stamp(clock.wall());
            let now = clock.mono();
            // The batches' output is in the shared buffers by now: what
            // is left to write goes there directly.
            let mut sh = lock(shared);
            if stopping {
                rx.flush_partials(&mut Direct::new(&mut sh, &stamp, now), &stamp, now, true);
                sh.senders[id] = rx.sender_counters();
                sh.out.flush(&stamp, now);
                return Ok(());
            }
            let hup = signals.hup.swap(false, Ordering::Relaxed);
            if hup {
                rx.reload_names();
            }
            if next_sweep.is_some_and(|t| now >= t)
                || (next_sweep.is_none() && (rx.buffered > 0 || rx.undetected > 0))
            {
                if next_sweep.is_some() {
                    let mut d = Direct::new(&mut sh, &stamp, now);
                    rx.flush_partials(&mut d, &stamp, now, false);
                }
                next_sweep = rx.next_partial_check().map(|d| now + d);
            }
            if hup && id == 0 {
                eprintln!("watchdog udplogger: SIGHUP: reopening log files");
                sh.out.reopen(&stamp, now);
            }
            sh.out.flush(&stamp, now);
            sh.out.tick(now);
            if now >= next_metrics {
                sh.senders[id] = rx.sender_counters();
                if id == 0 {
                    write_metrics(&settings, &sh);
                }
                next_metrics = now + METRICS_EVERY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udplogger::settings::{OutputFormat, UdpLoggerConfig};
    use clock::{Period, Zone};
    use proptest::prelude::*;
    use std::path::Path;
    use std::time::SystemTime;

    /// Every file a receiver wrote under `dir` with its text, and its
    /// counters of lines and events, after `datagrams` from one sender.
    fn receive(
        dir: &Path,
        datagrams: &[Vec<u8>],
        detect: bool,
        json: bool,
    ) -> Vec<(String, String)> {
        let addr: SocketAddr = "10.0.0.7:6665".parse().unwrap();
        let from: Vec<_> = datagrams.iter().map(|d| (addr, d.clone())).collect();
        receive_from(dir, &from, detect, json, false, false)
    }

    /// [`receive`] of datagrams from several senders, in one file or one
    /// per sender; `staged`: through a worker's staging as with several
    /// workers, handed over every few datagrams as a batch is, instead
    /// of straight into the shared buffers.
    fn receive_from(
        dir: &Path,
        datagrams: &[(SocketAddr, Vec<u8>)],
        detect: bool,
        json: bool,
        staged: bool,
        per_sender: bool,
    ) -> Vec<(String, String)> {
        let c = UdpLoggerConfig {
            dir: dir.join("logs").display().to_string(),
            event_log: dir.join("events.json").display().to_string(),
            detect,
            output_format: if json {
                OutputFormat::Json
            } else {
                OutputFormat::Text
            },
            max_line_bytes: 64,
            layout: if per_sender {
                settings::Layout::PerSender
            } else {
                settings::Layout::Single
            },
            ..UdpLoggerConfig::default()
        };
        let settings = Arc::new(c.compile("udplogger").unwrap());
        let shared = Mutex::new(Shared::new(&settings));
        let mut rx = Receiver::new(
            Arc::clone(&settings),
            Names::new(HashMap::new(), None).unwrap(),
        );
        let stamp = Stamper::new(Zone::Utc, Period::Daily)
            .stamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000));
        let mut now = Instant::now();
        let mut st = Staged::default();
        for (i, (addr, d)) in datagrams.iter().enumerate() {
            // Time passes: a reorder window's wait runs out.
            now += Duration::from_millis(20);
            if staged {
                let mut b = Batch {
                    st: &mut st,
                    shared: &shared,
                };
                rx.datagram(&mut b, *addr, d, &stamp, now);
                if i % 7 == 6 {
                    st.apply(&mut lock(&shared), &stamp, now);
                }
            } else {
                let mut sh = lock(&shared);
                rx.datagram(
                    &mut Direct::new(&mut sh, &stamp, now),
                    *addr,
                    d,
                    &stamp,
                    now,
                );
            }
            if i % 50 == 49 {
                st.apply(&mut lock(&shared), &stamp, now);
                let mut sh = lock(&shared);
                rx.flush_partials(&mut Direct::new(&mut sh, &stamp, now), &stamp, now, false);
            }
        }
        let mut sh = lock(&shared);
        st.apply(&mut sh, &stamp, now);
        rx.flush_partials(&mut Direct::new(&mut sh, &stamp, now), &stamp, now, true);
        sh.out.flush(&stamp, now);
        let mut files = vec![(
            "counters".to_string(),
            format!("lines {} events {}", sh.out.stats.lines, sh.stats.events),
        )];
        for p in crate::testing::walk(dir) {
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace(&dir.display().to_string(), "DIR");
            files.push((p.strip_prefix(dir).unwrap().display().to_string(), text));
        }
        files.sort();
        files
    }

    /// Pieces of a console stream: ordinary lines, lines the prefilter
    /// stops (a panic and its report), lines to escape, a serial
    /// converter's `\r`, and lines past the length limit.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => "[ -~\t]{0,40}\n".prop_map(String::into_bytes),
            1 => Just(b"Kernel panic - not syncing: sysrq triggered crash\n".to_vec()),
            1 => Just(b"CPU: 1 PID: 42 Comm: bash Not tainted 6.1.0-28-amd64 #1\n".to_vec()),
            1 => Just(b"Call Trace:\n".to_vec()),
            1 => Just(b"bell\x07 and caf\xc3\xa9\r\n".to_vec()),
            1 => "[a-z]{60,150}\n".prop_map(String::into_bytes),
            1 => "[a-z ]{1,20}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// However a stream is cut into datagrams, the receiver writes the
        /// same files and finds the same events as when every byte comes
        /// alone (which never offers a datagram of whole lines, so every
        /// line goes through line assembly one by one).
        #[test]
        fn whole_line_datagrams_write_what_single_bytes_write(
            pieces in proptest::collection::vec(piece(), 1..40),
            cuts in proptest::collection::vec(1usize..6, 1..40),
            detect in any::<bool>(),
            json in any::<bool>(),
        ) {
            let stream: Vec<u8> = pieces.concat();
            let mut datagrams = Vec::new();
            let (mut rest, mut k) = (&stream[..], 0);
            let mut it = pieces.iter().map(Vec::len);
            while !rest.is_empty() {
                // Datagrams of whole pieces (1 to 5 of them), as senders
                // send them.
                let n: usize = it.by_ref().take(cuts[k % cuts.len()]).sum();
                let n = n.clamp(1, rest.len());
                datagrams.push(rest[..n].to_vec());
                rest = &rest[n..];
                k += 1;
            }
            let bytes: Vec<Vec<u8>> = stream.iter().map(|&b| vec![b]).collect();
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let by_datagram = receive(a.path(), &datagrams, detect, json);
            let by_byte = receive(b.path(), &bytes, detect, json);
            prop_assert_eq!(by_datagram, by_byte);
        }

        /// A worker's staged output (several workers) is what one worker
        /// writes straight into the shared buffers: the same files in
        /// the same order, markers and events, for senders that
        /// interleave plain and extended records, reordered, repeated and
        /// lost, with real panics among them.
        #[test]
        fn staged_output_is_what_direct_output_is(
            picks in proptest::collection::vec((0usize..5, 0usize..8, 0usize..4), 1..120),
            detect in any::<bool>(),
            json in any::<bool>(),
            per_sender in any::<bool>(),
        ) {
            let panic: Vec<&str> = PANIC.lines().collect();
            let mut seq = [0u64; 5];
            let mut datagrams = Vec::new();
            for (who, what, shuffle) in picks {
                let addr = SocketAddr::from(([10, 0, 0, 1 + u8::try_from(who).unwrap()], 6665));
                let line = panic[usize::try_from(seq[who]).unwrap() % panic.len()];
                let d = if who < 2 {
                    // Plain senders: whole lines, pieces, one unfinished.
                    match what {
                        0 => format!("{line}\n{line}\n"),
                        1 => line[..line.len() / 2].to_string(),
                        _ => format!("{line}\n"),
                    }
                } else {
                    // Extended senders: in order, ahead (a hole), or a
                    // copy of the last one.
                    match shuffle {
                        0 => seq[who] += 2,
                        1 => seq[who] = seq[who].saturating_sub(1),
                        _ => seq[who] += 1,
                    }
                    format!("4,{},{},-;{line}\n", seq[who], 1_000_000 + seq[who] * 1000)
                };
                if who < 2 {
                    seq[who] += 1;
                }
                datagrams.push((addr, d.into_bytes()));
            }
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let direct = receive_from(a.path(), &datagrams, detect, json, false, per_sender);
            let staged = receive_from(b.path(), &datagrams, detect, json, true, per_sender);
            prop_assert_eq!(by_sender(&direct), by_sender(&staged));
        }
    }

    /// A sender's lines in a file.
    type Group = (String, Vec<String>);

    /// Each file's lines grouped by the sender they name, in their order:
    /// the final flush visits senders in the order of the sender table,
    /// which is seeded per process.
    fn by_sender(files: &[(String, String)]) -> Vec<(String, Vec<Group>)> {
        files
            .iter()
            .map(|(name, text)| {
                let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for line in text.lines() {
                    let who = line
                        .find("10.0.0.")
                        .map_or("", |i| &line[i..(i + 8).min(line.len())]);
                    groups
                        .entry(who.to_string())
                        .or_default()
                        .push(line.to_string());
                }
                (name.clone(), groups.into_iter().collect())
            })
            .collect()
    }

    /// The lines of a real panic (Debian 6.1, SysRq `c`).
    const PANIC: &str = "sysrq: Trigger a crash
Kernel panic - not syncing: sysrq triggered crash
CPU: 0 PID: 312 Comm: sh Not tainted 6.1.0-28-amd64 #1  Debian 6.1.119-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
Call Trace:
 <TASK>
 dump_stack_lvl+0x44/0x5c
 panic+0x118/0x2ed
 sysrq_handle_crash+0x16/0x20
 __handle_sysrq.cold+0x43/0x11b
 write_sysrq_trigger+0x24/0x40
 proc_reg_write+0x56/0xa0
 vfs_write+0xcb/0x3f0
 ksys_write+0x6f/0xf0
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>
Kernel Offset: 0x2a000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)";

    #[test]
    fn the_sender_table_tells_every_address_apart() {
        let addrs: Vec<SocketAddr> = [
            "10.0.0.1:6665",
            "10.0.0.1:6666",
            "10.0.0.2:6665",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[::a00:1]:6665",
            "[fe80::1]:6665",
            "[fe80::1%2]:6665",
            "[fe80::1%3]:6665",
            "[2001:db8::1]:6665",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let mut t: HashMap<Peer, usize, foldhash::fast::RandomState> = HashMap::default();
        for (i, a) in addrs.iter().enumerate() {
            assert_eq!(t.insert(Peer::of(*a), i), None, "{a}");
            // The key gives the address back.
            assert_eq!(Peer::of(*a).addr(), *a);
        }
        for (i, a) in addrs.iter().enumerate() {
            assert_eq!(t.get(&Peer::of(*a)), Some(&i), "{a}");
        }
        // IPv4 through a dual-stack socket is the IPv4 sender; the flow
        // label is not part of who sent.
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:6665".parse().unwrap();
        assert_eq!(t.get(&Peer::of(mapped)), Some(&0));
        assert_eq!(Peer::of(mapped).addr(), addrs[0]);
        let labelled = std::net::SocketAddrV6::new("2001:db8::1".parse().unwrap(), 6665, 7, 0);
        assert_eq!(t.get(&Peer::of(labelled.into())), Some(&9));
    }

    #[test]
    fn ipv4_through_a_dual_stack_socket_is_named_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:6665".parse().unwrap();
        assert_eq!(source_name(mapped), "10.1.2.3:6665");
        assert_eq!(
            source_name("[fe80::1]:6665".parse().unwrap()),
            "[fe80::1]:6665"
        );
    }
}
