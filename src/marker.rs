//! The vocabulary `watchdog udplogger` and `watchdog scan` share: marker
//! lines, the receiver's own word about what it could not deliver as sent
//! (docs/udplogger.md, "Markers"). `udplogger` renders them, `scan` parses
//! them back; both use this one type, so a kind or a field cannot drift
//! apart between writer and reader. A leaf: it imports nothing of the crate.
//!
//! Text form, one line:
//!
//! ```text
//! <time> udplogger <about> <kind>: <message> <key>=<value> ...
//! 2026-11-22T04:10:32.271684Z udplogger 127.0.0.2:6665 gap: 3 records missing count=3 from=2042 to=2044
//! ```
//!
//! The message is for people; the trailing `key=value` tokens (values
//! without spaces) are for programs, and are the only part a reader
//! interprets ([`parse_line`]; [`parse_json`] for the JSON form). The JSON form carries the same fields as JSON members:
//! `{"time":..,"source":"udplogger","about":..,"marker":"gap","text":"3
//! records missing","count":3,"from":2042,"to":2044}`.

use std::fmt::Write as _;

/// The source column of marker lines. No sender can produce it: a
/// sender's source always has a port.
pub const SOURCE: &str = "udplogger";

/// A forward jump in an extended sender's sequence larger than this is
/// not taken as records lost in transit (a burst the receiver missed is
/// far smaller: the kernel's whole log buffer holds well under a million
/// records) but as a sequence that does not continue — netconsole reloaded
/// long after, or a forged header — and leaves a `reset` marker. It keeps
/// one datagram from adding 2^64 to the missing-records counter.
pub const MAX_GAP: u64 = 1 << 24;

/// What a marker is about; its name is the word before the colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gap,
    Reset,
    Incomplete,
    Cut,
    KernelDrop,
    WriteFailed,
    /// Reserved for a forward target that dropped messages.
    Dropped,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Gap,
        Kind::Reset,
        Kind::Incomplete,
        Kind::Cut,
        Kind::KernelDrop,
        Kind::WriteFailed,
        Kind::Dropped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Gap => "gap",
            Kind::Reset => "reset",
            Kind::Incomplete => "incomplete",
            Kind::Cut => "cut",
            Kind::KernelDrop => "kernel_drop",
            Kind::WriteFailed => "write_failed",
            Kind::Dropped => "dropped",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What happened, with its structured fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Extended records `from..=to` never arrived (`to - from < MAX_GAP`).
    Gap { from: u64, to: u64 },
    /// The sequence did not continue: from `last` to `seq`, backwards (the
    /// sender rebooted or reloaded netconsole) or forward by more than
    /// [`MAX_GAP`].
    Reset { last: u64, seq: u64 },
    /// A fragmented record stopped arriving: `got` of `total` bytes came
    /// and what came is written.
    Incomplete { seq: u64, got: u64, total: u64 },
    /// A line or record was longer than `max_line_bytes`: `kept` bytes are
    /// written.
    /// With `total`, the rest (of a fragmented record) is dropped; without,
    /// the rest follows as the next line. `seq` for extended records.
    Cut {
        seq: Option<u64>,
        kept: u64,
        total: Option<u64>,
    },
    /// The kernel dropped `count` datagrams on a socket: receive buffer full.
    KernelDrop { count: u64 },
    /// Writing works again; `count` lines were dropped since `since`.
    WriteFailed { count: u64, since: String },
    /// A forward target dropped `count` messages.
    Dropped { count: u64 },
}

/// One marker: about whom (a sender `addr:port`, a listening socket, `-`
/// for the log file itself, a forward target), what, and why (`reason`:
/// an error text for people; in the text form it is part of the message
/// and not read back, the JSON form carries it as a member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub about: String,
    pub body: Body,
    pub reason: Option<String>,
}

/// A field value: numbers, and strings without spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Num(u64),
    Str(&'a str),
}

impl Marker {
    pub fn new(about: impl Into<String>, body: Body) -> Marker {
        Marker {
            about: about.into(),
            body,
            reason: None,
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Marker {
        self.reason = Some(reason.into());
        self
    }

    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Gap { .. } => Kind::Gap,
            Body::Reset { .. } => Kind::Reset,
            Body::Incomplete { .. } => Kind::Incomplete,
            Body::Cut { .. } => Kind::Cut,
            Body::KernelDrop { .. } => Kind::KernelDrop,
            Body::WriteFailed { .. } => Kind::WriteFailed,
            Body::Dropped { .. } => Kind::Dropped,
        }
    }

    /// Messages this marker says are missing from the log: the records of
    /// a gap, the lines of a write failure. (A kernel drop counts
    /// datagrams, which may hold any number of lines; a forward target's
    /// drops are missing elsewhere, not here.)
    pub fn lost(&self) -> Option<u64> {
        match self.body {
            Body::Gap { from, to } => Some(gap_len(from, to)),
            Body::WriteFailed { count, .. } => Some(count),
            _ => None,
        }
    }

    /// The structured fields, in the order they are written.
    pub fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use Value::{Num, Str};
        match &self.body {
            Body::Gap { from, to } => vec![
                ("count", Num(gap_len(*from, *to))),
                ("from", Num(*from)),
                ("to", Num(*to)),
            ],
            Body::Reset { last, seq } => vec![("last", Num(*last)), ("seq", Num(*seq))],
            Body::Incomplete { seq, got, total } => vec![
                ("seq", Num(*seq)),
                ("got", Num(*got)),
                ("total", Num(*total)),
            ],
            Body::Cut { seq, kept, total } => {
                let mut v = Vec::new();
                if let Some(s) = seq {
                    v.push(("seq", Num(*s)));
                }
                v.push(("kept", Num(*kept)));
                if let Some(t) = total {
                    v.push(("total", Num(*t)));
                }
                v
            }
            Body::KernelDrop { count } | Body::Dropped { count } => vec![("count", Num(*count))],
            Body::WriteFailed { count, since } => {
                vec![("count", Num(*count)), ("since", Str(since))]
            }
        }
    }

    /// The human part of the message.
    pub fn message(&self) -> String {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        let why = |r: &Option<String>| r.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        match &self.body {
            Body::Gap { from, to } => {
                let n = gap_len(*from, *to);
                format!("{n} record{} missing", s(n))
            }
            Body::Reset { last, seq } if seq <= last => format!(
                "sequence restarted at {seq} after {last}: the sender rebooted or reloaded netconsole"
            ),
            Body::Reset { last, seq } => format!(
                "sequence jumped from {last} to {seq}, more than {MAX_GAP} records: taken as a restart, not as missing records"
            ),
            Body::Incomplete { seq, got, total } => format!(
                "record {seq} incomplete: {got} of {total} bytes arrived; writing what came"
            ),
            Body::Cut {
                seq,
                kept,
                total: None,
            } => match seq {
                Some(q) => format!("record {q} cut at {kept} bytes; it continues on the next line"),
                None => format!("line cut at {kept} bytes; it continues on the next line"),
            },
            Body::Cut {
                seq,
                kept,
                total: Some(total),
            } => {
                let what = seq.map_or("record".to_string(), |q| format!("record {q}"));
                format!("{what} has {total} bytes: only the first {kept} (max_line_bytes) are written")
            }
            Body::KernelDrop { count } => format!(
                "the kernel dropped {count} datagram{} on this socket: receive buffer full",
                s(*count)
            ),
            Body::WriteFailed { count, since } => format!(
                "writing resumed: {count} line{} dropped since {since}{}; lines held in memory meanwhile were written above",
                s(*count),
                why(&self.reason)
            ),
            Body::Dropped { count } => {
                format!("{count} message{} not forwarded{}", s(*count), why(&self.reason))
            }
        }
    }

    /// `<message> key=value ...`: what follows `<kind>: ` in the text form.
    pub fn text(&self) -> String {
        let mut t = self.message();
        for (k, v) in self.fields() {
            let _ = match v {
                Value::Num(n) => write!(t, " {k}={n}"),
                Value::Str(s) => write!(t, " {k}={}", token(s)),
            };
        }
        t
    }

    /// Appends the text-form line (with its newline). Control characters
    /// that an error text might carry are written as `\xNN`, the kernel's
    /// own escape, so a marker is always one line.
    pub fn write_text(&self, out: &mut Vec<u8>, time: &str) {
        let line = format!(
            "{time} {SOURCE} {} {}: {}",
            token(&self.about),
            self.kind().name(),
            self.text()
        );
        push_escaped(out, &line);
        out.push(b'\n');
    }

    /// Appends the JSON-form line (with its newline), members in the
    /// order of a received line's (`time`, `source`, ...) then the fields.
    /// Strings are escaped as in the text form first, like the text of
    /// received lines.
    pub fn write_json(&self, out: &mut Vec<u8>, time: &str) {
        let mut o = String::from("{");
        let mut member = |k: &str, v: serde_json::Value| {
            if o.len() > 1 {
                o.push(',');
            }
            o.push_str(&serde_json::Value::from(k).to_string());
            o.push(':');
            o.push_str(&v.to_string());
        };
        member("time", clean(time).into());
        member("source", SOURCE.into());
        member("about", clean(&self.about).into());
        member("marker", self.kind().name().into());
        member("text", clean(&self.message()).into());
        for (k, v) in self.fields() {
            member(
                k,
                match v {
                    Value::Num(n) => n.into(),
                    Value::Str(s) => clean(s).into(),
                },
            );
        }
        if let Some(r) = &self.reason {
            member("reason", clean(r).into());
        }
        o.push_str("}\n");
        out.extend_from_slice(o.as_bytes());
    }
}

/// Records from `from` to `to`, both included (at least 1).
fn gap_len(from: u64, to: u64) -> u64 {
    to.saturating_sub(from).saturating_add(1)
}

/// A value as one token: spaces would end it early, so they become `_`.
fn token(s: &str) -> String {
    if s.is_empty() {
        return "-".to_string();
    }
    s.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(clean(s).as_bytes());
}

/// Control characters as `\xNN`, the kernel's own escape.
fn clean(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let mut tmp = [0u8; 4];
            for b in c.encode_utf8(&mut tmp).bytes() {
                let _ = write!(o, "\\x{b:02x}");
            }
        } else {
            o.push(c);
        }
    }
    o
}

/// A marker line read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The time column, unparsed.
    pub time: &'a str,
    pub about: &'a str,
    pub kind: &'a str,
    /// `None` for a kind this version does not know, or one whose fields
    /// are missing or malformed: still a marker line, never kernel text.
    pub marker: Option<Marker>,
}

/// Reads `<time> udplogger <about> <kind>: <message>`, or `None` when the
/// line is not a marker line. The fields are taken from the trailing
/// `key=value` tokens; logs written before markers carried them (the
/// message alone) are read from their wording for the kinds that count
/// something, so logs already on disk keep their `lost` events.
pub fn parse_line(line: &str) -> Option<Parsed<'_>> {
    let mut w = line.splitn(4, ' ');
    let (time, source, about, rest) = (w.next()?, w.next()?, w.next()?, w.next()?);
    if source != SOURCE {
        return None;
    }
    let (kind, msg) = rest.split_once(": ")?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    let marker = Kind::from_name(kind).and_then(|k| {
        let f = Fields::of(msg);
        let body = body_from_fields(k, &f).or_else(|| legacy_body(k, msg))?;
        Some(Marker::new(about, body))
    });
    Some(Parsed {
        time,
        about,
        kind,
        marker,
    })
}

/// Where a marker's fields are read from: the text form's tokens or the
/// JSON form's members. One reader ([`body_from_fields`]) serves both.
trait FieldSource {
    fn str(&self, key: &str) -> Option<&str>;
    fn num(&self, key: &str) -> Option<u64>;
}

/// The trailing run of `key=value` tokens of a message.
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn of(msg: &'a str) -> Fields<'a> {
        let mut v = Vec::new();
        for tok in msg.rsplit(' ') {
            let Some((k, val)) = tok.split_once('=') else {
                break;
            };
            if k.is_empty()
                || val.is_empty()
                || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                break;
            }
            v.push((k, val));
        }
        Fields(v)
    }
}

impl FieldSource for Fields<'_> {
    /// The last occurrence wins: the writer puts its fields last.
    fn str(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn num(&self, key: &str) -> Option<u64> {
        let v = self.str(key)?;
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse().ok()
    }
}

impl FieldSource for serde_json::Map<String, serde_json::Value> {
    fn str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    fn num(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }
}

/// Reads a marker of the JSON form (`"source": "udplogger"` and a
/// `marker` member), or `None` for any other object.
pub fn parse_json(obj: &serde_json::Map<String, serde_json::Value>) -> Option<Parsed<'_>> {
    if obj.str("source")? != SOURCE {
        return None;
    }
    let kind = obj.str("marker")?;
    let about = obj.str("about")?;
    let marker = Kind::from_name(kind)
        .and_then(|k| body_from_fields(k, obj))
        .map(|body| Marker {
            about: about.to_string(),
            body,
            reason: obj.str("reason").map(str::to_string),
        });
    Some(Parsed {
        time: obj.str("time")?,
        about,
        kind,
        marker,
    })
}

fn body_from_fields(kind: Kind, f: &impl FieldSource) -> Option<Body> {
    Some(match kind {
        Kind::Gap => {
            let (from, to) = (f.num("from")?, f.num("to")?);
            if to < from {
                return None;
            }
            Body::Gap { from, to }
        }
        Kind::Reset => Body::Reset {
            last: f.num("last")?,
            seq: f.num("seq")?,
        },
        Kind::Incomplete => Body::Incomplete {
            seq: f.num("seq")?,
            got: f.num("got")?,
            total: f.num("total")?,
        },
        Kind::Cut => Body::Cut {
            seq: f.num("seq"),
            kept: f.num("kept")?,
            total: f.num("total"),
        },
        Kind::KernelDrop => Body::KernelDrop {
            count: f.num("count")?,
        },
        Kind::WriteFailed => Body::WriteFailed {
            count: f.num("count")?,
            since: f.str("since")?.to_string(),
        },
        Kind::Dropped => Body::Dropped {
            count: f.num("count")?,
        },
    })
}

/// Markers as written before they carried fields (logs already on disk):
/// `gap: 3 records missing (seq 1201..1203)`, `reset: sequence restarted
/// at 7 after 2045: ...`, `kernel_drop: the kernel dropped 7 datagrams
/// ...`, `write_failed: writing resumed: 5 lines dropped since T (...)`.
fn legacy_body(kind: Kind, msg: &str) -> Option<Body> {
    let numbers = || {
        msg.split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|n| n.parse::<u64>().ok())
    };
    match kind {
        Kind::Gap => {
            let (_, range) = msg.split_once("(seq ")?;
            let (from, rest) = range.split_once("..")?;
            let to = rest.split_once(')')?.0;
            let (from, to) = (from.parse().ok()?, to.parse().ok()?);
            (from <= to).then_some(Body::Gap { from, to })
        }
        Kind::Reset => {
            let rest = msg.strip_prefix("sequence restarted at ")?;
            let (seq, rest) = rest.split_once(" after ")?;
            let last = rest.split(|c: char| !c.is_ascii_digit()).next()?;
            Some(Body::Reset {
                last: last.parse().ok()?,
                seq: seq.parse().ok()?,
            })
        }
        Kind::KernelDrop => Some(Body::KernelDrop {
            count: numbers().next()??,
        }),
        Kind::WriteFailed => {
            let rest = msg.strip_prefix("writing resumed: ")?;
            let (count, rest) = rest.split_once(" lines dropped since ")?;
            let since = rest.split(' ').next()?;
            Some(Body::WriteFailed {
                count: count.parse().ok()?,
                since: since.to_string(),
            })
        }
        Kind::Incomplete | Kind::Cut | Kind::Dropped => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_bodies() -> Vec<Marker> {
        vec![
            Marker::new(
                "127.0.0.2:6665",
                Body::Gap {
                    from: 2042,
                    to: 2044,
                },
            ),
            Marker::new("127.0.0.2:6665", Body::Reset { last: 2045, seq: 7 }),
            Marker::new(
                "[::1]:6665",
                Body::Reset {
                    last: 5,
                    seq: u64::MAX,
                },
            ),
            Marker::new(
                "[fe80::1]:6666",
                Body::Incomplete {
                    seq: 17,
                    got: 500,
                    total: 1500,
                },
            ),
            Marker::new(
                "10.0.0.1:6665",
                Body::Cut {
                    seq: None,
                    kept: 100,
                    total: None,
                },
            ),
            Marker::new(
                "10.0.0.1:6665",
                Body::Cut {
                    seq: Some(9),
                    kept: 8,
                    total: Some(12),
                },
            ),
            Marker::new(
                "10.0.0.1:6665",
                Body::Cut {
                    seq: Some(3),
                    kept: 16384,
                    total: None,
                },
            ),
            Marker::new("0.0.0.0:6666", Body::KernelDrop { count: 7 }),
            Marker::new(
                "-",
                Body::WriteFailed {
                    count: 5,
                    since: "2026-11-22T04:25:12.800000+00:00".into(),
                },
            ),
            Marker::new("syslog+tcp://logs:6514", Body::Dropped { count: 1 }),
        ]
    }

    #[test]
    fn documented_text_form() {
        let m = Marker::new(
            "127.0.0.2:6665",
            Body::Gap {
                from: 2042,
                to: 2044,
            },
        );
        let mut b = Vec::new();
        m.write_text(&mut b, "2026-11-22T04:10:32.271684Z");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "2026-11-22T04:10:32.271684Z udplogger 127.0.0.2:6665 gap: 3 records missing count=3 from=2042 to=2044\n"
        );
        let m = Marker::new(
            "-",
            Body::WriteFailed {
                count: 1,
                since: "T0".into(),
            },
        )
        .with_reason("No space left on device (os error 28)\nx");
        assert_eq!(
            m.text(),
            "writing resumed: 1 line dropped since T0 (No space left on device (os error 28)\nx); lines held in memory meanwhile were written above count=1 since=T0"
        );
        let mut b = Vec::new();
        m.write_text(&mut b, "T1");
        let line = String::from_utf8(b).unwrap();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.contains("(os error 28)\\x0ax)"), "{line}");
    }

    #[test]
    fn text_round_trips_every_kind() {
        let mut kinds = Vec::new();
        for m in all_bodies() {
            let mut b = Vec::new();
            m.write_text(&mut b, "2026-11-22T04:10:32.271684Z");
            let line = String::from_utf8(b).unwrap();
            let p = parse_line(line.trim_end()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(p.kind, m.kind().name());
            assert_eq!(p.about, m.about);
            assert_eq!(p.marker.as_ref(), Some(&m), "{line}");
            kinds.push(m.kind());
        }
        for k in Kind::ALL {
            assert!(kinds.contains(&k), "{k:?} untested");
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
    }

    #[test]
    fn json_form_has_the_fields_as_members() {
        let m = Marker::new(
            "127.0.0.2:6665",
            Body::Gap {
                from: 2042,
                to: 2044,
            },
        );
        let mut b = Vec::new();
        m.write_json(&mut b, "2026-11-22T04:10:32.271684Z");
        assert_eq!(
            String::from_utf8(b.clone()).unwrap(),
            "{\"time\":\"2026-11-22T04:10:32.271684Z\",\"source\":\"udplogger\",\"about\":\"127.0.0.2:6665\",\"marker\":\"gap\",\"text\":\"3 records missing\",\"count\":3,\"from\":2042,\"to\":2044}\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"time":"2026-11-22T04:10:32.271684Z","source":"udplogger",
                "about":"127.0.0.2:6665","marker":"gap","text":"3 records missing",
                "count":3,"from":2042,"to":2044})
        );
        let m = Marker::new(
            "-",
            Body::WriteFailed {
                count: 2,
                since: "T0".into(),
            },
        )
        .with_reason("EIO\u{1b}");
        let mut b = Vec::new();
        m.write_json(&mut b, "T1");
        assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (v["count"].as_u64(), v["since"].as_str()),
            (Some(2), Some("T0"))
        );
        assert_eq!(v["reason"], "EIO\\x1b");
    }

    #[test]
    fn json_round_trips_every_kind() {
        for m in all_bodies() {
            let m = m.with_reason("why");
            let mut b = Vec::new();
            m.write_json(&mut b, "2026-11-22T04:10:32.271684Z");
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&b).unwrap();
            let p = parse_json(&v).unwrap();
            assert_eq!(
                (p.time, p.kind),
                ("2026-11-22T04:10:32.271684Z", m.kind().name())
            );
            assert_eq!(p.marker.as_ref(), Some(&m));
        }
        let line: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"time":"T","source":"10.0.0.1:6665","text":"x"}"#).unwrap();
        assert!(parse_json(&line).is_none());
        let odd: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"time":"T","source":"udplogger","about":"a:1","marker":"gap","from":"1","to":2}"#,
        )
        .unwrap();
        assert_eq!(parse_json(&odd).map(|p| p.marker), Some(None));
    }

    #[test]
    fn counts_come_from_fields_not_wording() {
        // Prose that says another number than the fields: the fields win.
        let p = parse_line("T udplogger 1.2.3.4:5 gap: 99 records missing count=2 from=10 to=11")
            .unwrap();
        assert_eq!(p.marker.unwrap().lost(), Some(2));
        let p =
            parse_line("T udplogger - write_failed: resumed: 99 lines count=4 since=T0").unwrap();
        assert_eq!(p.marker.unwrap().lost(), Some(4));
        // Not markers.
        assert!(parse_line("T 1.2.3.4:5 gap: 3 records missing count=3").is_none());
        assert!(parse_line("T udplogger 1.2.3.4:5 no colon here").is_none());
        assert!(parse_line("T udplogger x Gap: upper case").is_none());
        // Marker lines whose fields are malformed or kind unknown: markers
        // still (never kernel text), with nothing to count.
        for l in [
            "T udplogger 1.2.3.4:5 gap: records missing count=x from=1 to=y",
            "T udplogger 1.2.3.4:5 gap: backwards from=5 to=4",
            "T udplogger 1.2.3.4:5 gap: 18446744073709551616 from=18446744073709551616 to=1",
            "T udplogger 1.2.3.4:5 future_kind: something count=3",
        ] {
            let p = parse_line(l).unwrap_or_else(|| panic!("{l}"));
            assert_eq!(p.marker, None, "{l}");
        }
        // The widest gap a writer can produce counts without overflow.
        let m = Marker::new(
            "a:1",
            Body::Gap {
                from: 0,
                to: u64::MAX,
            },
        );
        assert_eq!(m.lost(), Some(u64::MAX));
    }

    #[test]
    fn logs_written_before_fields_still_count() {
        let body = |l: &str| parse_line(l).and_then(|p| p.marker).map(|m| m.body);
        assert_eq!(
            body("2026-11-22T04:25:12.654996+00:00 udplogger 127.0.0.1:16667 gap: 3 records missing (seq 1201..1203)"),
            Some(Body::Gap { from: 1201, to: 1203 })
        );
        assert_eq!(
            body("T udplogger - write_failed: writing resumed: 5 lines dropped since 2026-11-22T04:25:12.800000+00:00 (No space left on device (os error 28)); lines held in memory meanwhile were written above"),
            Some(Body::WriteFailed { count: 5, since: "2026-11-22T04:25:12.800000+00:00".into() })
        );
        assert_eq!(
            body("T udplogger 127.0.0.2:6665 reset: sequence restarted at 7 after 2045: the sender rebooted or reloaded netconsole"),
            Some(Body::Reset { last: 2045, seq: 7 })
        );
        assert_eq!(
            body("T udplogger 0.0.0.0:6666 kernel_drop: the kernel dropped 7 datagrams (receive buffer full)"),
            Some(Body::KernelDrop { count: 7 })
        );
        assert_eq!(
            body("T udplogger 1.2.3.4:5 cut: line cut at 100 bytes; it continues on the next line"),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic(s in ".{0,200}") {
            let _ = parse_line(&s);
            let line = format!("T udplogger a:1 gap: {s}");
            proptest::prop_assert!(parse_line(&line).is_some());
        }
    }
}
