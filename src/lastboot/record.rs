//! What `watchdog run` keeps in its state directory about boots: its own
//! start and stop (the decisive hint when no log survived) and the boots
//! whose end it has already reported.
//!
//! Written twice per run at most (start and SIGTERM), through the record
//! stage; nothing periodic, so an idle host stays idle.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file of `run`'s own record, in the state directory.
pub const RUN_RECORD: &str = "boot-record.json";
/// The file of boots already reported, in the state directory.
pub const REPORTED: &str = "last-boot-reported.json";
/// Reported boots remembered.
const KEEP_REPORTED: usize = 32;
/// Largest state file read.
const MAX_STATE: u64 = 64 * 1024;

/// One boot as `run` saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootStamp {
    pub boot_id: String,
    /// When `run` started (RFC 3339).
    pub started: String,
    /// When it stopped on SIGTERM/SIGINT; `None`: it was still watching
    /// when the boot ended (or was killed).
    pub stopped: Option<String>,
}

/// `boot-record.json`: this boot's stamp and the one before it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub current: Option<BootStamp>,
    pub previous: Option<BootStamp>,
}

impl RunRecord {
    /// The stamp of the boot before `boot_id`.
    pub fn before(&self, boot_id: &str) -> Option<&BootStamp> {
        match &self.current {
            Some(c) if c.boot_id != boot_id => Some(c),
            _ => self.previous.as_ref(),
        }
    }

    /// The record after `run` started in boot `boot_id` at `now`.
    pub fn started(&self, boot_id: &str, now: &str) -> RunRecord {
        let previous = self.before(boot_id).cloned();
        RunRecord {
            current: Some(BootStamp {
                boot_id: boot_id.to_string(),
                started: now.to_string(),
                stopped: None,
            }),
            previous,
        }
    }

    /// The record after `run` stopped at `now`.
    pub fn stopped(&self, now: &str) -> RunRecord {
        let mut r = self.clone();
        if let Some(c) = r.current.as_mut() {
            c.stopped = Some(now.to_string());
        }
        r
    }
}

/// A boot whose previous boot was reported, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportedBoot {
    pub boot_id: String,
    /// Unix seconds.
    pub at: i64,
}

/// `last-boot-reported.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    pub boots: Vec<ReportedBoot>,
}

impl Reported {
    pub fn contains(&self, boot_id: &str) -> bool {
        self.boots.iter().any(|b| b.boot_id == boot_id)
    }

    /// When the last report made in an earlier boot than `boot_id` was
    /// made: evidence older than it was reported then.
    pub fn last_before(&self, boot_id: &str) -> Option<i64> {
        self.boots
            .iter()
            .filter(|b| b.boot_id != boot_id)
            .map(|b| b.at)
            .max()
    }

    pub fn with(&self, boot_id: &str, at: i64) -> Reported {
        let mut boots: Vec<ReportedBoot> = self
            .boots
            .iter()
            .filter(|b| b.boot_id != boot_id)
            .cloned()
            .collect();
        boots.push(ReportedBoot {
            boot_id: boot_id.to_string(),
            at,
        });
        let extra = boots.len().saturating_sub(KEEP_REPORTED);
        boots.drain(..extra);
        Reported { boots }
    }
}

/// Reads a state file; a missing file is the default, a damaged one is
/// an error naming it.
pub fn load<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut text = String::new();
    f.take(MAX_STATE)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A state file to write (atomically), handed to the record stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StateWrite {
    pub path: PathBuf,
    pub text: String,
}

impl StateWrite {
    pub fn new<T: Serialize>(path: PathBuf, value: &T) -> StateWrite {
        StateWrite {
            path,
            text: serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        }
    }

    pub fn save(&self) -> std::io::Result<()> {
        crate::metrics::write_atomic(&self.path, &self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_in_the_same_boot_keeps_the_boot_before() {
        let r = RunRecord::default().started("A", "t1");
        assert_eq!(r.before("B").unwrap().boot_id, "A");
        let r = r.stopped("t2");
        assert_eq!(r.current.as_ref().unwrap().stopped.as_deref(), Some("t2"));
        let r = r.started("B", "t3");
        assert_eq!(r.previous.as_ref().unwrap().boot_id, "A");
        // run restarted in boot B: A is still the boot before.
        let r = r.started("B", "t4");
        assert_eq!(r.before("B").unwrap().boot_id, "A");
        assert_eq!(r.current.as_ref().unwrap().started, "t4");
    }

    #[test]
    fn reported_boots_are_bounded_and_dated() {
        let mut r = Reported::default();
        for i in 0..40 {
            r = r.with(&format!("b{i}"), i);
        }
        assert_eq!(r.boots.len(), KEEP_REPORTED);
        assert!(r.contains("b39") && !r.contains("b0"));
        assert_eq!(r.last_before("b39"), Some(38));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        StateWrite::new(p.clone(), &r).save().unwrap();
        assert_eq!(load::<Reported>(&p).unwrap(), r);
        std::fs::write(&p, "{").unwrap();
        assert!(load::<Reported>(&p).unwrap_err().contains("x.json"));
        assert_eq!(
            load::<Reported>(&d.path().join("none")).unwrap(),
            Reported::default()
        );
    }
}
