//! `watchdog check --plan`: every finding that is not OK turned into the
//! concrete change — keys of one sysctl.d file, the distribution's
//! command-line tool, the service steps — printed (text, or JSON machine
//! steps), never applied.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use serde_json::{json, Value};

use super::remedy::{sed_deletes, sysctl_comment, Bootloader, SYSCTL_FILE};
use super::{Finding, Report, Status};
use crate::check::CheckConfig;
use crate::kernel::KernelVersion;

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
pub fn steps(
    f: &Finding,
    kernel: Option<&KernelVersion>,
    cfg: &CheckConfig,
    boot: Bootloader,
) -> Vec<Step> {
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
            if boot == Bootloader::UpdateGrub {
                // Debian and Ubuntu: kdump-tools.
                return vec![
                    Step::Command { text: "systemctl enable --now kdump-tools".into(), after_reboot: true },
                    Step::Command { text: "kdump-config status    # must say \"ready to kdump\"".into(), after_reboot: true },
                ];
            }
            vec![
                Step::Command { text: "systemctl enable --now kdump".into(), after_reboot: true },
                Step::Command { text: "kdumpctl status    # must say \"Kdump is operational\"".into(), after_reboot: true },
            ]
        }
        "sysrq-keyboard" if f.values.get("sysrq_always_enabled") == Some(&Value::Bool(true)) => Vec::new(),
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
        // Too many threads for khungtaskd's per-pass count (the only
        // reason this finding warns when the timing fits).
        "hung-task-timeout"
            if int("kernel.hung_task_check_count")
                .zip(int("threads"))
                .is_some_and(|(c, t)| t > c) =>
        {
            vec![Step::Sysctl("kernel.hung_task_check_count", "4194304".into())]
        }
        "hung-task-timeout" => {
            let (t, i) = super::hung_task::suggested(cfg, int("kernel.hung_task_check_interval_secs"));
            let mut s = vec![Step::Sysctl("kernel.hung_task_timeout_secs", t.to_string())];
            if let Some(i) = i {
                s.push(Step::Sysctl("kernel.hung_task_check_interval_secs", i.to_string()));
            }
            s
        }
        "console-loglevel" => {
            let rest = f
                .values
                .get("kernel.printk")
                .and_then(Value::as_str)
                .map(|p| p.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "4 1 7".into());
            vec![Step::Sysctl("kernel.printk", format!("8 {rest}"))]
        }
        "nmi-panic" => {
            let mut s = Vec::new();
            if int("kernel.unknown_nmi_panic") == Some(0) {
                s.push(Step::Sysctl("kernel.unknown_nmi_panic", "1".into()));
            }
            if int("kernel.panic_on_io_nmi") == Some(0) {
                s.push(Step::Sysctl("kernel.panic_on_io_nmi", "1".into()));
            }
            s
        }
        "kdump-initramfs" if f.values.get("kdump_tool").and_then(Value::as_str) == Some("kdumpctl") => {
            vec![Step::Command { text: "kdumpctl rebuild && kdumpctl restart".into(), after_reboot: false }]
        }
        "kdump-initramfs" if f.values.get("kdump_tool").and_then(Value::as_str) == Some("kdump-config") => {
            vec![Step::Command { text: "kdump-config unload && kdump-config load".into(), after_reboot: false }]
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

/// Every step of a report's findings, merged: one value per sysctl key
/// (with the checks that want it), command-line words once each.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub host: Option<String>,
    /// How command-line changes are made here (`grubby`, `update-grub`,
    /// `grub2-mkconfig`, `manual`).
    pub bootloader: &'static str,
    pub sysctl_file: &'static str,
    /// key -> (value, checks)
    #[serde(skip)]
    sysctl: BTreeMap<&'static str, (String, Vec<String>)>,
    #[serde(skip)]
    add: Vec<String>,
    #[serde(skip)]
    remove: Vec<String>,
    #[serde(skip)]
    now: Vec<String>,
    #[serde(skip)]
    later: Vec<String>,
    #[serde(skip)]
    manual: Vec<String>,
    /// A kernel command-line change only takes effect at the next boot.
    pub reboot_needed: bool,
    /// The machine steps, in the order to apply them.
    pub steps: Vec<Value>,
}

impl Plan {
    pub fn new(report: &Report, cfg: &CheckConfig, bootloader: Bootloader) -> Plan {
        let kernel = report.kernel.as_deref().and_then(KernelVersion::parse);
        let mut p = Plan {
            host: report.host.clone(),
            bootloader: bootloader.name(),
            sysctl_file: SYSCTL_FILE,
            ..Plan::default()
        };
        for f in &report.findings {
            for s in steps(f, kernel.as_ref(), cfg, bootloader) {
                match s {
                    Step::Sysctl(k, v) => {
                        let e = p.sysctl.entry(k).or_insert((v, Vec::new()));
                        e.1.push(f.id.clone());
                    }
                    Step::CmdlineAdd(a) if !p.add.contains(&a) => p.add.push(a),
                    Step::CmdlineRemove(r) if !p.remove.iter().any(|x| x == r) => {
                        p.remove.push(r.to_string())
                    }
                    Step::Command {
                        text,
                        after_reboot: false,
                    } if !p.now.contains(&text) => p.now.push(text),
                    Step::Command {
                        text,
                        after_reboot: true,
                    } if !p.later.contains(&text) => p.later.push(text),
                    Step::Manual(m) => p.manual.push(m),
                    _ => {}
                }
            }
        }
        p.reboot_needed = !p.add.is_empty() || !p.remove.is_empty();
        p.steps = p.machine_steps(bootloader);
        p
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn machine_steps(&self, bootloader: Bootloader) -> Vec<Value> {
        let mut out = Vec::new();
        for (k, (v, ids)) in &self.sysctl {
            out.push(json!({
                "kind": "sysctl", "file": SYSCTL_FILE, "key": k, "value": v,
                "comment": sysctl_comment(k, ids), "checks": ids,
            }));
        }
        if !self.sysctl.is_empty() {
            out.push(json!({"kind": "command", "when": "now",
                            "command": format!("sysctl -p {SYSCTL_FILE}")}));
        }
        if self.reboot_needed {
            out.push(json!({
                "kind": "cmdline", "tool": bootloader.name(), "add": self.add,
                "remove": self.remove, "commands": bootloader.commands(&self.add, &self.remove),
                "reboot_needed": true,
            }));
        }
        for c in &self.now {
            out.push(json!({"kind": "command", "when": "now", "command": c}));
        }
        for c in &self.later {
            out.push(json!({"kind": "command", "when": "after_reboot", "command": c}));
        }
        for m in &self.manual {
            out.push(json!({"kind": "manual", "text": m}));
        }
        out
    }

    /// The plan as a shell-readable text for people.
    pub fn text(&self, bootloader: Bootloader) -> String {
        let mut out = String::new();
        let host = self.host.as_deref().unwrap_or("this host");
        let _ = writeln!(
            out,
            "# watchdog check --plan for {host}: the changes that would turn these findings OK."
        );
        let _ = writeln!(
            out,
            "# Nothing has been changed. Review every line, then apply."
        );
        if self.is_empty() {
            let _ = writeln!(out, "\nNothing to change: every finding is OK.");
            return out;
        }
        let mut n = 0;
        let mut section = |out: &mut String, title: &str| {
            n += 1;
            let _ = writeln!(out, "\n## {n}. {title}\n");
        };
        if !self.sysctl.is_empty() {
            section(
                &mut out,
                &format!("Kernel settings in {SYSCTL_FILE} (only these keys are added or replaced; the file's other lines are kept)"),
            );
            let _ = writeln!(out, "f={SYSCTL_FILE}");
            let _ = writeln!(out, "touch \"$f\"");
            let deletes: Vec<String> = self.sysctl.keys().map(|k| sed_deletes(k)).collect();
            let _ = writeln!(out, "sed -i {} \"$f\"", deletes.join(" "));
            let _ = writeln!(out, "cat >> \"$f\" <<'EOF'");
            for (k, (v, ids)) in &self.sysctl {
                let _ = writeln!(out, "{}", sysctl_comment(k, ids));
                let _ = writeln!(out, "{k} = {v}");
            }
            let _ = writeln!(out, "EOF\nsysctl -p \"$f\"");
        }
        if self.reboot_needed {
            section(
                &mut out,
                "Kernel command line (takes effect at the next boot)",
            );
            for c in bootloader.commands(&self.add, &self.remove) {
                let _ = writeln!(out, "{c}");
            }
        }
        if !self.now.is_empty() {
            section(&mut out, "Now");
            for c in &self.now {
                let _ = writeln!(out, "{c}");
            }
        }
        if !self.later.is_empty() {
            section(&mut out, "After the reboot");
            for c in &self.later {
                let _ = writeln!(out, "{c}");
            }
        }
        if !self.manual.is_empty() {
            section(&mut out, "By hand");
            for m in &self.manual {
                let _ = writeln!(out, "- {m}");
            }
        }
        out
    }
}

/// The whole plan for a report, as text.
pub fn render_plan(report: &Report, cfg: &CheckConfig, bootloader: Bootloader) -> String {
    Plan::new(report, cfg, bootloader).text(bootloader)
}

/// The plan as one JSON document: machine steps for Ansible and the like.
pub fn render_plan_json(report: &Report, cfg: &CheckConfig, bootloader: Bootloader) -> String {
    let plan = Plan::new(report, cfg, bootloader);
    let mut s =
        serde_json::to_string_pretty(&plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
