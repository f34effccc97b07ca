//! Extended netconsole (`netconsole=+...`, Linux 4.4+): parsing and
//! per-sender reassembly. Pure: no I/O.
//!
//! Each datagram carries one printk record, formatted by the kernel's
//! `msg_print_ext_header`/`info_print_ext_header` (kernel/printk/printk.c)
//! and `send_ext_msg_udp` (drivers/net/netconsole.c):
//!
//! ```text
//! [RELEASE,]LEVEL,SEQ,TS_USEC,FLAGS[,caller=T123][,ncfrag=OFF/TOTAL];TEXT\n[ KEY=VALUE\n...]
//! ```
//!
//! - RELEASE: `uname -r`, with the `release` option (`r` in `netconsole=`).
//! - LEVEL: syslog prefix, facility × 8 + level.
//! - FLAGS: `-`, or `c` for a record built from continuation fragments;
//!   kernels before 5.10 mark later fragments of a continued line `+`.
//! - ncfrag: records longer than 1000 bytes are split; OFF is the byte
//!   offset of this piece in the body (TEXT plus dictionary), TOTAL the
//!   body length. Every piece repeats the header.
//! - TEXT has non-printable bytes escaped as `\xNN` by the kernel.

/// The header of one extended datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub release: Option<&'a str>,
    pub level: u32,
    pub seq: u64,
    pub ts_usec: u64,
    pub flag: u8,
    /// `(offset, total)` of a fragment.
    pub frag: Option<(usize, usize)>,
}

/// What a record carried, for the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub level: u32,
    pub seq: u64,
    pub ts_usec: u64,
}

fn digits<T: std::str::FromStr>(s: &[u8]) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Splits a datagram into header and body, or `None` when it is not in
/// the extended format (then it is plain console text).
pub fn parse(datagram: &[u8]) -> Option<(Header<'_>, &[u8])> {
    // Headers are short; a `;` far into the datagram is text, not a header.
    let semi = memchr::memchr(b';', &datagram[..datagram.len().min(256)])?;
    let head = &datagram[..semi];
    let body = &datagram[semi + 1..];
    let mut fields = head.split(|&b| b == b',');
    let mut first = fields.next()?;
    let mut release = None;
    if digits::<u32>(first).is_none() {
        let r = std::str::from_utf8(first).ok()?;
        if r.is_empty() || !r.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        release = Some(r);
        first = fields.next()?;
    }
    let level = digits(first)?;
    let seq = digits(fields.next()?)?;
    let ts_usec = digits(fields.next()?)?;
    let flag = match fields.next()? {
        [f @ (b'-' | b'c' | b'+')] => *f,
        _ => return None,
    };
    let mut frag = None;
    for f in fields {
        if let Some(v) = f.strip_prefix(b"ncfrag=") {
            let slash = memchr::memchr(b'/', v)?;
            let off: usize = digits(&v[..slash])?;
            let total: usize = digits(&v[slash + 1..])?;
            if off >= total {
                return None;
            }
            frag = Some((off, total));
        } else if !f.contains(&b'=') {
            return None;
        }
    }
    Some((
        Header {
            release,
            level,
            seq,
            ts_usec,
            flag,
            frag,
        },
        body,
    ))
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
    /// Records `from..=to` never arrived.
    Gap { from: u64, to: u64 },
    /// The sequence went backwards: the sender restarted (or replays).
    Reset { last: u64, seq: u64 },
    /// A fragmented record stopped arriving; what came is written.
    Incomplete { seq: u64, got: usize, total: usize },
    /// A record longer than the limit: its first `kept` bytes are written.
    Cut { seq: u64, kept: usize, total: usize },
}

#[derive(Debug)]
struct Frag {
    meta: Meta,
    flag: u8,
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

impl ExtState {
    pub fn pending(&self) -> usize {
        self.frag.as_ref().map_or(0, |f| f.buf.len()) + self.cont.as_ref().map_or(0, |c| c.1.len())
    }

    /// Handles one datagram. `max_record` bounds a reassembled record.
    pub fn feed(
        &mut self,
        h: &Header<'_>,
        body: &[u8],
        max_record: usize,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        let meta = Meta {
            level: h.level,
            seq: h.seq,
            ts_usec: h.ts_usec,
        };
        let Some((off, total)) = h.frag else {
            self.flush_frag(emit);
            self.record(meta, h.flag, body, emit);
            return;
        };
        if self
            .frag
            .as_ref()
            .is_some_and(|f| f.meta.seq != h.seq || f.total != total)
        {
            self.flush_frag(emit);
        }
        let total_c = total.min(max_record);
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
                    emit(Event::Cut {
                        seq: f.meta.seq,
                        kept: f.buf.len(),
                        total: f.total,
                    });
                }
                self.record(f.meta, f.flag, &f.buf, emit);
            }
        }
    }

    /// Writes out whatever is held (timeout, eviction, shutdown).
    pub fn flush(&mut self, emit: &mut impl FnMut(Event<'_>)) {
        self.flush_frag(emit);
        self.flush_cont(emit);
    }

    fn flush_frag(&mut self, emit: &mut impl FnMut(Event<'_>)) {
        if let Some(f) = self.frag.take() {
            emit(Event::Incomplete {
                seq: f.meta.seq,
                got: f.got,
                total: f.buf.len(),
            });
            // The kernel sends pieces in order: what is usable is the part
            // that arrived without a hole.
            self.record(f.meta, f.flag, &f.buf[..f.prefix], emit);
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

    fn check_seq(&mut self, seq: u64, emit: &mut impl FnMut(Event<'_>)) {
        if let Some(last) = self.last_seq {
            if seq > last.saturating_add(1) {
                emit(Event::Gap {
                    from: last + 1,
                    to: seq - 1,
                });
            } else if seq < last {
                emit(Event::Reset { last, seq });
            }
        }
        self.last_seq = Some(seq);
    }

    fn record(&mut self, meta: Meta, flag: u8, body: &[u8], emit: &mut impl FnMut(Event<'_>)) {
        self.check_seq(meta.seq, emit);
        let (text, rest) = match memchr::memchr(b'\n', body) {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, &b""[..]),
        };
        let dict: Vec<&[u8]> = rest
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.strip_prefix(b" ").unwrap_or(l))
            .collect();
        match flag {
            b'+' if self.cont.is_some() => {
                if let Some((_, t)) = &mut self.cont {
                    t.extend_from_slice(text);
                }
            }
            b'c' => {
                self.flush_cont(emit);
                self.cont = Some((meta, text.to_vec()));
            }
            _ => {
                self.flush_cont(emit);
                emit(Event::Record { meta, text, dict });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        R(u64, String, Vec<String>),
        Gap(u64, u64),
        Reset(u64, u64),
        Inc(u64, usize, usize),
        Cut(u64, usize, usize),
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
            Event::Gap { from, to } => E::Gap(from, to),
            Event::Reset { last, seq } => E::Reset(last, seq),
            Event::Incomplete { seq, got, total } => E::Inc(seq, got, total),
            Event::Cut { seq, kept, total } => E::Cut(seq, kept, total),
        }
    }

    #[test]
    fn parses_headers_of_real_kernels() {
        // Linux 6.1 netconsole with `+r`: release prefix.
        let (h, b) =
            parse(b"6.1.0-18-amd64,6,1234,5678901,-;e1000e: eth0 NIC Link is Up\n").unwrap();
        assert_eq!(h.release, Some("6.1.0-18-amd64"));
        assert_eq!(
            (h.level, h.seq, h.ts_usec, h.flag),
            (6, 1234, 5678901, b'-')
        );
        assert_eq!(b, b"e1000e: eth0 NIC Link is Up\n");
        // CONFIG_PRINTK_CALLER adds caller=; fragments add ncfrag=.
        let (h, b) = parse(b"4,77,100,c,caller=T12,ncfrag=0/1500;abc").unwrap();
        assert_eq!((h.flag, h.frag), (b'c', Some((0, 1500))));
        assert_eq!(b, b"abc");
        assert!(parse(b"[    1.234] plain console line; with semicolon\n").is_none());
        assert!(parse(b"hello;world").is_none());
        assert!(parse(b"6,1,2,x;bad flag").is_none());
        assert!(parse(b"6,1,2,-,ncfrag=5/5;off past end").is_none());
        assert!(parse(b"").is_none());
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
        st2.flush(&mut |e| got.push(conv(e)));
        assert_eq!(got, [E::R(1, "held".into(), vec![])]);
        st.flush(&mut |_| panic!("nothing held"));
    }

    proptest::proptest! {
        /// Arbitrary datagrams never panic the parser or the reassembler.
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
                    st.feed(&h, body, 64, &mut |_| {});
                }
            }
            st.flush(&mut |_| {});
            proptest::prop_assert_eq!(st.pending(), 0);
        }
    }
}
