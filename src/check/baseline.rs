//! Baselines: every value the checks read, saved to a file, and compared
//! with a later run so that what changed since is a finding of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Finding, Status, DRIFT_ID};

const FORMAT: u32 = 1;

/// What `--save-baseline` writes. Values are keyed by their name (sysctl
/// names where one exists): a value several checks read is one value, and
/// a change to it is one drift finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub watchdog_baseline: u32,
    pub saved: String,
    pub host: Option<String>,
    pub kernel: Option<String>,
    /// Value name -> value: compared on the next run.
    pub values: BTreeMap<String, Value>,
    /// Value name -> the checks that read it.
    pub read_by: BTreeMap<String, Vec<String>>,
    /// Values that change by themselves; kept for reference only.
    #[serde(default)]
    pub volatile: BTreeMap<String, Value>,
    /// Each check's status when saved: a change that made the checks
    /// reading it better is an improvement (INFO), not drift to alarm on.
    /// Absent in baselines saved before this field existed.
    #[serde(default)]
    pub statuses: BTreeMap<String, Status>,
}

#[derive(Debug)]
pub struct BaselineError(pub String);

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BaselineError {}

/// The stable values of `findings` by name, with the checks that read each.
fn stable_values(findings: &[Finding]) -> BTreeMap<String, (Value, Vec<String>)> {
    let mut out: BTreeMap<String, (Value, Vec<String>)> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.id != DRIFT_ID) {
        for (k, v) in f.values.iter().filter(|(k, _)| !f.volatile.contains(*k)) {
            let e = out
                .entry(k.clone())
                .or_insert_with(|| (v.clone(), Vec::new()));
            e.1.push(f.id.clone());
        }
    }
    out
}

impl Baseline {
    pub fn from_findings(
        findings: &[Finding],
        host: Option<String>,
        kernel: Option<String>,
        saved: String,
    ) -> Baseline {
        let mut values = BTreeMap::new();
        let mut read_by = BTreeMap::new();
        for (k, (v, ids)) in stable_values(findings) {
            values.insert(k.clone(), v);
            read_by.insert(k, ids);
        }
        let mut volatile = BTreeMap::new();
        for f in findings.iter().filter(|f| f.id != DRIFT_ID) {
            for k in &f.volatile {
                if let Some(v) = f.values.get(k) {
                    volatile.insert(k.clone(), v.clone());
                }
            }
        }
        let statuses = findings
            .iter()
            .filter(|f| f.id != DRIFT_ID)
            .map(|f| (f.id.clone(), f.status))
            .collect();
        Baseline {
            watchdog_baseline: FORMAT,
            saved,
            host,
            kernel,
            values,
            read_by,
            volatile,
            statuses,
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| BaselineError(format!("{}: {e}", path.display())))?;
        text.push('\n');
        // Write beside and rename, so a crash never leaves half a baseline.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| BaselineError(format!("cannot write baseline {}: {e}", path.display())))
    }

    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BaselineError(format!("cannot read baseline {}: {e}", path.display())))?;
        let b: Baseline = serde_json::from_str(&text).map_err(|e| {
            BaselineError(format!("{}: not a watchdog baseline: {e}", path.display()))
        })?;
        if b.watchdog_baseline != FORMAT {
            return Err(BaselineError(format!(
                "{}: baseline format {} is not supported (expected {FORMAT})",
                path.display(),
                b.watchdog_baseline
            )));
        }
        Ok(b)
    }

    /// One finding per value that differs between this baseline and
    /// `findings`, among the values read by checks that ran both times.
    pub fn drift(&self, findings: &[Finding], status: Status) -> Vec<Finding> {
        let ran: std::collections::BTreeSet<&str> =
            findings.iter().map(|f| f.id.as_str()).collect();
        let now = stable_values(findings);
        let mut names: Vec<&String> = self.values.keys().chain(now.keys()).collect();
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            let before = self.values.get(name);
            let after = now.get(name).map(|(v, _)| v);
            if before == after {
                continue;
            }
            let readers: Vec<String> = match (now.get(name), self.read_by.get(name)) {
                (Some((_, ids)), _) => ids.clone(),
                (None, Some(ids)) => ids.clone(),
                (None, None) => Vec::new(),
            };
            // Only values of checks that ran this time (not --skip'ed ones).
            if !readers.iter().any(|id| ran.contains(id.as_str())) {
                continue;
            }
            // A value that changes by itself was not recorded as stable.
            if before.is_none() && self.volatile.contains_key(name) {
                continue;
            }
            // An improvement: every check reading the value that was
            // recorded is now no worse, and one is better (the value moved
            // to the recommended side). Regressions keep `status`.
            let now_status = |id: &str| findings.iter().find(|f| f.id == id).map(|f| f.status);
            let compared: Vec<(Status, Status)> = readers
                .iter()
                .filter_map(|id| Some((*self.statuses.get(id)?, now_status(id)?)))
                .collect();
            let improved = !compared.is_empty()
                && compared.iter().all(|(b, a)| a.severity() <= b.severity())
                && compared.iter().any(|(b, a)| a.severity() < b.severity());
            let s = if improved { Status::Info } else { status };
            out.push(self.drift_finding(&readers, name, before, after, s, improved));
        }
        out
    }

    fn drift_finding(
        &self,
        checks: &[String],
        key: &str,
        before: Option<&Value>,
        after: Option<&Value>,
        status: Status,
        improved: bool,
    ) -> Finding {
        let show = |v: Option<&Value>| match v {
            None => "(not read)".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let id = checks.join(", ");
        let mut d = Finding::new(DRIFT_ID);
        d.value("check", checks.first().cloned().unwrap_or_default());
        d.value("checks", checks.to_vec());
        d.value("value", key);
        d.value("old", before.cloned().unwrap_or(Value::Null));
        d.value("new", after.cloned().unwrap_or(Value::Null));
        d.value("baseline_saved", self.saved.as_str());
        d.value("improved", improved);
        d.set(
            status,
            format!(
                "{id}: {key} {} since the baseline of {}: {} → {}",
                if improved { "improved" } else { "changed" },
                self.saved,
                show(before),
                show(after)
            ),
            if improved {
                "An improvement: record a new baseline with --save-baseline so that a later regression is measured from here."
            } else {
                "If the change was intended, record a new baseline with --save-baseline; otherwise find who changed it (sysctl.d files, tuned profiles, the kernel command line)."
            },
        );
        d
    }
}
