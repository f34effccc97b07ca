//! Records the git commit for `watchdog --version`. Builds from a source
//! tarball (an RPM build) take it from $WATCHDOG_GIT_COMMIT or say
//! "unknown".

use std::process::Command;

fn main() {
    let commit = std::env::var("WATCHDOG_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=WATCHDOG_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=WATCHDOG_GIT_COMMIT");
    // HEAD moves on commit and checkout; in a worktree .git is a file.
    for p in [".git/HEAD", ".git/refs/heads", ".git"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
