//! kdump: is memory reserved for a crash kernel, is one loaded, is the
//! reservation big enough for this machine?

use super::{Ctx, Finding, Problem, Status};
use crate::host::paths;
use crate::kernel::size::{human, CrashKernel, GIB, MIB};
use crate::kernel::tables::kb_field;

fn reserve_advice(ctx: &Ctx) -> String {
    let rec = match ctx.cfg.kdump.recommended_crashkernel.as_str() {
        "distribution" => match ctx.version().and_then(|v| v.rhel_major()) {
            Some(6..=8) => "auto",
            _ => RHEL9_DEFAULT,
        },
        other => other,
    };
    let rhel = ctx.version().and_then(|v| v.rhel_major());
    let tool = if rhel.is_some_and(|r| r >= 9) {
        "kdumpctl reset-crashkernel --kernel=ALL".to_string()
    } else {
        ctx.cmdline_fix(&[&format!("crashkernel={rec}")], &[])
    };
    format!(
        "Reserve crash-kernel memory on the kernel command line: {tool}; then `{}`.",
        start_kdump(ctx)
    )
}

/// The service that loads the crash kernel: kdump-tools on Debian and
/// Ubuntu, kdump elsewhere.
fn start_kdump(ctx: &Ctx) -> &'static str {
    if ctx.bootloader() == super::Bootloader::UpdateGrub {
        "systemctl enable --now kdump-tools"
    } else {
        "systemctl enable --now kdump"
    }
}

const NO_KEXEC: &str = "Boot a kernel built with CONFIG_KEXEC_CORE and CONFIG_CRASH_DUMP (every RHEL kernel is), then reserve memory and start kdump.";

/// The kexec sysfs files exist only when the kernel can kexec at all.
/// Reported as `status` by the check that asks.
fn no_kexec(ctx: &Ctx, f: &mut Finding, rel: &str, status: Status) -> bool {
    if ctx.host.exists(rel)
        || ctx.host.exists(paths::KEXEC_CRASH_LOADED)
        || ctx.host.exists(paths::KEXEC_CRASH_SIZE)
    {
        return false;
    }
    f.value("kexec_support", false);
    f.set(
        status,
        "This kernel has no kexec support (no /sys/kernel/kexec_crash_*): kdump cannot work",
        NO_KEXEC,
    );
    true
}

pub fn reserved(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    if no_kexec(ctx, f, paths::KEXEC_CRASH_SIZE, Status::Critical) {
        return Ok(());
    }
    let size = ctx.uint(paths::KEXEC_CRASH_SIZE)?;
    f.value("kexec_crash_size", size);
    if size == 0 {
        f.set(
            Status::Critical,
            "No memory is reserved for a crash kernel: a panic leaves no vmcore",
            reserve_advice(ctx),
        );
    } else {
        f.ok(format!("{} reserved for the crash kernel", human(size)));
    }
    Ok(())
}

pub fn loaded(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    if no_kexec(ctx, f, paths::KEXEC_CRASH_LOADED, Status::Critical) {
        return Ok(());
    }
    let v = ctx.text(paths::KEXEC_CRASH_LOADED)?;
    match crate::kernel::parse_int(&v) {
        Ok(n) => f.value("kexec_crash_loaded", n),
        Err(_) => f.value("kexec_crash_loaded", v.as_str()),
    }
    match v.as_str() {
        "1" => f.ok("kdump is operational: a crash kernel is loaded"),
        "0" => {
            let reserved = ctx.uint(paths::KEXEC_CRASH_SIZE).unwrap_or(1);
            let fix = if reserved == 0 {
                format!("Nothing is reserved yet. {}", reserve_advice(ctx))
            } else {
                if ctx.bootloader() == super::Bootloader::UpdateGrub {
                    "Start the kdump service: `systemctl enable --now kdump-tools`; `kdump-config status` must then print \"ready to kdump\".".to_string()
                } else {
                    "Start the kdump service: `systemctl enable --now kdump`; `kdumpctl status` must then print \"Kdump is operational\".".to_string()
                }
            };
            f.set(
                Status::Critical,
                "kdump is not operational: no crash kernel is loaded",
                fix,
            );
        }
        other => {
            return Err(ctx.bad(
                paths::KEXEC_CRASH_LOADED,
                format!("expected 0 or 1, found {}", crate::kernel::quote(other)),
            ))
        }
    }
    Ok(())
}

pub fn size(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    // Nothing can be reserved: below any recommendation, and already
    // CRITICAL under kdump-reserved.
    if no_kexec(ctx, f, paths::KEXEC_CRASH_SIZE, Status::Warning) {
        return Ok(());
    }
    let reserved = ctx.uint(paths::KEXEC_CRASH_SIZE)?;
    f.value("kexec_crash_size", reserved);
    let meminfo = ctx.host.read(paths::MEMINFO)?;
    let mem_total = kb_field(&meminfo, "MemTotal").map_err(|e| ctx.bad(paths::MEMINFO, e))?;
    // MemTotal excludes the crash reservation; add it back to estimate the
    // RAM size the kernel matched crashkernel= ranges against.
    let ram = mem_total.saturating_add(reserved);
    f.value("mem_total", mem_total);
    f.value("ram_estimate", human_ram(ram));
    let (rec, basis) = recommended(ctx, ram);
    f.value("recommended", human(rec));
    f.value("recommended_by", basis.clone());

    let cmd = ctx
        .cmdline()
        .ok()
        .and_then(|c| c.get("crashkernel").map(str::to_string));
    if let Some(c) = &cmd {
        f.value("cmdline_crashkernel", c.as_str());
    }
    let is_auto = cmd.as_deref() == Some("auto");
    let auto_gone = ctx.version().is_some_and(|v| v.at_least(5, 14));
    if is_auto && auto_gone {
        f.set(
            Status::Warning,
            format!(
                "crashkernel=auto is not supported by this kernel (removed in RHEL 9); {} reserved",
                human(reserved)
            ),
            reserve_advice(ctx),
        );
        return Ok(());
    }
    let note = if is_auto {
        " (chosen by crashkernel=auto)"
    } else {
        ""
    };
    if reserved < rec {
        let what = if reserved == 0 {
            "nothing reserved".to_string()
        } else {
            format!("{} reserved{note}", human(reserved))
        };
        f.set(
            Status::Warning,
            format!(
                "Crash kernel: {what}, below the {} recommended for {} of RAM ({basis})",
                human(rec),
                human_ram(ram)
            ),
            reserve_advice(ctx),
        );
    } else if rec == 0 {
        f.ok(format!(
            "No crash-kernel reservation is recommended for {} of RAM",
            human_ram(ram)
        ));
    } else {
        f.ok(format!(
            "{} reserved{note}, at least the {} recommended for {} of RAM",
            human(reserved),
            human(rec),
            human_ram(ram)
        ));
    }
    Ok(())
}

/// RHEL 9's `kdumpctl get-default-crashkernel` for x86_64, also used for
/// kernels of other distributions.
const RHEL9_DEFAULT: &str = "1G-4G:192M,4G-64G:256M,64G-:512M";
/// RHEL 8's `crashkernel=auto` table for x86_64.
const RHEL8_AUTO: &str = "1G-4G:160M,4G-64G:192M,64G-1T:256M,1T-:512M";

/// The crash-kernel size recommended for `ram` bytes, and by whom.
///
/// `distribution` (the default setting) follows the host's own release:
/// RHEL 6 and 7 `crashkernel=auto` reserved a base (128M, 160M) plus two
/// bits per 4 KiB page of RAM (64M per TiB) on machines of 2G or more;
/// RHEL 8 and 9 use size tables.
fn recommended(ctx: &Ctx, ram: u64) -> (u64, String) {
    let setting = ctx.cfg.kdump.recommended_crashkernel.as_str();
    if setting != "distribution" {
        let size = CrashKernel::parse(setting)
            .ok()
            .and_then(|c| c.size_for(ram))
            .unwrap_or(0);
        return (size, format!("configured crashkernel={setting}"));
    }
    let per_page_bits = |base: u64| if ram < 2 * GIB { 0 } else { base + ram / 16384 };
    match ctx.version().and_then(|v| v.rhel_major()) {
        Some(6) => (per_page_bits(128 * MIB), "RHEL 6 crashkernel=auto".into()),
        Some(7) => (per_page_bits(160 * MIB), "RHEL 7 crashkernel=auto".into()),
        Some(8) => (table(RHEL8_AUTO, ram), "RHEL 8 crashkernel=auto".into()),
        _ => (table(RHEL9_DEFAULT, ram), "RHEL 9 kdumpctl default".into()),
    }
}

fn table(ranges: &str, ram: u64) -> u64 {
    CrashKernel::parse(ranges)
        .ok()
        .and_then(|c| c.size_for(ram))
        .unwrap_or(0)
}

/// RAM rounded to a readable unit: 15.5G, 512M.
fn human_ram(bytes: u64) -> String {
    let mib = bytes / MIB;
    if mib >= 1024 {
        format!("{:.1}G", mib as f64 / 1024.0)
    } else {
        format!("{mib}M")
    }
}
