//! kdump readiness: the same logic as `watchdog check`'s kdump checks.

use super::Outcome;
use crate::check::CheckConfig;
use crate::check::{run_checks, Selection, Status};
use crate::host::Host;

pub fn readiness(host: &Host, cfg: &CheckConfig) -> Outcome {
    check(host, cfg).0
}

/// The outcome and each kdump check's status (for metrics).
pub fn check(host: &Host, cfg: &CheckConfig) -> (Outcome, Vec<(String, Status)>) {
    let sel = Selection {
        only: vec![
            "kdump-reserved".into(),
            "kdump-loaded".into(),
            "kdump-size".into(),
        ],
        skip: Vec::new(),
    };
    let findings = run_checks(host, cfg, &sel);
    let ok = findings
        .iter()
        .all(|f| matches!(f.status, Status::Ok | Status::Info));
    let detail = findings
        .iter()
        .map(|f| format!("{} {}: {}", f.id, f.status, f.summary))
        .collect::<Vec<_>>()
        .join("; ");
    let statuses = findings.iter().map(|f| (f.id.clone(), f.status)).collect();
    (Outcome { ok, detail }, statuses)
}
