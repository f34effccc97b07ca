//! pstore records (src/lastboot/pstore.rs) and the previous-boot verdict
//! built from them (src/lastboot/mod.rs `analyze`): arbitrary bytes as
//! the files of a root's `sys/fs/pstore` (ramoops, EFI and ERST dumps,
//! console records, records the kernel left compressed) and of
//! systemd-pstore's archive. Then:
//!
//! - every part header read back from its fields is the same header, and
//!   joining keeps every part's text, oldest part first;
//! - the verdict's cause is one of the documented causes, its summary is
//!   one line, and what it quotes of the log (a panic reason, an oops, a
//!   last line) is text of the input;
//! - every record file is among the report's sources (a compressed one
//!   with a note saying it was not read); nothing is readable only when
//!   there was no file;
//! - the `previous_boot` event and every incident match the event schema.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::lastboot::{analyze, join, parse_header, parse_part, Host, Options};
use watchdog_fuzz::check_event;

/// docs/last-boot.md and docs/contracts.md (`previous_boot.cause`).
const CAUSES: [&str; 11] = [
    "panic",
    "oops",
    "hung_task_panic",
    "oom_panic",
    "soft_lockup_panic",
    "hard_lockup",
    "mce",
    "sysrq_crash",
    "clean_shutdown",
    "reboot",
    "no_evidence",
];

/// Summaries that quote nothing of the log.
const FIXED: [&str; 6] = [
    "pstore holds a Panic dump, but its text names no reason",
    "pstore holds an Oops dump, but its text names no oops",
    "SysRq: Trigger a crash",
    "the system was rebooted on request",
    "the system was shut down on request",
    "nothing could be read: ",
];

const BMC: &str = " — power loss, a hardware reset";

/// Where the input's n-th file goes, by its kind byte.
fn name(kind: u8, n: usize) -> String {
    match kind % 6 {
        0 => format!("sys/fs/pstore/dmesg-ramoops-{n}"),
        1 => format!("sys/fs/pstore/dmesg-efi-17172000000100{n:02}"),
        2 => format!("sys/fs/pstore/console-ramoops-{n}"),
        3 => format!("sys/fs/pstore/dmesg-ramoops-{n}.enc.z"),
        4 => format!("var/lib/systemd/pstore/1717200000/{n:03}/dmesg.txt"),
        _ => format!("sys/fs/pstore/dmesg-erst-{n}"),
    }
}

fn root() -> PathBuf {
    std::env::temp_dir().join(format!("watchdog-fuzz-pstore-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create the root");
    // Files: a kind byte, a little-endian u16 length, the contents.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut rest = data;
    while let [kind, a, b, tail @ ..] = rest {
        let n = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let rel = name(*kind, files.len());
        files.push((rel, tail[..n].to_vec()));
        rest = &tail[n..];
    }
    for (rel, bytes) in &files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("create its directory");
        std::fs::write(&p, bytes).expect("write a record");
    }

    // The text the kernel's records hold, as the reader decodes them.
    let texts: Vec<String> = files
        .iter()
        .filter(|(rel, _)| !rel.ends_with(".enc.z"))
        .map(|(_, b)| String::from_utf8_lossy(b).replace('\0', ""))
        .collect();
    let all = texts.join("\n");

    // Part headers and joining.
    let mut parts = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let first = t.split('\n').next().unwrap_or("");
        if let Some((reason, count, part)) = parse_header(first) {
            let again = format!("{reason}#{count} Part{part}");
            assert_eq!(
                parse_header(&again),
                Some((reason.clone(), count, part)),
                "{first:?}"
            );
        }
        if let Some(p) = parse_part(t) {
            assert!(t.ends_with(&p.text), "a part's text is the record's end");
            parts.push(("ramoops".to_string(), format!("f{i}"), p));
        }
    }
    let dumps = join(parts.clone());
    assert_eq!(
        dumps.iter().map(|d| d.files.len()).sum::<usize>(),
        parts.len(),
        "every part in one dump"
    );
    for (_, f, p) in &parts {
        let d = dumps
            .iter()
            .find(|d| d.files.contains(f))
            .expect("its dump");
        assert_eq!((&d.reason, d.count), (&p.reason, p.count));
        assert!(d.text.contains(p.text.as_str()), "part text kept");
    }

    // The verdict.
    let host = Host::new(&root);
    let opts = Options {
        journal: false,
        ..Options::default()
    };
    let report = analyze(&host, &opts);
    let cause = report.cause.name();
    assert!(CAUSES.contains(&cause), "cause {cause}");
    let s = &report.summary;
    assert!(!s.contains('\n'), "summary of more than one line: {s:?}");
    let quoted = |q: &str| all.contains(q);
    if let Some(l) = s
        .strip_prefix("the log just stops, last line: ")
        .and_then(|r| r.split_once(BMC).map(|x| x.0))
    {
        assert!(quoted(l), "last line {l:?} not in the input");
    } else if !FIXED.iter().any(|f| s.starts_with(f))
        && !s.starts_with("no crash record and no log of the previous boot")
    {
        // A reason, an oops, a hardware line: quoted from the log; an
        // oops that made the panic says both, `OOPS (REASON)`.
        let whole = quoted(s.trim());
        let both = s
            .strip_suffix(')')
            .and_then(|x| x.rsplit_once(" ("))
            .is_some_and(|(oops, reason)| quoted(oops.trim()) && quoted(reason.trim()));
        assert!(whole || both, "{cause}: summary {s:?} quotes no input");
    }
    for (rel, _) in &files {
        let abs = host.path(rel).display().to_string();
        assert!(
            report.sources.contains(&abs),
            "{abs} not among the sources {:?}",
            report.sources
        );
        if rel.ends_with(".enc.z") {
            assert!(
                report.notes.iter().any(|n| n.starts_with(&abs)),
                "no note for {abs}"
            );
        }
    }
    assert_eq!(report.readable, !files.is_empty());
    check_event(&report.event(Some("host".into())));
    for e in &report.incidents {
        check_event(e);
    }
    let _ = std::fs::remove_dir_all(&root);
});
