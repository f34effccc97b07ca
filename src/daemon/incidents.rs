//! Which events make an incident, on the loop: decisions only, no I/O.
//!
//! The first event a rule acts on opens an incident (unless the rule says
//! `incident: false`); events of the same kind within that rule's cooldown
//! join it. Every kernel record read goes into a bounded look-back ring,
//! which starts the bundle's `kmsg.txt`; after each SysRq the kernel's
//! answer is read back into it until the dump ends (bounded by count,
//! bytes and time). The incident closes when its cooldown has passed and
//! no answer is still being read. The bundle itself is written by the
//! evidence lane ([`super::evidence`]) from the jobs this returns.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::evidence::IncidentJob;
use crate::engine::Decision;
use crate::events::Event;
use crate::incident::kmsg::{Lookback, Readback, ReadbackEnd};
use crate::incident::IncidentSettings;

/// Where an event goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    /// Into the open incident with this id.
    Join(String),
    /// Into a new incident: the bundle is to be opened with these records
    /// before the trigger.
    Open {
        id: String,
        kind: &'static str,
        opened_at: DateTime<Utc>,
        lookback: String,
    },
}

struct Tracked {
    id: String,
    kind: &'static str,
    until: Instant,
    readback: Option<Readback>,
}

pub struct Incidents {
    settings: Option<IncidentSettings>,
    lookback: Lookback,
    open: Vec<Tracked>,
    boot_id: Option<String>,
}

impl Incidents {
    /// `settings` is `None` when bundles are off (`run.incidents.enabled:
    /// false`): then nothing is kept and nothing opens.
    pub fn new(settings: Option<IncidentSettings>, boot_id: Option<String>) -> Incidents {
        let n = settings.as_ref().map_or(0, |s| s.kmsg_lookback_records);
        Incidents {
            settings,
            lookback: Lookback::new(n),
            open: Vec::new(),
            boot_id,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    pub fn settings(&self) -> Option<&IncidentSettings> {
        self.settings.as_ref()
    }

    /// New settings (SIGHUP); open incidents keep going.
    pub fn reconfigure(&mut self, settings: Option<IncidentSettings>) {
        self.lookback
            .resize(settings.as_ref().map_or(0, |s| s.kmsg_lookback_records));
        self.settings = settings;
    }

    /// Kernel records just read, as `dmesg` prints them: into the ring, and
    /// into `kmsg.txt` of each incident reading back a SysRq answer.
    pub fn records(&mut self, texts: Vec<String>, now: Instant) -> Vec<IncidentJob> {
        let mut jobs = Vec::new();
        if self.settings.is_none() || texts.is_empty() {
            return jobs;
        }
        for t in &mut self.open {
            let Some(rb) = t.readback.as_mut() else {
                continue;
            };
            let mut text = String::new();
            for r in &texts {
                if rb.accept(r, now) {
                    text.push_str(r);
                    text.push('\n');
                }
            }
            if !text.is_empty() {
                jobs.push(IncidentJob::Kmsg {
                    id: t.id.clone(),
                    text,
                });
            }
        }
        for r in texts {
            self.lookback.push(r);
        }
        jobs
    }

    /// Decides where an event goes: the open incident of its kind, a new
    /// one when a rule that opens incidents fired, or none.
    pub fn place(&mut self, ev: &Event, decisions: &[Decision], now: Instant) -> Option<Placed> {
        self.settings.as_ref()?;
        let kind = ev.body.kind();
        if let Some(t) = self.open.iter().find(|t| t.kind == kind) {
            return Some(Placed::Join(t.id.clone()));
        }
        let cooldown = decisions
            .iter()
            .filter(|d| d.incident)
            .map(|d| d.cooldown)
            .max()?;
        Some(self.open(kind, now, cooldown))
    }

    /// Opens an incident that no rule decided on (the end of the previous
    /// boot): it closes at the next [`Incidents::due`].
    pub fn open_now(&mut self, kind: &'static str, now: Instant) -> Option<Placed> {
        self.settings.as_ref()?;
        Some(self.open(kind, now, std::time::Duration::ZERO))
    }

    fn open(&mut self, kind: &'static str, now: Instant, cooldown: std::time::Duration) -> Placed {
        let opened_at = Utc::now();
        let id = crate::incident::new_id(self.boot_id.as_deref(), opened_at);
        self.open.push(Tracked {
            id: id.clone(),
            kind,
            until: now + cooldown,
            readback: None,
        });
        Placed::Open {
            id,
            kind,
            opened_at,
            lookback: self.lookback.text(),
        }
    }

    /// A SysRq was written for this incident: read the kernel's answer
    /// back into its `kmsg.txt`. A second SysRq while the first answer is
    /// still coming restarts the bounds, so no record is taken twice.
    pub fn sysrq_fired(&mut self, id: &str, now: Instant) {
        let Some(limits) = self.settings.as_ref().map(|s| s.readback) else {
            return;
        };
        if let Some(t) = self.open.iter_mut().find(|t| t.id == id) {
            t.readback = Some(Readback::start(limits, now));
        }
    }

    /// Readbacks that ended and incidents whose time is up.
    pub fn due(&mut self, now: Instant) -> Vec<IncidentJob> {
        let mut jobs = Vec::new();
        for t in &mut self.open {
            let Some(rb) = t.readback.as_mut() else {
                continue;
            };
            if let Some(end) = rb.poll(now) {
                if end != ReadbackEnd::Quiet {
                    let (records, bytes) = rb.taken();
                    jobs.push(IncidentJob::Missing {
                        id: t.id.clone(),
                        what: "the rest of the SysRq answer".into(),
                        why: format!("{} ({records} records, {bytes} bytes kept)", end.describe()),
                    });
                }
                t.readback = None;
            }
        }
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|t| t.readback.is_none() && now >= t.until);
        self.open = open;
        jobs.extend(done.into_iter().map(|t| IncidentJob::Close {
            id: t.id,
            closed_at: Utc::now(),
        }));
        jobs
    }

    /// Whether some incident is still reading a SysRq answer back.
    pub fn reading_back(&self) -> bool {
        self.open.iter().any(|t| t.readback.is_some())
    }

    /// When [`Incidents::due`] has something to do next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open
            .iter()
            .map(|t| match &t.readback {
                Some(rb) => rb.next_deadline(),
                None => t.until,
            })
            .min()
    }

    /// Everything still open, closed now (the daemon stops).
    pub fn close_all(&mut self) -> Vec<IncidentJob> {
        std::mem::take(&mut self.open)
            .into_iter()
            .map(|t| IncidentJob::Close {
                id: t.id,
                closed_at: Utc::now(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Body, HungTask};
    use std::time::Duration;

    fn hung(pid: u32) -> Event {
        Event {
            time: None,
            kernel_time: None,
            source: "kmsg".into(),
            host: None,
            line: None,
            incident: None,
            body: Body::HungTask(HungTask {
                comm: Some("w".into()),
                pid: Some(pid),
                blocked_secs: Some(2),
                blocker_comm: None,
                blocker_pid: None,
                blocker_lock: None,
                frames: Vec::new(),
                unreported: None,
            }),
        }
    }

    fn fired(cooldown: u64) -> Vec<Decision> {
        vec![Decision {
            rule: "r".into(),
            actions: Vec::new(),
            incident: true,
            cooldown: Duration::from_secs(cooldown),
        }]
    }

    fn settings() -> IncidentSettings {
        let mut s = IncidentSettings {
            kmsg_lookback_records: 3,
            ..IncidentSettings::default()
        };
        s.readback.quiet = Duration::from_millis(100);
        s
    }

    #[test]
    fn one_incident_from_trigger_through_the_sysrq_answer_to_close() {
        let t0 = Instant::now();
        let mut inc = Incidents::new(Some(settings()), Some("boot".into()));
        let before: Vec<String> = (1..=5).map(|i| format!("[ {i}.0] before {i}")).collect();
        assert!(inc.records(before, t0).is_empty());
        // Nothing fired: no incident.
        assert_eq!(inc.place(&hung(1), &[], t0), None);
        let Some(Placed::Open {
            id, lookback, kind, ..
        }) = inc.place(&hung(1), &fired(60), t0)
        else {
            panic!("a rule fired: an incident opens")
        };
        assert_eq!(kind, "hung_task");
        assert_eq!(
            lookback,
            "[ 3.0] before 3\n[ 4.0] before 4\n[ 5.0] before 5\n"
        );
        // The same kind joins while it is open, even when no rule fires.
        assert_eq!(inc.place(&hung(2), &[], t0), Some(Placed::Join(id.clone())));
        // Records after the trigger go nowhere until a SysRq is fired.
        assert!(inc.records(vec!["x".into()], t0).is_empty());
        inc.sysrq_fired(&id, t0);
        let jobs = inc.records(vec!["sysrq: Show State".into(), "task:a".into()], t0);
        let [IncidentJob::Kmsg { id: kid, text }] = &jobs[..] else {
            panic!("one batch of records")
        };
        assert_eq!((kid, text.as_str()), (&id, "sysrq: Show State\ntask:a\n"));
        // Quiet: the readback ends; the cooldown keeps it open.
        let t1 = t0 + Duration::from_millis(200);
        assert!(inc.due(t1).is_empty());
        assert!(inc.records(vec!["later".into()], t1).is_empty());
        assert_eq!(inc.next_deadline(), Some(t0 + Duration::from_secs(60)));
        let jobs = inc.due(t0 + Duration::from_secs(60));
        assert!(matches!(&jobs[..], [IncidentJob::Close { id: c, .. }] if *c == id));
        // Closed: the next hung task with a firing rule opens a new one.
        assert!(matches!(
            inc.place(&hung(3), &fired(60), t0 + Duration::from_secs(61)),
            Some(Placed::Open { .. })
        ));
    }

    #[test]
    fn a_readback_cut_by_its_bounds_says_so() {
        let t0 = Instant::now();
        let mut s = settings();
        s.readback.max_records = 2;
        let mut inc = Incidents::new(Some(s), None);
        let Some(Placed::Open { id, .. }) = inc.place(&hung(1), &fired(0), t0) else {
            panic!()
        };
        inc.sysrq_fired(&id, t0);
        let jobs = inc.records((0..5).map(|i| format!("r{i}")).collect(), t0);
        let [IncidentJob::Kmsg { text, .. }] = &jobs[..] else {
            panic!()
        };
        assert_eq!(text, "r0\nr1\n");
        let jobs = inc.due(t0);
        assert!(
            matches!(&jobs[..], [IncidentJob::Missing { why, .. }, IncidentJob::Close { .. }] if why.contains("max_records")),
            "{}",
            jobs.len()
        );
    }

    #[test]
    fn rules_that_open_no_incident_and_disabled_bundles_open_none() {
        let t0 = Instant::now();
        let mut inc = Incidents::new(Some(settings()), None);
        let mut d = fired(60);
        d[0].incident = false;
        assert_eq!(inc.place(&hung(1), &d, t0), None);
        let mut off = Incidents::new(None, None);
        assert_eq!(off.place(&hung(1), &fired(60), t0), None);
        assert!(off.records(vec!["x".into()], t0).is_empty());
    }
}
