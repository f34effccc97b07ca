//! Pure parsers for the kernel's own text: version strings, the command
//! line, size suffixes, /proc tables, the printk record header of
//! /dev/kmsg and extended netconsole. Reading is done by [`crate::host`];
//! everything here works on `&str` and is tested on literal kernel text,
//! malformed text included. The one exception, [`tracing`], locates the
//! tracing directory through the host for both `check` and `run`.

pub mod cmdline;
pub mod printk;
pub mod size;
pub mod tables;
pub mod tracing;
pub mod version;

pub use cmdline::Cmdline;
pub use version::KernelVersion;

/// Parses a decimal integer the way a sysctl prints it, with a message fit
/// for a finding: `expected an integer, found "abc"`.
pub fn parse_int(text: &str) -> Result<i64, String> {
    let t = text.trim();
    t.parse::<i64>()
        .map_err(|_| format!("expected an integer, found {}", quote(t)))
}

/// Like [`parse_int`] for values that cannot be negative.
pub fn parse_uint(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse::<u64>()
        .map_err(|_| format!("expected a non-negative integer, found {}", quote(t)))
}

/// A short, printable rendering of a value for error messages: bad input
/// is shown, but never a megabyte of it.
pub fn quote(s: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        out.extend(c.escape_default());
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int(" 120\n"), Ok(120));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert!(parse_int("12a").unwrap_err().contains("\"12a\""));
        assert!(parse_uint("-1").is_err());
        assert!(parse_int("99999999999999999999999").is_err());
    }

    #[test]
    fn quote_is_bounded() {
        let q = quote(&"x".repeat(10_000));
        assert!(q.len() < 60);
        assert_eq!(quote("a\u{0}"), "\"a\\u{0}\"");
    }

    proptest! {
        #[test]
        fn parse_int_never_panics(s in ".*") {
            let _ = parse_int(&s);
            let _ = parse_uint(&s);
            let _ = quote(&s);
        }
    }
}
