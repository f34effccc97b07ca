//! Extended netconsole (`netconsole=+...`, Linux 4.4+): per-sender
//! reassembly of records. Pure: no I/O.
//!
//! Each datagram carries one printk record (or a piece of one, with
//! `ncfrag=`); its header is parsed by [`crate::kernel::printk`], the one
//! parser `scan` uses too. Here the pieces become records, continued lines
//! are joined, and holes and restarts in the sequence become markers
//! ([`crate::marker::Body`]).

use crate::kernel::printk::{split_body, Flag, Header};
use crate::marker::{Body, MAX_GAP};

/// What a record carried, for the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The header's PRI (facility × 8 + level), as the kernel sent it.
    pub level: u32,
    pub seq: u64,
    pub ts_usec: u64,
}

/// What reassembly produced, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Record {
        meta: Meta,
        text: &'a [u8],
        /// Dictionary lines (`KEY=VALUE`, leading space removed).
        dict: Vec<&'a [u8]>,
    },
    /// Something to say about this sender's stream: a `gap`, `reset`,
    /// `incomplete` or `cut` marker.
    Marker(Body),
}

#[derive(Debug)]
struct Frag {
    meta: Meta,
    flag: Flag,
    /// The body length the kernel announced (`buf` may be shorter: capped).
    total: usize,
    buf: Vec<u8>,
    got: usize,
    /// Bytes received contiguously from offset 0.
    prefix: usize,
}

/// Extended-format state of one sender.
#[derive(Debug, Default)]
pub struct ExtState {
    last_seq: Option<u64>,
    frag: Option<Frag>,
    /// A continued line (`c` then `+` records, kernels before 5.10).
    cont: Option<(Meta, Vec<u8>)>,
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl ExtState {
    pub fn pending(&self) -> usize {
        self.frag.as_ref().map_or(0, |f| f.buf.len()) + self.cont.as_ref().map_or(0, |c| c.1.len())
    }

    /// Handles one datagram. `max_line` bounds every line written: a
    /// reassembled record keeps its first `max_line` bytes (the rest is
    /// never held), a longer record or continued line is written in
    /// `max_line` pieces, each followed by a `cut` marker.
    pub fn feed(
        &mut self,
        h: &Header<'_>,
        body: &[u8],
        max_line: usize,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        let max = max_line.max(1);
        let meta = Meta {
            level: h.pri,
            seq: h.seq,
            ts_usec: h.ts_usec,
        };
        let Some((off, total)) = h.frag else {
            self.flush_frag(max, emit);
            self.record(meta, h.flag, body, max, emit);
            return;
        };
        if self
            .frag
            .as_ref()
            .is_some_and(|f| f.meta.seq != h.seq || f.total != total)
        {
            self.flush_frag(max, emit);
        }
        let total_c = total.min(max);
        let f = self.frag.get_or_insert_with(|| Frag {
            meta,
            flag: h.flag,
            total,
            buf: vec![0; total_c],
            got: 0,
            prefix: 0,
        });
        if off < f.buf.len() {
            let n = body.len().min(f.buf.len() - off);
            f.buf[off..off + n].copy_from_slice(&body[..n]);
            f.got += n;
            if off == f.prefix {
                f.prefix += n;
            }
        }
        if f.got >= f.buf.len() {
            if let Some(f) = self.frag.take() {
                if f.total > f.buf.len() {
                    emit(Event::Marker(Body::Cut {
                        seq: Some(f.meta.seq),
                        kept: as_u64(f.buf.len()),
                        total: Some(as_u64(f.total)),
                    }));
                }
                self.record(f.meta, f.flag, &f.buf, max, emit);
            }
        }
    }

    /// Writes out whatever is held (timeout, eviction, shutdown), within
    /// `max_line` as [`feed`](Self::feed) does: a held `+` fragment joins a
    /// held continued line first.
    pub fn flush(&mut self, max_line: usize, emit: &mut impl FnMut(Event<'_>)) {
        self.flush_frag(max_line.max(1), emit);
        self.flush_cont(emit);
    }

    fn flush_frag(&mut self, max: usize, emit: &mut impl FnMut(Event<'_>)) {
        if let Some(f) = self.frag.take() {
            // `total` as the kernel announced it, even when only the
            // first `max_line` bytes were to be kept.
            emit(Event::Marker(Body::Incomplete {
                seq: f.meta.seq,
                got: as_u64(f.got),
                total: as_u64(f.total),
            }));
            // The kernel sends pieces in order: what is usable is the part
            // that arrived without a hole.
            self.record(f.meta, f.flag, &f.buf[..f.prefix], max, emit);
        }
    }

    fn flush_cont(&mut self, emit: &mut impl FnMut(Event<'_>)) {
        if let Some((meta, text)) = self.cont.take() {
            emit(Event::Record {
                meta,
                text: &text,
                dict: Vec::new(),
            });
        }
    }

    /// Writes the held continued line's complete `max`-byte pieces.
    fn cut_cont(&mut self, max: usize, emit: &mut impl FnMut(Event<'_>)) {
        if let Some((meta, text)) = &mut self.cont {
            if text.len() > max {
                let mut start = 0;
                while text.len() - start > max {
                    cut_piece(*meta, &text[start..start + max], emit);
                    start += max;
                }
                text.drain(..start);
            }
        }
    }

    fn check_seq(&mut self, seq: u64, emit: &mut impl FnMut(Event<'_>)) {
        if let Some(last) = self.last_seq {
            if seq > last.saturating_add(1) {
                // seq - last - 1 >= 1: no overflow either way.
                let body = if seq - last - 1 > MAX_GAP {
                    Body::Reset { last, seq }
                } else {
                    Body::Gap {
                        from: last + 1,
                        to: seq - 1,
                    }
                };
                emit(Event::Marker(body));
            } else if seq < last {
                emit(Event::Marker(Body::Reset { last, seq }));
            }
        }
        self.last_seq = Some(seq);
    }

    fn record(
        &mut self,
        meta: Meta,
        flag: Flag,
        body: &[u8],
        max: usize,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        self.check_seq(meta.seq, emit);
        let (text, dict) = split_body(body);
        match flag {
            Flag::More if self.cont.is_some() => {
                if let Some((_, t)) = &mut self.cont {
                    t.extend_from_slice(text);
                }
                self.cut_cont(max, emit);
            }
            Flag::Begin => {
                self.flush_cont(emit);
                self.cont = Some((meta, text.to_vec()));
                self.cut_cont(max, emit);
            }
            _ => {
                self.flush_cont(emit);
                let mut text = text;
                while text.len() > max {
                    cut_piece(meta, &text[..max], emit);
                    text = &text[max..];
                }
                emit(Event::Record {
                    meta,
                    text,
                    dict: dict.collect(),
                });
            }
        }
    }
}

/// One `max`-byte piece of a longer line, and the `cut` marker that says
/// the line continues.
fn cut_piece(meta: Meta, piece: &[u8], emit: &mut impl FnMut(Event<'_>)) {
    emit(Event::Record {
        meta,
        text: piece,
        dict: Vec::new(),
    });
    emit(Event::Marker(Body::Cut {
        seq: Some(meta.seq),
        kept: as_u64(piece.len()),
        total: None,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::printk::parse;

    #[derive(Debug, PartialEq)]
    enum E {
        R(u64, String, Vec<String>),
        Gap(u64, u64),
        Reset(u64, u64),
        Inc(u64, u64, u64),
        /// A record shortened to `kept` of `total` bytes.
        Cut(u64, u64, u64),
        /// A line cut at `kept` bytes that continues on the next line.
        Cont(u64, u64),
    }

    fn feed_all(dgrams: &[&[u8]]) -> (Vec<E>, ExtState) {
        let mut st = ExtState::default();
        let mut out = Vec::new();
        for d in dgrams {
            let (h, body) = parse(d).unwrap_or_else(|| panic!("not extended: {d:?}"));
            st.feed(&h, body, 65536, &mut |e| out.push(conv(e)));
        }
        (out, st)
    }

    fn conv(e: Event<'_>) -> E {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match e {
            Event::Record { meta, text, dict } => {
                E::R(meta.seq, s(text), dict.iter().map(|d| s(d)).collect())
            }
            Event::Marker(Body::Gap { from, to }) => E::Gap(from, to),
            Event::Marker(Body::Reset { last, seq }) => E::Reset(last, seq),
            Event::Marker(Body::Incomplete { seq, got, total }) => E::Inc(seq, got, total),
            Event::Marker(Body::Cut {
                seq: Some(seq),
                kept,
                total: Some(total),
            }) => E::Cut(seq, kept, total),
            Event::Marker(Body::Cut {
                seq: Some(seq),
                kept,
                total: None,
            }) => E::Cont(seq, kept),
            Event::Marker(b) => panic!("not an extended marker: {b:?}"),
        }
    }

    #[test]
    fn fragments_are_reassembled_with_dictionary() {
        let (out, st) = feed_all(&[
            b"6,10,1,-,ncfrag=0/22;hello, ",
            b"6,10,1,-,ncfrag=7/22;world\n SUBSYS",
            b"6,10,1,-,ncfrag=20/22;=x",
        ]);
        // body "hello, world\n SUBSYS=x" is 22 bytes
        assert_eq!(
            out,
            [E::R(10, "hello, world".into(), vec!["SUBSYS=x".into()])]
        );
        assert_eq!(st.pending(), 0);
    }

    #[test]
    fn gap_and_reset_leave_events() {
        let (out, _) = feed_all(&[
            b"6,1,0,-;a\n",
            b"6,2,0,-;b\n",
            b"6,5,0,-;c\n",
            b"6,0,0,-;boot\n",
        ]);
        assert_eq!(
            out,
            [
                E::R(1, "a".into(), vec![]),
                E::R(2, "b".into(), vec![]),
                E::Gap(3, 4),
                E::R(5, "c".into(), vec![]),
                E::Reset(5, 0),
                E::R(0, "boot".into(), vec![])
            ]
        );
    }

    #[test]
    fn incomplete_fragment_is_flushed_by_the_next_record() {
        let (out, _) = feed_all(&[b"6,7,0,-,ncfrag=0/10;abcde", b"6,8,0,-;next\n"]);
        assert_eq!(
            out,
            [
                E::Inc(7, 5, 10),
                E::R(7, "abcde".into(), vec![]),
                E::R(8, "next".into(), vec![])
            ]
        );
    }

    #[test]
    fn records_longer_than_the_limit_are_kept_up_to_it() {
        let mut st = ExtState::default();
        let mut out = Vec::new();
        for d in [
            &b"6,9,0,-,ncfrag=0/12;abcdef"[..],
            b"6,9,0,-,ncfrag=6/12;ghijkl",
        ] {
            let (h, body) = parse(d).unwrap();
            st.feed(&h, body, 8, &mut |e| out.push(conv(e)));
        }
        assert_eq!(out, [E::Cut(9, 8, 12), E::R(9, "abcdefgh".into(), vec![])]);
        assert_eq!(st.pending(), 0);
    }

    #[test]
    fn continuation_records_join() {
        let (out, mut st) = feed_all(&[b"6,1,0,c;part one", b"6,2,0,+; two", b"6,3,0,-;other\n"]);
        assert_eq!(
            out,
            [
                E::R(1, "part one two".into(), vec![]),
                E::R(3, "other".into(), vec![])
            ]
        );
        let (out, mut st2) = feed_all(&[b"6,1,0,c;held"]);
        assert!(out.is_empty());
        let mut got = Vec::new();
        st2.flush(65536, &mut |e| got.push(conv(e)));
        assert_eq!(got, [E::R(1, "held".into(), vec![])]);
        st.flush(65536, &mut |_| panic!("nothing held"));
    }

    fn feed_max(max: usize, dgrams: &[&[u8]]) -> Vec<E> {
        let mut st = ExtState::default();
        let mut out = Vec::new();
        for d in dgrams {
            let (h, body) = parse(d).unwrap();
            st.feed(&h, body, max, &mut |e| out.push(conv(e)));
        }
        st.flush(max, &mut |e| out.push(conv(e)));
        out
    }

    #[test]
    fn continued_lines_are_cut_at_the_limit() {
        // Kernels before 5.10: `c` then `+` pieces of one line. Nothing
        // is lost; no line is longer than the limit.
        let out = feed_max(
            4,
            &[
                b"6,1,0,c;abc",
                b"6,2,0,+;defgh",
                b"6,3,0,+;ij",
                b"6,4,0,-;next\n",
            ],
        );
        assert_eq!(
            out,
            [
                E::R(1, "abcd".into(), vec![]),
                E::Cont(1, 4),
                E::R(1, "efgh".into(), vec![]),
                E::Cont(1, 4),
                E::R(1, "ij".into(), vec![]),
                E::R(4, "next".into(), vec![])
            ]
        );
        // A single record longer than the limit, in one datagram.
        let out = feed_max(3, &[b"6,9,0,-;abcdefg\n K=V"]);
        assert_eq!(
            out,
            [
                E::R(9, "abc".into(), vec![]),
                E::Cont(9, 3),
                E::R(9, "def".into(), vec![]),
                E::Cont(9, 3),
                E::R(9, "g".into(), vec!["K=V".into()]),
            ]
        );
    }

    #[test]
    fn flushing_a_held_piece_into_a_held_line_stays_within_the_limit() {
        let out = feed_max(8, &[b"6,1,0,c;abcdefg", b"6,2,0,+,ncfrag=0/10;hij"]);
        assert_eq!(
            out,
            [
                E::Inc(2, 3, 10),
                E::R(1, "abcdefgh".into(), vec![]),
                E::Cont(1, 8),
                E::R(1, "ij".into(), vec![]),
            ]
        );
    }

    #[test]
    fn sequence_jumps_are_bounded() {
        let big = format!("6,{},0,-;far\n", 1 + MAX_GAP + 1);
        let max = format!("6,{},0,-;max\n", u64::MAX);
        let (out, _) = feed_all(&[
            b"6,0,0,-;a\n",
            big.as_bytes(),
            b"6,0,0,-;b\n",
            max.as_bytes(),
            b"6,1,0,-;c\n",
        ]);
        assert_eq!(
            out,
            [
                E::R(0, "a".into(), vec![]),
                E::Reset(0, MAX_GAP + 2),
                E::R(MAX_GAP + 2, "far".into(), vec![]),
                E::Reset(MAX_GAP + 2, 0),
                E::R(0, "b".into(), vec![]),
                E::Reset(0, u64::MAX),
                E::R(u64::MAX, "max".into(), vec![]),
                E::Reset(u64::MAX, 1),
                E::R(1, "c".into(), vec![]),
            ]
        );
        // The widest gap still counted as missing.
        let edge = format!("6,{},0,-;edge\n", MAX_GAP + 1);
        let (out, _) = feed_all(&[b"6,0,0,-;a\n", edge.as_bytes()]);
        assert_eq!(out[1], E::Gap(1, MAX_GAP));
    }

    proptest::proptest! {
        /// Arbitrary datagrams never panic the parser or the reassembler,
        /// and no line exceeds the limit.
        #[test]
        fn arbitrary_datagrams_never_panic(
            dgrams in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..20),
            prefix in proptest::prelude::any::<bool>(),
        ) {
            let mut st = ExtState::default();
            for d in &dgrams {
                let mut d = d.clone();
                if prefix {
                    let mut h = b"6,1,2,-,ncfrag=3/40;".to_vec();
                    h.extend_from_slice(&d);
                    d = h;
                }
                if let Some((h, body)) = parse(&d) {
                    st.feed(&h, body, 64, &mut |e| {
                        if let Event::Record { text, .. } = e {
                            assert!(text.len() <= 64, "line of {} bytes", text.len());
                        }
                    });
                }
            }
            st.flush(64, &mut |e| {
                if let Event::Record { text, .. } = e {
                    assert!(text.len() <= 64, "line of {} bytes", text.len());
                }
            });
            proptest::prop_assert_eq!(st.pending(), 0);
        }
    }
}
