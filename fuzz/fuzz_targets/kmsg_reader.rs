//! The live /dev/kmsg reader (src/collectors/kmsg.rs) behind a fake
//! device: the input is a run of reads, some of them failing with EPIPE
//! (the kernel overwrote records) or EINTR, from a start position the
//! input chooses. The reader must never handle a record at or before
//! the position it resumed after, nor claim a sequence number it was not
//! given; its events must match the schema; and on input shaped like the
//! kernel's, every sequence number skipped is reported `lost`, exactly.
#![no_main]

use std::collections::VecDeque;
use std::io;

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::kmsg::{Drained, Reader, RecordSource, Start};
use watchdog::fuzzing::marker::MAX_GAP;
use watchdog::fuzzing::parse::Framer;
use watchdog_fuzz::check_event;

/// Reads as the input dictates: `\0` ends a read, `\0E` is an EPIPE and
/// `\0I` an EINTR in its place; then EAGAIN, as a drained device says.
struct Fake {
    reads: VecDeque<io::Result<Vec<u8>>>,
    /// Bytes handed to the reader so far.
    consumed: usize,
    /// A read refused (too large): the reader never saw it.
    refused: bool,
}

impl RecordSource for Fake {
    fn read_record(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.reads.pop_front() {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(Err(e)) => Err(e),
            Some(Ok(r)) => {
                // Like the device: a record that does not fit is EINVAL.
                if r.len() > buf.len() {
                    self.refused = true;
                    return Err(io::Error::from_raw_os_error(EINVAL));
                }
                buf[..r.len()].copy_from_slice(&r);
                self.consumed += r.len();
                Ok(r.len())
            }
        }
    }
}

/// Records `lost` between consecutive handled numbers, as the parser
/// counts them from `prev` (the saved position, or nothing).
fn lost_after(mut prev: Option<u64>, seqs: impl Iterator<Item = u64>) -> u64 {
    let mut lost = 0;
    for q in seqs {
        if prev.is_some_and(|p| q <= p) {
            continue;
        }
        if let Some(p) = prev {
            if q - p <= MAX_GAP + 1 {
                lost += q - p - 1;
            }
        }
        prev = Some(q);
    }
    lost
}

const EINVAL: i32 = 22;
const EPIPE: i32 = 32;
const EINTR: i32 = 4;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, data) = data.split_at(9);
    let saved = u64::from_le_bytes(head[1..9].try_into().unwrap_or_default());
    let start = match head[0] % 3 {
        0 => Start::Beginning,
        1 => Start::End,
        _ => Start::After(saved),
    };
    let mut reads = VecDeque::new();
    let mut all = Vec::new();
    for (i, chunk) in data.split(|&b| b == 0).enumerate() {
        if i > 0 && chunk.first() == Some(&b'E') {
            reads.push_back(Err(io::Error::from_raw_os_error(EPIPE)));
        } else if i > 0 && chunk.first() == Some(&b'I') {
            reads.push_back(Err(io::Error::from_raw_os_error(EINTR)));
        }
        all.extend_from_slice(chunk);
        if chunk.is_empty() {
            // A read of 0 bytes is end of file (a FIFO's writer left);
            // /dev/kmsg never gives one.
            continue;
        }
        reads.push_back(Ok(chunk.to_vec()));
        // The device runs dry after each read: one drain per read, so the
        // first record handled can be checked.
        reads.push_back(Err(io::ErrorKind::WouldBlock.into()));
    }
    // Sequence numbers in the input, as the framer reads them: a record
    // may be split across reads (a FIFO), so over the whole stream.
    let mut framer = Framer::new();
    // Only whole lines: an unfinished one waits for the rest. Each with
    // the offset of its newline: the reader handles it once that byte is
    // read.
    let whole = all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut at = 0;
    let mut ends = Vec::new();
    let mut recs = Vec::new();
    for l in all[..whole].split(|&b| b == b'\n') {
        at += l.len() + 1;
        if !l.is_empty() {
            recs.push(framer.frame(l));
            ends.push(at - 1);
        }
    }
    let recs = recs;
    let given: Vec<u64> = recs.iter().filter_map(|r| r.seq).collect();
    // When the input is what the kernel writes (kernel records only, in
    // increasing order, no jump a log buffer could not have lost), every
    // number skipped must come out as a `lost` event, counted exactly.
    let kernel_like = recs.iter().filter(|r| !r.ignore).all(|r| {
        r.seq.is_some() && r.host.is_none() && r.lost.is_none() && r.kernel && !r.boundary
    }) && given
        .windows(2)
        .all(|w| w[0] < w[1] && w[1] - w[0] <= MAX_GAP + 1);
    let saved = match start {
        Start::After(s) => Some(s),
        _ => None,
    };
    let mut expect_lost = lost_after(saved, given.iter().copied());
    let mut src = Fake {
        reads,
        consumed: 0,
        refused: false,
    };
    let mut reader = Reader::new(&start);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // Set when the reader found the saved position past every record it
    // had (impossible in one boot) and gave it up: the daemon then starts
    // as configured, and what counts as lost is no longer from `s`.
    let mut gave_up = false;
    while !src.reads.is_empty() {
        match reader.drain(&mut src, &mut buf, &mut out) {
            Ok(Drained::More | Drained::Empty) => {}
            Ok(Drained::Eof) => break,
            // EINVAL for an oversized read: the reader passes it up.
            Err(_) => {}
        }
        if let Some((s, next)) = reader.take_impossible_start() {
            // Said once, of the saved position, and only when every record
            // read so far lay before it: the newest of them is `next - 1`.
            assert!(!gave_up, "the saved position was given up twice");
            assert_eq!(Some(s), saved, "gave up a position never saved");
            assert!(next <= s, "gave up {s}, yet records reached {next}");
            let read: Vec<u64> = recs
                .iter()
                .zip(&ends)
                .filter(|&(_, &e)| e < src.consumed)
                .filter_map(|(r, _)| r.seq)
                .collect();
            assert_eq!(
                read.iter().max().map(|m| m + 1),
                Some(next),
                "gave up {s}: the records read were {read:?}"
            );
            gave_up = true;
            // From here every record is handled, and counted from nothing
            // (the parser primed with the impossible position is gone).
            let after = recs
                .iter()
                .zip(&ends)
                .filter(|&(_, &e)| e >= src.consumed)
                .filter_map(|(r, _)| r.seq);
            expect_lost = lost_after(None, after);
        }
        if let Some(last) = reader.last_seq {
            assert!(given.contains(&last), "last_seq {last} was never read");
        }
    }
    reader.flush(&mut out);
    if let Start::After(s) = start {
        // Resuming after `s`: a stream of records at or before it, `s`
        // itself among them, is all handled already. (Past the first newer
        // record, a test FIFO may go back; the kernel does not.) A saved
        // position past every record is impossible (a corrupted state
        // file): the reader gives it up and reads what there is.
        if given.iter().all(|&q| q <= s) && given.contains(&s) && !gave_up {
            assert_eq!(reader.last_seq, None, "resumed after {s}");
        }
    }
    let mut lost = 0u64;
    for ev in &out {
        check_event(ev);
        let v: serde_json::Value = serde_json::from_str(&ev.to_json()).expect("JSON");
        if v["kind"] == "lost" {
            lost += v["count"].as_u64().expect("a count");
        }
    }
    if kernel_like && !src.refused {
        assert_eq!(lost, expect_lost, "records lost vs reported");
    }
});
