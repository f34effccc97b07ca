//! The real-kernel suite (tests/vm/, docs/vm-tests.md): boots Debian's
//! kernels under QEMU and asserts on what `watchdog` says there (and, in
//! one boot, the Debian package under Debian's own systemd). It takes
//! several minutes and needs QEMU, ~180 MB of kernel packages and a Debian
//! root file system it builds once, so it runs only when asked:
//! `WATCHDOG_VM=1 cargo test vm`.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::util::repo;

/// Says one line on the real stderr: libtest captures `eprintln!` of
/// passing tests, and a silent skip would look like a pass.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

fn cached_kernels(vm: &Path) -> usize {
    std::fs::read_dir(vm.join("cache/kernels"))
        .map(|dirs| {
            dirs.filter_map(Result::ok)
                .filter(|d| d.path().join(".extracted").exists())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn real_kernels() {
    let vm = repo().join("tests/vm");
    if std::env::var_os("WATCHDOG_VM").is_none_or(|v| v != "1") {
        say("vm: real-kernel suite skipped; run it with `WATCHDOG_VM=1 cargo test vm` (after tests/vm/fetch.sh) or tests/vm/run.sh");
        return;
    }
    // Asked for explicitly: a missing prerequisite is a failure, not a skip.
    assert!(
        on_path("qemu-system-x86_64"),
        "WATCHDOG_VM=1 but qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 busybox-static cpio kmod)"
    );
    assert!(
        cached_kernels(&vm) > 0,
        "WATCHDOG_VM=1 but no kernels in tests/vm/cache: run tests/vm/fetch.sh"
    );
    let extra = std::env::var("WATCHDOG_VM_ARGS").unwrap_or_default();
    let status = Command::new("python3")
        .arg(vm.join("vm.py"))
        .arg("run")
        .args(extra.split_whitespace())
        .current_dir(repo())
        .status()
        .expect("run python3 tests/vm/vm.py");
    assert!(
        status.success(),
        "the real-kernel suite failed ({status}); outputs are in tests/vm/cache/results"
    );
}
