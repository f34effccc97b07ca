//! SysRq: can watchdog dump tasks, and can a console user?

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::host::paths;

pub fn trigger(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let path = ctx.host.path(paths::SYSRQ_TRIGGER);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => Err(ctx.bad(paths::SYSRQ_TRIGGER, "is a directory")),
        Ok(_) => {
            f.value("sysrq_trigger_present", true);
            f.ok("/proc/sysrq-trigger is present: watchdog (as root) can dump tasks");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            f.value("sysrq_trigger_present", false);
            f.set(
                Status::Critical,
                "/proc/sysrq-trigger is missing: watchdog cannot dump tasks or memory state",
                "Boot a kernel built with CONFIG_MAGIC_SYSRQ (every RHEL kernel is); in a container, run watchdog on the host instead.",
            );
            Ok(())
        }
        Err(e) => Err(Problem::new(
            ProblemKind::Denied,
            format!("cannot stat {}: {e}", path.display()),
        )),
    }
}

/// The meaning of each `kernel.sysrq` bit (Documentation/admin-guide/sysrq.rst).
const BITS: &[(i64, &str)] = &[
    (2, "console log level"),
    (4, "keyboard control (SAK, unraw)"),
    (8, "debugging dumps of processes"),
    (16, "sync"),
    (32, "remount read-only"),
    (64, "signalling processes"),
    (128, "reboot/poweroff"),
    (256, "nicing real-time tasks"),
];

pub fn keyboard(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    if !ctx.host.exists(paths::SYSRQ) && !ctx.host.exists(paths::SYSRQ_TRIGGER) {
        f.value("kernel.sysrq", serde_json::Value::Null);
        f.set(
            Status::Warning,
            "This kernel has no SysRq support (no kernel.sysrq, no /proc/sysrq-trigger): console users cannot dump tasks",
            "Boot a kernel built with CONFIG_MAGIC_SYSRQ (every RHEL kernel is).",
        );
        return Ok(());
    }
    let n = ctx.int(paths::SYSRQ)?;
    f.value("kernel.sysrq", n);
    // sysrq_always_enabled on the command line makes the kernel ignore
    // kernel.sysrq (sysrq_on() is always true).
    let always = ctx.cmdline().is_ok_and(|c| c.has("sysrq_always_enabled"));
    f.value("sysrq_always_enabled", always);
    if always {
        f.ok(format!("sysrq_always_enabled is on the kernel command line: every SysRq function works from the keyboard whatever kernel.sysrq={n} says"));
        return Ok(());
    }
    let enabled: Vec<String> = match n {
        0 => Vec::new(),
        1 => vec!["all".into()],
        _ => BITS
            .iter()
            .filter(|(b, _)| n & b != 0)
            .map(|(b, name)| format!("{name} ({b})"))
            .collect(),
    };
    f.value("sysrq_functions", enabled.clone());
    let dumps = n == 1 || (n > 1 && n & 8 != 0) || n < 0;
    let fix_value = if n <= 0 { 1 } else { n | 8 };
    let fix = format!(
        "Allow process dumps from the keyboard (bit 8 = process dumps; 1 = everything): {}. /proc/sysrq-trigger works for root whatever this says.",
        super::remedy::sysctl_command(&[("kernel.sysrq", fix_value.to_string())], "sysrq-keyboard")
    );
    if dumps {
        f.ok(format!(
            "kernel.sysrq={n}: console users can dump tasks (SysRq-T)"
        ));
    } else if n == 0 {
        f.set(
            Status::Warning,
            "kernel.sysrq=0: SysRq is disabled on the keyboard; console users cannot dump tasks during a freeze",
            fix,
        );
    } else {
        f.set(
            Status::Warning,
            format!(
                "kernel.sysrq={n} allows {} but not process dumps (bit 8): console users cannot press SysRq-T",
                enabled.join(", ")
            ),
            fix,
        );
    }
    Ok(())
}
