//! The unit files in systemd/ pass `systemd-analyze verify` (with
//! ExecStart pointed at the binary under test).

use crate::util::{bin, repo, Dir};

#[test]
fn units_verify() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let d = Dir::new();
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("service") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ExecStart=/usr/bin/watchdog "),
            "{}",
            path.display()
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        let local = d.write(name, text.replace("/usr/bin/watchdog", bin()));
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&local)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    assert!(n >= 1, "no unit files found");
}

fn have_systemd_analyze() -> bool {
    std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
}

/// The overall exposure `systemd-analyze security --offline=true` gives the
/// unit `name` (copied into `d` with ExecStart pointed at the binary under
/// test), with the drop-ins found under `d/NAME.d/`.
fn exposure(d: &Dir, name: &str) -> f64 {
    let text = std::fs::read_to_string(repo().join("systemd").join(name)).unwrap();
    let local = d.write(name, text.replace("/usr/bin/watchdog", bin()));
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&local)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", d.path().display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{name}: no exposure level in {stdout}"));
    let value = line.split(": ").nth(1).unwrap().split(' ').next().unwrap();
    value.parse().unwrap()
}

/// The shipped units stay at or below the exposure the docs state
/// (docs/run.md: 2.4, docs/udplogger.md: 1.1); the VM suite's systemd boot
/// checks the same under a running systemd.
#[test]
fn units_exposure_stays_at_documented_level() {
    if !have_systemd_analyze() {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let d = Dir::new();
    assert!(exposure(&d, "watchdog.service") <= 2.4);
    assert!(exposure(&d, "udplogger.service") <= 1.1);
}

/// The opt-in drop-in for exec actions and metrics
/// (systemd/exec-and-metrics.conf) loads without a complaint next to the
/// unit, and opens only what it says: the network, and node_exporter's
/// textfile directories.
#[test]
fn exec_and_metrics_dropin_verifies() {
    if !have_systemd_analyze() {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let d = Dir::new();
    let strict = exposure(&d, "watchdog.service");
    let dropin = std::fs::read_to_string(repo().join("systemd/exec-and-metrics.conf")).unwrap();
    for want in [
        "PrivateNetwork=no",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "ReadWritePaths=-/var/lib/node_exporter/textfile_collector",
    ] {
        assert!(dropin.lines().any(|l| l == want), "drop-in lacks {want}");
    }
    d.write("watchdog.service.d/exec-and-metrics.conf", &dropin);
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(d.join("watchdog.service"))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", d.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Opening the network costs exposure, and the drop-in must be read.
    let with = exposure(&d, "watchdog.service");
    assert!(
        with > strict,
        "exposure {with} with the drop-in, {strict} without"
    );
}
