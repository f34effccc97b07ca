//! The kernel-table parsers of src/kernel/ (`check` reads them from
//! /proc and /sys of hosts in any state): meminfo-style fields, loadavg,
//! uptime, dentry-state, kconfig, the command line, sizes and
//! `crashkernel=`, kernel releases, sysctl integers, and the quoting of
//! bad values in messages. Each accepted value must read back the same
//! when written the way the kernel writes it.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::kernel::{
    compare_builds, headroom, human, kb_field, kconfig_value, loadavg_threads, memparse, parse_int,
    parse_uint, quote, uptime_secs, Cmdline, CrashKernel, DentryState, KernelVersion,
};

const KEYS: [&str; 5] = ["MemTotal", "VmRSS", "HugePages_Total", "", "Mem Total"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A key from the input too: the first line, for the key=value lookups.
    let own_key = text.lines().next().unwrap_or("");

    for key in KEYS.iter().copied().chain([own_key]) {
        let _ = kb_field(text, key);
        if let Some(v) = kconfig_value(text, key) {
            assert!(text.contains(v));
        }
    }
    let _ = loadavg_threads(text);
    if let Ok(up) = uptime_secs(text) {
        assert!(up.is_finite() && up >= 0.0);
    }
    if let Ok(d) = DentryState::parse(text) {
        let _ = headroom(d.nr_unused.unsigned_abs(), d.nr_dentry.unsigned_abs());
    }
    if let Ok(n) = parse_int(text) {
        assert_eq!(parse_int(&n.to_string()), Ok(n));
    }
    if let Ok(n) = parse_uint(text) {
        assert_eq!(parse_uint(&n.to_string()), Ok(n));
    }
    let q = quote(text);
    assert!(!q.contains('\n') && q.starts_with('"') && q.ends_with('"'));
    assert!(q.chars().count() <= 2 + 1 + 40 * 10, "quote kept too much");

    let cmd = Cmdline::parse(text);
    for (k, v) in &cmd.params {
        assert!(cmd.has(k));
        // The kernel's parse_args() stops at a bare `--` (`--=x` is a
        // parameter like any other).
        assert!(!(k == "--" && v.is_none()), "parsing goes on past --");
        if let Some(v) = v {
            assert!(cmd.all(k).contains(&v.as_str()));
        }
    }
    for (k, _) in cmd.params.iter().take(8) {
        let last = cmd.all(k).last().copied();
        let got = cmd.get(k);
        // The last value wins, unless the last mention has none.
        if got.is_some() {
            assert_eq!(got, last);
        }
    }

    if let Ok(n) = memparse(text) {
        let h = human(n);
        if !h.contains('.') {
            let h = h.strip_suffix('B').unwrap_or(&h);
            assert_eq!(memparse(h), Ok(n), "human({n}) = {h}");
        }
    }
    if let Ok(ck) = CrashKernel::parse(text) {
        for ram in [0, 1 << 30, u64::MAX] {
            let _ = ck.size_for(ram);
        }
    }

    if let Some(v) = KernelVersion::parse(text) {
        let mut again = format!("{}.{}.{}", v.major, v.minor, v.patch);
        if !v.local.is_empty() {
            again.push('-');
            again.push_str(&v.local);
        }
        assert_eq!(KernelVersion::parse(&again), Some(v.clone()), "{again}");
        let _ = v.rhel_major();
        if let Some(b) = v.rhel_build() {
            assert!(!b.is_empty());
            let other = [358, 23, 2];
            assert_eq!(
                compare_builds(&b, &other),
                compare_builds(&other, &b).reverse()
            );
            assert_eq!(compare_builds(&b, &b), Ordering::Equal);
        }
    }
});
