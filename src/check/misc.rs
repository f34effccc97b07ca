//! The RHEL 6 208-day uptime bug, the panic and NMI knobs, the taint flags,
//! and whether a resource history (sysstat) is kept.

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
            format!("In {}: {}.", super::remedy::SYSCTL_FILE, advice.join("; ")),
        );
    }
    Ok(())
}

pub fn nmi_panic(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    // Both knobs are x86-only: elsewhere the NMI button does what the
    // architecture does, and there is nothing to set.
    let read = |rel: &str| -> Result<Option<i64>, Problem> {
        match ctx.host.read_value(rel) {
            Err(e) if e.is_not_found() => Ok(None),
            r => Ok(Some(
                crate::kernel::parse_int(&r?).map_err(|e| ctx.bad(rel, e))?,
            )),
        }
    };
    let unknown = read(paths::UNKNOWN_NMI_PANIC)?;
    let io = read(paths::PANIC_ON_IO_NMI)?;
    let (Some(unknown), Some(io)) = (unknown, io) else {
        f.ok("Not applicable: this kernel has no kernel.unknown_nmi_panic/panic_on_io_nmi (x86 only)");
        return Ok(());
    };
    f.value("kernel.unknown_nmi_panic", unknown);
    f.value("kernel.panic_on_io_nmi", io);
    let kdump = ctx
        .host
        .read_value(paths::KEXEC_CRASH_LOADED)
        .is_ok_and(|v| v == "1");
    f.value("kdump_loaded", kdump);
    if unknown != 0 || io != 0 {
        f.ok(format!(
            "The BMC's NMI button panics the kernel (unknown_nmi_panic={unknown}, panic_on_io_nmi={io}){}",
            if kdump { ": a hung host can be dumped" } else { "" }
        ));
        return Ok(());
    }
    let keys = [
        ("kernel.unknown_nmi_panic", "1".to_string()),
        ("kernel.panic_on_io_nmi", "1".to_string()),
    ];
    let fix = format!(
        "{} (BMCs send either kind of NMI: `ipmitool chassis power diag` to test, with kdump loaded)",
        super::remedy::sysctl_command(&keys, "nmi-panic")
    );
    // Without kdump a panic only reboots: the button is worth as much as
    // a reset then.
    let status = if kdump { Status::Warning } else { Status::Info };
    f.set(
        status,
        "kernel.unknown_nmi_panic=0 and panic_on_io_nmi=0: the BMC's NMI button only logs a message, so a hung host cannot be made to dump a vmcore",
        fix,
    );
    Ok(())
}

/// The `kernel.tainted` bits (Documentation/admin-guide/tainted-kernels.rst):
/// letter, meaning, and whether it is evidence of an earlier problem
/// (WARNING) or a fact about the kernel support should know (INFO).
const TAINTS: &[(u32, char, &str, bool)] = &[
    (0, 'P', "proprietary module loaded", false),
    (1, 'F', "module force-loaded", false),
    (2, 'S', "kernel running on an out-of-spec system", true),
    (3, 'R', "module force-unloaded", false),
    (4, 'M', "machine check exception raised", true),
    (5, 'B', "bad page referenced", true),
    (6, 'U', "tainted on request from user space", false),
    (7, 'D', "kernel died recently (oops or BUG)", true),
    (8, 'A', "ACPI table overridden", false),
    (9, 'W', "kernel issued a warning", true),
    (10, 'C', "staging driver loaded", false),
    (11, 'I', "platform firmware bug worked around", false),
    (12, 'O', "out-of-tree module loaded", false),
    (13, 'E', "unsigned module loaded", false),
    (14, 'L', "soft lockup occurred", true),
    (15, 'K', "kernel live-patched", false),
    (16, 'X', "auxiliary taint (distribution-defined)", false),
    (17, 'T', "built with the struct randomization plugin", false),
    (18, 'N', "in-kernel test run", false),
    (
        19,
        'J',
        "userspace used a mutating debug operation in fwctl",
        false,
    ),
];

pub fn tainted(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let n = ctx.uint(paths::TAINTED)?;
    f.value("kernel.tainted", n);
    let mut letters = String::new();
    let mut problems = Vec::new();
    let mut facts = Vec::new();
    for &(bit, letter, what, problem) in TAINTS {
        if n & (1 << bit) != 0 {
            letters.push(letter);
            let s = format!("{letter}: {what}");
            if problem {
                problems.push(s);
            } else {
                facts.push(s);
            }
        }
    }
    let known: u64 = TAINTS.iter().map(|t| 1u64 << t.0).sum();
    if n & !known != 0 {
        facts.push(format!("unknown bits {:#x}", n & !known));
    }
    f.value("taint_flags", letters.as_str());
    if n == 0 {
        f.ok("The kernel is not tainted");
    } else if !problems.is_empty() {
        f.set(
            Status::Warning,
            format!(
                "Kernel tainted ({letters}) by an earlier problem this boot: {}",
                problems.iter().chain(&facts).cloned().collect::<Vec<_>>().join("; ")
            ),
            "Find and keep the first report (dmesg | grep -n -e 'Tainted:' -e 'WARNING:' -e 'BUG:' -e 'Oops' -e 'soft lockup' -e 'Machine check', or `watchdog scan` of this boot's log) before it is overwritten: the host has already had an incident; the flags stay until reboot.",
        );
    } else {
        f.set(
            Status::Info,
            format!("Kernel tainted ({letters}): {}", facts.join("; ")),
            "Not a fault by itself, but vendor support may ask to reproduce without the module: list them with `cat /proc/modules | grep '(.*[POE].*)'`.",
        );
    }
    Ok(())
}

pub fn sysstat(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let mut found = Vec::new();
    for dir in paths::SYSSTAT_DIRS {
        if let Ok(names) = ctx.host.list_dir(dir) {
            let files = names.iter().filter(|n| n.starts_with("sa")).count();
            if files > 0 {
                found.push(format!("sysstat ({files} files in /{dir})"));
            }
        }
    }
    // Debian installs sysstat with collection off until ENABLED="true".
    let debian_off = ctx.host.read(paths::SYSSTAT_DEFAULT).is_ok_and(|t| {
        t.lines()
            .any(|l| l.trim().replace(['"', '\''], "") == "ENABLED=false")
    });
    if debian_off {
        f.value("sysstat_enabled", false);
    }
    for (dir, what) in [(paths::ATOP_LOG, "atop"), (paths::PCP_LOG, "PCP pmlogger")] {
        if ctx.host.list_dir(dir).is_ok_and(|n| !n.is_empty()) {
            found.push(format!("{what} (/{dir})"));
        }
    }
    f.value("histories", found.clone());
    if !found.is_empty() && !debian_off {
        f.ok(format!("A resource history is kept: {}", found.join(", ")));
    } else if debian_off {
        f.set(
            Status::Info,
            "sysstat is installed but collection is off (ENABLED=\"false\" in /etc/default/sysstat): no record of CPU, memory and I/O before an incident",
            "sed -i 's/^ENABLED=.*/ENABLED=\"true\"/' /etc/default/sysstat && systemctl enable --now sysstat",
        );
    } else {
        f.set(
            Status::Info,
            "No resource history (no sysstat/sar files, no atop or PCP archives): after an incident nobody can tell what memory, CPU and I/O looked like before it",
            "Install and enable sysstat: `dnf install sysstat && systemctl enable --now sysstat` (RHEL) or `apt install sysstat` and ENABLED=\"true\" in /etc/default/sysstat (Debian); atop or PCP do as well.",
        );
    }
    Ok(())
}
