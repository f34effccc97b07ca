//! The incidents directory as a whole: listing bundles, finding one by an
//! id prefix, and retention (count and bytes, oldest removed first).

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::bundle::{Manifest, MANIFEST};
use super::{incidents_dir, IncidentError, IncidentSettings};

/// An open bundle younger than this is being recorded by a running daemon
/// and is never removed; an older one was left by a daemon that died.
const OPEN_GRACE_SECS: i64 = 24 * 3600;

/// One bundle directory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub dir: PathBuf,
    /// `None` when the manifest could not be read; `error` says why.
    pub manifest: Option<Manifest>,
    pub error: Option<String>,
    /// Bytes of every file in the directory.
    pub bytes: u64,
}

impl Entry {
    pub fn id(&self) -> &str {
        self.manifest.as_ref().map_or("", |m| m.id.as_str())
    }

    /// Opening time from the name (`20261129T112500Z-...`), which exists
    /// even when the manifest does not.
    pub fn opened(&self) -> Option<DateTime<Utc>> {
        let stamp = self.name.get(..16)?;
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc())
    }

    fn is_open(&self) -> bool {
        self.manifest.as_ref().is_some_and(|m| m.closed.is_none())
    }
}

/// Whether a directory name is a bundle's: `YYYYMMDDTHHMMSSZ-kind-id`.
fn is_bundle_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 17
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
}

/// Every bundle under `<evidence_dir>/incidents`, oldest first. A missing
/// directory is an empty list (no incident yet).
pub fn list(evidence_dir: &Path) -> Result<Vec<Entry>, IncidentError> {
    let root = incidents_dir(evidence_dir);
    let rd = match fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IncidentError::io(&root, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| IncidentError::io(&root, e))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let dir = e.path();
        if !is_bundle_name(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let (manifest, error) = match read_manifest(&dir) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e.to_string())),
        };
        out.push(Entry {
            bytes: dir_bytes(&dir),
            name,
            dir,
            manifest,
            error,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn read_manifest(dir: &Path) -> Result<Manifest, IncidentError> {
    let path = dir.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|e| IncidentError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| IncidentError::io(&path, e))
}

/// The bundle whose id, or directory name, starts with `query`.
pub fn resolve(evidence_dir: &Path, query: &str) -> Result<Entry, IncidentError> {
    if query.is_empty() {
        return Err(IncidentError::Invalid("empty incident id".into()));
    }
    let all = list(evidence_dir)?;
    let mut hits: Vec<Entry> = all
        .into_iter()
        .filter(|e| e.id().starts_with(query) || e.name.starts_with(query))
        .collect();
    match hits.len() {
        0 => Err(IncidentError::NotFound(format!(
            "no incident {query:?} in {} (see `watchdog incidents list`)",
            incidents_dir(evidence_dir).display()
        ))),
        1 => Ok(hits.remove(0)),
        n => Err(IncidentError::Invalid(format!(
            "incident id {query:?} is ambiguous: {n} incidents match ({}); give more of it",
            hits.iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// What retention did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Names of the bundles removed, oldest first.
    pub removed: Vec<String>,
    pub kept: usize,
    pub kept_bytes: u64,
    /// Bundles that could not be removed, with the reason.
    pub errors: Vec<String>,
}

/// Removes the oldest bundles until at most `keep` remain and together they
/// take at most `max_bytes`. The writer thread calls this after closing a
/// bundle; `watchdog incidents prune` calls it on demand. Bundles still
/// being recorded are spared (unless a day old: their daemon died).
pub fn apply_retention(
    evidence_dir: &Path,
    settings: &IncidentSettings,
) -> Result<Retention, IncidentError> {
    apply_retention_at(evidence_dir, settings, Utc::now())
}

pub fn apply_retention_at(
    evidence_dir: &Path,
    settings: &IncidentSettings,
    now: DateTime<Utc>,
) -> Result<Retention, IncidentError> {
    let entries = list(evidence_dir)?;
    let mut count = entries.len();
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut r = Retention::default();
    for e in &entries {
        if count <= settings.keep as usize && total <= settings.max_bytes {
            break;
        }
        let recent = e
            .opened()
            .is_some_and(|t| (now - t).num_seconds() < OPEN_GRACE_SECS);
        if e.is_open() && recent {
            continue;
        }
        match fs::remove_dir_all(&e.dir) {
            Ok(()) => {
                count -= 1;
                total -= e.bytes;
                r.removed.push(e.name.clone());
            }
            Err(err) => r.errors.push(format!("{}: {err}", e.dir.display())),
        }
    }
    r.kept = count;
    r.kept_bytes = total;
    Ok(r)
}

/// Bytes of the regular files under `dir` (links not followed).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{Bundle, IncidentsConfig};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn settings(keep: u32, max_bytes: u64) -> IncidentSettings {
        IncidentsConfig {
            keep,
            max_bytes,
            max_bundle_bytes: 64 << 10,
            ..IncidentsConfig::default()
        }
        .compile("run.incidents")
        .unwrap()
    }

    fn make(ev: &Path, id: &str, at: &str, close: bool) -> PathBuf {
        let s = settings(100, 1 << 30);
        let mut b = Bundle::create(ev, &s, id, "hung_task", t(at), Default::default()).unwrap();
        b.add_file("proc/meminfo", &[b'm'; 1000]).unwrap();
        if close {
            b.close(t(at)).unwrap()
        } else {
            b.dir().to_path_buf()
        }
    }

    #[test]
    fn keep_removes_the_oldest_and_spares_an_open_bundle() {
        let ev = tempfile::tempdir().unwrap();
        make(ev.path(), "aaaa1", "2026-11-29T10:00:00Z", true);
        make(ev.path(), "bbbb2", "2026-11-29T10:01:00Z", false);
        make(ev.path(), "cccc3", "2026-11-29T10:02:00Z", true);
        make(ev.path(), "dddd4", "2026-11-29T10:03:00Z", true);
        make(ev.path(), "eeee5", "2026-11-29T10:04:00Z", true);
        let now = t("2026-11-29T10:05:00Z");
        let r = apply_retention_at(ev.path(), &settings(3, 1 << 30), now).unwrap();
        assert_eq!(
            r.removed,
            [
                "20261129T100000Z-hung_task-aaaa1",
                "20261129T100200Z-hung_task-cccc3"
            ]
        );
        assert_eq!(r.kept, 3);
        let left: Vec<String> = list(ev.path())
            .unwrap()
            .iter()
            .map(|e| e.id().to_string())
            .collect();
        assert_eq!(left, ["bbbb2", "dddd4", "eeee5"]);
        // A day later the open bundle is abandoned, and goes first.
        let r = apply_retention_at(ev.path(), &settings(2, 1 << 30), t("2026-11-30T11:00:00Z"))
            .unwrap();
        assert_eq!(r.removed, ["20261129T100100Z-hung_task-bbbb2"]);
    }

    #[test]
    fn max_bytes_removes_the_oldest() {
        let ev = tempfile::tempdir().unwrap();
        for (i, at) in [
            "2026-11-29T10:00:00Z",
            "2026-11-29T10:01:00Z",
            "2026-11-29T10:02:00Z",
        ]
        .iter()
        .enumerate()
        {
            make(ev.path(), &format!("id{i}"), at, true);
        }
        let one = list(ev.path()).unwrap()[0].bytes;
        assert!(one > 1000);
        // Below max_bundle_bytes, which the configuration refuses, to keep
        // the bundles of this test small.
        let mut s = settings(10, 1 << 30);
        s.max_bytes = one * 2;
        let r = apply_retention(ev.path(), &s).unwrap();
        assert_eq!(r.removed.len(), 1);
        assert!(r.removed[0].ends_with("-id0"));
        assert!(r.kept_bytes <= one * 2);
    }

    #[test]
    fn ids_resolve_by_unique_prefix() {
        let ev = tempfile::tempdir().unwrap();
        make(ev.path(), "abc123", "2026-11-29T10:00:00Z", true);
        make(ev.path(), "abd456", "2026-11-29T10:01:00Z", true);
        assert_eq!(resolve(ev.path(), "abc").unwrap().id(), "abc123");
        assert_eq!(resolve(ev.path(), "20261129T1001").unwrap().id(), "abd456");
        let e = resolve(ev.path(), "ab").unwrap_err().to_string();
        assert!(e.contains("ambiguous") && e.contains("abc123"), "{e}");
        let e = resolve(ev.path(), "zz").unwrap_err().to_string();
        assert!(e.contains("no incident \"zz\""), "{e}");
        // Other things in the directory are not bundles.
        fs::create_dir(incidents_dir(ev.path()).join("lost+found")).unwrap();
        assert_eq!(list(ev.path()).unwrap().len(), 2);
        assert!(list(&ev.path().join("none")).unwrap().is_empty());
    }
}
