//! The whole udplogger receive path (src/udplogger/mod.rs): datagrams
//! from several senders, plain and extended netconsole mixed, through the
//! real [`Receiver`] to its JSON log files in a temporary directory. Then,
//! per sender:
//!
//! - every sequence number is accounted for: each extended record
//!   received (as the receiver decides which datagrams are extended) is
//!   written, or inside a `gap` marker, or named by an `incomplete`/`cut`
//!   marker (a `+` record joined to the line before is written under that
//!   line's number); no record carries a number the sender never sent;
//! - each stream (the output between two `reset` markers) has no hole
//!   nothing speaks for: the numbers its in-sequence lines and markers
//!   name run from its first to its last without a gap, the reset that
//!   ends it names its last, and no number is written twice in it. Only
//!   lines marked `oos` (a record from before the stream's start that came
//!   after the window began writing) stand outside that run;
//! - no byte is invented: the bytes of the written texts and dictionary
//!   lines are, as a multiset, within the bytes the sender sent (with the
//!   input mapped to text the escaping keeps as it is), and no line is
//!   longer than `max_line_bytes`;
//! - nothing is held or dropped once everything is flushed;
//! - every file written is UTF-8, the last-words captures of a panic or
//!   an oops (text as dmesg shows it) included.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use watchdog::fuzzing::kernel::printk;
use watchdog::fuzzing::kernel::Flag;
use watchdog::fuzzing::udplogger::{Harness, InputFormat, Leftover};

const SENDERS: [&str; 4] = [
    "127.0.0.1:6665",
    "127.0.0.2:6665",
    "127.0.0.1:6666",
    "[::1]:6665",
];

/// Bytes the log writes as they are (printable ASCII but `\`, tab,
/// newline): input mapped into them can be compared byte for byte.
fn alphabet() -> Vec<u8> {
    let mut a: Vec<u8> = (0x20..0x7f).filter(|&b| b != b'\\').collect();
    a.extend_from_slice(b"\t\n");
    a
}

/// What the receiver holds of a sender's unfinished plain line after one
/// datagram, as src/udplogger/assemble.rs keeps it: the tail after the
/// last newline (or all of it added to what was held), less the whole
/// `max`-byte pieces already written as cut lines.
fn plain_pending(held: usize, data: &[u8], max: usize) -> usize {
    let n = match data.iter().rposition(|&b| b == b'\n') {
        Some(i) => data.len() - i - 1,
        None => held + data.len(),
    };
    n % max
}

#[derive(Default)]
struct Sent {
    bytes: Vec<u8>,
    /// Sequence numbers of the datagrams taken as extended records.
    seqs: Vec<u64>,
    /// Those of `+` records: joined to the line before, they are written
    /// under its number.
    joined: Vec<u64>,
    plain_held: usize,
}

/// One stream of a sender's output: what lies between two `reset`
/// markers.
#[derive(Default)]
struct Stream {
    /// Inclusive ranges the in-sequence lines and markers speak for.
    spans: Vec<(u64, u64)>,
    /// Records written out of sequence, and their markers.
    oos: Vec<u64>,
    /// Lines written per number, less the `cut` pieces that continue.
    lines: BTreeMap<u64, i64>,
    /// The `last` of the `reset` that ended it.
    ended_at: Option<u64>,
}

#[derive(Default)]
struct Written {
    bytes: Vec<u8>,
    /// Numbers on record lines.
    seqs: Vec<u64>,
    streams: Vec<Stream>,
}

impl Written {
    fn stream(&mut self) -> &mut Stream {
        if self.streams.is_empty() {
            self.streams.push(Stream::default());
        }
        let n = self.streams.len();
        &mut self.streams[n - 1]
    }
}

fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("watchdog-fuzz-rx-{}", std::process::id()))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir)
        .expect("read the log directory")
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn num(obj: &serde_json::Map<String, Value>, k: &str) -> u64 {
    obj.get(k)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("marker without {k}: {obj:?}"))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (flags, max) = (data[0], 64 + usize::from(data[1]));
    let raw = flags & 8 != 0;
    let format = match flags & 3 {
        1 => InputFormat::Extended,
        2 => InputFormat::Plain,
        _ => InputFormat::Auto,
    };
    let dir = dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the log directory");
    let mut rx = Harness::new(&dir, format, max, flags & 4 != 0).expect("valid settings");
    let alpha = alphabet();
    let mut sent: Vec<Sent> = (0..SENDERS.len()).map(|_| Sent::default()).collect();

    let mut rest = &data[2..];
    while let Some((&c, r)) = rest.split_first() {
        rest = r;
        let who = usize::from(c & 3);
        if (c >> 2) & 3 == 3 {
            // Time passes: every unfinished line and record is written.
            rx.time_passes();
            for s in &mut sent {
                s.plain_held = 0;
            }
            continue;
        }
        if rest.len() < 2 {
            break;
        }
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let mut dgram = rest[2..2 + n].to_vec();
        rest = &rest[2 + n..];
        if !raw {
            for b in &mut dgram {
                if !alpha.contains(b) {
                    *b = alpha[usize::from(*b) % alpha.len()];
                }
            }
        }
        let s = &mut sent[who];
        let ext = match format {
            InputFormat::Plain => None,
            _ if s.plain_held > 0 => None,
            _ => printk::parse(&dgram),
        };
        match ext {
            Some((h, _)) => {
                s.seqs.push(h.seq);
                if h.flag == Flag::More {
                    s.joined.push(h.seq);
                }
            }
            None => s.plain_held = plain_pending(s.plain_held, &dgram, max),
        }
        s.bytes.extend_from_slice(&dgram);
        let addr: SocketAddr = SENDERS[who].parse().expect("an address");
        rx.datagram(addr, &dgram);
    }
    let left = rx.finish();
    let clean = Leftover {
        unwritten: 0,
        dropped: 0,
    };
    assert_eq!(left, clean, "held or dropped after the last flush");

    let mut written: HashMap<String, Written> = HashMap::new();
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    for p in &paths {
        let text = std::fs::read_to_string(p).expect("the log is UTF-8");
        if p.components().any(|c| c.as_os_str() == "last-words") {
            // A sender's last words before a panic or an oops, as dmesg
            // shows them: text (UTF-8), not records.
            continue;
        }
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let obj = v.as_object().expect("one object per line");
            let source = obj["source"].as_str().expect("a source");
            if source == "udplogger" {
                let about = obj["about"].as_str().expect("about").to_string();
                let w = written.entry(about).or_default();
                match obj["marker"].as_str().expect("a marker kind") {
                    "gap" => {
                        let (a, b) = (num(obj, "from"), num(obj, "to"));
                        assert!(a <= b, "gap {a}..{b}: {line}");
                        w.stream().spans.push((a, b));
                    }
                    "reset" => {
                        w.stream().ended_at = Some(num(obj, "last"));
                        w.streams.push(Stream::default());
                    }
                    // Said before the record it speaks for, which follows
                    // (an out-of-sequence one too: sorted out below).
                    "incomplete" => {
                        let q = num(obj, "seq");
                        w.stream().spans.push((q, q));
                    }
                    "cut" => {
                        if let Some(q) = obj.get("seq").and_then(Value::as_u64) {
                            let st = w.stream();
                            st.spans.push((q, q));
                            // A piece that continues on the next line.
                            if obj.get("total").is_none() {
                                *st.lines.entry(q).or_default() -= 1;
                            }
                        }
                    }
                    k => panic!("unexpected marker {k}: {line}"),
                }
                continue;
            }
            let w = written.entry(source.to_string()).or_default();
            let t = obj["text"].as_str().expect("a text");
            if !raw {
                assert!(t.len() <= max, "a line of {} bytes, limit {max}", t.len());
            }
            w.bytes.extend_from_slice(t.as_bytes());
            if let Some(d) = obj.get("dict") {
                for d in d.as_array().expect("dict is an array") {
                    w.bytes
                        .extend_from_slice(d.as_str().expect("a string").as_bytes());
                }
            }
            if let Some(q) = obj.get("seq") {
                let q = q.as_u64().expect("seq is a number");
                w.seqs.push(q);
                let st = w.stream();
                if obj.get("oos").is_some() {
                    assert_eq!(obj["oos"], Value::Bool(true), "{line}");
                    st.oos.push(q);
                } else {
                    st.spans.push((q, q));
                    *st.lines.entry(q).or_default() += 1;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    for (who, s) in sent.iter().enumerate() {
        let empty = Written::default();
        let w = written.get(SENDERS[who]).unwrap_or(&empty);
        if !raw {
            let mut have = [0usize; 256];
            for &b in &s.bytes {
                have[usize::from(b)] += 1;
            }
            for &b in &w.bytes {
                let c = &mut have[usize::from(b)];
                assert!(
                    *c > 0,
                    "{}: byte {b:#04x} written more often than sent",
                    SENDERS[who]
                );
                *c -= 1;
            }
        }
        for q in &w.seqs {
            assert!(
                s.seqs.contains(q),
                "{}: record {q} was never sent",
                SENDERS[who]
            );
        }
        // Every record received is accounted for, in some stream.
        let mut any: BTreeMap<u64, u64> = BTreeMap::new();
        for st in &w.streams {
            for (a, b) in st
                .spans
                .iter()
                .copied()
                .chain(st.oos.iter().map(|&q| (q, q)))
            {
                let e = any.entry(a).or_insert(b);
                *e = (*e).max(b);
            }
        }
        for &q in &s.seqs {
            let covered =
                s.joined.contains(&q) || any.range(..=q).next_back().is_some_and(|(_, &b)| q <= b);
            assert!(covered, "{}: record {q} not accounted for", SENDERS[who]);
        }
        // Markers name only numbers within what was sent.
        if let (Some(&lo), Some(&hi)) = (s.seqs.iter().min(), s.seqs.iter().max()) {
            for &(a, b) in w.streams.iter().flat_map(|st| &st.spans) {
                assert!(
                    lo <= a && b <= hi,
                    "{}: marker spans {a}..={b} outside {lo}..={hi}",
                    SENDERS[who]
                );
            }
        } else {
            assert!(w.seqs.is_empty() && w.streams.iter().all(|st| st.spans.is_empty()));
        }
        // Each stream's in-sequence part has no hole.
        for (k, st) in w.streams.iter().enumerate() {
            let mut spans: BTreeMap<u64, u64> = BTreeMap::new();
            for &(a, b) in &st.spans {
                // An `incomplete` or `cut` marker of an out-of-sequence
                // record speaks for that record only.
                if a == b && st.oos.contains(&a) {
                    continue;
                }
                let e = spans.entry(a).or_insert(b);
                *e = (*e).max(b);
            }
            for (&q, &n) in &st.lines {
                assert!(
                    n <= 1,
                    "{}: record {q} written {n} times in stream {k}",
                    SENDERS[who]
                );
            }
            let (Some(&first), Some(top)) = (spans.keys().next(), spans.values().copied().max())
            else {
                continue;
            };
            // `+` records joined to the line before are written under its
            // number: inside the run, they speak for themselves.
            for &q in &s.joined {
                if first <= q && q <= top {
                    spans.entry(q).or_insert(q);
                }
            }
            let mut next = u128::from(first);
            for (&a, &b) in &spans {
                assert!(
                    u128::from(a) <= next,
                    "{}: stream {k}: records {next}..{a} not accounted for",
                    SENDERS[who]
                );
                next = next.max(u128::from(b) + 1);
            }
            if let Some(last) = st.ended_at {
                assert!(
                    top <= last,
                    "{}: stream {k} wrote {top}, its reset says it ended at {last}",
                    SENDERS[who]
                );
            }
        }
    }
});
