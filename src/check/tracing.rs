//! tracefs: where it is, and whether snapshots and kprobe events exist.

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::kernel::tracing::{self, Tracing};

/// Where tracing is, found the same way `watchdog run` finds it.
fn locate(ctx: &Ctx) -> Result<Tracing, Problem> {
    Ok(tracing::locate(ctx.host)?)
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
