//! The correlate stage of `watchdog run`: one event per incident.
//!
//! The same kill is often reported twice — by the kernel log (the OOM
//! report, `comm[pid]: segfault`) and by tracefs (`mark_victim`, the
//! `do_exit` kprobe) — a few milliseconds apart and in either order; the
//! OOM killer's own SIGKILL is also seen as a death by signal. This stage
//! holds such events briefly, merges the reports of one kill, and drops
//! the victim's SIGKILL. It decides nothing and writes nothing.

use std::time::{Duration, Instant};

use crate::events::{Body, Event};

/// Reports of one kill from kmsg and tracefs are merged when they arrive
/// within this long of each other.
pub const HOLD: Duration = Duration::from_secs(1);
/// A SIGKILL death this soon after an OOM kill of the same process is that
/// kill's own signal, not a second incident.
const OOM_DEATH: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Correlator {
    held: Vec<(Instant, Event)>,
    /// Recent OOM victims (when, pid), to fold their SIGKILL into the kill.
    oom_victims: Vec<(Instant, u32)>,
}

impl Correlator {
    /// Takes one event from a collector: returns it when it can go on at
    /// once, or holds it for its twin report.
    pub fn accept(&mut self, ev: Event, now: Instant) -> Option<Event> {
        if let Body::OomKill(o) = &ev.body {
            if let Some(pid) = o.pid {
                self.oom_victims
                    .retain(|(t, _)| now.saturating_duration_since(*t) < OOM_DEATH);
                self.oom_victims.push((now, pid));
            }
        }
        let Some(key) = hold_key(&ev) else {
            return Some(ev);
        };
        if let Some((_, first)) = self.held.iter_mut().find(|(_, h)| hold_key(h) == Some(key)) {
            merge(first, &ev);
            return None;
        }
        self.held.push((now + HOLD, ev));
        None
    }

    /// Held events whose time is up (all of them when `all`), minus the OOM
    /// victims' own SIGKILLs.
    pub fn release(&mut self, now: Instant, all: bool) -> Vec<Event> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(t, _)| all || *t <= now);
        self.held = keep;
        due.into_iter()
            .map(|(_, ev)| ev)
            .filter(|ev| !self.is_oom_signal(ev, now))
            .collect()
    }

    /// When the next held event is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.iter().map(|(t, _)| *t).min()
    }

    /// The SIGKILL the OOM killer sent to its victim (tracefs sees it as a
    /// death by signal): part of the `oom_kill` already reported.
    fn is_oom_signal(&self, ev: &Event, now: Instant) -> bool {
        let Body::SignalDeath(s) = &ev.body else {
            return false;
        };
        s.signal == 9
            && self.oom_victims.iter().any(|(t, pid)| {
                now.saturating_duration_since(*t) < OOM_DEATH
                    && (s.pid == Some(*pid) || s.tid == Some(*pid))
            })
    }
}

/// Fills what the second report of one kill knows and the first does not.
fn merge(a: &mut Event, b: &Event) {
    match (&mut a.body, &b.body) {
        (Body::OomKill(x), Body::OomKill(y)) => {
            x.comm = x.comm.take().or_else(|| y.comm.clone());
            x.memcg |= y.memcg;
            x.total_vm_kb = x.total_vm_kb.or(y.total_vm_kb);
            x.anon_rss_kb = x.anon_rss_kb.or(y.anon_rss_kb);
            x.file_rss_kb = x.file_rss_kb.or(y.file_rss_kb);
            x.shmem_rss_kb = x.shmem_rss_kb.or(y.shmem_rss_kb);
            x.uid = x.uid.or(y.uid);
            x.oom_score_adj = x.oom_score_adj.or(y.oom_score_adj);
            x.constraint = x.constraint.take().or_else(|| y.constraint.clone());
            x.trigger_comm = x.trigger_comm.take().or_else(|| y.trigger_comm.clone());
            x.trigger_pid = x.trigger_pid.or(y.trigger_pid);
        }
        (Body::SignalDeath(x), Body::SignalDeath(y)) => {
            x.tid = x.tid.or(y.tid);
            x.core_dumped = x.core_dumped.or(y.core_dumped);
            x.sender_pid = x.sender_pid.or(y.sender_pid);
            x.sender_comm = x.sender_comm.take().or_else(|| y.sender_comm.clone());
        }
        _ => {}
    }
    a.kernel_time = a.kernel_time.or(b.kernel_time);
}

/// Key under which reports of one kill are merged.
fn hold_key(ev: &Event) -> Option<(&'static str, u32)> {
    match &ev.body {
        Body::OomKill(o) => o.pid.map(|p| ("oom_kill", p)),
        Body::SignalDeath(s) => s.pid.map(|p| ("signal_death", p)),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::events::{OomKill, SignalDeath};

    fn oom(source: &str, comm: Option<&str>, anon: Option<u64>, memcg: bool) -> Event {
        Event {
            time: None,
            kernel_time: None,
            source: source.into(),
            host: None,
            line: None,
            incident: None,
            body: Body::OomKill(OomKill {
                pid: Some(42),
                comm: comm.map(str::to_string),
                memcg,
                anon_rss_kb: anon,
                ..OomKill::default()
            }),
        }
    }

    pub(crate) fn death(pid: u32, sig: u8) -> Event {
        Event {
            time: None,
            kernel_time: None,
            source: "tracefs".into(),
            host: None,
            line: None,
            incident: None,
            body: Body::SignalDeath(SignalDeath {
                pid: Some(pid),
                tid: Some(pid),
                comm: "hog".into(),
                signal: sig,
                signal_name: crate::events::signal_name(sig).into(),
                core_dumped: Some(false),
                sender_pid: Some(1),
                sender_comm: Some("allocator".into()),
            }),
        }
    }

    #[test]
    fn reports_of_one_kill_merge() {
        let mut a = oom("tracefs", None, Some(10), false);
        merge(&mut a, &oom("kmsg", Some("hog"), Some(99), true));
        let Body::OomKill(o) = &a.body else { panic!() };
        assert_eq!(
            (o.comm.as_deref(), o.anon_rss_kb, o.memcg),
            (Some("hog"), Some(10), true)
        );
        assert_eq!(hold_key(&a), Some(("oom_kill", 42)));
    }

    #[test]
    fn an_oom_victims_sigkill_is_part_of_the_oom_kill() {
        let mut c = Correlator::default();
        let now = Instant::now();
        // tracefs sees the death before the kernel log's report arrives.
        let mut out: Vec<Event> = Vec::new();
        out.extend(c.accept(death(42, 9), now));
        out.extend(c.accept(oom("kmsg", Some("hog"), Some(10), false), now));
        out.extend(c.accept(death(43, 9), now)); // another process, killed by someone
        out.extend(c.accept(death(44, 11), now));
        assert!(out.is_empty(), "kills are held for their twin reports");
        assert_eq!(c.next_due(), Some(now + HOLD));
        assert!(c.release(now, false).is_empty());
        let kinds: Vec<(&str, Option<u32>)> = c
            .release(now + HOLD, false)
            .iter()
            .map(|e| (e.body.kind(), e.body.task().and_then(|(_, p)| p)))
            .collect();
        assert_eq!(
            kinds,
            [
                ("oom_kill", Some(42)),
                ("signal_death", Some(43)),
                ("signal_death", Some(44))
            ]
        );
        assert_eq!(c.next_due(), None);
    }
}
