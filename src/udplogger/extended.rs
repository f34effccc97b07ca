//! Extended netconsole (`netconsole=+...`, Linux 4.4+): per-sender
//! reassembly of records. Pure: no I/O.
//!
//! Each datagram carries one printk record (or a piece of one, with
//! `ncfrag=`); its header is parsed by [`crate::kernel::printk`], the one
//! parser `scan` uses too. Here the pieces become records, continued lines
//! are joined, and holes and restarts in the sequence become markers
//! ([`crate::marker::Body`]).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::kernel::printk::{split_body, Flag, Header};
use crate::marker::{Body, MAX_GAP};

/// What a record carried, for the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The header's PRI (facility × 8 + level), as the kernel sent it.
    pub level: u32,
    pub seq: u64,
    pub ts_usec: u64,
    /// Written out of sequence: a record from before the stream's start
    /// that arrived after the window had begun writing (JSON `oos`).
    pub oos: bool,
    /// `ts_usec` as text, formatted once for the file and the last-words
    /// ring.
    time: KernelTime,
}

impl Meta {
    pub fn new(level: u32, seq: u64, ts_usec: u64) -> Meta {
        Meta {
            level,
            seq,
            ts_usec,
            oos: false,
            time: KernelTime::of(ts_usec),
        }
    }

    /// `[ 5309.104520] `: the kernel time as dmesg prints it.
    pub fn time(&self) -> &[u8] {
        self.time.as_bytes()
    }
}

/// A kernel time as dmesg and the console print it, `[%5lu.%06lu] `: 24
/// bytes at most (a `u64` of microseconds has 14 digits of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelTime {
    text: [u8; 24],
    len: u8,
}

impl KernelTime {
    pub fn of(ts_usec: u64) -> KernelTime {
        // By hand, not `write!`: this runs for every extended record.
        // The seconds, right-aligned in at least five columns, written
        // from their last digit back.
        let secs = ts_usec / 1_000_000;
        let digits = secs.checked_ilog10().map_or(1, |d| d as usize + 1);
        let w = digits.max(5);
        let mut text = [b' '; 24];
        text[0] = b'[';
        let mut v = secs;
        for at in (w + 1 - digits..=w).rev() {
            // A digit: the cast cannot truncate.
            text[at] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        text[1 + w] = b'.';
        text[2 + w..8 + w].copy_from_slice(&super::clock::six_digits(ts_usec % 1_000_000));
        text[8 + w] = b']';
        KernelTime {
            text,
            // At most 24 (see the type).
            len: u8::try_from(10 + w).unwrap_or(24),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.text[..usize::from(self.len)]
    }
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
    /// A datagram that added nothing: a record or fragment already held or
    /// written (two netconsole targets, a retransmission). Dropped.
    Duplicate,
    /// A record that arrived after the window had already declared it
    /// missing (its `gap` marker is written), or written it. Dropped.
    Late,
}

/// The reorder window (`udplogger.reorder_records`, `reorder_ms`): how
/// far ahead of the next expected record, and how long, records are held
/// while an earlier one may still arrive (netconsd's ncrx: `nr_slots`,
/// `oos_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub records: u64,
    pub wait: Duration,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            records: 512,
            wait: Duration::from_millis(1000),
        }
    }
}

/// Printk timestamps of one boot may step back a little between CPUs
/// (the time is taken before the sequence number is); a step back larger
/// than this is another boot.
const TS_SKEW_USEC: u64 = 1_000_000;

/// One record held in the window: whole, or being assembled from
/// `ncfrag=` pieces.
#[derive(Debug)]
struct Slot {
    meta: Meta,
    flag: Flag,
    /// The body length the kernel announced (fragmented records only).
    total: Option<usize>,
    /// At most `max_line` bytes of the body: the rest is never held.
    buf: Vec<u8>,
    /// Byte ranges of `buf` received, sorted, disjoint, not touching.
    have: Vec<(usize, usize)>,
    /// First byte where two pieces disagreed, or where a piece of another
    /// shape (another length, another header) arrived: bytes from here on
    /// are not written, whichever piece they came from.
    conflict: Option<usize>,
    since: Instant,
}

impl Slot {
    fn covered(&self) -> usize {
        self.have.iter().map(|(a, b)| b - a).sum()
    }

    fn complete(&self) -> bool {
        self.covered() >= self.buf.len()
    }

    /// Bytes usable from the start: received without a hole and without
    /// a disagreement.
    fn usable(&self) -> usize {
        let prefix = match self.have.first() {
            Some(&(0, b)) => b,
            _ => 0,
        };
        prefix.min(self.conflict.unwrap_or(usize::MAX))
    }

    fn conflict_at(&mut self, at: usize) {
        self.conflict = Some(self.conflict.map_or(at, |c| c.min(at)));
    }

    /// Merges one piece at `off`. True when it added bytes.
    fn merge(&mut self, off: usize, data: &[u8]) -> bool {
        let cap = self.buf.len();
        if off >= cap {
            return false;
        }
        let end = off + data.len().min(cap - off);
        let mut added = false;
        let mut pos = off;
        // Walk the held ranges that meet [off, end): compare where they
        // overlap, copy into the holes between them.
        let mut i = 0;
        while pos < end {
            let next = self.have.get(i).copied();
            match next {
                Some((_, b)) if b <= pos => i += 1,
                Some((a, b)) if a <= pos => {
                    let stop = b.min(end);
                    if let Some(d) = (pos..stop).find(|&k| self.buf[k] != data[k - off]) {
                        self.conflict_at(d);
                    }
                    pos = stop;
                    i += 1;
                }
                other => {
                    let stop = other.map_or(end, |(a, _)| a.min(end));
                    self.buf[pos..stop].copy_from_slice(&data[pos - off..stop - off]);
                    self.have.insert(i, (pos, stop));
                    added = true;
                    pos = stop;
                    i += 1;
                }
            }
        }
        // Join neighbours, in place.
        let mut kept = 0usize;
        for r in 0..self.have.len() {
            let (a, b) = self.have[r];
            match kept.checked_sub(1).map(|k| &mut self.have[k]) {
                Some(last) if last.1 >= a => last.1 = last.1.max(b),
                _ => {
                    self.have[kept] = (a, b);
                    kept += 1;
                }
            }
        }
        self.have.truncate(kept);
        added
    }
}

/// Extended-format state of one sender: the reorder window, the records
/// recently written (to know a duplicate from a reboot), a continued line.
///
/// A pure state machine in the manner of netconsd's ncrx: the caller feeds
/// datagrams with the time ([`feed`](Self::feed)), calls
/// [`tick`](Self::tick) at [`deadline`](Self::deadline), and gets records
/// in sequence order and markers through `emit`.
#[derive(Debug, Default)]
pub struct ExtState {
    window: Window,
    /// The next sequence number to write; `None` before the first record
    /// and after a reset.
    next: Option<u64>,
    /// Timestamp of the last record written.
    last_ts: u64,
    /// The last sequence number written or declared missing.
    last: Option<u64>,
    /// The first one (the stream's start): nothing before it was written
    /// in order or declared missing, so a record numbered before it that
    /// arrives now is no latecomer to a gap (see [`Behind::Early`]).
    start: Option<u64>,
    /// Records written out of sequence (before `start`), newest last, at
    /// most `window.records`: the number, time and hash of each, so that a
    /// copy of one is known as a duplicate.
    early: VecDeque<(u64, u64, u64)>,
    /// When the last datagram from this sender arrived.
    last_arrival: Option<Instant>,
    /// The kernel release the sender prefixes (netconsole `release`).
    release: Option<String>,
    held: BTreeMap<u64, Slot>,
    held_bytes: usize,
    /// The `history.len()` sequence numbers before `next`: the timestamp
    /// and a hash of each record written, `None` for those declared
    /// missing.
    history: VecDeque<Option<(u64, u64)>>,
    /// A continued line (`c` then `+` records, kernels before 5.10).
    cont: Option<(Meta, Vec<u8>)>,
    /// Records declared missing and not yet said: a hole that leaves the
    /// window one record at a time (the window moves by one per record
    /// arriving) is one `gap` marker, written before the next record.
    gap: Option<(u64, u64)>,
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Tells a repeated record from another record under the same number;
/// not security relevant (a sender can forge anything anyway). Eight
/// bytes a step (FxHash's multiply-rotate), with the length mixed in:
/// a byte-at-a-time hash cost more than the rest of a record's handling.
fn hash(b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = step(0, as_u64(b.len()));
    let mut words = b.chunks_exact(8);
    for w in words.by_ref() {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = step(h, u64::from_le_bytes(a));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        h = step(h, u64::from_le_bytes(a));
    }
    h
}

impl ExtState {
    pub fn new(window: Window) -> ExtState {
        ExtState {
            window: Window {
                records: window.records.max(1),
                wait: window.wait,
            },
            ..ExtState::default()
        }
    }

    /// Bytes held: records waiting in the window, a continued line.
    pub fn pending(&self) -> usize {
        self.held_bytes + self.cont.as_ref().map_or(0, |c| c.1.len())
    }

    /// The kernel release the sender last prefixed its records with.
    pub fn release(&self) -> Option<&str> {
        self.release.as_deref()
    }

    /// When [`tick`](Self::tick) has something to do: the oldest held
    /// record's wait runs out.
    #[cfg(test)]
    pub fn deadline(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|s| s.since)
            .min()
            .map(|t| t + self.window.wait)
    }

    /// Handles one datagram at `now`. `max_line` bounds every line
    /// written: a reassembled record keeps its first `max_line` bytes (the
    /// rest is never held), a longer record or continued line is written
    /// in `max_line` pieces, each followed by a `cut` marker.
    pub fn feed(
        &mut self,
        h: &Header<'_>,
        body: &[u8],
        max_line: usize,
        now: Instant,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        let max = max_line.max(1);
        // Whether the sender was quiet before this record: asked only for
        // a record behind the window's front (time arithmetic per record
        // is a cost the common case does without).
        let before = self.last_arrival.replace(now);
        let wait = self.window.wait;
        let quiet = || before.is_none_or(|t| now.saturating_duration_since(t) >= wait);
        let meta = Meta::new(h.pri, h.seq, h.ts_usec);
        let seq = h.seq;
        // Evidence of a reboot: another kernel release.
        if let Some(r) = h.release {
            if self.release.as_deref().is_some_and(|old| old != r) {
                self.reset(seq, max, emit);
            }
            if self.release.as_deref() != Some(r) {
                self.release = Some(r.to_string());
            }
        }
        let next = match self.next {
            Some(n) => n,
            None => {
                self.next = Some(seq);
                seq
            }
        };
        if seq < next {
            let quiet = quiet();
            // Nothing written yet, the sender was quiet, and this record is
            // from well before those held: not reordering but a new boot
            // (the receiver had not got round to writing the old one).
            let new_boot = quiet
                && self.last.is_none()
                && self
                    .held
                    .values()
                    .map(|s| s.meta.ts_usec)
                    .min()
                    .is_some_and(|t| h.ts_usec.saturating_add(TS_SKEW_USEC) < t);
            if new_boot {
                self.reset(seq, max, emit);
            } else if self.last.is_none() && next - seq < self.window.records {
                // Nothing written yet since the start (or a reset): the
                // first record to arrive need not be the first sent. The
                // window's front moves back; nothing is written before the
                // front's wait runs out.
                self.next = Some(seq);
            } else {
                match self.behind(seq, h.ts_usec, body, h.frag.is_some(), quiet) {
                    Behind::Duplicate => return emit(Event::Duplicate),
                    Behind::Late => return emit(Event::Late),
                    Behind::Early => return self.write_early(h, meta, body, max, emit),
                    Behind::Reset => self.reset(seq, max, emit),
                }
            }
        } else if seq - next > MAX_GAP || h.ts_usec.saturating_add(TS_SKEW_USEC) < self.last_ts {
            // Too far ahead to be a loss, or later in the sequence but
            // earlier in time: the sequence does not continue.
            self.reset(seq, max, emit);
        } else if seq - next >= self.window.records {
            // Past the window's far end: the window moves so that `seq`
            // is its last slot; what it leaves behind is written or missing.
            let base = seq - self.window.records + 1;
            self.advance_to(base, max, emit);
        }
        if h.frag.is_none() && self.held.is_empty() && self.last.is_some() && self.next == Some(seq)
        {
            // The common case: the record the window waits for, whole, and
            // nothing held. Written at once, never stored.
            return self.write(meta, h.flag, body, max, emit);
        }
        self.put(h, meta, body, max, now, emit);
        self.deliver(max, emit);
    }

    /// Declares missing what waited too long: the holes before the oldest
    /// held record whose wait ran out, and a fragmented record whose
    /// pieces stopped coming.
    pub fn tick(&mut self, now: Instant, max_line: usize, emit: &mut impl FnMut(Event<'_>)) {
        let max = max_line.max(1);
        let wait = self.window.wait;
        while let Some(due) = self
            .held
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.since) >= wait)
            .map(|(q, _)| *q)
            .next()
        {
            // Everything before `due` is written or missing now; `due`
            // itself goes too (whole or incomplete). Taking its slot out
            // makes every round progress, up to u64::MAX.
            self.advance_to(due, max, emit);
            if let Some(slot) = self.held.remove(&due) {
                self.write_slot(slot, max, emit);
            }
            self.deliver(max, emit);
        }
    }

    /// Writes out whatever is held (eviction, memory cap, shutdown): the
    /// window in order with its holes as gaps, then a held continued line.
    pub fn flush(&mut self, max_line: usize, emit: &mut impl FnMut(Event<'_>)) {
        let max = max_line.max(1);
        self.drain(max, emit);
        self.say_gap(emit);
        self.flush_cont(emit);
    }

    /// Writes every held record in order, the holes between as gaps.
    fn drain(&mut self, max: usize, emit: &mut impl FnMut(Event<'_>)) {
        while let Some(q) = self.held.keys().next().copied() {
            let next = self.next.unwrap_or(q);
            if q > next {
                self.declare(next, q - 1, emit);
            }
            if let Some(slot) = self.held.remove(&q) {
                self.write_slot(slot, max, emit);
            }
        }
    }

    /// What a record numbered before `next` is.
    fn behind(&self, seq: u64, ts: u64, body: &[u8], piece: bool, quiet: bool) -> Behind {
        let next = self.next.unwrap_or(0);
        let back = next - seq;
        if back > MAX_GAP {
            // As for a jump forward: no copy arrives this far behind.
            return Behind::Reset;
        }
        let len = as_u64(self.history.len());
        if back <= len {
            let i = usize::try_from(len - back).unwrap_or(0);
            return match self.history.get(i).copied().flatten() {
                // A piece of a fragmented record can only match its time.
                // The same number, time and text recur in a new boot only
                // for records from before the clock ran (time 0): after
                // the sender was quiet, those are the first records of a
                // new (short) boot, not copies.
                Some((t, hsh)) if t == ts && (piece || hsh == hash(body)) && !(quiet && t == 0) => {
                    Behind::Duplicate
                }
                Some(_) => Behind::Reset,
                None => Behind::Late,
            };
        }
        // Older than the history. In this boot its time would be no later
        // than the oldest remembered record's; a sender that went quiet
        // and starts again further back in both number and time rebooted.
        let oldest = self.history.iter().flatten().map(|x| x.0).next();
        if oldest.is_none() {
            // Nothing of this stream was written yet, and this record is
            // further back than the window reaches: no gap was ever
            // written for it, so it cannot be a latecomer to drop. It
            // starts the stream again (what is held is written first).
            return Behind::Reset;
        }
        if oldest.is_some_and(|o| ts > o.saturating_add(TS_SKEW_USEC))
            || (quiet && ts.saturating_add(TS_SKEW_USEC) < self.last_ts)
        {
            return Behind::Reset;
        }
        match self.start {
            // Before the stream's start: the window waited `wait` for the
            // records before its first and wrote on without them, but no
            // gap marker speaks for them; dropping this one would lose it
            // silently. Within the window's reach of the start it is a
            // latecomer (written now, out of sequence, as netconsd's ncrx
            // passes on an `oos` message); further back it is not
            // reordering but another stream.
            Some(s) if seq < s => {
                let copy = self.early.iter().find(|e| e.0 == seq);
                match copy {
                    Some(&(_, t, hsh)) if t == ts && (piece || hsh == hash(body)) => {
                        Behind::Duplicate
                    }
                    _ if s - seq < self.window.records => Behind::Early,
                    _ => Behind::Reset,
                }
            }
            // Between the start and the history: written or declared
            // missing (a gap marker said so) long ago.
            _ => Behind::Late,
        }
    }

    /// Writes a record from before the stream's start as it arrives,
    /// outside the window's order (its JSON `seq` tells where it
    /// belongs). A piece of a fragmented one is written as far as it
    /// goes from the record's start, after an `incomplete` marker: its
    /// other pieces, if they come, are written the same way.
    fn write_early(
        &mut self,
        h: &Header<'_>,
        meta: Meta,
        body: &[u8],
        max: usize,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        let body = match h.frag {
            Some((off, total)) => {
                let got = if off == 0 { body.len().min(total) } else { 0 };
                emit(Event::Marker(Body::Incomplete {
                    seq: meta.seq,
                    got: as_u64(got),
                    total: as_u64(total),
                }));
                &body[..got]
            }
            None => {
                self.early.push_back((meta.seq, meta.ts_usec, hash(body)));
                while as_u64(self.early.len()) > self.window.records {
                    self.early.pop_front();
                }
                body
            }
        };
        let meta = Meta { oos: true, ..meta };
        // A line of its own: a continued line held for the window's order
        // is not this record's.
        let (text, dict) = split_body(body);
        emit_line(meta, text, dict_of(body, text, dict), max, emit);
    }

    /// The sequence restarted at `seq`: what is held is written (its holes
    /// as gaps), then one `reset` marker, and the window starts again.
    fn reset(&mut self, seq: u64, max: usize, emit: &mut impl FnMut(Event<'_>)) {
        let Some(next) = self.next else {
            return;
        };
        self.drain(max, emit);
        self.say_gap(emit);
        self.flush_cont(emit);
        let last = self.last.unwrap_or(next.saturating_sub(1));
        emit(Event::Marker(Body::Reset { last, seq }));
        self.next = Some(seq);
        self.last = None;
        self.start = None;
        self.early.clear();
        self.history.clear();
        self.last_ts = 0;
    }

    /// Stores a record or a piece of one in its slot.
    fn put(
        &mut self,
        h: &Header<'_>,
        meta: Meta,
        body: &[u8],
        max: usize,
        now: Instant,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        let (off, total, piece) = match h.frag {
            Some((off, total)) => (off, Some(total), body),
            None => (0, None, body),
        };
        let cap = match total {
            Some(t) => t.min(max),
            // A record in one datagram is kept whole (at most 64 KiB) and
            // cut into `max`-byte lines when written.
            None => body.len(),
        };
        let seq = meta.seq;
        if let Some(slot) = self.held.get_mut(&seq) {
            let before = slot.buf.len();
            if slot.total != total || slot.meta != meta || slot.flag != h.flag {
                // Another shape under the same number: keep what is
                // consistent, write it as incomplete.
                slot.conflict_at(0);
                return;
            }
            if !slot.merge(off, piece) {
                emit(Event::Duplicate);
            }
            self.held_bytes = self.held_bytes + slot.buf.len() - before;
            return;
        }
        let slot = if total.is_none() {
            // A whole record (most of what a new sender's window holds
            // while its start settles): its bytes as they came, one range,
            // nothing to merge.
            Slot {
                meta,
                flag: h.flag,
                total,
                buf: body.to_vec(),
                have: if body.is_empty() {
                    Vec::new()
                } else {
                    vec![(0, body.len())]
                },
                conflict: None,
                since: now,
            }
        } else {
            let mut slot = Slot {
                meta,
                flag: h.flag,
                total,
                buf: vec![0; cap],
                have: Vec::new(),
                conflict: None,
                since: now,
            };
            slot.merge(off, piece);
            slot
        };
        self.held_bytes += slot.buf.len();
        self.held.insert(seq, slot);
    }

    /// Writes the complete records at the front of the window (once the
    /// front is settled: something was written or declared missing).
    fn deliver(&mut self, max: usize, emit: &mut impl FnMut(Event<'_>)) {
        if self.last.is_none() {
            return;
        }
        while let Some(next) = self.next {
            match self.held.get(&next) {
                // Complete, or every byte came but some disagreed: it is
                // written now (then with its `incomplete` marker).
                Some(s) if s.complete() => {}
                _ => return,
            }
            if let Some(slot) = self.held.remove(&next) {
                self.write_slot(slot, max, emit);
            }
        }
    }

    /// Moves the front of the window to `base`: held records before it are
    /// written (incomplete ones with their marker), holes become gaps.
    fn advance_to(&mut self, base: u64, max: usize, emit: &mut impl FnMut(Event<'_>)) {
        let Some(mut next) = self.next else {
            return;
        };
        while next < base {
            match self.held.keys().next().copied().filter(|&q| q < base) {
                Some(q) if q == next => {
                    if let Some(slot) = self.held.remove(&q) {
                        self.write_slot(slot, max, emit);
                    }
                }
                found => {
                    // A hole from `next` to the next held record (or to
                    // the new base).
                    let to = found.unwrap_or(base) - 1;
                    self.declare(next, to, emit);
                }
            }
            next = self.next.unwrap_or(base);
        }
    }

    /// Records `from..=to` are missing: said with the next record written
    /// (or at a flush or reset), merged with a hole just before them.
    fn declare(&mut self, from: u64, to: u64, emit: &mut impl FnMut(Event<'_>)) {
        match self.gap {
            Some((a, b)) if b.checked_add(1) == Some(from) => self.gap = Some((a, to)),
            _ => {
                self.say_gap(emit);
                self.gap = Some((from, to));
            }
        }
        self.remember_missing(to - from + 1);
        self.next = Some(to.saturating_add(1));
        self.start.get_or_insert(from);
        self.last = Some(to);
    }

    fn say_gap(&mut self, emit: &mut impl FnMut(Event<'_>)) {
        if let Some((from, to)) = self.gap.take() {
            emit(Event::Marker(Body::Gap { from, to }));
        }
    }

    fn remember(&mut self, entry: Option<(u64, u64)>) {
        self.history.push_back(entry);
        while as_u64(self.history.len()) > self.window.records {
            self.history.pop_front();
        }
    }

    fn remember_missing(&mut self, n: u64) {
        if n >= self.window.records {
            self.history.clear();
        }
        for _ in 0..n.min(self.window.records) {
            self.remember(None);
        }
    }

    /// Writes one record out of the window (it is `next`).
    fn write_slot(&mut self, slot: Slot, max: usize, emit: &mut impl FnMut(Event<'_>)) {
        self.say_gap(emit);
        self.held_bytes -= slot.buf.len();
        let Slot {
            meta,
            flag,
            total,
            buf,
            ..
        } = &slot;
        let whole = slot.complete() && slot.conflict.is_none();
        let body: &[u8] = if whole {
            if let Some(t) = *total {
                if t > buf.len() {
                    emit(Event::Marker(Body::Cut {
                        seq: Some(meta.seq),
                        kept: as_u64(buf.len()),
                        total: Some(as_u64(t)),
                    }));
                }
            }
            buf
        } else {
            // Pieces missing or in disagreement: what is written is the
            // part that arrived whole from the start, nothing invented.
            let usable = slot.usable();
            emit(Event::Marker(Body::Incomplete {
                seq: meta.seq,
                got: as_u64(usable),
                total: as_u64(total.unwrap_or(buf.len())),
            }));
            &buf[..usable]
        };
        self.write(*meta, *flag, body, max, emit);
    }

    /// Writes the record at the window's front (`next`), its text whole
    /// or as much as arrived, and moves the front past it.
    fn write(
        &mut self,
        meta: Meta,
        flag: Flag,
        body: &[u8],
        max: usize,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        self.say_gap(emit);
        let h = hash(body);
        self.record(meta, flag, body, max, emit);
        self.remember(Some((meta.ts_usec, h)));
        self.next = Some(meta.seq.saturating_add(1));
        self.start.get_or_insert(meta.seq);
        self.last = Some(meta.seq);
        self.last_ts = meta.ts_usec;
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

    fn record(
        &mut self,
        meta: Meta,
        flag: Flag,
        body: &[u8],
        max: usize,
        emit: &mut impl FnMut(Event<'_>),
    ) {
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
                emit_line(meta, text, dict_of(body, text, dict), max, emit);
            }
        }
    }
}

/// What a record numbered before the window's front is.
enum Behind {
    Duplicate,
    Late,
    /// Before the stream's start, near it: written out of sequence.
    Early,
    Reset,
}

/// The dictionary lines [`split_body`] found after `text` in `body`:
/// none to collect (and no iterator to run) when nothing follows the
/// text but its newline, as with nearly every record.
fn dict_of<'a>(body: &[u8], text: &[u8], dict: impl Iterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    if body.len() <= text.len() + 1 {
        Vec::new()
    } else {
        dict.collect()
    }
}

/// One record's line: `max`-byte pieces, each but the last followed by
/// its `cut` marker, the dictionary with the last.
fn emit_line(
    meta: Meta,
    mut text: &[u8],
    dict: Vec<&[u8]>,
    max: usize,
    emit: &mut impl FnMut(Event<'_>),
) {
    while text.len() > max {
        cut_piece(meta, &text[..max], emit);
        text = &text[max..];
    }
    emit(Event::Record { meta, text, dict });
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

    #[test]
    fn kernel_time_is_written_as_dmesg_does() {
        let push = |b: &mut Vec<u8>, t: u64| b.extend_from_slice(KernelTime::of(t).as_bytes());
        let mut b = Vec::new();
        push(&mut b, 5_309_104_520);
        push(&mut b, 12_000_001);
        push(&mut b, 123_456_000_000);
        push(&mut b, 0);
        push(&mut b, u64::MAX);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "[ 5309.104520] [   12.000001] [123456.000000] [    0.000000] [18446744073709.551615] "
        );
        // Every width of the seconds, and the edges of each: as the
        // kernel's `[%5lu.%06lu] `.
        let mut p = 1u64;
        for _ in 0..20 {
            for t in [
                p - 1,
                p,
                p.saturating_add(1),
                p.saturating_mul(7).saturating_add(999_999),
            ] {
                let mut b = Vec::new();
                push(&mut b, t);
                let want = format!("[{:5}.{:06}] ", t / 1_000_000, t % 1_000_000);
                assert_eq!(String::from_utf8(b).unwrap(), want);
            }
            p = p.saturating_mul(10);
        }
    }

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
        Dup,
        Late,
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
            Event::Duplicate => E::Dup,
            Event::Late => E::Late,
        }
    }

    /// Datagrams and time in, events out: the state machine alone.
    struct Rx {
        st: ExtState,
        t0: Instant,
        now: Instant,
        max: usize,
        out: Vec<E>,
    }

    impl Rx {
        fn new() -> Rx {
            Rx::with(Window::default(), 65536)
        }

        fn with(w: Window, max: usize) -> Rx {
            let t0 = Instant::now();
            Rx {
                st: ExtState::new(w),
                t0,
                now: t0,
                max,
                out: Vec::new(),
            }
        }

        /// Moves the clock to `ms` after the start and ticks.
        fn at(&mut self, ms: u64) -> &mut Rx {
            self.now = self.t0 + Duration::from_millis(ms);
            let Rx {
                st, now, max, out, ..
            } = self;
            st.tick(*now, *max, &mut |e| out.push(conv(e)));
            self
        }

        fn send(&mut self, dgrams: &[&[u8]]) -> &mut Rx {
            for d in dgrams {
                let (h, body) = parse(d).unwrap_or_else(|| panic!("not extended: {d:?}"));
                let Rx {
                    st, now, max, out, ..
                } = self;
                st.feed(&h, body, *max, *now, &mut |e| out.push(conv(e)));
            }
            self
        }

        fn flush(&mut self) -> &mut Rx {
            let Rx { st, max, out, .. } = self;
            st.flush(*max, &mut |e| out.push(conv(e)));
            self
        }

        fn take(&mut self) -> Vec<E> {
            std::mem::take(&mut self.out)
        }
    }

    fn r(seq: u64, text: &str) -> E {
        E::R(seq, text.into(), vec![])
    }

    fn rec(seq: u64, ts: u64, text: &str) -> Vec<u8> {
        format!("6,{seq},{ts},-;{text}\n").into_bytes()
    }

    #[test]
    fn reordered_records_are_written_in_order_without_a_marker() {
        // The case: 10, 12, 11, 13 once made a gap, a false reset
        // and a second gap.
        let mut rx = Rx::new();
        let d: Vec<Vec<u8>> = [10, 12, 11, 13]
            .iter()
            .map(|&q| rec(q, q * 1000, &format!("r{q}")))
            .collect();
        let d: Vec<&[u8]> = d.iter().map(Vec::as_slice).collect();
        rx.send(&d).at(5000).flush();
        assert_eq!(
            rx.take(),
            [r(10, "r10"), r(11, "r11"), r(12, "r12"), r(13, "r13")]
        );
        assert_eq!(rx.st.pending(), 0);
    }

    #[test]
    fn duplicates_are_dropped_and_counted_never_written_twice() {
        let mut rx = Rx::new();
        let (a, b, c) = (rec(10, 1, "a"), rec(11, 2, "b"), rec(12, 3, "c"));
        rx.send(&[&a]).at(1000);
        rx.send(&[&b, &b, &a, &c, &c]).at(5000).flush();
        assert_eq!(
            rx.take(),
            [r(10, "a"), r(11, "b"), E::Dup, E::Dup, r(12, "c"), E::Dup]
        );
        // Duplicates of records still held in the window. (At the start
        // of a stream the first records wait: an earlier one may come.)
        let mut rx = Rx::new();
        rx.send(&[&b, &c, &c, &b, &a]);
        assert_eq!(rx.take(), [E::Dup, E::Dup]);
        rx.at(1000);
        assert_eq!(rx.take(), [r(10, "a"), r(11, "b"), r(12, "c")]);
    }

    #[test]
    fn fragments_are_reassembled_with_dictionary() {
        let mut rx = Rx::new();
        rx.send(&[
            b"6,10,1,-,ncfrag=0/22;hello, ",
            b"6,10,1,-,ncfrag=7/22;world\n SUBSYS",
            b"6,10,1,-,ncfrag=20/22;=x",
        ])
        .at(1000);
        // body "hello, world\n SUBSYS=x" is 22 bytes
        assert_eq!(
            rx.take(),
            [E::R(10, "hello, world".into(), vec!["SUBSYS=x".into()])]
        );
        assert_eq!(rx.st.pending(), 0);
    }

    #[test]
    fn a_fragment_seen_twice_is_used_once_and_order_does_not_matter() {
        let mut rx = Rx::new();
        rx.send(&[
            b"6,10,1,-,ncfrag=7/22;world\n SUBSYS",
            b"6,10,1,-,ncfrag=7/22;world\n SUBSYS",
            b"6,10,1,-,ncfrag=20/22;=x",
        ]);
        // Two copies of the middle piece do not make the record complete:
        // the first 7 bytes are still missing.
        assert_eq!(rx.take(), [E::Dup]);
        rx.send(&[
            b"6,10,1,-,ncfrag=0/22;hello, ",
            b"6,10,1,-,ncfrag=0/22;hello, ",
        ]);
        assert_eq!(rx.take(), [E::Dup]);
        rx.at(1000);
        assert_eq!(
            rx.take(),
            [E::R(10, "hello, world".into(), vec!["SUBSYS=x".into()])]
        );
        // Late copies of a record already written.
        rx.send(&[b"6,10,1,-,ncfrag=20/22;=x", b"6,11,2,-;next\n"]);
        assert_eq!(rx.take(), [E::Dup, r(11, "next")]);
    }

    #[test]
    fn inconsistent_overlap_is_written_incomplete_without_invented_bytes() {
        let mut rx = Rx::new();
        rx.send(&[b"6,7,0,-,ncfrag=0/10;abcde", b"6,7,0,-,ncfrag=3/10;XXfghij"])
            .at(1000);
        // Every byte is covered, but bytes 3 and 4 came twice, differently:
        // only the three before them are known.
        assert_eq!(rx.take(), [E::Inc(7, 3, 10), r(7, "abc")]);
        rx.send(&[&rec(8, 1, "next")]);
        assert_eq!(rx.take(), [r(8, "next")]);
    }

    #[test]
    fn a_real_gap_is_one_marker_after_the_window_waited() {
        let mut rx = Rx::new();
        rx.send(&[&rec(1, 1, "a")]).at(1000);
        assert_eq!(rx.take(), [r(1, "a")]);
        rx.send(&[&rec(2, 2, "b"), &rec(5, 5, "c")]);
        assert_eq!(rx.take(), [r(2, "b")]);
        rx.at(1999);
        assert_eq!(rx.take(), []);
        assert_eq!(rx.st.deadline(), Some(rx.t0 + Duration::from_secs(2)));
        rx.at(2000);
        assert_eq!(rx.take(), [E::Gap(3, 4), r(5, "c")]);
        assert_eq!(rx.st.deadline(), None);
        // The missing record turning up afterwards is late: not written,
        // and no reset.
        rx.at(2100).send(&[&rec(3, 3, "late"), &rec(6, 6, "d")]);
        assert_eq!(rx.take(), [E::Late, r(6, "d")]);
    }

    #[test]
    fn the_window_moving_past_a_hole_declares_it() {
        let w = Window {
            records: 4,
            wait: Duration::from_secs(60),
        };
        let mut rx = Rx::with(w, 65536);
        rx.send(&[
            &rec(1, 1, "a"),
            &rec(3, 3, "c"),
            &rec(4, 4, "d"),
            &rec(9, 9, "i"),
        ]);
        // 9 needs the window at 6..=9: 2 is missing, 3 and 4 are written,
        // 5 is missing; 6..8 may still come.
        // (5's marker is written with the next record.)
        assert_eq!(rx.take(), [r(1, "a"), E::Gap(2, 2), r(3, "c"), r(4, "d")]);
        rx.send(&[&rec(7, 7, "g"), &rec(6, 6, "f"), &rec(8, 8, "h")]);
        assert_eq!(
            rx.take(),
            [E::Gap(5, 5), r(6, "f"), r(7, "g"), r(8, "h"), r(9, "i")]
        );
        // A hole of several records leaving the window one record at a
        // time (netconsole's replay losing a few) is one marker.
        let mut rx = Rx::with(w, 65536);
        rx.send(&[&rec(1, 1, "a")]).at(1000);
        for q in (2..5).chain(8..20) {
            rx.send(&[&rec(q, q, "x")]);
        }
        rx.flush();
        let gaps: Vec<E> = rx
            .take()
            .into_iter()
            .filter(|e| matches!(e, E::Gap(..)))
            .collect();
        assert_eq!(gaps, [E::Gap(5, 7)]);
    }

    #[test]
    fn a_reboot_is_one_reset_and_one_late_datagram_is_none() {
        let mut rx = Rx::new();
        for q in 100..110 {
            rx.send(&[&rec(q, 5_000_000_000 + q, "old")]);
        }
        rx.at(1000);
        assert_eq!(rx.take().len(), 10);
        // A late record from before the stream's start (the receiver
        // started at 100) while the sender is talking: written out of
        // sequence, no reset.
        rx.send(&[
            &rec(110, 5_000_000_110, "new"),
            &rec(3, 4_000_000_000, "stale"),
        ]);
        assert_eq!(rx.take(), [r(110, "new"), r(3, "stale")]);
        // The sender reboots: quiet, then numbering and time start over
        // (its first two records swapped on the way).
        rx.at(30_000)
            .send(&[&rec(1, 1200, "Command line"), &rec(0, 0, "Linux version")])
            .at(31_000);
        assert_eq!(
            rx.take(),
            [
                E::Reset(110, 1),
                r(0, "Linux version"),
                r(1, "Command line")
            ]
        );
        // A reboot before the receiver wrote anything of the old boot (its
        // window had not ticked yet).
        let mut rx2 = Rx::new();
        rx2.send(&[
            &rec(100, 5_000_000_000, "old"),
            &rec(104, 5_000_000_004, "old"),
        ]);
        rx2.now = rx2.t0 + Duration::from_millis(1200);
        rx2.send(&[&rec(3, 3_000_000, "new")]);
        assert_eq!(
            rx2.take(),
            [
                r(100, "old"),
                E::Gap(101, 103),
                r(104, "old"),
                E::Reset(104, 3)
            ]
        );
        // A short-lived boot, restarting inside the remembered records:
        // the same number and time, but after the sender was quiet.
        rx.at(60_000)
            .send(&[&rec(0, 0, "Linux version")])
            .at(61_000);
        assert_eq!(rx.take(), [E::Reset(1, 0), r(0, "Linux version")]);
    }

    #[test]
    fn other_evidence_of_a_reboot() {
        // The release prefix changes.
        let mut rx = Rx::new();
        rx.send(&[b"6.1.0-13-amd64,6,500,9000000,-;old\n"]);
        rx.send(&[b"6.12.0-1-amd64,6,501,100,-;new\n"]).at(1000);
        assert_eq!(
            rx.take(),
            [r(500, "old"), E::Reset(500, 501), r(501, "new")]
        );
        assert_eq!(rx.st.release(), Some("6.12.0-1-amd64"));
        // Numbering goes on, but time went back by far more than CPUs
        // disagree.
        let mut rx = Rx::new();
        rx.send(&[&rec(10, 9_000_000_000, "a")]).at(1000);
        rx.send(&[&rec(11, 5_000, "b")]).at(2000);
        assert_eq!(rx.take(), [r(10, "a"), E::Reset(10, 11), r(11, "b")]);
        // A small step back between CPUs is no reboot.
        let mut rx = Rx::new();
        rx.send(&[&rec(10, 9_000_000, "a")]).at(1000);
        rx.send(&[&rec(11, 8_999_990, "b")]);
        assert_eq!(rx.take(), [r(10, "a"), r(11, "b")]);
    }

    #[test]
    fn incomplete_fragment_is_written_when_its_wait_runs_out() {
        let mut rx = Rx::new();
        rx.send(&[b"6,7,0,-,ncfrag=0/10;abcde", b"6,8,0,-;next\n"]);
        assert_eq!(rx.take(), []);
        rx.at(1000);
        assert_eq!(rx.take(), [E::Inc(7, 5, 10), r(7, "abcde"), r(8, "next")]);
    }

    #[test]
    fn records_longer_than_the_limit_are_kept_up_to_it() {
        let mut rx = Rx::with(Window::default(), 8);
        rx.send(&[b"6,9,0,-,ncfrag=0/12;abcdef", b"6,9,0,-,ncfrag=6/12;ghijkl"])
            .at(1000);
        assert_eq!(rx.take(), [E::Cut(9, 8, 12), r(9, "abcdefgh")]);
        assert_eq!(rx.st.pending(), 0);
    }

    #[test]
    fn continuation_records_join() {
        let mut rx = Rx::new();
        rx.send(&[b"6,1,0,c;part one", b"6,2,0,+; two", b"6,3,0,-;other\n"])
            .at(1000);
        assert_eq!(rx.take(), [r(1, "part one two"), r(3, "other")]);
        rx.flush();
        assert_eq!(rx.take(), []);
        let mut rx = Rx::new();
        rx.send(&[b"6,1,0,c;held"]).at(1000);
        assert_eq!(rx.take(), []);
        rx.flush();
        assert_eq!(rx.take(), [r(1, "held")]);
    }

    #[test]
    fn continued_lines_are_cut_at_the_limit() {
        // Kernels before 5.10: `c` then `+` pieces of one line. Nothing
        // is lost; no line is longer than the limit.
        let mut rx = Rx::with(Window::default(), 4);
        rx.send(&[
            b"6,1,0,c;abc",
            b"6,2,0,+;defgh",
            b"6,3,0,+;ij",
            b"6,4,0,-;next\n",
        ])
        .flush();
        assert_eq!(
            rx.take(),
            [
                r(1, "abcd"),
                E::Cont(1, 4),
                r(1, "efgh"),
                E::Cont(1, 4),
                r(1, "ij"),
                r(4, "next")
            ]
        );
        // A single record longer than the limit, in one datagram.
        let mut rx = Rx::with(Window::default(), 3);
        rx.send(&[b"6,9,0,-;abcdefg\n K=V"]).flush();
        assert_eq!(
            rx.take(),
            [
                r(9, "abc"),
                E::Cont(9, 3),
                r(9, "def"),
                E::Cont(9, 3),
                E::R(9, "g".into(), vec!["K=V".into()]),
            ]
        );
    }

    #[test]
    fn flushing_a_held_piece_into_a_held_line_stays_within_the_limit() {
        let mut rx = Rx::with(Window::default(), 8);
        rx.send(&[b"6,1,0,c;abcdefg", b"6,2,0,+,ncfrag=0/10;hij"])
            .flush();
        assert_eq!(
            rx.take(),
            [
                E::Inc(2, 3, 10),
                r(1, "abcdefgh"),
                E::Cont(1, 8),
                r(1, "ij"),
            ]
        );
    }

    #[test]
    fn the_hash_sees_every_byte_and_the_length() {
        // Every byte, of the whole eight-byte words and of the rest:
        // changing any one changes the hash; so does a zero byte more.
        for len in 0..100usize {
            let base: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz"
                .iter()
                .copied()
                .cycle()
                .take(len)
                .collect();
            let h = hash(&base);
            assert_eq!(h, hash(&base.clone()), "len {len}");
            for at in 0..len {
                let mut other = base.clone();
                other[at] ^= 0x20;
                assert_ne!(h, hash(&other), "len {len}, byte {at}");
            }
            let mut longer = base.clone();
            longer.push(0);
            assert_ne!(h, hash(&longer), "len {len} and a zero byte");
        }
    }

    #[test]
    fn sequence_jumps_are_bounded() {
        // Far beyond any log buffer, up to 2^63 and u64::MAX: a reset each,
        // never an overflow or a gap of 2^63 records.
        let big = rec(1 + MAX_GAP + 1, 10_000_000, "far");
        let huge = rec(1 << 63, 20_000_000, "huge");
        let max = rec(u64::MAX, 30_000_000, "max");
        let mut rx = Rx::new();
        rx.send(&[&rec(0, 0, "a"), &big, &huge, &max]).flush();
        assert_eq!(
            rx.take(),
            [
                r(0, "a"),
                E::Reset(0, MAX_GAP + 2),
                r(MAX_GAP + 2, "far"),
                E::Reset(MAX_GAP + 2, 1 << 63),
                r(1 << 63, "huge"),
                E::Reset(1 << 63, u64::MAX),
                r(u64::MAX, "max"),
            ]
        );
        // A piece of a record numbered u64::MAX whose rest never comes
        // is written incomplete when its wait runs out.
        let mut rx2 = Rx::new();
        let piece = format!("6,{},5,-,ncfrag=0/10;abc", u64::MAX);
        rx2.send(&[piece.as_bytes()]).at(1000);
        assert_eq!(rx2.take(), [E::Inc(u64::MAX, 3, 10), r(u64::MAX, "abc")]);
        // Back to the start after u64::MAX, once the sender was quiet.
        rx.at(5000).send(&[&rec(1, 0, "c")]).at(6000);
        assert_eq!(rx.take(), [E::Reset(u64::MAX, 1), r(1, "c")]);
        // The widest gap still counted as missing, as one marker.
        let mut rx = Rx::new();
        let edge = rec(MAX_GAP + 1, 0, "edge");
        rx.send(&[&rec(0, 0, "a")]).at(1000);
        rx.send(&[&edge]).flush();
        assert_eq!(
            rx.take(),
            [r(0, "a"), E::Gap(1, MAX_GAP), r(MAX_GAP + 1, "edge")]
        );
    }

    proptest::proptest! {
        /// Any order within the window, with any records repeated, gives
        /// every record once, in order, and no marker.
        #[test]
        fn shuffled_and_repeated_records_come_out_exactly_once(
            n in 1u64..60,
            swaps in proptest::collection::vec((0usize..60, 0usize..60), 0..80),
            dups in proptest::collection::vec(0usize..60, 0..20),
        ) {
            let mut order: Vec<u64> = (0..n).collect();
            for (a, b) in swaps {
                let (a, b) = (a % order.len(), b % order.len());
                order.swap(a, b);
            }
            for d in dups {
                let at = d % order.len();
                order.insert(at, order[(at + 7) % order.len()]);
            }
            // The first record sets where the window starts.
            order.retain(|&q| q != 0);
            order.insert(0, 0);
            let mut rx = Rx::new();
            for q in order {
                rx.send(&[&rec(1000 + q, 1000 + q, &format!("r{q}"))]);
            }
            rx.flush();
            let got: Vec<E> = rx.take().into_iter().filter(|e| *e != E::Dup).collect();
            let want: Vec<E> = (0..n).map(|q| r(1000 + q, &format!("r{q}"))).collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// Valid headers with hostile numbers (sequence near 0, 2^63 and
        /// u64::MAX, times going anywhere, fragments of any shape), fed
        /// with the clock jumping: every call returns, nothing stays held
        /// after a flush, no line exceeds the limit.
        #[test]
        fn hostile_headers_always_terminate(
            dgrams in proptest::collection::vec(
                (0usize..6, 0u64..5, 0u64..3_000_000_000, proptest::option::of((0usize..50, 1usize..60)), 0u64..3000),
                0..40,
            ),
        ) {
            let bases = [0u64, 1, 600, 1 << 63, u64::MAX - 2, u64::MAX];
            let mut st = ExtState::new(Window { records: 8, wait: Duration::from_millis(500) });
            let t0 = Instant::now();
            let mut t = t0;
            let check = |e: Event<'_>| {
                if let Event::Record { text, .. } = e {
                    assert!(text.len() <= 32, "line of {} bytes", text.len());
                }
            };
            for (b, off, ts, frag, dt) in dgrams {
                let seq = bases[b].saturating_add(off);
                let head = match frag {
                    Some((o, total)) if o < total => format!("6,{seq},{ts},-,ncfrag={o}/{total};"),
                    _ => format!("6,{seq},{ts},-;"),
                };
                let d = format!("{head}{}", "z".repeat(usize::try_from(off).unwrap() * 7));
                t += Duration::from_millis(dt);
                let (h, body) = parse(d.as_bytes()).unwrap();
                st.feed(&h, body, 32, t, &mut |e| check(e));
                st.tick(t, 32, &mut |e| check(e));
            }
            st.flush(32, &mut |e| check(e));
            proptest::prop_assert_eq!(st.pending(), 0);
        }

        /// Arbitrary datagrams never panic the parser or the reassembler,
        /// and no line exceeds the limit.
        #[test]
        fn arbitrary_datagrams_never_panic(
            dgrams in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..20),
            prefix in proptest::prelude::any::<bool>(),
        ) {
            let mut st = ExtState::default();
            let now = Instant::now();
            let check = |e: Event<'_>| {
                if let Event::Record { text, .. } = e {
                    assert!(text.len() <= 64, "line of {} bytes", text.len());
                }
            };
            for (i, d) in dgrams.iter().enumerate() {
                let mut d = d.clone();
                if prefix {
                    let mut h = b"6,1,2,-,ncfrag=3/40;".to_vec();
                    h.extend_from_slice(&d);
                    d = h;
                }
                let t = now + Duration::from_millis(300 * i as u64);
                if let Some((h, body)) = parse(&d) {
                    st.feed(&h, body, 64, t, &mut |e| check(e));
                }
                st.tick(t, 64, &mut |e| check(e));
            }
            st.flush(64, &mut |e| check(e));
            proptest::prop_assert_eq!(st.pending(), 0);
        }
    }

    /// Found by the fuzzer (`udplogger_receiver`): the first record of a
    /// stream is held by the window, then one numbered far before it
    /// arrives with a later time. Nothing was written yet, so no gap marker
    /// covers it: it was counted as late and written nowhere.
    #[test]
    fn a_record_far_behind_an_unwritten_stream_is_not_lost_silently() {
        let mut st = ExtState::new(Window {
            records: 512,
            wait: Duration::from_millis(1000),
        });
        let t0 = Instant::now();
        let mut out = Vec::new();
        for (rec, at) in [
            ("4,81353,1000,-;first".as_bytes(), t0),
            (
                "4,814,2000,-;far behind".as_bytes(),
                t0 + Duration::from_millis(1),
            ),
        ] {
            let (h, body) = crate::kernel::printk::parse(rec).unwrap();
            st.feed(&h, body, 1024, at, &mut |e| out.push(format!("{e:?}")));
        }
        st.tick(t0 + Duration::from_secs(5), 1024, &mut |e| {
            out.push(format!("{e:?}"))
        });
        st.flush(1024, &mut |e| out.push(format!("{e:?}")));
        let all = out.join("\n");
        assert_eq!(out.len(), 3, "{all}");
        assert!(
            out[0].starts_with("Record") && out[0].contains("seq: 81353"),
            "{all}"
        );
        assert!(out[1].contains("Reset { last: 81353, seq: 814 }"), "{all}");
        assert!(
            out[2].starts_with("Record") && out[2].contains("seq: 814,"),
            "written, not dropped: {all}"
        );
    }

    /// Found by the fuzzer (`udplogger_receiver`, minimized with `cargo
    /// fuzz tmin`): the stream's first record was written once its wait
    /// ran out, then the record before it arrived. No gap marker spoke
    /// for it (nothing before a stream's start is declared missing), yet
    /// it was dropped as late: lost with no marker.
    #[test]
    fn a_record_before_the_streams_start_is_written_not_dropped_as_late() {
        let mut rx = Rx::new();
        rx.send(&[b"6,2,3,+; the kernel"]).flush();
        assert_eq!(rx.take(), [r(2, " the kernel")]);
        rx.send(&[b"6,1,1,-;t"]);
        assert_eq!(rx.take(), [r(1, "t")], "written out of sequence");
        // A copy of it is a duplicate, and the stream goes on in order.
        rx.send(&[b"6,1,1,-;t", b"6,3,4,-;c"]).flush();
        assert_eq!(rx.take(), [E::Dup, r(3, "c")]);
        // A piece of a fragmented record from before the start: written as
        // far as it goes, after its marker; a record far before the start
        // is another stream.
        rx.send(&[b"6,0,0,-,ncfrag=0/9;abcd"]);
        assert_eq!(rx.take(), [E::Inc(0, 4, 9), r(0, "abcd")]);
        let mut rx = Rx::new();
        rx.send(&[&rec(1000, 1000, "a")]).at(1000);
        rx.send(&[&rec(1001, 1001, "b"), &rec(300, 900, "far")]);
        assert_eq!(rx.take(), [r(1000, "a"), r(1001, "b"), E::Reset(1001, 300)]);
        // After a gap, a latecomer inside it is still dropped: its marker
        // said it is missing.
        let mut rx = Rx::new();
        rx.send(&[&rec(10, 10, "a")]).at(1000);
        rx.send(&[&rec(13, 13, "d")]).at(2500);
        rx.send(&[&rec(11, 11, "b")]);
        assert_eq!(rx.take(), [r(10, "a"), E::Gap(11, 12), r(13, "d"), E::Late]);
    }
}
