//! The classifier on literal kernel text: one case per class, the panic
//! reasons as the kernel's panic() calls print them.

use super::*;

fn cause_of(text: &str) -> (Cause, String) {
    let p = parse_text("t", text);
    let f = Facts {
        incidents: &p.events,
        dump_reasons: &[],
        end: p.end,
        hard_lockup: p.hard_lockup.clone(),
        mce: p.mce.clone(),
        last_line: p.last_line.clone(),
        stamp: None,
        readable: true,
    };
    classify(&f)
}

#[test]
fn panic_reasons_map_to_classes() {
    for (line, cause) in [
        (
            "Kernel panic - not syncing: hung_task: blocked tasks",
            Cause::HungTaskPanic,
        ),
        (
            "Kernel panic - not syncing: softlockup: hung tasks",
            Cause::SoftLockupPanic,
        ),
        ("Kernel panic - not syncing: Hard LOCKUP", Cause::HardLockup),
        (
            "Kernel panic - not syncing: Out of memory and no killable processes...",
            Cause::OomPanic,
        ),
        (
            "Kernel panic - not syncing: System is deadlocked on memory",
            Cause::OomPanic,
        ),
        (
            "Kernel panic - not syncing: Fatal machine check",
            Cause::Mce,
        ),
        (
            "Kernel panic - not syncing: sysrq triggered crash",
            Cause::SysrqCrash,
        ),
        (
            "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
            Cause::Panic,
        ),
    ] {
        let (c, s) = cause_of(&format!("[  100.000001] {line}\n"));
        assert_eq!(c, cause, "{line}");
        assert_eq!(s, line);
    }
}

#[test]
fn an_oops_that_became_a_panic_is_an_oops() {
    let text = "\
[ 8131.000100] BUG: unable to handle kernel NULL pointer dereference at 0000000000000008
[ 8131.000200] IP: [<ffffffff8123abcd>] ext4_foo+0x1d/0x50 [ext4]
[ 8131.000300] Oops: 0000 [#1] SMP
[ 8131.000800] Kernel panic - not syncing: Fatal exception
";
    let (c, s) = cause_of(text);
    assert_eq!(c, Cause::Oops);
    assert!(
        s.starts_with("BUG: unable to handle kernel NULL pointer dereference"),
        "{s}"
    );
    assert!(
        s.ends_with("(Kernel panic - not syncing: Fatal exception)"),
        "{s}"
    );
}

#[test]
fn an_old_kernels_sysrq_crash_oopses_first() {
    // 2.6.32-4.x: sysrq_handle_crash writes through NULL.
    let text = "\
[  500.100000] SysRq : Trigger a crash
[  500.100100] BUG: unable to handle kernel NULL pointer dereference at (null)
[  500.100200] Oops: 0002 [#1] SMP
[  500.100900] Kernel panic - not syncing: Fatal exception
";
    assert_eq!(cause_of(text).0, Cause::SysrqCrash);
}

#[test]
fn ends_without_a_panic() {
    // kernel/watchdog_perf.c (hardlockup_panic=0): the system limped on.
    let (c, s) = cause_of("[ 55.000001] NMI watchdog: Watchdog detected hard LOCKUP on cpu 3\n");
    assert_eq!(
        (c, s.as_str()),
        (
            Cause::HardLockup,
            "NMI watchdog: Watchdog detected hard LOCKUP on cpu 3"
        )
    );
    let (c, _) = cause_of("[ 55.000001] mce: [Hardware Error]: CPU 2: Machine Check Exception: 5 Bank 4: b200000000070f0f\n");
    assert_eq!(c, Cause::Mce);
    let (c, _) = cause_of("[ 55.0] EXT4-fs (sda1): mounted\n[ 99.0] reboot: Restarting system\n");
    assert_eq!(c, Cause::Reboot);
    let (c, _) = cause_of("[ 99.0] reboot: Power down\n");
    assert_eq!(c, Cause::CleanShutdown);
    // A marker followed by more messages is not the end.
    let (c, s) = cause_of("[ 9.0] reboot: Restarting system\n[ 10.0] e1000: eth0 NIC Link is Up\n");
    assert_eq!(c, Cause::NoEvidence);
    assert!(
        s.contains("e1000: eth0 NIC Link is Up") && s.contains("BMC"),
        "{s}"
    );
}

#[test]
fn a_pstore_dump_made_at_restart_means_reboot() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir_all(root.join("sys/fs/pstore")).unwrap();
    std::fs::write(
        root.join("sys/fs/pstore/dmesg-ramoops-0"),
        "Restart#1 Part1\n<6>[   88.000001] systemd-shutdown[1]: Rebooting.\n",
    )
    .unwrap();
    let r = analyze(&Host::new(root), &Options::default());
    assert_eq!(r.cause, Cause::Reboot, "{r:?}");
    assert_eq!(r.exit_code(), 0);
    assert_eq!(
        r.evidence_files,
        [root.join("sys/fs/pstore/dmesg-ramoops-0")]
    );
    // Since 5.8 one reason for all three; the last line tells which.
    let dump = root.join("sys/fs/pstore/dmesg-ramoops-0");
    std::fs::write(
        &dump,
        "Shutdown#1 Part1\n<0>[   10.619678] reboot: Restarting system\n",
    )
    .unwrap();
    assert_eq!(
        analyze(&Host::new(root), &Options::default()).cause,
        Cause::Reboot
    );
    std::fs::write(&dump, "Shutdown#1 Part1\n<0>[   10.6] reboot: Power down\n").unwrap();
    let r = analyze(&Host::new(root), &Options::default());
    assert_eq!(r.cause, Cause::CleanShutdown);
}

#[test]
fn marked_json_keeps_the_event_and_adds_the_boot() {
    let r = Report {
        cause: Cause::Panic,
        summary: "x".into(),
        boot_id: Some("b1".into()),
        last_kernel_time: None,
        sources: vec!["a".into(), "b".into()],
        evidence_files: Vec::new(),
        captured: Vec::new(),
        incidents: Vec::new(),
        notes: Vec::new(),
        readable: true,
    };
    assert_eq!(
        r.mark(r#"{"kind":"panic"}"#),
        r#"{"kind":"panic","previous_boot":true,"boot_id":"b1"}"#
    );
    let ev = r.event(None).to_json();
    assert!(ev.contains(r#""cause":"panic","summary":"x","boot_id":"b1","last_kernel_time":null,"sources":"a, b""#), "{ev}");
}
