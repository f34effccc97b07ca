//! /dev/kmsg, live: non-blocking reads of whole records, the same framer
//! and parser as `watchdog scan`, overruns reported as `lost`, and the last
//! sequence number handled saved with the boot id so that a restart
//! neither handles a record twice nor misses one.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::settings::KmsgStart;
use crate::events::Event;
use crate::host::{paths, Host};
use crate::parse::frame::{Framer, Record};
use crate::parse::Parser;

/// A kernel record is at most ~1 KiB of text plus its dictionary; a read
/// into a smaller buffer fails with EINVAL, so leave plenty.
const READ_BUF: usize = 16 * 1024;
/// Records handled per call to [`Kmsg::drain`], so that a flood of kernel
/// messages cannot starve signals and timers.
const MAX_PER_DRAIN: usize = 2048;
/// An incident (a hung-task report, an OOM report) is printed in one
/// burst; when the log has been quiet this long, it is complete.
pub const QUIET: Duration = Duration::from_millis(200);
/// How often the position is saved while records keep arriving.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// What is saved between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub boot_id: String,
    pub seq: u64,
}

impl Position {
    pub fn load(path: &PathBuf) -> Option<Position> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Replaces the file atomically and durably: the new content is
    /// fsynced before the rename and the directory after it, so a crash
    /// right after an action never leaves the old position (handling the
    /// records behind the action twice) or an empty file.
    pub fn save(&self, path: &PathBuf) -> io::Result<()> {
        use std::io::Write;
        let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)?;
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(serde_json::to_string(self).unwrap_or_default().as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    }
}

/// Where the reader starts, decided from the saved position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Skip history: only records logged from now on.
    End,
    /// The whole buffer.
    Beginning,
    /// After this sequence number (same boot as last time).
    After(u64),
}

/// Decides where to start: the saved position when it belongs to this
/// boot; the whole buffer after a reboot (nothing of this boot was handled
/// yet); the configured choice on the very first start.
pub fn start_point(saved: Option<&Position>, boot_id: Option<&str>, first: KmsgStart) -> Start {
    match (saved, boot_id) {
        (Some(p), Some(b)) if p.boot_id == b => Start::After(p.seq),
        (Some(_), Some(_)) => Start::Beginning,
        _ => match first {
            KmsgStart::End => Start::End,
            KmsgStart::Replay => Start::Beginning,
        },
    }
}

/// Something that yields kmsg records, one per read: /dev/kmsg itself, a
/// FIFO standing in for it in tests, or a fake in unit tests.
pub trait RecordSource {
    fn read_record(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

impl RecordSource for File {
    fn read_record(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf)
    }
}

/// Why a drain stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Nothing more to read now (EAGAIN).
    Empty,
    /// The per-call limit was reached; call again.
    More,
    /// End of file: the FIFO's writer went away (never on /dev/kmsg).
    Eof,
}

/// The record-level logic, independent of the file behind it.
pub struct Reader {
    framer: Framer,
    parser: Parser,
    skip_through: Option<u64>,
    /// The newest record skipped because it was at or before the saved
    /// position: when the buffer runs dry and this is still below the
    /// saved position, that position never existed in this boot.
    skipped_max: Option<u64>,
    /// Set once when the saved position turned out to be beyond the
    /// kernel's buffer: (saved, the buffer's next sequence number).
    impossible: Option<(u64, u64)>,
    /// Bytes of a record split across reads (only a FIFO does that).
    partial: Vec<u8>,
    pub last_seq: Option<u64>,
    pub overruns: u64,
    last_data: Option<Instant>,
    /// Keep each record's text, as `dmesg` prints it, for incident bundles
    /// (`kmsg.txt`); taken by [`Reader::take_text`].
    pub keep_text: bool,
    text: Vec<String>,
}

impl Reader {
    /// Site patterns for the parser ([`Parser::set_patterns`]).
    pub fn set_patterns(&mut self, p: std::sync::Arc<crate::patterns::SitePatterns>) {
        self.parser.set_patterns(p);
    }

    pub fn new(start: &Start) -> Reader {
        let mut parser = Parser::new("kmsg");
        let mut skip_through = None;
        if let Start::After(seq) = start {
            skip_through = Some(*seq);
            // Prime the parser with the last sequence handled, so that a
            // gap between it and the first record still available is
            // reported as `lost` by the same logic as any other gap.
            let _ = parser.push(&Record {
                seq: Some(*seq),
                kernel: false,
                ..Record::default()
            });
        }
        Reader {
            framer: Framer::new(),
            parser,
            skip_through,
            skipped_max: None,
            impossible: None,
            partial: Vec::new(),
            last_seq: None,
            overruns: 0,
            last_data: None,
            keep_text: false,
            text: Vec::new(),
        }
    }

    /// Reads records until the source is empty or the limit is reached;
    /// completed incidents go to `out`.
    pub fn drain(
        &mut self,
        src: &mut dyn RecordSource,
        buf: &mut [u8],
        out: &mut Vec<Event>,
    ) -> io::Result<Drained> {
        for _ in 0..MAX_PER_DRAIN {
            match src.read_record(buf) {
                Ok(0) => {
                    self.check_saved_position();
                    return Ok(Drained::Eof);
                }
                Ok(n) => {
                    self.last_data = Some(Instant::now());
                    self.chunk(&buf[..n], out);
                }
                // The kernel overwrote records we had not read; the next
                // read returns the oldest record still there, and the
                // sequence gap says how many were lost.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => self.overruns += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.check_saved_position();
                    return Ok(Drained::Empty);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Drained::More)
    }

    /// One read's worth: a whole record from /dev/kmsg, any run of lines
    /// from a FIFO.
    fn chunk(&mut self, data: &[u8], out: &mut Vec<Event>) {
        self.partial.extend_from_slice(data);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            // Bounded: a "record" longer than any the kernel writes is cut.
            if self.partial.len() > READ_BUF * 4 {
                let line = std::mem::take(&mut self.partial);
                self.line(&line, out);
            }
            return;
        };
        let rest = self.partial.split_off(end + 1);
        let lines = std::mem::replace(&mut self.partial, rest);
        for line in lines.split(|&b| b == b'\n') {
            if !line.is_empty() {
                self.line(line, out);
            }
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        let rec = self.framer.frame(line);
        if let Some(seq) = rec.seq {
            if self.skip_through.is_some_and(|s| seq <= s) {
                self.skipped_max = Some(self.skipped_max.map_or(seq, |m| m.max(seq)));
                return;
            }
            self.skip_through = None;
            self.last_seq = Some(seq);
        }
        if self.keep_text && !rec.ignore {
            self.text.push(match rec.kernel_time {
                Some(t) => format!("[{t:>12.6}] {}", rec.text),
                None => rec.text.clone(),
            });
        }
        out.extend(self.parser.push(&rec));
    }

    /// The records' text read since the last call (when `keep_text`).
    pub fn take_text(&mut self) -> Vec<String> {
        std::mem::take(&mut self.text)
    }

    /// Called when the source ran dry: every record the kernel has is read,
    /// so the newest one skipped is the buffer's last. A saved position
    /// past it (a corrupted or hand-edited state file) would make the
    /// reader skip every record from now on; give it up instead.
    fn check_saved_position(&mut self) {
        let (Some(saved), Some(max)) = (self.skip_through, self.skipped_max) else {
            return;
        };
        if max < saved {
            self.skip_through = None;
            self.skipped_max = None;
            // The parser was primed with the impossible position; without
            // that it would count a huge bogus gap or none at all.
            self.parser = Parser::new("kmsg");
            self.impossible = Some((saved, max.saturating_add(1)));
        }
    }

    /// The saved position, and the buffer's next sequence number, when the
    /// saved position was found to lie beyond the buffer (once).
    pub fn take_impossible_start(&mut self) -> Option<(u64, u64)> {
        self.impossible.take()
    }

    /// Closes incidents once the log has been quiet for [`QUIET`].
    pub fn flush_if_quiet(&mut self, now: Instant, out: &mut Vec<Event>) {
        if self
            .last_data
            .is_some_and(|t| now.saturating_duration_since(t) >= QUIET)
        {
            self.last_data = None;
            out.extend(self.parser.flush());
        }
    }

    /// When [`flush_if_quiet`](Self::flush_if_quiet) should next run.
    pub fn quiet_deadline(&self) -> Option<Instant> {
        self.last_data.map(|t| t + QUIET)
    }

    pub fn flush(&mut self, out: &mut Vec<Event>) {
        out.extend(self.parser.flush());
    }
}

/// The live collector: the file, the reader, and the saved position.
pub struct Kmsg {
    file: File,
    path: PathBuf,
    pollable: bool,
    reader: Reader,
    buf: Vec<u8>,
    boot_id: Option<String>,
    state_file: PathBuf,
    saved_seq: Option<u64>,
    last_save: Instant,
    /// The configured start, used when the saved position is impossible.
    first: KmsgStart,
}

impl Kmsg {
    /// Opens `dev/kmsg` under the root and positions it.
    pub fn open(host: &Host, state_file: PathBuf, first: KmsgStart) -> io::Result<(Kmsg, Start)> {
        let path = host.path(paths::KMSG);
        let file = open_nonblocking(&path)?;
        let boot_id = host.read_value(paths::BOOT_ID).ok();
        let saved = Position::load(&state_file);
        let start = start_point(saved.as_ref(), boot_id.as_deref(), first);
        let meta = file.metadata()?;
        let pollable = !meta.is_file();
        let mut file = file;
        if start == Start::End {
            // /dev/kmsg and regular files seek; a FIFO cannot and has no
            // history anyway.
            use std::io::Seek;
            let _ = file.seek(io::SeekFrom::End(0));
        }
        Ok((
            Kmsg {
                file,
                path,
                pollable,
                reader: Reader::new(&start),
                buf: vec![0; READ_BUF],
                boot_id,
                state_file,
                saved_seq: match start {
                    Start::After(s) => Some(s),
                    _ => None,
                },
                last_save: Instant::now(),
                first,
            },
            start,
        ))
    }

    /// The descriptor to poll, or `None` for a regular file (always
    /// "readable"; read on the timer instead).
    pub fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pollable.then(|| self.file.as_fd())
    }

    /// Site patterns for this source's parser.
    pub fn set_patterns(&mut self, p: std::sync::Arc<crate::patterns::SitePatterns>) {
        self.reader.set_patterns(p);
    }

    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    pub fn reader_mut(&mut self) -> &mut Reader {
        &mut self.reader
    }

    pub fn drain(&mut self, out: &mut Vec<Event>) -> io::Result<Drained> {
        let r = self.reader.drain(&mut self.file, &mut self.buf, out);
        if let Some((saved, next)) = self.reader.take_impossible_start() {
            self.restart_as_configured(saved, next)?;
            return Ok(Drained::More);
        }
        if let Ok(Drained::Eof) = r {
            if self.pollable {
                // A FIFO whose writer left: reopen so that poll stops
                // reporting hang-up and a new writer can connect.
                self.file = open_nonblocking(&self.path)?;
            }
        }
        r
    }

    /// The saved position lies beyond the kernel's buffer: say so once and
    /// start as a first start would. Everything in the buffer was read
    /// (and skipped) by now, so `end` needs nothing more; `replay` reads
    /// the buffer again from its first record where the source can seek
    /// (/dev/kmsg and files; a FIFO stand-in cannot, and has no history).
    fn restart_as_configured(&mut self, saved: u64, next: u64) -> io::Result<()> {
        let how = match self.first {
            KmsgStart::End => "new messages only",
            KmsgStart::Replay => "the start of the kernel buffer",
        };
        // The collector has no logger of its own; one line for journald,
        // as the daemon's own messages (<4> = warning).
        eprintln!(
            "<4>saved kmsg position {saved} in {} is beyond the kernel buffer (next record is {next}); ignoring it and reading {how}",
            self.state_file.display()
        );
        self.saved_seq = None;
        if self.first == KmsgStart::Replay && self.seekable()? {
            use std::io::Seek;
            self.file.seek(io::SeekFrom::Start(0))?;
            self.reader = Reader::new(&Start::Beginning);
        }
        Ok(())
    }

    fn seekable(&self) -> io::Result<bool> {
        use std::os::unix::fs::FileTypeExt;
        Ok(!self.file.metadata()?.file_type().is_fifo())
    }

    pub fn flush_if_quiet(&mut self, now: Instant, out: &mut Vec<Event>) {
        self.reader.flush_if_quiet(now, out);
    }

    /// The position to save, if it moved and `force` or a second has
    /// passed since the last one handed out. Saving it is the record
    /// stage's job; this only decides when.
    pub fn position_due(&mut self, force: bool) -> Option<(PathBuf, Position)> {
        let (Some(boot_id), Some(seq)) = (&self.boot_id, self.reader.last_seq) else {
            return None;
        };
        if self.saved_seq == Some(seq) || (!force && self.last_save.elapsed() < SAVE_EVERY) {
            return None;
        }
        self.saved_seq = Some(seq);
        self.last_save = Instant::now();
        Some((
            self.state_file.clone(),
            Position {
                boot_id: boot_id.clone(),
                seq,
            },
        ))
    }

    /// The last position handed out was not saved after all (the record
    /// queue was full): hand it out again next time.
    pub fn position_unsaved(&mut self) {
        self.saved_seq = None;
    }

    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.reader.flush(out);
    }
}

fn open_nonblocking(path: &PathBuf) -> io::Result<File> {
    use std::os::unix::fs::FileTypeExt;
    // A FIFO standing in for /dev/kmsg (tests, a replay) is opened for
    // writing too: it then never reads as ended when a writer leaves, so
    // it needs no reopening (and no spare descriptor for that).
    let fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    std::fs::OpenOptions::new()
        .read(true)
        .write(fifo)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Body;
    use std::collections::VecDeque;

    struct Fake(VecDeque<io::Result<Vec<u8>>>);

    impl RecordSource for Fake {
        fn read_record(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(Err(e)) => Err(e),
                Some(Ok(r)) => {
                    buf[..r.len()].copy_from_slice(&r);
                    Ok(r.len())
                }
            }
        }
    }

    fn rec(seq: u64, text: &str) -> io::Result<Vec<u8>> {
        Ok(format!("4,{seq},{},-;{text}\n", seq * 1000).into_bytes())
    }

    fn kinds(ev: &[Event]) -> Vec<&'static str> {
        ev.iter().map(|e| e.body.kind()).collect()
    }

    #[test]
    fn epipe_is_a_gap_reported_as_lost() {
        let mut src = Fake(VecDeque::from([
            rec(10, "hello"),
            Err(io::Error::from_raw_os_error(libc::EPIPE)),
            rec(15, "after the overrun"),
        ]));
        let mut r = Reader::new(&Start::Beginning);
        let mut out = Vec::new();
        let mut buf = vec![0; READ_BUF];
        assert_eq!(
            r.drain(&mut src, &mut buf, &mut out).unwrap(),
            Drained::Empty
        );
        assert_eq!(r.overruns, 1);
        assert_eq!(kinds(&out), ["lost"]);
        let Body::Lost(l) = &out[0].body else {
            unreachable!()
        };
        assert_eq!(l.count, 4);
        assert_eq!(r.last_seq, Some(15));
    }

    #[test]
    fn resume_skips_what_was_handled_and_reports_what_was_missed() {
        let hung = "INFO: task kworker/0:1:42 blocked for more than 120 seconds.";
        // Same boot, saved at 100: 98..100 are skipped; 104 follows a gap.
        let mut src = Fake(VecDeque::from([
            rec(98, hung),
            rec(100, hung),
            rec(104, hung),
        ]));
        let mut r = Reader::new(&Start::After(100));
        let mut out = Vec::new();
        r.drain(&mut src, &mut vec![0; READ_BUF], &mut out).unwrap();
        r.flush(&mut out);
        assert_eq!(kinds(&out), ["lost", "hung_task"]);
        let Body::Lost(l) = &out[0].body else {
            unreachable!()
        };
        assert_eq!(l.count, 3);
    }

    #[test]
    fn fifo_chunks_are_split_into_records() {
        let mut src = Fake(VecDeque::from([
            Ok(b"4,1,1000,-;INFO: task a b:7 blocked for more than 2 seconds.\n4,2,10".to_vec()),
            Ok(b"00,-;next\n SUBSYSTEM=x\n".to_vec()),
        ]));
        let mut r = Reader::new(&Start::Beginning);
        let mut out = Vec::new();
        r.drain(&mut src, &mut vec![0; READ_BUF], &mut out).unwrap();
        r.flush(&mut out);
        assert_eq!(kinds(&out), ["hung_task"]);
        assert_eq!(r.last_seq, Some(2));
    }

    #[test]
    fn kmsg_position_beyond_buffer_is_refused() {
        // Defect 1: a saved position of this boot past the last record
        // (2^40, u64::MAX) made the reader skip every record, silently.
        for saved in [1u64 << 40, u64::MAX] {
            let hung = "INFO: task a:7 blocked for more than 2 seconds.";
            let mut src = Fake(VecDeque::from([rec(1, hung), rec(2, "x")]));
            let mut r = Reader::new(&Start::After(saved));
            let mut out = Vec::new();
            let mut buf = vec![0; READ_BUF];
            r.drain(&mut src, &mut buf, &mut out).unwrap();
            assert_eq!(r.take_impossible_start(), Some((saved, 3)));
            // Said once.
            assert_eq!(r.take_impossible_start(), None);
            // Later records are handled, without a bogus gap.
            src.0.push_back(rec(3, hung));
            r.drain(&mut src, &mut buf, &mut out).unwrap();
            r.flush(&mut out);
            assert_eq!(kinds(&out), ["hung_task"], "saved {saved}");
            assert_eq!(r.last_seq, Some(3));
        }
    }

    #[test]
    fn kmsg_position_at_last_record_is_kept() {
        let mut src = Fake(VecDeque::from([rec(1, "a"), rec(2, "b")]));
        let mut r = Reader::new(&Start::After(2));
        let mut out = Vec::new();
        r.drain(&mut src, &mut vec![0; READ_BUF], &mut out).unwrap();
        assert_eq!(r.take_impossible_start(), None);
        assert!(out.is_empty());
    }

    #[test]
    fn kmsg_position_beyond_buffer_replays_when_configured() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::create_dir_all(root.join("proc/sys/kernel/random")).unwrap();
        std::fs::write(root.join("proc/sys/kernel/random/boot_id"), "b1\n").unwrap();
        let hung = "INFO: task a:7 blocked for more than 2 seconds.";
        let text: String = [rec(1, hung), rec(2, "x")]
            .into_iter()
            .map(|r| String::from_utf8(r.unwrap()).unwrap())
            .collect();
        std::fs::write(root.join("dev/kmsg"), text).unwrap();
        let state = root.join("kmsg.state");
        Position {
            boot_id: "b1".into(),
            seq: u64::MAX,
        }
        .save(&state)
        .unwrap();
        let (mut k, start) =
            Kmsg::open(&Host::new(root), state.clone(), KmsgStart::Replay).unwrap();
        assert_eq!(start, Start::After(u64::MAX));
        let mut out = Vec::new();
        while k.drain(&mut out).unwrap() == Drained::More {}
        k.finish(&mut out);
        assert_eq!(kinds(&out), ["hung_task"]);
        let (path, pos) = k.position_due(true).unwrap();
        assert_eq!((path, pos.seq), (state, 2));
    }

    #[test]
    fn start_points() {
        let p = Position {
            boot_id: "a".into(),
            seq: 7,
        };
        assert_eq!(
            start_point(Some(&p), Some("a"), KmsgStart::End),
            Start::After(7)
        );
        assert_eq!(
            start_point(Some(&p), Some("b"), KmsgStart::End),
            Start::Beginning
        );
        assert_eq!(start_point(None, Some("b"), KmsgStart::End), Start::End);
        assert_eq!(
            start_point(None, Some("b"), KmsgStart::Replay),
            Start::Beginning
        );
        assert_eq!(start_point(Some(&p), None, KmsgStart::End), Start::End);
    }

    #[test]
    fn quiet_flush_waits_for_the_burst_to_end() {
        let mut src = Fake(VecDeque::from([rec(
            1,
            "INFO: task x:9 blocked for more than 2 seconds.",
        )]));
        let mut r = Reader::new(&Start::Beginning);
        let mut out = Vec::new();
        r.drain(&mut src, &mut vec![0; READ_BUF], &mut out).unwrap();
        let t = r.quiet_deadline().unwrap();
        r.flush_if_quiet(t - Duration::from_millis(1), &mut out);
        assert!(out.is_empty());
        r.flush_if_quiet(t, &mut out);
        assert_eq!(kinds(&out), ["hung_task"]);
        assert!(r.quiet_deadline().is_none());
    }
}
