//! Baselines: every value the checks read, saved to a file, and compared
//! with a later run so that what changed since is a finding of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Finding, Status, DRIFT_ID};

const FORMAT: u32 = 1;

/// What `--save-baseline` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub watchdog_baseline: u32,
    pub saved: String,
    pub host: Option<String>,
    pub kernel: Option<String>,
    /// Check ID -> value name -> value: compared on the next run.
    pub values: BTreeMap<String, BTreeMap<String, Value>>,
    /// Values that change by themselves; kept for reference only.
    #[serde(default)]
    pub volatile: BTreeMap<String, BTreeMap<String, Value>>,
}

#[derive(Debug)]
pub struct BaselineError(pub String);

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BaselineError {}

impl Baseline {
    pub fn from_findings(
        findings: &[Finding],
        host: Option<String>,
        kernel: Option<String>,
        saved: String,
    ) -> Baseline {
        let mut values: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut volatile: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for f in findings.iter().filter(|f| f.id != DRIFT_ID) {
            for (k, v) in &f.values {
                let map = if f.volatile.contains(k) {
                    &mut volatile
                } else {
                    &mut values
                };
                map.entry(f.id.clone())
                    .or_default()
                    .insert(k.clone(), v.clone());
            }
            // A check that read nothing still ran: record it, so that its
            // values appearing later count as a change.
            values.entry(f.id.clone()).or_default();
        }
        Baseline {
            watchdog_baseline: FORMAT,
            saved,
            host,
            kernel,
            values,
            volatile,
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
    /// `findings`, for the checks that ran both times.
    pub fn drift(&self, findings: &[Finding], status: Status) -> Vec<Finding> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        for f in findings {
            let Some(old) = self.values.get(&f.id) else {
                continue;
            };
            let now: BTreeMap<&String, &Value> = f
                .values
                .iter()
                .filter(|(k, _)| !f.volatile.contains(*k))
                .collect();
            let old_vol = self.volatile.get(&f.id).unwrap_or(&empty);
            let mut keys: Vec<&String> = old.keys().chain(now.keys().copied()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let before = old.get(key);
                let after = now.get(key).copied();
                if before == after {
                    continue;
                }
                // Absent now because the check could not read it this time:
                // that is the check's own unknown finding, not drift, unless
                // the value was recorded as stable before.
                if after.is_none() && f.status == Status::Unknown && before.is_none() {
                    continue;
                }
                if before.is_none() && old_vol.contains_key(key) {
                    continue;
                }
                out.push(self.drift_finding(&f.id, key, before, after, status));
            }
        }
        out
    }

    fn drift_finding(
        &self,
        id: &str,
        key: &str,
        before: Option<&Value>,
        after: Option<&Value>,
        status: Status,
    ) -> Finding {
        let show = |v: Option<&Value>| match v {
            None => "(not read)".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let mut d = Finding::new(DRIFT_ID);
        d.value("check", id);
        d.value("value", key);
        d.value("old", before.cloned().unwrap_or(Value::Null));
        d.value("new", after.cloned().unwrap_or(Value::Null));
        d.value("baseline_saved", self.saved.as_str());
        d.set(
            status,
            format!(
                "{id}: {key} changed since the baseline of {}: {} → {}",
                self.saved,
                show(before),
                show(after)
            ),
            "If the change was intended, record a new baseline with --save-baseline; otherwise find who changed it (sysctl.d files, tuned profiles, the kernel command line).",
        );
        d
    }
}
