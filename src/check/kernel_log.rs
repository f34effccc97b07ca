//! Will the kernel's messages survive: visible on the console, timestamped,
//! in a buffer large enough for a task dump, and sent off the host?

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::host::paths;
use crate::kernel::size::{human, memparse, MIB};
use crate::kernel::tables::{kconfig_value, loadavg_threads};
use crate::kernel::{parse_uint, quote};

pub fn quiet(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let c = ctx.cmdline()?;
    let raw = ctx.host.read(paths::CMDLINE).unwrap_or_default();
    f.value("cmdline", raw.trim());
    let found: Vec<&str> = ["quiet", "rhgb"].into_iter().filter(|k| c.has(k)).collect();
    f.value("quiet", c.has("quiet"));
    f.value("rhgb", c.has("rhgb"));
    if let Some(level) = c.get("loglevel") {
        f.value("loglevel", level);
    }
    if found.is_empty() {
        f.ok("Kernel messages reach the console (no quiet, no rhgb)");
    } else {
        f.set(
            Status::Warning,
            format!(
                "Kernel command line has {}: messages before a hang or reset are hidden from the console",
                found.join(" and ")
            ),
            ctx.cmdline_fix(&[], &found),
        );
    }
    Ok(())
}

/// Where the log buffer size came from.
fn log_buf_len(ctx: &Ctx) -> Result<(u64, String), Problem> {
    if ctx.host.is_live() {
        if let Ok(n) = crate::sys::kernel_log_buffer_size() {
            return Ok((n, "syslog(2) SIZE_BUFFER".into()));
        }
    }
    // An unreadable command line may hide a log_buf_len= that overrides
    // the build default: the size is then unknown, not the default's.
    let c = ctx.cmdline()?;
    {
        if let Some(v) = c.get("log_buf_len") {
            let n =
                memparse(v).map_err(|e| ctx.bad(paths::CMDLINE, format!("log_buf_len: {e}")))?;
            // The kernel rounds log_buf_len up to a power of two.
            return Ok((
                n.checked_next_power_of_two().unwrap_or(n),
                "kernel command line log_buf_len=".into(),
            ));
        }
    }
    let release = ctx.host.kernel_release().unwrap_or_default();
    let config = crate::host::Host::kernel_config(&release);
    if !release.is_empty() {
        if let Ok(text) = ctx.host.read(&config) {
            if let Some(v) = kconfig_value(&text, "CONFIG_LOG_BUF_SHIFT") {
                let shift = parse_uint(v)
                    .map_err(|e| ctx.bad(&config, format!("CONFIG_LOG_BUF_SHIFT: {e}")))?;
                if !(12..=25).contains(&shift) {
                    return Err(ctx.bad(
                        &config,
                        format!("CONFIG_LOG_BUF_SHIFT={shift} is outside 12..25"),
                    ));
                }
                return Ok((1u64 << shift, format!("/{config} CONFIG_LOG_BUF_SHIFT")));
            }
        }
    }
    let syslog = if ctx.host.is_live() {
        "syslog(2) SIZE_BUFFER refused (run as root or set kernel.dmesg_restrict=0)"
    } else {
        "syslog(2) describes the running kernel, not this --root"
    };
    Err(Problem::new(
        ProblemKind::Missing,
        format!(
            "cannot tell the kernel log buffer size: {syslog}; no log_buf_len= on the command line; no CONFIG_LOG_BUF_SHIFT in {}",
            ctx.host.path(&config).display()
        ),
    ))
}

pub fn log_buf_size(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let (size, source) = log_buf_len(ctx)?;
    f.value("log_buf_len", size);
    f.value("log_buf_source", source);
    let threads =
        loadavg_threads(&ctx.host.read(paths::LOADAVG)?).map_err(|e| ctx.bad(paths::LOADAVG, e))?;
    f.volatile_value("threads", threads);
    let per = ctx.cfg.log_buf.bytes_per_thread;
    let need = threads.saturating_mul(per);
    f.volatile_value("sysrq_t_estimate", need);
    if size >= need {
        f.ok(format!(
            "Log buffer {} holds a SysRq-T dump of {threads} threads (~{})",
            human(size),
            human_approx(need)
        ));
    } else {
        let suggest = need.max(MIB).checked_next_power_of_two().unwrap_or(need);
        f.set(
            Status::Warning,
            format!(
                "Log buffer {} is smaller than a SysRq-T dump of {threads} threads (~{}): the start of the dump would be overwritten",
                human(size),
                human_approx(need)
            ),
            ctx.cmdline_fix(&[&format!("log_buf_len={}", human(suggest))], &[]),
        );
    }
    Ok(())
}

fn human_approx(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1}M", bytes as f64 / MIB as f64)
    } else {
        format!("{}K", bytes.div_ceil(1024))
    }
}

pub fn printk_time(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let v = ctx.text(paths::PRINTK_TIME)?;
    f.value("printk.time", v.as_str());
    match v.as_str() {
        "Y" | "y" | "1" => f.ok("Kernel messages carry timestamps (printk.time=Y)"),
        "N" | "n" | "0" => f.set(
            Status::Warning,
            "Kernel messages have no timestamps (printk.time=N): the order and spacing of events before a hang is lost",
            format!(
                "echo Y > /sys/module/printk/parameters/time now, and for the next boot: {}",
                ctx.cmdline_fix(&["printk.time=1"], &[])
            ),
        ),
        other => {
            return Err(ctx.bad(
                paths::PRINTK_TIME,
                format!("expected Y or N, found {}", quote(other)),
            ))
        }
    }
    Ok(())
}

/// Netconsole targets enabled in configfs, as `name -> remote_ip:port`.
fn configfs_targets(ctx: &Ctx) -> Vec<String> {
    let base = paths::NETCONSOLE_CONFIGFS;
    let Ok(names) = ctx.host.list_dir(base) else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter(|n| {
            ctx.host
                .read_value(&format!("{base}/{n}/enabled"))
                .is_ok_and(|v| v == "1")
        })
        .map(|n| {
            let ip = ctx
                .host
                .read_value(&format!("{base}/{n}/remote_ip"))
                .unwrap_or_default();
            let port = ctx
                .host
                .read_value(&format!("{base}/{n}/remote_port"))
                .unwrap_or_default();
            format!("{n} -> {ip}:{port}")
        })
        .collect()
}

/// SYSLOGADDR from RHEL's /etc/sysconfig/netconsole, if set.
fn sysconfig_target(ctx: &Ctx) -> Option<String> {
    let text = ctx.host.read(paths::NETCONSOLE_SYSCONFIG).ok()?;
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix("SYSLOGADDR=")?;
        let v = v.trim().trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// Serial consoles on the command line and whether netconsole sends:
/// what remote-console reports and console-loglevel needs.
fn remote_ways(ctx: &Ctx) -> Result<(Vec<String>, bool), Problem> {
    let c = ctx.cmdline()?;
    let serial: Vec<String> = c
        .all("console")
        .into_iter()
        .filter(|v| v.starts_with("ttyS") || v.starts_with("ttyAMA"))
        .map(str::to_string)
        .collect();
    let targets = configfs_targets(ctx);
    let module = ctx.host.is_dir(paths::NETCONSOLE_MODULE);
    let configured = c.get("netconsole").is_some() || sysconfig_target(ctx).is_some();
    let configfs_visible = ctx.host.is_dir(paths::NETCONSOLE_CONFIGFS);
    let netconsole = !targets.is_empty() || (module && (configured || !configfs_visible));
    Ok((serial, netconsole))
}

/// The console log level: a console prints a message only when its level
/// is below the first field of kernel.printk. Task dumps (SysRq-T, the
/// hung-task report's stack) are KERN_INFO (6), some lines KERN_DEBUG (7).
pub fn console_loglevel(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let text = ctx.text(paths::PRINTK)?;
    let fields: Vec<i64> = text
        .split_whitespace()
        .map(crate::kernel::parse_int)
        .collect::<Result<_, _>>()
        .map_err(|e| ctx.bad(paths::PRINTK, e))?;
    let level = match fields.as_slice() {
        [l, _, _, _] => *l,
        _ => {
            return Err(ctx.bad(
                paths::PRINTK,
                format!("expected 4 numbers, found {}", quote(&text)),
            ))
        }
    };
    f.value(
        "kernel.printk",
        text.split_whitespace().collect::<Vec<_>>().join(" "),
    );
    f.value("console_loglevel", level);
    let c = ctx.cmdline()?;
    let ignore = c.has("ignore_loglevel");
    f.value("ignore_loglevel", ignore);
    let (serial, netconsole) = remote_ways(ctx)?;
    let remote = !serial.is_empty() || netconsole;
    f.value("remote_console", remote);
    if ignore {
        f.ok("ignore_loglevel is on the kernel command line: every message reaches the consoles");
    } else if !remote {
        f.ok(format!(
            "Console log level {level}; no serial console or netconsole to reach (see remote-console)"
        ));
    } else if level < 7 {
        f.set(
            Status::Warning,
            format!("Console log level {level} (kernel.printk first field): SysRq-T and hung-task stack lines (level 6 and 7) never reach the serial console or netconsole"),
            format!(
                "dmesg -n 8 now; for good: {}",
                super::remedy::sysctl_command(&[("kernel.printk", {
                    let rest: Vec<String> = fields[1..].iter().map(i64::to_string).collect();
                    format!("8 {}", rest.join(" "))
                })], "console-loglevel")
            ),
        );
    } else {
        f.ok(format!(
            "Console log level {level}: task dumps reach the remote console{}",
            if level < 8 {
                " (debug lines, level 7, do not: 8 shows them too)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

pub fn remote_console(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let c = ctx.cmdline()?;
    let serial: Vec<String> = c
        .all("console")
        .into_iter()
        .filter(|v| v.starts_with("ttyS") || v.starts_with("ttyAMA"))
        .map(str::to_string)
        .collect();
    f.value("serial_consoles", serial.clone());
    let targets = configfs_targets(ctx);
    f.value("netconsole_targets", targets.clone());
    let module = ctx.host.is_dir(paths::NETCONSOLE_MODULE);
    f.value("netconsole_module", module);
    let param = c.get("netconsole").map(str::to_string);
    if let Some(p) = &param {
        f.value("cmdline_netconsole", p.as_str());
    }
    let sysconfig = sysconfig_target(ctx);
    if let Some(s) = &sysconfig {
        f.value("sysconfig_syslogaddr", s.as_str());
    }
    // Targets given as the module's parameter are not visible in sysfs. A
    // loaded module counts as sending when something configured it, or when
    // there is no configfs directory that could show its targets instead.
    let configfs_visible = ctx.host.is_dir(paths::NETCONSOLE_CONFIGFS);
    let netconsole = !targets.is_empty()
        || (module && (param.is_some() || sysconfig.is_some() || !configfs_visible));
    let mut ways = Vec::new();
    if !serial.is_empty() {
        ways.push(format!("serial console {}", serial.join(", ")));
    }
    if !targets.is_empty() {
        ways.push(format!("netconsole {}", targets.join(", ")));
    } else if netconsole {
        ways.push(match param.or(sysconfig.clone()) {
            Some(to) => format!("netconsole to {to}"),
            None => "netconsole (module loaded; targets set as its parameter)".to_string(),
        });
    }
    if !ways.is_empty() {
        f.ok(format!(
            "Kernel messages leave the host by {}",
            ways.join(" and ")
        ));
    } else if let Some(addr) = sysconfig {
        f.set(
            Status::Warning,
            format!("netconsole is configured (SYSLOGADDR={addr}) but not running: the last kernel messages before a reset are lost"),
            "systemctl enable --now netconsole, and check `dmesg | grep netconsole` for errors",
        );
    } else {
        f.set(
            Status::Warning,
            "No serial console and no netconsole: the last kernel messages before a reset are lost",
            format!("Send the console to a log host running `watchdog udplogger`: set SYSLOGADDR=<log host> in /etc/sysconfig/netconsole and systemctl enable --now netconsole; or a serial console: {}", ctx.cmdline_fix(&["console=tty0", "console=ttyS0,115200n8"], &[])),
        );
    }
    Ok(())
}
