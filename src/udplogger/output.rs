//! What lands on disk: file naming and rotation, line formatting and
//! escaping, buffered writes, and surviving write failures.
//!
//! Lines are appended to per-file buffers and written in large chunks at
//! the end of each poll round. A failed write or open (ENOSPC, EIO, EMFILE,
//! EACCES, a vanished directory, a non-regular file in the way) puts that
//! file in a fault: its lines are held in memory up to a bound, then
//! counted and dropped; retries back off exponentially; on recovery a
//! marker line says how many lines were dropped and why.
//!
//! Lines land whole: what is held is always whole lines, and a write cut
//! short in the middle of a line (ENOSPC) is truncated back to the last
//! line boundary; where that fails, or a file is found ending in the
//! middle of a line (a crash, an earlier failure), the next write starts
//! with a newline and a `write_failed` marker says so.

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
/// An idle file's empty buffer is given back after this long: thousands
/// of senders that each sent a burst must not keep their peak buffers.
const IDLE_SHRINK: Duration = Duration::from_secs(1);
/// What one file costs beyond the bytes it holds: its entry, name and
/// index slot (counted against the receiver's memory cap).
pub const FILE_COST: usize = std::mem::size_of::<OutFile>() + 96;
/// Files idle this long are closed (yesterday's file, a quiet sender).
const IDLE_CLOSE: Duration = Duration::from_secs(120);
/// Open files at most (per-sender layout); lower when RLIMIT_NOFILE is
/// low, so that the receiver never runs into EMFILE by itself.
const MAX_OPEN: usize = 256;
/// Descriptors kept free for what is opened for a moment: a directory
/// while a file is opened in it, the metrics file, a spare.
const FD_RESERVE: u64 = 3;

/// The open-file budget: what RLIMIT_NOFILE leaves after the descriptors
/// already in use (sockets, the signal pipe, inherited ones) and a reserve.
fn max_open_files() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let in_use = crate::host::Host::open_descriptors().map_or(32, |n| n as u64);
    usize::try_from(soft.saturating_sub(in_use + FD_RESERVE))
        .unwrap_or(MAX_OPEN)
        .clamp(1, MAX_OPEN)
}

/// EMFILE or ENFILE: a descriptor limit, which closing a file cures.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
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
    /// The open file ends in the middle of a line: a newline goes first.
    torn: bool,
    /// Torn lines terminated since the last marker about them.
    terminated: u64,
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
    /// Computed at the first write, when the sockets are open.
    max_open: Option<usize>,
    /// Bumped whenever `files` is re-indexed: a [`FileRef`] taken before
    /// is then looked up again.
    generation: u64,
    pub stats: OutputStats,
    /// Syslog targets every line and marker is also sent to (non-blocking).
    pub forward: Option<crate::forward::udplogger::UdpForward>,
}

/// A file of [`Output`] found once and used for many lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    index: usize,
    generation: u64,
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
            max_open: None,
            generation: 0,
            stats: OutputStats::default(),
            forward: None,
        }
    }

    /// Bytes waiting in memory.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Memory of the file table, beyond the bytes held.
    pub fn overhead(&self) -> usize {
        self.files.len() * FILE_COST
    }

    /// Forgets files that are idle (empty, not failing, unused for
    /// [`IDLE_SHRINK`]), closing them, to get under the memory cap.
    pub fn release_idle(&mut self, now: Instant) {
        let before = self.files.len();
        self.files.retain(|f| {
            let idle = now.saturating_duration_since(f.last_used) >= IDLE_SHRINK;
            !(idle && f.buf.is_empty() && f.fault.is_none())
        });
        if self.files.len() != before {
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        self.index = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.stem.clone(), i))
            .collect();
        self.cur = None;
        self.generation = self.generation.wrapping_add(1);
    }

    /// True when some file is failing and will be retried.
    #[cfg(test)]
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
                    torn: false,
                    terminated: 0,
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
        self.usable(i, now, || 1)
    }

    /// File `i`, or a drop counted when it is failing and memory is full.
    fn usable(&mut self, i: usize, now: Instant, lines: impl FnOnce() -> u64) -> Option<usize> {
        let f = &mut self.files[i];
        if let Some(fault) = &mut f.fault {
            if self.held >= self.cfg.hold_bytes {
                let n = lines();
                fault.dropped = fault.dropped.saturating_add(n);
                self.stats.dropped = self.stats.dropped.saturating_add(n);
                return None;
            }
        }
        f.last_used = now;
        Some(i)
    }

    /// The file of sender `name`'s lines received at `stamp`: found once
    /// for all the lines of a datagram, not once per line.
    pub fn file_of(&mut self, stamp: &Stamp, name: &str, now: Instant) -> FileRef {
        self.set_key(stamp, Some(name));
        FileRef {
            index: self.index_of(now),
            generation: self.generation,
        }
    }

    /// Appends one received line.
    #[cfg(test)]
    pub fn line(
        &mut self,
        stamp: &Stamp,
        source: &str,
        text: &[u8],
        meta: Option<&Meta>,
        dict: &[&[u8]],
        now: Instant,
    ) {
        self.line_as(stamp, source, source, text, meta, dict, now);
    }

    /// Appends one received line of the sender named `name` (its
    /// directory in the per-sender layout); the line keeps its `source`
    /// address.
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub fn line_as(
        &mut self,
        stamp: &Stamp,
        name: &str,
        source: &str,
        text: &[u8],
        meta: Option<&Meta>,
        dict: &[&[u8]],
        now: Instant,
    ) {
        let file = self.file_of(stamp, name, now);
        self.line_in(file, stamp, name, source, Text::new(text), meta, dict, now);
    }

    /// [`line_as`](Self::line_as) into a file found by
    /// [`file_of`](Self::file_of) for the same stamp and name.
    #[allow(clippy::too_many_arguments)]
    pub fn line_in(
        &mut self,
        file: FileRef,
        stamp: &Stamp,
        name: &str,
        source: &str,
        text: Text<'_>,
        meta: Option<&Meta>,
        dict: &[&[u8]],
        now: Instant,
    ) {
        if let Some(f) = self.forward.as_mut() {
            f.line(
                &stamp.text,
                name,
                source,
                text.bytes,
                meta.map(|m| (m.level, m.seq, m.ts_usec)),
                dict,
            );
        }
        let Some(i) = self.open_for(file, stamp, name, now, || 1) else {
            return;
        };
        let json = self.cfg.json;
        let mut scratch = std::mem::take(&mut self.scratch);
        let f = &mut self.files[i];
        let before = f.buf.len();
        push_line(
            &mut f.buf,
            &mut scratch,
            json,
            stamp,
            source,
            text,
            meta,
            dict,
        );
        self.scratch = scratch;
        self.grew(i, before, 1, stamp, now);
    }

    /// Appends a block of whole lines, each ending in a newline and each
    /// printable ASCII and tabs only ([`is_plain_lines`]), of sender
    /// `name` from `source` into `file` (as [`file_of`](Self::file_of)
    /// found it): what [`line_in`](Self::line_in) writes for each line,
    /// with one file lookup and no escaping. Returns how many lines the
    /// block held.
    #[allow(clippy::too_many_arguments)]
    pub fn plain_lines_in(
        &mut self,
        file: FileRef,
        stamp: &Stamp,
        name: &str,
        source: &str,
        block: Lines<'_>,
        now: Instant,
    ) -> u64 {
        debug_assert!(block.data().ends_with(b"\n") && is_plain_lines(block.data()));
        let count = || block.count() as u64;
        if let Some(f) = self.forward.as_mut() {
            for line in block.iter() {
                f.line(
                    &stamp.text,
                    name,
                    source,
                    &line[..line.len() - 1],
                    None,
                    &[],
                );
            }
        }
        let Some(i) = self.open_for(file, stamp, name, now, count) else {
            return count();
        };
        let json = self.cfg.json;
        let mut scratch = std::mem::take(&mut self.scratch);
        let f = &mut self.files[i];
        let before = f.buf.len();
        let mut n = 0;
        if json {
            for line in block.iter() {
                let text = Text {
                    bytes: &line[..line.len() - 1],
                    plain: true,
                };
                push_line(
                    &mut f.buf,
                    &mut scratch,
                    true,
                    stamp,
                    source,
                    text,
                    None,
                    &[],
                );
                n += 1;
            }
        } else {
            // The same prefix before every line, then the line and its
            // newline as they came.
            scratch.clear();
            scratch.extend_from_slice(stamp.text.as_bytes());
            scratch.push(b' ');
            scratch.extend_from_slice(source.as_bytes());
            scratch.push(b' ');
            for line in block.iter() {
                f.buf.extend_from_slice(&scratch);
                f.buf.extend_from_slice(line);
                n += 1;
            }
        }
        self.scratch = scratch;
        self.grew(i, before, n, stamp, now);
        n
    }

    /// The index of `file` (found again if the table changed since) when
    /// it takes lines now; None when it is failing and the memory for
    /// held lines is full: then its `lines()` lines count as dropped.
    fn open_for(
        &mut self,
        file: FileRef,
        stamp: &Stamp,
        name: &str,
        now: Instant,
        lines: impl FnOnce() -> u64,
    ) -> Option<usize> {
        let i = if file.generation == self.generation && file.index < self.files.len() {
            file.index
        } else {
            self.file_of(stamp, name, now).index
        };
        self.usable(i, now, lines)
    }

    /// Accounts for what file `i`'s buffer grew by since it held
    /// `before` bytes (`lines` lines), and writes it once it is large.
    fn grew(&mut self, i: usize, before: usize, lines: u64, stamp: &Stamp, now: Instant) {
        let f = &self.files[i];
        let grown = f.buf.len() - before;
        let big = f.buf.len() >= WRITE_CHUNK && f.fault.is_none();
        self.held += grown;
        self.stats.lines += lines;
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

    /// Appends text to the file `STEM.log` under the directory (a
    /// last-words file): written, held and retried like any log file.
    pub fn append(&mut self, stem: &str, text: &[u8], now: Instant) {
        self.key.clear();
        self.key.push_str(stem);
        let Some(i) = self.target(now) else { return };
        let f = &mut self.files[i];
        f.buf.extend_from_slice(text);
        self.held += text.len();
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
        let before = self.files.len();
        self.files.retain_mut(|f| {
            let idle = now.saturating_duration_since(f.last_used);
            if f.buf.is_empty() && idle >= IDLE_SHRINK && f.buf.capacity() > 0 {
                f.buf = Vec::new();
            }
            !(idle >= IDLE_CLOSE && f.buf.is_empty() && f.fault.is_none())
        });
        if self.files.len() != before {
            self.reindex();
        }
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

    /// Closes the least recently used open file other than `keep` (its
    /// buffer stays; it is opened again when needed). False when none is.
    fn close_lru(&mut self, keep: usize) -> bool {
        let lru = self
            .files
            .iter_mut()
            .enumerate()
            .filter(|(j, f)| *j != keep && f.file.is_some())
            .min_by_key(|(_, f)| (!f.buf.is_empty(), f.last_used));
        match lru {
            Some((_, f)) => {
                f.file = None;
                true
            }
            None => false,
        }
    }

    fn open_count(&self) -> usize {
        self.files.iter().filter(|f| f.file.is_some()).count()
    }

    /// Writes file `i`; out of descriptors, closes other files and tries
    /// again, and lowers the budget to what could actually be open.
    fn write_retrying(&mut self, i: usize) -> io::Result<()> {
        loop {
            let Some(f) = self.files.get_mut(i) else {
                return Ok(());
            };
            match write_out(&self.cfg, f) {
                Err(e) if out_of_descriptors(&e) => {
                    let open = self.open_count();
                    if !self.close_lru(i) {
                        return Err(e);
                    }
                    self.max_open = Some(open.saturating_sub(1).max(1));
                }
                r => return r,
            }
        }
    }

    fn write_file(&mut self, i: usize, stamp: &Stamp, now: Instant) {
        let max_open = *self.max_open.get_or_insert_with(max_open_files);
        if self.files.get(i).is_some_and(|f| f.file.is_none()) && self.open_count() >= max_open {
            // Make room before opening.
            self.close_lru(i);
        }
        if self
            .files
            .get(i)
            .is_none_or(|f| f.fault.as_ref().is_some_and(|x| now < x.next_retry))
        {
            return;
        }
        let before = self.files[i].buf.len();
        let result = self.write_retrying(i);
        let cfg = &self.cfg;
        let f = &mut self.files[i];
        self.held -= before - f.buf.len();
        if result.is_ok() && f.terminated > 0 {
            let n = std::mem::take(&mut f.terminated);
            let m = Marker::new(
                "-",
                Body::WriteFailed {
                    count: n,
                    since: "an earlier failed write or crash".into(),
                },
            )
            .with_reason(
                "the torn line ended without a newline; terminated so that later lines start on their own",
            );
            let before = f.buf.len();
            push_marker(&mut f.buf, cfg.json, stamp, &m);
            self.stats.markers += 1;
            let r = write_out(cfg, f);
            self.held -= before.saturating_sub(f.buf.len());
            let _ = r;
        }
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

/// Opens `dir/rel` for appending, creating it and the directories
/// between; refuses symlinks, FIFOs, devices and anything else that is not
/// a regular file (O_NONBLOCK so a FIFO cannot block the open).
///
/// Below `dir`, each directory is opened relative to its parent's
/// descriptor with O_NOFOLLOW: a sender directory replaced by a symbolic
/// link cannot send writes outside the log directory (O_NOFOLLOW on the
/// whole path would only cover its last component).
pub fn open_log(dir: &Path, rel: &Path, mode: u32) -> io::Result<(File, u64)> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    use std::os::fd::{AsFd, OwnedFd};
    let refused = |what: &Path, e: io::Error| match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => io::Error::other(format!(
            "{} is a symbolic link or not a directory; refusing to write",
            dir.join(what).display()
        )),
        _ => e,
    };
    let top = match open_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)?;
            open_dir(dir)?
        }
        r => r?,
    };
    let mut cur: OwnedFd = top.into();
    let mut so_far = PathBuf::new();
    let mut parts: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let Some(name) = parts.pop() else {
        return Err(io::Error::other("empty log file name"));
    };
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for part in parts {
        so_far.push(part);
        let p = Path::new(part);
        let next = match crate::sys::openat(cur.as_fd(), p, dir_flags, Mode::empty()) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match nix::sys::stat::mkdirat(
                    Some(std::os::fd::AsRawFd::as_raw_fd(&cur)),
                    p,
                    Mode::from_bits_truncate(0o750),
                ) {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                crate::sys::openat(cur.as_fd(), p, dir_flags, Mode::empty())
            }
            r => r,
        };
        cur = next.map_err(|e| refused(&so_far, e))?;
    }
    let flags = OFlag::O_RDWR // read too: is the last line torn?
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC;
    let file = match crate::sys::openat(
        cur.as_fd(),
        Path::new(name),
        flags,
        Mode::from_bits_truncate(mode),
    ) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::other("is a symbolic link; refusing to write"))
        }
        r => File::from(r?),
    };
    let m = file.metadata()?;
    if !m.is_file() {
        return Err(io::Error::other("not a regular file; refusing to write"));
    }
    Ok((file, m.len()))
}

fn open_dir(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
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
        if f.torn {
            match file.write(b"\n") {
                Ok(1) => {
                    f.size += 1;
                    f.torn = false;
                    f.terminated += 1;
                }
                Ok(_) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        }
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
    if result.is_err() {
        // A line half on disk: take it back (it stays held, whole), or
        // when the file cannot be truncated, terminate it before the next.
        let line_start = memchr::memrchr(b'\n', &f.buf[..start]).map_or(0, |i| i + 1);
        let partial = (start - line_start) as u64;
        if partial > 0 {
            match &f.file {
                Some((file, _, _)) if file.set_len(f.size - partial).is_ok() => {
                    f.size -= partial;
                }
                _ => f.torn = true,
            }
            start = line_start;
        }
    }
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
        let rel = file_path(Path::new(""), &f.stem, f.part);
        let (file, size) = open_log(&cfg.dir, &rel, cfg.file_mode)?;
        if cfg.max_file_bytes > 0 && size >= cfg.max_file_bytes && f.part < 100_000 {
            f.part += 1;
            continue;
        }
        let m = file.metadata()?;
        f.torn = !ends_a_line(&file, size)?;
        f.file = Some((file, m.dev(), m.ino()));
        f.size = size;
        return Ok(());
    }
}

/// True when the file is empty or its last byte ends a line.
fn ends_a_line(file: &File, size: u64) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    if size == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    file.read_at(&mut last, size - 1)?;
    Ok(last[0] == b'\n')
}

/// One received line as the file holds it: JSON, or the text format's
/// stamp, source, kernel time (extended) and escaped text, then its
/// dictionary lines.
#[allow(clippy::too_many_arguments)]
fn push_line(
    b: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    json: bool,
    stamp: &Stamp,
    source: &str,
    text: Text<'_>,
    meta: Option<&Meta>,
    dict: &[&[u8]],
) {
    if json {
        b.extend_from_slice(b"{\"time\":\"");
        b.extend_from_slice(stamp.text.as_bytes());
        b.extend_from_slice(b"\",\"source\":\"");
        b.extend_from_slice(source.as_bytes());
        b.extend_from_slice(b"\",\"text\":");
        json_str(b, scratch, text);
        if let Some(m) = meta {
            let _ = write!(
                b,
                ",\"level\":{},\"seq\":{},\"ts_usec\":{}",
                m.level, m.seq, m.ts_usec
            );
            if m.oos {
                b.extend_from_slice(b",\"oos\":true");
            }
        }
        if !dict.is_empty() {
            b.extend_from_slice(b",\"dict\":[");
            for (i, d) in dict.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                json_str(b, scratch, Text::new(d));
            }
            b.push(b']');
        }
        b.extend_from_slice(b"}\n");
    } else {
        let dict = dict.iter().map(|d| Text::new(d));
        for (i, t) in std::iter::once(text).chain(dict).enumerate() {
            b.extend_from_slice(stamp.text.as_bytes());
            b.push(b' ');
            b.extend_from_slice(source.as_bytes());
            // Dictionary lines keep the kernel's leading space.
            b.extend_from_slice(if i == 0 { b" " } else { b"  " });
            if let (0, Some(m)) = (i, meta) {
                // The kernel's own time, as a plain sender with
                // printk.time shows it.
                b.extend_from_slice(m.time());
            }
            t.escape_into(b);
            b.push(b'\n');
        }
    }
}

/// Lines of one datagram taken as a block at most. A kernel's datagram
/// holds a few (netconsole sends at most 1,000 bytes of text in one); a
/// datagram of more, such as 64 KiB of newlines, goes through line
/// assembly one line at a time instead, and the ends a batch of them
/// would need (4 bytes a line) are never held.
const MAX_BLOCK_LINES: usize = 1024;

/// A datagram of whole lines, printable ASCII and tabs only, and where
/// each line ends (the offset just past its newline): found in one pass
/// over the bytes ([`Lines::plain`]), then used by the last-words ring,
/// the file and the counters without looking for the newlines again.
#[derive(Debug, Clone, Copy)]
pub struct Lines<'a> {
    data: &'a [u8],
    ends: &'a [u32],
}

impl<'a> Lines<'a> {
    /// `block`'s lines when it is whole lines (it ends in a newline), each
    /// [`is_plain`] and at most `limit` bytes before its newline, and
    /// there are at most `MAX_BLOCK_LINES`; `None` otherwise. The ends
    /// are written into `ends` (emptied first), which the caller keeps
    /// from one datagram to the next.
    pub fn plain(block: &'a [u8], limit: usize, ends: &'a mut Vec<u32>) -> Option<Lines<'a>> {
        ends.clear();
        if block.last() != Some(&b'\n') || u32::try_from(block.len()).is_err() {
            return None;
        }
        // Every byte at once (vectorised), then only the newlines.
        if !is_plain_lines(block) {
            return None;
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', block) {
            if nl - start > limit || ends.len() == MAX_BLOCK_LINES {
                return None;
            }
            start = nl + 1;
            ends.push(u32::try_from(start).ok()?);
        }
        Some(Lines { data: block, ends })
    }

    /// Lines whose ends were found before (a copy of `data` and `ends`
    /// that [`plain`](Self::plain) returned).
    pub fn from_parts(data: &'a [u8], ends: &'a [u32]) -> Lines<'a> {
        Lines { data, ends }
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn ends(&self) -> &'a [u32] {
        self.ends
    }

    pub fn count(&self) -> usize {
        self.ends.len()
    }

    /// Each line with its newline.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let data = self.data;
        let mut start = 0;
        self.ends.iter().map(move |&e| {
            let end = e as usize;
            let line = &data[start..end];
            start = end;
            line
        })
    }
}

/// A received line's text, and whether it is [`is_plain`]: checked once
/// for the file and for detection.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a> {
    pub bytes: &'a [u8],
    pub plain: bool,
}

impl<'a> Text<'a> {
    pub fn new(bytes: &'a [u8]) -> Text<'a> {
        Text {
            bytes,
            plain: is_plain(bytes),
        }
    }

    /// Appends the text as [`escape_into`] does.
    pub fn escape_into(self, out: &mut Vec<u8>) {
        if self.plain {
            out.extend_from_slice(self.bytes);
        } else {
            escape_into(out, self.bytes);
        }
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
pub fn is_plain(text: &[u8]) -> bool {
    plain_or(text, b'\t')
}

/// [`is_plain`] lines with their newlines: printable ASCII, tab and
/// newline only.
pub fn is_plain_lines(text: &[u8]) -> bool {
    plain_or(text, b'\n')
}

/// Printable ASCII, tab and `also` only.
#[inline]
fn plain_or(text: &[u8], also: u8) -> bool {
    crate::sys::printable_or(text, also)
}

/// A JSON string of `text`, escaped as in the text format first.
fn json_str(out: &mut Vec<u8>, scratch: &mut Vec<u8>, text: Text<'_>) {
    let escaped = if text.plain {
        text.bytes
    } else {
        scratch.clear();
        escape_into(scratch, text.bytes);
        scratch
    };
    out.push(b'"');
    for &b in escaped {
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
        let m = Meta::new(6, 42, 1000);
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
        assert!(v[0].get("oos").is_none(), "only out-of-sequence records");
        assert_eq!(v[1]["marker"], "gap");
        assert_eq!(v[1]["source"], "udplogger");
        assert_eq!(
            (v[1]["count"].as_u64(), v[1]["from"].as_u64()),
            (Some(2), Some(3))
        );
    }

    proptest::proptest! {
        /// One pass finds what splitting at every newline and checking
        /// each line finds: the same lines, or none when the block is not
        /// whole lines of printable ASCII and tabs within the limit.
        #[test]
        fn lines_are_found_as_splitting_finds_them(
            lines in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(vec![b'a', b' ', b'~', b'\t']), 0..20),
                0..8),
            bad in proptest::option::of((0usize..200, proptest::sample::select(vec![b'\r', 0u8, 0x7f, 0x80, 0xff]))),
            unfinished in proptest::bool::weighted(0.2),
            limit in 0usize..25,
        ) {
            let mut block: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
            if let Some((at, b)) = bad {
                if !block.is_empty() {
                    let at = at % block.len();
                    block[at] = b;
                }
            }
            if unfinished {
                block.pop();
            }
            let mut ends = Vec::new();
            let got = Lines::plain(&block, limit, &mut ends).map(|l| {
                proptest::prop_assert_eq!(l.count(), l.iter().count());
                proptest::prop_assert!(l.data() == &block[..]);
                Ok(l.iter().map(<[u8]>::to_vec).collect::<Vec<_>>())
            }).transpose()?;
            let split: Vec<Vec<u8>> = block.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let whole = block.last() == Some(&b'\n')
                && split.iter().all(|l| l.len() <= limit + 1 && is_plain(&l[..l.len() - 1]));
            proptest::prop_assert_eq!(got, whole.then_some(split));
        }
    }

    #[test]
    fn a_datagram_of_very_many_lines_is_no_block() {
        let mut ends = Vec::new();
        let most = b"a\n".repeat(MAX_BLOCK_LINES);
        let n = Lines::plain(&most, 10, &mut ends).map(|l| l.count());
        assert_eq!(n, Some(MAX_BLOCK_LINES));
        let more = b"\n".repeat(MAX_BLOCK_LINES + 1);
        assert!(Lines::plain(&more, 10, &mut ends).is_none());
        // The ends stop growing at the cap.
        assert!(ends.len() <= MAX_BLOCK_LINES);
    }

    /// A block of whole plain lines is written exactly as its lines one
    /// by one, in both formats and both layouts, and counted the same.
    #[test]
    fn a_block_of_plain_lines_is_written_as_its_lines() {
        let block: &[u8] = b"one\n\ttab  and spaces\n\n~!\"#\\ {}\nlast\n";
        for (json, per_sender) in [(false, false), (true, false), (false, true), (true, true)] {
            let run = |by_block: bool| {
                let d = tempfile::tempdir().unwrap();
                let mut c = cfg(d.path());
                c.json = json;
                c.per_sender = per_sender;
                let mut o = Output::new(c);
                let mut st = Stamper::new(Zone::Utc, Period::Daily);
                let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00.123Z").unwrap());
                let now = Instant::now();
                let f = o.file_of(&s, "web1", now);
                if by_block {
                    let mut ends = Vec::new();
                    let lines = Lines::plain(block, 4096, &mut ends).unwrap();
                    let n = o.plain_lines_in(f, &s, "web1", "10.0.0.1:6665", lines, now);
                    assert_eq!(n, 5);
                } else {
                    for l in block.split_inclusive(|&b| b == b'\n') {
                        let text = &l[..l.len() - 1];
                        let text = Text::new(text);
                        o.line_in(f, &s, "web1", "10.0.0.1:6665", text, None, &[], now);
                    }
                }
                assert_eq!(o.stats.lines, 5);
                let held = o.held();
                o.flush(&s, now);
                let mut files = Vec::new();
                for e in crate::testing::walk(d.path()) {
                    files.push((e.clone(), std::fs::read(&e).unwrap()));
                }
                files.sort();
                (
                    held,
                    files
                        .into_iter()
                        .map(|(p, b)| (p.strip_prefix(d.path()).unwrap().to_path_buf(), b))
                        .collect::<Vec<_>>(),
                )
            };
            let (a, b) = (run(true), run(false));
            assert_eq!(a, b, "json {json}, per sender {per_sender}");
            assert_eq!(a.1.len(), 1);
            assert_eq!(a.1[0].1.iter().filter(|&&c| c == b'\n').count(), 5);
        }
    }

    #[test]
    fn json_marks_a_record_written_out_of_sequence() {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path());
        c.json = true;
        let mut o = Output::new(c);
        let mut st = Stamper::new(Zone::Utc, Period::Daily);
        let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00Z").unwrap());
        let now = Instant::now();
        let mut m = Meta::new(6, 41, 900);
        m.oos = true;
        o.line(&s, "1.2.3.4:5", b"late", Some(&m), &[], now);
        o.flush(&s, now);
        let text = std::fs::read_to_string(d.path().join("2026-01-01.log")).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(
            (v["seq"].as_u64(), v["oos"].as_bool()),
            (Some(41), Some(true))
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
        for _ in 0..2 {
            o.line(&s, "1.2.3.4:5", b"dropped", None, &[], now);
        }
        // A block of whole lines counts each of its lines.
        let f = o.file_of(&s, "1.2.3.4:5", now);
        let mut ends = Vec::new();
        let lines = Lines::plain(b"a\nb\nc\n", 4096, &mut ends).unwrap();
        let n = o.plain_lines_in(f, &s, "1.2.3.4:5", "1.2.3.4:5", lines, now);
        assert_eq!(n, 3);
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

    use crate::testing::Tmpfs;

    #[test]
    fn enospc_never_leaves_a_torn_line() {
        let Some(fs) = Tmpfs::mount("64k") else {
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return;
        };
        for json in [false, true] {
            let dir = fs.path.join(if json { "json" } else { "text" });
            let mut c = cfg(&dir);
            c.json = json;
            let mut o = Output::new(c);
            let mut st = Stamper::new(Zone::Utc, Period::Daily);
            let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00Z").unwrap());
            let now = Instant::now();
            o.line(&s, "1.2.3.4:5", b"first", None, &[], now);
            o.flush(&s, now);
            let filler = fs.path.join("filler");
            let _ = std::fs::write(&filler, vec![0u8; 128 * 1024]);
            // ~10 KB of lines: more than the slack of the file's page.
            let pad = "y".repeat(90);
            for i in 0..100 {
                o.line(
                    &s,
                    "1.2.3.4:5",
                    format!("{i:03} {pad}").as_bytes(),
                    None,
                    &[],
                    now,
                );
            }
            o.flush(&s, now);
            assert!(o.faulted());
            let path = dir.join("2026-01-01.log");
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.ends_with('\n'), "torn: {:?}", &text[text.len() - 40..]);
            std::fs::remove_file(&filler).unwrap();
            o.flush(&s, now + Duration::from_secs(5));
            assert!(!o.faulted());
            let text = std::fs::read_to_string(&path).unwrap();
            let n = text.lines().count();
            assert_eq!(n, 102, "{text}");
            for (i, l) in text.lines().skip(1).take(100).enumerate() {
                if json {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    assert_eq!(v["text"], format!("{i:03} {pad}"));
                } else {
                    assert!(l.ends_with(&format!(" 1.2.3.4:5 {i:03} {pad}")), "{l}");
                }
            }
            assert!(
                text.lines().last().unwrap().contains("write_failed"),
                "{text}"
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_torn_line_found_at_open_is_terminated_with_a_marker() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("2026-01-01.log"),
            "2026-01-01T09:00:00Z 1.2.3.4:5 half a li",
        )
        .unwrap();
        let mut o = Output::new(cfg(d.path()));
        let mut st = Stamper::new(Zone::Utc, Period::Daily);
        let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00Z").unwrap());
        let now = Instant::now();
        o.line(&s, "1.2.3.4:5", b"after a restart", None, &[], now);
        o.flush(&s, now);
        let text = std::fs::read_to_string(d.path().join("2026-01-01.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with("half a li"));
        assert!(lines[1].ends_with("1.2.3.4:5 after a restart"));
        assert!(
            lines[2].contains("udplogger - write_failed: writing resumed: 1 line dropped since an earlier failed write or crash (the torn line ended without a newline")
                && lines[2].ends_with(" count=1 since=an_earlier_failed_write_or_crash"),
            "{text}"
        );
    }

    #[test]
    fn per_sender_buffers_are_given_back_when_idle() {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path());
        c.per_sender = true;
        let mut o = Output::new(c);
        let mut st = Stamper::new(Zone::Utc, Period::Daily);
        let s = st.stamp(parse_rfc3339("2026-01-01T10:00:00Z").unwrap());
        let t0 = Instant::now();
        let burst = "b".repeat(1000);
        for sender in 0..100 {
            let src = format!("10.0.0.{sender}:6665");
            for _ in 0..50 {
                o.line(&s, &src, burst.as_bytes(), None, &[], t0);
            }
        }
        o.flush(&s, t0);
        let kept = |o: &Output| o.files.iter().map(|f| f.buf.capacity()).sum::<usize>();
        assert!(kept(&o) >= 100 * 50 * 1000, "the burst grew the buffers");
        o.tick(t0 + Duration::from_millis(100));
        assert!(kept(&o) > 0, "not idle yet");
        o.tick(t0 + IDLE_SHRINK + Duration::from_secs(1));
        assert_eq!(kept(&o), 0);
        assert_eq!(o.overhead(), 100 * FILE_COST);
        o.release_idle(t0 + IDLE_SHRINK + Duration::from_secs(1));
        assert_eq!(o.overhead(), 0);
        let lines: usize = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path().join("2026-01-01.log");
                std::fs::read_to_string(p).unwrap().lines().count()
            })
            .sum();
        assert_eq!(lines, 100 * 50);
    }
}
