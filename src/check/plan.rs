//! `watchdog check --plan`: every finding that is not OK turned into the
//! concrete change — one sysctl.d file, one grubby command line, the
//! service steps — printed, never applied.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::{Finding, Report, Status};
use crate::check::CheckConfig;
use crate::kernel::KernelVersion;

/// The sysctl.d file the plan writes.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-watchdog.conf";

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `key = value` in the sysctl.d file.
    Sysctl(&'static str, String),
    /// A kernel command-line parameter to add (`name=value` or a flag).
    CmdlineAdd(String),
    /// A kernel command-line parameter to remove.
    CmdlineRemove(&'static str),
    /// A command to run (after the reboot when `after_reboot`).
    Command { text: String, after_reboot: bool },
    /// Nothing this tool can write for you: what to do by hand.
    Manual(String),
}

/// The steps for one finding.
pub fn steps(f: &Finding, kernel: Option<&KernelVersion>, cfg: &CheckConfig) -> Vec<Step> {
    if matches!(f.status, Status::Ok) {
        return Vec::new();
    }
    let int = |k: &str| f.values.get(k).and_then(Value::as_i64);
    let rhel = kernel.and_then(KernelVersion::rhel_major);
    let crashkernel = match rhel {
        Some(6..=8) => "crashkernel=auto".to_string(),
        _ => "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M".to_string(),
    };
    let id = f.id.as_str();
    if f.status == Status::Unknown {
        return vec![Step::Manual(format!(
            "{id}: could not be decided ({}); {}",
            f.summary, f.remediation
        ))];
    }
    match id {
        "kdump-reserved" | "kdump-size" => {
            if f.values.get("kexec_support") == Some(&Value::Bool(false)) {
                return vec![Step::Manual(format!("{id}: {}", f.remediation))];
            }
            let mut s = vec![Step::CmdlineAdd(crashkernel)];
            if rhel.is_some_and(|r| r >= 9) {
                s.push(Step::Manual(format!(
                    "{id}: on RHEL 9 and later `kdumpctl reset-crashkernel --kernel=ALL` sets the same default"
                )));
            }
            s
        }
        "kdump-loaded" => {
            if f.values.get("kexec_support") == Some(&Value::Bool(false)) {
                return vec![Step::Manual(format!("{id}: {}", f.remediation))];
            }
            vec![
                Step::Command { text: "systemctl enable --now kdump".into(), after_reboot: true },
                Step::Command { text: "kdumpctl status    # must say \"Kdump is operational\"".into(), after_reboot: true },
            ]
        }
        "sysrq-keyboard" => {
            let n = int("kernel.sysrq").unwrap_or(0);
            let v = if n <= 0 { 1 } else { n | 8 };
            vec![Step::Sysctl("kernel.sysrq", v.to_string())]
        }
        "cmdline-quiet" => {
            let mut s = Vec::new();
            for flag in ["quiet", "rhgb"] {
                if f.values.get(flag) == Some(&Value::Bool(true)) {
                    s.push(Step::CmdlineRemove(flag));
                }
            }
            s
        }
        "log-buf-size" => {
            let need = f
                .values
                .get("sysrq_t_estimate")
                .and_then(Value::as_u64)
                .unwrap_or(1 << 20);
            let size = need.max(1 << 20).checked_next_power_of_two().unwrap_or(need);
            vec![Step::CmdlineAdd(format!(
                "log_buf_len={}",
                crate::kernel::size::human(size)
            ))]
        }
        "printk-time" => vec![
            Step::CmdlineAdd("printk.time=1".into()),
            Step::Command { text: "echo Y > /sys/module/printk/parameters/time".into(), after_reboot: false },
        ],
        "remote-console" => vec![
            Step::CmdlineAdd("console=tty0".into()),
            Step::CmdlineAdd("console=ttyS0,115200n8".into()),
            Step::Manual("remote-console: ttyS0 is the usual serial-over-LAN port; use the one your BMC redirects, or set up netconsole to a `watchdog udplogger` host instead (SYSLOGADDR= in /etc/sysconfig/netconsole, systemctl enable --now netconsole)".into()),
        ],
        "hung-task-timeout" => {
            let v = cfg.hung_task.failover_timeout_secs.min(120);
            vec![Step::Sysctl("kernel.hung_task_timeout_secs", v.to_string())]
        }
        "hung-task-warnings" => {
            let unlimited = kernel.is_none_or(|v| v.at_least(3, 17));
            vec![Step::Sysctl(
                "kernel.hung_task_warnings",
                if unlimited { "-1" } else { "1000000" }.into(),
            )]
        }
        "vfs-cache-pressure" | "dentry-overflow" => {
            let mut s = vec![Step::Sysctl("vm.vfs_cache_pressure", "100".into())];
            if id == "dentry-overflow" {
                s.push(Step::Command {
                    text: "sync; echo 2 > /proc/sys/vm/drop_caches    # drop unused dentries and inodes now".into(),
                    after_reboot: false,
                });
            }
            s
        }
        "uptime-208-days" => vec![Step::Command {
            text: "yum update kernel && reboot    # 2.6.32-358.23.2.el6 or later".into(),
            after_reboot: false,
        }],
        "tracefs" => match f.values.get("supported_fs").and_then(Value::as_str) {
            Some("tracefs") => vec![Step::Command {
                text: "mount -t tracefs nodev /sys/kernel/tracing".into(),
                after_reboot: false,
            }],
            Some(_) => vec![Step::Command {
                text: "mount -t debugfs nodev /sys/kernel/debug".into(),
                after_reboot: false,
            }],
            None => vec![Step::Manual(format!("tracefs: {}", f.remediation))],
        },
        "panic-settings" => {
            let mut s = Vec::new();
            let kdump = int("kexec_crash_loaded") == Some(1);
            if kdump
                && int("kernel.panic_on_oops") == Some(0)
            {
                s.push(Step::Sysctl("kernel.panic_on_oops", "1".into()));
            }
            if !kdump && int("kernel.panic") == Some(0) {
                s.push(Step::Sysctl("kernel.panic", "10".into()));
            }
            s
        }
        _ => vec![Step::Manual(format!("{id}: {}", f.remediation))],
    }
}

/// The whole plan for a report, as text.
pub fn render_plan(report: &Report, cfg: &CheckConfig) -> String {
    let kernel = report.kernel.as_deref().and_then(KernelVersion::parse);
    let mut sysctl: BTreeMap<&'static str, (String, Vec<String>)> = BTreeMap::new();
    let mut add: Vec<String> = Vec::new();
    let mut remove: Vec<&'static str> = Vec::new();
    let mut now: Vec<String> = Vec::new();
    let mut later: Vec<String> = Vec::new();
    let mut manual: Vec<String> = Vec::new();
    for f in &report.findings {
        for s in steps(f, kernel.as_ref(), cfg) {
            match s {
                Step::Sysctl(k, v) => {
                    let e = sysctl.entry(k).or_insert((v, Vec::new()));
                    e.1.push(f.id.clone());
                }
                Step::CmdlineAdd(a) if !add.contains(&a) => add.push(a),
                Step::CmdlineRemove(r) if !remove.contains(&r) => remove.push(r),
                Step::Command {
                    text,
                    after_reboot: false,
                } if !now.contains(&text) => now.push(text),
                Step::Command {
                    text,
                    after_reboot: true,
                } if !later.contains(&text) => later.push(text),
                Step::Manual(m) => manual.push(m),
                _ => {}
            }
        }
    }
    let mut out = String::new();
    let host = report.host.as_deref().unwrap_or("this host");
    let _ = writeln!(
        out,
        "# watchdog check --plan for {host}: the changes that would turn these findings OK."
    );
    let _ = writeln!(
        out,
        "# Nothing has been changed. Review every line, then apply."
    );
    if sysctl.is_empty()
        && add.is_empty()
        && remove.is_empty()
        && now.is_empty()
        && later.is_empty()
        && manual.is_empty()
    {
        let _ = writeln!(out, "\nNothing to change: every finding is OK.");
        return out;
    }
    if !sysctl.is_empty() {
        let _ = writeln!(out, "\n## 1. Kernel settings: write {SYSCTL_FILE}\n");
        let _ = writeln!(out, "cat > {SYSCTL_FILE} <<'EOF'");
        let _ = writeln!(out, "# Written from `watchdog check --plan`.");
        for (k, (v, ids)) in &sysctl {
            let _ = writeln!(out, "{k} = {v}    # {}", ids.join(", "));
        }
        let _ = writeln!(out, "EOF\nsysctl -p {SYSCTL_FILE}");
    }
    if !add.is_empty() || !remove.is_empty() {
        let _ = writeln!(
            out,
            "\n## 2. Kernel command line (takes effect at the next boot)\n"
        );
        let mut cmd = String::from("grubby --update-kernel=ALL");
        if !remove.is_empty() {
            let _ = write!(cmd, " --remove-args=\"{}\"", remove.join(" "));
        }
        if !add.is_empty() {
            let _ = write!(cmd, " --args=\"{}\"", add.join(" "));
        }
        let _ = writeln!(out, "{cmd}");
    }
    if !now.is_empty() {
        let _ = writeln!(out, "\n## 3. Now\n");
        for c in &now {
            let _ = writeln!(out, "{c}");
        }
    }
    if !later.is_empty() {
        let _ = writeln!(out, "\n## 4. After the reboot\n");
        for c in &later {
            let _ = writeln!(out, "{c}");
        }
    }
    if !manual.is_empty() {
        let _ = writeln!(out, "\n## 5. By hand\n");
        for m in &manual {
            let _ = writeln!(out, "- {m}");
        }
    }
    out
}
