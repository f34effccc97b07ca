//! SysRq through /proc/sysrq-trigger (works for root whatever kernel.sysrq
//! says: that bitmask only gates the keyboard).

use std::io::Write;

use super::Outcome;
use crate::engine::SAFE_SYSRQ;
use crate::host::{paths, Host};

/// Writes each letter in turn. Letters that are not read-only dumps are
/// refused unless `allow_destructive` (the config compiler already refuses
/// them; this is the second lock on the door).
pub fn fire(host: &Host, letters: &str, allow_destructive: bool) -> Outcome {
    if let Some(bad) = letters.chars().find(|c| !SAFE_SYSRQ.contains(*c)) {
        if !allow_destructive {
            return Outcome::failed(format!(
                "refused SysRq {bad:?}: not a read-only dump and allow_destructive is false"
            ));
        }
    }
    let path = host.path(paths::SYSRQ_TRIGGER);
    let mut f = match std::fs::OpenOptions::new().append(true).open(&path) {
        Ok(f) => f,
        Err(e) => return Outcome::failed(format!("cannot open {}: {e}", path.display())),
    };
    for c in letters.chars() {
        // One write per letter: the kernel acts on the first byte of each.
        if let Err(e) = f.write_all(&[c as u8]) {
            return Outcome::failed(format!("write {c:?} to {}: {e}", path.display()));
        }
    }
    Outcome::ok(format!("wrote {letters:?} to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_letters_and_refuses_destructive_ones() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("proc")).unwrap();
        std::fs::write(d.path().join(paths::SYSRQ_TRIGGER), "").unwrap();
        let h = Host::new(d.path());
        assert!(fire(&h, "tw", false).ok);
        assert!(!fire(&h, "c", false).ok);
        assert!(fire(&h, "c", true).ok);
        assert_eq!(
            std::fs::read_to_string(d.path().join(paths::SYSRQ_TRIGGER)).unwrap(),
            "twc"
        );
        let missing = Host::new(d.path().join("nowhere"));
        let o = fire(&missing, "t", false);
        assert!(!o.ok && o.detail.contains("sysrq-trigger"), "{o:?}");
    }
}
