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
