//! One incident's directory and its manifest, under a byte cap.
//!
//! Every file goes in through [`Bundle`], which counts bytes so that the
//! bundle, manifest included, never exceeds `max_bundle_bytes`: a file that
//! would pass the cap is cut (or skipped) and the manifest says so. The
//! manifest is rewritten (temp file, fsync, rename) as the bundle grows —
//! at creation, for each action, after the /proc copies, for the first
//! events — so a daemon killed mid-incident still leaves a bundle that
//! explains itself.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{bundle_name, incidents_dir, IncidentError, IncidentSettings, DIR_MODE, FILE_MODE};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// Kernel records of the incident.
pub const KMSG: &str = "kmsg.txt";
/// `watchdog check --format json` at the trigger.
pub const CHECK: &str = "check.json";
/// Bumped when a field changes meaning; readers accept what they know.
pub const MANIFEST_FORMAT: u32 = 1;

/// Room kept for `manifest.json` out of `max_bundle_bytes`: a quarter of a
/// small cap, at most 256 KiB of a large one.
fn manifest_reserve(cap: u64) -> u64 {
    (cap / 4).min(256 << 10)
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// The directory's name.
    pub name: String,
    pub kind: String,
    /// One line about the triggering event.
    pub summary: String,
    pub host: Option<String>,
    pub kernel: Option<String>,
    pub boot_id: Option<String>,
    /// RFC 3339, UTC.
    pub opened: String,
    /// Unset while the incident is still being recorded.
    pub closed: Option<String>,
    /// The incident's events, exactly as written to the event log.
    pub events: Vec<Box<RawValue>>,
    /// Events left out of `events` to keep the manifest under the cap.
    #[serde(default)]
    pub events_omitted: u64,
    pub actions: Vec<ActionRecord>,
    /// Every file of the bundle except this manifest.
    pub files: Vec<FileEntry>,
    /// What could not be collected, and why.
    pub not_collected: Vec<NotCollected>,
    /// When `proc/` was copied (RFC 3339, UTC).
    #[serde(default)]
    pub proc_collected: Option<String>,
    #[serde(default)]
    pub blocked_tasks: Vec<TaskSummary>,
    #[serde(default)]
    pub largest_processes: Vec<ProcessSummary>,
    /// True when something was cut or skipped to stay under the cap.
    pub capped: bool,
    pub max_bundle_bytes: u64,
    /// Bytes of `files` together (the manifest not counted).
    pub bytes: u64,
}

/// One action taken for the incident and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub time: String,
    pub rule: String,
    pub action: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the bundle, `/`-separated.
    pub name: String,
    pub bytes: u64,
    /// The file holds only the start of what was there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotCollected {
    /// What was wanted: a host path relative to the root (`proc/slabinfo`)
    /// or a bundle file.
    pub what: String,
    pub reason: String,
}

/// A task found in D state (uninterruptible sleep) at the trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub pid: u32,
    /// Thread group (process) id; differs from `pid` for a thread.
    pub tgid: u32,
    pub comm: String,
    pub wchan: Option<String>,
}

/// One of the largest processes by resident memory at the trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    pub pid: u32,
    pub comm: String,
    pub rss_kb: Option<u64>,
    pub oom_score_adj: Option<i64>,
    pub cmdline: Option<String>,
}

/// An incident being recorded.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    pub(super) settings: IncidentSettings,
    manifest: Manifest,
    /// Bytes of every file but the manifest.
    data_bytes: u64,
    kmsg_bytes: u64,
    kmsg_dropped: u64,
    kmsg: Option<fs::File>,
    manifest_bytes: u64,
}

/// Who and where, for the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub host: Option<String>,
    pub kernel: Option<String>,
    pub boot_id: Option<String>,
}

impl Origin {
    /// Host name, kernel release and boot id as the host's files say.
    pub fn of(host: &crate::host::Host) -> Origin {
        Origin {
            host: host.hostname(),
            kernel: host.kernel_release(),
            boot_id: host
                .read_value(crate::host::paths::BOOT_ID)
                .ok()
                .filter(|s| !s.is_empty() && s.len() < 64),
        }
    }
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Bundle {
    /// Makes `<evidence_dir>/incidents/<UTC time>-<kind>-<short id>/` and
    /// writes a first manifest.
    pub fn create(
        evidence_dir: &Path,
        settings: &IncidentSettings,
        id: &str,
        kind: &str,
        opened_at: DateTime<Utc>,
        origin: Origin,
    ) -> Result<Bundle, IncidentError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(IncidentError::Invalid(format!(
                "incident id {id:?}: letters and digits only"
            )));
        }
        let parent = incidents_dir(evidence_dir);
        make_dir_all(&parent)?;
        let name = bundle_name(opened_at, kind, id);
        let dir = parent.join(&name);
        fs::DirBuilder::new()
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(|e| IncidentError::io(&dir, e))?;
        // The process umask may have narrowed the mode; the mode is part of
        // the contract (a support group reads bundles).
        fs::set_permissions(&dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| IncidentError::io(&dir, e))?;
        let mut b = Bundle {
            dir,
            settings: settings.clone(),
            manifest: Manifest {
                format: MANIFEST_FORMAT,
                id: id.to_string(),
                name,
                kind: kind.to_string(),
                summary: String::new(),
                host: origin.host,
                kernel: origin.kernel,
                boot_id: origin.boot_id,
                opened: rfc3339(opened_at),
                closed: None,
                events: Vec::new(),
                events_omitted: 0,
                actions: Vec::new(),
                files: Vec::new(),
                not_collected: Vec::new(),
                proc_collected: None,
                blocked_tasks: Vec::new(),
                largest_processes: Vec::new(),
                capped: false,
                max_bundle_bytes: settings.max_bundle_bytes,
                bytes: 0,
            },
            data_bytes: 0,
            kmsg_bytes: 0,
            kmsg_dropped: 0,
            kmsg: None,
            manifest_bytes: 0,
        };
        b.write_manifest()?;
        Ok(b)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Bytes on disk now, manifest included.
    pub fn bytes(&self) -> u64 {
        self.data_bytes + self.manifest_bytes
    }

    /// Bytes data files may still take.
    fn room(&self) -> u64 {
        let cap = self.settings.max_bundle_bytes;
        cap.saturating_sub(manifest_reserve(cap))
            .saturating_sub(self.data_bytes)
    }

    /// Bytes files other than `kmsg.txt` may still take: the SysRq answer
    /// usually arrives after /proc has been copied, and it is the most
    /// valuable part, so /proc may not eat the room it needs.
    fn room_for_files(&self) -> u64 {
        let cap = self.settings.max_bundle_bytes;
        let budget = cap.saturating_sub(manifest_reserve(cap));
        let kmsg_want = self
            .settings
            .readback
            .max_bytes
            .saturating_add(self.settings.kmsg_lookback_records as u64 * 256)
            .min(budget / 2);
        let kmsg_reserve = kmsg_want.saturating_sub(self.kmsg_bytes);
        self.room().saturating_sub(kmsg_reserve)
    }

    /// Adds one event of the incident: `json` is the event exactly as the
    /// event log has it (one JSON object). The first one gives the summary.
    /// The manifest is rewritten for the first events and then for every
    /// 64th, so a burst joining an incident (a thousand signal deaths) does
    /// not rewrite it a thousand times; actions and `close` always write it.
    pub fn add_event(&mut self, json: &str) -> Result<(), IncidentError> {
        let raw = RawValue::from_string(json.trim().to_string()).map_err(|e| {
            IncidentError::Invalid(format!("incident {}: event is not JSON: {e}", self.id()))
        })?;
        if self.manifest.events.is_empty() && self.manifest.events_omitted == 0 {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                self.manifest.summary = summarize(&v);
            }
        }
        self.manifest.events.push(raw);
        let n = self.manifest.events.len() as u64 + self.manifest.events_omitted;
        if n <= 8 || n % 64 == 0 {
            self.write_manifest()?;
        }
        Ok(())
    }

    /// Records an action taken for the incident and its outcome.
    pub fn add_action(
        &mut self,
        rule: &str,
        action: &str,
        ok: bool,
        detail: &str,
    ) -> Result<(), IncidentError> {
        self.manifest.actions.push(ActionRecord {
            time: rfc3339(Utc::now()),
            rule: rule.to_string(),
            action: action.to_string(),
            ok,
            detail: detail.to_string(),
        });
        self.write_manifest()
    }

    /// Appends kernel records to `kmsg.txt`, a newline after each line.
    /// Records past the cap are counted, not written; the manifest says how
    /// many at its next write.
    pub fn append_kmsg(&mut self, text: &str) -> Result<(), IncidentError> {
        if text.is_empty() {
            return Ok(());
        }
        let mut out = String::with_capacity(text.len() + 1);
        for line in text.lines() {
            out.push_str(line);
            out.push('\n');
        }
        let room = self.room();
        let mut take = out.len();
        if take as u64 > room {
            // Whole lines only: a cut record would read as a different one.
            let limit = usize::try_from(room).unwrap_or(usize::MAX);
            take = out[..limit].rfind('\n').map_or(0, |i| i + 1);
            self.kmsg_dropped += out[take..].lines().count() as u64;
            self.manifest.capped = true;
        }
        if take == 0 {
            return Ok(());
        }
        let path = self.dir.join(KMSG);
        if self.kmsg.is_none() {
            self.kmsg = Some(open_new(&path, true)?);
        }
        if let Some(f) = self.kmsg.as_mut() {
            f.write_all(&out.as_bytes()[..take])
                .map_err(|e| IncidentError::io(&path, e))?;
        }
        self.kmsg_bytes += take as u64;
        self.data_bytes += take as u64;
        Ok(())
    }

    /// Writes `check.json`, the `check` findings at the trigger.
    pub fn write_check(&mut self, json: &str) -> Result<(), IncidentError> {
        self.add_file(CHECK, json.as_bytes())
    }

    /// Adds a file from memory under `name` (`/`-separated, inside the
    /// bundle), cut at the cap. Writing it twice is an error.
    pub fn add_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), IncidentError> {
        self.add_file_marked(name, bytes, false)
    }

    /// As [`Bundle::add_file`], `truncated` saying the source was already
    /// cut (a /proc file longer than `proc_file_max_bytes`).
    pub(super) fn add_file_marked(
        &mut self,
        name: &str,
        bytes: &[u8],
        truncated: bool,
    ) -> Result<(), IncidentError> {
        let path = self.file_path(name)?;
        let room = self.room_for_files();
        if room == 0 && !bytes.is_empty() {
            self.manifest.capped = true;
            self.not_collected(name, "skipped: the bundle reached max_bundle_bytes");
            return Ok(());
        }
        let keep = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        let mut f = open_new(&path, false)?;
        f.write_all(&bytes[..keep])
            .and_then(|()| f.sync_data())
            .map_err(|e| IncidentError::io(&path, e))?;
        if keep < bytes.len() {
            self.manifest.capped = true;
            self.not_collected(
                name,
                &format!(
                    "cut at max_bundle_bytes: {keep} of {} bytes kept",
                    bytes.len()
                ),
            );
        }
        self.data_bytes += keep as u64;
        self.manifest.files.push(FileEntry {
            name: name.to_string(),
            bytes: keep as u64,
            truncated: truncated || keep < bytes.len(),
        });
        Ok(())
    }

    /// Moves a file into the bundle under `name` (the ftrace snapshot):
    /// a rename, or a copy and remove across filesystems. A file larger
    /// than the room left is cut; the source is removed either way, so the
    /// evidence is never kept twice.
    pub fn adopt_file(&mut self, src: &Path, name: &str) -> Result<(), IncidentError> {
        let dst = self.file_path(name)?;
        let size = fs::metadata(src)
            .map_err(|e| IncidentError::io(src, e))?
            .len();
        let room = self.room_for_files();
        let moved = if size <= room {
            match fs::rename(src, &dst) {
                Ok(()) => Some(size),
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => None,
                Err(e) => return Err(IncidentError::io(src, e)),
            }
        } else {
            None
        };
        let kept = match moved {
            Some(n) => {
                fs::set_permissions(&dst, fs::Permissions::from_mode(FILE_MODE))
                    .map_err(|e| IncidentError::io(&dst, e))?;
                n
            }
            None => {
                let n = copy_prefix(src, &dst, room.min(size))?;
                fs::remove_file(src).map_err(|e| IncidentError::io(src, e))?;
                n
            }
        };
        if kept < size {
            self.manifest.capped = true;
            self.not_collected(
                name,
                &format!("cut at max_bundle_bytes: {kept} of {size} bytes kept"),
            );
        }
        self.data_bytes += kept;
        self.manifest.files.push(FileEntry {
            name: name.to_string(),
            bytes: kept,
            truncated: kept < size,
        });
        self.write_manifest()
    }

    /// Notes something that could not be collected.
    pub fn not_collected(&mut self, what: &str, reason: &str) {
        self.manifest.not_collected.push(NotCollected {
            what: what.to_string(),
            reason: reason.to_string(),
        });
    }

    pub(super) fn set_proc_collected(&mut self, at: String) {
        self.manifest.proc_collected = Some(at);
    }

    pub(super) fn set_blocked_tasks(&mut self, tasks: Vec<TaskSummary>) {
        self.manifest.blocked_tasks = tasks;
    }

    pub(super) fn set_largest(&mut self, procs: Vec<ProcessSummary>) {
        self.manifest.largest_processes = procs;
    }

    /// Ends the incident: the final manifest. The bundle stays on disk;
    /// call [`super::store::apply_retention`] next.
    pub fn close(mut self, closed_at: DateTime<Utc>) -> Result<PathBuf, IncidentError> {
        self.manifest.closed = Some(rfc3339(closed_at));
        if let Some(f) = self.kmsg.take() {
            let path = self.dir.join(KMSG);
            f.sync_data().map_err(|e| IncidentError::io(&path, e))?;
        }
        self.write_manifest()?;
        Ok(self.dir)
    }

    /// Writes the manifest as it stands now (temp file, fsync, rename),
    /// leaving events out if that is what it takes to stay under the cap.
    pub fn write_manifest(&mut self) -> Result<(), IncidentError> {
        let mut m = self.manifest.clone();
        if self.kmsg_bytes > 0 {
            m.files.insert(
                0,
                FileEntry {
                    name: KMSG.into(),
                    bytes: self.kmsg_bytes,
                    truncated: self.kmsg_dropped > 0,
                },
            );
        }
        if self.kmsg_dropped > 0 {
            m.not_collected.push(NotCollected {
                what: KMSG.into(),
                reason: format!(
                    "{} kernel lines left out at max_bundle_bytes",
                    self.kmsg_dropped
                ),
            });
        }
        m.bytes = self.data_bytes;
        let limit = self
            .settings
            .max_bundle_bytes
            .saturating_sub(self.data_bytes);
        let text = loop {
            let text = serde_json::to_vec_pretty(&m)
                .map_err(|e| IncidentError::Invalid(format!("manifest: {e}")))?;
            if (text.len() as u64) < limit || !shrink(&mut m) {
                break text;
            }
        };
        if m.events_omitted > self.manifest.events_omitted {
            // Keep the omission: later writes start from what fitted.
            self.manifest.events.truncate(m.events.len());
            self.manifest.events_omitted = m.events_omitted;
            self.manifest.capped = true;
        }
        let tmp = self.dir.join(".manifest.json.tmp");
        let dst = self.dir.join(MANIFEST);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(|e| IncidentError::io(&tmp, e))?;
        f.write_all(&text)
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.set_permissions(fs::Permissions::from_mode(FILE_MODE)))
            .and_then(|()| f.sync_all())
            .map_err(|e| IncidentError::io(&tmp, e))?;
        fs::rename(&tmp, &dst).map_err(|e| IncidentError::io(&dst, e))?;
        self.manifest_bytes = text.len() as u64 + 1;
        Ok(())
    }

    /// The absolute path of a bundle file, refusing names that would leave
    /// the bundle or clash with the manifest, and making its directory.
    fn file_path(&self, name: &str) -> Result<PathBuf, IncidentError> {
        let rel = Path::new(name);
        let plain = !name.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain || name == MANIFEST || name == KMSG || name.starts_with(".manifest") {
            return Err(IncidentError::Invalid(format!(
                "incident {}: {name:?} is not a file name the bundle accepts",
                self.id()
            )));
        }
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            make_dir_all(parent)?;
        }
        Ok(path)
    }
}

/// Halves the events (then the list of what was not collected) of a
/// manifest too large for the cap; false when nothing is left to drop.
fn shrink(m: &mut Manifest) -> bool {
    m.capped = true;
    if m.events.len() > 1 {
        let keep = m.events.len().div_ceil(2);
        m.events_omitted += (m.events.len() - keep) as u64;
        m.events.truncate(keep);
        return true;
    }
    if m.not_collected.len() > 1 {
        let keep = m.not_collected.len() / 2;
        let dropped = m.not_collected.len() - keep;
        m.not_collected.truncate(keep);
        m.not_collected.push(NotCollected {
            what: "manifest".into(),
            reason: format!("{dropped} more entries left out at max_bundle_bytes"),
        });
        return true;
    }
    if !m.largest_processes.is_empty() || !m.blocked_tasks.is_empty() {
        m.largest_processes.clear();
        m.blocked_tasks.clear();
        return true;
    }
    false
}

/// One line about an event, for `incidents list`.
pub(super) fn summarize(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let n = |k: &str| v.get(k).filter(|x| !x.is_null()).map(|x| x.to_string());
    let kind = s("kind").unwrap_or_default();
    let who = match (s("comm"), n("pid")) {
        (Some(c), Some(p)) => Some(format!("{c}:{p}")),
        (Some(c), None) => Some(c),
        (None, Some(p)) => Some(format!("pid {p}")),
        _ => None,
    };
    let mut out = match kind.as_str() {
        "hung_task" => match (who, n("blocked_secs")) {
            (Some(w), Some(b)) => format!("{w} blocked for more than {b} s"),
            (Some(w), None) => format!("{w} blocked"),
            (None, _) => "hung task (unreported by the kernel)".into(),
        },
        "oom_kill" => format!(
            "killed {}{}",
            who.unwrap_or_else(|| "a process".into()),
            if v.get("memcg").and_then(|x| x.as_bool()) == Some(true) {
                " (memory cgroup)"
            } else {
                ""
            }
        ),
        "signal_death" => format!(
            "{} died by {}",
            who.unwrap_or_else(|| "a process".into()),
            s("signal_name").unwrap_or_else(|| "a signal".into())
        ),
        "soft_lockup" => format!(
            "CPU#{} stuck for {} s{}",
            n("cpu").unwrap_or_else(|| "?".into()),
            n("stuck_secs").unwrap_or_else(|| "?".into()),
            who.map(|w| format!(" ({w})")).unwrap_or_default()
        ),
        _ => s("summary")
            .or(who)
            .unwrap_or_else(|| format!("{kind} event")),
    };
    if out.len() > 120 {
        let mut end = 117;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("...");
    }
    out
}

pub(super) fn make_dir_all(dir: &Path) -> Result<(), IncidentError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| IncidentError::io(dir, e))
}

fn open_new(path: &Path, append: bool) -> Result<fs::File, IncidentError> {
    let f = fs::OpenOptions::new()
        .write(true)
        .append(append)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| IncidentError::io(path, e))?;
    f.set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .map_err(|e| IncidentError::io(path, e))?;
    Ok(f)
}

/// Copies the first `limit` bytes of `src` into a new `dst`.
fn copy_prefix(src: &Path, dst: &Path, limit: u64) -> Result<u64, IncidentError> {
    let from = fs::File::open(src).map_err(|e| IncidentError::io(src, e))?;
    let mut to = open_new(dst, false)?;
    let n = io::copy(&mut from.take(limit), &mut to).map_err(|e| IncidentError::io(dst, e))?;
    to.sync_data().map_err(|e| IncidentError::io(dst, e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::IncidentsConfig;

    pub(crate) fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn settings(cap: u64) -> IncidentSettings {
        IncidentsConfig {
            max_bundle_bytes: cap,
            max_bytes: cap * 10,
            sysrq_readback_max_bytes: 4096,
            kmsg_lookback_records: 0,
            ..IncidentsConfig::default()
        }
        .compile("run.incidents")
        .unwrap()
    }

    const HUNG: &str = r#"{"kind":"hung_task","time":"2026-11-29T11:25:00Z","source":"kmsg","comm":"jbd2/vda1-8","pid":245,"blocked_secs":120}"#;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn manifest(dir: &Path) -> serde_json::Value {
        serde_json::from_slice(&fs::read(dir.join(MANIFEST)).unwrap()).unwrap()
    }

    #[test]
    fn layout_modes_and_manifest() {
        let ev = tempfile::tempdir().unwrap();
        let origin = Origin {
            host: Some("db1".into()),
            kernel: Some("5.14.0".into()),
            boot_id: Some("b00t".into()),
        };
        let mut b = Bundle::create(
            ev.path(),
            &settings(1 << 20),
            "0123456789abcdef",
            "hung_task",
            t("2026-11-29T11:25:00Z"),
            origin,
        )
        .unwrap();
        let dir = b.dir().to_path_buf();
        assert_eq!(
            dir,
            ev.path()
                .join("incidents/20261129T112500Z-hung_task-01234567")
        );
        assert_eq!(mode(&dir), 0o750);
        // A manifest exists from the start: a crash mid-incident leaves one.
        assert_eq!(manifest(&dir)["closed"], serde_json::Value::Null);
        b.add_event(HUNG).unwrap();
        b.append_kmsg("INFO: task jbd2/vda1-8:245 blocked for more than 120 seconds.\n")
            .unwrap();
        b.append_kmsg("sysrq: Show Blocked State").unwrap();
        b.write_check(r#"{"status":"ok"}"#).unwrap();
        b.add_file("proc/meminfo", b"MemTotal: 1 kB\n").unwrap();
        let snap = ev.path().join("snapshot-1.txt");
        fs::write(&snap, "trace\n").unwrap();
        b.adopt_file(&snap, "ftrace-snapshot.txt").unwrap();
        assert!(!snap.exists(), "moved, not copied");
        b.add_action("hung-task-evidence", "sysrq t", true, "wrote t")
            .unwrap();
        b.not_collected("proc/slabinfo", "permission denied");
        let dir = b.close(t("2026-11-29T11:25:03Z")).unwrap();
        let m = manifest(&dir);
        assert_eq!(m["id"], "0123456789abcdef");
        assert_eq!(m["host"], "db1");
        assert_eq!(m["kernel"], "5.14.0");
        assert_eq!(m["boot_id"], "b00t");
        assert_eq!(m["opened"], "2026-11-29T11:25:00.000Z");
        assert_eq!(m["closed"], "2026-11-29T11:25:03.000Z");
        assert_eq!(m["summary"], "jbd2/vda1-8:245 blocked for more than 120 s");
        assert_eq!(m["capped"], false);
        // The event is kept byte for byte as the event log wrote it.
        let raw = fs::read_to_string(dir.join(MANIFEST)).unwrap();
        assert!(raw.contains(HUNG), "{raw}");
        assert_eq!(m["actions"][0]["detail"], "wrote t");
        assert_eq!(m["not_collected"][0]["what"], "proc/slabinfo");
        let files: Vec<(String, u64)> = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        for (name, bytes) in &files {
            let p = dir.join(name);
            assert_eq!(fs::metadata(&p).unwrap().len(), *bytes, "{name}");
            assert_eq!(mode(&p), 0o640, "{name}");
        }
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "kmsg.txt",
                "check.json",
                "proc/meminfo",
                "ftrace-snapshot.txt"
            ]
        );
        assert_eq!(mode(&dir.join("proc")), 0o750);
        assert_eq!(mode(&dir.join(MANIFEST)), 0o640);
        assert_eq!(
            fs::read_to_string(dir.join(KMSG)).unwrap(),
            "INFO: task jbd2/vda1-8:245 blocked for more than 120 seconds.\nsysrq: Show Blocked State\n"
        );
    }

    #[test]
    fn bad_names_and_events_are_refused() {
        let ev = tempfile::tempdir().unwrap();
        let mut b = Bundle::create(
            ev.path(),
            &settings(1 << 20),
            "abc",
            "oom_kill",
            t("2026-11-29T11:25:00Z"),
            Origin::default(),
        )
        .unwrap();
        for bad in ["../x", "/etc/passwd", MANIFEST, KMSG, "", "a/../../b"] {
            let e = b.add_file(bad, b"x").unwrap_err();
            assert!(e.to_string().contains("not a file name"), "{bad}: {e}");
        }
        let e = b.add_event("{not json").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        assert!(Bundle::create(
            ev.path(),
            &settings(1 << 20),
            "../x",
            "k",
            t("2026-11-29T11:25:00Z"),
            Origin::default()
        )
        .is_err());
    }

    #[test]
    fn a_bundle_never_exceeds_its_cap() {
        let cap = 64 << 10;
        let ev = tempfile::tempdir().unwrap();
        let mut b = Bundle::create(
            ev.path(),
            &settings(cap),
            "feed",
            "hung_task",
            t("2026-11-29T11:25:00Z"),
            Origin::default(),
        )
        .unwrap();
        b.add_file("proc/zoneinfo", &vec![b'z'; 100_000]).unwrap();
        b.add_file("proc/vmstat", b"nr_free_pages 1\n").unwrap();
        let line = "x".repeat(99);
        for i in 0..2000 {
            b.append_kmsg(&line).unwrap();
            if i % 5 == 0 {
                b.add_event(HUNG).unwrap();
            }
        }
        let snap = ev.path().join("snap");
        fs::write(&snap, vec![b's'; 50_000]).unwrap();
        b.adopt_file(&snap, "ftrace-snapshot.txt").unwrap();
        assert!(!snap.exists());
        let dir = b.close(t("2026-11-29T11:26:00Z")).unwrap();
        let total: u64 = crate::testing::walk(&dir)
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= cap, "{total} > {cap}");
        let m = manifest(&dir);
        assert_eq!(m["capped"], true);
        assert!(m["events_omitted"].as_u64().unwrap() > 0);
        let why: Vec<String> = m["not_collected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| format!("{} {}", n["what"], n["reason"]))
            .collect();
        assert!(
            why.iter()
                .any(|w| w.contains("zoneinfo") && w.contains("cut at max_bundle_bytes")),
            "{why:?}"
        );
        assert!(
            why.iter().any(|w| w.contains("kernel lines left out")),
            "{why:?}"
        );
        // kmsg.txt holds whole lines only.
        let k = fs::read_to_string(dir.join(KMSG)).unwrap();
        assert!(k.lines().all(|l| l == line));
    }

    #[test]
    fn summaries() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            summarize(&v(
                r#"{"kind":"oom_kill","comm":"java","pid":7,"memcg":true}"#
            )),
            "killed java:7 (memory cgroup)"
        );
        assert_eq!(
            summarize(&v(
                r#"{"kind":"hung_task","comm":null,"pid":null,"unreported":3}"#
            )),
            "hung task (unreported by the kernel)"
        );
        assert_eq!(
            summarize(&v(
                r#"{"kind":"oops","summary":"BUG: unable to handle page fault"}"#
            )),
            "BUG: unable to handle page fault"
        );
    }
}
