//! kdump end to end: a loaded crash kernel is not enough. The classic
//! failures are a dump that cannot be written (the target directory is
//! gone, read-only or too small, the core collector copies all of RAM)
//! and a kdump initramfs older than the kernel or kdump.conf ("kdump
//! stopped working after an update").
//!
//! Reads RHEL's `/etc/kdump.conf` (kexec-tools, `kdumpctl`) or Debian's
//! `/etc/default/kdump-tools` (`kdump-config`).

use std::time::SystemTime;

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::host::paths;
use crate::kernel::size::{GIB, MIB};
use crate::kernel::tables::kb_field;

/// What the kdump configuration says, whichever tool wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KdumpConf {
    /// `kdumpctl` (kdump.conf) or `kdump-config` (kdump-tools).
    pub tool: &'static str,
    /// The config file, relative to the root.
    pub file: &'static str,
    /// `nfs`, `ssh`, `raw`, a file-system type (`xfs`, `ext4`, ...), or
    /// `local` (the root file system).
    pub target_kind: String,
    /// The target's device or host, when not local.
    pub target: Option<String>,
    /// The dump directory (relative to the target file system).
    pub path: String,
    pub core_collector: Option<String>,
    pub failure_action: Option<String>,
    /// kdump-tools: USE_KDUMP=0 turns it off.
    pub disabled: bool,
}

/// Parses kdump.conf(5): `directive args`, `#` comments.
pub fn parse_kdump_conf(text: &str) -> KdumpConf {
    let mut c = KdumpConf {
        tool: "kdumpctl",
        file: paths::KDUMP_CONF,
        target_kind: "local".into(),
        path: "/var/crash".into(),
        ..KdumpConf::default()
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((key, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim().to_string();
        match key {
            "path" => c.path = rest,
            "core_collector" => c.core_collector = Some(rest),
            // `default` is the RHEL 6/7 name of failure_action.
            "failure_action" | "default" => c.failure_action = Some(rest),
            "raw" | "nfs" | "nfs4" | "ssh" | "ext2" | "ext3" | "ext4" | "xfs" | "btrfs"
            | "minix" | "virtiofs" => {
                c.target_kind = key.to_string();
                c.target = Some(rest);
            }
            _ => {}
        }
    }
    c
}

/// Parses /etc/default/kdump-tools (shell `KEY=value` assignments).
pub fn parse_kdump_tools(text: &str) -> KdumpConf {
    let mut c = KdumpConf {
        tool: "kdump-config",
        file: paths::KDUMP_TOOLS_DEFAULT,
        target_kind: "local".into(),
        path: "/var/crash".into(),
        // kdump-tools' default (MAKEDUMP_ARGS unset): "-c -d 31".
        core_collector: Some("makedumpfile -c -d 31".into()),
        // kdump-tools reboots after a dump attempt unless told otherwise.
        failure_action: None,
        ..KdumpConf::default()
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches(['"', '\'']).to_string();
        match k.trim() {
            "USE_KDUMP" => c.disabled = v == "0",
            "KDUMP_COREDIR" if !v.is_empty() => c.path = v,
            "MAKEDUMP_ARGS" if !v.is_empty() => {
                c.core_collector = Some(format!("makedumpfile {v}"))
            }
            "KDUMP_FAIL_CMD" if !v.is_empty() => c.failure_action = Some(v),
            "NFS" if !v.is_empty() => {
                c.target_kind = "nfs".into();
                c.target = Some(v);
            }
            "SSH" if !v.is_empty() => {
                c.target_kind = "ssh".into();
                c.target = Some(v);
            }
            _ => {}
        }
    }
    c
}

/// The kdump configuration of this host, if any.
fn config(ctx: &Ctx) -> Result<Option<KdumpConf>, Problem> {
    for (rel, parse) in [
        (paths::KDUMP_CONF, parse_kdump_conf as fn(&str) -> KdumpConf),
        (paths::KDUMP_TOOLS_DEFAULT, parse_kdump_tools),
    ] {
        match ctx.host.read(rel) {
            Ok(text) => return Ok(Some(parse(&text))),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Whether a crash kernel is loaded (for the "not set up" wording).
fn loaded(ctx: &Ctx) -> bool {
    ctx.host
        .read_value(paths::KEXEC_CRASH_LOADED)
        .is_ok_and(|v| v == "1")
}

/// Reports "not applicable" and returns None when kdump is not set up.
fn setup(ctx: &Ctx, f: &mut Finding) -> Result<Option<KdumpConf>, Problem> {
    let conf = config(ctx)?;
    match conf {
        Some(c) if c.disabled => {
            f.value("kdump_tool", c.tool);
            f.ok(format!(
                "Not applicable: kdump is turned off (USE_KDUMP=0 in /{})",
                c.file
            ));
            Ok(None)
        }
        Some(c) => {
            f.value("kdump_tool", c.tool);
            f.value("kdump_config", format!("/{}", c.file));
            Ok(Some(c))
        }
        None if loaded(ctx) => {
            f.set(
                Status::Info,
                "A crash kernel is loaded but there is no /etc/kdump.conf or /etc/default/kdump-tools to say where the dump goes",
                "Check by hand where the tool that loaded the crash kernel writes the vmcore, and that it has room for one.",
            );
            Ok(None)
        }
        None => {
            f.ok("Not applicable: kdump is not set up (no /etc/kdump.conf or /etc/default/kdump-tools; see kdump-loaded)");
            Ok(None)
        }
    }
}

/// The `-d` dump level and whether the output is compressed, from a
/// makedumpfile command line; None when the collector is not makedumpfile.
pub fn dump_level(collector: &str) -> Option<(u8, bool)> {
    let mut words = collector.split_whitespace();
    let prog = words.next()?;
    if !prog.ends_with("makedumpfile") {
        return None;
    }
    let mut level = 0u8;
    let mut compressed = false;
    let words: Vec<&str> = words.collect();
    for (i, w) in words.iter().enumerate() {
        match *w {
            "-d" | "--dump-level" => {
                level = words.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(0);
            }
            "-c" | "-l" | "-p" | "-z" => compressed = true,
            _ => {
                if let Some(v) = w.strip_prefix("-d").filter(|v| !v.is_empty()) {
                    level = v.parse().unwrap_or(0);
                } else if w.starts_with('-')
                    && !w.starts_with("--")
                    && w[1..].chars().all(|c| "clpzEFfRDxXs".contains(c))
                    && w[1..].chars().any(|c| "clpz".contains(c))
                {
                    compressed = true;
                }
            }
        }
    }
    Some((level, compressed))
}

/// The sane collector, in the config file's own words.
fn collector_fix(conf: &KdumpConf) -> &'static str {
    if conf.tool == "kdumpctl" {
        "core_collector makedumpfile -l --message-level 7 -d 31"
    } else {
        "MAKEDUMP_ARGS=\"-c -d 31\" in /etc/default/kdump-tools"
    }
}

/// Bytes a dump of this machine may take: RAM less what the dump level
/// excludes (free pages: bit 16, page cache: bits 2 and 4, user pages:
/// bit 8; zero pages, bit 1, cannot be told from /proc/meminfo), halved
/// when compressed. An estimate, on the large side.
pub fn estimate_dump(meminfo: &str, level: u8, compressed: bool) -> Result<u64, String> {
    let total = kb_field(meminfo, "MemTotal")?;
    let field = |k: &str| kb_field(meminfo, k).unwrap_or(0);
    let mut excluded = 0u64;
    if level & 16 != 0 {
        excluded += field("MemFree");
    }
    if level & 6 != 0 {
        excluded += field("Cached") + field("Buffers");
    }
    if level & 8 != 0 {
        excluded += field("AnonPages");
    }
    // The kernel's own pages always stay: at least 2% of RAM.
    let kept = total.saturating_sub(excluded).max(total / 50);
    Ok(if compressed { kept / 2 } else { kept })
}

/// The mount holding `path` in /proc/mounts: (mount point, options).
fn mount_of(mounts: &str, path: &str) -> Option<(String, String)> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let _dev = w.next()?;
            let point = w.next()?.replace("\\040", " ");
            let _fs = w.next()?;
            let opts = w.next()?.to_string();
            let under = path == point
                || point == "/"
                || path.starts_with(&format!("{}/", point.trim_end_matches('/')));
            under.then_some((point, opts))
        })
        .max_by_key(|(p, _)| p.len())
}

pub fn target(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let Some(conf) = setup(ctx, f)? else {
        return Ok(());
    };
    f.value("target", conf.target_kind.as_str());
    f.value("path", conf.path.as_str());
    let mut problems: Vec<(Status, String)> = Vec::new();
    let mut fixes: Vec<String> = Vec::new();

    // The core collector.
    let collector = conf.core_collector.clone().unwrap_or_else(|| {
        // kexec-tools' default when kdump.conf has none.
        "makedumpfile -l --message-level 7 -d 31".into()
    });
    f.value("core_collector", collector.as_str());
    let level = dump_level(&collector);
    match level {
        None => {
            problems.push((Status::Warning, format!("core_collector {collector:?} is not makedumpfile: every page of RAM is copied, unfiltered")));
            fixes.push(collector_fix(&conf).into());
        }
        Some((l, _)) if l & 17 != 17 => {
            problems.push((Status::Warning, format!("makedumpfile -d {l} keeps free or zero pages (want -d 31, at least bits 1 and 16): the dump is as large as RAM and slow to write")));
            fixes.push(collector_fix(&conf).into());
        }
        Some(_) => {}
    }
    let (lvl, compressed) = level.unwrap_or((0, false));
    f.value("dump_level", lvl);

    match &conf.failure_action {
        Some(a) => f.value("failure_action", a.as_str()),
        None => {
            f.value("failure_action", serde_json::Value::Null);
            problems.push((Status::Info, "no failure_action: when the dump fails the crash kernel does its default (reboot), with nothing saved".into()));
            fixes.push(if conf.tool == "kdumpctl" {
                "failure_action dump_to_rootfs (or shell, for a console to rescue the dump by hand)".into()
            } else {
                "KDUMP_FAIL_CMD=\"...\" in /etc/default/kdump-tools for what to do when the dump fails".into()
            });
        }
    }

    let meminfo = ctx.host.read(paths::MEMINFO)?;
    let need = estimate_dump(&meminfo, lvl, compressed).map_err(|e| ctx.bad(paths::MEMINFO, e))?;
    f.value("dump_estimate", need);

    match conf.target_kind.as_str() {
        "nfs" | "nfs4" | "ssh" => {
            let to = conf.target.clone().unwrap_or_default();
            problems.push((Status::Info, format!("dumps go to {} {to}: its reachability and free space (about {} needed) are not checked from here", conf.target_kind, approx(need))));
            fixes.push(format!(
                "Test it: {}",
                if conf.tool == "kdumpctl" {
                    "kdumpctl restart && kdumpctl status (and `kdumpctl propagate` for ssh keys)"
                } else {
                    "kdump-config test"
                }
            ));
        }
        "raw" => {
            let dev = conf.target.clone().unwrap_or_default();
            let rel = dev.trim_start_matches('/');
            if dev.starts_with('/') && !ctx.host.exists(rel) {
                problems.push((
                    Status::Critical,
                    format!("raw dump device {dev} does not exist"),
                ));
                fixes.push("raw <an existing partition as large as the dump>".into());
            }
        }
        kind if kind != "local" => {
            // A file system on its own device: checkable when mounted.
            let dev = conf.target.clone().unwrap_or_default();
            let mounts = ctx.host.read(paths::MOUNTS).unwrap_or_default();
            let point = mounts.lines().find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == dev).then(|| w.next().map(str::to_string))?
            });
            match point {
                Some(p) => local_dir(ctx, f, &format!("{}/{}", p.trim_end_matches('/'), conf.path.trim_start_matches('/')), need, &mounts, &mut problems, &mut fixes)?,
                None => problems.push((Status::Info, format!("dumps go to {kind} {dev}, not mounted now: its free space (about {} needed) is not checked", approx(need)))),
            }
        }
        _ => {
            let mounts = ctx.host.read(paths::MOUNTS)?;
            local_dir(ctx, f, &conf.path, need, &mounts, &mut problems, &mut fixes)?;
        }
    }

    let worst = problems
        .iter()
        .map(|(s, _)| *s)
        .max_by_key(|s| s.severity())
        .unwrap_or(Status::Ok);
    if problems.is_empty() {
        f.ok(format!(
            "Dumps go to {} ({}), writable, with room for the estimated {} dump; {collector}; failure_action {}",
            conf.path,
            conf.target_kind,
            approx(need),
            conf.failure_action.as_deref().unwrap_or("-")
        ));
    } else {
        problems.sort_by_key(|(s, _)| std::cmp::Reverse(s.severity()));
        let text: Vec<String> = problems.iter().map(|(_, t)| t.clone()).collect();
        let fix = if conf.tool == "kdumpctl" {
            format!(
                "In /etc/kdump.conf: {}; then kdumpctl restart",
                fixes.join("; ")
            )
        } else {
            format!(
                "{}; then kdump-config unload && kdump-config load",
                fixes.join("; ")
            )
        };
        f.set(worst, format!("kdump target: {}", text.join("; ")), fix);
    }
    Ok(())
}

/// A dump directory on a mounted file system: exists, mounted read-write,
/// room for `need` bytes.
fn local_dir(
    ctx: &Ctx,
    f: &mut Finding,
    dir: &str,
    need: u64,
    mounts: &str,
    problems: &mut Vec<(Status, String)>,
    fixes: &mut Vec<String>,
) -> Result<(), Problem> {
    let rel = dir.trim_start_matches('/');
    let path = ctx.host.path(rel);
    if !ctx.host.is_dir(rel) {
        problems.push((
            Status::Critical,
            format!("the dump directory {dir} does not exist"),
        ));
        fixes.push(format!(
            "mkdir -p {dir} (or point `path` at a directory that exists)"
        ));
        return Ok(());
    }
    if let Some((point, opts)) = mount_of(mounts, dir) {
        f.value("mount", point.as_str());
        if opts.split(',').any(|o| o == "ro") {
            problems.push((
                Status::Critical,
                format!("the dump directory {dir} is on {point}, mounted read-only"),
            ));
            fixes.push(format!(
                "a `path` on a file system mounted read-write (not {point})"
            ));
            return Ok(());
        }
    }
    let st = nix::sys::statvfs::statvfs(&path).map_err(|e| {
        Problem::new(
            ProblemKind::Denied,
            format!("cannot statvfs {}: {e}", path.display()),
        )
    })?;
    // fsblkcnt_t/c_ulong are u64 on 64-bit Linux; `as` keeps 32-bit builds.
    #[allow(clippy::unnecessary_cast)]
    let free = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
    f.volatile_value("free_bytes", free);
    if free < need {
        problems.push((
            Status::Warning,
            format!(
                "{} free under {dir}, less than the estimated {} dump",
                approx(free),
                approx(need)
            ),
        ));
        fixes.push(format!(
            "free space under {dir}, or a `path` on a larger file system"
        ));
    }
    Ok(())
}

/// A size estimate for people: 1.4G, 220M, 2.0T.
fn approx(bytes: u64) -> String {
    if bytes >= 1024 * GIB {
        format!("{:.1}T", bytes as f64 / (1024 * GIB) as f64)
    } else if bytes >= GIB {
        format!("{:.1}G", bytes as f64 / GIB as f64)
    } else {
        format!("{}M", bytes.div_ceil(MIB))
    }
}

/// The kdump initramfs of `release` for this tool, relative to the root.
fn initramfs_paths(tool: &str, release: &str) -> Vec<String> {
    if tool == "kdumpctl" {
        vec![
            format!("{}/initramfs-{release}kdump.img", paths::BOOT),
            // RHEL 5 and 6.
            format!("{}/initrd-{release}kdump.img", paths::BOOT),
            // RHEL 9 when /boot is read-only.
            format!("{}/initramfs-{release}kdump.img", paths::KDUMP_TOOLS_STATE),
        ]
    } else {
        vec![format!("{}/initrd.img-{release}", paths::KDUMP_TOOLS_STATE)]
    }
}

fn mtime(ctx: &Ctx, rel: &str) -> Option<SystemTime> {
    std::fs::metadata(ctx.host.path(rel)).ok()?.modified().ok()
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn initramfs(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let Some(conf) = setup(ctx, f)? else {
        return Ok(());
    };
    let release = ctx.host.kernel_release().ok_or_else(|| {
        Problem::new(
            ProblemKind::Missing,
            format!(
                "cannot read the kernel release from {}",
                ctx.host.path(paths::OSRELEASE).display()
            ),
        )
    })?;
    let rebuild = if conf.tool == "kdumpctl" {
        "kdumpctl rebuild && kdumpctl restart"
    } else {
        "kdump-config unload && kdump-config load"
    };
    let candidates = initramfs_paths(conf.tool, &release);
    let Some((img, img_time)) = candidates
        .iter()
        .find_map(|p| mtime(ctx, p).map(|t| (p.clone(), t)))
    else {
        f.set(
            Status::Critical,
            format!("No kdump initramfs for the running kernel {release} (/{}): the crash kernel cannot boot to save a dump", candidates[0]),
            format!("{rebuild}, then check `{}`", if conf.tool == "kdumpctl" { "kdumpctl status" } else { "kdump-config status" }),
        );
        return Ok(());
    };
    f.value("initramfs", format!("/{img}"));
    // Whole seconds: a package installs files within the same second, and
    // git checkouts of the fixtures do not keep sub-second times.
    let img_s = secs(img_time);
    let mut newer = Vec::new();
    let kernel = format!("{}/vmlinuz-{release}", paths::BOOT);
    for rel in [conf.file, kernel.as_str()] {
        if let Some(t) = mtime(ctx, rel) {
            if secs(t) > img_s {
                newer.push(format!("/{rel}"));
            }
        }
    }
    f.value("newer_than_initramfs", newer.clone());
    if newer.is_empty() {
        f.ok(format!(
            "The kdump initramfs /{img} is newer than /{} and the kernel",
            conf.file
        ));
    } else {
        f.set(
            Status::Warning,
            format!(
                "The kdump initramfs /{img} is older than {}: changes since are not in the crash kernel (the classic \"kdump stopped working after an update\")",
                newer.join(" and ")
            ),
            rebuild,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdump_conf_directives() {
        let c = parse_kdump_conf(
            "# comment\npath /srv/crash\ncore_collector makedumpfile -l --message-level 7 -d 31\nxfs UUID=abcd\ndefault shell # old name\n",
        );
        assert_eq!(c.path, "/srv/crash");
        assert_eq!(c.target_kind, "xfs");
        assert_eq!(c.target.as_deref(), Some("UUID=abcd"));
        assert_eq!(c.failure_action.as_deref(), Some("shell"));
        assert_eq!(
            dump_level(c.core_collector.as_deref().unwrap()),
            Some((31, true))
        );
        let d = parse_kdump_tools(
            "USE_KDUMP=1\nKDUMP_COREDIR=\"/var/crash\"\nMAKEDUMP_ARGS=\"-c -d 1\"\n",
        );
        assert_eq!(
            dump_level(d.core_collector.as_deref().unwrap()),
            Some((1, true))
        );
        assert!(parse_kdump_tools("USE_KDUMP=0\n").disabled);
    }

    #[test]
    fn dump_levels_and_estimates() {
        assert_eq!(dump_level("cp --sparse=always"), None);
        assert_eq!(dump_level("makedumpfile -F -d31"), Some((31, false)));
        assert_eq!(dump_level("/usr/sbin/makedumpfile -E"), Some((0, false)));
        assert_eq!(dump_level("makedumpfile -c -d 17"), Some((17, true)));
        let m = "MemTotal: 1000 kB\nMemFree: 600 kB\nCached: 200 kB\nAnonPages: 100 kB\n";
        assert_eq!(estimate_dump(m, 31, false), Ok(100 * 1024));
        assert_eq!(estimate_dump(m, 31, true), Ok(50 * 1024));
        assert_eq!(estimate_dump(m, 0, false), Ok(1000 * 1024));
        assert_eq!(estimate_dump(m, 16, false), Ok(400 * 1024));
        assert!(estimate_dump("", 31, false).is_err());
    }

    #[test]
    fn mount_lookup_takes_the_longest_prefix() {
        let m = "/dev/a / xfs rw 0 0\n/dev/b /var xfs ro 0 0\n/dev/c /var/crashy xfs rw 0 0\n";
        assert_eq!(
            mount_of(m, "/var/crash"),
            Some(("/var".into(), "ro".into()))
        );
        assert_eq!(mount_of(m, "/srv"), Some(("/".into(), "rw".into())));
    }
}
