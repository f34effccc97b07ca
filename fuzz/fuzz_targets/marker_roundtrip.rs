//! udplogger's marker lines (src/marker.rs): written by `udplogger`, read
//! back by `scan`. A marker built from the input, written in the text and
//! the JSON form, must read back as the same marker (in the text form the
//! strings as tokens, and without the reason, which is for people); any
//! line or JSON object must be read without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::marker::{parse_json, parse_line, Body, Marker, SOURCE};
use watchdog_fuzz::Input;

const TIME: &str = "2026-11-22T04:10:32.271684Z";

/// A string the text form carries unchanged: one token, nothing escaped.
fn token_safe(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        // Any line, any JSON object: read without a panic, and a line not
        // in the `udplogger` column is never a marker.
        let text = String::from_utf8_lossy(rest);
        for line in text.lines() {
            if let Some(p) = parse_line(line) {
                assert_eq!(line.split(' ').nth(1), Some(SOURCE));
                assert!(!p.kind.is_empty());
            }
        }
        if let Ok(serde_json::Value::Object(obj)) = serde_json::from_str(&text) {
            let _ = parse_json(&obj);
        }
        return;
    }
    let mut inp = Input::short(rest);
    let about = inp.string();
    let body = watchdog_fuzz::marker_body(&mut inp);
    let mut m = Marker::new(about, body);
    if inp.byte() & 1 == 1 {
        m = m.with_reason(inp.string());
    }
    let strings_clean = |m: &Marker| {
        let since = match &m.body {
            Body::WriteFailed { since, .. } => since.as_str(),
            _ => "x",
        };
        [m.about.as_str(), since, m.reason.as_deref().unwrap_or("")]
            .iter()
            .all(|s| !s.chars().any(char::is_control))
    };

    // Text form: always one line, always read back as this kind.
    let mut out = Vec::new();
    m.write_text(&mut out, TIME);
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(out.last(), Some(&b'\n'));
    let line = std::str::from_utf8(&out[..out.len() - 1]).expect("a marker line is UTF-8");
    let p = parse_line(line).unwrap_or_else(|| panic!("not read back: {line}"));
    assert_eq!(p.time, TIME);
    assert_eq!(p.kind, m.kind().name());
    let since_safe = match &m.body {
        Body::WriteFailed { since, .. } => token_safe(since),
        _ => true,
    };
    if token_safe(&m.about) && since_safe {
        let mut want = m.clone();
        want.reason = None;
        assert_eq!(p.marker, Some(want), "{line}");
    }

    // JSON form: one object per line, every member back as it was.
    let mut out = Vec::new();
    m.write_json(&mut out, TIME);
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("a marker is JSON");
    let obj = v.as_object().expect("a marker is an object");
    let p = parse_json(obj).expect("a JSON marker reads back");
    assert_eq!(p.kind, m.kind().name());
    if strings_clean(&m) {
        assert_eq!(p.marker, Some(m.clone()));
    }
});
