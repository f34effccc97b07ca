//! Helpers for the unit tests of several modules.

use std::path::{Path, PathBuf};

/// A tmpfs of `size`, unmounted on drop; `None` when mounting is not
/// allowed (not root). A small one is a disk that fills up on demand.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let d = tempfile::tempdir().ok()?;
        let m = d.path().join("m");
        std::fs::create_dir(&m).ok()?;
        nix::mount::mount(
            Some("tmpfs"),
            &m,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .ok()?;
        Some(Tmpfs { path: m, _dir: d })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount(&self.path);
    }
}

/// Every file under `dir`, at any depth (directories are entered, not
/// listed).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
