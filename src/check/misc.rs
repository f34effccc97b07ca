//! The RHEL 6 208-day uptime bug and the panic knobs.

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::host::paths;
use crate::kernel::tables::uptime_secs;
use crate::kernel::version::compare_builds;

/// First RHEL 6 kernel with the sched_clock overflow fixed (RHBA-2013:1388).
const FIXED_BUILD: [u32; 3] = [358, 23, 2];
const CRASH_DAYS: f64 = 208.5;

pub fn uptime_208_days(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let release = ctx.host.kernel_release().ok_or_else(|| {
        Problem::new(
            ProblemKind::Missing,
            format!(
                "cannot read the kernel release from {}",
                ctx.host.path(paths::OSRELEASE).display()
            ),
        )
    })?;
    f.value("kernel", release.as_str());
    let v = ctx.version();
    let el6 =
        v.is_some_and(|v| (v.major, v.minor, v.patch) == (2, 6, 32) && v.rhel_major() == Some(6));
    if !el6 {
        f.ok("Not applicable: only RHEL 6 kernels before 2.6.32-358.23.2.el6 crash at 208.5 days of uptime");
        return Ok(());
    }
    let build = v.and_then(|v| v.rhel_build()).unwrap_or_default();
    if compare_builds(&build, &FIXED_BUILD).is_ge() {
        f.ok(format!(
            "{release} has the 208.5-day sched_clock fix (2.6.32-358.23.2.el6 or later)"
        ));
        return Ok(());
    }
    let up = uptime_secs(&ctx.host.read(paths::UPTIME)?).map_err(|e| ctx.bad(paths::UPTIME, e))?;
    let days = up / 86_400.0;
    f.volatile_value("uptime_days", (days * 10.0).round() / 10.0);
    let fix = "Reboot into kernel 2.6.32-358.23.2.el6 or later (yum update kernel) before 208.5 days of uptime; a reboot also resets the count.";
    if days >= CRASH_DAYS - ctx.cfg.uptime_208.margin_days {
        let when = if days >= CRASH_DAYS {
            format!("past 208.5 days ({days:.1})")
        } else {
            format!("{days:.1} days, {:.1} days before 208.5", CRASH_DAYS - days)
        };
        f.set(
            Status::Critical,
            format!("{release} is affected by the 208.5-day sched_clock overflow and uptime is {when}: the host may panic or hang"),
            fix,
        );
    } else {
        // Not near yet: the contract (docs/contracts.md) makes only "near or past"
        // CRITICAL; this is the heads-up, without changing the exit code.
        f.set(
            Status::Info,
            format!("{release} is affected by the 208.5-day sched_clock overflow; uptime {days:.1} days, {:.0} days left: reboot into a fixed kernel before then", CRASH_DAYS - days),
            fix,
        );
    }
    Ok(())
}

pub fn panic_settings(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let panic = ctx.int(paths::PANIC)?;
    let on_oops = ctx.int(paths::PANIC_ON_OOPS)?;
    f.value("kernel.panic", panic);
    f.value("kernel.panic_on_oops", on_oops);
    // These two exist only with their detectors built in.
    let optional = |rel: &str, name: &str, f: &mut Finding| -> Result<Option<i64>, Problem> {
        match ctx.host.read_value(rel) {
            Err(e) if e.is_not_found() => {
                f.value(name, serde_json::Value::Null);
                Ok(None)
            }
            r => {
                let n = crate::kernel::parse_int(&r?).map_err(|e| ctx.bad(rel, e))?;
                f.value(name, n);
                Ok(Some(n))
            }
        }
    };
    let hung = optional(paths::HUNG_TASK_PANIC, "kernel.hung_task_panic", f)?;
    let soft = optional(paths::SOFTLOCKUP_PANIC, "kernel.softlockup_panic", f)?;
    let loaded = ctx
        .host
        .read_value(paths::KEXEC_CRASH_LOADED)
        .ok()
        .and_then(|v| crate::kernel::parse_int(&v).ok());
    // Same name and form as kdump-loaded's value: one fact, one value.
    if let Some(n) = loaded {
        f.value("kexec_crash_loaded", n);
    }
    let kdump = loaded == Some(1);

    let mut notes = Vec::new();
    let mut advice = Vec::new();
    if kdump && on_oops == 0 {
        notes.push("an oops does not panic, so kdump never sees it");
        advice.push("kernel.panic_on_oops = 1 turns every oops into a vmcore");
    }
    if !kdump && panic == 0 {
        notes.push(
            "after a panic the host waits for a manual reset (kernel.panic=0) with no vmcore",
        );
        advice.push("kernel.panic = 10 reboots 10 s after a panic (or load kdump to capture it)");
    }
    if hung == Some(1) {
        notes.push("a hung task panics the host (kernel.hung_task_panic=1)");
        advice.push(if kdump {
            "hung_task_panic=1 gives a vmcore of every hang, at the price of a reboot"
        } else {
            "hung_task_panic=1 without kdump reboots and loses the hung state: load kdump or set it to 0"
        });
    }
    if soft == Some(1) {
        notes.push("a soft lockup panics the host (kernel.softlockup_panic=1)");
    }
    let show = |v: Option<i64>| v.map_or("absent".to_string(), |n| n.to_string());
    let summary = format!(
        "kernel.panic={panic} panic_on_oops={on_oops} hung_task_panic={} softlockup_panic={}",
        show(hung),
        show(soft)
    );
    if notes.is_empty() {
        f.set(
            Status::Ok,
            summary,
            "Trade-off: panic_on_oops, hung_task_panic and softlockup_panic turn an incident into a vmcore (with kdump loaded) at the price of a reboot.",
        );
    } else {
        f.set(
            Status::Info,
            format!("{summary}: {}", notes.join("; ")),
            format!("In /etc/sysctl.d/90-panic.conf: {}.", advice.join("; ")),
        );
    }
    Ok(())
}
