//! Metrics files parse as the Prometheus text exposition format.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::{fixture, Dir};

/// Parses text exposition format 0.0.4 strictly; returns the samples as
/// `name{labels}` → value.
pub fn parse_prometheus(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let valid_name = |s: &str, colon: bool| {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || (colon && ch == ':'))
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || (colon && ch == ':'))
    };
    if !text.ends_with('\n') {
        return Err("must end with a newline".into());
    }
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_samples: BTreeSet<String> = BTreeSet::new();
    let mut last_metric = String::new();
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("TYPE"), Some(name), Some(t)) => {
                    if !valid_name(name, true) {
                        return Err(format!("line {n}: bad metric name {name}"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(format!("line {n}: bad type {t}"));
                    }
                    if seen_samples.contains(name) || typed.insert(name.into(), t.into()).is_some()
                    {
                        return Err(format!(
                            "line {n}: TYPE for {name} after its samples or twice"
                        ));
                    }
                }
                (Some("HELP"), Some(name), _) if valid_name(name, true) => {}
                (Some("HELP"), _, _) => return Err(format!("line {n}: bad HELP")),
                _ => {}
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or(format!("line {n}: no value"))?;
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("line {n}: bad value {v}"))?,
        };
        let name = series.split('{').next().unwrap();
        if !valid_name(name, true) {
            return Err(format!("line {n}: bad metric name {name}"));
        }
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .ok_or(format!("line {n}: bad label braces"))?;
            let mut rest = inner;
            while !rest.is_empty() {
                let (lname, after) = rest
                    .split_once("=\"")
                    .ok_or(format!("line {n}: bad label"))?;
                if !valid_name(lname, false) {
                    return Err(format!("line {n}: bad label name {lname}"));
                }
                let mut chars = after.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, '\\' | '"' | 'n')) => {}
                            _ => return Err(format!("line {n}: bad escape")),
                        },
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        '\n' => return Err(format!("line {n}: raw newline")),
                        _ => {}
                    }
                }
                let end = end.ok_or(format!("line {n}: unterminated label value"))?;
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        if name != last_metric && seen_samples.contains(name) {
            return Err(format!("line {n}: samples of {name} are not grouped"));
        }
        seen_samples.insert(name.into());
        last_metric = name.into();
        if out.insert(series.to_string(), v).is_some() {
            return Err(format!("line {n}: duplicate series {series}"));
        }
    }
    Ok(out)
}

#[test]
fn check_metrics_parse() {
    let d = Dir::new();
    let root = fixture("neglected").display().to_string();
    d.run(&["check", "--root", &root, "--metrics", "out/check.prom"])
        .expect_code(2);
    let text = std::fs::read_to_string(d.join("out/check.prom")).unwrap();
    let m = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        m["watchdog_check_status{id=\"kdump-loaded\",status=\"critical\"}"],
        2.0
    );
    assert_eq!(
        m["watchdog_check_status{id=\"panic-on-oom\",status=\"ok\"}"],
        0.0
    );
    assert_eq!(m["watchdog_check_drift"], 0.0);
    assert_eq!(
        m.keys()
            .filter(|k| k.starts_with("watchdog_check_status"))
            .count(),
        30
    );
    // The fleet fields, from the fixture's os-release, boot_id and uptime.
    let info = m
        .keys()
        .find(|k| k.starts_with("watchdog_check_info{"))
        .unwrap_or_else(|| panic!("no info series\n{text}"));
    assert!(
        info.contains("os_id=\"centos\",os_version_id=\"7\"")
            && info.contains("boot_id=\"c0ffee00-"),
        "{info}"
    );
    assert!(m["watchdog_check_time_seconds"] > 1.7e9);
    assert_eq!(m["watchdog_check_uptime_seconds"], 34603200.0);
}

#[test]
fn validator_rejects_what_prometheus_rejects() {
    for bad in [
        "x 1",                     // no trailing newline
        "1x 1\n",                  // bad name
        "x{a=\"b} 1\n",            // unterminated
        "x{a=\"\\q\"} 1\n",        // bad escape
        "x one\n",                 // bad value
        "x 1\ny 1\nx 2\n",         // not grouped
        "x 1\n# TYPE x counter\n", // TYPE after samples
    ] {
        assert!(parse_prometheus(bad).is_err(), "{bad:?}");
    }
    assert!(parse_prometheus("# HELP x y\n# TYPE x gauge\nx{a=\"q\\\"\"} 1.5\n").is_ok());
}
