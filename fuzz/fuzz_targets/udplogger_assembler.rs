//! udplogger's plain-text line assembler (src/udplogger/assemble.rs): one
//! sender's datagrams in, lines out. What comes out, joined back with
//! the newlines that ended lines, must be exactly what went in, less the
//! `\r` of `\r\n` line ends (and of a line written unfinished): no byte
//! invented, none lost, none moved. No line is longer than the limit, and
//! what is held stays within it and one byte.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::udplogger::{Assembler, End};

/// True when `got` is `sent` with some `\r` removed that stood right
/// before a `\n` or ended an unfinished line written at a flush (`flushed`:
/// offsets in `sent` where one happened). Whether such a `\r` went depends
/// on whether it was still held (not yet written as part of a cut line),
/// so both ways are tried; failures are remembered, which keeps it linear.
fn same_but_cr(sent: &[u8], got: &[u8], flushed: &[usize]) -> bool {
    let skippable = |i: usize| {
        sent[i] == b'\r' && (sent.get(i + 1) == Some(&b'\n') || flushed.contains(&(i + 1)))
    };
    let mut failed = std::collections::HashSet::new();
    let mut stack = vec![(0usize, 0usize)];
    while let Some((mut i, mut j)) = stack.pop() {
        loop {
            if i == sent.len() {
                if j == got.len() {
                    return true;
                }
                break;
            }
            if skippable(i) {
                if !failed.insert((i, j)) {
                    break;
                }
                // Try "it went" later; "it stayed" now.
                stack.push((i + 1, j));
            }
            if j < got.len() && sent[i] == got[j] {
                i += 1;
                j += 1;
            } else {
                break;
            }
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    // First byte: the line limit (1..=256); then datagrams, each a length
    // byte and that many bytes (the last one takes what is left).
    let Some((&max, mut rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max) + 1;
    let mut asm = Assembler::default();
    let t0 = Instant::now();
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut step = 0u64;
    let mut flushed = Vec::new();
    let mut emit = |line: &[u8], end: End| {
        assert!(
            line.len() <= max,
            "line of {} bytes, limit {max}",
            line.len()
        );
        got.extend_from_slice(line);
        match end {
            End::Newline => got.push(b'\n'),
            End::Cut => assert_eq!(line.len(), max, "a cut line is a full piece"),
            End::Flushed => {}
        }
    };
    while let Some((&n, r)) = rest.split_first() {
        let n = usize::from(n).min(r.len());
        let (dgram, r) = r.split_at(n);
        rest = r;
        step += 1;
        sent.extend_from_slice(dgram);
        asm.feed(dgram, max, t0 + Duration::from_millis(step), &mut emit);
        // A line of exactly the limit waits for its newline, and a `\r`
        // after it for the byte that tells a line end from text: one
        // byte more at most.
        assert!(
            asm.pending() <= max + 1,
            "holds {} bytes, limit {max}",
            asm.pending()
        );
        assert_eq!(asm.pending() == 0, asm.since().is_none());
        // A length byte of 0 stands for a timeout: the unfinished line is
        // written as it is.
        if n == 0 {
            flushed.push(sent.len());
            asm.flush(&mut emit);
            assert_eq!(asm.pending(), 0);
        }
    }
    flushed.push(sent.len());
    asm.flush(&mut emit);
    assert!(
        same_but_cr(&sent, &got, &flushed),
        "sent {:?}\n got {:?}",
        String::from_utf8_lossy(&sent),
        String::from_utf8_lossy(&got)
    );
});
