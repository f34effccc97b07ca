//! tracefs: where it is, and whether snapshots and kprobe events exist.

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::host::paths;

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

/// Finds the tracing directory. Without a readable /proc/filesystems the
/// absence of a mount proves nothing, so that is a problem, not "absent".
pub fn locate(ctx: &Ctx) -> Result<Tracing, Problem> {
    let has_trace = |dir: &str| ctx.host.exists(&format!("{dir}/trace"));
    if let Ok(mounts) = ctx.host.read(paths::MOUNTS) {
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
    let fs = ctx.host.read(paths::FILESYSTEMS)?;
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

fn mount_hint(fs: &str) -> &'static str {
    if fs == "tracefs" {
        "mount -t tracefs nodev /sys/kernel/tracing"
    } else {
        "mount -t debugfs nodev /sys/kernel/debug"
    }
}

pub fn tracefs(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    match locate(ctx)? {
        Tracing::Mounted(dir) => {
            f.value("tracing_dir", format!("/{dir}"));
            f.ok(format!("tracefs is available at /{dir}"));
        }
        Tracing::Supported(fs) => {
            f.value("tracing_dir", serde_json::Value::Null);
            f.value("supported_fs", fs);
            f.set(
                Status::Info,
                format!("The kernel supports {fs} but it is not mounted; `watchdog run` mounts it when it starts"),
                format!("To look now: {}", mount_hint(fs)),
            );
        }
        Tracing::Absent => {
            f.value("tracing_dir", serde_json::Value::Null);
            f.set(
                Status::Warning,
                "No tracefs: no ftrace snapshots and no tracing of signal deaths or slow dentry reclaim",
                "Mount it (mount -t tracefs nodev /sys/kernel/tracing; before Linux 4.1, mount -t debugfs nodev /sys/kernel/debug). A kernel built without CONFIG_FTRACE cannot provide it.",
            );
        }
    }
    Ok(())
}

/// Shared body of the checks for one tracefs file.
fn tracing_file(
    ctx: &Ctx,
    f: &mut Finding,
    file: &str,
    what: &str,
    config: &str,
) -> Result<(), Problem> {
    match locate(ctx)? {
        Tracing::Mounted(dir) => {
            let present = ctx.host.exists(&format!("{dir}/{file}"));
            f.value(file, present);
            if present {
                f.ok(format!("/{dir}/{file} is present: {what} available"));
            } else {
                f.set(
                    Status::Warning,
                    format!("/{dir}/{file} is missing: no {what}"),
                    format!("Boot a kernel built with {config}=y."),
                );
            }
            Ok(())
        }
        Tracing::Supported(fs) => {
            // Not mounted: the kernel's build configuration still tells.
            match ctx.kconfig(config) {
                Some(on) => {
                    f.value(config, on);
                    if on {
                        f.ok(format!(
                            "{what} available ({config}=y; {fs} is not mounted yet)"
                        ));
                    } else {
                        f.set(
                            Status::Warning,
                            format!("No {what}: this kernel is built without {config}"),
                            format!("Boot a kernel built with {config}=y."),
                        );
                    }
                    Ok(())
                }
                None => Err(Problem::new(
                    ProblemKind::Missing,
                    format!(
                        "{fs} is not mounted and the kernel build configuration is not readable, so {file} cannot be looked for ({})",
                        mount_hint(fs)
                    ),
                )),
            }
        }
        Tracing::Absent => {
            f.value(file, false);
            f.set(
                Status::Warning,
                format!("No tracefs, so no {what}"),
                "Make tracefs available first (see the tracefs finding).",
            );
            Ok(())
        }
    }
}

pub fn snapshot(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    tracing_file(
        ctx,
        f,
        "snapshot",
        "ftrace snapshots",
        "CONFIG_TRACER_SNAPSHOT",
    )
}

pub fn kprobe_events(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    tracing_file(
        ctx,
        f,
        "kprobe_events",
        "kprobe events (signal-death tracing)",
        "CONFIG_KPROBE_EVENTS",
    )
}

#[cfg(test)]
mod tests {
    use super::unescape_mount;

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape_mount("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mount("/x\\"), "/x\\");
        assert_eq!(unescape_mount("\\99"), "\\99");
    }
}
