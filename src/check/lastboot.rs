//! Will the next unexpected reboot leave an answer behind? A persistent
//! pstore backend (the kernel's last words across a reset) and a kernel
//! log that outlives the boot (what `watchdog last-boot` reads).

use serde_json::Value;

use super::{Ctx, Finding, Problem, ProblemKind, Status};
use crate::host::paths;
use crate::lastboot::journal;

/// `sys/module/pstore/parameters/backend`: the registered backend's name
/// (`ramoops`, `efi_pstore`, `erst`, ...), `(null)` or empty when none
/// (the file exists since Linux 3.x once pstore is built in).
fn backend(ctx: &Ctx) -> Option<String> {
    let b = ctx.host.read_value(paths::PSTORE_BACKEND).ok()?;
    (!b.is_empty() && b != "(null)").then_some(b)
}

pub fn pstore(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    let fs = ctx
        .host
        .read(paths::FILESYSTEMS)?
        .lines()
        .any(|l| l.split_whitespace().last() == Some("pstore"));
    let efi = ctx.host.is_dir(paths::EFI_FIRMWARE);
    let erst = ctx.host.exists(paths::ACPI_ERST);
    let backend = backend(ctx);
    f.value("pstore_fs", fs);
    f.value("backend", backend.clone().map_or(Value::Null, Value::from));
    f.value("efi", efi);
    f.value("acpi_erst", erst);
    if let Some(b) = backend {
        f.ok(format!(
            "pstore backend {b} is registered: a panic's last kernel messages survive the reset (/sys/fs/pstore)"
        ));
        return Ok(());
    }
    if !fs {
        f.set(
            Status::Warning,
            "The kernel has no pstore: a panic without kdump leaves nothing behind",
            "Boot a kernel built with CONFIG_PSTORE (RHEL and Debian kernels are), or rely on kdump and a remote console.",
        );
        return Ok(());
    }
    let how = if efi {
        "This host boots by UEFI: load the EFI backend (`modprobe efi_pstore`; on RHEL 8/9 it is built in unless `efi_pstore.pstore_disable=1` is on the command line) — each record is a small EFI variable, so keep `printk.always_kmsg_dump` off."
    } else if erst {
        "The firmware has an ACPI ERST table: make sure `erst_disable` is not on the kernel command line and the erst driver is built (CONFIG_ACPI_APEI)."
    } else {
        "Reserve memory that survives a warm reset and give it to ramoops: add `memmap=1M!0x7ff00000` (an address at the top of RAM, see /proc/iomem) and `ramoops.mem_address=0x7ff00000 ramoops.mem_size=0x100000 ramoops.console_size=0x40000` to the kernel command line (or load the ramoops module with those parameters)."
    };
    f.set(
        Status::Warning,
        "No persistent pstore backend (ramoops, efi, erst) is registered: a panic without kdump leaves no record for `watchdog last-boot`",
        how,
    );
    Ok(())
}

pub fn persistent_journal(ctx: &Ctx, f: &mut Finding) -> Result<(), Problem> {
    // A tree without /var/log (a fixture of /proc and /sys, a bare image)
    // says nothing about where its logs go.
    if !ctx.host.is_dir(paths::VAR_LOG) {
        return Err(Problem::new(
            ProblemKind::Missing,
            format!(
                "{}: no such directory: cannot tell where this host keeps its logs",
                ctx.host.path(paths::VAR_LOG).display()
            ),
        ));
    }
    let dir = ctx.host.is_dir(paths::JOURNAL_DIR);
    let persistent = journal::is_persistent(ctx.host);
    let syslog = journal::SYSLOG_FILES
        .iter()
        .find(|p| ctx.host.exists(p))
        .map(|p| format!("/{p}"));
    f.value("journal_dir", dir);
    f.value("journal_persistent", persistent);
    f.value(
        "syslog_file",
        syslog.clone().map_or(Value::Null, Value::from),
    );
    match (persistent, syslog) {
        (true, _) => f.ok("The journal is persistent (/var/log/journal): the previous boot's kernel messages can be read after a reboot"),
        (false, Some(s)) => f.ok(format!(
            "The journal is volatile, but {s} keeps kernel messages across reboots"
        )),
        (false, None) => f.set(
            Status::Warning,
            "The journal is volatile and no syslog file keeps kernel messages: what happened before a reboot is lost with it",
            "Make the journal persistent: `mkdir -p /var/log/journal && systemd-tmpfiles --create --prefix /var/log/journal && systemctl restart systemd-journald` (or Storage=persistent in /etc/systemd/journald.conf); or install rsyslog.",
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckConfig;
    use crate::host::Host;

    fn run(
        files: &[(&str, &str)],
        check: fn(&Ctx, &mut Finding) -> Result<(), Problem>,
    ) -> Finding {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let host = Host::new(d.path());
        let cfg = CheckConfig::default();
        let ctx = Ctx::new(&host, &cfg);
        let mut f = Finding::new("x");
        check(&ctx, &mut f).unwrap();
        f
    }

    #[test]
    fn pstore_backends() {
        let fs = ("proc/filesystems", "nodev\tsysfs\nnodev\tpstore\n");
        let f = run(
            &[fs, ("sys/module/pstore/parameters/backend", "ramoops\n")],
            pstore,
        );
        assert_eq!(f.status, Status::Ok);
        assert!(f.summary.contains("ramoops"));
        let f = run(
            &[
                fs,
                ("sys/module/pstore/parameters/backend", "(null)\n"),
                ("sys/firmware/efi/fw_platform_size", "64\n"),
            ],
            pstore,
        );
        assert_eq!(f.status, Status::Warning);
        assert!(f.remediation.contains("efi_pstore"), "{}", f.remediation);
        let f = run(&[fs], pstore);
        assert!(
            f.remediation.contains("ramoops.mem_address"),
            "{}",
            f.remediation
        );
        let f = run(&[("proc/filesystems", "nodev\tsysfs\n")], pstore);
        assert!(f.summary.contains("no pstore"));
        let d = tempfile::tempdir().unwrap();
        let host = Host::new(d.path());
        let cfg = CheckConfig::default();
        assert!(pstore(&Ctx::new(&host, &cfg), &mut Finding::new("x")).is_err());
    }

    #[test]
    fn journal_persistence() {
        let f = run(&[("var/log/journal/x", "")], persistent_journal);
        assert_eq!(f.status, Status::Ok);
        let f = run(
            &[
                ("var/log/journal/x", ""),
                ("etc/systemd/journald.conf", "[Journal]\nStorage=volatile\n"),
            ],
            persistent_journal,
        );
        assert_eq!(f.status, Status::Warning);
        let f = run(&[("var/log/messages", "")], persistent_journal);
        assert_eq!(f.status, Status::Ok);
        assert!(f.summary.contains("/var/log/messages"));
        let f = run(&[("var/log/btmp", "")], persistent_journal);
        assert_eq!(f.status, Status::Warning);
    }
}
