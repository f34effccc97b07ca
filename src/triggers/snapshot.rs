//! ftrace snapshots of the flight-recorder instance, saved as timestamped
//! files in the evidence directory with a count and size cap.

use std::io::{Read, Write};
use std::path::PathBuf;

use super::Outcome;
use crate::host::Host;

pub struct Snapshots {
    pub host: Host,
    /// The flight recorder's directory relative to the root
    /// (`sys/kernel/tracing/instances/watchdog-flight`), once set up.
    pub instance_dir: Option<String>,
    /// Why there is no flight recorder, for the action's detail.
    pub unavailable: String,
    pub dir: PathBuf,
    pub keep: u32,
    pub max_bytes: u64,
}

/// A snapshot frozen in tracefs, still to be copied out. The copy reads a
/// kernel file but writes the evidence directory, so it runs on the
/// writer thread (see `daemon::record`), never on the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    /// The instance's `snapshot` file.
    pub src: PathBuf,
    pub dir: PathBuf,
    pub keep: u32,
    pub max_bytes: u64,
}

impl Snapshots {
    /// Freezes the flight recorder's last seconds: writing 1 to the
    /// instance's `snapshot` allocates the spare buffer if needed and swaps
    /// it with the live one. Touches only tracefs.
    pub fn freeze(&self) -> Result<Frozen, Outcome> {
        let Some(inst) = self.instance_dir.clone() else {
            return Err(Outcome::failed(format!(
                "no flight recorder: {}",
                self.unavailable
            )));
        };
        let path = self.host.path(&format!("{inst}/snapshot"));
        if let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"1"))
        {
            return Err(Outcome::failed(format!(
                "cannot take a snapshot via {}: {e}",
                path.display()
            )));
        }
        Ok(Frozen {
            src: path,
            dir: self.dir.clone(),
            keep: self.keep,
            max_bytes: self.max_bytes,
        })
    }
}

impl Frozen {
    /// Copies the frozen buffer (at most `max_bytes`) to a timestamped
    /// file in the evidence directory and prunes old ones. Returns the
    /// outcome and, when saved, the file.
    pub fn save(self) -> (Outcome, Option<PathBuf>) {
        if let Err(e) = super::ensure_dir(&self.dir) {
            return (Outcome::failed(e), None);
        }
        let name = format!(
            "snapshot-{}.txt",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
        );
        let out = self.dir.join(name);
        let copied = std::fs::File::open(&self.src).and_then(|src| {
            let mut dst = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)?;
            let n = std::io::copy(&mut src.take(self.max_bytes), &mut dst)?;
            dst.flush()?;
            Ok(n)
        });
        match copied {
            Ok(n) => {
                let pruned = self.prune();
                let outcome = Outcome::ok(format!(
                    "saved {n} bytes to {}{}",
                    out.display(),
                    if pruned > 0 {
                        format!(
                            " (removed {pruned} old snapshot{})",
                            if pruned == 1 { "" } else { "s" }
                        )
                    } else {
                        String::new()
                    }
                ));
                (outcome, Some(out))
            }
            Err(e) => (
                Outcome::failed(format!("cannot save snapshot to {}: {e}", out.display())),
                None,
            ),
        }
    }

    /// Keeps the newest `keep` snapshots; returns how many were removed.
    fn prune(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("snapshot-") && n.ends_with(".txt"))
            .collect();
        // Timestamped names sort in time order.
        names.sort();
        let excess = names.len().saturating_sub(self.keep as usize);
        names
            .iter()
            .take(excess)
            .filter(|n| std::fs::remove_file(self.dir.join(n)).is_ok())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_caps_and_prunes() {
        let d = tempfile::tempdir().unwrap();
        let inst = "sys/kernel/tracing/instances/wd-flight";
        std::fs::create_dir_all(d.path().join(inst)).unwrap();
        std::fs::write(d.path().join(inst).join("snapshot"), "x".repeat(100)).unwrap();
        let mut s = Snapshots {
            host: Host::new(d.path()),
            instance_dir: Some(inst.into()),
            unavailable: String::new(),
            dir: d.path().join("evidence"),
            keep: 2,
            max_bytes: 50,
        };
        for _ in 0..3 {
            let (o, _) = s.freeze().unwrap().save();
            assert!(o.ok, "{o:?}");
        }
        let files: Vec<_> = std::fs::read_dir(d.path().join("evidence"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 2);
        for f in files {
            // The write of "1" replaced the fake file's content; the copy
            // is capped at max_bytes either way.
            assert!(std::fs::metadata(f.unwrap().path()).unwrap().len() <= 50);
        }
        s.instance_dir = None;
        s.unavailable = "tracefs not available".into();
        let o = s.freeze().unwrap_err();
        assert!(!o.ok && o.detail.contains("tracefs not available"));
    }
}
