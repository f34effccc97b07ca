//! Sizes as the kernel command line writes them: `memparse()` suffixes and
//! the `crashkernel=` syntax (Documentation/admin-guide/kdump/kdump.rst).

use std::fmt;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// Parses `NUMBER[KMGTPE]` the way the kernel's `memparse()` does
/// (binary multiples, case-insensitive suffix, `0x` hex allowed).
pub fn memparse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, rest) = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let end = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        (
            u64::from_str_radix(&hex[..end], 16).map_err(|_| bad(t))?,
            &hex[end..],
        )
    } else {
        let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        (t[..end].parse::<u64>().map_err(|_| bad(t))?, &t[end..])
    };
    let shift = match rest {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return Err(bad(t)),
    };
    digits
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {} overflows 64 bits", super::quote(t)))
}

fn bad(t: &str) -> String {
    format!("expected a size like 256M or 1G, found {}", super::quote(t))
}

/// Prints a byte count the short way: `192M`, `1G`, `1536K`.
pub fn human(bytes: u64) -> String {
    for (unit, size) in [("G", GIB), ("M", MIB), ("K", KIB)] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    if bytes >= MIB {
        return format!("{:.1}M", bytes as f64 / MIB as f64);
    }
    format!("{bytes}B")
}

/// One `start-[end]:size` entry of a range-style `crashkernel=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashRange {
    pub start: u64,
    pub end: Option<u64>,
    pub size: u64,
}

/// A `crashkernel=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashKernel {
    /// RHEL 7/8 `crashkernel=auto`: the kernel picks a size (removed in RHEL 9).
    Auto,
    /// A fixed size, optionally `@offset` or `,high`/`,low`.
    Fixed(u64),
    /// Sizes that depend on how much RAM the machine has.
    Ranges(Vec<CrashRange>),
}

impl CrashKernel {
    pub fn parse(text: &str) -> Result<CrashKernel, String> {
        let t = text.trim();
        if t == "auto" {
            return Ok(CrashKernel::Auto);
        }
        // An offset or placement qualifier does not change the size.
        let t = t.split('@').next().unwrap_or(t);
        if !t.contains(':') {
            let size = t.split(',').next().unwrap_or(t);
            return memparse(size).map(CrashKernel::Fixed);
        }
        let mut ranges = Vec::new();
        for item in t.split(',') {
            let (range, size) = item
                .split_once(':')
                .ok_or_else(|| format!("expected start-end:size, found {}", super::quote(item)))?;
            let (start, end) = range.split_once('-').ok_or_else(|| {
                format!("expected a range like 1G-4G, found {}", super::quote(range))
            })?;
            let start = memparse(start)?;
            let end = if end.trim().is_empty() {
                None
            } else {
                Some(memparse(end)?)
            };
            if let Some(e) = end {
                if e <= start {
                    return Err(format!(
                        "range {} ends before it starts",
                        super::quote(range)
                    ));
                }
            }
            ranges.push(CrashRange {
                start,
                end,
                size: memparse(size)?,
            });
        }
        Ok(CrashKernel::Ranges(ranges))
    }

    /// What this setting reserves on a machine with `ram` bytes, as the
    /// kernel's `parse_crashkernel_mem()` chooses: the range with
    /// `start <= ram < end`. `None` for `auto` (decided by the kernel).
    pub fn size_for(&self, ram: u64) -> Option<u64> {
        match self {
            CrashKernel::Auto => None,
            CrashKernel::Fixed(s) => Some(*s),
            CrashKernel::Ranges(rs) => Some(
                rs.iter()
                    .find(|r| ram >= r.start && r.end.is_none_or(|e| ram < e))
                    .map_or(0, |r| r.size),
            ),
        }
    }
}

impl fmt::Display for CrashKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashKernel::Auto => write!(f, "auto"),
            CrashKernel::Fixed(s) => write!(f, "{}", human(*s)),
            CrashKernel::Ranges(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{}-", human(r.start))?;
                    if let Some(e) = r.end {
                        write!(f, "{}", human(e))?;
                    }
                    write!(f, ":{}", human(r.size))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memparse_suffixes() {
        assert_eq!(memparse("256M"), Ok(256 * MIB));
        assert_eq!(memparse("1g"), Ok(GIB));
        assert_eq!(memparse("4096"), Ok(4096));
        assert_eq!(memparse("0x1000"), Ok(4096));
        assert_eq!(memparse("512k"), Ok(512 * KIB));
        assert!(memparse("").is_err());
        assert!(memparse("12Q").is_err());
        assert!(memparse("99999999999E").is_err());
    }

    #[test]
    fn crashkernel_forms() {
        let rhel9 = CrashKernel::parse("1G-4G:192M,4G-64G:256M,64G-:512M").unwrap();
        assert_eq!(rhel9.size_for(2 * GIB), Some(192 * MIB));
        assert_eq!(rhel9.size_for(4 * GIB), Some(256 * MIB));
        assert_eq!(rhel9.size_for(512 * GIB), Some(512 * MIB));
        assert_eq!(rhel9.size_for(512 * MIB), Some(0));
        assert_eq!(rhel9.to_string(), "1G-4G:192M,4G-64G:256M,64G-:512M");
        assert_eq!(CrashKernel::parse("auto").unwrap(), CrashKernel::Auto);
        assert_eq!(
            CrashKernel::parse("128M@16M").unwrap(),
            CrashKernel::Fixed(128 * MIB)
        );
        assert_eq!(
            CrashKernel::parse("512M,high").unwrap(),
            CrashKernel::Fixed(512 * MIB)
        );
        assert_eq!(
            CrashKernel::parse("2G-:256M@64M")
                .unwrap()
                .size_for(8 * GIB),
            Some(256 * MIB)
        );
        assert!(CrashKernel::parse("4G-1G:128M").is_err());
        assert!(CrashKernel::parse("1G:128M").is_err());
        assert!(CrashKernel::parse("x").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*", ram in any::<u64>()) {
            let _ = memparse(&s);
            if let Ok(c) = CrashKernel::parse(&s) {
                let _ = c.size_for(ram);
                let _ = c.to_string();
            }
        }
        #[test]
        fn ranges_roundtrip(a in 1u64..64, b in 1u64..64, s in 1u64..1024) {
            let text = format!("{}G-{}G:{}M", a, a + b, s);
            let c = CrashKernel::parse(&text).unwrap();
            prop_assert_eq!(c.size_for(a * GIB), Some(s * MIB));
            prop_assert_eq!(c.size_for((a + b) * GIB), Some(0));
        }
    }
}
