//! `watchdog scan` through the real binary: one fixture per kernel log
//! format and kernel version, each asserting every field of every event.
//!
//! A fixture (`tests/fixtures/kernel-logs/*.log`) starts with a header of
//! `#` lines: `# Source:` (where the text came from), `# Kernel:`,
//! `# Format:`, free comments, and one `#> {json}` line per expected event,
//! in order. The header is removed before the log is scanned.

use std::path::PathBuf;

use serde_json::Value;

use crate::util::{fixture, Dir};

struct Fixture {
    name: String,
    body: String,
    header: Vec<String>,
    expected: Vec<Value>,
}

fn load(path: &PathBuf) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut header = Vec::new();
    let mut expected = Vec::new();
    let mut body = String::new();
    let mut in_header = true;
    for line in text.split_inclusive('\n') {
        if in_header && line.starts_with('#') {
            let l = line.trim_end_matches('\n');
            if let Some(j) = l.strip_prefix("#> ") {
                expected.push(
                    serde_json::from_str(j)
                        .unwrap_or_else(|e| panic!("{name}: bad expectation {j}: {e}")),
                );
            } else {
                header.push(l.to_string());
            }
        } else {
            in_header = false;
            body.push_str(line);
        }
    }
    Fixture {
        name,
        body,
        header,
        expected,
    }
}

fn all() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture("kernel-logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths.iter().map(load).collect()
}

fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn every_fixture_yields_exactly_its_events() {
    let fixtures = all();
    assert!(fixtures.len() >= 20, "fixtures missing");
    let mut failures = Vec::new();
    for f in &fixtures {
        let dir = Dir::new();
        dir.write(&f.name, &f.body);
        let r = dir.run(&["scan", "--year", "2024", &f.name]).expect_code(0);
        let got = events(&r.stdout);
        if got != f.expected {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                f.name,
                f.expected
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    "),
                got.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_names_its_source_and_kernel() {
    for f in all() {
        for key in ["# Source: ", "# Kernel: ", "# Format: "] {
            assert!(
                f.header.iter().any(|h| h.starts_with(key)),
                "{}: header has no {key:?}",
                f.name
            );
        }
        assert!(!f.expected.is_empty(), "{}: no expected events", f.name);
        for e in &f.expected {
            assert_eq!(e["source"], Value::from(f.name.as_str()), "{}", f.name);
        }
    }
}
