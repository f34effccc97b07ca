//! pstore records: what the kernel saved in persistent storage (ramoops
//! memory, EFI variables, ACPI ERST) when the previous boot panicked,
//! oopsed or (with `printk.always_kmsg_dump`) shut down, as the pstore
//! file system shows them and as systemd-pstore archives them.
//!
//! fs/pstore/platform.c `pstore_dump()` writes the end of the kernel log
//! in chunks, newest first, each headed `<Reason>#<count> Part<n>`
//! (`Panic#1 Part1` is the newest chunk, `Part2` the one before it); the
//! log lines are in syslog form, `<6>[   12.345678] text`. A record the
//! kernel could not decompress keeps its compressed bytes and gets the
//! name suffix `.enc.z` (fs/pstore/inode.c): it is listed, not parsed.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::host::Host;

/// Largest record read (ramoops records are a few KiB to a MiB; EFI
/// variables about 1 KiB each).
pub const MAX_RECORD: u64 = 4 << 20;

/// One `dmesg-*` part: its header and the text after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// `Panic`, `Oops`, `Emergency`, `Restart`, `Halt`, `Poweroff`, ...
    pub reason: String,
    pub count: u32,
    pub part: u32,
    pub text: String,
}

/// `Panic#1 Part1` → (`Panic`, 1, 1). Older kernels (before 3.5) wrote
/// the same form; ramoops' own `====sec.nsec` header is taken off by the
/// kernel before the file shows it.
pub fn parse_header(line: &str) -> Option<(String, u32, u32)> {
    let line = line.trim_end_matches('\r').trim();
    let (reason, rest) = line.split_once('#')?;
    let (count, part) = rest.split_once(" Part")?;
    if reason.is_empty() || !reason.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((reason.to_string(), count.parse().ok()?, part.parse().ok()?))
}

/// Splits a record into its header and text; a record without a header
/// (a systemd-pstore `dmesg.txt`, a `console-*`) has none.
pub fn parse_part(data: &str) -> Option<Part> {
    let (first, rest) = data.split_once('\n').unwrap_or((data, ""));
    let (reason, count, part) = parse_header(first)?;
    Some(Part {
        reason,
        count,
        part,
        text: rest.to_string(),
    })
}

/// The kernel log one dump left behind, its parts put back in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    /// The backend (`ramoops`, `efi`, `erst`, ...), from the file name.
    pub backend: String,
    pub reason: String,
    pub count: u32,
    /// Oldest first.
    pub text: String,
    /// The files it was joined from (paths under the root), oldest part
    /// first.
    pub files: Vec<String>,
}

/// What a pstore directory (or systemd-pstore's archive) held.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Found {
    pub dumps: Vec<Dump>,
    /// `console-*` records (the previous boot's console) and
    /// systemd-pstore `dmesg.txt` files: (path, text).
    pub logs: Vec<(String, String)>,
    /// Records the kernel left compressed (`*.enc.z`): listed, not read.
    pub compressed: Vec<String>,
    /// Files that could not be read, with why.
    pub errors: Vec<String>,
}

/// `dmesg-ramoops-0` → `ramoops`; `dmesg-efi-171234567801001` → `efi`.
fn backend_of(name: &str) -> String {
    let rest = name.split_once('-').map_or("", |(_, r)| r);
    rest.split('-').next().unwrap_or("").to_string()
}

/// Joins parts into dumps: parts with the same backend, reason and count
/// belong together, the highest part number being the oldest text.
pub fn join(parts: Vec<(String, String, Part)>) -> Vec<Dump> {
    let mut groups: BTreeMap<(String, String, u32), Vec<(String, Part)>> = BTreeMap::new();
    for (backend, file, p) in parts {
        groups
            .entry((backend, p.reason.clone(), p.count))
            .or_default()
            .push((file, p));
    }
    groups
        .into_iter()
        .map(|((backend, reason, count), mut v)| {
            v.sort_by(|a, b| b.1.part.cmp(&a.1.part).then_with(|| a.0.cmp(&b.0)));
            let mut text = String::new();
            for (_, p) in &v {
                text.push_str(&p.text);
                if !text.ends_with('\n') {
                    text.push('\n');
                }
            }
            Dump {
                backend,
                reason,
                count,
                text,
                files: v.into_iter().map(|(f, _)| f).collect(),
            }
        })
        .collect()
}

/// Reads the records of one directory (`sys/fs/pstore`, or one level of
/// systemd-pstore's archive) whose modification time is after `newer`
/// (`None`: all). Subdirectories are read one level down (systemd-pstore
/// keeps EFI dumps as `<time>/<nnn>/dmesg.txt`).
pub fn read(host: &Host, dir: &str, newer: Option<SystemTime>) -> Found {
    let mut found = Found::default();
    let mut parts = Vec::new();
    walk(host, dir, newer, 0, &mut found, &mut parts);
    found.dumps = join(parts);
    found
}

/// Records whose time is this close to the epoch carry no time (ramoops
/// without its header, console records): their file shows the mount time
/// or nothing useful, and they are kept.
const NO_TIME_BEFORE: u64 = 86_400 * 365;

fn is_new(host: &Host, rel: &str, newer: Option<SystemTime>) -> bool {
    let Some(limit) = newer else {
        return true;
    };
    match std::fs::metadata(host.path(rel)).and_then(|m| m.modified()) {
        Ok(t) => {
            let since_epoch = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            since_epoch < NO_TIME_BEFORE || t > limit
        }
        Err(_) => true,
    }
}

fn walk(
    host: &Host,
    dir: &str,
    newer: Option<SystemTime>,
    depth: u32,
    found: &mut Found,
    parts: &mut Vec<(String, String, Part)>,
) {
    let Ok(names) = host.list_dir(dir) else {
        return;
    };
    for name in names {
        let rel = format!("{dir}/{name}");
        if host.is_dir(&rel) {
            if depth < 2 {
                walk(host, &rel, newer, depth + 1, found, parts);
            }
            continue;
        }
        let record = name.starts_with("dmesg-") || name.starts_with("console-");
        let archived = name == "dmesg.txt";
        if !(record || archived) || !is_new(host, &rel, newer) {
            continue;
        }
        if name.ends_with(".enc.z") {
            found.compressed.push(rel);
            continue;
        }
        let bytes = match host.read_bytes_limited(&rel, MAX_RECORD) {
            Ok(b) => b,
            Err(e) => {
                found.errors.push(e.to_string());
                continue;
            }
        };
        // Ramoops pads with NULs; a damaged record may hold any bytes.
        let text = String::from_utf8_lossy(&bytes).replace('\0', "");
        if name.starts_with("dmesg-") {
            match parse_part(&text) {
                Some(p) => parts.push((backend_of(&name), rel, p)),
                None => found.logs.push((rel, text)),
            }
        } else {
            found.logs.push((rel, text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_reason() {
        assert_eq!(parse_header("Panic#1 Part1"), Some(("Panic".into(), 1, 1)));
        assert_eq!(
            parse_header("Oops#3 Part12\r"),
            Some(("Oops".into(), 3, 12))
        );
        assert_eq!(
            parse_header("Emergency#1 Part2"),
            Some(("Emergency".into(), 1, 2))
        );
        assert_eq!(parse_header("<6>[    0.000000] Linux version"), None);
        assert_eq!(parse_header("Panic#x Part1"), None);
        assert_eq!(parse_header("#1 Part1"), None);
    }

    #[test]
    fn parts_are_joined_oldest_first_per_dump() {
        let p = |reason: &str, count, part, text: &str| Part {
            reason: reason.into(),
            count,
            part,
            text: text.into(),
        };
        let dumps = join(vec![
            ("ramoops".into(), "d-0".into(), p("Panic", 1, 1, "newest\n")),
            ("ramoops".into(), "d-1".into(), p("Panic", 1, 3, "oldest\n")),
            ("ramoops".into(), "d-2".into(), p("Panic", 1, 2, "middle")),
            ("ramoops".into(), "d-3".into(), p("Oops", 1, 1, "other\n")),
        ]);
        assert_eq!(dumps.len(), 2);
        let panic = dumps.iter().find(|d| d.reason == "Panic").unwrap();
        assert_eq!(panic.text, "oldest\nmiddle\nnewest\n");
        assert_eq!(panic.files, ["d-1", "d-2", "d-0"]);
        assert_eq!(backend_of("dmesg-efi-171234567801001"), "efi");
        assert_eq!(backend_of("dmesg-ramoops-0"), "ramoops");
    }
}
