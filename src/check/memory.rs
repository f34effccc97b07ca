//! Memory-pressure settings: what an OOM does, who is exempt from it, and
//! the dentry cache's reclaim arithmetic.

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::host::{paths, Host};
use crate::kernel::parse_int;
use crate::kernel::size::MIB;
use crate::kernel::tables::{kb_field, DentryState};

pub fn panic_on_oom(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let n = ctx.int(paths::PANIC_ON_OOM)?;
    f.value("vm.panic_on_oom", n);
    let kdump = ctx
        .host
        .read_value(paths::KEXEC_CRASH_LOADED)
        .is_ok_and(|v| v == "1");
    let vmcore = if kdump {
        "kdump is loaded, so the panic leaves a vmcore"
    } else {
        "kdump is not loaded, so the panic leaves no vmcore"
    };
    match n {
        0 => f.set(
            Status::Ok,
            "vm.panic_on_oom=0: an OOM kills a process and the host keeps running; the OOM report in the kernel log is the evidence",
            "Trade-off: vm.panic_on_oom=1 with kdump loaded captures the whole memory state of an OOM in a vmcore, at the price of a reboot.",
        ),
        1 => f.set(
            Status::Info,
            format!("vm.panic_on_oom=1: a system-wide OOM panics the host (cgroup and cpuset OOMs still kill); {vmcore}"),
            "Trade-off: keep 1 to get a vmcore of every system-wide OOM (needs kdump); set 0 to keep the host up and kill a process instead.",
        ),
        2 => f.set(
            Status::Info,
            format!("vm.panic_on_oom=2: every OOM, even inside a memory cgroup, panics the host; {vmcore}"),
            "Trade-off: 2 reboots the host for any container's OOM; 1 limits panics to system-wide OOMs.",
        ),
        other => {
            return Err(ctx.bad(
                paths::PANIC_ON_OOM,
                format!("expected 0, 1 or 2, found {other}"),
            ))
        }
    }
    Ok(())
}

/// One process's standing with the OOM killer.
struct Proc {
    pid: u32,
    comm: String,
    adj: i64,
    rss: u64,
}

/// Reads one process; `None` when it vanished, is a kernel thread, or its
/// files are unreadable (another user's process under some LSM policies).
fn read_proc(host: &Host, pid: u32) -> Option<Proc> {
    let status = host.read(&Host::proc_pid(pid, "status")).ok()?;
    // Kernel threads have no VmRSS line.
    let rss = kb_field(&status, "VmRSS").ok()?;
    let adj = match host.read_value(&Host::proc_pid(pid, "oom_score_adj")) {
        Ok(v) => parse_int(&v).ok()?,
        // Before 2.6.36 only oom_adj existed: -17 disabled the OOM killer,
        // scaled like the kernel's own conversion (adj * 1000 / 17).
        Err(_) => {
            let old = parse_int(&host.read_value(&Host::proc_pid(pid, "oom_adj")).ok()?).ok()?;
            if old <= -17 {
                -1000
            } else {
                old * 1000 / 17
            }
        }
    };
    let comm = host
        .read_value(&Host::proc_pid(pid, "comm"))
        .ok()
        .or_else(|| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Name:").map(|n| n.trim().to_string()))
        })
        .unwrap_or_default();
    Some(Proc {
        pid,
        comm,
        adj,
        rss,
    })
}

pub fn oom_score_adj(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let cfg = &ctx.cfg.oom_score_adj;
    let names = ctx.host.list_dir(paths::PROC)?;
    let pids: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
    let procs: Vec<Proc> = pids
        .iter()
        .filter_map(|&p| read_proc(ctx.host, p))
        .collect();
    let excluded: Vec<&Proc> = procs.iter().filter(|p| p.adj <= cfg.at_or_below).collect();
    let min_rss = cfg.min_rss_mib.saturating_mul(MIB);
    let mut flagged: Vec<&Proc> = excluded
        .iter()
        .copied()
        .filter(|p| p.rss >= min_rss && !cfg.ignore.contains(&p.comm))
        .collect();
    flagged.sort_by(|a, b| b.rss.cmp(&a.rss).then(a.pid.cmp(&b.pid)));
    f.volatile_value("processes_examined", procs.len());
    f.volatile_value("excluded_processes", excluded.len());
    let list: Vec<String> = flagged
        .iter()
        .map(|p| {
            format!(
                "{} (pid {}): RSS {} MiB, oom_score_adj {}",
                p.comm,
                p.pid,
                p.rss / MIB,
                p.adj
            )
        })
        .collect();
    f.volatile_value("flagged", list.clone());
    let mut comms: Vec<String> = flagged.iter().map(|p| p.comm.clone()).collect();
    comms.sort();
    comms.dedup();
    f.value("flagged_names", comms);
    if procs.is_empty() && !pids.is_empty() {
        return Err(Problem::new(
            ProblemKind::Denied,
            format!(
                "none of the {} processes under {} could be read",
                pids.len(),
                ctx.host.path(paths::PROC).display()
            ),
        ));
    }
    if flagged.is_empty() {
        f.ok(format!(
            "No process of {} MiB or more is excluded from the OOM killer ({} of {} processes at oom_score_adj <= {}, all small)",
            cfg.min_rss_mib,
            excluded.len(),
            procs.len(),
            cfg.at_or_below
        ));
    } else {
        f.set(
            Status::Warning,
            format!(
                "{} large process{} excluded from the OOM killer: {}",
                flagged.len(),
                if flagged.len() == 1 { "" } else { "es" },
                list.join("; ")
            ),
            "Let the OOM killer choose them: remove OOMScoreAdjust= from their systemd units (systemctl edit UNIT) or write a less negative value to /proc/PID/oom_score_adj. Otherwise an OOM kills innocent processes or, with nothing left to kill, panics the host.",
        );
    }
    Ok(())
}

pub fn vfs_cache_pressure(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let n = ctx.int(paths::VFS_CACHE_PRESSURE)?;
    f.value("vm.vfs_cache_pressure", n);
    let r = &ctx.cfg.vfs_cache_pressure;
    let fix = super::remedy::sysctl_command(
        &[("vm.vfs_cache_pressure", "100".into())],
        "vfs-cache-pressure",
    );
    if n < r.min {
        f.set(
            Status::Warning,
            format!("vm.vfs_cache_pressure={n}: dentries and inodes are {} reclaimed; the caches can grow until memory runs out", if n == 0 { "never" } else { "hardly" }),
            fix,
        );
    } else if n > r.max {
        f.set(
            Status::Warning,
            format!("vm.vfs_cache_pressure={n} (above {}): the dentry shrinker works {}x harder, making huge dentry caches slow to reclaim", r.max, n / 100),
            fix,
        );
    } else {
        f.ok(format!("vm.vfs_cache_pressure={n}"));
    }
    Ok(())
}

pub fn dentry_overflow(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let text = ctx.host.read(paths::DENTRY_STATE)?;
    let d = DentryState::parse(&text).map_err(|e| ctx.bad(paths::DENTRY_STATE, e))?;
    let pressure = ctx.int(paths::VFS_CACHE_PRESSURE)?;
    f.volatile_value("nr_dentry", d.nr_dentry);
    f.volatile_value("nr_unused", d.nr_unused);
    f.value("vm.vfs_cache_pressure", pressure);
    // The RHEL 6 shrinker: (nr_unused / 100) * vfs_cache_pressure, in an int.
    let product = i128::from(d.nr_unused / 100) * i128::from(pressure);
    let ratio = product as f64 / f64::from(i32::MAX);
    f.volatile_value("shrinker_count", product.to_string());
    f.volatile_value("int_max_ratio", (ratio * 1000.0).round() / 1000.0);
    // Linux 3.12 moved shrinkers to count_objects() returning unsigned long:
    // there the product no longer wraps, but scanning that many dentries
    // still stalls reclaim. The thresholds are the same; the words differ.
    let wraps = ctx.version().is_none_or(|v| !v.at_least(3, 12));
    let pct = ratio * 100.0;
    let cfg = &ctx.cfg.dentry;
    let fix = format!(
        "Lower vm.vfs_cache_pressure to 100 or less and drop unused dentries now: sync; echo 2 > /proc/sys/vm/drop_caches (nr_unused is {}).",
        d.nr_unused
    );
    let what = if wraps {
        "past 100% the count turns negative and reclaim loops for minutes"
    } else {
        "this kernel counts in 64 bits and cannot wrap, but reclaiming that many dentries stalls the host"
    };
    if ratio >= cfg.critical_ratio {
        f.set(
            Status::Critical,
            format!("Dentry shrinker count (nr_unused/100) x vfs_cache_pressure = {product} is {pct:.0}% of INT_MAX: {what}"),
            fix,
        );
    } else if ratio >= cfg.warning_ratio {
        f.set(
            Status::Warning,
            format!("Dentry shrinker count (nr_unused/100) x vfs_cache_pressure = {product} is {pct:.0}% of INT_MAX: {what}"),
            fix,
        );
    } else if wraps {
        f.ok(format!(
            "Dentry shrinker count {product} is {pct:.1}% of INT_MAX ({} unused dentries)",
            d.nr_unused
        ));
    } else {
        f.ok(format!(
            "{} unused dentries: shrinker count {pct:.1}% of INT_MAX (and 64-bit on this kernel)",
            d.nr_unused
        ));
    }
    Ok(())
}
