//! `watchdog scan`: saved kernel logs → the events `run` would have
//! reported, as JSON lines, a table, or a summary.
//!
//! Input is read line by line with a bounded line buffer (a 10 MB line
//! costs [`MAX_LINE`] bytes, not 10 MB), gzip is unpacked on the fly, and
//! each file gets its own [`Parser`], so incidents never span files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime};

use crate::events::{Body, Event};
use crate::output::Format;
use crate::parse::frame::MAX_LINE;
use crate::parse::{Framer, Parser};

/// Lower bound on event time (`--since`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Since {
    /// Seconds since boot, compared with `kernel_time`.
    KernelSecs(f64),
    /// A wall-clock time; with an offset it is compared in UTC.
    Wall(NaiveDateTime, bool),
}

impl Since {
    /// `120.5` (kernel seconds), `2024-03-04T10:00:00+01:00`,
    /// `2024-03-04 10:00[:00]` or `2024-03-04`.
    pub fn parse(s: &str) -> Result<Since, String> {
        let s = s.trim();
        if let Ok(v) = s.parse::<f64>() {
            if v.is_finite() && v >= 0.0 {
                return Ok(Since::KernelSecs(v));
            }
        }
        if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(Since::Wall(dt.naive_utc(), true));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                return Ok(Since::Wall(dt, false));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Since::Wall(
                d.and_hms_opt(0, 0, 0).unwrap_or_default(),
                false,
            ));
        }
        Err(format!(
            "--since {}: expected seconds since boot (120.5), a date (2024-03-04), \
             a local time (2024-03-04 10:00:00) or RFC 3339 (2024-03-04T10:00:00Z)",
            crate::kernel::quote(s)
        ))
    }

    /// Events that carry no time of this kind are kept: nothing says they
    /// are older.
    pub fn keeps(&self, e: &Event) -> bool {
        match *self {
            Since::KernelSecs(s) => e.kernel_time.is_none_or(|t| t >= s),
            Since::Wall(s, utc) => e.time.is_none_or(|t| {
                if utc {
                    t.comparable() >= s
                } else {
                    t.local >= s
                }
            }),
        }
    }
}

/// Everything `scan` was asked to do.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files to read; empty or `-` is standard input.
    pub files: Vec<PathBuf>,
    pub output: Format,
    pub summary: bool,
    pub since: Option<Since>,
    /// Kinds to keep (empty: all).
    pub kinds: Vec<String>,
    /// Year for syslog timestamps (default: from the file's mtime).
    pub year: Option<i32>,
    /// Site patterns (`patterns:` of `--config`).
    pub patterns: std::sync::Arc<crate::patterns::SitePatterns>,
}

/// The command-line options of `watchdog scan` (it has no section in the
/// configuration file); [`ScanArgs::options`] checks them.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Log files to read (`-` or none: standard input); gzip and xz are unpacked
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format: JSON lines, or a table for people
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Print counts by kind and the tasks seen most, instead of the events
    #[arg(long)]
    pub summary: bool,
    /// Only events at or after TIME: seconds since boot (`3600`), a date
    /// (`2024-03-04`), a local time (`2024-03-04 10:00`) or RFC 3339.
    /// Events without that kind of time are kept
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only these kinds (comma-separated), e.g. `hung_task,oom_kill`
    #[arg(long, value_delimiter = ',', value_name = "KIND,...")]
    pub kind: Vec<String>,
    /// Year of syslog timestamps (`Mar  4 10:00:00` prints none); default:
    /// from each file's modification date
    #[arg(long, value_name = "YEAR")]
    pub year: Option<i32>,
}

impl ScanArgs {
    /// What to do, or why the options make no sense, naming the option.
    pub fn options(&self) -> Result<ScanOptions, String> {
        if let Some(k) = self
            .kind
            .iter()
            .find(|k| !Body::KINDS.contains(&k.as_str()))
        {
            return Err(format!(
                "--kind {k}: unknown kind (one of {})",
                Body::KINDS.join(", ")
            ));
        }
        Ok(ScanOptions {
            files: self.files.clone(),
            output: self.format,
            summary: self.summary,
            since: self.since.as_deref().map(Since::parse).transpose()?,
            kinds: self.kind.clone(),
            patterns: Default::default(),
            year: self.year,
        })
    }
}

/// How a scan went.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub events: u64,
    pub bytes: u64,
    pub lines: u64,
    /// Inputs that could not be read, with why.
    pub errors: Vec<String>,
}

/// Skips whole lines that hold none of the prefilter's words, searching
/// the reader's buffer as one block (a line is framed only when it
/// matters). Stops at the start of the first line that holds one, or at
/// a line longer than the buffer (left for [`read_line_bounded`]).
/// Returns the lines and bytes skipped.
pub fn skip_ordinary<R: BufRead>(
    r: &mut R,
    ac: &aho_corasick::AhoCorasick,
) -> io::Result<(u64, u64)> {
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((lines, bytes));
        }
        // The first word found starts a line to read; before it, whole
        // lines are skipped. With none, everything up to the last newline
        // goes (a word cut by the buffer's end is found once the line is
        // whole).
        let (upto, found) = match ac.find(avail) {
            Some(m) => (
                memchr::memrchr(b'\n', &avail[..m.start()]).map_or(0, |i| i + 1),
                true,
            ),
            None => match memchr::memrchr(b'\n', avail) {
                Some(i) => (i + 1, false),
                // One line longer than the buffer: read_line_bounded's.
                None => (0, false),
            },
        };
        lines += memchr::memchr_iter(b'\n', &avail[..upto]).count() as u64;
        bytes += upto as u64;
        r.consume(upto);
        if found || upto == 0 {
            return Ok((lines, bytes));
        }
    }
}

/// Reads one line into `buf` (without the newline), keeping at most
/// `MAX_LINE + 1` bytes of it so that the framer can see it was cut. Returns
/// the bytes consumed, 0 at end of input.
pub fn read_line_bounded<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    let mut total = 0;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(total);
        }
        let (chunk, used, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        let room = (MAX_LINE + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        r.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

/// Memory an xz block may ask for (its dictionary and decoder state).
/// `xz -9` needs 65 MiB; a header asking for more (up to 4 GiB) is a
/// crafted or broken file, refused rather than allocated.
pub const XZ_MEM_LIMIT: u32 = 96 * 1024 * 1024;

/// Opens an input, unpacking gzip and xz.
fn open(path: &Path) -> Result<(Box<dyn BufRead>, Option<NaiveDate>), String> {
    let name = path.display();
    let (raw, date): (Box<dyn Read>, Option<NaiveDate>) = if path == Path::new("-") {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(path).map_err(|e| format!("{name}: {e}"))?;
        let meta = f.metadata().map_err(|e| format!("{name}: {e}"))?;
        if meta.is_dir() {
            return Err(format!("{name}: is a directory"));
        }
        // Regular files and pipes (a FIFO, `<(zcat …)`) end; a device such
        // as /dev/zero or /dev/urandom never does, and /dev/kmsg is `run`'s.
        {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if t.is_char_device() || t.is_block_device() || t.is_socket() {
                return Err(format!(
                    "{name}: is a device or socket, not a saved log (copy it to a file first)"
                ));
            }
        }
        let date = meta
            .modified()
            .ok()
            .map(|t| chrono::DateTime::<chrono::Local>::from(t).date_naive());
        (Box::new(f), date)
    };
    let mut r = BufReader::with_capacity(256 * 1024, raw);
    let head = r.fill_buf().map_err(|e| format!("{name}: {e}"))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(r);
        return Ok((Box::new(BufReader::with_capacity(256 * 1024, gz)), date));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        // Streamed: memory is the dictionary (bounded by XZ_MEM_LIMIT) and
        // a buffer, whatever the unpacked size; concatenated streams (as
        // `xz` and `pxz` write them) are read one after another.
        let xz = lzma_rust2::XzReader::new_mem_limit(r, true, XZ_MEM_LIMIT / 1024);
        let named = Named {
            inner: xz,
            what: "xz".to_string(),
        };
        return Ok((Box::new(BufReader::with_capacity(256 * 1024, named)), date));
    }
    Ok((Box::new(r), date))
}

/// A decoder whose errors say which file and format they are about.
struct Named<R> {
    inner: R,
    what: String,
}

impl<R: Read> Read for Named<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.what)))
    }
}

/// Runs a scan, writing to `out`. Unreadable inputs are reported in the
/// returned [`ScanReport`] and the scan goes on; an error writing `out`
/// (a closed pipe) ends it.
pub fn scan(opts: &ScanOptions, out: &mut dyn Write) -> io::Result<ScanReport> {
    let mut report = ScanReport::default();
    let files = if opts.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        opts.files.clone()
    };
    let mut sink = Sink {
        table: Vec::new(),
        widths: None,
        tally: Tally::default(),
        mode: match (opts.summary, opts.output) {
            (true, _) => Mode::Summary,
            (false, Format::Text) => Mode::Table,
            (false, Format::Json) => Mode::Json,
        },
    };
    let mut buf = Vec::with_capacity(4096);
    for path in &files {
        let (mut r, date) = match open(path) {
            Ok(x) => x,
            Err(e) => {
                report.errors.push(e);
                continue;
            }
        };
        let source = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let mut framer = match (opts.year, date) {
            (Some(y), _) => Framer::with_year(Some(y)),
            (None, Some(d)) => Framer::with_reference(d),
            (None, None) => Framer::with_reference(chrono::Local::now().date_naive()),
        };
        let mut parser = Parser::new(source);
        parser.set_patterns(opts.patterns.clone());
        // Site patterns may match any line; numbered records (kmsg dumps,
        // extended netconsole) must all be seen for their gaps to mean
        // lost messages. Otherwise ordinary lines are skipped unframed
        // while no incident is open.
        let mut filter = if parser.has_patterns() {
            None
        } else {
            crate::parse::prefilter()
        };
        let mut format_known = false;
        let mut line_no = 0u64;
        // Incidents are emitted when they end, so an event can come after
        // one from a later line; this puts them back in file order.
        let mut held: Vec<Event> = Vec::new();
        loop {
            if let Some(ac) = filter.filter(|_| format_known && parser.is_idle()) {
                match skip_ordinary(&mut r, ac) {
                    Ok((lines, bytes)) => {
                        line_no += lines;
                        report.bytes += bytes;
                    }
                    Err(e) => {
                        report.errors.push(format!("{}: {e}", path.display()));
                        break;
                    }
                }
            }
            let n = match read_line_bounded(&mut r, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    report.errors.push(format!("{}: {e}", path.display()));
                    break;
                }
            };
            report.bytes += n as u64;
            line_no += 1;
            let rec = framer.frame(&buf);
            if !format_known && !rec.ignore {
                format_known = true;
                if rec.seq.is_some() {
                    filter = None;
                }
            }
            let ev = parser.push_at(&rec, Some(line_no));
            if !ev.is_empty() {
                held.extend(ev.into_iter().filter(|e| wanted(opts, e)));
                let ready = match parser.pending_line() {
                    None => held.len(),
                    Some(p) => {
                        held.sort_by_key(|e| e.line);
                        held.partition_point(|e| e.line < Some(p))
                    }
                };
                // A source whose incident never ends must not hold every
                // other source's events: past this many, order is given up.
                let ready = if held.len() > MAX_HELD {
                    held.len()
                } else {
                    ready
                };
                if ready > 0 {
                    held.sort_by_key(|e| e.line);
                    let rest = held.split_off(ready);
                    let done = std::mem::replace(&mut held, rest);
                    sink.deliver(done, &mut report, out)?;
                }
            }
        }
        report.lines += line_no;
        held.extend(parser.finish().into_iter().filter(|e| wanted(opts, e)));
        held.sort_by_key(|e| e.line);
        sink.deliver(held, &mut report, out)?;
    }
    match (sink.mode, opts.output) {
        (Mode::Summary, Format::Json) => {
            out.write_all(summary_json(&sink.tally).as_bytes())?;
            out.write_all(b"\n")?;
        }
        (Mode::Summary, Format::Text) => out.write_all(summary_text(&sink.tally).as_bytes())?,
        (Mode::Table, _) if sink.widths.is_none() => {
            out.write_all(table(&sink.table).as_bytes())?
        }
        (Mode::Table, _) | (Mode::Json, _) => {}
    }
    out.flush()?;
    Ok(report)
}

/// Events held back to restore file order, at most.
const MAX_HELD: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Json,
    Table,
    Summary,
}

/// Where events go: straight out as JSON lines, kept for the table (which
/// needs every row for its column widths), or only counted.
struct Sink {
    mode: Mode,
    table: Vec<Event>,
    /// Column widths once the table streams (more than [`TABLE_HOLD`]
    /// events): rows are printed as they come, aligned to the first ones.
    widths: Option<[usize; 5]>,
    tally: Tally,
}

/// Events kept to size the table's columns; past this many the table is
/// printed as it goes, so memory does not grow with the number of events.
const TABLE_HOLD: usize = 1000;

impl Sink {
    fn deliver(
        &mut self,
        events: Vec<Event>,
        report: &mut ScanReport,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        for e in events {
            report.events += 1;
            match self.mode {
                Mode::Json => {
                    out.write_all(e.to_json().as_bytes())?;
                    out.write_all(b"\n")?;
                }
                Mode::Table => match self.widths {
                    Some(w) => out.write_all(table_line(&row(&e), &w, true).as_bytes())?,
                    None => {
                        self.table.push(e);
                        if self.table.len() > TABLE_HOLD {
                            let rows: Vec<[String; 5]> = self.table.iter().map(row).collect();
                            let w = widths(&rows);
                            // Every column from here on: a later event may
                            // have a host even if the first ones had none.
                            out.write_all(
                                table_line(&HEAD.map(String::from), &w, true).as_bytes(),
                            )?;
                            for r in &rows {
                                out.write_all(table_line(r, &w, true).as_bytes())?;
                            }
                            self.table = Vec::new();
                            self.widths = Some(w);
                        }
                    }
                },
                Mode::Summary => self.tally.add(&e),
            }
        }
        Ok(())
    }
}

fn wanted(opts: &ScanOptions, e: &Event) -> bool {
    (opts.kinds.is_empty() || opts.kinds.iter().any(|k| k == e.body.kind()))
        && opts.since.is_none_or(|s| s.keeps(e))
}

fn task(comm: &str, pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("{comm}[{p}]"),
        None => comm.to_string(),
    }
}

/// One line describing an event, for the table.
pub fn describe(e: &Event) -> String {
    let opt = |v: Option<u64>, unit: &str| v.map(|v| format!("{v}{unit}"));
    match &e.body {
        Body::HungTask(h) => {
            let mut s = match &h.comm {
                Some(c) => format!("{} blocked", task(c, h.pid)),
                None => format!(
                    "{} hung task(s) the kernel counted but did not report",
                    h.unreported.unwrap_or(1)
                ),
            };
            if let Some(b) = h.blocked_secs {
                s.push_str(&format!(" for more than {b} s"));
            }
            if let Some(c) = &h.blocker_comm {
                s.push_str(&format!(", waits on {}", task(c, h.blocker_pid)));
            }
            s
        }
        Body::OomKill(o) => {
            let mut s = format!(
                "{}killed {}",
                if o.memcg { "memcg " } else { "" },
                task(o.comm.as_deref().unwrap_or("?"), o.pid)
            );
            let mut extra = Vec::new();
            if let Some(u) = o.uid {
                extra.push(format!("uid {u}"));
            }
            if let Some(a) = o.oom_score_adj {
                extra.push(format!("oom_score_adj {a}"));
            }
            if let Some(v) = opt(o.anon_rss_kb, " kB") {
                extra.push(format!("anon-rss {v}"));
            }
            if let Some(c) = &o.trigger_comm {
                extra.push(format!("invoked by {}", task(c, o.trigger_pid)));
            }
            if let Some(c) = &o.constraint {
                extra.push(c.clone());
            }
            if !extra.is_empty() {
                s.push_str(&format!(" ({})", extra.join(", ")));
            }
            s
        }
        Body::SignalDeath(d) => format!("{} killed by {}", task(&d.comm, d.pid), d.signal_name),
        Body::SoftLockup(l) => {
            let mut s = match l.cpu {
                Some(c) => format!("CPU#{c} stuck"),
                None => "CPU stuck".to_string(),
            };
            if let Some(n) = l.stuck_secs {
                s.push_str(&format!(" for {n} s"));
            }
            if let Some(c) = &l.comm {
                s.push_str(&format!(" in {}", task(c, l.pid)));
            }
            s
        }
        Body::RcuStall(x) => x.summary.clone(),
        Body::Sysrq(s) => s.command.clone(),
        Body::Lost(l) => format!("{} messages lost", l.count),
        Body::DentryPressure(d) => format!(
            "nr_unused {} x vfs_cache_pressure {}, headroom {:.2}",
            d.nr_unused, d.vfs_cache_pressure, d.headroom
        ),
        Body::Action(a) => format!("{} {}: {}", a.rule, a.action, a.detail),
        Body::PreviousBoot(p) => format!("{}: {}", p.cause, p.summary),
        other => other
            .headline()
            .map_or_else(|| other.kind().to_string(), |(_, s)| s),
    }
}

fn when(e: &Event) -> String {
    match (&e.time, e.kernel_time) {
        (Some(t), _) => t.to_string(),
        (None, Some(k)) => format!("[{k:.6}]"),
        (None, None) => "-".to_string(),
    }
}

const HEAD: [&str; 5] = ["TIME", "KIND", "HOST", "EVENT", "WHERE"];

/// One row of the table: when, kind, host, what, where.
fn row(e: &Event) -> [String; 5] {
    [
        when(e),
        e.body.kind().to_string(),
        e.host.clone().unwrap_or_else(|| "-".into()),
        describe(e),
        match e.line {
            Some(l) => format!("{}:{l}", e.source),
            None => e.source.clone(),
        },
    ]
}

fn widths(rows: &[[String; 5]]) -> [usize; 5] {
    let mut w = HEAD.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    w
}

fn table_line(cells: &[String; 5], w: &[usize; 5], with_host: bool) -> String {
    let mut l = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i == 2 && !with_host {
            continue;
        }
        if i == 4 {
            l.push_str(c);
        } else {
            l.push_str(&format!("{c:<width$}  ", width = w[i]));
        }
    }
    let mut l = l.trim_end().to_string();
    l.push('\n');
    l
}

/// The human table: when, kind, host, what, where.
pub fn table(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events\n".to_string();
    }
    let with_host = events.iter().any(|e| e.host.is_some());
    let rows: Vec<[String; 5]> = events.iter().map(row).collect();
    let w = widths(&rows);
    let mut s = table_line(&HEAD.map(String::from), &w, with_host);
    for r in &rows {
        s.push_str(&table_line(r, &w, with_host));
    }
    s
}

/// Counts for `--summary`, kept as events arrive.
#[derive(Debug, Default)]
pub struct Tally {
    pub events: u64,
    by_kind: BTreeMap<usize, (&'static str, u64)>,
    tasks: BTreeMap<(String, &'static str), u64>,
}

/// Distinct (task, kind) pairs counted; past this, new names are not.
const MAX_TALLY_TASKS: usize = 100_000;

impl Tally {
    pub fn add(&mut self, e: &Event) {
        self.events += 1;
        let k = e.body.kind();
        let order = Body::KINDS
            .iter()
            .position(|x| *x == k)
            .unwrap_or(usize::MAX);
        self.by_kind.entry(order).or_insert((k, 0)).1 += 1;
        if let Some((comm, _)) = e.body.task() {
            let key = (comm.to_string(), k);
            if let Some(n) = self.tasks.get_mut(&key) {
                *n += 1;
            } else if self.tasks.len() < MAX_TALLY_TASKS {
                self.tasks.insert(key, 1);
            }
        }
    }

    /// The tasks seen most: (comm, kind, count), most first.
    fn top(&self) -> Vec<(&str, &'static str, u64)> {
        let mut t: Vec<(&str, &'static str, u64)> = self
            .tasks
            .iter()
            .map(|((c, k), n)| (c.as_str(), *k, *n))
            .collect();
        t.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(b.0)));
        t.truncate(TOP_TASKS);
        t
    }
}

/// Tasks listed by `--summary`.
pub const TOP_TASKS: usize = 10;

/// `--summary --format json`: one document.
pub fn summary_json(c: &Tally) -> String {
    let by_kind: serde_json::Map<String, serde_json::Value> = c
        .by_kind
        .values()
        .map(|(k, n)| ((*k).to_string(), (*n).into()))
        .collect();
    let tasks: Vec<serde_json::Value> = c
        .top()
        .iter()
        .map(|(comm, kind, n)| serde_json::json!({"comm": comm, "kind": kind, "count": n}))
        .collect();
    serde_json::json!({
        "events": c.events,
        "by_kind": by_kind,
        "top_tasks": tasks,
    })
    .to_string()
}

/// `--summary`: counts by kind, then the tasks seen most.
pub fn summary_text(c: &Tally) -> String {
    let top = c.top();
    let mut s = format!("{} events\n", c.events);
    let w = c.by_kind.values().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, n) in c.by_kind.values() {
        s.push_str(&format!("  {k:<w$}  {n}\n"));
    }
    if !top.is_empty() {
        s.push_str("top tasks\n");
        let w = top.iter().map(|t| t.0.chars().count()).max().unwrap_or(0);
        for (comm, kind, n) in &top {
            s.push_str(&format!("  {comm:<w$}  {kind:<12}  {n}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_line_reader() {
        let mut data = vec![b'x'; MAX_LINE * 4];
        data.extend_from_slice(b"\nnext\n");
        let mut r = io::BufReader::with_capacity(1000, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut r, &mut buf).unwrap(),
            MAX_LINE * 4 + 1
        );
        assert_eq!(buf.len(), MAX_LINE + 1);
        read_line_bounded(&mut r, &mut buf).unwrap();
        assert_eq!(buf, b"next");
        assert_eq!(read_line_bounded(&mut r, &mut buf).unwrap(), 0);
    }

    #[test]
    fn since_forms() {
        assert_eq!(Since::parse("12.5"), Ok(Since::KernelSecs(12.5)));
        assert!(matches!(
            Since::parse("2024-03-04"),
            Ok(Since::Wall(_, false))
        ));
        assert!(matches!(
            Since::parse("2024-03-04T10:00:00Z"),
            Ok(Since::Wall(_, true))
        ));
        assert!(Since::parse("yesterday").is_err());
    }
}
#[cfg(test)]
mod prefilter_tests {
    use super::*;

    #[test]
    fn ordinary_lines_are_skipped_and_counted() {
        let ac = crate::parse::prefilter().expect("the prefilter builds");
        let mut text = String::new();
        for i in 0..10_000 {
            text.push_str(&format!(
                "[{i:>5}.000000] usb 1-1: new high-speed USB device\n"
            ));
        }
        text.push_str("[10000.000000] BUG: soft lockup - CPU#1 stuck for 22s! [a:1]\nrest\n");
        // As scan does: skip, then read one line (a candidate, or the line
        // cut by the buffer's end).
        let mut r = io::BufReader::with_capacity(4096, text.as_bytes());
        let (mut skipped, mut read) = (0, 0);
        let mut buf = Vec::new();
        let found = loop {
            skipped += skip_ordinary(&mut r, ac).unwrap().0;
            read_line_bounded(&mut r, &mut buf).unwrap();
            read += 1;
            if buf.windows(4).any(|w| w == b"BUG:") {
                break skipped + read;
            }
        };
        assert_eq!(found, 10_001, "the BUG line is line 10001");
        assert!(read < 200, "most lines skipped unframed: {read} read");
    }
}
