//! Triggers: the only part of `watchdog run` that changes anything on the
//! host. Each takes an [`Action`] the engine decided on and reports an
//! [`Outcome`]; the daemon turns every outcome into an `action` event.

pub mod exec;
pub mod kdump;
pub mod snapshot;
pub mod sysrq;

use std::path::PathBuf;

use crate::engine::Action;
use crate::host::Host;

/// The result of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub detail: String,
}

impl Outcome {
    pub fn ok(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn failed(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// What the triggers need to know about the host and the configuration.
pub struct Triggers {
    pub host: Host,
    pub allow_destructive: bool,
    pub dry_run: bool,
    pub snapshots: snapshot::Snapshots,
    pub check: crate::check::CheckConfig,
    pub exec: exec::Runner,
}

/// What became of an action on the loop.
#[derive(Debug)]
pub enum Fired {
    /// Done: this is its outcome.
    Done(Outcome),
    /// An `exec` child is running: its outcome comes from
    /// [`exec::Runner::reap`].
    Running,
    /// The kernel part is done (the snapshot is frozen); the copy to the
    /// evidence directory is the writer thread's, and so is the outcome.
    Save(snapshot::Frozen),
}

impl Triggers {
    /// Carries out the kernel side of one action. `event_json` is the event
    /// that caused it (given to `exec` commands). Nothing here writes to a
    /// regular file system: that is left to the record stage.
    pub fn execute(&mut self, rule: &str, action: &Action, event_json: &str) -> Fired {
        if self.dry_run {
            return Fired::Done(Outcome::ok(format!("dry run: would {}", action.label())));
        }
        Fired::Done(match action {
            Action::Sysrq(letters) => sysrq::fire(&self.host, letters, self.allow_destructive),
            Action::FtraceSnapshot => {
                return match self.snapshots.freeze() {
                    Ok(f) => Fired::Save(f),
                    Err(o) => Fired::Done(o),
                }
            }
            Action::KdumpCheck => kdump::readiness(&self.host, &self.check),
            Action::Log => Outcome::ok("logged"),
            Action::Exec { command, timeout } => {
                return match self.exec.spawn(rule, command, *timeout, event_json) {
                    Ok(()) => Fired::Running,
                    Err(e) => Fired::Done(Outcome::failed(e)),
                };
            }
        })
    }
}

/// Directory for evidence files, created on first use.
pub fn ensure_dir(dir: &PathBuf) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}
