//! Where a worker's senders' output goes: a [`Sink`].
//!
//! With one worker, [`Direct`]: the worker holds the shared lock for a
//! batch of datagrams and writes each line into the file buffers as it
//! comes (nothing is copied twice). With several, [`Batch`] into
//! [`Staged`], one worker's output between two takings of the lock:
//! a worker parses its datagrams, runs their senders' reorder windows and
//! detection, and notes here, in order, what goes to the shared files,
//! event log and counters: lines (their bytes copied into one arena),
//! blocks of whole plain lines, markers, last-words text, events. Then it
//! takes the lock once and [`apply`](Staged::apply)s the batch: only the
//! formatting into the file buffers and the writes run under the lock, so
//! workers parse on their own cores. The order of a worker's lines, and
//! of markers and events among them, is the order they were noted in.

use std::sync::Mutex;
use std::time::Instant;

use crate::events::Event as KernelEvent;
use crate::marker::Marker;

use super::clock::Stamp;
use super::extended::Meta;
use super::output::{self, Text};
use super::{lock, Shared, Stats};

/// Bytes of the arena kept between batches; a batch of large datagrams
/// may grow it further, and it is given back after.
const ARENA_KEEP: usize = 256 * 1024;
/// Line ends kept between batches (16 KiB); a batch of datagrams of many
/// lines (up to 1,024 each) may grow them further.
const ENDS_KEEP: usize = 4096;

/// A stretch of the arena.
type Span = (usize, usize);

/// Who lines are from: the name their file and events use, and the
/// address, in [`Staged`]'s `whos` (a [`Direct`] sink only tells one
/// datagram's sender from the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who {
    name: Span,
    source: Span,
}

#[derive(Debug)]
enum Op {
    Line {
        who: Who,
        text: Span,
        plain: bool,
        meta: Option<Meta>,
        /// Indices into `dicts`.
        dict: (usize, usize),
    },
    Block {
        who: Who,
        data: Span,
        /// Into `ends`: where the lines of `data` end.
        ends: Span,
    },
    Marker {
        name: Option<Span>,
        marker: Marker,
    },
    Append {
        stem: String,
        text: Vec<u8>,
    },
    Event {
        event: Box<KernelEvent>,
        last_words: Option<String>,
        release: Option<String>,
    },
}

/// What a worker produced since it last held the lock.
#[derive(Debug, Default)]
pub struct Staged {
    arena: Vec<u8>,
    /// Names and addresses of the senders of the lines (text, so read
    /// back without checking it again).
    whos: String,
    dicts: Vec<Span>,
    /// Where the lines of each noted block end (see [`output::Lines`]).
    ends: Vec<u32>,
    ops: Vec<Op>,
    /// Counters to add to the shared ones.
    pub stats: Stats,
}

impl Staged {
    fn span(&mut self, b: &[u8]) -> Span {
        let start = self.arena.len();
        self.arena.extend_from_slice(b);
        (start, self.arena.len())
    }

    /// Notes a sender's name and address, for the lines that follow
    /// (noted once per datagram, and again when the sender is renamed).
    pub fn who(&mut self, name: &str, source: &str) -> Who {
        let mut put = |t: &str| {
            let start = self.whos.len();
            self.whos.push_str(t);
            (start, self.whos.len())
        };
        Who {
            name: put(name),
            source: put(source),
        }
    }

    /// One line of `who` (see [`output::Output::line_in`]).
    pub fn line(&mut self, who: Who, text: Text<'_>, meta: Option<&Meta>, dict: &[&[u8]]) {
        let t = self.span(text.bytes);
        let first = self.dicts.len();
        for d in dict {
            let s = self.span(d);
            self.dicts.push(s);
        }
        self.ops.push(Op::Line {
            who,
            text: t,
            plain: text.plain,
            meta: meta.copied(),
            dict: (first, self.dicts.len()),
        });
    }

    /// Whole plain lines of sender `name` in one piece (see
    /// [`output::Output::plain_lines_in`]); returns how many lines it
    /// holds.
    pub fn block(&mut self, who: Who, lines: output::Lines<'_>) -> u64 {
        let data = self.span(lines.data());
        let first = self.ends.len();
        self.ends.extend_from_slice(lines.ends());
        let ends = (first, self.ends.len());
        self.ops.push(Op::Block { who, data, ends });
        lines.count() as u64
    }

    /// A marker, routed by `sender`'s name in the per-sender layout.
    pub fn marker(&mut self, sender: Option<Who>, marker: Marker) {
        let name = sender.map(|w| w.name);
        self.ops.push(Op::Marker { name, marker });
    }

    /// Text for the last-words file `stem`.
    pub fn append(&mut self, stem: String, text: Vec<u8>) {
        self.ops.push(Op::Append { stem, text });
    }

    /// A detected event, with its last-words file and the sender's kernel
    /// release.
    pub fn event(&mut self, event: KernelEvent, last_words: Option<&str>, release: Option<&str>) {
        self.ops.push(Op::Event {
            event: Box::new(event),
            last_words: last_words.map(str::to_string),
            release: release.map(str::to_string),
        });
    }

    /// Hands everything noted to the shared files, event log and counters
    /// (under the lock), in the order it was noted; `stamp` and `now` are
    /// those the lines were noted with.
    pub fn apply(&mut self, sh: &mut Shared, stamp: &Stamp, now: Instant) {
        sh.stats.absorb(&std::mem::take(&mut self.stats));
        // The file of the last line's sender: the lines of a datagram
        // look it up once.
        let mut file: Option<(Span, output::FileRef)> = None;
        let arena = &self.arena;
        let block_ends = &self.ends;
        let whos = &self.whos;
        let text = |s: Span| &whos[s.0..s.1];
        let mut file_of = |sh: &mut Shared, name: Span| match file {
            Some((n, f)) if n == name => f,
            _ => {
                let f = sh.out.file_of(stamp, text(name), now);
                file = Some((name, f));
                f
            }
        };
        for op in self.ops.drain(..) {
            match op {
                Op::Line {
                    who,
                    text: t,
                    plain,
                    meta,
                    dict,
                } => {
                    let f = file_of(sh, who.name);
                    let dict: Vec<&[u8]> = self.dicts[dict.0..dict.1]
                        .iter()
                        .map(|s| &arena[s.0..s.1])
                        .collect();
                    let body = Text {
                        bytes: &arena[t.0..t.1],
                        plain,
                    };
                    sh.out.line_in(
                        f,
                        stamp,
                        text(who.name),
                        text(who.source),
                        body,
                        meta.as_ref(),
                        &dict,
                        now,
                    );
                }
                Op::Block { who, data, ends } => {
                    let f = file_of(sh, who.name);
                    let lines = output::Lines::from_parts(
                        &arena[data.0..data.1],
                        &block_ends[ends.0..ends.1],
                    );
                    sh.out
                        .plain_lines_in(f, stamp, text(who.name), text(who.source), lines, now);
                }
                Op::Marker { name, marker } => {
                    sh.out.marker(stamp, name.map(text), &marker, now);
                }
                Op::Append { stem, text } => sh.out.append(&stem, &text, now),
                Op::Event {
                    event,
                    last_words,
                    release,
                } => sh.event(&event, last_words.as_deref(), release.as_deref()),
            }
        }
        self.clear();
    }

    /// Empties the stage for the next batch, giving back what a batch of
    /// large datagrams grew the arena and the line ends beyond their keep.
    fn clear(&mut self) {
        self.arena.clear();
        self.whos.clear();
        self.dicts.clear();
        self.ends.clear();
        if self.arena.capacity() > ARENA_KEEP {
            self.arena.shrink_to(ARENA_KEEP);
        }
        if self.ends.capacity() > ENDS_KEEP {
            self.ends.shrink_to(ENDS_KEEP);
        }
    }
}

/// What a worker's senders write to: lines, markers, last-words text,
/// events and counters.
pub trait Sink {
    /// A sender's name and address, noted before its lines (once per
    /// datagram, and again when the sender is renamed).
    fn who(&mut self, name: &str, source: &str) -> Who;
    /// One line of `who`, also given as `name` and `source`.
    fn line(
        &mut self,
        who: Who,
        name: &str,
        source: &str,
        text: Text<'_>,
        meta: Option<&Meta>,
        dict: &[&[u8]],
    );
    /// Whole plain lines of `who` in one piece; returns how many lines
    /// the block holds.
    fn block(&mut self, who: Who, name: &str, source: &str, lines: output::Lines<'_>) -> u64;
    /// A marker, routed by the sender's name in the per-sender layout.
    fn marker(&mut self, who: Option<(Who, &str)>, marker: Marker);
    /// Text for the last-words file `stem`.
    fn append(&mut self, stem: String, text: Vec<u8>);
    /// A detected event, its last-words file, the sender's release.
    fn event(&mut self, event: KernelEvent, last_words: Option<&str>, release: Option<&str>);
    /// The counters.
    fn stats(&mut self) -> &mut Stats;
    /// Runs `f` on the shared state (to make room for a new sender).
    fn with_shared<R>(&mut self, f: impl FnOnce(&mut Shared) -> R) -> R;
}

/// Straight into the shared state, whose lock the worker holds.
pub struct Direct<'a> {
    pub sh: &'a mut Shared,
    pub stamp: &'a Stamp,
    pub now: Instant,
    /// The file of the current sender's lines, once found.
    file: Option<output::FileRef>,
}

impl<'a> Direct<'a> {
    pub fn new(sh: &'a mut Shared, stamp: &'a Stamp, now: Instant) -> Direct<'a> {
        Direct {
            sh,
            stamp,
            now,
            file: None,
        }
    }

    fn file(&mut self, name: &str) -> output::FileRef {
        match self.file {
            Some(f) => f,
            None => *self
                .file
                .insert(self.sh.out.file_of(self.stamp, name, self.now)),
        }
    }
}

impl Sink for Direct<'_> {
    fn who(&mut self, _: &str, _: &str) -> Who {
        self.file = None;
        Who {
            name: (0, 0),
            source: (0, 0),
        }
    }

    fn line(
        &mut self,
        _: Who,
        name: &str,
        source: &str,
        text: Text<'_>,
        meta: Option<&Meta>,
        dict: &[&[u8]],
    ) {
        let f = self.file(name);
        let (stamp, now) = (self.stamp, self.now);
        self.sh
            .out
            .line_in(f, stamp, name, source, text, meta, dict, now);
    }

    fn block(&mut self, _: Who, name: &str, source: &str, lines: output::Lines<'_>) -> u64 {
        let f = self.file(name);
        let (stamp, now) = (self.stamp, self.now);
        self.sh
            .out
            .plain_lines_in(f, stamp, name, source, lines, now)
    }

    fn marker(&mut self, who: Option<(Who, &str)>, marker: Marker) {
        let (stamp, now) = (self.stamp, self.now);
        self.sh.out.marker(stamp, who.map(|w| w.1), &marker, now);
    }

    fn append(&mut self, stem: String, text: Vec<u8>) {
        self.sh.out.append(&stem, &text, self.now);
    }

    fn event(&mut self, event: KernelEvent, last_words: Option<&str>, release: Option<&str>) {
        self.sh.event(&event, last_words, release);
    }

    fn stats(&mut self) -> &mut Stats {
        &mut self.sh.stats
    }

    fn with_shared<R>(&mut self, f: impl FnOnce(&mut Shared) -> R) -> R {
        f(self.sh)
    }
}

/// Into a worker's [`Staged`] output, without the lock (taken only to
/// make room for a new sender).
pub struct Batch<'a> {
    pub st: &'a mut Staged,
    pub shared: &'a Mutex<Shared>,
}

impl Sink for Batch<'_> {
    fn who(&mut self, name: &str, source: &str) -> Who {
        self.st.who(name, source)
    }

    fn line(
        &mut self,
        who: Who,
        _: &str,
        _: &str,
        text: Text<'_>,
        meta: Option<&Meta>,
        dict: &[&[u8]],
    ) {
        self.st.line(who, text, meta, dict);
    }

    fn block(&mut self, who: Who, _: &str, _: &str, lines: output::Lines<'_>) -> u64 {
        self.st.block(who, lines)
    }

    fn marker(&mut self, who: Option<(Who, &str)>, marker: Marker) {
        self.st.marker(who.map(|w| w.0), marker);
    }

    fn append(&mut self, stem: String, text: Vec<u8>) {
        self.st.append(stem, text);
    }

    fn event(&mut self, event: KernelEvent, last_words: Option<&str>, release: Option<&str>) {
        self.st.event(event, last_words, release);
    }

    fn stats(&mut self) -> &mut Stats {
        &mut self.st.stats
    }

    fn with_shared<R>(&mut self, f: impl FnOnce(&mut Shared) -> R) -> R {
        f(&mut lock(self.shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of 64 datagrams of 1,024 lines each leaves no more than
    /// the keep behind once the stage is cleared.
    #[test]
    fn a_large_batch_is_given_back() {
        let mut st = Staged::default();
        let who = st.who("web1", "10.0.0.1:6665");
        let block = b"a\n".repeat(1024);
        let mut ends = Vec::new();
        for _ in 0..64 {
            let lines = output::Lines::plain(&block, 10, &mut ends).unwrap();
            assert_eq!(st.block(who, lines), 1024);
        }
        assert!(st.ends.len() > ENDS_KEEP);
        st.clear();
        assert!(st.ends.is_empty() && st.ends.capacity() <= ENDS_KEEP);
        assert!(st.arena.is_empty() && st.arena.capacity() <= ARENA_KEEP);
    }
}
