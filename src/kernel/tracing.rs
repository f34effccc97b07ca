//! Where the kernel's tracing directory is: a tracefs or debugfs mount
//! listed in /proc/mounts, else the two usual places. `watchdog check`
//! (the `tracefs` finding) and `watchdog run` (the tracefs collector) find
//! it the same way, so this sits below both. Unlike the parsers beside it,
//! it reads through [`Host`], the one owner of kernel paths.

use crate::host::{paths, Host, ReadError};

/// Where tracing can be found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracing {
    /// Mounted; the tracing directory relative to the root.
    Mounted(String),
    /// The kernel has the filesystem (`fs` names it) but it is not mounted.
    Supported(&'static str),
    Absent,
}

/// `/proc/mounts` escapes spaces and the like as `\040` octal.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.len() - i >= 4 {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds the tracing directory: a tracefs or debugfs mount named in
/// /proc/mounts, else the two usual places. Without a readable
/// /proc/filesystems the absence of a mount proves nothing, so that is an
/// error, not "absent".
pub fn locate(host: &Host) -> Result<Tracing, ReadError> {
    let has_trace = |dir: &str| host.exists(&format!("{dir}/trace"));
    if let Ok(mounts) = host.read(paths::MOUNTS) {
        for line in mounts.lines() {
            let mut w = line.split_whitespace();
            let (Some(_), Some(mnt), Some(fstype)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            let mnt = unescape_mount(mnt);
            let rel = mnt.trim_start_matches('/');
            let dir = match fstype {
                "tracefs" => rel.to_string(),
                "debugfs" => format!("{rel}/tracing"),
                _ => continue,
            };
            if !dir.is_empty() && has_trace(&dir) {
                return Ok(Tracing::Mounted(dir.trim_start_matches('/').to_string()));
            }
        }
    }
    for dir in [paths::TRACEFS, paths::DEBUGFS_TRACING] {
        if has_trace(dir) {
            return Ok(Tracing::Mounted(dir.to_string()));
        }
    }
    let fs = host.read(paths::FILESYSTEMS)?;
    let has_fs = |name: &str| {
        fs.lines()
            .any(|l| l.split_whitespace().last() == Some(name))
    };
    Ok(if has_fs("tracefs") {
        Tracing::Supported("tracefs")
    } else if has_fs("debugfs") {
        Tracing::Supported("debugfs")
    } else {
        Tracing::Absent
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape_mount("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mount("/x\\"), "/x\\");
        assert_eq!(unescape_mount("\\99"), "\\99");
    }

    #[test]
    fn finds_a_tracefs_mount_with_a_space_in_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::create_dir_all(root.join("mnt/my trace")).unwrap();
        std::fs::write(root.join("mnt/my trace/trace"), "").unwrap();
        std::fs::write(
            root.join("proc/mounts"),
            "proc /proc proc rw 0 0\nnodev /mnt/my\\040trace tracefs rw 0 0\n",
        )
        .unwrap();
        let host = Host::new(root);
        assert_eq!(locate(&host), Ok(Tracing::Mounted("mnt/my trace".into())));
        std::fs::remove_file(root.join("proc/mounts")).unwrap();
        std::fs::write(root.join("proc/filesystems"), "nodev\tdebugfs\n").unwrap();
        assert_eq!(locate(&host), Ok(Tracing::Supported("debugfs")));
    }
}
