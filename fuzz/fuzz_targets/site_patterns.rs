//! Site patterns (src/patterns.rs): user-supplied definitions from the
//! configuration, compiled, then matched against arbitrary lines. Every
//! definition compiles or is refused with errors that name their YAML
//! path and say why on one line (never a panic; the regex size limit
//! bounds the time and memory a hostile expression can take: libFuzzer's
//! per-input timeout and RSS limit catch a definition that escapes it).
//! Then, for each line and level:
//!
//! - a pattern matches only within its level range (lines without a level
//!   always qualify), and only when its expression matches the line;
//! - each match carries the pattern's name and exactly its named captures,
//!   in order, each value a piece of the line;
//! - the `pattern` event's JSON has no member twice (a capture never hides
//!   an event field).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::patterns::{compile, PatternConfig};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    /// Text up to a NUL (or the end).
    fn text(&mut self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = self.0.get(end + 1..).unwrap_or(&[]);
        s
    }

    fn level(&mut self) -> Option<u8> {
        match self.byte() {
            b @ 0..=15 => Some(b),
            b @ 16..=31 => Some(b.wrapping_mul(17)),
            _ => None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    // Definitions: a count, then per pattern its levels, name and regex.
    let n = inp.byte() % 5;
    let list: Vec<PatternConfig> = (0..n)
        .map(|_| {
            let (min_level, max_level) = (inp.level(), inp.level());
            PatternConfig {
                name: inp.text(),
                regex: inp.text(),
                min_level,
                max_level,
            }
        })
        .collect();
    let pats = match compile(&list, "patterns") {
        Ok(p) => p,
        Err(errs) => {
            assert!(!errs.is_empty());
            for e in &errs {
                assert!(e.path.starts_with("patterns["), "{}", e.path);
                let i: usize = e.path["patterns[".len()..]
                    .split(']')
                    .next()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or_else(|| panic!("path {}", e.path));
                assert!(i < list.len(), "{}", e.path);
                assert!(
                    !e.message.is_empty() && !e.message.contains('\n'),
                    "{}: {:?}",
                    e.path,
                    e.message
                );
            }
            return;
        }
    };
    assert_eq!(pats.patterns.len(), list.len());
    let mut names = HashSet::new();
    for (p, c) in pats.patterns.iter().zip(&list) {
        assert_eq!(p.name, c.name);
        assert!(names.insert(p.name.clone()), "duplicate {}", p.name);
        for cap in &p.captures {
            assert!(
                ![
                    "kind",
                    "time",
                    "kernel_time",
                    "source",
                    "host",
                    "line",
                    "incident",
                    "pattern"
                ]
                .contains(&cap.as_str()),
                "capture {cap} accepted"
            );
        }
    }
    // Lines: a level byte, then text up to a NUL.
    while !inp.0.is_empty() {
        let level = inp.level().filter(|l| *l <= 7);
        let line = inp.text();
        let found = pats.matches(&line, level);
        let mut k = 0;
        for (p, c) in pats.patterns.iter().zip(&list) {
            let allowed = level
                .is_none_or(|l| c.min_level.unwrap_or(0) <= l && l <= c.max_level.unwrap_or(7));
            let Some(m) = found.get(k).filter(|m| m.pattern == p.name) else {
                continue;
            };
            k += 1;
            assert!(allowed, "{} matched at level {level:?}", p.name);
            let got: Vec<&str> = m.captures.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(got, p.captures, "captures of {}", p.name);
            for (n, v) in &m.captures {
                if let Some(v) = v {
                    assert!(line.contains(v.as_str()), "{n}={v:?} not in {line:?}");
                }
            }
        }
        assert_eq!(k, found.len(), "matches out of order or unknown");
        for m in &found {
            let json = watchdog::fuzzing::patterns::event_json(m);
            let members = watchdog::journal::json_members(&json);
            let mut seen = HashSet::new();
            for (k, _) in &members {
                assert!(seen.insert(k.clone()), "{k} twice: {json}");
            }
            assert!(!members.is_empty(), "not a JSON object: {json}");
        }
    }
});
