//! The evidence lane of the record stage: ftrace snapshot copies and
//! incident bundles (`crate::incident`), on their own writer thread.
//!
//! The loop decides when an incident opens, which events and actions
//! belong to it, which kernel records go into its `kmsg.txt`, and when it
//! closes; this thread does the writing, the /proc copies and the check
//! run, each bounded by the bundle's own limits and deadlines. Failures
//! are reported back to the loop (which tells the journal) and recorded in
//! the bundle's manifest; nothing here can stop the loop.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::report::{Done, Reporter};
use crate::check::CheckConfig;
use crate::host::Host;
use crate::incident::IncidentSettings;
use crate::incident::{Bundle, Origin};
use crate::triggers::snapshot::Frozen;

/// What the loop asks of an incident's bundle.
pub enum IncidentJob {
    /// Opens the bundle: its directory, the look-back records, copies of
    /// /proc and the `check` findings taken now.
    Open(Box<Opening>),
    /// An event that belongs to the incident (the event log's JSON line).
    Event { id: String, json: String },
    /// An action taken for it and its outcome.
    Action {
        id: String,
        rule: String,
        action: String,
        ok: bool,
        detail: String,
    },
    /// Kernel records for `kmsg.txt` (the answer to a SysRq), one per line.
    Kmsg { id: String, text: String },
    /// A copy of a file (the previous boot's pstore record, its
    /// vmcore-dmesg.txt), bounded by the bundle's cap; the original stays.
    Copy {
        id: String,
        src: PathBuf,
        name: String,
    },
    /// A file made of text the loop has (the journal of the previous boot).
    File {
        id: String,
        name: String,
        text: String,
    },
    /// Something that could not be collected, and why.
    Missing {
        id: String,
        what: String,
        why: String,
    },
    /// Writes the final manifest and applies retention.
    Close {
        id: String,
        closed_at: DateTime<Utc>,
    },
}

pub struct Opening {
    pub id: String,
    pub kind: String,
    pub opened_at: DateTime<Utc>,
    pub evidence_dir: PathBuf,
    pub settings: IncidentSettings,
    pub host: Host,
    pub check: CheckConfig,
    /// The records before the trigger, as `dmesg` prints them.
    pub lookback: String,
}

pub struct Evidence {
    report: Reporter,
    open: HashMap<String, Open>,
}

struct Open {
    bundle: Bundle,
    evidence_dir: PathBuf,
    settings: IncidentSettings,
}

impl Evidence {
    pub fn new(report: Reporter) -> Evidence {
        Evidence {
            report,
            open: HashMap::new(),
        }
    }

    /// Saves a frozen snapshot; with an open incident it is moved into the
    /// bundle (one copy on disk, never two).
    pub fn snapshot(&mut self, rule: String, frozen: Frozen, incident: Option<String>) {
        let (mut outcome, saved) = frozen.save();
        let open = incident.as_ref().and_then(|id| self.open.get_mut(id));
        if let (Some(path), Some(open)) = (saved, open) {
            let name = "ftrace-snapshot.txt";
            let name = if open.bundle.dir().join(name).exists() {
                // A second snapshot in one incident keeps its own name.
                path.file_name()
                    .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned())
            } else {
                name.to_string()
            };
            match open.bundle.adopt_file(&path, &name) {
                Ok(()) => {
                    let moved = open.bundle.dir().join(&name);
                    outcome.detail = outcome
                        .detail
                        .replace(&path.display().to_string(), &moved.display().to_string());
                }
                Err(e) => open.bundle.not_collected(
                    "ftrace snapshot",
                    &format!("kept at {}: {e}", path.display()),
                ),
            }
        }
        if let Some(open) = incident.as_ref().and_then(|id| self.open.get_mut(id)) {
            if let Err(e) =
                open.bundle
                    .add_action(&rule, "ftrace_snapshot", outcome.ok, &outcome.detail)
            {
                self.report
                    .note(4, format!("incident {}: {e}", open.bundle.id()));
            }
        }
        self.report.send(Done::Snapshot {
            rule,
            outcome,
            incident,
        });
    }

    pub fn incident(&mut self, job: IncidentJob) {
        match job {
            IncidentJob::Open(o) => self.open_bundle(*o),
            IncidentJob::Event { id, json } => self.with(&id, |b| b.add_event(&json)),
            IncidentJob::Action {
                id,
                rule,
                action,
                ok,
                detail,
            } => self.with(&id, |b| b.add_action(&rule, &action, ok, &detail)),
            IncidentJob::Kmsg { id, text } => self.with(&id, |b| b.append_kmsg(&text)),
            IncidentJob::Copy { id, src, name } => {
                let cap = self
                    .open
                    .get(&id)
                    .map_or(0, |o| o.settings.max_bundle_bytes);
                let read = std::fs::File::open(&src).and_then(|f| {
                    let mut v = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::Read::take(f, cap), &mut v)?;
                    Ok(v)
                });
                self.with(&id, |b| match read {
                    Ok(bytes) => b.add_file(&name, &bytes),
                    Err(e) => {
                        b.not_collected(&src.display().to_string(), &e.to_string());
                        Ok(())
                    }
                })
            }
            IncidentJob::File { id, name, text } => {
                self.with(&id, |b| b.add_file(&name, text.as_bytes()))
            }
            IncidentJob::Missing { id, what, why } => self.with(&id, |b| {
                b.not_collected(&what, &why);
                Ok(())
            }),
            IncidentJob::Close { id, closed_at } => self.close(&id, closed_at),
        }
    }

    fn open_bundle(&mut self, o: Opening) {
        let origin = Origin::of(&o.host);
        let mut bundle = match Bundle::create(
            &o.evidence_dir,
            &o.settings,
            &o.id,
            &o.kind,
            o.opened_at,
            origin,
        ) {
            Ok(b) => b,
            Err(e) => {
                self.report
                    .note(3, format!("incident {}: no bundle: {e}", o.id));
                return;
            }
        };
        if let Err(e) = bundle.append_kmsg(&o.lookback) {
            bundle.not_collected("kmsg.txt (look-back)", &e.to_string());
        }
        // The state of memory and tasks at this moment: the reason a
        // bundle is taken now and not by sosreport hours later.
        bundle.collect_proc(&o.host);
        if let Err(e) = bundle.collect_check(&o.host, &o.check) {
            bundle.not_collected("check.json", &e.to_string());
        }
        if let Err(e) = bundle.write_manifest() {
            self.report.note(4, format!("incident {}: {e}", o.id));
        }
        self.open.insert(
            o.id,
            Open {
                bundle,
                evidence_dir: o.evidence_dir,
                settings: o.settings,
            },
        );
    }

    fn with(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut Bundle) -> Result<(), crate::incident::IncidentError>,
    ) {
        if let Some(open) = self.open.get_mut(id) {
            if let Err(e) = f(&mut open.bundle) {
                self.report.note(4, format!("incident {id}: {e}"));
            }
        }
    }

    fn close(&mut self, id: &str, closed_at: DateTime<Utc>) {
        let Some(open) = self.open.remove(id) else {
            return;
        };
        let name = open.bundle.name().to_string();
        match open.bundle.close(closed_at) {
            Ok(dir) => self.report.note(
                6,
                format!("incident {id}: bundle closed at {}", dir.display()),
            ),
            Err(e) => self.report.note(3, format!("incident {id} ({name}): {e}")),
        }
        match crate::incident::store::apply_retention(&open.evidence_dir, &open.settings) {
            Ok(r) if !r.removed.is_empty() => self.report.note(
                6,
                format!(
                    "incidents: removed {} old bundle(s) ({}); {} kept",
                    r.removed.len(),
                    r.removed.join(", "),
                    r.kept
                ),
            ),
            Ok(_) => {}
            Err(e) => self
                .report
                .note(4, format!("incidents: retention not applied: {e}")),
        }
    }
}
