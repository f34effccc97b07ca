//! The header of one printk record as the kernel prints it for readers of
//! `/dev/kmsg` and for extended netconsole — one parser for `run`, `scan`
//! and `udplogger`:
//!
//! ```text
//! [RELEASE,]PRI,SEQ,TS_USEC,FLAG[,caller=T123][,ncfrag=OFF/TOTAL];TEXT[\n KEY=VALUE...]
//! ```
//!
//! - `PRI,SEQ,TS_USEC,FLAG[,caller=..]`: `info_print_ext_header()` in
//!   kernel/printk/printk.c (`msg_print_ext_header()` before 5.10); `caller=`
//!   with CONFIG_PRINTK_CALLER (5.1+). PRI is facility × 8 + level.
//! - FLAG: `-`, or `c` for a record that was continued (LOG_CONT); kernels
//!   before 5.10 print `c` on the first piece of a continued line and `+`
//!   on the pieces that follow.
//! - RELEASE: `uname -r`, prepended by netconsole's `release` option (`r`
//!   in `netconsole=`, 4.20+; drivers/net/netconsole.c `"%s,%s"`).
//! - `ncfrag=OFF/TOTAL`: netconsole splits a body (text plus dictionary)
//!   longer than MAX_PRINT_CHUNK (1000) into pieces; each piece repeats the
//!   header, OFF is the piece's byte offset in the body, TOTAL its length
//!   (Documentation/networking/netconsole.rst, "Extended console").
//! - TEXT: non-printable bytes and `\` are escaped by the kernel as `\xNN`,
//!   so a newline ends the text; dictionary lines (` SUBSYSTEM=pci`) and
//!   netconsole's userdata lines follow it.
//!
//! The text is opaque here: the first `;` ends the header (the header
//! never holds one), later ones belong to the text. Pure: works on bytes,
//! tested on literal kernel lines, malformed ones included.

/// The header is at most this long: a 64-byte release, three numbers of
/// at most 20 digits, a flag, `caller=` and `ncfrag=` fit with room to
/// spare. Past it a `;` is text, not the end of a header, and a long line
/// is never scanned whole.
pub const MAX_HEADER: usize = 256;

/// Longest kernel release (`__NEW_UTS_LEN`).
const MAX_RELEASE: usize = 64;

/// The continuation flag of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `-`: a record of its own.
    Whole,
    /// `c`: a continued record (5.10+: the whole continued line; before:
    /// its first piece).
    Begin,
    /// `+`: a later piece of a continued line (kernels before 5.10).
    More,
}

/// One parsed header. `release` and `caller` borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Kernel release, when netconsole's `release` option prepended it.
    pub release: Option<&'a str>,
    /// Syslog priority: facility × 8 + level.
    pub pri: u32,
    pub seq: u64,
    /// Microseconds since boot.
    pub ts_usec: u64,
    pub flag: Flag,
    /// `T123` (task id) or `C1` (CPU), with CONFIG_PRINTK_CALLER (5.1+).
    pub caller: Option<&'a str>,
    /// `(offset, total)` of a netconsole fragment; `offset < total`.
    pub frag: Option<(usize, usize)>,
}

impl Header<'_> {
    /// printk level 0 (emergency) .. 7 (debug).
    pub fn level(&self) -> u8 {
        // Masked to three bits: the cast cannot truncate.
        (self.pri & 7) as u8
    }

    /// Syslog facility: 0 for the kernel, others for lines userspace wrote
    /// to /dev/kmsg.
    pub fn facility(&self) -> u32 {
        self.pri >> 3
    }
}

/// Decimal digits only (no sign, no space), at most 20 of them, that fit
/// in `T`.
fn number<T: TryFrom<u64>>(s: &[u8]) -> Option<T> {
    // By hand, not `str::parse`: four of these per extended record.
    let mut at = 0;
    let v = digits(s, &mut at)?;
    if at < s.len() {
        return None;
    }
    T::try_from(v).ok()
}

/// A release as `uname -r` prints it: starts with the version's digit,
/// printable, no space, no comma (it would end the field).
fn release(s: &[u8]) -> Option<&str> {
    if s.len() > MAX_RELEASE
        || !s.first().is_some_and(u8::is_ascii_digit)
        || !s.iter().all(u8::is_ascii_graphic)
    {
        return None;
    }
    std::str::from_utf8(s).ok()
}

/// Splits a record into its header and body (text and dictionary), or
/// `None` when `line` does not start with a header: then it is other
/// text (plain console output, another log format).
pub fn parse(line: &[u8]) -> Option<(Header<'_>, &[u8])> {
    common(line).or_else(|| general(line))
}

/// The digits at `line[*at..]` up to the next byte that is not one, as a
/// number ([`number`]'s rules), and `*at` moved past them.
fn digits(line: &[u8], at: &mut usize) -> Option<u64> {
    let start = *at;
    let mut v: u64 = 0;
    while let Some(&b) = line.get(*at) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // Nineteen digits cannot overflow: only the twentieth is checked,
        // and a twenty-first is too many.
        v = match *at - start {
            0..=18 => v * 10 + u64::from(d),
            19 => v.checked_mul(10)?.checked_add(u64::from(d))?,
            _ => return None,
        };
        *at += 1;
    }
    (*at > start).then_some(v)
}

/// The shape nearly every record has, `PRI,SEQ,TS_USEC,FLAG;` (no
/// release, caller or fragment), in one pass without splitting; `None`
/// for any other line, which [`general`] then reads. Where it answers,
/// it answers as `general` does (a property test holds it to that).
fn common(line: &[u8]) -> Option<(Header<'_>, &[u8])> {
    let mut at = 0;
    let mut field = |line: &[u8]| {
        let v = digits(line, &mut at)?;
        (line.get(at) == Some(&b',')).then(|| at += 1)?;
        Some(v)
    };
    let pri = u32::try_from(field(line)?).ok()?;
    let seq = field(line)?;
    let ts_usec = field(line)?;
    let flag = match line.get(at..at + 2)? {
        b"-;" => Flag::Whole,
        b"c;" => Flag::Begin,
        b"+;" => Flag::More,
        _ => return None,
    };
    Some((
        Header {
            release: None,
            pri,
            seq,
            ts_usec,
            flag,
            caller: None,
            frag: None,
        },
        &line[at + 2..],
    ))
}

/// [`parse`] for every shape of header: a release first, `caller=`,
/// `ncfrag=`, fields a later kernel may add.
fn general(line: &[u8]) -> Option<(Header<'_>, &[u8])> {
    let semi = memchr::memchr(b';', &line[..line.len().min(MAX_HEADER + 1)])?;
    let mut fields = line[..semi].split(|&b| b == b',');
    let mut first = fields.next()?;
    let mut rel = None;
    if number::<u32>(first).is_none() {
        rel = Some(release(first)?);
        first = fields.next()?;
    }
    let pri = number(first)?;
    let seq = number(fields.next()?)?;
    let ts_usec = number(fields.next()?)?;
    let flag = match fields.next()? {
        b"-" => Flag::Whole,
        b"c" => Flag::Begin,
        b"+" => Flag::More,
        _ => return None,
    };
    let mut caller = None;
    let mut frag = None;
    for f in fields {
        let eq = memchr::memchr(b'=', f)?;
        let (key, value) = (&f[..eq], &f[eq + 1..]);
        match key {
            b"ncfrag" => {
                let slash = memchr::memchr(b'/', value)?;
                let off: usize = number(&value[..slash])?;
                let total: usize = number(&value[slash + 1..])?;
                if off >= total || frag.is_some() {
                    return None;
                }
                frag = Some((off, total));
            }
            b"caller" => {
                let id = value.strip_prefix(b"T").or(value.strip_prefix(b"C"))?;
                number::<u32>(id)?;
                caller = Some(std::str::from_utf8(value).ok()?);
            }
            // A field a later kernel may add: `key=value`, lower case.
            _ if !key.is_empty() && key.iter().all(|b| b.is_ascii_lowercase() || *b == b'_') => {}
            _ => return None,
        }
    }
    Some((
        Header {
            release: rel,
            pri,
            seq,
            ts_usec,
            flag,
            caller,
            frag,
        },
        &line[semi + 1..],
    ))
}

/// Splits a whole body into the message text and its dictionary lines
/// (`KEY=VALUE`, the leading space /dev/kmsg puts before each removed;
/// netconsole's userdata lines have none). Empty lines are skipped.
pub fn split_body(body: &[u8]) -> (&[u8], impl Iterator<Item = &[u8]>) {
    let (text, rest) = match memchr::memchr(b'\n', body) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &b""[..]),
    };
    // Emptiness is judged after the leading space goes: a line of one
    // space is no dictionary entry either.
    let dict = rest
        .split(|&b| b == b'\n')
        .map(|l| l.strip_prefix(b" ").unwrap_or(l))
        .filter(|l| !l.is_empty());
    (text, dict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_digits_that_fit() {
        assert_eq!(number::<u64>(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(number::<u64>(b"18446744073709551616"), None);
        assert_eq!(number::<u64>(b"99999999999999999999"), None);
        assert_eq!(number::<u64>(b"000000000000000000001"), None);
        assert_eq!(number::<u32>(b"4294967295"), Some(u32::MAX));
        assert_eq!(number::<u32>(b"4294967296"), None);
        assert_eq!(number::<u64>(b"0"), Some(0));
        assert_eq!(number::<u64>(b"007"), Some(7));
        for bad in [&b""[..], b"+5", b"-1", b" 1", b"1 ", b"1a", b"\xff"] {
            assert_eq!(number::<u64>(bad), None, "{bad:?}");
        }
    }

    fn head(line: &[u8]) -> Header<'_> {
        parse(line)
            .unwrap_or_else(|| panic!("no header: {}", String::from_utf8_lossy(line)))
            .0
    }

    #[test]
    fn kmsg_records_of_real_kernels() {
        // 5.14 (RHEL 9) /dev/kmsg, with its dictionary.
        let (h, body) =
            parse(b"3,2202,369021551,-;INFO: task jbd2/dm-0-8:712 blocked for more than 122 seconds.\n SUBSYSTEM=block\n DEVICE=b253:0\n")
                .unwrap();
        assert_eq!(
            (h.release, h.pri, h.seq, h.ts_usec, h.flag, h.caller, h.frag),
            (None, 3, 2202, 369021551, Flag::Whole, None, None)
        );
        assert_eq!((h.level(), h.facility()), (3, 0));
        let (text, dict) = split_body(body);
        assert_eq!(
            text,
            b"INFO: task jbd2/dm-0-8:712 blocked for more than 122 seconds."
        );
        assert_eq!(
            dict.collect::<Vec<_>>(),
            [&b"SUBSYSTEM=block"[..], b"DEVICE=b253:0"]
        );
        // CONFIG_PRINTK_CALLER (6.x): `caller=T140`, `caller=C1`.
        let h = head(b"4,1043,125357424,-,caller=T140;INFO: task kworker/u4:2:87 blocked");
        assert_eq!(h.caller, Some("T140"));
        assert_eq!(head(b"6,7,10,c,caller=C1;x").caller, Some("C1"));
        // A line userspace wrote to /dev/kmsg: facility user (1), level 4.
        let h = head(b"12,5,100,-;from userspace");
        assert_eq!((h.level(), h.facility()), (4, 1));
        // Kernels before 5.10: a continued line's later pieces say `+`.
        assert_eq!(head(b"4,57,1000,+; done").flag, Flag::More);
        assert_eq!(head(b"4,56,1000,c;Booting").flag, Flag::Begin);
    }

    #[test]
    fn extended_netconsole_of_real_kernels() {
        // Documentation/networking/netconsole.rst: release prefix (`r`).
        let (h, body) =
            parse(b"6.4.0,6,444,501151268,-;netconsole: network logging started").unwrap();
        assert_eq!(h.release, Some("6.4.0"));
        assert_eq!((h.pri, h.seq, h.ts_usec), (6, 444, 501151268));
        assert_eq!(body, b"netconsole: network logging started");
        // Its fragment example; the second piece's text starts with a space.
        let (h, body) = parse(b"6,416,1758426,-,ncfrag=16/31; the 2nd chunk.").unwrap();
        assert_eq!(h.frag, Some((16, 31)));
        assert_eq!(body, b" the 2nd chunk.");
        let h = head(b"6.1.0-18-amd64,4,77,100,c,caller=T12,ncfrag=0/1500;abc");
        assert_eq!(
            (h.release, h.flag, h.caller, h.frag),
            (
                Some("6.1.0-18-amd64"),
                Flag::Begin,
                Some("T12"),
                Some((0, 1500))
            )
        );
        // RHEL release strings.
        assert_eq!(
            head(b"5.14.0-362.8.1.el9_3.x86_64,6,1,2,-;x").release,
            Some("5.14.0-362.8.1.el9_3.x86_64")
        );
    }

    #[test]
    fn text_is_opaque() {
        // Escapes and semicolons after the header are the message's own.
        let (_, body) = parse(b"4,9,9,-;a\\x1b[0m; b;c\\x5c").unwrap();
        assert_eq!(body, b"a\\x1b[0m; b;c\\x5c");
        let (text, dict) = split_body(b"only text");
        assert_eq!((text, dict.count()), (&b"only text"[..], 0));
        // netconsole userdata lines (6.9+) carry no leading space.
        let (text, dict) = split_body(b"msg\ncpu=1\n\n taskname=sh\n");
        assert_eq!(text, b"msg");
        assert_eq!(dict.collect::<Vec<_>>(), [&b"cpu=1"[..], b"taskname=sh"]);
    }

    #[test]
    fn fuzz_dictionary_line_of_one_space_is_no_entry() {
        // Found by fuzz/fuzz_targets/printk_header.rs: `" "` came out as an
        // empty dictionary entry (an empty `dict` member, a blank line).
        let (text, dict) = split_body(b"msg\n \n SUBSYSTEM=net\n \n");
        assert_eq!(text, b"msg");
        assert_eq!(dict.collect::<Vec<_>>(), [&b"SUBSYSTEM=net"[..]]);
    }

    #[test]
    fn malformed_headers_are_not_headers() {
        for bad in [
            &b""[..],
            b";",
            b"hello;world",
            b"[    1.234] plain console line; with semicolon",
            b"6,1,2;too few fields",
            b"6,1,2,x;bad flag",
            b"6,1,2,;empty flag",
            b"6,1,2,--;long flag",
            b"6,1,2,-,ncfrag=5/5;offset past end",
            b"6,1,2,-,ncfrag=a/5;not a number",
            b"6,1,2,-,ncfrag=1/5,ncfrag=2/5;twice",
            b"6,1,2,-,caller=X1;bad caller",
            b"6,1,2,-,garbage;field without =",
            b"6,1,2,-,Bad=1;upper-case key",
            b"-6,1,2,-;negative",
            b"+6,1,2,-;sign",
            b" 6,1,2,-;space",
            b"6,18446744073709551616,2,-;seq past u64",
            b"6,1,123456789012345678901,-;21 digits",
            b"4294967296,1,2,-;pri past u32",
            b"hello,6,1,2,-;release must start with a digit",
            b"6 .1,6,1,2,-;release with a space",
        ] {
            assert!(parse(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        let long_release = format!("6.{},6,1,2,-;x", "1".repeat(70));
        assert!(parse(long_release.as_bytes()).is_none());
        // A `;` beyond the longest header is text, not a header's end.
        let far = format!("6,1,2,-,x={};text", "a".repeat(MAX_HEADER));
        assert!(parse(far.as_bytes()).is_none());
        // Largest values still parse.
        let h = head(b"4294967295,18446744073709551615,18446744073709551615,-;max");
        assert_eq!((h.pri, h.seq, h.ts_usec), (u32::MAX, u64::MAX, u64::MAX));
    }

    proptest::proptest! {
        /// The one-pass reader of the common shape answers as the general
        /// one does, on headers built to be close to that shape (digits,
        /// commas, flags, a `;`, with a byte changed here and there) and
        /// on any bytes.
        #[test]
        fn the_common_shape_is_read_as_the_general_reader_reads_it(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[0-9]{1,22}").unwrap(),
                    proptest::string::string_regex("[,;c+=-]").unwrap(),
                    proptest::string::string_regex("[ -~]{0,3}").unwrap(),
                    proptest::strategy::Just("18446744073709551615".to_string()),
                    proptest::strategy::Just("4294967296".to_string()),
                    proptest::strategy::Just(",caller=T1".to_string()),
                    proptest::strategy::Just("6.1.0-18-amd64,".to_string()),
                ],
                0..12,
            ),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let line = parts.concat().into_bytes();
            if let Some(fast) = common(&line) {
                proptest::prop_assert_eq!(Some(fast), general(&line));
            }
            if let Some(fast) = common(&noise) {
                proptest::prop_assert_eq!(Some(fast), general(&noise));
            }
        }

        /// Headers of the common shape, numbers of any size, zeros in
        /// front, every flag and a few that are not: where the general
        /// reader takes one, so does the one-pass reader, alike.
        #[test]
        fn common_headers_take_the_one_pass_reader(
            pri in proptest::prelude::any::<u64>(),
            seq in proptest::prelude::any::<u64>(),
            ts in proptest::prelude::any::<u64>(),
            zeros in 0usize..3,
            flag in proptest::sample::select(vec!["-", "c", "+", "x", "", "--"]),
            text in "[ -~]{0,20}",
        ) {
            let pri = if pri % 2 == 0 { pri % 200 } else { pri };
            let z = "0".repeat(zeros);
            let line = format!("{z}{pri},{seq},{z}{ts},{flag};{text}").into_bytes();
            let want = general(&line);
            proptest::prop_assert_eq!(common(&line), want.clone());
            if let Some((h, body)) = want {
                proptest::prop_assert_eq!((h.seq, h.ts_usec, body), (seq, ts, text.as_bytes()));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            if let Some((h, body)) = parse(&line) {
                proptest::prop_assert!(body.len() < line.len());
                if let Some((off, total)) = h.frag {
                    proptest::prop_assert!(off < total);
                }
                let _ = split_body(body).1.count();
            }
        }
    }
}
