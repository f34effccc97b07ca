//! What ended the previous boot: the evidence the kernel, kdump, the
//! journal and `watchdog run` itself left behind, read once at every start
//! of `run` and on demand by `watchdog last-boot` (docs/last-boot.md).
//!
//! Sources, each in its own module: [`pstore`] (ramoops, EFI, ERST, and
//! systemd-pstore's archive), [`kdump`] (vmcore-dmesg.txt), [`journal`]
//! (`journalctl -k -b -1`, or /var/log/messages), and [`record`] (`run`'s
//! own start and stop). Their texts go through the same parser as `scan`;
//! [`classify`] turns what it found into one [`Cause`].
//!
//! [`analyze`] only reads; what `run` writes (its record, the boots
//! reported) is returned as [`record::StateWrite`]s for the record stage.

pub mod journal;
pub mod kdump;
pub mod pstore;
pub mod record;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::events::{Body, Event, PreviousBoot, WallTime};
use crate::host::{paths, Host};
use crate::parse::{Framer, Parser};
use journal::End;
use record::{BootStamp, Reported, RunRecord, StateWrite};

/// How the previous boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Panic,
    Oops,
    HungTaskPanic,
    OomPanic,
    SoftLockupPanic,
    HardLockup,
    Mce,
    SysrqCrash,
    CleanShutdown,
    Reboot,
    NoEvidence,
}

impl Cause {
    /// The `cause` string of the `previous_boot` event.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Panic => "panic",
            Cause::Oops => "oops",
            Cause::HungTaskPanic => "hung_task_panic",
            Cause::OomPanic => "oom_panic",
            Cause::SoftLockupPanic => "soft_lockup_panic",
            Cause::HardLockup => "hard_lockup",
            Cause::Mce => "mce",
            Cause::SysrqCrash => "sysrq_crash",
            Cause::CleanShutdown => "clean_shutdown",
            Cause::Reboot => "reboot",
            Cause::NoEvidence => "no_evidence",
        }
    }

    /// An orderly end: no incident bundle, exit code 0.
    pub fn is_clean(self) -> bool {
        matches!(self, Cause::CleanShutdown | Cause::Reboot)
    }
}

/// How long one `journalctl` may run.
pub const JOURNAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the journal kept (its end).
pub const JOURNAL_CAP: usize = 8 << 20;
/// Without any state (first start of `run`), evidence older than this
/// before the current boot's start is taken for an older boot's.
const NO_STATE_WINDOW: Duration = Duration::from_secs(86_400);

/// What to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// `run`'s state directory (its record, the boots reported).
    pub state_dir: Option<PathBuf>,
    /// Run `journalctl` when the journal is persistent.
    pub journal: bool,
    pub journal_timeout: Duration,
    pub journal_cap: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            state_dir: None,
            journal: true,
            journal_timeout: JOURNAL_TIMEOUT,
            journal_cap: JOURNAL_CAP,
        }
    }
}

/// The answer: why the previous boot ended, and the evidence.
#[derive(Debug, Clone)]
pub struct Report {
    pub cause: Cause,
    pub summary: String,
    /// The previous boot's id, when a source named it.
    pub boot_id: Option<String>,
    pub last_kernel_time: Option<f64>,
    /// What was read: files (absolute paths) and commands.
    pub sources: Vec<String>,
    /// Files worth copying into an incident bundle (pstore records,
    /// vmcore-dmesg.txt, kdump's log; never a vmcore). Absolute paths.
    pub evidence_files: Vec<PathBuf>,
    /// Evidence that is no file: (name, text), e.g. the journal's kernel
    /// messages of the previous boot as JSON lines.
    pub captured: Vec<(String, String)>,
    /// The incidents the parser found in that boot's log, oldest first.
    pub incidents: Vec<Event>,
    /// Things worth knowing (compressed records, cut output, timeouts).
    pub notes: Vec<String>,
    /// False when no source at all could be read.
    pub readable: bool,
}

impl Report {
    /// The `previous_boot` event.
    pub fn event(&self, host: Option<String>) -> Event {
        Event {
            time: Some(WallTime::now()),
            kernel_time: None,
            source: "last-boot".into(),
            host,
            line: None,
            incident: None,
            body: Body::PreviousBoot(PreviousBoot {
                cause: self.cause.name().into(),
                summary: self.summary.clone(),
                boot_id: self.boot_id.clone(),
                last_kernel_time: self.last_kernel_time,
                sources: self.sources.join(", "),
            }),
        }
    }

    /// An incident's JSON line, marked as belonging to the previous boot:
    /// `"previous_boot": true` and that boot's `boot_id` (or null) after
    /// the kind's fields.
    pub fn mark(&self, json: &str) -> String {
        let Some(body) = json.strip_suffix('}') else {
            return json.to_string();
        };
        let id = serde_json::to_string(&self.boot_id).unwrap_or_else(|_| "null".into());
        format!("{body},\"previous_boot\":true,\"boot_id\":{id}}}")
    }

    /// Every line `run` writes for this report: the `previous_boot` event,
    /// then the incidents, marked.
    pub fn json_lines(&self, host: Option<String>) -> Vec<String> {
        let mut out = vec![self.event(host.clone()).to_json()];
        for e in &self.incidents {
            let mut e = e.clone();
            if e.host.is_none() {
                e.host.clone_from(&host);
            }
            out.push(self.mark(&e.to_json()));
        }
        out
    }

    /// `watchdog last-boot`'s exit code: 0 an orderly end, 1 a crash or no
    /// evidence, 3 nothing could be read.
    pub fn exit_code(&self) -> u8 {
        if !self.readable {
            3
        } else if self.cause.is_clean() {
            0
        } else {
            1
        }
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut s = format!("previous boot: {}\n  {}\n", self.cause.name(), self.summary);
        if let Some(b) = &self.boot_id {
            s.push_str(&format!("  boot id: {b}\n"));
        }
        if let Some(t) = self.last_kernel_time {
            s.push_str(&format!("  last kernel time: {t:.6} s after boot\n"));
        }
        if !self.incidents.is_empty() {
            s.push_str("incidents in that boot:\n");
            for e in &self.incidents {
                let when = e
                    .kernel_time
                    .map_or("-".to_string(), |k| format!("[{k:.6}]"));
                s.push_str(&format!(
                    "  {when} {} {}\n",
                    e.body.kind(),
                    crate::scan::describe(e)
                ));
            }
        }
        if !self.sources.is_empty() {
            s.push_str("sources:\n");
            for src in &self.sources {
                s.push_str(&format!("  {src}\n"));
            }
        }
        if !self.notes.is_empty() {
            s.push_str("notes:\n");
            for n in &self.notes {
                s.push_str(&format!("  {n}\n"));
            }
        }
        s
    }
}

/// This boot's id, or (old kernels, images) one made of its start minute.
pub fn this_boot_id(host: &Host) -> String {
    if let Ok(id) = host.read_value(paths::BOOT_ID) {
        if !id.is_empty() && id.len() < 100 {
            return id;
        }
    }
    match boot_start(host) {
        Some(t) => format!("started-{}", t.timestamp() / 60),
        None => "unknown".into(),
    }
}

/// When this boot started (now minus the uptime under the root).
fn boot_start(host: &Host) -> Option<chrono::DateTime<chrono::Utc>> {
    let up: f64 = host
        .read_value(paths::UPTIME)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    if !up.is_finite() || up < 0.0 {
        return None;
    }
    let ms = i64::try_from(Duration::from_secs_f64(up).as_millis()).ok()?;
    Some(chrono::Utc::now() - chrono::Duration::milliseconds(ms))
}

fn system_time(unix: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

/// One log text, parsed.
#[derive(Debug, Default)]
struct Parsed {
    events: Vec<Event>,
    last_kernel_time: Option<f64>,
    /// The last kernel message that says something.
    last_line: Option<String>,
    end: Option<End>,
    hard_lockup: Option<String>,
    mce: Option<String>,
}

/// Runs the `scan` parser over one text. pstore part headers
/// (`Panic#1 Part2`) inside a joined dump are not log lines.
fn parse_text(source: &str, text: &str) -> Parsed {
    let mut framer = Framer::with_reference(chrono::Local::now().date_naive());
    let mut parser = Parser::new(source);
    let mut p = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        if pstore::parse_header(line).is_some() {
            continue;
        }
        let rec = framer.frame(line.as_bytes());
        let line_no = u64::try_from(i + 1).ok();
        p.events.extend(parser.push_at(&rec, line_no));
        if rec.ignore || !rec.kernel {
            continue;
        }
        if let Some(t) = rec.kernel_time {
            p.last_kernel_time = Some(p.last_kernel_time.map_or(t, |m: f64| m.max(t)));
        }
        let t = rec.text.trim();
        if let Some(e) = journal::end_marker(t) {
            p.end = Some(e);
        } else if !t.is_empty() {
            // A later message means the system went on after the marker.
            p.end = None;
        }
        if t.contains("hard LOCKUP") || t.contains("Hard LOCKUP") {
            p.hard_lockup = Some(t.to_string());
        }
        if t.contains("[Hardware Error]") || t.contains("Machine check") {
            p.mce = Some(t.to_string());
        }
        if !t.is_empty() && !t.starts_with("---[ end") {
            p.last_line = Some(t.to_string());
        }
    }
    p.events.extend(parser.finish());
    p.events.sort_by_key(|e| e.line);
    p
}

/// Gathers the texts of the previous boot and the state `run` kept.
struct Gather<'a> {
    host: &'a Host,
    report: Report,
    texts: Vec<(String, String)>,
    dump_reasons: Vec<String>,
    end: Option<End>,
}

impl Gather<'_> {
    fn abs(&self, rel: &str) -> String {
        self.host.path(rel).display().to_string()
    }

    fn file(&mut self, rel: &str, evidence: bool) {
        let abs = self.abs(rel);
        if !self.report.sources.contains(&abs) {
            self.report.sources.push(abs);
        }
        if evidence {
            self.report.evidence_files.push(self.host.path(rel));
        }
        self.report.readable = true;
    }

    fn pstore(&mut self, dir: &str, newer: Option<SystemTime>) {
        let found = pstore::read(self.host, dir, newer);
        for d in &found.dumps {
            for f in &d.files {
                self.file(f, true);
            }
            self.dump_reasons.push(d.reason.clone());
            // Dumps at an orderly end (ramoops.max_reason or
            // printk.always_kmsg_dump): `Restart`, `Halt`, `Poweroff`
            // before 5.8, one `Shutdown` since, its text telling which.
            match d.reason.as_str() {
                "Restart" => self.end = Some(End::Reboot),
                "Halt" | "Poweroff" => self.end = Some(End::Poweroff),
                "Shutdown" => {
                    self.end = Some(journal::last_end(&d.text).unwrap_or(End::Poweroff));
                }
                _ => {}
            }
            let name = d.files.first().map_or(String::new(), |f| self.abs(f));
            self.texts.push((name, d.text.clone()));
        }
        for (rel, text) in &found.logs {
            self.file(rel, true);
            self.texts.push((self.abs(rel), text.clone()));
        }
        for rel in &found.compressed {
            self.file(rel, true);
            self.report.notes.push(format!(
                "{}: compressed record the kernel could not decompress (listed, not read)",
                self.abs(rel)
            ));
        }
        self.report.notes.extend(found.errors);
    }

    fn kdump(&mut self, newer: Option<SystemTime>) {
        let (dirs, notes) = kdump::find(self.host, newer);
        self.report.notes.extend(notes);
        for d in dirs {
            if let Some(v) = &d.vmcore {
                let abs = self.abs(v);
                self.report.notes.push(if d.incomplete {
                    format!("{abs}: the dump was not finished (vmcore-incomplete)")
                } else {
                    format!("{abs}: a crash dump; open it with crash(8)")
                });
                self.report.sources.push(abs);
                self.report.readable = true;
            }
            for rel in [&d.dmesg, &d.log].into_iter().flatten() {
                match self.host.read_bytes_limited(rel, journal::SYSLOG_TAIL) {
                    Ok(b) => {
                        self.file(rel, true);
                        if Some(rel) == d.dmesg.as_ref() {
                            let text = String::from_utf8_lossy(&b).into_owned();
                            self.texts.push((self.abs(rel), text));
                        }
                    }
                    Err(e) => self.report.notes.push(e.to_string()),
                }
            }
        }
    }

    /// The journal; false when it could not be read.
    fn journal(&mut self, opts: &Options) -> bool {
        if !opts.journal || !journal::is_persistent(self.host) {
            return false;
        }
        match journal::read(self.host, opts.journal_timeout, opts.journal_cap) {
            Ok(j) => {
                self.report.notes.extend(j.notes);
                let (end, boot) = journal::tail_end(&j.tail);
                if end.is_some() {
                    self.end = end;
                }
                let boot = boot.or_else(|| journal::boot_id(&j.kernel));
                if boot.is_none() && j.kernel.trim().is_empty() {
                    // No earlier boot in the journal (or journalctl failed).
                    return false;
                }
                self.report.boot_id = boot;
                let name = "journalctl -k -b -1".to_string();
                self.report.sources.push(name.clone());
                self.report.readable = true;
                self.report
                    .captured
                    .push(("journal-kernel-previous-boot.json".into(), j.kernel.clone()));
                self.texts.push((name, j.kernel));
                true
            }
            Err(e) => {
                self.report.notes.push(format!("journal not read: {e}"));
                false
            }
        }
    }

    fn syslog(&mut self) {
        let start = boot_start(self.host).map(|t| t.naive_utc());
        for rel in journal::SYSLOG_FILES {
            let path = self.host.path(rel);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let bytes = match tail_of(&path, meta.len(), journal::SYSLOG_TAIL) {
                Ok(b) => b,
                Err(e) => {
                    self.report.notes.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let reference = meta
                .modified()
                .ok()
                .map(|t| chrono::DateTime::<chrono::Local>::from(t).date_naive())
                .unwrap_or_else(|| chrono::Local::now().date_naive());
            let time_of = |l: &str| {
                let mut f = Framer::with_reference(reference);
                f.frame(l.as_bytes()).wall_time.map(|w| match w.offset {
                    Some(_) => w.comparable(),
                    // Syslog's local time: compare as local.
                    None => chrono::Local
                        .from_local_datetime(&w.local)
                        .earliest()
                        .map_or(w.local, |t| t.naive_utc()),
                })
            };
            use chrono::TimeZone;
            let lines = journal::previous_boot_lines(&text, start, time_of);
            if lines.is_empty() {
                continue;
            }
            self.file(rel, true);
            let mut prev = lines.join("\n");
            prev.push('\n');
            self.texts.push((path.display().to_string(), prev));
            return;
        }
    }
}

/// The last `max` bytes of a file, from a whole line on.
fn tail_of(path: &Path, len: u64, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let from = len.saturating_sub(max);
    f.seek(SeekFrom::Start(from))?;
    let mut b = Vec::new();
    f.take(max).read_to_end(&mut b)?;
    if from > 0 {
        if let Some(i) = b.iter().position(|&c| c == b'\n') {
            b.drain(..=i);
        }
    }
    Ok(b)
}

/// Mounts pstore at /sys/fs/pstore on a live host when the kernel has it
/// and nothing mounted it (systemd does; a minimal init may not).
fn mount_pstore(host: &Host) -> Option<String> {
    if !host.is_live() || !host.is_dir(paths::PSTORE) {
        return None;
    }
    let mounts = host.read(paths::MOUNTS).unwrap_or_default();
    let target = format!("/{}", paths::PSTORE);
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(target.as_str()))
    {
        return None;
    }
    let fs = host.read(paths::FILESYSTEMS).unwrap_or_default();
    if !fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("pstore"))
    {
        return None;
    }
    match nix::mount::mount(
        Some("pstore"),
        &host.path(paths::PSTORE),
        Some("pstore"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        Ok(()) => Some(format!("mounted pstore at {target}")),
        Err(e) => Some(format!("cannot mount pstore at {target}: {e}")),
    }
}

/// Reads every source and classifies the end of the previous boot.
pub fn analyze(host: &Host, opts: &Options) -> Report {
    let this_boot = this_boot_id(host);
    let mut notes = Vec::new();
    let (run_record, reported) = match &opts.state_dir {
        Some(dir) => {
            let rr = record::load::<RunRecord>(&dir.join(record::RUN_RECORD)).unwrap_or_else(|e| {
                notes.push(format!("ignored: {e}"));
                RunRecord::default()
            });
            let rep = record::load::<Reported>(&dir.join(record::REPORTED)).unwrap_or_else(|e| {
                notes.push(format!("ignored: {e}"));
                Reported::default()
            });
            (rr, rep)
        }
        None => (RunRecord::default(), Reported::default()),
    };
    let stamp = run_record.before(&this_boot).cloned();
    // Evidence older than the last report (made in an earlier boot) was
    // reported then; without any state, only what is close to this boot.
    let newer = match reported.last_before(&this_boot) {
        Some(t) => Some(system_time(t)),
        None => boot_start(host)
            .map(|t| system_time(t.timestamp()))
            .and_then(|t| t.checked_sub(NO_STATE_WINDOW)),
    };
    if let Some(n) = mount_pstore(host) {
        notes.push(n);
    }
    let mut g = Gather {
        host,
        report: Report {
            cause: Cause::NoEvidence,
            summary: String::new(),
            boot_id: None,
            last_kernel_time: None,
            sources: Vec::new(),
            evidence_files: Vec::new(),
            captured: Vec::new(),
            incidents: Vec::new(),
            notes,
            readable: false,
        },
        texts: Vec::new(),
        dump_reasons: Vec::new(),
        end: None,
    };
    g.kdump(newer);
    g.pstore(paths::PSTORE, newer);
    g.pstore(paths::SYSTEMD_PSTORE, newer);
    if !g.journal(opts) {
        g.syslog();
    }
    if let Some(s) = &stamp {
        g.report.readable = true;
        if let Some(dir) = &opts.state_dir {
            g.report
                .sources
                .push(dir.join(record::RUN_RECORD).display().to_string());
        }
        if g.report.boot_id.is_none() {
            g.report.boot_id = Some(s.boot_id.clone());
        }
    }
    let Gather {
        mut report,
        texts,
        dump_reasons,
        end,
        ..
    } = g;
    let mut seen = HashSet::new();
    let mut parsed = Vec::new();
    for (name, text) in &texts {
        let p = parse_text(name, text);
        for e in &p.events {
            if seen.insert(dedup_key(e)) {
                report.incidents.push(e.clone());
            }
        }
        parsed.push(p);
    }
    report.incidents.sort_by(|a, b| {
        a.kernel_time
            .unwrap_or(0.0)
            .total_cmp(&b.kernel_time.unwrap_or(0.0))
    });
    report.last_kernel_time = parsed
        .iter()
        .filter_map(|p| p.last_kernel_time)
        .reduce(f64::max);
    let end = end.or_else(|| parsed.iter().find_map(|p| p.end));
    let facts = Facts {
        incidents: &report.incidents,
        dump_reasons: &dump_reasons,
        end,
        hard_lockup: parsed.iter().find_map(|p| p.hard_lockup.clone()),
        mce: parsed.iter().find_map(|p| p.mce.clone()),
        last_line: parsed.iter().rev().find_map(|p| p.last_line.clone()),
        stamp: stamp.as_ref(),
        readable: report.readable,
    };
    let (cause, summary) = classify(&facts);
    report.cause = cause;
    report.summary = summary;
    report
}

/// The same incident read from two sources (pstore and the journal) is
/// one: compared without where it was read.
fn dedup_key(e: &Event) -> String {
    let mut e = e.clone();
    e.source = String::new();
    e.line = None;
    e.time = None;
    e.host = None;
    e.to_json()
}

/// What the classifier looks at.
#[derive(Debug)]
pub struct Facts<'a> {
    pub incidents: &'a [Event],
    /// Reasons of the pstore dumps (`Panic`, `Oops`, `Restart`, ...).
    pub dump_reasons: &'a [String],
    /// An orderly end the logs show.
    pub end: Option<End>,
    pub hard_lockup: Option<String>,
    pub mce: Option<String>,
    pub last_line: Option<String>,
    pub stamp: Option<&'a BootStamp>,
    pub readable: bool,
}

/// The panic reason → the class. Reasons per the kernel's panic() calls:
/// kernel/hung_task.c `hung_task: blocked tasks`, kernel/watchdog.c
/// `softlockup: hung tasks` and `Hard LOCKUP`, mm/oom_kill.c `Out of
/// memory...` / `System is deadlocked on memory`, arch/x86 mce `Fatal
/// machine check` / `Machine check`, drivers/tty/sysrq.c `sysrq triggered
/// crash` (since 5.x; older kernels oopsed on a NULL write instead).
pub fn panic_class(reason: &str) -> Cause {
    let r = reason.to_ascii_lowercase();
    if r.contains("hung_task") {
        Cause::HungTaskPanic
    } else if r.contains("softlockup") || r.contains("soft lockup") {
        Cause::SoftLockupPanic
    } else if r.contains("hard lockup") {
        Cause::HardLockup
    } else if r.contains("out of memory") || r.contains("deadlocked on memory") {
        Cause::OomPanic
    } else if r.contains("machine check") || r.contains("mce") {
        Cause::Mce
    } else if r.contains("sysrq triggered crash") {
        Cause::SysrqCrash
    } else {
        Cause::Panic
    }
}

const BMC_HINT: &str = "power loss, a hardware reset, a firmware or hypervisor watchdog, or a hang no detector caught; see the BMC's event log (ipmitool sel elist)";

/// Decides the cause and its one-line summary.
pub fn classify(f: &Facts) -> (Cause, String) {
    let summary_of = |kind: &str| {
        f.incidents.iter().rev().find_map(|e| match &e.body {
            Body::Oops(s) | Body::Panic(s) if e.body.kind() == kind => Some(s.summary.clone()),
            _ => None,
        })
    };
    let crash_sysrq = f.incidents.iter().any(
        |e| matches!(&e.body, Body::Sysrq(s) if s.command.to_ascii_lowercase().contains("crash")),
    );
    if let Some(reason) = summary_of("panic") {
        let class = panic_class(&reason);
        if class == Cause::Panic {
            if crash_sysrq {
                return (Cause::SysrqCrash, reason);
            }
            if let Some(oops) = summary_of("oops") {
                if reason.contains("Fatal exception") {
                    return (Cause::Oops, format!("{oops} ({reason})"));
                }
            }
        }
        return (class, reason);
    }
    if f.dump_reasons.iter().any(|r| r == "Panic") {
        return (
            Cause::Panic,
            "pstore holds a Panic dump, but its text names no reason".into(),
        );
    }
    if crash_sysrq && f.end.is_none() {
        return (Cause::SysrqCrash, "SysRq: Trigger a crash".into());
    }
    match f.end {
        Some(End::Reboot) => {
            return (Cause::Reboot, "the system was rebooted on request".into());
        }
        Some(End::Poweroff) => {
            return (
                Cause::CleanShutdown,
                "the system was shut down on request".into(),
            );
        }
        None => {}
    }
    if let Some(l) = &f.hard_lockup {
        return (Cause::HardLockup, l.clone());
    }
    if let Some(l) = &f.mce {
        return (Cause::Mce, l.clone());
    }
    if let Some(oops) = summary_of("oops") {
        return (Cause::Oops, oops);
    }
    if f.dump_reasons.iter().any(|r| r == "Oops") {
        return (
            Cause::Oops,
            "pstore holds an Oops dump, but its text names no oops".into(),
        );
    }
    match f.stamp {
        Some(s) if s.stopped.is_some() => {
            return (
                Cause::CleanShutdown,
                format!(
                    "watchdog run was stopped at {} (SIGTERM, as at an orderly shutdown); no log says more",
                    s.stopped.as_deref().unwrap_or("?")
                ),
            );
        }
        Some(s) => {
            return (
                Cause::NoEvidence,
                format!(
                    "the boot ended while watchdog run was watching (started {}), and no crash record survived: {BMC_HINT}",
                    s.started
                ),
            );
        }
        None => {}
    }
    match &f.last_line {
        Some(l) => (
            Cause::NoEvidence,
            format!("the log just stops, last line: {l} — {BMC_HINT}"),
        ),
        None if f.readable => (
            Cause::NoEvidence,
            format!("no crash record and no log of the previous boot: {BMC_HINT}"),
        ),
        None => (
            Cause::NoEvidence,
            "nothing could be read: no pstore record, no kdump dump, no persistent journal or syslog file, no record of an earlier watchdog run".into(),
        ),
    }
}

/// What `run` does at start: the report (unless this boot's was made
/// already) and the state files to write through the record stage.
#[derive(Debug)]
pub struct Start {
    pub report: Option<Report>,
    pub writes: Vec<StateWrite>,
    /// The record to stamp at a stop on SIGTERM ([`Start::stop`]).
    record: RunRecord,
    state_dir: PathBuf,
}

impl Start {
    /// What stamps `run`'s stop, kept until SIGTERM.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            record: self.record.clone(),
            state_dir: self.state_dir.clone(),
        }
    }
}

/// Writes `run`'s stop into its record ([`Stopper::write`] at SIGTERM).
#[derive(Debug, Clone)]
pub struct Stopper {
    record: RunRecord,
    state_dir: PathBuf,
}

impl Stopper {
    /// The state write for a stop now.
    pub fn write(&self) -> StateWrite {
        StateWrite::new(
            self.state_dir.join(record::RUN_RECORD),
            &self.record.stopped(&chrono::Utc::now().to_rfc3339()),
        )
    }
}

/// Reads the state, makes the report once per boot, and says what to
/// write: `run`'s start stamp and, when reported, this boot's id.
pub fn at_start(host: &Host, state_dir: &Path, opts: &Options) -> Start {
    let this_boot = this_boot_id(host);
    let rr = record::load::<RunRecord>(&state_dir.join(record::RUN_RECORD)).unwrap_or_default();
    let reported = record::load::<Reported>(&state_dir.join(record::REPORTED)).unwrap_or_default();
    let now = chrono::Utc::now();
    let started = rr.started(&this_boot, &now.to_rfc3339());
    let mut writes = vec![StateWrite::new(
        state_dir.join(record::RUN_RECORD),
        &started,
    )];
    let report = if reported.contains(&this_boot) {
        None
    } else {
        let opts = Options {
            state_dir: Some(state_dir.to_path_buf()),
            ..opts.clone()
        };
        let r = analyze(host, &opts);
        writes.push(StateWrite::new(
            state_dir.join(record::REPORTED),
            &reported.with(&this_boot, now.timestamp()),
        ));
        Some(r)
    };
    Start {
        report,
        writes,
        record: started,
        state_dir: state_dir.to_path_buf(),
    }
}

/// The longest `run` waits for the analysis at start: a hung disk under
/// /var/crash or a stuck journalctl must not keep it from watching.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// [`at_start`] on its own thread, waited for at most [`START_DEADLINE`]
/// (`state_file` is `run.state_file`; its directory holds the state).
/// On a timeout the thread is left behind and nothing is recorded, so the
/// next start tries again.
pub fn run_start(host: &Host, state_file: &str) -> Result<Start, String> {
    let dir = Path::new(state_file)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let host = host.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lastboot".into())
        .spawn(move || {
            let _ = tx.send(at_start(&host, &dir, &Options::default()));
        })
        .map_err(|e| format!("cannot start the previous-boot analysis: {e}"))?;
    rx.recv_timeout(START_DEADLINE).map_err(|_| {
        format!(
            "the previous-boot analysis did not finish within {} s (a hung file system?): skipped",
            START_DEADLINE.as_secs()
        )
    })
}

#[cfg(test)]
mod tests;
