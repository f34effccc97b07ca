//! The `psi` finding: can `watchdog run` see memory pressure coming?
//! PSI (/proc/pressure, Linux 4.20+) is what its pressure triggers need;
//! RHEL 8 builds it in but off (CONFIG_PSI_DEFAULT_DISABLED) until the
//! kernel runs with `psi=1`.

use super::{Ctx, Finding, Status};
use crate::host::paths;

const ADVICE: &str = "Add psi=1 to the kernel command line (grubby --update-kernel=ALL --args=psi=1) and reboot: watchdog run then sees memory and I/O pressure before the OOM killer acts.";

pub fn psi(ctx: &Ctx, f: &mut Finding) -> Result<(), super::Problem> {
    let dir = ctx.host.path(paths::PRESSURE);
    if ctx.host.is_dir(paths::PRESSURE) {
        f.value("pressure", dir.display().to_string());
        f.ok("PSI is on: watchdog run arms pressure triggers in /proc/pressure");
        return Ok(());
    }
    f.value("pressure", serde_json::Value::Null);
    let psi_arg = ctx
        .cmdline()
        .ok()
        .and_then(|c| c.get("psi").map(str::to_string));
    f.value(
        "cmdline_psi",
        psi_arg.clone().map_or(serde_json::Value::Null, Into::into),
    );
    let built = ctx.kconfig("CONFIG_PSI");
    f.value(
        "config_psi",
        built.map_or(serde_json::Value::Null, Into::into),
    );
    if built == Some(false) {
        f.ok("Not applicable: this kernel is built without PSI (CONFIG_PSI)");
        return Ok(());
    }
    if built.is_none() && ctx.version().is_some_and(|v| !v.at_least(4, 20)) {
        f.ok("Not applicable: PSI came with Linux 4.20");
        return Ok(());
    }
    let why = match psi_arg.as_deref() {
        Some("0") => "psi=0 on the kernel command line turns it off".to_string(),
        _ if ctx.kconfig("CONFIG_PSI_DEFAULT_DISABLED") == Some(true) => {
            "the kernel has PSI but starts with it off (CONFIG_PSI_DEFAULT_DISABLED, as RHEL 8)"
                .to_string()
        }
        _ => format!("{} is missing", dir.display()),
    };
    f.set(
        Status::Info,
        format!("PSI is off: {why}; no pressure events before an OOM kill"),
        ADVICE,
    );
    Ok(())
}
