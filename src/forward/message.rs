//! RFC 5424 messages: the header, STRUCTURED-DATA and MSG, built into a
//! byte buffer. Pure: no I/O, no clock (the caller passes the time).
//!
//! The rules that matter for receivers (RFC 5424 section 6):
//! - HOSTNAME, APP-NAME, PROCID and MSGID are printable US-ASCII (33..126)
//!   of at most 255, 48, 128 and 32 characters, `-` when unknown;
//! - an SD-NAME (SD-ID or PARAM-NAME) is at most 32 of those characters,
//!   none of them `=`, space, `]` or `"`; a private SD-ID ends `@` and an
//!   enterprise number;
//! - in a PARAM-VALUE, `"`, `\` and `]` are escaped with a backslash;
//! - MSG is either any octets or, when it starts with the byte-order mark,
//!   UTF-8. We send the BOM only when MSG has non-ASCII text, so plain
//!   ASCII reads the same in receivers that keep the BOM in the message.

// The SD-IDs carry an IANA private enterprise number. watchdog has none
// of its own; 32473 is the number reserved for documentation (RFC 5612),
// the one every RFC 5424 example uses.

/// SD-ID of an event from `watchdog run`.
pub const SD_EVENT: &str = "watchdog@32473";
/// SD-ID of a line from `watchdog udplogger`.
pub const SD_NETCONSOLE: &str = "netconsole@32473";
/// SD-ID of a udplogger marker.
pub const SD_MARKER: &str = "udplogger@32473";
/// Longest message sent: rsyslog's default `maxMessageSize` (8 KiB).
/// Longer MSG text is cut at a character boundary; the header and the
/// structured data are kept whole.
pub const MAX_MESSAGE: usize = 8192;

/// Syslog facilities used here (RFC 5424 table 1).
pub const FACILITY_KERN: u8 = 0;
pub const FACILITY_DAEMON: u8 = 3;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One message to build. Strings are checked and cleaned as they are
/// written, so a caller cannot produce an invalid header.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub facility: u8,
    /// Severity 0 (emergency) ..= 7 (debug).
    pub severity: u8,
    /// RFC 3339 with a zone (`Z` or `±hh:mm`); `None` is the NILVALUE.
    pub timestamp: Option<&'a str>,
    pub hostname: Option<&'a str>,
    pub app_name: &'a str,
    pub procid: Option<&'a str>,
    pub msgid: &'a str,
}

/// A header field: printable US-ASCII only (others become `_`), at most
/// `max` characters, `-` when empty or absent.
fn token(out: &mut Vec<u8>, s: Option<&str>, max: usize) {
    let s = s.unwrap_or("");
    if s.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(
        s.bytes()
            .take(max)
            .map(|b| if (33..=126).contains(&b) { b } else { b'_' }),
    );
}

/// TIMESTAMP (RFC 5424 section 6.2.3): an RFC 3339 time with `T`, at most
/// six fraction digits and a zone. More fraction digits are cut (a time
/// read from a log may have nine); anything else is the NILVALUE, since a
/// receiver would refuse the whole message over it.
fn timestamp(out: &mut Vec<u8>, t: Option<&str>) {
    match t.and_then(rfc5424_time) {
        Some((head, zone)) => {
            out.extend_from_slice(head);
            out.extend_from_slice(zone);
        }
        None => out.push(b'-'),
    }
}

/// The time up to six fraction digits, and its zone; `None` when `t` is
/// not an RFC 5424 TIMESTAMP.
fn rfc5424_time(t: &str) -> Option<(&[u8], &[u8])> {
    let b = t.as_bytes();
    let num = |at: usize, len: usize, max: u32| -> Option<()> {
        let s = b.get(at..at + len)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        (v <= max).then_some(())
    };
    let at = |i: usize, c: u8| (b.get(i) == Some(&c)).then_some(());
    num(0, 4, 9999)?;
    at(4, b'-')?;
    num(5, 2, 12)?;
    at(7, b'-')?;
    num(8, 2, 31)?;
    at(10, b'T')?;
    num(11, 2, 23)?;
    at(13, b':')?;
    num(14, 2, 59)?;
    at(16, b':')?;
    num(17, 2, 60)?;
    if b[5..7] == *b"00" || b[8..10] == *b"00" {
        return None;
    }
    let mut end = 19;
    let mut rest = 19;
    if b.get(19) == Some(&b'.') {
        let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        end = 20 + digits.min(6);
        rest = 20 + digits;
    }
    let zone = &b[rest..];
    let ok = match zone {
        b"Z" => true,
        [s, ..] if (*s == b'+' || *s == b'-') && zone.len() == 6 => {
            num(rest + 1, 2, 23).is_some()
                && at(rest + 3, b':').is_some()
                && num(rest + 4, 2, 59).is_some()
        }
        _ => false,
    };
    ok.then(|| (&b[..end], zone))
}

/// An SD-NAME: like a token but also without `=`, `]` and `"`, at most 32.
fn sd_name(out: &mut Vec<u8>, s: &str) {
    if s.is_empty() {
        out.push(b'_');
        return;
    }
    out.extend(s.bytes().take(32).map(|b| match b {
        b'=' | b']' | b'"' => b'_',
        33..=126 => b,
        _ => b'_',
    }));
}

/// A PARAM-VALUE with `"`, `\` and `]` escaped. Control characters are
/// written as `\xNN` text (the kernel's own escape), so a value never
/// breaks a receiver's line-oriented output; invalid UTF-8 likewise.
fn param_value(out: &mut Vec<u8>, v: &[u8]) {
    let text = String::from_utf8_lossy(v);
    let valid = matches!(text, std::borrow::Cow::Borrowed(_));
    if !valid {
        escape_bytes(out, v, true);
        return;
    }
    for c in text.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            c if c.is_control() => push_hex(out, c),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

fn push_hex(out: &mut Vec<u8>, c: char) {
    let mut b = [0u8; 4];
    for byte in c.encode_utf8(&mut b).bytes() {
        out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
    }
}

/// Bytes that are not printable ASCII as `\xNN`; with `sd`, also the
/// three characters a PARAM-VALUE must escape.
fn escape_bytes(out: &mut Vec<u8>, v: &[u8], sd: bool) {
    for &b in v {
        match b {
            b'"' | b'\\' | b']' if sd => {
                out.push(b'\\');
                out.push(b);
            }
            b'\\' if !sd => out.extend_from_slice(b"\\x5c"),
            32..=126 => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
}

/// Decimal digits of `n`, without allocating (this runs once per line
/// received when udplogger forwards).
fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        // A digit: `n % 10` is below 10.
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&d[i..]);
}

/// One SD-ELEMENT under construction.
pub struct Sd<'a> {
    out: &'a mut Vec<u8>,
}

impl Sd<'_> {
    /// A parameter whose value is a number.
    pub fn num(&mut self, name: &str, value: u64) -> &mut Self {
        self.out.push(b' ');
        sd_name(self.out, name);
        self.out.extend_from_slice(b"=\"");
        push_num(self.out, value);
        self.out.push(b'"');
        self
    }

    pub fn param(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.out.push(b' ');
        sd_name(self.out, name);
        self.out.extend_from_slice(b"=\"");
        param_value(self.out, value);
        self.out.push(b'"');
        self
    }
}

/// Builds messages into one reused buffer.
#[derive(Debug, Default)]
pub struct Builder {
    buf: Vec<u8>,
    sd_open: bool,
    has_sd: bool,
}

impl Builder {
    /// Starts a message: HEADER, then the SD elements the caller adds.
    pub fn start(&mut self, h: &Header<'_>) -> &mut Self {
        self.buf.clear();
        self.sd_open = false;
        self.has_sd = false;
        let pri = u64::from(h.facility.min(23)) * 8 + u64::from(h.severity.min(7));
        self.buf.push(b'<');
        push_num(&mut self.buf, pri);
        self.buf.extend_from_slice(b">1 ");
        timestamp(&mut self.buf, h.timestamp);
        self.buf.push(b' ');
        token(&mut self.buf, h.hostname, 255);
        self.buf.push(b' ');
        token(&mut self.buf, Some(h.app_name), 48);
        self.buf.push(b' ');
        token(&mut self.buf, h.procid, 128);
        self.buf.push(b' ');
        token(&mut self.buf, Some(h.msgid), 32);
        self.buf.push(b' ');
        self
    }

    /// Opens an SD-ELEMENT; add parameters to what it returns.
    pub fn element(&mut self, id: &str) -> Sd<'_> {
        if self.sd_open {
            self.buf.push(b']');
        }
        self.buf.push(b'[');
        sd_name(&mut self.buf, id);
        self.sd_open = true;
        self.has_sd = true;
        Sd { out: &mut self.buf }
    }

    /// Ends the structured data and appends MSG (cut to fit
    /// [`MAX_MESSAGE`]); returns the message.
    pub fn finish(&mut self, msg: &[u8]) -> &[u8] {
        if self.sd_open {
            self.buf.push(b']');
        } else if !self.has_sd {
            self.buf.push(b'-');
        }
        self.sd_open = false;
        let room = MAX_MESSAGE.saturating_sub(self.buf.len() + 1 + BOM.len());
        if msg.is_empty() || room == 0 {
            // No MSG (the structured data may fill the limit: it is kept
            // whole), rather than a space or a BOM past the limit.
            return &self.buf;
        }
        self.buf.push(b' ');
        match std::str::from_utf8(msg) {
            Ok(s) if !s.is_ascii() => {
                let mut end = s.len().min(room);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                if end == 0 {
                    self.buf.pop();
                } else {
                    self.buf.extend_from_slice(BOM);
                    self.buf.extend_from_slice(&s.as_bytes()[..end]);
                }
            }
            Ok(s) => self
                .buf
                .extend_from_slice(&s.as_bytes()[..s.len().min(room)]),
            Err(_) => {
                // Not UTF-8: escaped to ASCII so every receiver keeps it.
                let start = self.buf.len();
                escape_bytes(&mut self.buf, msg, false);
                self.buf
                    .truncate(start + (self.buf.len() - start).min(room));
            }
        }
        &self.buf
    }
}

/// The severity of a syslog priority (its low three bits).
pub fn severity_of(pri: u32) -> u8 {
    // Masked to three bits: cannot truncate.
    (pri & 7) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>() -> Header<'a> {
        Header {
            facility: FACILITY_DAEMON,
            severity: 4,
            timestamp: Some("2026-11-29T11:47:15.123456Z"),
            hostname: Some("db1.example.com"),
            app_name: "watchdog",
            procid: Some("4711"),
            msgid: "hung_task",
        }
    }

    #[test]
    fn header_structured_data_and_message() {
        let mut b = Builder::default();
        b.start(&header());
        b.element(SD_EVENT)
            .param("comm", b"kworker/0:1 x")
            .num("pid", 42);
        let m = b.finish(b"hung task");
        assert_eq!(
            std::str::from_utf8(m).unwrap(),
            "<28>1 2026-11-29T11:47:15.123456Z db1.example.com watchdog 4711 hung_task [watchdog@32473 comm=\"kworker/0:1 x\" pid=\"42\"] hung task"
        );
    }

    #[test]
    fn param_values_escape_quote_backslash_and_bracket() {
        let mut b = Builder::default();
        b.start(&header());
        b.element("x@32473").param("v", b"a\"b\\c]d\ne");
        let m = std::str::from_utf8(b.finish(b"")).unwrap().to_string();
        assert!(m.ends_with(r#"[x@32473 v="a\"b\\c\]d\x0ae"]"#), "{m}");
    }

    #[test]
    fn names_and_tokens_never_break_the_syntax() {
        let mut b = Builder::default();
        b.start(&Header {
            hostname: Some("bad host"),
            procid: None,
            timestamp: None,
            msgid: "a-very-long-message-id-of-more-than-32-characters",
            ..header()
        });
        b.element("id with=\"odd]").param("k=ey", b"v");
        let m = std::str::from_utf8(b.finish(b"")).unwrap().to_string();
        assert_eq!(
            m,
            "<28>1 - bad_host watchdog - a-very-long-message-id-of-more-t [id_with__odd_ k_ey=\"v\"]"
        );
    }

    /// Found by the fuzzer (`rfc5424_roundtrip`): the TIMESTAMP was written
    /// as given, cleaned like a token, so `"\0\0 "` became `___` and a time
    /// read from a log with nanoseconds kept nine fraction digits: RFC 5424
    /// receivers refuse such a message whole.
    #[test]
    fn a_timestamp_that_is_not_rfc5424_is_the_nilvalue_and_fractions_are_cut() {
        let mut b = Builder::default();
        let ts = |t: &str, b: &mut Builder| {
            b.start(&Header {
                timestamp: Some(t),
                ..header()
            });
            let m = std::str::from_utf8(b.finish(b"")).unwrap().to_string();
            m.split(' ').nth(1).unwrap().to_string()
        };
        assert_eq!(ts("\0\0 ", &mut b), "-");
        assert_eq!(ts("2026-11-29 11:47:15Z", &mut b), "-");
        assert_eq!(ts("2026-13-29T11:47:15Z", &mut b), "-");
        assert_eq!(ts("2026-11-29T11:47:15", &mut b), "-", "no zone");
        assert_eq!(ts("+10000-01-01T00:00:00Z", &mut b), "-");
        assert_eq!(
            ts("2026-11-29T11:47:15.123456789+09:00", &mut b),
            "2026-11-29T11:47:15.123456+09:00"
        );
        assert_eq!(ts("2026-11-29T11:47:15Z", &mut b), "2026-11-29T11:47:15Z");
        assert_eq!(
            ts("2026-11-29T11:47:15.5-05:30", &mut b),
            "2026-11-29T11:47:15.5-05:30"
        );
    }

    /// Structured data that fills the limit leaves no room for MSG: then
    /// no MSG at all, not a BOM (or a space) past the limit.
    #[test]
    fn a_message_without_room_for_its_text_ends_with_the_structured_data() {
        let mut b = Builder::default();
        for text in ["grüße".as_bytes(), b"plain", b"\xff"] {
            b.start(&header());
            b.element(SD_EVENT).param("v", &[b'x'; MAX_MESSAGE]);
            let m = b.finish(text).to_vec();
            assert!(
                m.ends_with(b"\"]"),
                "{:?}",
                String::from_utf8_lossy(&m[m.len() - 9..])
            );
        }
    }

    #[test]
    fn no_structured_data_is_a_dash_and_utf8_gets_the_bom() {
        let mut b = Builder::default();
        b.start(&header());
        let m = b.finish("grüße".as_bytes()).to_vec();
        let tail = b" - \xEF\xBB\xBFgr\xC3\xBC\xC3\x9Fe";
        assert!(m.ends_with(tail), "{m:?}");
        b.start(&header());
        let m = b.finish(b"plain").to_vec();
        assert!(m.ends_with(b" - plain"));
    }

    #[test]
    fn invalid_utf8_is_escaped_and_long_text_cut() {
        let mut b = Builder::default();
        b.start(&header());
        let m = b.finish(b"a\xff\\b").to_vec();
        assert!(m.ends_with(b" - a\\xff\\x5cb"), "{m:?}");
        b.start(&header());
        let long = "é".repeat(MAX_MESSAGE);
        let m = b.finish(long.as_bytes()).to_vec();
        assert!(m.len() <= MAX_MESSAGE);
        let msg = &m[m.iter().position(|&c| c == 0xEF).unwrap() + 3..];
        assert!(std::str::from_utf8(msg).is_ok(), "cut inside a character");
    }
}
