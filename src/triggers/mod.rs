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

impl Triggers {
    /// Carries out one action. `event_json` is the event that caused it
    /// (given to `exec` commands). Exec actions finish later: their outcome
    /// comes from [`exec::Runner::reap`]; this returns `None` for them.
    pub fn execute(&mut self, rule: &str, action: &Action, event_json: &str) -> Option<Outcome> {
        if self.dry_run {
            return Some(Outcome::ok(format!("dry run: would {}", action.label())));
        }
        Some(match action {
            Action::Sysrq(letters) => sysrq::fire(&self.host, letters, self.allow_destructive),
            Action::FtraceSnapshot => self.snapshots.take(),
            Action::KdumpCheck => kdump::readiness(&self.host, &self.check),
            Action::Log => Outcome::ok("logged"),
            Action::Exec { command, timeout } => {
                return match self.exec.spawn(rule, command, *timeout, event_json) {
                    Ok(()) => None,
                    Err(e) => Some(Outcome::failed(e)),
                };
            }
        })
    }
}

/// Directory for evidence files, created on first use.
pub fn ensure_dir(dir: &PathBuf) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}
