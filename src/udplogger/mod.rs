//! `watchdog udplogger`: the netconsole / serial-over-UDP log server.
//!
//! One thread, one `poll(2)` loop: drain every socket with `recvmmsg`,
//! hand each datagram to its sender's assembler (plain text) or extended
//! reassembler, append lines to file buffers, write them at the end of the
//! round, flush partial lines that waited too long, handle signals.
//!
//! - [`socket`]: binding, receive buffer, drop counter
//! - [`assemble`]: per-sender line assembly (pure)
//! - [`extended`]: extended netconsole parsing and reassembly (pure)
//! - [`output`]: file naming, rotation, formatting, write faults
//! - [`clock`]: wall and monotonic time, injectable for tests
//! - [`allow`]: sender allowlist
//! - [`settings`]: the `udplogger:` section, its command-line overrides,
//!   and their validation into [`Settings`]

pub mod allow;
pub mod assemble;
pub mod clock;
pub mod extended;
pub mod output;
pub mod settings;
pub mod socket;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::kernel::printk;
use crate::marker::{Body, Marker};
use crate::sys::RecvBatch;
use assemble::{Assembler, End};
use clock::{Clock, Stamp, Stamper};
use extended::{Event, ExtState};
use output::Output;
pub use settings::{InputFormat, Settings};

/// Datagrams per `recvmmsg` call.
const BATCH: usize = 64;
/// Slot per datagram: any UDP payload fits, nothing is truncated.
const SLOT: usize = 65536;
/// A round that read this many datagrams means load: wait `COALESCE`
/// before the next round.
const COALESCE_AT: usize = 16;
const COALESCE: Duration = Duration::from_micros(500);
/// Batches taken from one socket before the others get their turn.
const BATCHES_PER_ROUND: usize = 16;

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
}

/// How often the metrics file is rewritten.
pub const METRICS_EVERY: Duration = Duration::from_secs(15);

struct Sender {
    source: String,
    asm: Assembler,
    ext: ExtState,
    ext_since: Option<Instant>,
    last_seen: Instant,
    /// Lines written for this sender, and extended records it lost.
    lines: u64,
    missing: u64,
}

/// The receiver's state between datagrams.
pub struct Receiver {
    settings: Settings,
    senders: HashMap<SocketAddr, Sender>,
    buffered: usize,
    pub out: Output,
    pub stats: Stats,
}

/// Where a sender's lines go, for the emit callbacks.
struct Cx<'a> {
    stamp: &'a Stamp,
    src: &'a str,
    max: usize,
    now: Instant,
}

/// Writes a plain line and, for a cut, the marker after it.
fn put_line(out: &mut Output, stats: &mut Stats, cx: &Cx<'_>, line: &[u8], end: End) {
    out.line(cx.stamp, cx.src, line, None, &[], cx.now);
    if end == End::Cut {
        stats.cut = stats.cut.saturating_add(1);
        let body = Body::Cut {
            seq: None,
            kept: u64::try_from(cx.max).unwrap_or(u64::MAX),
            total: None,
        };
        out.marker(cx.stamp, Some(cx.src), &Marker::new(cx.src, body), cx.now);
    }
}

fn put_event(out: &mut Output, stats: &mut Stats, cx: &Cx<'_>, ev: Event<'_>) {
    let body = match ev {
        Event::Record { meta, text, dict } => {
            out.line(cx.stamp, cx.src, text, Some(&meta), &dict, cx.now);
            return;
        }
        Event::Marker(body) => body,
    };
    let m = Marker::new(cx.src, body);
    match m.body {
        Body::Gap { .. } => {
            stats.gaps = stats.gaps.saturating_add(1);
            // Counters saturate: a sender's numbers must never wrap one.
            stats.missing_records = stats.missing_records.saturating_add(m.lost().unwrap_or(0));
        }
        Body::Cut { .. } => stats.cut = stats.cut.saturating_add(1),
        _ => {}
    }
    out.marker(cx.stamp, Some(cx.src), &m, cx.now);
}

/// `a.b.c.d:port` or `[v6]:port`; IPv4 seen through a dual-stack socket
/// is shown as IPv4.
pub fn source_name(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

impl Receiver {
    pub fn new(settings: Settings) -> Receiver {
        let out = Output::new(settings.output.clone());
        Receiver {
            settings,
            senders: HashMap::new(),
            buffered: 0,
            out,
            stats: Stats::default(),
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
            "lines_dropped_total",
            "Lines dropped because the log could not be written.",
            o.dropped,
        );
        counter(
            "senders_evicted_total",
            "Idle senders evicted to make room.",
            s.evicted,
        );
        let _ = writeln!(
            m,
            "# HELP watchdog_udplogger_senders Senders with state held now."
        );
        let _ = writeln!(m, "# TYPE watchdog_udplogger_senders gauge");
        let _ = writeln!(m, "watchdog_udplogger_senders {}", self.senders.len());
        let mut senders: Vec<&Sender> = self.senders.values().collect();
        senders.sort_by(|a, b| a.source.cmp(&b.source));
        let _ = writeln!(m, "# HELP watchdog_udplogger_sender_lines_total Lines written per sender (since it was last evicted).");
        let _ = writeln!(m, "# TYPE watchdog_udplogger_sender_lines_total counter");
        for x in &senders {
            let _ = writeln!(
                m,
                "watchdog_udplogger_sender_lines_total{{sender=\"{}\"}} {}",
                label(&x.source),
                x.lines
            );
        }
        let _ = writeln!(m, "# HELP watchdog_udplogger_sender_missing_records_total Extended records missing per sender.");
        let _ = writeln!(
            m,
            "# TYPE watchdog_udplogger_sender_missing_records_total counter"
        );
        for x in &senders {
            let _ = writeln!(
                m,
                "watchdog_udplogger_sender_missing_records_total{{sender=\"{}\"}} {}",
                label(&x.source),
                x.missing
            );
        }
        m
    }

    /// Bytes held for unfinished lines and records, all senders.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// Reports kernel drops seen on a socket's counter.
    pub fn kernel_drops(&mut self, listen: SocketAddr, n: u64, stamp: &Stamp, now: Instant) {
        self.stats.kernel_drops = self.stats.kernel_drops.saturating_add(n);
        let m = Marker::new(listen.to_string(), Body::KernelDrop { count: n });
        self.out.marker(stamp, None, &m, now);
    }

    /// Handles one datagram from `addr`.
    pub fn datagram(&mut self, addr: SocketAddr, data: &[u8], stamp: &Stamp, now: Instant) {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        if !allow::allowed(&self.settings.allow, addr.ip()) {
            self.stats.denied = self.stats.denied.saturating_add(1);
            return;
        }
        self.stats.datagrams = self.stats.datagrams.saturating_add(1);
        self.stats.bytes = self.stats.bytes.saturating_add(data.len() as u64);
        if !self.senders.contains_key(&addr) {
            if self.senders.len() >= self.settings.max_senders {
                self.evict(stamp, now);
            }
            self.senders.insert(
                addr,
                Sender {
                    source: source_name(addr),
                    asm: Assembler::default(),
                    ext: ExtState::default(),
                    ext_since: None,
                    last_seen: now,
                    lines: 0,
                    missing: 0,
                },
            );
            self.stats.peak_senders = self.stats.peak_senders.max(self.senders.len());
        }
        let Receiver {
            settings,
            senders,
            out,
            stats,
            buffered,
        } = self;
        let Some(s) = senders.get_mut(&addr) else {
            return;
        };
        s.last_seen = now;
        let (lines0, missing0) = (out.stats.lines, stats.missing_records);
        let before = s.asm.pending() + s.ext.pending();
        let max = settings.max_line;
        let ext = match settings.format {
            InputFormat::Plain => None,
            _ if s.asm.pending() > 0 => None,
            _ => printk::parse(data),
        };
        let cx = Cx {
            stamp,
            src: s.source.as_str(),
            max,
            now,
        };
        match ext {
            Some((h, body)) => {
                s.ext
                    .feed(&h, body, max, &mut |ev| put_event(out, stats, &cx, ev));
            }
            None => {
                s.asm
                    .feed(data, max, now, &mut |l, e| put_line(out, stats, &cx, l, e));
            }
        }
        s.lines = s
            .lines
            .saturating_add(out.stats.lines.saturating_sub(lines0));
        s.missing = s
            .missing
            .saturating_add(stats.missing_records.saturating_sub(missing0));
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
            stats.memory_flushes = stats.memory_flushes.saturating_add(1);
            flush_sender(out, stats, stamp, s, max, now);
            *buffered -= after;
        }
        stats.peak_buffered = stats.peak_buffered.max(*buffered);
    }

    /// Makes room for a new sender: the least recently heard eighth of the
    /// table goes, their unfinished lines written first.
    fn evict(&mut self, stamp: &Stamp, now: Instant) {
        let mut ages: Vec<(Instant, SocketAddr)> = self
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
                self.buffered -= s.asm.pending() + s.ext.pending();
                flush_sender(
                    &mut self.out,
                    &mut self.stats,
                    stamp,
                    &mut s,
                    self.settings.max_line,
                    now,
                );
                self.stats.evicted = self.stats.evicted.saturating_add(1);
            }
        }
    }

    /// Writes unfinished lines older than the partial timeout (all of them
    /// when `all`, at shutdown).
    pub fn flush_partials(&mut self, stamp: &Stamp, now: Instant, all: bool) {
        let timeout = self.settings.partial_timeout;
        let old = |t: Option<Instant>| t.is_some_and(|t| all || now.duration_since(t) >= timeout);
        let max = self.settings.max_line;
        for s in self.senders.values_mut() {
            if old(s.asm.since()) || old(s.ext_since) {
                self.buffered -= s.asm.pending() + s.ext.pending();
                flush_sender(&mut self.out, &mut self.stats, stamp, s, max, now);
            }
        }
    }

    /// Time until the next partial line may be due, if any is held.
    fn next_partial_check(&self) -> Option<Duration> {
        (self.buffered > 0).then(|| {
            (self.settings.partial_timeout / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(1))
        })
    }
}

fn flush_sender(
    out: &mut Output,
    stats: &mut Stats,
    stamp: &Stamp,
    s: &mut Sender,
    max: usize,
    now: Instant,
) {
    let cx = Cx {
        stamp,
        src: s.source.as_str(),
        max,
        now,
    };
    s.asm.flush(&mut |l, e| put_line(out, stats, &cx, l, e));
    s.ext.flush(max, &mut |ev| put_event(out, stats, &cx, ev));
    s.ext_since = None;
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

/// Binds the sockets (reporting each on stderr), then receives until
/// SIGTERM or SIGINT. Returns the counters.
pub fn run(settings: Settings, clock: &dyn Clock) -> Result<Stats, String> {
    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let l = match socket::listen(*addr, settings.receive_buffer) {
            Err(nix::Error::EAFNOSUPPORT) if settings.listen_is_default => {
                let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
                eprintln!("watchdog udplogger: IPv6 is not available; listening on {v4} only");
                socket::listen(v4, settings.receive_buffer)
            }
            r => r,
        }
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!("watchdog udplogger: listening on {}, {}", l.addr, l.buffer);
        listeners.push(l);
    }
    let mut signals =
        Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    // A start-up self-test: a directory that cannot be written is said
    // now, not at the first line; receiving starts anyway (lines are held
    // and retried, as for any write failure).
    if let Err(e) = output::check_dir(&settings.output.dir) {
        eprintln!(
            "watchdog udplogger: {}: {e}; lines will be held in memory and writing retried",
            settings.output.dir.display()
        );
    }
    eprintln!(
        "watchdog udplogger: writing to {}",
        settings.output.dir.display()
    );
    let mut stamper = Stamper::new(settings.zone, settings.period);
    let forward = if settings.forward.is_empty() {
        None
    } else {
        Some(crate::forward::udplogger::UdpForward::start(
            &settings.forward,
            |_, text| eprintln!("watchdog udplogger: {text}"),
        )?)
    };
    let mut rx = Receiver::new(settings);
    rx.out.forward = forward;
    let mut batch = RecvBatch::new(BATCH, SLOT);
    let mut last_recv_error: Option<Instant> = None;
    let mut next_sweep: Option<Instant> = None;
    let mut last_round = 0usize;
    let mut backlog = false;
    let metrics_file = rx.settings.metrics_file.clone();
    let write_metrics = |rx: &Receiver| {
        if let Some(p) = &metrics_file {
            let mut text = rx.metrics();
            if let Some(f) = &rx.out.forward {
                text.push_str(&f.metrics());
            }
            if let Err(e) = crate::metrics::write_atomic(p, &text) {
                eprintln!(
                    "watchdog udplogger: cannot write metrics to {}: {e}",
                    p.display()
                );
            }
        }
    };
    let mut next_metrics = clock.mono();
    loop {
        if last_round >= COALESCE_AT && !backlog {
            // Busy, but every queue was emptied: let datagrams gather for
            // a moment, so the next round takes full batches instead of
            // waking up for every few. The receive buffer holds many
            // milliseconds of traffic. With a backlog there is no pause.
            std::thread::sleep(COALESCE);
        }
        last_round = 0;
        backlog = false;
        let now = clock.mono();
        let mut wait = Duration::from_secs(1);
        if let Some(t) = next_sweep {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if let Some(t) = rx.out.next_retry() {
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
        // On SIGTERM, what is already queued is still read (bounded by the
        // receive buffer) before the unfinished lines are written.
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
                let stamp = stamper.stamp(clock.wall());
                let now = clock.mono();
                for i in 0..n {
                    let Some(d) = batch.get(i) else { break };
                    if let Some(c) = d.drops {
                        let new = c.wrapping_sub(l.drops);
                        if new > 0 && new < u32::MAX / 2 {
                            rx.kernel_drops(l.addr, u64::from(new), &stamp, now);
                            l.drops = c;
                        }
                    }
                    if let Some(addr) = d.addr {
                        rx.datagram(addr, d.data, &stamp, now);
                    }
                }
                if n < batch.capacity() {
                    break;
                }
                emptied = false;
            }
            backlog |= !emptied;
        }
        if stopping {
            break;
        }
        let stamp = stamper.stamp(clock.wall());
        let now = clock.mono();
        if signals.hup.swap(false, Ordering::Relaxed) {
            eprintln!("watchdog udplogger: SIGHUP: reopening log files");
            rx.out.reopen(&stamp, now);
        }
        if next_sweep.is_some_and(|t| now >= t) || (next_sweep.is_none() && rx.buffered > 0) {
            if next_sweep.is_some() {
                rx.flush_partials(&stamp, now, false);
            }
            next_sweep = rx.next_partial_check().map(|d| now + d);
        }
        rx.out.flush(&stamp, now);
        rx.out.tick(now);
        if metrics_file.is_some() && now >= next_metrics {
            write_metrics(&rx);
            next_metrics = now + METRICS_EVERY;
        }
    }
    let stamp = stamper.stamp(clock.wall());
    let now = clock.mono();
    rx.flush_partials(&stamp, now, true);
    rx.out.flush(&stamp, now);
    if rx.out.held() > 0 {
        // One last try, a moment later, before what is held is lost.
        std::thread::sleep(Duration::from_millis(300));
        rx.out.flush(&stamp, now + Duration::from_secs(3600));
    }
    if let Some(mut f) = rx.out.forward.take() {
        // What is queued for the targets gets a few seconds, not more.
        for line in f.finish(Instant::now() + Duration::from_secs(5)) {
            eprintln!("watchdog udplogger: {line}");
        }
        rx.out.forward = Some(f);
    }
    write_metrics(&rx);
    let s = rx.stats;
    let o = rx.out.stats;
    eprintln!(
        "watchdog udplogger: stopped: {} datagrams, {} bytes, {} lines, {} markers, {} kernel drops, {} denied, {} lines cut, {} gaps, {} senders evicted (peak {}), {} memory-cap flushes, peak buffered {} bytes, {} lines dropped on write failure, {} bytes unwritten",
        s.datagrams, s.bytes, o.lines, o.markers, s.kernel_drops, s.denied, s.cut, s.gaps, s.evicted, s.peak_senders, s.memory_flushes, s.peak_buffered, o.dropped, rx.out.held()
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

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
