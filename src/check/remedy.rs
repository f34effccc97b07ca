//! The commands a remediation tells people to run, in one place so every
//! finding and `--plan` say the same thing: sysctl keys go into one file,
//! [`SYSCTL_FILE`], each key added or replaced on its own (other keys of
//! the file are kept), comments on lines of their own (sysctl.d(5) has no
//! trailing comments: `key = 1  # why` would set the value "1  # why");
//! kernel command-line changes go through the distribution's own tool.

use std::collections::BTreeMap;

use crate::host::Host;
use crate::kernel::KernelVersion;

/// The one sysctl.d file every fix and the plan write.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-watchdog.conf";

/// Where a Debian-family command-line change goes: a drop-in that
/// grub-mkconfig sources after /etc/default/grub.
pub const GRUB_DROPIN: &str = "/etc/default/grub.d/90-watchdog.cfg";

/// A sed address matching `key`'s lines (`a.b` or `a/b`, an optional
/// leading `-`), and the comment line this tool writes above it.
pub(super) fn sed_deletes(key: &str) -> String {
    let k = key.replace('.', "[./]");
    format!("-e '/^[[:space:]]*-\\{{0,1\\}}{k}[[:space:]]*=/d' -e '/^# {k}: /d'")
}

/// The comment written on its own line above a key.
pub fn sysctl_comment(key: &str, checks: &[String]) -> String {
    format!("# {key}: set by watchdog check ({})", checks.join(", "))
}

/// One shell command that sets `keys` in [`SYSCTL_FILE`] (replacing
/// earlier lines of the same keys, keeping all others) and loads the file.
pub fn sysctl_command(keys: &[(&str, String)], check: &str) -> String {
    let deletes: Vec<String> = keys.iter().map(|(k, _)| sed_deletes(k)).collect();
    let mut lines = Vec::new();
    for (k, v) in keys {
        lines.push(format!("'{}'", sysctl_comment(k, &[check.to_string()])));
        lines.push(format!("'{k} = {v}'"));
    }
    format!(
        "f={SYSCTL_FILE}; touch \"$f\" && sed -i {} \"$f\" && printf '%s\\n' {} >> \"$f\" && sysctl -p \"$f\"",
        deletes.join(" "),
        lines.join(" ")
    )
}

/// How kernel command-line changes are made on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootloader {
    /// RHEL, CentOS, Fedora, Rocky, Alma, Oracle Linux: `grubby`.
    Grubby,
    /// Debian and Ubuntu: a /etc/default/grub.d drop-in and `update-grub`.
    UpdateGrub,
    /// SUSE: /etc/default/grub and `grub2-mkconfig`.
    Grub2Mkconfig,
    /// Not known: the change is described, not scripted.
    Unknown,
}

impl Bootloader {
    /// From os-release(5) `ID`/`ID_LIKE`, else from an `elN` kernel release.
    pub fn detect(os: &BTreeMap<String, String>, kernel: Option<&KernelVersion>) -> Bootloader {
        let mut ids: Vec<&str> = Vec::new();
        if let Some(id) = os.get("ID") {
            ids.push(id);
        }
        if let Some(like) = os.get("ID_LIKE") {
            ids.extend(like.split_whitespace());
        }
        for id in ids {
            match id {
                "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" => {
                    return Bootloader::Grubby
                }
                "debian" | "ubuntu" => return Bootloader::UpdateGrub,
                "suse" | "sles" | "opensuse" | "opensuse-leap" => return Bootloader::Grub2Mkconfig,
                _ => {}
            }
        }
        if kernel.and_then(KernelVersion::rhel_major).is_some() {
            Bootloader::Grubby
        } else {
            Bootloader::Unknown
        }
    }

    pub fn for_host(host: &Host) -> Bootloader {
        let kernel = host.kernel_release().and_then(|r| KernelVersion::parse(&r));
        Bootloader::detect(&host.os_release(), kernel.as_ref())
    }

    pub fn name(self) -> &'static str {
        match self {
            Bootloader::Grubby => "grubby",
            Bootloader::UpdateGrub => "update-grub",
            Bootloader::Grub2Mkconfig => "grub2-mkconfig",
            Bootloader::Unknown => "manual",
        }
    }

    /// The commands that add `add` and remove `remove` from the kernel
    /// command line of every installed kernel (effective at the next boot).
    pub fn commands(self, add: &[String], remove: &[String]) -> Vec<String> {
        match self {
            Bootloader::Grubby => {
                let mut cmd = String::from("grubby --update-kernel=ALL");
                if !remove.is_empty() {
                    cmd.push_str(&format!(" --remove-args=\"{}\"", remove.join(" ")));
                }
                if !add.is_empty() {
                    cmd.push_str(&format!(" --args=\"{}\"", add.join(" ")));
                }
                vec![cmd]
            }
            Bootloader::UpdateGrub => {
                // grub-mkconfig sources the drop-in after /etc/default/grub,
                // so it edits the variables without touching that file.
                let mut lines = vec![format!(
                    "mkdir -p /etc/default/grub.d && cat >> {GRUB_DROPIN} <<'EOF'"
                )];
                for r in remove {
                    for var in ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"] {
                        lines.push(format!(
                            "{var}=\"$(echo \" ${var} \" | sed 's/ {r} / /g')\""
                        ));
                    }
                }
                if !add.is_empty() {
                    lines.push(format!(
                        "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX {}\"",
                        add.join(" ")
                    ));
                }
                lines.push("EOF".into());
                lines.push("update-grub".into());
                vec![lines.join("\n")]
            }
            Bootloader::Grub2Mkconfig => {
                let mut cmds = Vec::new();
                for r in remove {
                    cmds.push(format!(
                        "sed -i -E '/^GRUB_CMDLINE_LINUX(_DEFAULT)?=/s/([\" ]){r}([\" ])/\\1\\2/g' /etc/default/grub"
                    ));
                }
                if !add.is_empty() {
                    cmds.push(format!(
                        "sed -i -E 's/^(GRUB_CMDLINE_LINUX=\"[^\"]*)\"/\\1 {}\"/' /etc/default/grub",
                        add.join(" ")
                    ));
                }
                cmds.push("grub2-mkconfig -o /boot/grub2/grub.cfg".into());
                cmds
            }
            Bootloader::Unknown => {
                let mut what = Vec::new();
                if !add.is_empty() {
                    what.push(format!("add {}", add.join(" ")));
                }
                if !remove.is_empty() {
                    what.push(format!("remove {}", remove.join(" ")));
                }
                vec![format!(
                    "# With your boot loader's tool: {} on the kernel command line",
                    what.join(", ")
                )]
            }
        }
    }

    /// The same as one line for a finding's remediation.
    pub fn one_line(self, add: &[String], remove: &[String]) -> String {
        let cmds = self.commands(add, remove);
        match self {
            Bootloader::UpdateGrub => {
                let mut what = Vec::new();
                if !add.is_empty() {
                    what.push(format!("append {} to GRUB_CMDLINE_LINUX", add.join(" ")));
                }
                if !remove.is_empty() {
                    what.push(format!(
                        "remove {} from GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT",
                        remove.join(" ")
                    ));
                }
                format!(
                    "{} (in /etc/default/grub or a drop-in {GRUB_DROPIN}), then update-grub and reboot",
                    what.join(" and ")
                )
            }
            Bootloader::Unknown => {
                format!("{} and reboot", cmds.join("; ").trim_start_matches("# "))
            }
            _ => format!("{} and reboot", cmds.join(" && ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_family() {
        let os = |id: &str, like: &str| {
            let mut m = BTreeMap::new();
            m.insert("ID".to_string(), id.to_string());
            if !like.is_empty() {
                m.insert("ID_LIKE".to_string(), like.to_string());
            }
            m
        };
        assert_eq!(
            Bootloader::detect(&os("rocky", "rhel centos fedora"), None),
            Bootloader::Grubby
        );
        assert_eq!(
            Bootloader::detect(&os("debian", ""), None),
            Bootloader::UpdateGrub
        );
        assert_eq!(
            Bootloader::detect(&os("linuxmint", "ubuntu debian"), None),
            Bootloader::UpdateGrub
        );
        assert_eq!(
            Bootloader::detect(&os("sles", "suse"), None),
            Bootloader::Grub2Mkconfig
        );
        assert_eq!(
            Bootloader::detect(&os("arch", ""), None),
            Bootloader::Unknown
        );
        let el7 = KernelVersion::parse("3.10.0-1160.el7.x86_64");
        assert_eq!(
            Bootloader::detect(&BTreeMap::new(), el7.as_ref()),
            Bootloader::Grubby
        );
    }

    #[test]
    fn sysctl_command_keeps_other_keys_and_comments_on_own_lines() {
        let c = sysctl_command(&[("kernel.sysrq", "1".into())], "sysrq-keyboard");
        assert!(c.contains(SYSCTL_FILE), "{c}");
        assert!(!c.contains(" > "), "never truncates: {c}");
        assert!(
            c.contains(
                "'# kernel.sysrq: set by watchdog check (sysrq-keyboard)' 'kernel.sysrq = 1'"
            ),
            "{c}"
        );
        assert!(c.contains("kernel[./]sysrq[[:space:]]*=/d"), "{c}");
    }
}
