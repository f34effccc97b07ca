//! Detection on the stream: every sender's assembled lines go through the
//! same parser as `watchdog scan` and `watchdog run` ([`crate::parse`]),
//! so a panic, an oops, a hung task or an OOM kill on any host of the
//! fleet becomes an event (`source: "netconsole"`, `host` = the sender's
//! name) the moment its report arrives.
//!
//! Per sender ([`Detector`], dropped with the sender): the parser's state
//! (one source, so bounded as the parser bounds it) and the sender's last
//! lines ([`LastWords`], bounded in lines and bytes). A panic or an oops
//! opens a "last words" capture: the lines before it and the report that
//! follows go to one file per incident, named in the event.
//!
//! Pure: lines in, events and last-words text out; the receiver writes
//! them.

use std::collections::VecDeque;

use crate::events::{Body, Event, WallTime};
use crate::parse::{Framer, Parser, Record};

use super::extended::Meta;
use super::output::{Lines, Text};

/// What events report as their source.
pub const SOURCE: &str = "netconsole";

/// Bytes kept per line in the last-words ring: a line is rarely longer,
/// and the ring's memory stays bounded whatever `max_line_bytes` is.
const RING_LINE_MAX: usize = 1024;
/// Bytes of one sender's ring at most: 200 kernel lines of a usual length
/// fit; a sender of long lines keeps fewer. 1,024 senders cost 64 MiB at
/// worst.
const RING_BYTES_MAX: usize = 64 * 1024;

/// The last `max` lines of one sender, in one byte buffer.
#[derive(Debug, Default)]
pub struct LastWords {
    bytes: VecDeque<u8>,
    lens: VecDeque<usize>,
    max: usize,
}

impl LastWords {
    pub fn new(max: usize) -> LastWords {
        LastWords {
            max,
            ..LastWords::default()
        }
    }

    /// Keeps one line (without its newline).
    pub fn push(&mut self, line: &[u8]) {
        self.push_parts(&[], line);
    }

    /// Keeps one line given as a prefix and the rest (no copy joins
    /// them first).
    pub fn push_parts(&mut self, prefix: &[u8], rest: &[u8]) {
        if self.max == 0 {
            return;
        }
        let prefix = &prefix[..prefix.len().min(RING_LINE_MAX)];
        let rest = &rest[..rest.len().min(RING_LINE_MAX - prefix.len())];
        let len = prefix.len() + rest.len();
        while self.lens.len() >= self.max
            || (!self.lens.is_empty() && self.bytes.len() + len + 1 > RING_BYTES_MAX)
        {
            if let Some(n) = self.lens.pop_front() {
                self.bytes.drain(..n);
            }
        }
        self.bytes.extend(prefix);
        self.bytes.extend(rest);
        self.bytes.push_back(b'\n');
        self.lens.push_back(len + 1);
    }

    /// Keeps whole lines at once: `block` is lines each ending in a
    /// newline, none longer than `RING_LINE_MAX` (see
    /// [`whole_plain_lines`]). The ring ends as if they had been pushed
    /// one by one: the newest lines, at most `max` of them and
    /// `RING_BYTES_MAX` bytes.
    pub fn push_lines(&mut self, block: Lines<'_>) {
        if self.max == 0 {
            return;
        }
        self.bytes.extend(block.data());
        self.lens.extend(block.iter().map(<[u8]>::len));
        // The oldest lines go, all in one cut.
        let mut cut = 0;
        while self.lens.len() > self.max
            || (self.lens.len() > 1 && self.bytes.len() - cut > RING_BYTES_MAX)
        {
            cut += self.lens.pop_front().unwrap_or(0);
        }
        self.bytes.drain(..cut);
    }

    /// The lines held, oldest first, each ending in a newline.
    pub fn text(&self) -> Vec<u8> {
        let (a, b) = self.bytes.as_slices();
        [a, b].concat()
    }

    #[cfg(test)]
    pub fn lines(&self) -> usize {
        self.lens.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// An open last-words capture: its file stem and how many more lines of
/// the report after the trigger go into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub stem: String,
    pub left: usize,
    /// Its report is still being assembled (no second capture for it).
    reporting: bool,
}

/// What one line produced.
#[derive(Debug, Default)]
pub struct Found {
    pub events: Vec<Event>,
    /// Text for a last-words file: `(stem, bytes)`, in order.
    pub last_words: Vec<(String, Vec<u8>)>,
}

/// Detection state of one sender.
#[derive(Debug)]
pub struct Detector {
    parser: Parser,
    framer: Framer,
    ring: LastWords,
    capture: Option<Capture>,
    /// Lines after a trigger that go into its file.
    follow: usize,
    scratch: Vec<u8>,
    rec: Record,
    /// Whether ordinary lines skip the parser while it is idle (off only
    /// in the test that proves the skip changes nothing).
    skip_ordinary: bool,
}

/// `text` as the record's text, invalid UTF-8 replaced as the framer does.
fn set_text(out: &mut String, text: &[u8]) {
    out.clear();
    match std::str::from_utf8(text) {
        Ok(t) => out.push_str(t),
        Err(_) => out.push_str(&String::from_utf8_lossy(text)),
    }
}

/// `[ 12.345678] rest`: the console's timestamp and the text after it,
/// when that is all the framing a plain line has (the common case, read
/// without the general framer). `None` for anything else.
fn console_time(line: &[u8]) -> Option<(f64, &[u8])> {
    let rest = line.strip_prefix(b"[")?;
    let end = memchr::memchr(b']', &rest[..rest.len().min(24)])?;
    let inner = std::str::from_utf8(&rest[..end]).ok()?.trim_start();
    let (secs, frac) = inner.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !digits(frac) {
        return None;
    }
    let text = &rest[end + 1..];
    let text = text.strip_prefix(b" ").unwrap_or(text);
    // A caller id (`[ T123]`) or anything bracketed next: the framer's job.
    if text.first() == Some(&b'[') {
        return None;
    }
    Some((inner.parse().ok()?, text))
}

/// `block`'s lines when it is whole lines (it ends in a newline), each of
/// printable ASCII and tabs only and at most `limit` bytes (and the
/// ring's `RING_LINE_MAX`): lines that line assembly hands over as they
/// are and the ring keeps as they are. Where they end goes into `ends`.
pub fn whole_plain_lines<'a>(
    block: &'a [u8],
    limit: usize,
    ends: &'a mut Vec<u32>,
) -> Option<Lines<'a>> {
    Lines::plain(block, limit.min(RING_LINE_MAX), ends)
}

/// True when `text` holds none of [`crate::parse::PREFILTER`]'s words.
pub fn prefilter_skips(text: &[u8]) -> bool {
    !crate::parse::line_has_prefilter_word(text)
}

impl Detector {
    /// `lines`: how many lines before a panic or oops its file keeps (and
    /// how many after it, at most).
    pub fn new(lines: usize) -> Detector {
        Detector {
            parser: Parser::new(SOURCE),
            framer: Framer::new(),
            ring: LastWords::new(lines),
            capture: None,
            follow: lines,
            scratch: Vec::new(),
            rec: Record::default(),
            skip_ordinary: true,
        }
    }

    /// No incident is open: ordinary lines would skip the parser.
    pub fn idle(&self) -> bool {
        self.parser.is_idle()
    }

    /// Keeps a datagram of ordinary lines in the ring at once, when
    /// [`line_of`](Self::line_of) would do nothing else with each of
    /// them: the caller knows the block holds none of the prefilter's
    /// words and is [`whole_plain_lines`]; no incident is open and no
    /// last-words file is being written. False (nothing kept) otherwise:
    /// then the lines go through `line_of` one by one.
    pub fn keep_block(&mut self, block: Lines<'_>) -> bool {
        if !(self.skip_ordinary && self.parser.is_idle() && self.capture.is_none()) {
            return false;
        }
        self.ring.push_lines(block);
        true
    }

    /// Bytes held (for the sender's memory accounting).
    pub fn held(&self) -> usize {
        self.ring.bytes()
    }

    /// One line of the sender, `host` its name, `wall` when it arrived,
    /// `meta` the header of an extended record. `stem_for` names a new
    /// last-words file from the triggering event.
    #[cfg(test)]
    pub fn line(
        &mut self,
        host: &str,
        text: &[u8],
        meta: Option<&Meta>,
        wall: WallTime,
        stem_for: &dyn Fn(&str) -> String,
    ) -> Found {
        self.line_of(host, Text::new(text), false, meta, wall, stem_for)
    }

    /// [`line`](Self::line); `ordinary`: the caller already knows the text
    /// holds none of the prefilter's words (it searched the whole
    /// datagram at once: one search instead of one per line).
    pub fn line_of(
        &mut self,
        host: &str,
        text: Text<'_>,
        ordinary: bool,
        meta: Option<&Meta>,
        wall: WallTime,
        stem_for: &dyn Fn(&str) -> String,
    ) -> Found {
        let mut found = Found::default();
        // Most of a log is ordinary lines: while no incident is open, a
        // line without one of the prefilter's words cannot change the
        // parser (the contract `scan` relies on too), so it only goes
        // into the last-words ring, unframed.
        if self.skip_ordinary && self.parser.is_idle() && (ordinary || prefilter_skips(text.bytes))
        {
            if self.capture.is_none() && text.plain {
                // Only the ring wants it, and it needs no escaping.
                let time = meta.map_or(&b""[..], Meta::time);
                self.ring.push_parts(time, text.bytes);
                return found;
            }
            self.scratch.clear();
            if let Some(m) = meta {
                self.scratch.extend_from_slice(m.time());
            }
            text.escape_into(&mut self.scratch);
            let line = std::mem::take(&mut self.scratch);
            self.after(&line, stem_for, &mut found);
            self.scratch = line;
            return found;
        }
        // One record reused line after line: its strings keep their
        // capacity (no allocation per line).
        let mut rec = std::mem::take(&mut self.rec);
        let framed = match meta {
            Some(m) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(m.time());
                // Escaped as in the log: a last-words file is valid UTF-8
                // text with one line per line the sender sent.
                text.escape_into(&mut self.scratch);
                set_text(&mut rec.text, text.bytes);
                rec.kernel_time = Some(m.ts_usec as f64 / 1e6);
                rec.level = u8::try_from(m.level & 7).ok();
                // Messages userspace wrote to /dev/kmsg carry another
                // facility: not the kernel's word.
                rec.kernel = m.level >> 3 == 0;
                None
            }
            None => {
                self.scratch.clear();
                text.escape_into(&mut self.scratch);
                match console_time(text.bytes) {
                    Some((t, rest)) => {
                        set_text(&mut rec.text, rest);
                        rec.kernel_time = Some(t);
                        rec.level = None;
                        rec.kernel = true;
                        None
                    }
                    None => {
                        let mut r = self.framer.frame(text.bytes);
                        // The parser's own sequence check is the window's
                        // job, and a sender cannot speak for the receiver:
                        // a line that looks like a udplogger marker is only
                        // text here.
                        r.seq = None;
                        r.boundary = false;
                        r.lost = None;
                        r.host = rec.host.take();
                        Some(r)
                    }
                }
            }
        };
        let mut rec = match framed {
            Some(r) => r,
            None => {
                rec.seq = None;
                rec.ignore = false;
                rec.boundary = false;
                rec.truncated = false;
                rec.lost = None;
                rec
            }
        };
        rec.wall_time = Some(wall);
        if rec.host.as_deref() != Some(host) {
            rec.host = Some(host.to_string());
        }
        let line = std::mem::take(&mut self.scratch);
        found.events = self.parser.push(&rec);
        self.after(&line, stem_for, &mut found);
        self.scratch = line;
        self.rec = rec;
        found
    }

    /// Records this sender's stream said were lost (a `gap` marker).
    pub fn lost(&mut self, host: &str, count: u64, wall: WallTime) -> Vec<Event> {
        let rec = Record {
            wall_time: Some(wall),
            host: Some(host.to_string()),
            lost: Some(count),
            kernel: true,
            ..Record::default()
        };
        self.parser.push(&rec)
    }

    /// The sender rebooted (a `reset` marker): its open incidents are
    /// over, and so is its capture.
    pub fn reset(&mut self, host: &str) -> Vec<Event> {
        self.capture = None;
        let rec = Record {
            host: Some(host.to_string()),
            boundary: true,
            ..Record::default()
        };
        self.parser.push(&rec)
    }

    /// The sender went quiet or is evicted: open incidents end.
    pub fn flush(&mut self) -> Vec<Event> {
        self.parser.flush()
    }

    /// Keeps the line, feeds an open capture, opens one at the first line
    /// of a panic or an oops (its event comes when the report ends: a
    /// capture that is full stays named for it).
    fn after(&mut self, line: &[u8], stem_for: &dyn Fn(&str) -> String, found: &mut Found) {
        let started = found
            .events
            .iter()
            .find_map(|e| match e.body {
                Body::Panic(_) => Some("panic"),
                Body::Oops(_) => Some("oops"),
                _ => None,
            })
            .or_else(|| self.parser.fatal_open());
        match (&mut self.capture, started) {
            (Some(c), _) if c.left > 0 => {
                // A later trigger (the panic after an oops) belongs to the
                // incident already being captured.
                c.left -= 1;
                let mut b = line.to_vec();
                b.push(b'\n');
                found.last_words.push((c.stem.clone(), b));
            }
            (Some(c), Some(_)) if c.reporting => {}
            (_, Some(kind)) => {
                let stem = stem_for(kind);
                self.ring.push(line);
                found.last_words.push((stem.clone(), self.ring.text()));
                self.capture = Some(Capture {
                    stem,
                    left: self.follow,
                    reporting: true,
                });
                return;
            }
            (Some(c), None) => c.reporting = false,
            (None, None) => {}
        }
        self.ring.push(line);
    }

    /// The open capture, if any: the file its events name.
    pub fn capture(&self) -> Option<&Capture> {
        self.capture.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall() -> WallTime {
        WallTime {
            local: chrono::NaiveDate::from_ymd_opt(2026, 11, 29)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap(),
            offset: chrono::FixedOffset::east_opt(0),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_lines() {
        let mut r = LastWords::new(3);
        for i in 0..5 {
            r.push(format!("line {i}").as_bytes());
        }
        assert_eq!(r.text(), b"line 2\nline 3\nline 4\n");
        assert_eq!(r.lines(), 3);
        r.push(&[b'x'; 5000]);
        assert_eq!(r.bytes(), 14 + 1025);
        let mut r = LastWords::new(1000);
        for _ in 0..100 {
            r.push(&[b'y'; 2000]);
        }
        assert!(
            r.bytes() <= RING_BYTES_MAX && r.lines() == 63,
            "{}",
            r.lines()
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// The ring holds what a plain queue of lines would: the newest
        /// lines, at most `max` of them and `RING_BYTES_MAX` bytes, each
        /// cut to `RING_LINE_MAX`, whatever the lengths and the wrapping.
        #[test]
        fn the_ring_matches_a_queue_of_lines(
            max in 1usize..40,
            lens in proptest::collection::vec((0usize..40, 0usize..3000), 1..400),
        ) {
            let mut ring = LastWords::new(max);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for (i, (p, n)) in lens.iter().enumerate() {
                let prefix = vec![b'a' + u8::try_from(i % 26).unwrap(); *p];
                let rest = vec![b'A' + u8::try_from(i % 26).unwrap(); *n];
                ring.push_parts(&prefix, &rest);
                let mut line = [prefix, rest].concat();
                line.truncate(RING_LINE_MAX);
                line.push(b'\n');
                while model.len() >= max
                    || (!model.is_empty()
                        && model.iter().map(Vec::len).sum::<usize>() + line.len() > RING_BYTES_MAX)
                {
                    model.pop_front();
                }
                model.push_back(line);
                let want: Vec<u8> = model.iter().flatten().copied().collect();
                proptest::prop_assert_eq!(ring.bytes(), want.len());
                proptest::prop_assert_eq!(ring.lines(), model.len());
                proptest::prop_assert!(ring.text() == want);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Lines kept a block at a time leave the ring as lines kept one
        /// by one.
        #[test]
        fn blocks_fill_the_ring_as_lines_do(
            max in 0usize..30,
            blocks in proptest::collection::vec(
                proptest::collection::vec(0usize..1024, 1..12), 1..60),
        ) {
            let (mut one, mut many) = (LastWords::new(max), LastWords::new(max));
            for (i, block) in blocks.iter().enumerate() {
                let mut bytes = Vec::new();
                for (j, n) in block.iter().enumerate() {
                    let line = vec![b'a' + u8::try_from((i + j) % 26).unwrap(); *n];
                    one.push(&line);
                    bytes.extend_from_slice(&line);
                    bytes.push(b'\n');
                }
                let mut ends = Vec::new();
                let lines = Lines::plain(&bytes, usize::MAX, &mut ends).unwrap();
                many.push_lines(lines);
                proptest::prop_assert_eq!(one.lines(), many.lines());
                proptest::prop_assert!(one.text() == many.text());
            }
        }
    }

    #[test]
    fn console_time_is_read_where_it_is_all_the_framing() {
        // What the plain fast path takes, and what it leaves to the framer.
        assert_eq!(
            console_time(b"[   12.487423] Kernel panic"),
            Some((12.487423, &b"Kernel panic"[..]))
        );
        assert_eq!(console_time(b"[ 1.5]x"), Some((1.5, &b"x"[..])));
        for other in [
            &b"[ T12] x"[..],
            b"[   12.4] [ T1] x",
            b"[x.1] y",
            b"[12] y",
            b"<4>[ 1.0] y",
        ] {
            assert_eq!(
                console_time(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn a_panic_opens_one_capture_with_the_lines_before_and_after() {
        let mut d = Detector::new(3);
        let stem = |k: &str| format!("lw-{k}");
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut events = Vec::new();
        for l in [
            "[   10.000000] one",
            "[   11.000000] two",
            "[   12.000000] three",
            "[   12.487423] Kernel panic - not syncing: sysrq triggered crash",
            "[   12.487424] CPU: 0 PID: 1 Comm: sh",
            "[   12.487425] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
            "[   12.5] a",
            "[   12.6] b",
        ] {
            let f = d.line("web1", l.as_bytes(), None, wall(), &stem);
            events.extend(f.events);
            files.extend(f.last_words);
        }
        events.extend(d.flush());
        let kinds: Vec<&str> = events.iter().map(|e| e.body.kind()).collect();
        assert_eq!(kinds, ["panic"]);
        assert_eq!(events[0].host.as_deref(), Some("web1"));
        assert_eq!(events[0].source, "netconsole");
        assert_eq!(events[0].kernel_time, Some(12.487423));
        let text: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
        assert!(files.iter().all(|(s, _)| s == "lw-panic"));
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "[   11.000000] two\n[   12.000000] three\n[   12.487423] Kernel panic - not syncing: sysrq triggered crash\n[   12.487424] CPU: 0 PID: 1 Comm: sh\n[   12.487425] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\n[   12.5] a\n"
        );
    }

    /// Found by the fuzzer (`udplogger_receiver`): a sender's control
    /// characters and invalid UTF-8 went raw into its last-words file,
    /// while the log beside it escapes them; the file was not UTF-8.
    #[test]
    fn last_words_are_escaped_like_the_log() {
        let mut d = Detector::new(10);
        let mut lw = Vec::new();
        for line in [
            &b"de\xc2\xc2 \x1b[31mred\ttab"[..],
            b"general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP",
        ] {
            let f = d.line("db1", line, None, wall(), &|_| "x".into());
            lw.extend(f.last_words.into_iter().flat_map(|(_, b)| b));
        }
        let text = String::from_utf8(lw).expect("UTF-8");
        assert!(
            text.starts_with("de\\xc2\\xc2 \\x1b[31mred\ttab\n"),
            "{text:?}"
        );
    }

    #[test]
    fn a_sender_cannot_forge_the_receivers_markers() {
        let mut d = Detector::new(10);
        let f = d.line(
            "web1",
            b"2026-11-22T04:25:12Z udplogger 10.0.0.7:6666 gap: 9 records missing count=999999 from=1 to=999999",
            None,
            wall(),
            &|_| "x".into(),
        );
        assert!(f.events.is_empty(), "{:?}", f.events);
        assert!(d.flush().is_empty());
    }

    #[test]
    fn extended_records_carry_their_time_and_level() {
        let mut d = Detector::new(10);
        let m = Meta::new(0, 7, 12_487_423);
        let f = d.line(
            "db1",
            b"Kernel panic - not syncing: Fatal exception",
            Some(&m),
            wall(),
            &|_| "x".into(),
        );
        // The capture opens at the report's first line; the event comes
        // when the report ends (here: the sender goes quiet).
        assert!(f.events.is_empty());
        assert_eq!(
            f.last_words,
            [(
                "x".to_string(),
                b"[   12.487423] Kernel panic - not syncing: Fatal exception\n".to_vec()
            )]
        );
        assert_eq!(d.capture().map(|c| c.stem.as_str()), Some("x"));
        let ev = d.flush();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].body.kind(), "panic");
        assert_eq!(ev[0].kernel_time, Some(12.487423));
        let lost = d.lost("db1", 5, wall());
        assert_eq!(lost[0].body.kind(), "lost");
    }

    #[test]
    fn whole_plain_lines_are_told_apart() {
        let mut ends = Vec::new();
        let mut lines = |block: &[u8], limit: usize| -> Option<Vec<Vec<u8>>> {
            whole_plain_lines(block, limit, &mut ends)
                .map(|l| l.iter().map(<[u8]>::to_vec).collect())
        };
        for limit in [8, 4096] {
            assert_eq!(
                lines(b"ab\tc\n\nd\n", limit),
                Some(vec![b"ab\tc\n".to_vec(), b"\n".to_vec(), b"d\n".to_vec()]),
                "{limit}"
            );
            assert_eq!(lines(b"ab\nunfinished", limit), None);
            assert_eq!(lines(b"serial\r\n", limit), None);
            assert_eq!(lines(b"bell\x07\n", limit), None);
            assert_eq!(lines(b"caf\xc3\xa9\n", limit), None);
            assert_eq!(lines(b"", limit), None);
        }
        // Longer than the limit: one line too long, or every line short.
        assert_eq!(lines(b"123456789\nab\n", 8), None);
        assert_eq!(
            lines(b"12345678\nabcdefgh\n", 8),
            Some(vec![b"12345678\n".to_vec(), b"abcdefgh\n".to_vec()])
        );
        assert_eq!(lines(&[b'x'; RING_LINE_MAX + 2], 4096), None);
        let mut long = vec![b'x'; RING_LINE_MAX];
        long.push(b'\n');
        assert_eq!(lines(&long, 4096).map(|l| l.len()), Some(1));
    }

    /// What a line produced, as text to compare: its events' JSON, then
    /// its last-words pieces.
    fn record(out: &mut Vec<String>, found: Found) {
        out.extend(found.events.iter().map(|e| e.to_json()));
        out.extend(
            found
                .last_words
                .iter()
                .map(|(s, b)| format!("{s}: {}", String::from_utf8_lossy(b))),
        );
    }

    /// Every kernel-log fixture (`tests/fixtures/kernel-logs`, and its
    /// `real/` recordings), in name order.
    fn kernel_log_fixtures() -> Vec<std::path::PathBuf> {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel-logs");
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in [root.clone(), root.join("real")] {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "log" || x == "dmesg") {
                    files.push(p);
                }
            }
        }
        files.sort();
        files
    }

    /// Keeping a datagram of ordinary lines at once is only a shortcut:
    /// over every kernel-log fixture sent as plain datagrams of 1 to 12
    /// lines, deciding per datagram as the receiver does gives the same
    /// events, last-words files and ring as every line one by one.
    #[test]
    fn keeping_whole_datagrams_changes_no_event() {
        let files = kernel_log_fixtures();
        let (mut kept, mut events) = (0, 0);
        for f in &files {
            let text = std::fs::read(f).unwrap();
            let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            for per in [1, 5, 12] {
                let stem = |k: &str| format!("lw-{k}");
                let (mut one, mut blocks) = (Detector::new(20), Detector::new(20));
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for chunk in lines.chunks(per) {
                    for line in chunk {
                        record(&mut a, one.line("h", line, None, wall(), &stem));
                    }
                    let mut block: Vec<u8> = chunk.join(&b'\n');
                    block.push(b'\n');
                    let ordinary = blocks.idle() && prefilter_skips(&block);
                    let mut ends = Vec::new();
                    let whole = whole_plain_lines(&block, 4096, &mut ends);
                    if ordinary && whole.is_some_and(|l| blocks.keep_block(l)) {
                        kept += 1;
                        continue;
                    }
                    for line in chunk {
                        let found =
                            blocks.line_of("h", Text::new(line), ordinary, None, wall(), &stem);
                        record(&mut b, found);
                    }
                }
                record(
                    &mut a,
                    Found {
                        events: one.flush(),
                        last_words: Vec::new(),
                    },
                );
                record(
                    &mut b,
                    Found {
                        events: blocks.flush(),
                        last_words: Vec::new(),
                    },
                );
                assert_eq!(a, b, "{} ({per} lines a datagram)", f.display());
                assert_eq!(one.ring.text(), blocks.ring.text(), "{}", f.display());
                events += a.len();
            }
        }
        assert!(kept > 100 && events > 100, "{kept} {events}");
    }

    /// The prefilter's skip is only a shortcut: over every kernel-log
    /// fixture, fed as plain lines and as extended records, the events
    /// and the last-words text are the same with it and without it.
    #[test]
    fn skipping_ordinary_lines_changes_no_event() {
        let files = kernel_log_fixtures();
        assert!(files.len() > 30, "{}", files.len());
        let mut events = 0;
        for f in &files {
            let text = std::fs::read(f).unwrap();
            for extended in [false, true] {
                let run = |skip: bool| {
                    let mut d = Detector::new(20);
                    d.skip_ordinary = skip;
                    let mut out: Vec<String> = Vec::new();
                    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                        let meta = Meta::new(4, i as u64, 1_000_000 + i as u64);
                        let found = d.line("h", line, extended.then_some(&meta), wall(), &|k| {
                            format!("lw-{k}")
                        });
                        record(&mut out, found);
                    }
                    out.extend(d.flush().iter().map(|e| e.to_json()));
                    out
                };
                let (fast, full) = (run(true), run(false));
                assert_eq!(fast, full, "{} (extended: {extended})", f.display());
                events += full.len();
            }
        }
        assert!(events > 100, "{events}");
    }
}
