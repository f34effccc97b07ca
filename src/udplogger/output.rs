//! What lands on disk: file naming and rotation, line formatting and
//! escaping, buffered writes, and surviving write failures.
//!
//! Lines are appended to per-file buffers and written in large chunks at
//! the end of each poll round. A failed write or open (ENOSPC, EIO, EMFILE,
//! EACCES, a vanished directory, a non-regular file in the way) puts that
//! file in a fault: its lines are held in memory up to a bound, then
//! counted and dropped; retries back off exponentially; on recovery a
//! marker line says how many lines were dropped and why.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::clock::Stamp;
use super::extended::Meta;
use crate::marker::{Body, Marker};

/// Buffered bytes of one file that trigger a write before the round ends.
const WRITE_CHUNK: usize = 1 << 20;
/// First retry after a failure; doubles up to `retry_max`.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Files idle this long are closed (yesterday's file, a quiet sender).
const IDLE_CLOSE: Duration = Duration::from_secs(120);
/// Open files at most (per-sender layout); lower when RLIMIT_NOFILE is
/// low, so that the receiver never runs into EMFILE by itself.
const MAX_OPEN: usize = 256;

fn max_open_files() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(32) / 2)
        .unwrap_or(MAX_OPEN)
        .clamp(4, MAX_OPEN)
}

#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub dir: PathBuf,
    pub per_sender: bool,
    pub json: bool,
    /// Start a new part (`STEM.1.log`, ...) past this size; 0: no limit.
    pub max_file_bytes: u64,
    pub file_mode: u32,
    /// Bytes held in memory while a file cannot be written.
    pub hold_bytes: usize,
    pub retry_max: Duration,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct OutputStats {
    pub lines: u64,
    pub markers: u64,
    pub dropped: u64,
    pub faults: u64,
}

#[derive(Debug)]
struct Fault {
    reason: String,
    since: String,
    next_retry: Instant,
    backoff: Duration,
    dropped: u64,
}

#[derive(Debug)]
struct OutFile {
    stem: String,
    part: u32,
    file: Option<(File, u64, u64)>,
    size: u64,
    buf: Vec<u8>,
    fault: Option<Fault>,
    last_used: Instant,
}

pub struct Output {
    cfg: OutputConfig,
    files: Vec<OutFile>,
    /// Stem to index in `files`.
    index: HashMap<String, usize>,
    /// The file of the last line: consecutive lines nearly always share
    /// it, so the hash lookup is skipped.
    cur: Option<usize>,
    held: usize,
    scratch: Vec<u8>,
    key: String,
    next_tick: Option<Instant>,
    max_open: usize,
    pub stats: OutputStats,
    /// Syslog targets every line and marker is also sent to (non-blocking).
    pub forward: Option<crate::forward::udplogger::UdpForward>,
}

/// Source column of marker lines: never a sender, which always has a port.
pub const MARKER_SOURCE: &str = crate::marker::SOURCE;

impl Output {
    pub fn new(cfg: OutputConfig) -> Output {
        Output {
            cfg,
            files: Vec::new(),
            index: HashMap::new(),
            cur: None,
            held: 0,
            scratch: Vec::with_capacity(4096),
            key: String::new(),
            next_tick: None,
            max_open: max_open_files(),
            stats: OutputStats::default(),
            forward: None,
        }
    }

    /// Bytes waiting in memory.
    pub fn held(&self) -> usize {
        self.held
    }

    /// True when some file is failing and will be retried.
    pub fn faulted(&self) -> bool {
        self.files.iter().any(|f| f.fault.is_some())
    }

    fn set_key(&mut self, stamp: &Stamp, sender: Option<&str>) {
        self.key.clear();
        if self.cfg.per_sender {
            self.key.push_str(sender.unwrap_or(MARKER_SOURCE));
            self.key.push('/');
        }
        self.key.push_str(&stamp.period);
    }

    /// Index of the file for `self.key`, created if new.
    fn index_of(&mut self, now: Instant) -> usize {
        if let Some(i) = self.cur {
            if self.files[i].stem == self.key {
                return i;
            }
        }
        let i = match self.index.get(self.key.as_str()) {
            Some(&i) => i,
            None => {
                self.files.push(OutFile {
                    stem: self.key.clone(),
                    part: 0,
                    file: None,
                    size: 0,
                    buf: Vec::new(),
                    fault: None,
                    last_used: now,
                });
                self.index.insert(self.key.clone(), self.files.len() - 1);
                self.files.len() - 1
            }
        };
        self.cur = Some(i);
        i
    }

    /// Gets the file for `self.key`, or counts a drop when it is failing
    /// and memory is full.
    fn target(&mut self, now: Instant) -> Option<usize> {
        let i = self.index_of(now);
        let f = &mut self.files[i];
        if let Some(fault) = &mut f.fault {
            if self.held >= self.cfg.hold_bytes {
                fault.dropped += 1;
                self.stats.dropped += 1;
                return None;
            }
        }
        f.last_used = now;
        Some(i)
    }

    /// Appends one received line.
    pub fn line(
        &mut self,
        stamp: &Stamp,
        source: &str,
        text: &[u8],
        meta: Option<&Meta>,
        dict: &[&[u8]],
        now: Instant,
    ) {
        if let Some(f) = self.forward.as_mut() {
            f.line(
                &stamp.text,
                source,
                text,
                meta.map(|m| (m.level, m.seq, m.ts_usec)),
                dict,
            );
        }
        self.set_key(stamp, Some(source));
        let json = self.cfg.json;
        let mut scratch = std::mem::take(&mut self.scratch);
        let Some(i) = self.target(now) else {
            self.scratch = scratch;
            return;
        };
        let f = &mut self.files[i];
        let before = f.buf.len();
        let b = &mut f.buf;
        if json {
            b.extend_from_slice(b"{\"time\":\"");
            b.extend_from_slice(stamp.text.as_bytes());
            b.extend_from_slice(b"\",\"source\":\"");
            b.extend_from_slice(source.as_bytes());
            b.extend_from_slice(b"\",\"text\":");
            json_str(b, &mut scratch, text);
            if let Some(m) = meta {
                let _ = write!(
                    b,
                    ",\"level\":{},\"seq\":{},\"ts_usec\":{}",
                    m.level, m.seq, m.ts_usec
                );
            }
            if !dict.is_empty() {
                b.extend_from_slice(b",\"dict\":[");
                for (i, d) in dict.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    json_str(b, &mut scratch, d);
                }
                b.push(b']');
            }
            b.extend_from_slice(b"}\n");
        } else {
            for (i, t) in std::iter::once(&text).chain(dict.iter()).enumerate() {
                b.extend_from_slice(stamp.text.as_bytes());
                b.push(b' ');
                b.extend_from_slice(source.as_bytes());
                // Dictionary lines keep the kernel's leading space.
                b.extend_from_slice(if i == 0 { b" " } else { b"  " });
                escape_into(b, t);
                b.push(b'\n');
            }
        }
        let grown = f.buf.len() - before;
        let big = f.buf.len() >= WRITE_CHUNK && f.fault.is_none();
        self.held += grown;
        self.stats.lines += 1;
        self.scratch = scratch;
        if big {
            self.write_file(i, stamp, now);
        }
    }

    /// Appends a marker: something the receiver itself has to say about
    /// `m.about` (a sender, a socket, a file). `sender` routes it in the
    /// per-sender layout.
    pub fn marker(&mut self, stamp: &Stamp, sender: Option<&str>, m: &Marker, now: Instant) {
        if let Some(f) = self.forward.as_mut() {
            f.marker(&stamp.text, sender, m);
        }
        self.set_key(stamp, sender);
        let json = self.cfg.json;
        let Some(i) = self.target(now) else { return };
        let f = &mut self.files[i];
        let before = f.buf.len();
        push_marker(&mut f.buf, json, stamp, m);
        self.held += f.buf.len() - before;
        self.stats.markers += 1;
    }

    /// Writes every buffered file that is not waiting for a retry.
    pub fn flush(&mut self, stamp: &Stamp, now: Instant) {
        for i in 0..self.files.len() {
            if !self.files[i].buf.is_empty() || self.files[i].fault.is_some() {
                self.write_file(i, stamp, now);
            }
        }
    }

    /// Earliest retry of a failing file.
    pub fn next_retry(&self) -> Option<Instant> {
        self.files
            .iter()
            .filter_map(|f| f.fault.as_ref().map(|x| x.next_retry))
            .min()
    }

    /// Once a second: close idle files.
    pub fn tick(&mut self, now: Instant) {
        if self.next_tick.is_some_and(|t| now < t) {
            return;
        }
        self.next_tick = Some(now + Duration::from_secs(1));
        self.files.retain_mut(|f| {
            let idle = now.duration_since(f.last_used) >= IDLE_CLOSE;
            !(idle && f.buf.is_empty() && f.fault.is_none())
        });
        self.index = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.stem.clone(), i))
            .collect();
        self.cur = None;
    }

    /// SIGHUP: write what is buffered, close every file; the next line
    /// opens the file by name again (after logrotate moved it).
    pub fn reopen(&mut self, stamp: &Stamp, now: Instant) {
        self.flush(stamp, now);
        for f in &mut self.files {
            f.file = None;
            f.part = 0;
        }
    }

    fn write_file(&mut self, i: usize, stamp: &Stamp, now: Instant) {
        if self.files.get(i).is_some_and(|f| f.file.is_none())
            && self.files.iter().filter(|f| f.file.is_some()).count() >= self.max_open
        {
            // Make room before opening: close the least recently used file
            // (its buffer stays; it is opened again when needed).
            if let Some(f) = self
                .files
                .iter_mut()
                .filter(|f| f.file.is_some())
                .min_by_key(|f| (!f.buf.is_empty(), f.last_used))
            {
                f.file = None;
            }
        }
        let cfg = &self.cfg;
        let Some(f) = self.files.get_mut(i) else {
            return;
        };
        if f.fault.as_ref().is_some_and(|x| now < x.next_retry) {
            return;
        }
        let before = f.buf.len();
        let result = write_out(cfg, f);
        self.held -= before - f.buf.len();
        match result {
            Ok(()) => {
                if let Some(fault) = f.fault.take() {
                    let m = Marker::new(
                        "-",
                        Body::WriteFailed {
                            count: fault.dropped,
                            since: fault.since,
                        },
                    )
                    .with_reason(fault.reason);
                    eprintln!(
                        "watchdog udplogger: {}: {}",
                        file_path(&cfg.dir, &f.stem, f.part).display(),
                        m.message()
                    );
                    let before = f.buf.len();
                    push_marker(&mut f.buf, cfg.json, stamp, &m);
                    self.stats.markers += 1;
                    let r = write_out(cfg, f);
                    self.held -= before.saturating_sub(f.buf.len());
                    let _ = r;
                }
            }
            Err(e) => {
                f.file = None;
                match &mut f.fault {
                    Some(fault) => {
                        fault.backoff = (fault.backoff * 2).min(cfg.retry_max);
                        fault.next_retry = now + fault.backoff;
                        fault.reason = e.to_string();
                    }
                    None => {
                        self.stats.faults += 1;
                        eprintln!(
                            "watchdog udplogger: {}: {e}; holding up to {} bytes in memory and retrying",
                            file_path(&cfg.dir, &f.stem, f.part).display(),
                            cfg.hold_bytes
                        );
                        f.fault = Some(Fault {
                            reason: e.to_string(),
                            since: stamp.text.clone(),
                            next_retry: now + FIRST_RETRY,
                            backoff: FIRST_RETRY,
                            dropped: 0,
                        });
                    }
                }
            }
        }
    }
}

/// A marker in the file's format: docs/udplogger.md "Markers".
fn push_marker(b: &mut Vec<u8>, json: bool, stamp: &Stamp, m: &Marker) {
    if json {
        m.write_json(b, &stamp.text);
    } else {
        m.write_text(b, &stamp.text);
    }
}

/// `DIR/STEM.log`, or `DIR/STEM.PART.log` for later parts.
pub fn file_path(dir: &Path, stem: &str, part: u32) -> PathBuf {
    if part == 0 {
        dir.join(format!("{stem}.log"))
    } else {
        dir.join(format!("{stem}.{part}.log"))
    }
}

/// Creates the log directory if needed and checks that files can be
/// created in it.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)?;
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .map_err(io::Error::from)
}

/// Opens a log file for appending, creating its directory; refuses
/// symlinks, FIFOs, devices and anything else that is not a regular file
/// (O_NONBLOCK so a FIFO cannot block the open).
pub fn open_log(path: &Path, mode: u32) -> io::Result<(File, u64)> {
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
    };
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(parent)?;
            }
            open()?
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::other("is a symbolic link; refusing to write"))
        }
        r => r?,
    };
    let m = file.metadata()?;
    if !m.is_file() {
        return Err(io::Error::other("not a regular file; refusing to write"));
    }
    Ok((file, m.len()))
}

/// Forgets the open file when its name no longer leads to it (removed,
/// its directory deleted, or moved away without SIGHUP), so the next write
/// creates it again instead of vanishing into an unlinked inode. One
/// `stat` per write round.
fn check_still_there(cfg: &OutputConfig, f: &mut OutFile) {
    if let Some((_, dev, ino)) = &f.file {
        let p = file_path(&cfg.dir, &f.stem, f.part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.dev() == *dev && m.ino() == *ino => {}
            _ => {
                eprintln!(
                    "watchdog udplogger: {}: file was removed or replaced; creating it again",
                    p.display()
                );
                f.file = None;
                f.part = 0;
            }
        }
    }
}

fn write_out(cfg: &OutputConfig, f: &mut OutFile) -> io::Result<()> {
    check_still_there(cfg, f);
    let mut start = 0;
    let result = loop {
        if start >= f.buf.len() {
            break Ok(());
        }
        if f.file.is_none() {
            match open_part(cfg, f) {
                Ok(()) => {}
                Err(e) => break Err(e),
            }
        }
        let pending = &f.buf[start..];
        let mut chunk = pending.len();
        if cfg.max_file_bytes > 0 && f.size + chunk as u64 > cfg.max_file_bytes {
            let room =
                usize::try_from(cfg.max_file_bytes.saturating_sub(f.size)).unwrap_or(usize::MAX);
            match memchr::memrchr(b'\n', &pending[..room.min(pending.len())]) {
                Some(i) => chunk = i + 1,
                None if f.size == 0 => {
                    chunk = memchr::memchr(b'\n', pending).map_or(pending.len(), |i| i + 1)
                }
                None => {
                    f.file = None;
                    f.part += 1;
                    f.size = 0;
                    continue;
                }
            }
        }
        let Some((file, _, _)) = &mut f.file else {
            continue;
        };
        match file.write(&pending[..chunk]) {
            Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                start += n;
                f.size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if start == f.buf.len() {
        f.buf.clear();
        if f.buf.capacity() > 4 * WRITE_CHUNK {
            f.buf.shrink_to(WRITE_CHUNK);
        }
    } else {
        f.buf.drain(..start);
    }
    result
}

fn open_part(cfg: &OutputConfig, f: &mut OutFile) -> io::Result<()> {
    loop {
        let path = file_path(&cfg.dir, &f.stem, f.part);
        let (file, size) = open_log(&path, cfg.file_mode)?;
        if cfg.max_file_bytes > 0 && size >= cfg.max_file_bytes && f.part < 100_000 {
            f.part += 1;
            continue;
        }
        let m = file.metadata()?;
        f.file = Some((file, m.dev(), m.ino()));
        f.size = size;
        return Ok(());
    }
}

/// Appends `text` so that the file stays valid UTF-8 text with one record
/// per line: control characters (except tab) and bytes that are not UTF-8
/// become `\xNN`, the kernel's own escape.
pub fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    if is_plain(text) {
        out.extend_from_slice(text);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |out: &mut Vec<u8>, b: u8| {
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
    };
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\t' {
                let mut tmp = [0u8; 4];
                for &b in c.encode_utf8(&mut tmp).as_bytes() {
                    hex(out, b);
                }
            } else {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
        for &b in chunk.invalid() {
            hex(out, b);
        }
    }
}

/// Printable ASCII and tab only: the common case, copied as is. Checked
/// in blocks without early exit so the compiler can vectorise it.
fn is_plain(text: &[u8]) -> bool {
    text.chunks(32).all(|c| {
        c.iter().fold(true, |ok, &b| {
            ok & ((b.wrapping_sub(0x20) < 0x5f) | (b == b'\t'))
        })
    })
}

/// A JSON string of `text`, escaped as in the text format first.
fn json_str(out: &mut Vec<u8>, scratch: &mut Vec<u8>, text: &[u8]) {
    scratch.clear();
    escape_into(scratch, text);
    out.push(b'"');
    for &b in scratch.iter() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udplogger::clock::{parse_rfc3339, Period, Stamper, Zone};

    fn cfg(dir: &Path) -> OutputConfig {
        OutputConfig {
            dir: dir.to_path_buf(),
            per_sender: false,
            json: false,
            max_file_bytes: 0,
            file_mode: 0o600,
            hold_bytes: 1 << 20,
            retry_max: Duration::from_secs(1),
        }
    }

    fn esc(b: &[u8]) -> String {
        let mut v = Vec::new();
        escape_into(&mut v, b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escaping_keeps_text_and_marks_the_rest() {
        assert_eq!(esc(b"plain\ttext"), "plain\ttext");
        assert_eq!(esc("über".as_bytes()), "über");
        assert_eq!(esc(b"a\x1b[0m\xff\x00"), "a\\x1b[0m\\xff\\x00");
        assert_eq!(esc("\u{85}".as_bytes()), "\\xc2\\x85");
    }

    #[test]
    fn lines_go_to_the_file_of_their_day_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let mut o = Output::new(cfg(d.path()));
        let mut st = Stamper::new(Zone::Utc, Period::Daily);
        let now = Instant::now();
        let a = st.stamp(parse_rfc3339("2026-01-01T23:59:59.5Z").unwrap());
        let b = st.stamp(parse_rfc3339("2026-01-02T00:00:00.25Z").unwrap());
        o.line(&a, "10.0.0.1:6665", b"before", None, &[], now);
        o.line(
            &b,
            "10.0.0.1:6665",
            b"after\x07",
            None,
            &[b"SUBSYSTEM=pci"],
            now,
        );
        o.flush(&b, now);
        let one = std::fs::read_to_string(d.path().join("2026-01-01.log")).unwrap();
        let two = std::fs::read_to_string(d.path().join("2026-01-02.log")).unwrap();
        assert_eq!(one, "2026-01-01T23:59:59.500000Z 10.0.0.1:6665 before\n");
        assert_eq!(
            two,
            "2026-01-02T00:00:00.250000Z 10.0.0.1:6665 after\\x07\n2026-01-02T00:00:00.250000Z 10.0.0.1:6665  SUBSYSTEM=pci\n"
        );
        let mode = std::fs::metadata(d.path().join("2026-01-01.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn size_limit_starts_new_parts_at_line_boundaries() {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path());
        c.max_file_bytes = 100;
        c.per_sender = true;
        let mut o = Output::new(c);
        let mut st = Stamper::new(Zone::Utc, Period::Hourly);
        let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00Z").unwrap());
        let now = Instant::now();
        for i in 0..10 {
            o.line(
                &s,
                "[::1]:6665",
                format!("line {i}").as_bytes(),
                None,
                &[],
                now,
            );
        }
        o.flush(&s, now);
        let sub = d.path().join("[::1]:6665");
        let mut total = 0;
        for part in [
            "2026-01-01-10.log",
            "2026-01-01-10.1.log",
            "2026-01-01-10.2.log",
            "2026-01-01-10.3.log",
            "2026-01-01-10.4.log",
        ] {
            let t = std::fs::read_to_string(sub.join(part)).unwrap();
            assert!(t.len() <= 100 && t.ends_with('\n'), "{part}: {t:?}");
            total += t.lines().count();
        }
        assert_eq!(total, 10);
    }

    #[test]
    fn json_lines_carry_metadata() {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path());
        c.json = true;
        let mut o = Output::new(c);
        let mut st = Stamper::new(Zone::Utc, Period::Daily);
        let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00Z").unwrap());
        let now = Instant::now();
        let m = Meta {
            level: 6,
            seq: 42,
            ts_usec: 1000,
        };
        o.line(
            &s,
            "1.2.3.4:5",
            b"say \"hi\" \\ \xff",
            Some(&m),
            &[b"K=V"],
            now,
        );
        o.marker(
            &s,
            None,
            &Marker::new("1.2.3.4:5", Body::Gap { from: 3, to: 4 }),
            now,
        );
        o.flush(&s, now);
        let text = std::fs::read_to_string(d.path().join("2026-01-01.log")).unwrap();
        let v: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(v[0]["text"], "say \"hi\" \\ \\xff");
        assert_eq!(v[0]["seq"], 42);
        assert_eq!(v[0]["dict"][0], "K=V");
        assert_eq!(v[1]["marker"], "gap");
        assert_eq!(v[1]["source"], "udplogger");
        assert_eq!(
            (v[1]["count"].as_u64(), v[1]["from"].as_u64()),
            (Some(2), Some(3))
        );
    }

    #[test]
    fn refuses_non_regular_files_and_recovers_with_a_marker() {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path());
        c.hold_bytes = 10;
        let mut o = Output::new(c);
        let mut st = Stamper::new(Zone::Utc, Period::Daily);
        let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00Z").unwrap());
        let fifo = d.path().join("2026-01-01.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // With a reader the FIFO would open: the type check must refuse it.
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let now = Instant::now();
        o.line(&s, "1.2.3.4:5", b"held", None, &[], now);
        o.flush(&s, now);
        assert!(o.faulted());
        for _ in 0..5 {
            o.line(&s, "1.2.3.4:5", b"dropped", None, &[], now);
        }
        assert_eq!(o.stats.dropped, 5);
        drop(reader);
        std::fs::remove_file(&fifo).unwrap();
        o.flush(&s, now + Duration::from_secs(5));
        assert!(!o.faulted());
        assert_eq!(o.held(), 0);
        let text = std::fs::read_to_string(d.path().join("2026-01-01.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("1.2.3.4:5 held"), "{text}");
        assert!(
            lines[1].contains("udplogger - write_failed: writing resumed: 5 lines dropped"),
            "{text}"
        );
        assert!(lines[1].contains("not a regular file"), "{text}");
    }
}
