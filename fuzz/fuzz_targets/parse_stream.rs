//! The parser stream of `scan` and `run`: arbitrary bytes, split into
//! lines, through the [`Framer`] and the incident [`Parser`]. Every event
//! must match the event schema; framing must keep its own bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::parse::{Framer, Parser, MAX_LINE};
use watchdog_fuzz::check_event;

fuzz_target!(|data: &[u8]| {
    // The first byte picks how syslog dates get their year, as `scan`
    // does for a file with or without a known modification date.
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut framer = match mode % 3 {
        0 => Framer::new(),
        1 => Framer::with_year(Some(2026)),
        _ => Framer::with_year(Some(i32::from(mode) * 37 - 4000)),
    };
    let mut parser = Parser::new("fuzz");
    let mut events = Vec::new();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        let rec = framer.frame(line);
        assert!(rec.text.len() <= MAX_LINE * 3, "text grew past the cut");
        assert_eq!(rec.truncated, line.len() > MAX_LINE);
        if let Some(l) = rec.level {
            assert!(l <= 7, "level {l}");
        }
        events.extend(parser.push_at(&rec, Some(n as u64 + 1)));
    }
    events.extend(parser.flush());
    for ev in &events {
        check_event(ev);
        assert_eq!(ev.source, "fuzz");
    }
});
