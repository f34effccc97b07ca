//! Small /proc tables: meminfo, loadavg, uptime, dentry-state, a process's
//! status, and the kernel build configuration.

use super::{parse_int, parse_uint, quote};

/// A `Key:   value kB` line of /proc/meminfo or /proc/PID/status, in bytes.
pub fn kb_field(text: &str, key: &str) -> Result<u64, String> {
    for line in text.lines() {
        let Some((k, rest)) = line.split_once(':') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let mut words = rest.split_whitespace();
        let n = parse_uint(words.next().unwrap_or("")).map_err(|e| format!("{key}: {e}"))?;
        return match words.next() {
            Some("kB") => n
                .checked_mul(1024)
                .ok_or_else(|| format!("{key}: value overflows")),
            None => Ok(n),
            Some(u) => Err(format!("{key}: unexpected unit {}", quote(u))),
        };
    }
    Err(format!("no {key} line"))
}

/// Total number of threads, the 4th field of /proc/loadavg (`running/total`).
pub fn loadavg_threads(text: &str) -> Result<u64, String> {
    let field = text
        .split_whitespace()
        .nth(3)
        .ok_or_else(|| "expected 5 fields like \"0.00 0.01 0.05 1/234 567\"".to_string())?;
    let (_, total) = field
        .split_once('/')
        .ok_or_else(|| format!("expected running/total, found {}", quote(field)))?;
    parse_uint(total)
}

/// Seconds since boot, the first field of /proc/uptime.
pub fn uptime_secs(text: &str) -> Result<f64, String> {
    let w = text.split_whitespace().next().unwrap_or("");
    match w.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "expected seconds like 12345.67, found {}",
            quote(w)
        )),
    }
}

/// /proc/sys/fs/dentry-state: `nr_dentry nr_unused age_limit want_pages
/// nr_negative dummy` (nr_negative since Linux 5.0; older kernels print 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DentryState {
    pub nr_dentry: i64,
    pub nr_unused: i64,
}

impl DentryState {
    pub fn parse(text: &str) -> Result<DentryState, String> {
        let mut w = text.split_whitespace();
        let (Some(a), Some(b)) = (w.next(), w.next()) else {
            return Err("expected at least 2 numbers (nr_dentry nr_unused …)".into());
        };
        Ok(DentryState {
            nr_dentry: parse_int(a).map_err(|e| format!("nr_dentry: {e}"))?,
            nr_unused: parse_int(b).map_err(|e| format!("nr_unused: {e}"))?,
        })
    }
}

/// Fraction of INT_MAX left before the pre-3.12 shrinker count
/// `(nr_unused / 100) * vfs_cache_pressure` wraps (negative once past it).
pub fn headroom(nr_unused: u64, pressure: u64) -> f64 {
    let product = (nr_unused / 100) as f64 * pressure as f64;
    1.0 - product / f64::from(i32::MAX)
}

/// A `CONFIG_NAME=value` line of a kernel build config (/boot/config-*).
pub fn kconfig_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meminfo() {
        let t =
            "MemTotal:       16266460 kB\nMemFree:         1063016 kB\nHugePages_Total:       0\n";
        assert_eq!(kb_field(t, "MemTotal"), Ok(16266460 * 1024));
        assert_eq!(kb_field(t, "HugePages_Total"), Ok(0));
        assert!(kb_field(t, "VmRSS").is_err());
        assert!(kb_field("MemTotal: lots kB", "MemTotal").is_err());
        assert!(kb_field("MemTotal: 18446744073709551615 kB", "MemTotal").is_err());
    }

    #[test]
    fn loadavg_and_uptime() {
        assert_eq!(loadavg_threads("0.00 0.01 0.05 1/234 5678\n"), Ok(234));
        assert!(loadavg_threads("0.00 0.01").is_err());
        assert!(loadavg_threads("0 0 0 12 1").is_err());
        assert_eq!(uptime_secs("350.25 690.10\n"), Ok(350.25));
        assert!(uptime_secs("NaN 1").is_err());
        assert!(uptime_secs("").is_err());
    }

    #[test]
    fn dentry_state() {
        // Linux 5.14 format, six fields.
        let d = DentryState::parse("123456\t100000\t45\t0\t2000\t0\n").unwrap();
        assert_eq!((d.nr_dentry, d.nr_unused), (123456, 100000));
        // 2.6.32 prints the same six columns.
        assert!(DentryState::parse("1 2 45 0 0 0").is_ok());
        assert!(DentryState::parse("1").is_err());
        assert!(DentryState::parse("x y").is_err());
    }

    #[test]
    fn dentry_headroom() {
        // Pre-3.12 shrinker: (nr_unused / 100) * pressure as an int.
        assert_eq!(headroom(0, 100), 1.0);
        assert!(headroom(2_147_483_600, 100) < 0.01);
        assert!(headroom(4_294_967_200, 100) < 0.0);
    }

    #[test]
    fn kconfig() {
        let t = "# comment\nCONFIG_LOG_BUF_SHIFT=20\nCONFIG_LOG_CPU_MAX_BUF_SHIFT=12\n";
        assert_eq!(kconfig_value(t, "CONFIG_LOG_BUF_SHIFT"), Some("20"));
        assert_eq!(kconfig_value(t, "CONFIG_LOG_CPU_MAX_BUF_SHIFT"), Some("12"));
        assert_eq!(kconfig_value(t, "CONFIG_X"), None);
    }

    proptest! {
        #[test]
        fn never_panic(s in ".*") {
            let _ = kb_field(&s, "MemTotal");
            let _ = loadavg_threads(&s);
            let _ = uptime_secs(&s);
            let _ = DentryState::parse(&s);
            let _ = kconfig_value(&s, "CONFIG_LOG_BUF_SHIFT");
        }
    }
}
