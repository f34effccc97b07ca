//! Line framing: one line of a saved log (or one /dev/kmsg record) →
//! a [`Record`] holding the kernel's message text and whatever the log
//! wrapped around it (timestamps, level, sequence number, host).
//!
//! The format is detected per line, so a file that mixes formats (a
//! serial capture with a shell prompt glued on, a syslog file that also
//! holds `[ 12.3]` kernel timestamps) still frames. Detection is layered:
//! an outer layer (kmsg record, journal JSON, udplogger, syslog, `dmesg
//! -T`) and then the console's own prefixes (`<4>`, `[   12.345678]`,
//! `[ T123]`) on the text that remains.

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserialize;

use crate::events::WallTime;
use crate::kernel::printk;
use crate::marker;

/// Longest line kept, in bytes. Kernel records are at most ~1 KiB
/// (`LOG_LINE_MAX`), journal JSON a few KiB; anything past this is cut and
/// the record marked [`Record::truncated`].
pub const MAX_LINE: usize = 64 * 1024;

/// One kernel message with its framing taken off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// The message text as the kernel printed it (no prefix, no newline).
    pub text: String,
    /// Seconds since boot.
    pub kernel_time: Option<f64>,
    pub wall_time: Option<WallTime>,
    /// printk level 0-7.
    pub level: Option<u8>,
    /// /dev/kmsg or extended-netconsole sequence number.
    pub seq: Option<u64>,
    /// Host name (syslog, journal) or sender address (udplogger).
    pub host: Option<String>,
    /// False for lines another program logged (syslog lines whose tag is not
    /// `kernel`, journal entries of other transports).
    pub kernel: bool,
    /// A line that carries no message: a kmsg dictionary line
    /// (` SUBSYSTEM=...`), an empty line.
    pub ignore: bool,
    /// A boot or log-start marker (`-- Boot 1234... --`): incidents open
    /// before it are over.
    pub boundary: bool,
    /// The line was longer than [`MAX_LINE`] and was cut.
    pub truncated: bool,
    /// Messages the log itself says were lost here (a `watchdog udplogger`
    /// `gap` or `write_failed` marker).
    pub lost: Option<u64>,
}

/// Frames lines; remembers only whether the previous line was a kmsg
/// record (so that its dictionary lines can be told apart).
#[derive(Debug, Clone, Default)]
pub struct Framer {
    after_kmsg: bool,
    /// Date the log was last written, for syslog timestamps, which print no
    /// year: see [`syslog_year_for`].
    reference: Option<NaiveDate>,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Year assumed for `Mon DD HH:MM:SS` timestamps (default: none, which
    /// leaves such lines without a wall time).
    pub fn with_year(year: Option<i32>) -> Framer {
        Framer {
            after_kmsg: false,
            reference: year.and_then(|y| NaiveDate::from_ymd_opt(y, 12, 31)),
        }
    }

    /// Syslog lines take their year from the date the log was last written
    /// (its modification time): see [`syslog_year_for`].
    pub fn with_reference(date: NaiveDate) -> Framer {
        Framer {
            after_kmsg: false,
            reference: Some(date),
        }
    }

    /// Frames one line; a trailing `\r` is dropped. Invalid UTF-8 is
    /// replaced, never rejected. Given a whole /dev/kmsg read (the record,
    /// a newline, its ` KEY=VALUE` dictionary lines), it frames the record
    /// and drops the dictionary: everything from the first newline on.
    pub fn frame(&mut self, line: &[u8]) -> Record {
        let line = match line.iter().position(|&b| b == b'\n') {
            Some(i) => &line[..i],
            None => line,
        };
        let truncated = line.len() > MAX_LINE;
        let line = &line[..line.len().min(MAX_LINE)];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        let mut rec = self.frame_str(&text);
        rec.truncated = truncated;
        rec
    }

    fn frame_str(&mut self, line: &str) -> Record {
        let after_kmsg = std::mem::take(&mut self.after_kmsg);
        let mut rec = Record {
            kernel: true,
            ..Record::default()
        };
        if line.trim().is_empty() {
            rec.ignore = true;
            return rec;
        }
        if after_kmsg && line.starts_with(' ') && line.contains('=') {
            // Dictionary line of the record before.
            self.after_kmsg = true;
            rec.ignore = true;
            return rec;
        }
        let mut rest = line;
        // The text of a udplogger JSON line, framed below like the text
        // column of its text form.
        let json_text: String;
        let mut from_json = false;
        if line.starts_with('{') {
            if let Some(r) = journal_json(line) {
                return r;
            }
            match udplogger_json(line, &mut rec) {
                Some(UdpJson::Done) => return rec,
                Some(UdpJson::Text(t)) => {
                    json_text = t;
                    rest = &json_text;
                    from_json = true;
                }
                None => {}
            }
        }
        if from_json {
            // A udplogger JSON line: the sender's text may still hold a
            // record header (`input: plain`) and console prefixes.
            if let Some(r) = kmsg_header(rest, &mut rec) {
                rest = r;
            }
        } else if let Some(rest) = kmsg_header(line, &mut rec) {
            self.after_kmsg = true;
            rec.text = rest.to_string();
            return rec;
        } else if line.starts_with("-- ") && line.ends_with(" --") {
            rec.boundary = true;
            rec.ignore = true;
            return rec;
        } else if udplogger_marker(rest, &mut rec) {
            return rec;
        } else if let Some(r) = udplogger(rest, &mut rec) {
            rest = r;
            if let Some(r) = kmsg_header(rest, &mut rec) {
                rest = r;
            }
        } else if let Some(r) = syslog(rest, self.reference, &mut rec) {
            rest = r;
        } else if let Some(r) = dmesg_ctime(rest, &mut rec)
            .or_else(|| journal_full(rest, &mut rec))
            .or_else(|| journal_unix(rest, &mut rec))
            .or_else(|| dmesg_iso(rest, &mut rec))
        {
            rest = r;
        }
        if let Some(r) = dmesg_decode(rest, &mut rec) {
            rest = r;
        }
        // A line grepped out of syslog without its timestamp and host.
        if let Some(r) = rest.strip_prefix("kernel: ") {
            rest = r;
        }
        let mut text = console_prefix(rest, &mut rec);
        // journalctl -o short-monotonic: `[ 12.345678] host kernel: text`.
        if rec.kernel_time.is_some() && rec.host.is_none() {
            if let Some(r) = monotonic_host_tag(text, &mut rec) {
                text = r;
            }
        }
        rec.text = text.to_string();
        rec
    }
}

/// `[release,]PRI,SEQ,TS_USEC,FLAGS[,more];text` — a /dev/kmsg record or an
/// extended netconsole message, by the one header parser
/// ([`crate::kernel::printk`]) that udplogger uses too.
fn kmsg_header<'a>(line: &'a str, rec: &mut Record) -> Option<&'a str> {
    let (h, body) = printk::parse(line.as_bytes())?;
    // Extended netconsole splits records over ~1000 bytes into fragments
    // `ncfrag=OFFSET/TOTAL`; the first holds the start of the message, which
    // is all recognition needs, so later fragments are skipped.
    if h.frag.is_some_and(|(off, _)| off != 0) {
        rec.ignore = true;
    }
    rec.level = Some(h.level());
    rec.seq = Some(h.seq);
    rec.kernel_time = Some(h.ts_usec as f64 / 1e6);
    // Messages that userspace wrote to /dev/kmsg carry a non-kernel facility.
    rec.kernel = h.facility() == 0;
    // The header is ASCII and ends at a `;`: `body` starts on a char
    // boundary of `line`.
    line.get(line.len() - body.len()..)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if is_digits(s) {
        s.parse().ok()
    } else {
        None
    }
}

/// Console prefixes the kernel (or `dmesg`) puts before the text:
/// `<N>`, `[ 12.345678]`, a caller id `[ T123]`/`[ C1]`. A serial capture
/// may have a prompt glued before the timestamp; the timestamp is then
/// searched for in the line.
fn console_prefix<'a>(mut s: &'a str, rec: &mut Record) -> &'a str {
    if let Some(r) = level_prefix(s, rec) {
        s = r;
    }
    if let Some(r) = timestamp(s, rec) {
        s = r;
    } else if let Some(pos) = find_glued_timestamp(s) {
        if let Some(r) = timestamp(&s[pos..], rec) {
            s = r;
        }
    }
    if let Some(r) = caller_id(s) {
        s = r;
    }
    // A syslog line may hold `<4>` after a `[ts]` was already taken.
    s
}

fn level_prefix<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find('>')?;
    if end == 0 || end > 3 {
        return None;
    }
    let n: u32 = parse_digits(&rest[..end])?;
    rec.level = Some((n & 7) as u8);
    Some(&rest[end + 1..])
}

/// `[   12.345678]` followed by one optional space.
fn timestamp<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    if end > 24 {
        return None;
    }
    let inner = rest[..end].trim_start();
    // `dmesg -d`/`--time-format delta`: `[  +0.000123]`, no absolute time.
    let (delta, inner) = match inner.strip_prefix('+') {
        Some(i) => (true, i),
        None => (false, inner),
    };
    let (secs, frac) = inner.split_once('.')?;
    if !is_digits(secs) || !is_digits(frac) {
        return None;
    }
    if !delta {
        rec.kernel_time = inner.parse::<f64>().ok();
    }
    let after = &rest[end + 1..];
    Some(after.strip_prefix(' ').unwrap_or(after))
}

/// Position of a `[ 123.456789]` kernel timestamp later in the line (six
/// fraction digits, to keep bracketed user text from matching).
fn find_glued_timestamp(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 1;
    while from < b.len() {
        let pos = from + memchr(b'[', &b[from..])?;
        let mut i = pos + 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let d0 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i > d0 && i < b.len() && b[i] == b'.' {
            let f0 = i + 1;
            let mut j = f0;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j - f0 == 6 && j < b.len() && b[j] == b']' {
                return Some(pos);
            }
        }
        from = pos + 1;
    }
    None
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// `[ T123]` / `[C1]` caller id (CONFIG_PRINTK_CALLER), right after the
/// timestamp.
fn caller_id(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let inner = rest[..end].trim_start();
    let num = inner
        .strip_prefix('T')
        .or_else(|| inner.strip_prefix('C'))?;
    if end > 12 || !is_digits(num) {
        return None;
    }
    let after = &rest[end + 1..];
    Some(after.strip_prefix(' ').unwrap_or(after))
}

/// `2024-03-01T10:00:00.123456+00:00 10.0.0.1:6666 text` (docs/contracts.md,
/// `watchdog udplogger`).
fn udplogger<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let (ts, rest) = s.split_once(' ')?;
    if !ts.as_bytes().first()?.is_ascii_digit() || !ts.contains('T') {
        return None;
    }
    let (src, text) = match rest.split_once(' ') {
        Some(p) => p,
        None => (rest, ""),
    };
    if !is_sender(src) {
        return None;
    }
    let t = rfc3339(ts)?;
    rec.wall_time = Some(t);
    rec.host = Some(src.to_string());
    Some(text)
}

/// `TIME udplogger ABOUT KIND: MESSAGE key=value...`, the receiver's own
/// marker lines ([`crate::marker`]): a `gap` (records missing) or a
/// `write_failed` (lines dropped) is a loss for that sender (or the file);
/// a `reset` (the sender's sequence restarted) ends its open incidents.
/// Other markers carry no kernel message. Counts come from the marker's
/// fields, never from its wording.
fn udplogger_marker(s: &str, rec: &mut Record) -> bool {
    marker::parse_line(s).is_some_and(|p| take_marker(&p, rec))
}

/// Fills `rec` from a marker of either form; false when its time is not
/// a time (then the line is not a marker after all).
fn take_marker(p: &marker::Parsed<'_>, rec: &mut Record) -> bool {
    let Some(t) = rfc3339(p.time) else {
        return false;
    };
    rec.wall_time = Some(t);
    rec.kernel = false;
    rec.ignore = true;
    if is_sender(p.about) {
        rec.host = Some(p.about.to_string());
    }
    rec.lost = p.marker.as_ref().and_then(marker::Marker::lost);
    rec.boundary = marker::Kind::from_name(p.kind) == Some(marker::Kind::Reset);
    if rec.lost.is_some() {
        rec.ignore = false;
    }
    true
}

/// What a `watchdog udplogger --json` line gave.
enum UdpJson {
    /// A marker, or an extended record with its metadata: `rec` is done.
    Done,
    /// A plain sender's text, still to be framed.
    Text(String),
}

/// `{"time":..,"source":"ADDR:PORT","text":..[,"level":PRI,"seq":..,
/// "ts_usec":..,"dict":[..]]}` or a marker (`"source":"udplogger"`):
/// docs/udplogger.md, "What lands on disk".
fn udplogger_json(line: &str, rec: &mut Record) -> Option<UdpJson> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).ok()?;
    if let Some(p) = marker::parse_json(&v) {
        return take_marker(&p, rec).then_some(UdpJson::Done);
    }
    let source = v.get("source")?.as_str()?;
    if !is_sender(source) {
        return None;
    }
    let time = rfc3339(v.get("time")?.as_str()?)?;
    let text = v.get("text")?.as_str()?;
    rec.wall_time = Some(time);
    rec.host = Some(source.to_string());
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    if num("seq").is_none() {
        return Some(UdpJson::Text(text.to_string()));
    }
    // An extended record: the receiver took the header off and kept it
    // in members (`level` is the header's PRI). Its `seq` is not taken:
    // the receiver already wrote a `gap` marker for every hole, which
    // would be counted twice (the text form has no `seq` either).
    if let Some(pri) = num("level") {
        rec.level = u8::try_from(pri & 7).ok();
        rec.kernel = pri >> 3 == 0;
    }
    rec.kernel_time = num("ts_usec").map(|us| us as f64 / 1e6);
    rec.text = text.to_string();
    Some(UdpJson::Done)
}

fn is_sender(s: &str) -> bool {
    let Some((addr, port)) = s.rsplit_once(':') else {
        return false;
    };
    if !is_digits(port) {
        return false;
    }
    if let Some(v6) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    addr.parse::<std::net::Ipv4Addr>().is_ok()
}

fn rfc3339(ts: &str) -> Option<WallTime> {
    // Also the journal's short-iso `2024-03-01T10:00:00+0100`.
    let dt = chrono::DateTime::parse_from_rfc3339(ts)
        .or_else(|_| chrono::DateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()?;
    Some(WallTime {
        local: dt.naive_local(),
        offset: Some(*dt.offset()),
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Syslog and `journalctl` short formats:
/// `Mon DD HH:MM:SS[.uuuuuu] host tag: text` and
/// `YYYY-MM-DDTHH:MM:SS[.f]+zz:zz host tag: text`.
fn syslog<'a>(s: &'a str, reference: Option<NaiveDate>, rec: &mut Record) -> Option<&'a str> {
    let (wall, rest) = if s.as_bytes().first()?.is_ascii_digit() {
        let (ts, rest) = s.split_once(' ')?;
        match rfc3339(ts) {
            Some(t) => (Some(t), rest),
            None => {
                // `2021-03-16 11:27:14.275 [host] kernel: text`
                let (clock, rest) = rest.split_once(' ')?;
                let local =
                    NaiveDateTime::parse_from_str(&format!("{ts} {clock}"), "%Y-%m-%d %H:%M:%S%.f")
                        .ok()?;
                (
                    Some(WallTime {
                        local,
                        offset: None,
                    }),
                    rest,
                )
            }
        }
    } else {
        let (word, rest) = s.split_once(' ')?;
        let month = month_number(word)?;
        let rest = rest.trim_start();
        let (day, rest) = rest.split_once(' ')?;
        let day: u32 = parse_digits(day)?;
        let (clock, rest) = rest.split_once(' ')?;
        let (hms, frac) = match clock.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (clock, None),
        };
        let time = NaiveTime::parse_from_str(hms, "%H:%M:%S").ok()?;
        let nanos = match frac {
            Some(f) if is_digits(f) && f.len() <= 9 => {
                f.parse::<u32>().ok()? * 10u32.pow(9 - u32::try_from(f.len()).ok()?)
            }
            Some(_) => return None,
            None => 0,
        };
        let wall = month
            .zip(reference)
            .map(|(month, r)| (month, syslog_year_for(r, month)))
            .and_then(|(month, y)| NaiveDate::from_ymd_opt(y, month, day))
            .and_then(|d| d.and_time(time).with_nanosecond_opt(nanos))
            .map(|local| WallTime {
                local,
                offset: None,
            });
        (wall, rest)
    };
    let text = host_tag(rest, rec)?;
    rec.wall_time = wall;
    Some(text)
}

/// Month of a syslog timestamp: English (`Mar`), or German as journalctl
/// prints it under `LANG=de_DE` (`Mär`, `Mai`, `Okt`, `Dez`). `Some(None)`
/// for another short word: the line still frames, without a wall time.
fn month_number(word: &str) -> Option<Option<u32>> {
    const DE: [&str; 12] = [
        "Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez",
    ];
    let pos = MONTHS
        .iter()
        .position(|m| *m == word)
        .or_else(|| DE.iter().position(|m| *m == word));
    if let Some(i) = pos {
        return Some(u32::try_from(i).ok().map(|i| i + 1));
    }
    let n = word.chars().count();
    ((3..=5).contains(&n) && word.chars().all(|c| c.is_alphabetic() || c == '.')).then_some(None)
}

/// `host tag: text` after a syslog or journal timestamp (the host may be
/// missing before `kernel:`); sets the host and whether the tag is the
/// kernel's.
fn host_tag<'a>(rest: &'a str, rec: &mut Record) -> Option<&'a str> {
    if let Some(text) = rest.strip_prefix("kernel: ") {
        return Some(text);
    }
    let (host, rest) = rest.split_once(' ')?;
    let (tag, text) = match rest.split_once(": ") {
        Some(p) => p,
        None => (rest.strip_suffix(':')?, ""),
    };
    if tag.contains(' ') || tag.is_empty() || host.is_empty() {
        return None;
    }
    rec.host = Some(host.to_string());
    let name = tag.split('[').next().unwrap_or(tag);
    rec.kernel = name == "kernel";
    Some(text)
}

/// `host kernel: text` after a short-monotonic timestamp. Only the kernel
/// tag is taken: a kernel message of the form `word kernel: ...` is not
/// known to exist, other tags could be message text.
fn monotonic_host_tag<'a>(text: &'a str, rec: &mut Record) -> Option<&'a str> {
    let (host, rest) = text.split_once(' ')?;
    let body = rest.strip_prefix("kernel: ")?;
    if host.is_empty() || host.contains(':') {
        return None;
    }
    rec.host = Some(host.to_string());
    Some(body)
}

/// journalctl -o short-full: `Tue 2024-01-09 10:41:33 CET host kernel: text`
/// (the zone is an abbreviation, so the time is kept without an offset).
fn journal_full<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let mut it = s.splitn(5, ' ');
    let (wd, date, clock, _zone, rest) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if wd.len() != 3 || !wd.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let local =
        NaiveDateTime::parse_from_str(&format!("{date} {clock}"), "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let text = host_tag(rest, rec)?;
    rec.wall_time = Some(WallTime {
        local,
        offset: None,
    });
    Some(text)
}

/// journalctl -o short-unix: `1704791013.120544 host kernel: text`.
fn journal_unix<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let (ts, rest) = s.split_once(' ')?;
    let (secs, frac) = ts.split_once('.')?;
    if !is_digits(secs) || !is_digits(frac) || secs.len() < 9 {
        return None;
    }
    let mut micros: String = frac.chars().take(6).collect();
    while micros.len() < 6 {
        micros.push('0');
    }
    let us = secs
        .parse::<i64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros.parse::<i64>().ok()?)?;
    let dt = chrono::DateTime::from_timestamp_micros(us)?;
    let text = host_tag(rest, rec)?;
    rec.wall_time = Some(WallTime {
        local: dt.naive_utc(),
        offset: FixedOffset::east_opt(0),
    });
    Some(text)
}

/// `dmesg --time-format iso`: `2024-01-09T10:41:33,120544+01:00 text`.
fn dmesg_iso<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let (ts, rest) = s.split_once(' ')?;
    if !ts.contains(',') || !ts.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    rec.wall_time = Some(rfc3339(&ts.replacen(',', ".", 1))?);
    Some(rest)
}

const FACILITIES: [&str; 20] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// `dmesg -x`: `kern  :err   : text`.
fn dmesg_decode<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let (fac, rest) = s.split_once(':')?;
    let fac = fac.trim_end();
    if !FACILITIES.contains(&fac) {
        return None;
    }
    let (lvl, rest) = rest.split_once(':')?;
    let level = LEVELS.iter().position(|l| *l == lvl.trim_end())?;
    rec.level = u8::try_from(level).ok();
    rec.kernel = fac == "kern";
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

trait WithNanos {
    fn with_nanosecond_opt(self, n: u32) -> Option<NaiveDateTime>;
}

impl WithNanos for NaiveDateTime {
    fn with_nanosecond_opt(self, n: u32) -> Option<NaiveDateTime> {
        use chrono::Timelike;
        self.with_nanosecond(n)
    }
}

/// `dmesg -T`: `[Mon Mar  4 10:00:00 2024] text` (local time, no zone).
fn dmesg_ctime<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    if end > 30 || !rest.as_bytes().first()?.is_ascii_alphabetic() {
        return None;
    }
    let inner = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
    let local = NaiveDateTime::parse_from_str(&inner, "%a %b %d %H:%M:%S %Y").ok()?;
    rec.wall_time = Some(WallTime {
        local,
        offset: None,
    });
    let after = &rest[end + 1..];
    Some(after.strip_prefix(' ').unwrap_or(after))
}

/// The fields of `journalctl -o json` this parser uses.
#[derive(Deserialize)]
struct JournalEntry {
    #[serde(rename = "MESSAGE")]
    message: Option<serde_json::Value>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<String>,
    #[serde(rename = "_SOURCE_MONOTONIC_TIMESTAMP")]
    source_monotonic: Option<String>,
    #[serde(rename = "_HOSTNAME")]
    hostname: Option<String>,
    #[serde(rename = "PRIORITY")]
    priority: Option<String>,
    #[serde(rename = "_TRANSPORT")]
    transport: Option<String>,
    #[serde(rename = "SYSLOG_IDENTIFIER")]
    identifier: Option<String>,
}

fn journal_json(line: &str) -> Option<Record> {
    let e: JournalEntry = serde_json::from_str(line).ok()?;
    let text = match e.message? {
        serde_json::Value::String(s) => s,
        // Non-UTF-8 messages are exported as an array of bytes.
        serde_json::Value::Array(a) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|v| v.as_u64())
                .map(|b| u8::try_from(b).unwrap_or(b'?'))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => return None,
    };
    let mut rec = Record {
        kernel: match (&e.transport, &e.identifier) {
            (Some(t), _) => t == "kernel",
            (None, Some(i)) => i == "kernel",
            (None, None) => true,
        },
        host: e.hostname,
        level: e
            .priority
            .and_then(|p| p.parse::<u8>().ok())
            .filter(|p| *p < 8),
        ..Record::default()
    };
    if let Some(us) = e.realtime.and_then(|s| s.parse::<i64>().ok()) {
        if let Some(dt) = chrono::DateTime::from_timestamp_micros(us) {
            rec.wall_time = Some(WallTime {
                local: dt.naive_utc(),
                offset: FixedOffset::east_opt(0),
            });
        }
    }
    if let Some(us) = e.source_monotonic.and_then(|s| s.parse::<u64>().ok()) {
        rec.kernel_time = Some(us as f64 / 1e6);
    }
    // A multi-line MESSAGE is rare for the kernel; keep its first line.
    let first = text.lines().next().unwrap_or("");
    rec.text = first.to_string();
    Some(rec)
}

/// Year used for syslog lines of a file last modified at `mtime`: a month
/// later than the file's is from the year before (logs are written in
/// order, so a December line in a January file is last year's).
pub fn syslog_year_for(mtime: chrono::NaiveDate, month: u32) -> i32 {
    if month > mtime.month() {
        mtime.year() - 1
    } else {
        mtime.year()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(line: &str) -> Record {
        Framer::with_year(Some(2024)).frame(line.as_bytes())
    }

    #[test]
    fn kmsg_record_and_dictionary() {
        let mut fr = Framer::new();
        let r = fr.frame(b"3,1234,5678901,-;INFO: task a:1 blocked");
        assert_eq!(r.text, "INFO: task a:1 blocked");
        assert_eq!(r.level, Some(3));
        assert_eq!(r.seq, Some(1234));
        assert_eq!(r.kernel_time, Some(5.678901));
        assert!(r.kernel);
        let d = fr.frame(b" SUBSYSTEM=block");
        assert!(d.ignore);
        let whole_read =
            fr.frame(b"6,1235,5678999,-;sd 0:0:0:0: hi\n SUBSYSTEM=scsi\n DEVICE=+scsi:0:0:0:0\n");
        assert_eq!(
            (whole_read.text.as_str(), whole_read.seq),
            ("sd 0:0:0:0: hi", Some(1235))
        );
        let r = fr.frame(b"6.1.0-13-amd64,4,99,1000000,c,ncfrag=0/1200;hello");
        assert_eq!(
            (r.text.as_str(), r.seq, r.level),
            ("hello", Some(99), Some(4))
        );
        let frag = fr.frame(b"6,416,1758426,-,ncfrag=16/31; the 2nd chunk.");
        assert!(frag.ignore);
        let user = fr.frame(b"12,5,100,-;from userspace");
        assert!(!user.kernel);
    }

    #[test]
    fn dmesg_variants() {
        let r = f("[   12.345678] hello world");
        assert_eq!(
            (r.text.as_str(), r.kernel_time),
            ("hello world", Some(12.345678))
        );
        let r = f("<4>[   12.345678] hello");
        assert_eq!((r.text.as_str(), r.level), ("hello", Some(4)));
        let r = f("[  125.357424][  T140] INFO: x");
        assert_eq!(r.text, "INFO: x");
        let r = f("[    0.000000] [    T0] Linux version");
        assert_eq!(r.text, "Linux version");
        let r = f("[  179.211911][    C1] ** 1 printk messages dropped **");
        assert_eq!(r.text, "** 1 printk messages dropped **");
        let r = f("[Mon Mar  4 10:00:00 2024] hello");
        assert_eq!(r.text, "hello");
        assert_eq!(r.wall_time.unwrap().to_string(), "2024-03-04T10:00:00");
        let r = f("[root@db1 ~]# [  240.100000] BUG: x");
        assert_eq!((r.text.as_str(), r.kernel_time), ("BUG: x", Some(240.1)));
    }

    #[test]
    fn syslog_and_journal() {
        let r = f("Mar  4 10:00:00 db1 kernel: [ 1.5] Out of memory");
        assert_eq!(r.text, "Out of memory");
        assert_eq!(r.host.as_deref(), Some("db1"));
        assert_eq!(r.kernel_time, Some(1.5));
        assert_eq!(r.wall_time.unwrap().to_string(), "2024-03-04T10:00:00");
        let r = f("Mar  4 10:00:00.123456 db1 kernel: x");
        assert_eq!(
            r.wall_time.unwrap().to_string(),
            "2024-03-04T10:00:00.123456"
        );
        let r = f("Dez 21 10:22:08 abreu kernel: INFO: task a:1 blocked");
        assert_eq!(r.wall_time.unwrap().to_string(), "2024-12-21T10:22:08");
        assert_eq!(
            (r.text.as_str(), r.host.as_deref()),
            ("INFO: task a:1 blocked", Some("abreu"))
        );
        let r = f("déc. 21 10:22:08 h kernel: x");
        assert_eq!((r.text.as_str(), r.wall_time), ("x", None));
        let r = f("2021-03-16 11:27:14.275 kernel: INFO: x");
        assert_eq!(r.text, "INFO: x");
        assert_eq!(r.wall_time.unwrap().to_string(), "2021-03-16T11:27:14.275");
        assert_eq!(f("kernel: INFO: x").text, "INFO: x");
        let r = f("Mar  4 10:00:00 db1 sshd[12]: a[1]: segfault at 0");
        assert!(!r.kernel);
        let r = f("2024-03-04T10:00:00.5+01:00 db1 kernel: x");
        assert_eq!(
            r.wall_time.unwrap().to_string(),
            "2024-03-04T10:00:00.500+01:00"
        );
        assert!(f("-- Boot 0123456789abcdef --").boundary);
        let j = r#"{"MESSAGE":"hello","__REALTIME_TIMESTAMP":"1700000000000000","_SOURCE_MONOTONIC_TIMESTAMP":"2500000","_HOSTNAME":"h","_TRANSPORT":"kernel","PRIORITY":"3"}"#;
        let r = f(j);
        assert_eq!(r.text, "hello");
        assert_eq!(r.kernel_time, Some(2.5));
        assert_eq!(r.wall_time.unwrap().to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(r.level, Some(3));
    }

    #[test]
    fn journal_and_dmesg_variants() {
        let r = f("[ 1234.567890] db1 kernel: INFO: x");
        assert_eq!(
            (r.text.as_str(), r.host.as_deref()),
            ("INFO: x", Some("db1"))
        );
        assert_eq!(r.kernel_time, Some(1234.56789));
        let r = f("1704791013.120544 db1 kernel: hello");
        assert_eq!(
            r.wall_time.unwrap().to_string(),
            "2024-01-09T09:03:33.120544Z"
        );
        assert_eq!(r.text, "hello");
        let r = f("Tue 2024-01-09 10:41:33 CET db1 kernel: hello");
        assert_eq!(r.wall_time.unwrap().to_string(), "2024-01-09T10:41:33");
        assert_eq!(r.text, "hello");
        let r = f("2024-01-09T10:41:33,120544+01:00 hello there");
        assert_eq!(
            r.wall_time.unwrap().to_string(),
            "2024-01-09T10:41:33.120544+01:00"
        );
        assert_eq!(r.text, "hello there");
        let r = f("kern  :err   : [   12.000000] oops");
        assert_eq!(
            (r.text.as_str(), r.level, r.kernel),
            ("oops", Some(3), true)
        );
        let r = f("user  :notice: [   12.000000] x");
        assert!(!r.kernel);
        let r = f("[  +0.000123] delta");
        assert_eq!((r.text.as_str(), r.kernel_time), ("delta", None));
    }

    #[test]
    fn udplogger_line() {
        let r = f("2024-03-04T10:00:00.000001+00:00 10.0.0.7:6666 [   3.000000] hi");
        assert_eq!(r.host.as_deref(), Some("10.0.0.7:6666"));
        assert_eq!((r.text.as_str(), r.kernel_time), ("hi", Some(3.0)));
        let r = f("2024-03-04T10:00:00.000001Z [fe80::1]:6666 4,7,1000,-;ext");
        assert_eq!((r.text.as_str(), r.seq), ("ext", Some(7)));
    }

    #[test]
    fn udplogger_markers_count_from_their_fields() {
        let r = f("2026-11-22T04:25:12Z udplogger 10.0.0.7:6666 gap: 9 records missing count=3 from=5 to=7");
        assert_eq!(
            (r.lost, r.host.as_deref()),
            (Some(3), Some("10.0.0.7:6666"))
        );
        assert!(!r.ignore && !r.kernel);
        let r = f("2026-11-22T04:25:12Z udplogger - write_failed: writing resumed: 2 lines dropped since T (EIO); lines held in memory meanwhile were written above count=2 since=T");
        assert_eq!((r.lost, r.host), (Some(2), None));
        let r = f("2026-11-22T04:25:12Z udplogger 10.0.0.7:6666 reset: sequence restarted at 0 after 9: the sender rebooted or reloaded netconsole last=9 seq=0");
        assert!(r.boundary && r.ignore);
        let r = f("2026-11-22T04:25:12Z udplogger 0.0.0.0:6666 kernel_drop: the kernel dropped 7 datagrams on this socket: receive buffer full count=7");
        assert!(r.ignore && r.lost.is_none());
        // A sender cannot forge a marker: its source column has a port.
        let r = f("2026-11-22T04:25:12Z 10.0.0.7:6666 udplogger x gap: 1 record missing count=1 from=1 to=1");
        assert!(r.lost.is_none() && !r.ignore);
    }

    #[test]
    fn udplogger_json_lines_and_markers() {
        let r = f(
            r#"{"time":"2026-11-22T04:10:32.271684Z","source":"127.0.0.2:6665","text":"e1000e 0000:00:19.0 eth0: Reset adapter unexpectedly","level":3,"seq":7,"ts_usec":1200000,"dict":["SUBSYSTEM=pci"]}"#,
        );
        assert_eq!(
            (
                r.text.as_str(),
                r.seq,
                r.level,
                r.kernel_time,
                r.host.as_deref()
            ),
            (
                "e1000e 0000:00:19.0 eth0: Reset adapter unexpectedly",
                None,
                Some(3),
                Some(1.2),
                Some("127.0.0.2:6665")
            )
        );
        assert!(r.kernel && !r.ignore);
        assert_eq!(
            r.wall_time.unwrap().to_string(),
            "2026-11-22T04:10:32.271684Z"
        );
        // A plain sender's text keeps its console prefixes to take off.
        let r = f(
            r#"{"time":"2026-11-22T04:10:32Z","source":"[::1]:6665","text":"<4>[   12.500000] INFO: x"}"#,
        );
        assert_eq!(
            (r.text.as_str(), r.level, r.kernel_time),
            ("INFO: x", Some(4), Some(12.5))
        );
        let r = f(
            r#"{"time":"2026-11-22T04:10:32Z","source":"udplogger","about":"127.0.0.2:6665","marker":"gap","text":"9 records missing","count":3,"from":2042,"to":2044}"#,
        );
        assert_eq!(
            (r.lost, r.host.as_deref()),
            (Some(3), Some("127.0.0.2:6665"))
        );
        let r = f(
            r#"{"time":"2026-11-22T04:10:32Z","source":"udplogger","about":"127.0.0.2:6665","marker":"reset","text":"x","last":9,"seq":0}"#,
        );
        assert!(r.boundary && r.ignore);
        // Other JSON is framed as before.
        let r = f(r#"{"time":"2026-11-22T04:10:32Z","source":"nobody","text":"x"}"#);
        assert_eq!((r.host, r.seq), (None, None));
    }

    #[test]
    fn only_kernel_flags_make_a_kmsg_header() {
        // The one header parser (kernel::printk) decides: `-`, `c`, `+`.
        assert_eq!(f("6,1,2,+;more").seq, Some(1));
        let r = f("6,1,2,x;not a flag");
        assert_eq!((r.seq, r.text.as_str()), (None, "6,1,2,x;not a flag"));
        let r = f("6,1,2,;empty flag");
        assert_eq!(r.seq, None);
        let r = f("hello,6,1,2,-;not a release");
        assert_eq!(r.seq, None);
    }

    #[test]
    fn hostile_lines() {
        let mut fr = Framer::new();
        let r = fr.frame(&[0xff, 0, b'x']);
        assert_eq!(r.text, "\u{fffd}\u{0}x");
        let big = vec![b'a'; MAX_LINE * 3];
        let r = fr.frame(&big);
        assert!(r.truncated);
        assert_eq!(r.text.len(), MAX_LINE);
    }
}
