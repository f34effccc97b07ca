//! Kernel log parsing: the one implementation of "what does this kernel
//! line mean", shared by `watchdog run` (live /dev/kmsg records) and
//! `watchdog scan` (saved logs).
//!
//! Three layers:
//! - [`frame`]: bytes of one line → [`Record`] (text, timestamps, level,
//!   sequence number, host), the log format detected per line;
//! - [`msg`]: the text of one message → [`msg::Msg`], what it says;
//! - [`Parser`] (here): a streaming state machine that assembles
//!   multi-line incidents (an OOM report, a hung-task report with its
//!   stack, an oops) into one [`Event`] each, with state kept per source
//!   (host or sender) and bounded in size.
//!
//! Use: feed every record to [`Parser::push`] in order; call
//! [`Parser::flush`] when the input goes quiet (the daemon: after a short
//! idle period) or ends. An incident ends at the next unrelated report, at
//! a boot, after [`MAX_INCIDENT_LINES`] lines, or at `flush`.

pub mod frame;
pub mod msg;

use std::collections::HashMap;

pub use frame::{Framer, Record};
use msg::{classify, Killed, Msg};

use crate::events::{
    AllocFailure, Body, Crash, Event, FsError, HungTask, IoError, Lost, Mce, NetdevTimeout,
    OomKill, SignalDeath, SoftLockup, Summary, Sysrq, WallTime, MAX_FRAMES,
};

/// Words of which every line that can start a report, or change the
/// parser's state while no incident is open, holds at least one (a test
/// holds [`msg::classify`] to it). A reader with an idle parser
/// ([`Parser::is_idle`]) skips, without framing them, the lines that hold
/// none: most of an ordinary log.
pub const PREFILTER: &[&str] = &[
    "INFO: ",
    "Internal error",
    "I/O error",
    "BUG",
    "Oops",
    "Out of memory",
    "Out of Memory",
    "Kernel panic",
    "Killed process",
    "Memory cgroup out of memory",
    "oom-kill",
    "sysrq",
    "SysRq",
    "printk messages dropped",
    "fatal signal",
    "general protection",
    "Unable to handle kernel",
    "segfault at",
    "]: unhandled ",
    "] trap ",
    "invalid opcode",
    "WARNING: ",
    "hard LOCKUP",
    "-fs error",
    "Remounting filesystem read-only",
    "EDAC ",
    "XFS (",
    "BTRFS",
    "Hardware Error",
    "Machine check",
    " error, dev ",
    "NETDEV WATCHDOG",
    "page allocation failure",
    "no killable processes",
    // Not kernel text, but the log's own word on lost messages and
    // restarts: journald, udplogger markers, journal boot lines.
    "Missed ",
    "udplogger",
    "-- ",
];

/// The [`PREFILTER`] automaton, built once (`None` only if the crate
/// refused the words, which a test rules out).
pub fn prefilter() -> Option<&'static aho_corasick::AhoCorasick> {
    static AC: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> = std::sync::OnceLock::new();
    AC.get_or_init(|| {
        // Leftmost-first lets the crate use its SIMD (Teddy) searcher for
        // a few dozen words; any match will do, so the semantics do not
        // matter here.
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(PREFILTER)
            .ok()
    })
    .as_ref()
}

/// Whether `line` holds one of [`PREFILTER`]'s words: what
/// [`prefilter`]'s `is_match` says, for one short line at a time (a
/// kernel line, 50–200 bytes). The crate's packed (Teddy) searcher is
/// called directly: the automaton's search only wraps it, and for
/// haystacks this short its wrapping cost a fifth of the search. Where
/// the CPU has no SIMD searcher, the automaton answers.
pub fn line_has_prefilter_word(line: &[u8]) -> bool {
    static PACKED: std::sync::OnceLock<Option<aho_corasick::packed::Searcher>> =
        std::sync::OnceLock::new();
    let packed = PACKED.get_or_init(|| {
        aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(PREFILTER)
            .build()
    });
    match packed {
        Some(s) => s.find(line).is_some(),
        None => prefilter().is_none_or(|ac| ac.is_match(line)),
    }
}

/// Lines an open incident may run before it is closed anyway (a stack
/// trace, the Mem-Info of a large NUMA box). The OOM task table's rows do
/// not count: a host has as many as it has processes.
pub const MAX_INCIDENT_LINES: usize = 1000;
/// Processes remembered from one OOM task table.
pub const MAX_TABLE_ROWS: usize = 65_536;
/// Sources (hosts, senders) tracked at once; the least recently seen one is
/// closed when a new one arrives past this.
pub const MAX_SOURCES: usize = 1024;
/// Two RCU stall reports this close (kernel seconds) are one stall seen by
/// two CPUs, not two stalls.
const RCU_SAME_STALL_SECS: f64 = 5.0;
/// I/O errors on one disk within this many seconds of the first are one
/// `io_error` event with a count: a failing disk prints thousands.
pub const IO_BURST_SECS: i64 = 10;

/// Where and when a line was logged.
#[derive(Debug, Clone, Default)]
struct Stamp {
    time: Option<WallTime>,
    kernel_time: Option<f64>,
    host: Option<String>,
    line: Option<u64>,
}

impl Stamp {
    fn of(rec: &Record, line: Option<u64>) -> Stamp {
        Stamp {
            time: rec.wall_time,
            kernel_time: rec.kernel_time,
            host: rec.host.clone(),
            line,
        }
    }
}

#[derive(Debug)]
struct OomAcc {
    trigger_comm: Option<String>,
    trigger_pid: Option<u32>,
    memcg: bool,
    constraint: Option<String>,
    /// Victim named by the `oom-kill:` line: comm, pid, uid.
    named: Option<(Option<String>, Option<u32>, Option<u32>)>,
    chosen: Option<(u32, String, Stamp)>,
    /// Column indexes of uid and oom_score_adj, and the column count.
    table: Option<(Option<usize>, Option<usize>, usize)>,
    task_memcg: Option<String>,
    oom_memcg: Option<String>,
    rows: HashMap<u32, (Option<u32>, Option<i32>)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Absorb {
    Rcu,
    SoftLockup,
}

/// Which kind a kernel report with a task and a stack becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CrashKind {
    Oops,
    Bug,
    Warning,
    Panic,
    HardLockup,
}

/// An oops, BUG, WARNING, panic or hard lockup being read: its first line
/// is the summary, the lines after it give the task, RIP and frames.
#[derive(Debug)]
struct CrashAcc {
    kind: CrashKind,
    crash: Crash,
    at: Stamp,
    /// die()'s `[#N]`, once seen: a die line with another number is a
    /// second oops.
    die_no: Option<u32>,
    /// Inside `Call Trace:`.
    in_trace: bool,
}

/// An I/O error burst on one disk.
#[derive(Debug)]
struct IoBurst {
    ev: IoError,
    at: Stamp,
}

#[derive(Debug)]
enum Open {
    /// The report, where it was, and whether its `Call Trace:` began.
    Hung(Box<HungTask>, Stamp, bool),
    Oom(Box<OomAcc>),
    Crash(Box<CrashAcc>),
    /// A report already emitted whose remaining lines (stack, registers) are
    /// swallowed so that a repeated header inside it is no second event.
    /// Holds the kernel time it started at.
    Absorb(Absorb, Option<f64>),
}

#[derive(Debug, Default)]
struct State {
    open: Option<Open>,
    lines: usize,
    last_seq: Option<u64>,
    used: u64,
    /// The last signal death (pid, comm, signal, tick): with
    /// print-fatal-signals=1 one death prints both `segfault at` and
    /// `potentially unexpected fatal signal`.
    last_signal: Option<(Option<u32>, String, u8, u64)>,
    /// A bare `potentially unexpected fatal signal N.` waiting for the
    /// `CPU: .. PID: .. Comm: ..` line that names its task.
    pending_fatal: Option<(u8, Stamp, u64)>,
    /// The I/O error burst being counted (kept apart from `open`: a
    /// storm goes on while other reports come and go).
    io: Option<IoBurst>,
}

/// Records within which the task line must follow a bare fatal-signal line.
const FATAL_SIGNAL_TASK_WINDOW: u64 = 3;

/// Records within which a second report of the same task's signal death is
/// the same death.
const SAME_DEATH_RECORDS: u64 = 64;

/// The streaming incident assembler. See the module documentation.
#[derive(Debug)]
pub struct Parser {
    source: String,
    states: HashMap<String, State>,
    tick: u64,
    /// Site patterns (`patterns:`), matched against every kernel message.
    patterns: Option<std::sync::Arc<crate::patterns::SitePatterns>>,
}

impl Parser {
    /// `source` is what events report as their `source` (`kmsg`, a file
    /// name).
    pub fn new(source: impl Into<String>) -> Parser {
        Parser {
            source: source.into(),
            states: HashMap::new(),
            tick: 0,
            patterns: None,
        }
    }

    /// Matches these site patterns against every kernel message from now
    /// on; each match is a `pattern` event.
    pub fn set_patterns(&mut self, patterns: std::sync::Arc<crate::patterns::SitePatterns>) {
        self.patterns = (!patterns.is_empty()).then_some(patterns);
    }

    /// Whether no incident is being assembled: then only a line holding
    /// one of [`PREFILTER`]'s words can change anything, and a reader may
    /// skip the others unframed. (An I/O burst being counted needs only
    /// I/O error lines, which hold those words.)
    pub fn is_idle(&self) -> bool {
        self.states
            .values()
            .all(|s| s.open.is_none() && s.pending_fatal.is_none())
    }

    /// The kind of a panic or oops report being assembled, if any: its
    /// event comes when the report ends, but a reader keeping "last words"
    /// wants to know at its first line.
    pub fn fatal_open(&self) -> Option<&'static str> {
        self.states.values().find_map(|s| match &s.open {
            Some(Open::Crash(c)) => match c.kind {
                CrashKind::Panic => Some("panic"),
                CrashKind::Oops => Some("oops"),
                _ => None,
            },
            _ => None,
        })
    }

    /// Whether site patterns are set (a prefilter must then let every
    /// line through to them).
    pub fn has_patterns(&self) -> bool {
        self.patterns.is_some()
    }

    /// Feeds one record; returns the events it completed (often none).
    pub fn push(&mut self, rec: &Record) -> Vec<Event> {
        self.push_at(rec, None)
    }

    /// Like [`push`](Self::push), with the record's line number in a file.
    pub fn push_at(&mut self, rec: &Record, line: Option<u64>) -> Vec<Event> {
        let mut out = Vec::new();
        if rec.boundary {
            if let Some(host) = rec.host.as_deref() {
                // One sender rebooted (a udplogger `reset` marker).
                let Parser { source, states, .. } = self;
                if let Some(st) = states.get_mut(host) {
                    let mut ctx = Ctx {
                        source,
                        out: &mut out,
                    };
                    close(st, &mut ctx);
                    close_burst(st, &mut ctx);
                    st.last_seq = None;
                }
                return out;
            }
            // A journal's `-- Boot ... --`: every host's incidents are over.
            out = self.flush();
            for st in self.states.values_mut() {
                st.last_seq = None;
            }
            return out;
        }
        if rec.ignore {
            return out;
        }
        let key = rec.host.as_deref().unwrap_or("");
        self.tick += 1;
        if !self.states.contains_key(key) {
            if self.states.len() >= MAX_SOURCES {
                self.evict(&mut out);
            }
            self.states.insert(key.to_string(), State::default());
        }
        let Parser {
            source,
            states,
            tick,
            patterns,
        } = self;
        let Some(st) = states.get_mut(key) else {
            return out;
        };
        st.used = *tick;
        let mut ctx = Ctx {
            source,
            out: &mut out,
        };
        let stamp = || Stamp::of(rec, line);
        if let Some(count) = rec.lost {
            // The log's own word that messages are missing here.
            ctx.emit(
                &stamp(),
                Body::Lost(Lost {
                    count,
                    reason: None,
                }),
            );
            return out;
        }
        if let Some(seq) = rec.seq {
            match st.last_seq {
                // A jump no log buffer could have lost (a forged or
                // corrupt header): a restart, as udplogger says `reset`.
                Some(last) if seq > last.saturating_add(crate::marker::MAX_GAP + 1) => {
                    close(st, &mut ctx)
                }
                Some(last) if seq > last.saturating_add(1) => {
                    ctx.emit(
                        &stamp(),
                        Body::Lost(Lost {
                            count: seq - last - 1,
                            reason: None,
                        }),
                    );
                }
                // The same record again (two netconsole targets, a
                // replayed capture): already handled.
                Some(last) if seq == last => return out,
                // Numbering restarted: the host rebooted.
                Some(last) if seq < last => close(st, &mut ctx),
                _ => {}
            }
            st.last_seq = Some(seq);
        }
        if !rec.kernel {
            // systemd-journald: `Missed 12 kernel messages`.
            if let Some(n) = rec
                .text
                .strip_prefix("Missed ")
                .and_then(|r| r.strip_suffix(" kernel messages"))
                .and_then(|n| n.parse().ok())
            {
                ctx.emit(
                    &stamp(),
                    Body::Lost(Lost {
                        count: n,
                        reason: None,
                    }),
                );
            }
            return out;
        }
        let m = classify(&rec.text);
        step(st, m, rec, line, &mut ctx);
        if let Some(p) = patterns {
            for body in p.matches(rec.text.trim_end(), rec.level) {
                ctx.emit(&stamp(), Body::Pattern(body));
            }
        }
        out
    }

    /// Closes every open incident and returns its events. The parser stays
    /// usable: call it when input goes quiet or ends.
    pub fn flush(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let Parser { source, states, .. } = self;
        let mut open: Vec<(&String, &mut State)> = states
            .iter_mut()
            .filter(|(_, s)| s.open.is_some() || s.io.is_some())
            .collect();
        open.sort_by(|a, b| a.0.cmp(b.0));
        for (_, st) in open {
            let mut ctx = Ctx {
                source,
                out: &mut out,
            };
            close(st, &mut ctx);
            close_burst(st, &mut ctx);
        }
        out
    }

    /// Line number of the earliest event still held by an open incident:
    /// events on later lines may already have been returned. A caller that
    /// wants file order holds back returned events from this line on.
    pub fn pending_line(&self) -> Option<u64> {
        self.states
            .values()
            .flat_map(|s| {
                let open = match &s.open {
                    Some(Open::Hung(_, at, _)) => at.line,
                    Some(Open::Oom(acc)) => acc.chosen.as_ref().and_then(|c| c.2.line),
                    Some(Open::Crash(c)) => c.at.line,
                    _ => None,
                };
                [open, s.io.as_ref().and_then(|b| b.at.line)]
            })
            .flatten()
            .min()
    }

    /// At end of input: [`flush`](Self::flush).
    pub fn finish(&mut self) -> Vec<Event> {
        self.flush()
    }

    fn evict(&mut self, out: &mut Vec<Event>) {
        let Some(oldest) = self
            .states
            .iter()
            .min_by_key(|(_, s)| s.used)
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        if let Some(mut st) = self.states.remove(&oldest) {
            let mut ctx = Ctx {
                source: &self.source,
                out,
            };
            close(&mut st, &mut ctx);
            close_burst(&mut st, &mut ctx);
        }
    }
}

struct Ctx<'a> {
    source: &'a str,
    out: &'a mut Vec<Event>,
}

impl Ctx<'_> {
    fn emit(&mut self, at: &Stamp, body: Body) {
        self.out.push(Event {
            time: at.time,
            kernel_time: at.kernel_time,
            source: self.source.to_string(),
            host: at.host.clone(),
            line: at.line,
            incident: None,
            body,
        });
    }
}

/// Ends the open incident, emitting what it had gathered.
fn close(st: &mut State, ctx: &mut Ctx) {
    st.lines = 0;
    match st.open.take() {
        Some(Open::Hung(h, at, _)) => ctx.emit(&at, Body::HungTask(*h)),
        Some(Open::Crash(c)) => emit_crash(*c, ctx),
        Some(Open::Oom(acc)) => {
            if let Some((pid, comm, at)) = acc.chosen.clone() {
                // The kernel chose a victim but its kill line never came
                // (lost, or the log ends): report the choice.
                let k = Killed {
                    pid,
                    comm,
                    ..Killed::default()
                };
                emit_oom(&acc, k, &at, ctx);
            }
        }
        Some(Open::Absorb(..)) | None => {}
    }
}

/// Emits the I/O error burst being counted, if any.
fn close_burst(st: &mut State, ctx: &mut Ctx) {
    if let Some(b) = st.io.take() {
        ctx.emit(&b.at, Body::IoError(b.ev));
    }
}

fn emit_crash(c: CrashAcc, ctx: &mut Ctx) {
    let mut crash = c.crash;
    crash.signature = signature(&crash.summary, &crash.frames);
    let body = match c.kind {
        CrashKind::Oops => Body::Oops(crash),
        CrashKind::Bug => Body::Bug(crash),
        CrashKind::Warning => Body::Warning(crash),
        CrashKind::Panic => Body::Panic(crash),
        CrashKind::HardLockup => Body::HardLockup(crash),
    };
    ctx.emit(&c.at, body);
}

/// A stable hash (FNV-1a, 64 bits) over the summary with its numbers
/// taken out (CPU, PID, addresses, line numbers differ between hosts and
/// builds) and the frames' symbols without offsets.
pub fn signature(summary: &str, frames: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    let mut in_num = false;
    for word in summary.split_whitespace() {
        // Hex words (addresses, status registers) are noise.
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let hexish = bare.len() >= 8 && bare.bytes().all(|b| b.is_ascii_hexdigit());
        if hexish {
            continue;
        }
        for b in word.bytes() {
            if b.is_ascii_digit() {
                in_num = true;
                continue;
            }
            if in_num {
                feed(b'#');
                in_num = false;
            }
            feed(b);
        }
        feed(b' ');
    }
    for f in frames {
        feed(b'|');
        let sym = f.split('+').next().unwrap_or(f);
        sym.bytes().for_each(&mut feed);
    }
    format!("{h:016x}")
}

/// Frames that only say how the report was printed, not where the bug is.
fn reporting_frame(f: &str) -> bool {
    const SKIP: &[&str] = &[
        "dump_stack",
        "dump_stack_lvl",
        "dump_backtrace",
        "show_stack",
        "__warn",
        "warn_slowpath_fmt",
        "warn_slowpath_null",
        "warn_slowpath_common",
        "report_bug",
        "handle_bug",
        "exc_invalid_op",
        "asm_exc_invalid_op",
        "do_error_trap",
        "do_invalid_op",
        "invalid_op",
        "panic",
        "__schedule",
        "schedule",
        "schedule_timeout",
        "schedule_preempt_disabled",
        "io_schedule",
        "io_schedule_timeout",
        "__switch_to",
        "__switch_to_asm",
        "ret_from_fork",
        "ret_from_fork_asm",
    ];
    let sym = f.split('+').next().unwrap_or(f);
    let sym = sym.split('.').next().unwrap_or(sym);
    SKIP.contains(&sym)
}

/// Adds a call-trace line's frame to `frames` (bounded).
fn push_frame(frames: &mut Vec<String>, text: &str) {
    if frames.len() >= MAX_FRAMES {
        return;
    }
    if let Some(f) = msg::frame(text) {
        if !reporting_frame(&f) {
            frames.push(f);
        }
    }
}

fn new_crash(kind: CrashKind, summary: String, rec: &Record, line: Option<u64>) -> Box<CrashAcc> {
    let (cpu, pid) = if kind == CrashKind::Warning {
        // `WARNING: CPU: 1 PID: 2 at ...` (4.x+).
        let cpu = summary
            .find("CPU: ")
            .and_then(|i| summary[i + 5..].split(' ').next()?.parse().ok());
        let pid = summary
            .find(" PID: ")
            .and_then(|i| summary[i + 6..].split(' ').next()?.parse().ok());
        (cpu, pid)
    } else {
        (None, None)
    };
    let die_no = if kind == CrashKind::Oops {
        oops_number(&summary)
    } else {
        None
    };
    Box::new(CrashAcc {
        kind,
        crash: Crash {
            summary,
            cpu,
            pid,
            ..Crash::default()
        },
        at: Stamp::of(rec, line),
        die_no,
        in_trace: false,
    })
}

/// Whether two device names are one disk (`sda` and its `sda1`,
/// `nvme0n1` and `nvme0n1p2`).
fn same_disk(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.strip_prefix(short) {
        Some("") => true,
        Some(rest) => {
            let rest = rest.strip_prefix('p').unwrap_or(rest);
            !rest.is_empty()
                && rest.bytes().all(|c| c.is_ascii_digit())
                && short.ends_with(|c: char| c.is_ascii_alphabetic() || short.starts_with("nvme"))
        }
        None => false,
    }
}

/// One I/O error line: counted into the burst of its disk, or the start of
/// a new burst (the previous one is emitted).
fn io_error(
    st: &mut State,
    device: String,
    sector: Option<u64>,
    op: Option<String>,
    rec: &Record,
    line: Option<u64>,
    ctx: &mut Ctx,
) {
    if let Some(b) = &mut st.io {
        let within = match (b.at.kernel_time, rec.kernel_time) {
            (Some(a), Some(t)) => t - a < IO_BURST_SECS as f64 && t >= a,
            _ => match (b.at.time, rec.wall_time) {
                (Some(a), Some(t)) => {
                    let d = t.comparable() - a.comparable();
                    d >= chrono::TimeDelta::zero() && d < chrono::TimeDelta::seconds(IO_BURST_SECS)
                }
                _ => true,
            },
        };
        let same =
            b.ev.device
                .as_deref()
                .is_some_and(|d| same_disk(d, &device));
        if within && same {
            b.ev.count += 1;
            // The whole disk names the burst better than one partition.
            if b.ev.device.as_ref().is_some_and(|d| device.len() < d.len()) {
                b.ev.device = Some(device);
            }
            if b.ev.sector.is_none() {
                b.ev.sector = sector;
            }
            if b.ev.op.is_none() {
                b.ev.op = op;
            }
            return;
        }
    }
    close_burst(st, ctx);
    st.io = Some(IoBurst {
        ev: IoError {
            device: Some(device),
            sector,
            op,
            count: 1,
        },
        at: Stamp::of(rec, line),
    });
}

fn emit_oom(acc: &OomAcc, k: Killed, at: &Stamp, ctx: &mut Ctx) {
    let row = acc.rows.get(&k.pid).copied().unwrap_or((None, None));
    let named = acc
        .named
        .as_ref()
        .filter(|(_, pid, _)| *pid == Some(k.pid) || pid.is_none());
    let ev = OomKill {
        pid: Some(k.pid),
        comm: Some(k.comm),
        memcg: acc.memcg || k.memcg,
        total_vm_kb: k.total_vm_kb,
        anon_rss_kb: k.anon_rss_kb,
        file_rss_kb: k.file_rss_kb,
        shmem_rss_kb: k.shmem_rss_kb,
        uid: k.uid.or(named.and_then(|n| n.2)).or(row.0),
        oom_score_adj: k.oom_score_adj.or(row.1),
        constraint: acc.constraint.clone(),
        trigger_comm: acc.trigger_comm.clone(),
        trigger_pid: acc.trigger_pid,
        task_memcg: acc.task_memcg.clone(),
        oom_memcg: acc.oom_memcg.clone(),
    };
    ctx.emit(at, Body::OomKill(ev));
}

fn new_oom(trigger_comm: Option<String>) -> Box<OomAcc> {
    Box::new(OomAcc {
        trigger_comm,
        trigger_pid: None,
        memcg: false,
        constraint: None,
        named: None,
        chosen: None,
        table: None,
        rows: HashMap::new(),
        task_memcg: None,
        oom_memcg: None,
    })
}

/// One message through the state machine.
fn step(st: &mut State, m: Msg, rec: &Record, line: Option<u64>, ctx: &mut Ctx) {
    let stamp = || Stamp::of(rec, line);
    if let Some((signal, at, tick)) = st.pending_fatal.take() {
        match &m {
            Msg::TaskLine { pid, comm } => {
                signal_death(st, comm.clone(), Some(*pid), signal, &at, ctx);
                return;
            }
            _ if st.used.saturating_sub(tick) < FATAL_SIGNAL_TASK_WINDOW => {
                st.pending_fatal = Some((signal, at, tick));
            }
            _ => {}
        }
    }
    // First, what the open incident makes of it.
    if let Some(Open::Oom(acc)) = &mut st.open {
        if oom_step(acc, &m, rec, line, &mut st.lines) {
            if let Msg::OomKilled(k) = m {
                if let Some(Open::Oom(acc)) = st.open.take() {
                    st.lines = 0;
                    emit_oom(&acc, k, &stamp(), ctx);
                }
                return;
            }
            if st.lines > MAX_INCIDENT_LINES {
                close(st, ctx);
            }
            return;
        }
    }
    if let Some(Open::Crash(c)) = &mut st.open {
        if crash_step(c, &m, rec) {
            st.lines += 1;
            if matches!(m, Msg::EndTrace) || st.lines > MAX_INCIDENT_LINES {
                close(st, ctx);
            }
            return;
        }
    }
    match (&mut st.open, &m) {
        (
            Some(Open::Hung(h, _, _)),
            Msg::HungBlocker {
                pid,
                owner_comm,
                owner_pid,
                lock,
            },
        ) => {
            if Some(*pid) == h.pid && h.blocker_pid.is_none() {
                h.blocker_comm = Some(owner_comm.clone());
                h.blocker_pid = Some(*owner_pid);
                h.blocker_lock.clone_from(lock);
            }
            return;
        }
        (Some(Open::Hung(_, _, in_trace)), Msg::CallTrace) => {
            *in_trace = true;
            st.lines += 1;
            return;
        }
        (Some(Open::Hung(h, _, true)), Msg::Other) => {
            push_frame(&mut h.frames, &rec.text);
            st.lines += 1;
            if st.lines > MAX_INCIDENT_LINES {
                close(st, ctx);
            }
            return;
        }
        (Some(Open::Absorb(Absorb::Rcu, at)), Msg::RcuStall(_)) => {
            let same = match (*at, rec.kernel_time) {
                (Some(a), Some(b)) => (b - a).abs() < RCU_SAME_STALL_SECS,
                _ => st.lines < 50,
            };
            if same {
                return;
            }
        }
        _ => {}
    }
    match m {
        Msg::Other
        | Msg::TaskLine { .. }
        | Msg::MemcgHint
        | Msg::EndTrace
        | Msg::HungBlocker { .. }
        | Msg::OomTableHeader { .. }
        | Msg::CallTrace
        | Msg::Rip(_) => {
            if st.open.is_some() {
                st.lines += 1;
                if st.lines > MAX_INCIDENT_LINES {
                    close(st, ctx);
                }
            }
        }
        Msg::HungTask { comm, pid, secs } => {
            close(st, ctx);
            st.open = Some(Open::Hung(
                Box::new(HungTask {
                    comm: Some(comm),
                    pid: Some(pid),
                    blocked_secs: secs,
                    blocker_comm: None,
                    blocker_pid: None,
                    blocker_lock: None,
                    frames: Vec::new(),
                    unreported: None,
                }),
                stamp(),
                false,
            ));
        }
        Msg::OomInvoked { comm } => {
            close(st, ctx);
            st.open = Some(Open::Oom(new_oom(comm)));
        }
        Msg::OomConstraint { .. } | Msg::OomChosen { .. } => {
            close(st, ctx);
            let mut acc = new_oom(None);
            let mut n = 0;
            oom_step(&mut acc, &m, rec, line, &mut n);
            st.open = Some(Open::Oom(acc));
        }
        Msg::OomKilled(k) => {
            close(st, ctx);
            let acc = new_oom(None);
            emit_oom(&acc, k, &stamp(), ctx);
        }
        Msg::SoftLockup {
            cpu,
            secs,
            comm,
            pid,
        } => {
            close(st, ctx);
            ctx.emit(
                &stamp(),
                Body::SoftLockup(SoftLockup {
                    cpu,
                    stuck_secs: secs,
                    comm,
                    pid,
                }),
            );
            st.open = Some(Open::Absorb(Absorb::SoftLockup, rec.kernel_time));
        }
        Msg::RcuStall(summary) => {
            close(st, ctx);
            ctx.emit(&stamp(), Body::RcuStall(Summary { summary }));
            st.open = Some(Open::Absorb(Absorb::Rcu, rec.kernel_time));
        }
        Msg::Oops(summary) => {
            close(st, ctx);
            st.open = Some(Open::Crash(new_crash(CrashKind::Oops, summary, rec, line)));
        }
        Msg::Bug(summary) => {
            close(st, ctx);
            st.open = Some(Open::Crash(new_crash(CrashKind::Bug, summary, rec, line)));
        }
        Msg::Warning(summary) => {
            close(st, ctx);
            st.open = Some(Open::Crash(new_crash(
                CrashKind::Warning,
                summary,
                rec,
                line,
            )));
        }
        Msg::HardLockup(cpu) => {
            close(st, ctx);
            let mut c = new_crash(
                CrashKind::HardLockup,
                rec.text.trim().to_string(),
                rec,
                line,
            );
            c.crash.cpu = cpu;
            st.open = Some(Open::Crash(c));
        }
        Msg::Panic(summary) => {
            close(st, ctx);
            // RHEL 7's hardlockup_panic and a global OOM with nothing to
            // kill say what happened in the panic line itself.
            if let Some(Msg::HardLockup(cpu)) = msg::classify_panic_reason(&summary) {
                let mut c = new_crash(CrashKind::HardLockup, summary.clone(), rec, line);
                c.crash.cpu = cpu;
                emit_crash(*c, ctx);
            } else if summary.contains("Out of memory and no killable processes") {
                ctx.emit(
                    &stamp(),
                    Body::OomNoKillable(Summary {
                        summary: summary.clone(),
                    }),
                );
            }
            st.open = Some(Open::Crash(new_crash(CrashKind::Panic, summary, rec, line)));
        }
        Msg::OomNoKillable => {
            close(st, ctx);
            ctx.emit(
                &stamp(),
                Body::OomNoKillable(Summary {
                    summary: rec.text.trim().to_string(),
                }),
            );
        }
        Msg::AllocFailure { comm, order, mode } => {
            close(st, ctx);
            ctx.emit(
                &stamp(),
                Body::AllocFailure(AllocFailure {
                    comm: Some(comm),
                    order,
                    mode,
                }),
            );
        }
        // One-line reports: the open incident (a WARN around a NETDEV
        // WATCHDOG line, an oops in the middle of an I/O storm) goes on.
        Msg::Mce {
            cpu,
            bank,
            corrected,
        } => {
            incident_line(st, ctx);
            ctx.emit(
                &stamp(),
                Body::Mce(Mce {
                    cpu,
                    bank,
                    corrected,
                    summary: rec.text.trim().to_string(),
                }),
            );
        }
        Msg::FsError {
            fs,
            device,
            read_only,
        } => {
            incident_line(st, ctx);
            ctx.emit(
                &stamp(),
                Body::FsError(FsError {
                    fs: Some(fs.to_string()),
                    device,
                    read_only,
                    summary: rec.text.trim().to_string(),
                }),
            );
        }
        Msg::NetdevTimeout {
            interface,
            driver,
            queue,
        } => {
            incident_line(st, ctx);
            ctx.emit(
                &stamp(),
                Body::NetdevTimeout(NetdevTimeout {
                    interface,
                    driver,
                    queue,
                }),
            );
        }
        Msg::IoError { device, sector, op } => {
            incident_line(st, ctx);
            io_error(st, device, sector, op, rec, line, ctx);
        }
        Msg::Sysrq(command) => {
            close(st, ctx);
            ctx.emit(&stamp(), Body::Sysrq(Sysrq { command }));
        }
        Msg::Lost(count) => ctx.emit(
            &stamp(),
            Body::Lost(Lost {
                count,
                reason: None,
            }),
        ),
        Msg::Signal { comm, pid, signal } => signal_death(st, comm, pid, signal, &stamp(), ctx),
        Msg::FatalSignal(signal) => st.pending_fatal = Some((signal, stamp(), st.used)),
        Msg::Boot => {
            close(st, ctx);
            close_burst(st, ctx);
        }
    }
}

/// Counts a line against the open incident's length limit.
fn incident_line(st: &mut State, ctx: &mut Ctx) {
    if st.open.is_some() {
        st.lines += 1;
        if st.lines > MAX_INCIDENT_LINES {
            close(st, ctx);
        }
    }
}

/// A message inside an open crash report. True when it belonged to it
/// (the task line, RIP, frames, die()'s line of the same oops).
fn crash_step(c: &mut CrashAcc, m: &Msg, rec: &Record) -> bool {
    match m {
        Msg::TaskLine { pid, comm } => {
            if c.crash.comm.is_none() {
                let (cpu, tainted, release) = msg::task_detail(rec.text.trim());
                c.crash.pid = c.crash.pid.or(Some(*pid));
                c.crash.comm = Some(comm.clone());
                c.crash.cpu = c.crash.cpu.or(cpu);
                c.crash.tainted = tainted;
                c.crash.kernel_release = release;
            }
            true
        }
        Msg::Rip(r) => {
            if c.crash.rip.is_none() {
                c.crash.rip = Some(r.clone());
            }
            true
        }
        Msg::CallTrace => {
            c.in_trace = true;
            true
        }
        Msg::Other => {
            if c.in_trace {
                push_frame(&mut c.crash.frames, &rec.text);
            }
            true
        }
        Msg::EndTrace | Msg::MemcgHint => true,
        // die()'s line after the fault's first line (`BUG: unable to
        // handle ...` then `Oops: 0000 [#1] SMP`) is the same oops; a new
        // `BUG:` or `kernel BUG at` is another report. A BUG that reaches
        // die() is an oops.
        Msg::Oops(text)
            if is_die_line(text) && matches!(c.kind, CrashKind::Oops | CrashKind::Bug) =>
        {
            let this = oops_number(text);
            if this.is_none() || c.die_no.is_none() || this == c.die_no {
                if c.die_no.is_none() {
                    c.die_no = this;
                }
                c.kind = CrashKind::Oops;
                return true;
            }
            false
        }
        // 3.x printed a hard lockup with WARN(): `WARNING: at
        // kernel/watchdog.c:...` then `Watchdog detected hard LOCKUP on cpu N`.
        Msg::HardLockup(cpu) if c.kind == CrashKind::Warning && c.crash.frames.is_empty() => {
            c.kind = CrashKind::HardLockup;
            c.crash.cpu = cpu.or(c.crash.cpu);
            true
        }
        _ => false,
    }
}

/// Emits a signal death unless it is the second report of one already
/// emitted (with print-fatal-signals=1 one death prints both `segfault at`
/// and `potentially unexpected fatal signal`).
fn signal_death(
    st: &mut State,
    comm: String,
    pid: Option<u32>,
    signal: u8,
    at: &Stamp,
    ctx: &mut Ctx,
) {
    let now = st.used;
    if let Some((p, c, sig, then)) = &st.last_signal {
        let same_task = match (pid, p) {
            (Some(a), Some(b)) => a == *b,
            _ => comm == *c,
        };
        if same_task && signal == *sig && now.saturating_sub(*then) <= SAME_DEATH_RECORDS {
            return;
        }
    }
    st.last_signal = Some((pid, comm.clone(), signal, now));
    ctx.emit(
        at,
        Body::SignalDeath(SignalDeath {
            pid,
            tid: pid,
            comm,
            signal,
            signal_name: msg::name_of(signal),
            core_dumped: None,
            sender_pid: None,
            sender_comm: None,
        }),
    );
}

/// A message inside an open OOM report. True when it belonged to the
/// report (the caller then emits on a kill line).
fn oom_step(acc: &mut OomAcc, m: &Msg, rec: &Record, line: Option<u64>, lines: &mut usize) -> bool {
    match m {
        Msg::TaskLine { pid, comm } => {
            // The first dump_stack header after `invoked oom-killer` is the
            // task that invoked it.
            if acc.trigger_pid.is_none() {
                acc.trigger_pid = Some(*pid);
                acc.trigger_comm.get_or_insert_with(|| comm.clone());
            }
            *lines += 1;
            true
        }
        Msg::MemcgHint => {
            acc.memcg = true;
            *lines += 1;
            true
        }
        Msg::OomTableHeader { columns } => {
            let idx = |name: &str| columns.iter().position(|c| c == name);
            acc.table = Some((idx("uid"), idx("oom_score_adj"), columns.len()));
            *lines += 1;
            true
        }
        Msg::OomConstraint {
            constraint,
            comm,
            pid,
            uid,
            memcg,
            task_memcg,
            oom_memcg,
        } => {
            if acc.named.is_some() {
                return false;
            }
            acc.task_memcg.clone_from(task_memcg);
            acc.oom_memcg.clone_from(oom_memcg);
            acc.constraint.clone_from(constraint);
            acc.memcg |= *memcg;
            acc.named = Some((comm.clone(), *pid, *uid));
            true
        }
        Msg::OomChosen { pid, comm, memcg } => {
            if acc.chosen.is_some() {
                return false;
            }
            acc.memcg |= *memcg;
            acc.chosen = Some((*pid, comm.clone(), Stamp::of(rec, line)));
            true
        }
        Msg::OomKilled(_) => true,
        Msg::Other => {
            if let Some((uid_i, adj_i, ncols)) = acc.table {
                if let Some((pid, values, _)) = msg::oom_table_row(&rec.text, ncols) {
                    if acc.rows.len() < MAX_TABLE_ROWS {
                        let get = |i: Option<usize>| i.and_then(|i| values.get(i)).copied();
                        let uid = get(uid_i).and_then(|v| v.parse().ok());
                        let adj = get(adj_i).and_then(|v| v.parse().ok());
                        acc.rows.insert(pid, (uid, adj));
                    }
                    return true;
                }
            }
            *lines += 1;
            true
        }
        _ => false,
    }
}

/// The line die() prints (arch/*/kernel/traps.c, dumpstack.c), which
/// follows the fault's own first line.
fn is_die_line(text: &str) -> bool {
    [
        "Oops",
        "invalid opcode:",
        "general protection fault",
        "Internal error:",
    ]
    .iter()
    .any(|p| text.starts_with(p))
}

/// The die counter of an oops line: `Oops: 0002 [#3] SMP` → 3.
fn oops_number(text: &str) -> Option<u32> {
    let i = text.find("[#")? + 2;
    let rest = &text[i..];
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests;
