//! Helpers for the unit tests of several modules.

use std::path::PathBuf;

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
