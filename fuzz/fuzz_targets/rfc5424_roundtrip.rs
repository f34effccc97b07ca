//! RFC 5424 messages as the forward targets get them
//! (src/forward/message.rs, src/forward/mod.rs `event_message`,
//! src/forward/udplogger.rs), framed by octet counting (RFC 6587), read
//! back by a small RFC 5424 parser written here. Input: events parsed
//! from log text, udplogger lines and markers, or a message built from
//! raw header fields and parameters, with hostile host names, fields and
//! text (spaces, non-ASCII, NUL, over-long). Then:
//!
//! - the frames split back into exactly the messages sent;
//! - PRI is the facility and severity asked for (at most 191), VERSION 1;
//!   TIMESTAMP is `-` or an RFC 5424 time (RFC 3339, at most six
//!   fraction digits, a zone); HOSTNAME, APP-NAME, PROCID and MSGID are
//!   printable US-ASCII of at most 255, 48, 128 and 32 characters, or
//!   `-`: each the field given with other bytes as `_`, cut at that
//!   length;
//! - STRUCTURED-DATA parses: SD-IDs and PARAM-NAMEs of at most 32
//!   printable characters without `=`, space, `]` or `"`; in each
//!   PARAM-VALUE `"`, `\` and `]` are escaped and the value is UTF-8;
//!   unescaped, each value is the one given (control characters and
//!   invalid UTF-8 as `\xNN` text, as documented);
//! - MSG is the text given (UTF-8 after a BOM when it is not ASCII,
//!   `\xNN`-escaped when it is not UTF-8), cut only to keep the message
//!   within `MAX_MESSAGE`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::forward::{
    event_message, line_message, marker_message, octet_frame, summary, Builder, Header, MAX_MESSAGE,
};
use watchdog::fuzzing::marker::{Marker, Value as MarkerValue};
use watchdog::fuzzing::parse::{Framer, Parser};
use watchdog::journal::json_members;
use watchdog_fuzz::Input;

const STAMP: &str = "2026-11-22T04:10:32.271684Z";
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a message should say.
struct Want {
    pri: u64,
    /// Header fields given: timestamp (None: NILVALUE), hostname,
    /// app-name, procid, msgid.
    fields: [Option<Vec<u8>>; 5],
    /// SD-ELEMENTs: the SD-ID given and its (name, value) parameters.
    sd: Vec<(String, Vec<(String, Vec<u8>)>)>,
    msg: Vec<u8>,
}

const LIMITS: [usize; 5] = [64, 255, 48, 128, 32];

/// A header field as the RFC allows it: printable US-ASCII, the given
/// bytes with others as `_`, cut at `max`; `-` when empty or absent.
fn check_token(got: &[u8], given: Option<&[u8]>, max: usize, what: &str) {
    assert!(
        !got.is_empty() && got.len() <= max && got.iter().all(|b| (33..=126).contains(b)),
        "{what}: {got:?}"
    );
    match given {
        None | Some([]) => assert_eq!(got, b"-", "{what}"),
        Some(g) => {
            assert_eq!(got.len(), g.len().min(max), "{what}: {got:?} for {g:?}");
            for (o, i) in got.iter().zip(g) {
                let want = if (33..=126).contains(i) { *i } else { b'_' };
                assert_eq!(*o, want, "{what}: {got:?} for {g:?}");
            }
        }
    }
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// RFC 5424 TIMESTAMP: NILVALUE or FULL-DATE "T" FULL-TIME with at most
/// six fraction digits and a zone (`Z` or `+hh:mm`).
fn valid_timestamp(t: &[u8]) -> bool {
    if t == b"-" {
        return true;
    }
    let n = |s: &[u8], lo: u32, hi: u32| {
        digits(s)
            && std::str::from_utf8(s)
                .ok()
                .and_then(|x| x.parse::<u32>().ok())
                .is_some_and(|v| (lo..=hi).contains(&v))
    };
    if t.len() < 20 {
        return false;
    }
    let (date, rest) = t.split_at(10);
    if !(n(&date[0..4], 0, 9999)
        && date[4] == b'-'
        && n(&date[5..7], 1, 12)
        && date[7] == b'-'
        && n(&date[8..10], 1, 31))
    {
        return false;
    }
    let Some((&b'T', rest)) = rest.split_first() else {
        return false;
    };
    if rest.len() < 9
        || !(n(&rest[0..2], 0, 23)
            && rest[2] == b':'
            && n(&rest[3..5], 0, 59)
            && rest[5] == b':'
            && n(&rest[6..8], 0, 60))
    {
        return false;
    }
    let mut rest = &rest[8..];
    if let Some((&b'.', r)) = rest.split_first() {
        let k = r.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=6).contains(&k) {
            return false;
        }
        rest = &r[k..];
    }
    match rest {
        b"Z" => true,
        [s, h1, h2, b':', m1, m2] if (*s == b'+' || *s == b'-') => {
            n(&[*h1, *h2], 0, 23) && n(&[*m1, *m2], 0, 59)
        }
        _ => false,
    }
}

/// A PARAM-VALUE as given text becomes: control characters and invalid
/// UTF-8 as `\xNN` (for invalid UTF-8, every byte outside printable ASCII).
fn value_text(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match std::str::from_utf8(v) {
        Ok(s) => {
            for c in s.chars() {
                let mut b = [0u8; 4];
                let enc = c.encode_utf8(&mut b).as_bytes();
                if c.is_control() {
                    for x in enc {
                        out.extend_from_slice(format!("\\x{x:02x}").as_bytes());
                    }
                } else {
                    out.extend_from_slice(enc);
                }
            }
        }
        Err(_) => {
            for &b in v {
                if (32..=126).contains(&b) {
                    out.push(b);
                } else {
                    out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
                }
            }
        }
    }
    out
}

/// An SD-NAME as the RFC allows it, from the name given.
fn check_sd_name(got: &[u8], given: &str) {
    assert!(
        !got.is_empty()
            && got.len() <= 32
            && got
                .iter()
                .all(|b| (33..=126).contains(b) && !b"= ]\"".contains(b)),
        "SD-NAME {got:?}"
    );
    let g = given.as_bytes();
    if g.is_empty() {
        assert_eq!(got, b"_");
    } else {
        assert_eq!(got.len(), g.len().min(32), "SD-NAME {got:?} for {given:?}");
        for (o, i) in got.iter().zip(g) {
            let ok = (33..=126).contains(i) && !b"=]\"".contains(i);
            assert_eq!(
                *o,
                if ok { *i } else { b'_' },
                "SD-NAME {got:?} for {given:?}"
            );
        }
    }
}

/// Reads one header field up to the next space.
fn field<'a>(m: &mut &'a [u8]) -> &'a [u8] {
    let end = m
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or_else(|| panic!("no space after a field: {m:?}"));
    let f = &m[..end];
    *m = &m[end + 1..];
    f
}

/// Parses one message and checks it against what was asked.
fn check(msg: &[u8], want: &Want) {
    let whole = msg;
    let mut m = msg;
    // PRI and VERSION.
    assert_eq!(m.first(), Some(&b'<'), "{whole:?}");
    let close = m.iter().position(|&b| b == b'>').expect("PRI ends");
    let pri = &m[1..close];
    assert!(digits(pri) && pri.len() <= 3, "PRI {pri:?}");
    let p: u64 = std::str::from_utf8(pri)
        .expect("digits")
        .parse()
        .expect("a number");
    assert!(p <= 191 && p == want.pri, "PRI {p}, asked {}", want.pri);
    m = &m[close + 1..];
    assert!(m.starts_with(b"1 "), "VERSION: {whole:?}");
    m = &m[2..];
    // Header fields.
    let names = ["TIMESTAMP", "HOSTNAME", "APP-NAME", "PROCID", "MSGID"];
    for (i, name) in names.iter().enumerate() {
        let f = field(&mut m);
        if i == 0 {
            assert!(
                valid_timestamp(f),
                "TIMESTAMP {:?}",
                String::from_utf8_lossy(f)
            );
            // A valid time given is kept (to six fraction digits).
            if let Some(g) = &want.fields[0] {
                if valid_timestamp(g) && g != b"-" {
                    assert_eq!(f, &g[..], "TIMESTAMP");
                }
            }
        } else {
            check_token(f, want.fields[i].as_deref(), LIMITS[i], name);
        }
    }
    // STRUCTURED-DATA.
    let mut got_sd: Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)> = Vec::new();
    if let Some(r) = m.strip_prefix(b"-") {
        m = r;
    } else {
        while let Some(r) = m.strip_prefix(b"[") {
            m = r;
            let end = m
                .iter()
                .position(|&b| b == b' ' || b == b']')
                .expect("SD-ID ends");
            let id = m[..end].to_vec();
            m = &m[end..];
            let mut params = Vec::new();
            while let Some(r) = m.strip_prefix(b" ") {
                m = r;
                let eq = m.iter().position(|&b| b == b'=').expect("PARAM-NAME=");
                let name = m[..eq].to_vec();
                m = &m[eq + 1..];
                assert_eq!(m.first(), Some(&b'"'), "PARAM-VALUE opens: {whole:?}");
                m = &m[1..];
                let mut value = Vec::new();
                loop {
                    match m {
                        [b'\\', c @ (b'"' | b'\\' | b']'), rest @ ..] => {
                            value.push(*c);
                            m = rest;
                        }
                        [b'"', rest @ ..] => {
                            m = rest;
                            break;
                        }
                        [b']', ..] => panic!("unescaped ] in a PARAM-VALUE: {whole:?}"),
                        [c, rest @ ..] => {
                            value.push(*c);
                            m = rest;
                        }
                        [] => panic!("PARAM-VALUE never closed: {whole:?}"),
                    }
                }
                assert!(
                    std::str::from_utf8(&value).is_ok(),
                    "PARAM-VALUE not UTF-8: {value:?}"
                );
                params.push((name, value));
            }
            assert_eq!(m.first(), Some(&b']'), "SD-ELEMENT closes: {whole:?}");
            m = &m[1..];
            got_sd.push((id, params));
        }
        assert!(!got_sd.is_empty(), "STRUCTURED-DATA: {whole:?}");
    }
    assert_eq!(got_sd.len(), want.sd.len(), "SD-ELEMENTs: {whole:?}");
    for ((id, params), (wid, wparams)) in got_sd.iter().zip(&want.sd) {
        check_sd_name(id, wid);
        assert_eq!(params.len(), wparams.len(), "parameters of {wid}");
        for ((n, v), (wn, wv)) in params.iter().zip(wparams) {
            check_sd_name(n, wn);
            assert_eq!(
                String::from_utf8_lossy(v),
                String::from_utf8_lossy(&value_text(wv)),
                "{wid} {wn}"
            );
        }
    }
    // MSG.
    let text: &[u8] = match m {
        [] => b"",
        [b' ', rest @ ..] => rest,
        _ => panic!("no space before MSG: {whole:?}"),
    };
    let full: Vec<u8> = match std::str::from_utf8(&want.msg) {
        Ok(s) if !s.is_ascii() => [BOM, s.as_bytes()].concat(),
        Ok(s) => s.as_bytes().to_vec(),
        Err(_) => {
            let mut e = Vec::new();
            for &b in &want.msg {
                match b {
                    b'\\' => e.extend_from_slice(b"\\x5c"),
                    32..=126 => e.push(b),
                    _ => e.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                }
            }
            e
        }
    };
    if let Some(u) = text.strip_prefix(BOM) {
        assert!(std::str::from_utf8(u).is_ok(), "MSG after a BOM is UTF-8");
    }
    if text.len() < full.len() {
        // Cut: only to stay within the limit (to nothing, no space and
        // no BOM, when the structured data fills it).
        assert!(
            full.starts_with(text),
            "MSG {text:?} is not the start of {full:?}"
        );
        assert!(
            whole.len() + 8 >= MAX_MESSAGE,
            "MSG cut at {} bytes",
            whole.len()
        );
    } else {
        assert_eq!(text, &full[..], "MSG");
    }
    if !text.is_empty() {
        assert!(whole.len() <= MAX_MESSAGE, "{} bytes", whole.len());
    }
}

fn split_source(s: &str) -> (&str, &str) {
    // `addr:port`, `[v6]:port` (docs/udplogger.md: the SD's addr and port).
    match s.rsplit_once(':') {
        Some((a, p)) if !a.is_empty() => (a.trim_start_matches('[').trim_end_matches(']'), p),
        _ => (s, ""),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut inp = Input::long(rest);
    let mut b = Builder::default();
    let mut sent: Vec<(Vec<u8>, Want)> = Vec::new();
    match mode % 4 {
        0 => {
            // Events from log text, with a hostile host name.
            let host = inp.string();
            let mut framer = Framer::new();
            let mut parser = Parser::new("fuzz");
            let mut events = Vec::new();
            for line in inp.rest().split(|&c| c == b'\n') {
                events.extend(parser.push(&framer.frame(line)));
            }
            events.extend(parser.flush());
            for mut ev in events.into_iter().take(8) {
                ev.host = (!host.is_empty()).then(|| host.clone());
                let json = ev.to_json();
                let (sev, text) = summary(&ev);
                let msg = event_message(&mut b, &ev, &json, sev, &text);
                let params = json_members(&json)
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| {
                        let v = match v {
                            serde_json::Value::String(s) => s.into_bytes(),
                            other => other.to_string().into_bytes(),
                        };
                        (k, v)
                    })
                    .collect();
                let time = ev
                    .time
                    .filter(|t| t.offset.is_some())
                    .map(|t| t.to_string().into_bytes());
                let pid = std::process::id().to_string().into_bytes();
                let want = Want {
                    pri: 3 * 8 + u64::from(sev.min(7)),
                    fields: [
                        time,
                        ev.host.clone().map(String::into_bytes),
                        Some(b"watchdog".to_vec()),
                        Some(pid),
                        Some(ev.body.kind().as_bytes().to_vec()),
                    ],
                    sd: vec![("watchdog@32473".into(), params)],
                    msg: text.into_bytes(),
                };
                sent.push((msg, want));
            }
        }
        1 => {
            // A udplogger line: hostile sender name, source, text, dictionary.
            let host = inp.string();
            let source = inp.string();
            let text = inp.bytes();
            let meta = (inp.byte() & 1 == 1).then(|| (u32::from(inp.byte()), inp.num(), inp.num()));
            let dict: Vec<Vec<u8>> = (0..inp.byte() % 4).map(|_| inp.bytes()).collect();
            let dref: Vec<&[u8]> = dict.iter().map(Vec::as_slice).collect();
            let msg = line_message(&mut b, STAMP, &host, &source, &text, meta, &dref).to_vec();
            let (addr, port) = split_source(&source);
            let mut params = vec![
                ("addr".to_string(), addr.as_bytes().to_vec()),
                ("port".to_string(), port.as_bytes().to_vec()),
            ];
            if let Some((_, seq, ts)) = meta {
                params.push(("seq".into(), seq.to_string().into_bytes()));
                params.push(("ts_usec".into(), ts.to_string().into_bytes()));
            }
            params.extend(dict.iter().map(|d| ("dict".to_string(), d.clone())));
            let sev = meta.map_or(6, |(pri, _, _)| u64::from(pri & 7));
            let want = Want {
                pri: sev,
                fields: [
                    Some(STAMP.into()),
                    Some(host.into_bytes()),
                    Some(b"kernel".to_vec()),
                    None,
                    Some(b"netconsole".to_vec()),
                ],
                sd: vec![("netconsole@32473".into(), params)],
                msg: text,
            };
            sent.push((msg, want));
        }
        2 => {
            // A marker about a hostile sender.
            let about = inp.string();
            let host = (inp.byte() & 1 == 1).then(|| inp.string());
            let body = watchdog_fuzz::marker_body(&mut inp);
            let mut mk = Marker::new(about, body);
            if inp.byte() & 1 == 1 {
                mk = mk.with_reason(inp.string());
            }
            let msg = marker_message(&mut b, STAMP, host.as_deref(), &mk);
            let mut params = vec![
                ("kind".to_string(), mk.kind().name().as_bytes().to_vec()),
                ("about".to_string(), mk.about.as_bytes().to_vec()),
            ];
            for (k, v) in mk.fields() {
                let v = match v {
                    MarkerValue::Num(n) => n.to_string().into_bytes(),
                    MarkerValue::Str(s) => s.as_bytes().to_vec(),
                };
                params.push((k.to_string(), v));
            }
            if let Some(r) = &mk.reason {
                params.push(("reason".into(), r.as_bytes().to_vec()));
            }
            let want = Want {
                pri: 4,
                fields: [
                    Some(STAMP.into()),
                    host.map(String::into_bytes),
                    Some(b"kernel".to_vec()),
                    None,
                    Some(b"udplogger-marker".to_vec()),
                ],
                sd: vec![("udplogger@32473".into(), params)],
                msg: mk.message().into_bytes(),
            };
            sent.push((msg, want));
        }
        _ => {
            // Raw header fields and parameters, all hostile.
            let (facility, severity) = (inp.byte(), inp.byte());
            let fields: Vec<Option<String>> = (0..5)
                .map(|_| (inp.byte() & 3 != 0).then(|| inp.string()))
                .collect();
            let app = fields[2].clone().unwrap_or_default();
            let msgid = fields[4].clone().unwrap_or_default();
            b.start(&Header {
                facility,
                severity,
                timestamp: fields[0].as_deref(),
                hostname: fields[1].as_deref(),
                app_name: &app,
                procid: fields[3].as_deref(),
                msgid: &msgid,
            });
            let mut sd = Vec::new();
            for _ in 0..inp.byte() % 3 {
                let id = inp.string();
                let mut params = Vec::new();
                let mut el = b.element(&id);
                for _ in 0..inp.byte() % 4 {
                    let name = inp.string();
                    if inp.byte() & 1 == 1 {
                        let n = inp.num();
                        el.num(&name, n);
                        params.push((name, n.to_string().into_bytes()));
                    } else {
                        // Repeated: a message past MAX_MESSAGE from a
                        // short input.
                        let v = inp.bytes().repeat(1 + usize::from(inp.byte() % 64));
                        el.param(&name, &v);
                        params.push((name, v));
                    }
                }
                sd.push((id, params));
            }
            let text = inp.rest().repeat(1 + usize::from(facility >> 2 & 7));
            let msg = b.finish(&text).to_vec();
            let want = Want {
                pri: u64::from(facility.min(23)) * 8 + u64::from(severity.min(7)),
                fields: [
                    fields[0].clone().map(String::into_bytes),
                    fields[1].clone().map(String::into_bytes),
                    Some(app.into_bytes()),
                    fields[3].clone().map(String::into_bytes),
                    Some(msgid.into_bytes()),
                ],
                sd,
                msg: text,
            };
            sent.push((msg, want));
        }
    }

    // Octet-counted framing (RFC 6587 3.4.1) splits back into the messages.
    let mut stream = Vec::new();
    for (m, _) in &sent {
        octet_frame(&mut stream, m);
    }
    let mut s = &stream[..];
    for (m, want) in &sent {
        let sp = s
            .iter()
            .position(|&c| c == b' ')
            .expect("MSG-LEN ends with a space");
        let len: usize = std::str::from_utf8(&s[..sp])
            .expect("digits")
            .parse()
            .expect("MSG-LEN");
        assert!(s[0] != b'0', "MSG-LEN starts with a nonzero digit");
        let frame = &s[sp + 1..sp + 1 + len];
        assert_eq!(frame, &m[..]);
        s = &s[sp + 1 + len..];
        check(frame, want);
    }
    assert!(s.is_empty());
});
