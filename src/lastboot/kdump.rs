//! kdump's dump directories: where the capture kernel left the previous
//! boot's log when it crashed.
//!
//! RHEL's kdump (kexec-tools) writes `<path>/<ip>-<date>/` holding
//! `vmcore` (`vmcore-incomplete` while, or if, the copy did not finish),
//! `vmcore-dmesg.txt` (makedumpfile --dump-dmesg) and `kexec-dmesg.log`
//! (the capture kernel's own log, since RHEL 8.6); `path` comes from
//! /etc/kdump.conf, default /var/crash. Debian's kdump-tools writes
//! `/var/crash/<date>/dmesg.<date>` and `dump.<date>`.

use std::time::SystemTime;

use crate::host::{paths, Host};

/// The dump path kdump.conf names (`path /var/crash`), or the default.
/// When a dump target (`xfs /dev/...`, `nfs ...`, `ssh ...`) is named too,
/// `path` is relative to that target, which this host may not mount: the
/// second value says so.
pub fn dump_path(conf: &str) -> (String, Option<String>) {
    let mut path = "/var/crash".to_string();
    let mut target = None;
    for line in conf.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        match key {
            "path" => path = value.to_string(),
            "nfs" | "ssh" | "raw" | "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" | "minix" => {
                target = Some(format!("{key} {value}"));
            }
            _ => {}
        }
    }
    (path, target)
}

/// One dump directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DumpDir {
    /// Path under the root.
    pub dir: String,
    /// The previous boot's log (`vmcore-dmesg.txt`, `dmesg.<date>`).
    pub dmesg: Option<String>,
    /// `vmcore`, `vmcore-incomplete` or `dump.<date>`: only named (a
    /// vmcore is gigabytes and needs crash(8)).
    pub vmcore: Option<String>,
    pub incomplete: bool,
    /// The capture kernel's log (`kexec-dmesg.log`).
    pub log: Option<String>,
}

/// Dump directories modified after `newer` (`None`: all), oldest first,
/// and notes (a dump target this host does not show).
pub fn find(host: &Host, newer: Option<SystemTime>) -> (Vec<DumpDir>, Vec<String>) {
    let mut notes = Vec::new();
    let (path, target) = match host.read(paths::KDUMP_CONF) {
        Ok(conf) => dump_path(&conf),
        Err(_) => ("/var/crash".to_string(), None),
    };
    if let Some(t) = target {
        notes.push(format!(
            "kdump.conf sends dumps to `{t}`: {path} there is not read"
        ));
        return (Vec::new(), notes);
    }
    let rel = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    let Ok(names) = host.list_dir(&rel) else {
        return (Vec::new(), notes);
    };
    let mut dirs: Vec<(SystemTime, DumpDir)> = Vec::new();
    for name in names {
        let dir = format!("{rel}/{name}");
        if !host.is_dir(&dir) {
            continue;
        }
        let mtime = std::fs::metadata(host.path(&dir))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if newer.is_some_and(|n| mtime <= n) {
            continue;
        }
        let mut d = DumpDir {
            dir: dir.clone(),
            ..DumpDir::default()
        };
        for f in host.list_dir(&dir).unwrap_or_default() {
            let p = format!("{dir}/{f}");
            match f.as_str() {
                "vmcore-dmesg.txt" => d.dmesg = Some(p),
                "vmcore" => d.vmcore = Some(p),
                "vmcore-incomplete" => {
                    d.vmcore = Some(p);
                    d.incomplete = true;
                }
                "kexec-dmesg.log" => d.log = Some(p),
                _ if f.starts_with("dmesg.") && d.dmesg.is_none() => d.dmesg = Some(p),
                _ if f.starts_with("dump.") && d.vmcore.is_none() => d.vmcore = Some(p),
                _ => {}
            }
        }
        if d.dmesg.is_some() || d.vmcore.is_some() {
            dirs.push((mtime, d));
        }
    }
    dirs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.dir.cmp(&b.1.dir)));
    (dirs.into_iter().map(|(_, d)| d).collect(), notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_target_from_kdump_conf() {
        assert_eq!(dump_path(""), ("/var/crash".into(), None));
        let conf = "# path /nowhere\npath /srv/crash   # local\ncore_collector makedumpfile -l --message-level 7 -d 31\n";
        assert_eq!(dump_path(conf), ("/srv/crash".into(), None));
        let (p, t) = dump_path("nfs my.server.com:/export/tmp\npath /var/crash\n");
        assert_eq!(p, "/var/crash");
        assert_eq!(t.as_deref(), Some("nfs my.server.com:/export/tmp"));
    }
}
