//! Per-sender line assembly for plain console text.
//!
//! Console output over UDP is not record-oriented: one datagram may hold
//! several lines, part of one, or the end of one and the start of the next.
//! An [`Assembler`] keeps the unfinished tail of one sender's stream until
//! its newline arrives, it grows past the length limit, or the caller
//! flushes it (timeout, eviction, memory cap, shutdown). Pure: no I/O, no
//! clock; the caller tells it what time it is.

use std::time::Instant;

/// How a line handed to the caller ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Ended by a newline.
    Newline,
    /// Cut at the length limit; the rest follows as the next line.
    Cut,
    /// Flushed without a newline (timeout, eviction, shutdown, memory cap).
    Flushed,
}

#[derive(Debug, Default)]
pub struct Assembler {
    partial: Vec<u8>,
    since: Option<Instant>,
}

impl Assembler {
    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// When the unfinished line started arriving.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Feeds one datagram. Complete lines go to `emit` without their
    /// newline (and without a `\r` before it, from serial converters);
    /// a line longer than `max_line` bytes is emitted in `max_line`
    /// pieces (`Cut`), the last one ending as the line ends. At most
    /// `max_line + 1` bytes stay held.
    pub fn feed(
        &mut self,
        data: &[u8],
        max_line: usize,
        now: Instant,
        emit: &mut impl FnMut(&[u8], End),
    ) {
        let max_line = max_line.max(1);
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let seg = &rest[..nl];
            rest = &rest[nl + 1..];
            if self.partial.is_empty() {
                emit_limited(seg, max_line, emit);
            } else {
                self.partial.extend_from_slice(seg);
                let line = std::mem::take(&mut self.partial);
                emit_limited(&line, max_line, emit);
                self.partial = line;
                self.partial.clear();
                self.since = None;
                // Only a long line grows it past this; do not keep that.
                if self.partial.capacity() > 4096 {
                    self.partial = Vec::new();
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        if self.partial.is_empty() {
            self.since = Some(now);
        }
        self.partial.extend_from_slice(rest);
        // Cut what is already longer than a line may be, as
        // `emit_limited` cuts a whole line: a piece is cut only once more
        // bytes follow it, and a last `\r` waits for the next byte (a
        // newline makes it a line end, not text), so a line comes out the
        // same however its datagrams split it.
        let mut start = 0;
        loop {
            let left = self.partial.len() - start;
            let cr_last = self.partial.last() == Some(&b'\r');
            if left <= max_line || (left == max_line + 1 && cr_last) {
                break;
            }
            emit(&self.partial[start..start + max_line], End::Cut);
            start += max_line;
        }
        if start > 0 {
            self.partial.drain(..start);
        }
    }

    /// Hands over the unfinished line, if any.
    pub fn flush(&mut self, emit: &mut impl FnMut(&[u8], End)) {
        if !self.partial.is_empty() {
            emit(strip_cr(&self.partial), End::Flushed);
            self.partial.clear();
        }
        self.since = None;
        // A sender that once sent a burst should not keep its peak buffer.
        if self.partial.capacity() > 4096 {
            self.partial = Vec::new();
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn emit_limited(line: &[u8], max_line: usize, emit: &mut impl FnMut(&[u8], End)) {
    let line = strip_cr(line);
    let mut rest = line;
    while rest.len() > max_line {
        emit(&rest[..max_line], End::Cut);
        rest = &rest[max_line..];
    }
    emit(rest, End::Newline);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], max: usize) -> (Vec<(String, End)>, Assembler) {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        let now = Instant::now();
        for c in chunks {
            a.feed(c, max, now, &mut |l, e| {
                out.push((String::from_utf8_lossy(l).into_owned(), e))
            });
        }
        (out, a)
    }

    fn lines(v: &[(String, End)]) -> Vec<&str> {
        v.iter().map(|(s, _)| s.as_str()).collect()
    }

    #[test]
    fn line_split_across_datagrams_is_one_line() {
        let (out, a) = run(&[b"[  1.0] hello ", b"wor", b"ld\n"], 1024);
        assert_eq!(lines(&out), ["[  1.0] hello world"]);
        assert_eq!(out[0].1, End::Newline);
        assert_eq!(a.pending(), 0);
        assert!(a.since().is_none());
    }

    #[test]
    fn several_lines_in_one_datagram() {
        let (out, a) = run(&[b"a\nb\r\n\nc\nd"], 1024);
        assert_eq!(lines(&out), ["a", "b", "", "c"]);
        assert_eq!(a.pending(), 1);
        assert!(a.since().is_some());
    }

    #[test]
    fn long_line_is_cut_at_the_limit() {
        let (out, a) = run(&[b"abcdefghij", b"k\n"], 4);
        assert_eq!(lines(&out), ["abcd", "efgh", "ijk"]);
        assert_eq!(out[0].1, End::Cut);
        assert_eq!(out[2].1, End::Newline);
        assert_eq!(a.pending(), 0);
        let (out, _) = run(&[b"abcdefghij\n"], 4);
        assert_eq!(lines(&out), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn flush_hands_over_the_partial_line() {
        let (_, mut a) = run(&[b"no newline\r"], 1024);
        let mut got = Vec::new();
        a.flush(&mut |l, e| got.push((l.to_vec(), e)));
        assert_eq!(got, [(b"no newline".to_vec(), End::Flushed)]);
        a.flush(&mut |_, _| panic!("nothing left"));
    }

    #[test]
    fn binary_input_never_panics() {
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let (out, a) = run(&[&data, &data[..7], b"\xff\n"], 300);
        let total: usize = out.iter().map(|(s, _)| s.len()).sum::<usize>() + a.pending();
        assert!(total > 0);
    }

    proptest::proptest! {
        /// However a stream is cut into datagrams, the same lines come
        /// out, cut at the same places, and no line is longer than the
        /// limit.
        #[test]
        fn any_split_gives_the_same_lines(
            stream in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::prelude::any::<u8>(),
                    1 => proptest::prelude::Just(b'\n'),
                    1 => proptest::prelude::Just(b'\r'),
                ],
                0..2000,
            ),
            cuts in proptest::collection::vec(0usize..2000, 0..20),
            max in proptest::prop_oneof![1usize..12, proptest::prelude::Just(100_000)],
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&stream[at..c]);
                at = c;
            }
            chunks.push(&stream[at..]);
            let collect = |chunks: &[&[u8]]| {
                let mut a = Assembler::default();
                let mut out: Vec<(Vec<u8>, End)> = Vec::new();
                for c in chunks {
                    a.feed(c, max, Instant::now(), &mut |l, e| out.push((l.to_vec(), e)));
                    proptest::prop_assert!(a.pending() <= max + 1);
                }
                a.flush(&mut |l, e| out.push((l.to_vec(), e)));
                Ok(out)
            };
            let whole = collect(&[&stream[..]])?;
            proptest::prop_assert!(whole.iter().all(|(l, _)| l.len() <= max));
            proptest::prop_assert_eq!(collect(&chunks)?, whole);
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            proptest::prop_assert_eq!(collect(&bytes)?, collect(&[&stream[..]])?);
        }
    }
}
