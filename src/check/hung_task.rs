//! The hung-task detector: is it on, does it report before the cluster
//! fences the node (or a hardware watchdog resets it), and has it not run
//! out of warnings?

use super::remedy::sysctl_command;
use super::{CheckConfig, Ctx, Finding, Problem, Status};
use crate::host::paths;

const NO_DETECTOR: &str =
    "the kernel has no hung-task detector (built without CONFIG_DETECT_HUNG_TASK)";

/// The timeout (and interval, when the kernel has that knob and it is set
/// longer) that make the worst-case report time fit the failover timeout:
/// half of it each, at most the kernel's default 120 s.
pub fn suggested(cfg: &CheckConfig, interval: Option<i64>) -> (u64, Option<u64>) {
    let half = (cfg.hung_task.failover_timeout_secs / 2).clamp(1, 120);
    let interval = interval
        .and_then(|i| u64::try_from(i).ok())
        .filter(|&i| i > half)
        .map(|_| half);
    (half, interval)
}

/// An optional one-value integer file: `None` when this kernel lacks it.
fn optional_uint(ctx: &Ctx, rel: &str) -> Result<Option<u64>, Problem> {
    match ctx.host.read_value(rel) {
        Err(e) if e.is_not_found() => Ok(None),
        r => Ok(Some(
            crate::kernel::parse_uint(&r?).map_err(|e| ctx.bad(rel, e))?,
        )),
    }
}

/// The longest a task can be blocked before the kernel reports it.
///
/// khungtaskd wakes every `hung_task_check_interval_secs` (since 4.19;
/// 0 or absent: every `hung_task_timeout_secs`) and reports a task that
/// has not run for the whole timeout at that wake-up: a task that blocks
/// just after one wake-up is reported up to timeout + interval later.
pub fn worst_case_secs(timeout: u64, interval: Option<u64>) -> u64 {
    let every = match interval {
        Some(i) if i > 0 => i,
        _ => timeout,
    };
    timeout.saturating_add(every)
}

pub fn timeout(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let failover = ctx.cfg.hung_task.failover_timeout_secs;
    f.value("failover_timeout_secs", failover);
    let v = match ctx.host.read_value(paths::HUNG_TASK_TIMEOUT) {
        Err(e) if e.is_not_found() => {
            f.set(
                Status::Critical,
                format!("No hung_task_timeout_secs: {NO_DETECTOR}"),
                "Boot a kernel with CONFIG_DETECT_HUNG_TASK=y (every RHEL kernel has it).",
            );
            return Ok(());
        }
        other => other?,
    };
    let secs = crate::kernel::parse_uint(&v).map_err(|e| ctx.bad(paths::HUNG_TASK_TIMEOUT, e))?;
    f.value("kernel.hung_task_timeout_secs", secs);
    let interval = optional_uint(ctx, paths::HUNG_TASK_CHECK_INTERVAL)?;
    if let Some(i) = interval {
        f.value("kernel.hung_task_check_interval_secs", i);
    }
    let count = optional_uint(ctx, paths::HUNG_TASK_CHECK_COUNT)?;
    if let Some(c) = count {
        f.value("kernel.hung_task_check_count", c);
    }
    let (t, i) = suggested(ctx.cfg, interval.and_then(|i| i64::try_from(i).ok()));
    let mut keys = vec![("kernel.hung_task_timeout_secs", t.to_string())];
    if let Some(i) = i {
        keys.push(("kernel.hung_task_check_interval_secs", i.to_string()));
    }
    let fix = sysctl_command(&keys, "hung-task-timeout");
    if secs == 0 {
        f.set(
            Status::Critical,
            "kernel.hung_task_timeout_secs=0: the hung-task detector is off",
            fix,
        );
        return Ok(());
    }
    let worst = worst_case_secs(secs, interval);
    f.value("worst_case_report_secs", worst);
    // khungtaskd checks at most hung_task_check_count tasks per pass, always
    // from the start of the task list: threads past it are never checked.
    let threads =
        crate::kernel::tables::loadavg_threads(&ctx.host.read(paths::LOADAVG).unwrap_or_default())
            .ok();
    let unchecked = match (count, threads) {
        (Some(c), Some(t)) if t > c => Some((c, t)),
        _ => None,
    };
    let every = match interval {
        Some(i) if i > 0 => format!("checked every {i} s"),
        _ => "checked every timeout".to_string(),
    };
    if worst > failover {
        f.set(
            Status::Warning,
            format!("A hung task is reported up to {worst} s after it blocks (hung_task_timeout_secs={secs}, {every}), later than the {failover} s failover timeout: the node may be fenced first"),
            fix,
        );
    } else if let Some((c, t)) = unchecked {
        f.volatile_value("threads", t);
        f.set(
            Status::Warning,
            format!("kernel.hung_task_check_count={c} but {t} threads run: tasks past the first {c} are never checked for hangs"),
            sysctl_command(&[("kernel.hung_task_check_count", "4194304".into())], "hung-task-timeout"),
        );
    } else {
        f.ok(format!(
            "Hung tasks are reported at most {worst} s after they block (timeout {secs} s, {every}; failover timeout {failover} s)"
        ));
    }
    Ok(())
}

pub fn warnings(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let min = ctx.cfg.hung_task.min_warnings;
    // -1 (unlimited) exists since Linux 3.17; older kernels take a big number.
    let unlimited = if ctx.version().is_none_or(|v| v.at_least(3, 17)) {
        "-1"
    } else {
        "1000000"
    };
    let fix = sysctl_command(
        &[("kernel.hung_task_warnings", unlimited.to_string())],
        "hung-task-warnings",
    );
    let v = match ctx.host.read_value(paths::HUNG_TASK_WARNINGS) {
        Err(e) if e.is_not_found() => {
            f.set(
                Status::Critical,
                format!("No hung_task_warnings: {NO_DETECTOR}"),
                "Boot a kernel with CONFIG_DETECT_HUNG_TASK=y (every RHEL kernel has it).",
            );
            return Ok(());
        }
        other => other?,
    };
    let n = crate::kernel::parse_int(&v).map_err(|e| ctx.bad(paths::HUNG_TASK_WARNINGS, e))?;
    f.value("kernel.hung_task_warnings", n);
    if n < 0 {
        f.ok("Hung-task warnings are unlimited (kernel.hung_task_warnings=-1)");
    } else if n == 0 {
        f.set(
            Status::Critical,
            "kernel.hung_task_warnings=0: the kernel has stopped reporting hung tasks",
            fix,
        );
    } else if n < min {
        f.set(
            Status::Warning,
            format!("kernel.hung_task_warnings={n}: the kernel goes silent after {n} more hung-task reports"),
            fix,
        );
    } else {
        f.ok(format!("{n} hung-task warnings left"));
    }
    Ok(())
}

/// Soft lockups are reported after 2 × `kernel.watchdog_thresh` seconds.
fn soft_lockup_secs(ctx: &Ctx) -> Option<u64> {
    let thresh = ctx
        .host
        .read_value(paths::WATCHDOG_THRESH)
        .ok()
        .and_then(|v| crate::kernel::parse_uint(&v).ok())?;
    (thresh > 0).then(|| thresh * 2)
}

pub fn hardware_watchdog(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let devices = match ctx.host.list_dir(paths::WATCHDOG_CLASS) {
        Ok(d) => d,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let hung = ctx
        .host
        .read_value(paths::HUNG_TASK_TIMEOUT)
        .ok()
        .and_then(|v| crate::kernel::parse_uint(&v).ok())
        .filter(|&t| t > 0)
        .map(|t| {
            let i = ctx
                .host
                .read_value(paths::HUNG_TASK_CHECK_INTERVAL)
                .ok()
                .and_then(|v| crate::kernel::parse_uint(&v).ok());
            worst_case_secs(t, i)
        });
    let soft = soft_lockup_secs(ctx);
    if let Some(h) = hung {
        f.value("hung_task_report_secs", h);
    }
    if let Some(s) = soft {
        f.value("soft_lockup_report_secs", s);
    }
    let mut seen = Vec::new();
    let mut short = Vec::new();
    for dev in &devices {
        let base = format!("{}/{dev}", paths::WATCHDOG_CLASS);
        // Devices that are not armed reset nothing (state: since 4.x;
        // without it the device may be armed, so it counts).
        let state = ctx.host.read_value(&format!("{base}/state")).ok();
        if state.as_deref() == Some("inactive") {
            seen.push(format!("{dev} inactive"));
            continue;
        }
        let rel = format!("{base}/timeout");
        let timeout = match ctx.host.read_value(&rel) {
            Err(e) if e.is_not_found() => continue,
            r => crate::kernel::parse_uint(&r?).map_err(|e| ctx.bad(&rel, e))?,
        };
        let identity = ctx
            .host
            .read_value(&format!("{base}/identity"))
            .unwrap_or_default();
        let pretimeout = ctx
            .host
            .read_value(&format!("{base}/pretimeout"))
            .ok()
            .and_then(|v| crate::kernel::parse_uint(&v).ok())
            .unwrap_or(0);
        let governor = ctx
            .host
            .read_value(&format!("{base}/pretimeout_governor"))
            .unwrap_or_default();
        let label = if identity.is_empty() {
            dev.clone()
        } else {
            format!("{dev} ({identity})")
        };
        f.value(&format!("{dev}.timeout"), timeout);
        seen.push(format!("{label} {timeout} s"));
        // A panic pretimeout turns the reset into a panic: kdump can dump.
        if pretimeout > 0 && governor == "panic" {
            continue;
        }
        let beaten: Vec<String> = [("hung-task report", hung), ("soft-lockup report", soft)]
            .iter()
            .filter_map(|(what, t)| {
                t.filter(|&t| timeout < t)
                    .map(|t| format!("the {what} ({t} s)"))
            })
            .collect();
        if !beaten.is_empty() {
            short.push(format!(
                "{label} resets after {timeout} s, before {}",
                beaten.join(" and ")
            ));
        }
    }
    f.value("devices", seen.clone());
    if devices.is_empty() {
        f.ok("No hardware watchdog device");
    } else if short.is_empty() {
        f.ok(format!(
            "Hardware watchdog leaves time for the kernel to report: {}",
            seen.join(", ")
        ));
    } else {
        f.set(
            Status::Warning,
            format!("{}: the host is reset before the kernel can report a hang", short.join("; ")),
            "Give the hardware watchdog a timeout longer than the hung-task report time (systemd: RuntimeWatchdogSec= in /etc/systemd/system.conf; watchdog daemon: watchdog-timeout in /etc/watchdog.conf), or set a panic pretimeout (echo panic > /sys/class/watchdog/watchdogN/pretimeout_governor, and a pretimeout) so that kdump dumps before the reset.",
        );
    }
    Ok(())
}
