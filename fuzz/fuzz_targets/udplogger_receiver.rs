//! The whole udplogger receive path (src/udplogger/mod.rs): datagrams
//! from several senders, plain and extended netconsole mixed, through the
//! real [`Receiver`] to its JSON log files in a temporary directory. Then,
//! per sender:
//!
//! - every sequence number is accounted for: each extended record
//!   received (as the receiver decides which datagrams are extended) is
//!   written, or inside a `gap` or `reset` marker, or named by an
//!   `incomplete`/`cut` marker; from the lowest to the highest received
//!   there is no number nothing speaks for, and no record carries a
//!   number the sender never sent;
//! - no byte is invented: the bytes of the written texts and dictionary
//!   lines are, as a multiset, within the bytes the sender sent (with the
//!   input mapped to text the escaping keeps as it is), and no line is
//!   longer than `max_line_bytes`;
//! - nothing is held or dropped once everything is flushed.
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

#[derive(Default)]
struct Written {
    bytes: Vec<u8>,
    seqs: Vec<u64>,
    /// Inclusive ranges markers speak for.
    spans: Vec<(u64, u64)>,
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
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let obj = v.as_object().expect("one object per line");
            let source = obj["source"].as_str().expect("a source");
            if source == "udplogger" {
                let about = obj["about"].as_str().expect("about").to_string();
                let w = written.entry(about).or_default();
                match obj["marker"].as_str().expect("a marker kind") {
                    "gap" => w.spans.push((num(obj, "from"), num(obj, "to"))),
                    "reset" => {
                        let (a, b) = (num(obj, "last"), num(obj, "seq"));
                        w.spans.push((a.min(b), a.max(b)));
                    }
                    "incomplete" => w.seqs.push(num(obj, "seq")),
                    "cut" => {
                        if let Some(q) = obj.get("seq").and_then(Value::as_u64) {
                            w.seqs.push(q);
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
                w.seqs.push(q.as_u64().expect("seq is a number"));
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
        let (Some(&lo), Some(&hi)) = (s.seqs.iter().min(), s.seqs.iter().max()) else {
            assert!(w.seqs.is_empty() && w.spans.is_empty());
            continue;
        };
        for &(a, b) in &w.spans {
            assert!(
                lo <= a && b <= hi,
                "{}: marker spans {a}..={b} outside {lo}..={hi}",
                SENDERS[who]
            );
        }
        // Merge what speaks for a number; it must cover lo..=hi whole.
        let mut spans: BTreeMap<u64, u64> = BTreeMap::new();
        for (a, b) in w
            .spans
            .iter()
            .copied()
            .chain(w.seqs.iter().chain(&s.joined).map(|&q| (q, q)))
        {
            let e = spans.entry(a).or_insert(b);
            *e = (*e).max(b);
        }
        let mut next = u128::from(lo);
        for (&a, &b) in &spans {
            assert!(
                u128::from(a) <= next,
                "{}: records {next}..{a} not accounted for",
                SENDERS[who]
            );
            next = next.max(u128::from(b) + 1);
        }
        assert!(
            next > u128::from(hi),
            "{}: records {next}..={hi} not accounted for",
            SENDERS[who]
        );
    }
});
