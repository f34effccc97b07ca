//! `watchdog incidents pack`: a bundle as one `.tar.gz` to attach to a
//! support case, its top directory named after the incident. Built with
//! the `tar` and `flate2` crates: no shell, no external `tar`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::store::Entry;
use super::IncidentError;

/// Writes `entry` to `output` (default `./<name>.tar.gz`) through a
/// temporary file renamed into place, so a failed pack leaves nothing
/// half-written under the final name. Returns the path and its size.
pub fn pack(entry: &Entry, output: Option<&Path>) -> Result<(PathBuf, u64), IncidentError> {
    let out = output.map_or_else(
        || PathBuf::from(format!("{}.tar.gz", entry.name)),
        Path::to_path_buf,
    );
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| IncidentError::Invalid(format!("{}: not a file name", out.display())))?;
    let tmp = out.with_file_name(format!(".{file_name}.tmp"));
    let result = write_archive(entry, &tmp);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &out).map_err(|e| IncidentError::io(&out, e))?;
    let size = fs::metadata(&out)
        .map_err(|e| IncidentError::io(&out, e))?
        .len();
    Ok((out, size))
}

fn write_archive(entry: &Entry, tmp: &Path) -> Result<(), IncidentError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        // The archive carries the same secrets as the bundle.
        .mode(super::FILE_MODE)
        .open(tmp)
        .map_err(|e| IncidentError::io(tmp, e))?;
    let gz = GzEncoder::new(file, Compression::default());
    let mut tar = tar::Builder::new(gz);
    // Symlinks are stored as links, never followed out of the bundle.
    tar.follow_symlinks(false);
    tar.append_dir_all(&entry.name, &entry.dir)
        .map_err(|e| IncidentError::io(&entry.dir, e))?;
    let gz = tar.into_inner().map_err(|e| IncidentError::io(tmp, e))?;
    let mut file = gz.finish().map_err(|e| IncidentError::io(tmp, e))?;
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(|e| IncidentError::io(tmp, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{store, Bundle, IncidentSettings};
    use std::io::Read;

    #[test]
    fn archive_holds_the_bundle_under_its_name() {
        let ev = tempfile::tempdir().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-29T11:25:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut b = Bundle::create(
            ev.path(),
            &IncidentSettings::default(),
            "cafe01",
            "oom_kill",
            at,
            Default::default(),
        )
        .unwrap();
        b.add_file("proc/meminfo", b"MemTotal: 1 kB\n").unwrap();
        b.close(at).unwrap();
        let entry = store::resolve(ev.path(), "cafe").unwrap();
        let out = ev.path().join("x.tar.gz");
        let (path, size) = pack(&entry, Some(&out)).unwrap();
        assert_eq!(path, out);
        assert!(size > 0);
        let gz = flate2::read::GzDecoder::new(fs::File::open(&out).unwrap());
        let mut ar = tar::Archive::new(gz);
        let mut names = Vec::new();
        for f in ar.entries().unwrap() {
            let mut f = f.unwrap();
            let name = f.path().unwrap().display().to_string();
            if name.ends_with("meminfo") {
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                assert_eq!(s, "MemTotal: 1 kB\n");
            }
            names.push(name);
        }
        let top = "20261129T112500Z-oom_kill-cafe01";
        assert!(names.iter().all(|n| n.starts_with(top)), "{names:?}");
        assert!(names.contains(&format!("{top}/manifest.json")), "{names:?}");
        assert!(names.contains(&format!("{top}/proc/meminfo")), "{names:?}");
    }
}
