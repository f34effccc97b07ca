//! The hung-task detector: is it on, does it fire before the cluster fences
//! the node, and has it not run out of warnings?

use super::{Ctx, Finding, Problem, Status};
use crate::host::paths;

const NO_DETECTOR: &str =
    "the kernel has no hung-task detector (built without CONFIG_DETECT_HUNG_TASK)";

pub fn timeout(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let failover = ctx.cfg.hung_task.failover_timeout_secs;
    let suggest = failover.min(120);
    let fix = format!(
        "echo 'kernel.hung_task_timeout_secs = {suggest}' > /etc/sysctl.d/90-hung-task.conf && sysctl -p /etc/sysctl.d/90-hung-task.conf"
    );
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
    if secs == 0 {
        f.set(
            Status::Critical,
            "kernel.hung_task_timeout_secs=0: the hung-task detector is off",
            fix,
        );
    } else if secs > failover {
        f.set(
            Status::Warning,
            format!("kernel.hung_task_timeout_secs={secs} is longer than the {failover} s failover timeout: the node may be fenced before a hung task is reported"),
            fix,
        );
    } else {
        f.ok(format!(
            "Hung tasks are reported after {secs} s (failover timeout {failover} s)"
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
    let fix = format!(
        "echo 'kernel.hung_task_warnings = {unlimited}' > /etc/sysctl.d/90-hung-task.conf && sysctl -p /etc/sysctl.d/90-hung-task.conf"
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
