//! `watchdog run`: one thread, one poll loop. Wait on the file descriptors
//! (kmsg, trace_pipe, the signal pipe) with a deadline; let each collector
//! drain; let the engine decide; let the triggers act; log everything.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::collectors::kmsg::{Drained, Kmsg, Start};
use crate::collectors::proc::ProcPoller;
use crate::collectors::tracefs::Tracefs;
use crate::config::{Config, RunConfig};
use crate::engine::{compile_rules, Action, Engine};
use crate::eventlog::EventLog;
use crate::events::{self, Body, Event, WallTime};
use crate::host::{paths, Host};
use crate::notify::Notifier;
use crate::triggers::{exec, snapshot::Snapshots, Outcome, Triggers};

/// Reports of one kill from kmsg and tracefs are merged when they arrive
/// within this long of each other: one event per incident.
const HOLD: Duration = Duration::from_secs(1);
/// A SIGKILL death this soon after an OOM kill of the same process is that
/// kill's own signal, not a second incident.
const OOM_DEATH: Duration = Duration::from_secs(10);
/// How often a missing /dev/kmsg is retried.
const KMSG_RETRY: Duration = Duration::from_secs(10);
/// The longest sleep, so that a clock jump or a lost wake-up costs little.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Command-line options of `watchdog run`.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    /// Overrides `run.event_log` (`-` for stdout).
    pub events: Option<String>,
    pub dry_run: bool,
    pub config_path: Option<PathBuf>,
}

/// A journald priority prefix and a one-line summary of an event.
pub fn summary(ev: &Event) -> (u8, String) {
    let pid = |p: Option<u32>| p.map_or("?".to_string(), |p| p.to_string());
    match &ev.body {
        Body::HungTask(h) if h.comm.is_none() => (
            4,
            format!(
                "{} hung task(s) counted by the kernel but not reported (hung_task_warnings exhausted?)",
                h.unreported.unwrap_or(1)
            ),
        ),
        Body::HungTask(h) => (
            4,
            format!(
                "hung task: {} (pid {}) blocked for more than {} s",
                h.comm.as_deref().unwrap_or("?"),
                pid(h.pid),
                h.blocked_secs.map_or("?".into(), |s| s.to_string())
            ),
        ),
        Body::OomKill(o) => (
            4,
            format!(
                "OOM kill{}: {} (pid {})",
                if o.memcg { " (memory cgroup)" } else { "" },
                o.comm.as_deref().unwrap_or("?"),
                pid(o.pid)
            ),
        ),
        Body::SignalDeath(s) => (
            5,
            format!(
                "{} (pid {}) killed by {}{}",
                s.comm,
                pid(s.pid),
                s.signal_name,
                match (&s.sender_comm, s.sender_pid) {
                    (Some(c), Some(p)) => format!(" from {c} (pid {p})"),
                    _ => String::new(),
                }
            ),
        ),
        Body::SoftLockup(s) => (
            3,
            format!(
                "soft lockup on CPU {}",
                s.cpu.map_or("?".into(), |c| c.to_string())
            ),
        ),
        Body::RcuStall(s) => (3, format!("RCU stall: {}", s.summary)),
        Body::Oops(s) => (2, format!("oops: {}", s.summary)),
        Body::Panic(s) => (0, format!("panic: {}", s.summary)),
        Body::Sysrq(s) => (6, format!("SysRq: {}", s.command)),
        Body::DentryPressure(d) => (
            4,
            format!(
                "dentry pressure: {} ({} dentries, {} unused, vfs_cache_pressure {})",
                d.reason.as_deref().unwrap_or("threshold crossed"),
                d.nr_dentry,
                d.nr_unused,
                d.vfs_cache_pressure
            ),
        ),
        Body::Lost(l) => (
            4,
            format!("{} kernel messages lost before they could be read", l.count),
        ),
        Body::Action(a) => (
            if a.ok { 5 } else { 3 },
            format!(
                "{}action {} for rule {}: {}{}",
                if a.dry_run { "dry run: " } else { "" },
                a.action,
                a.rule,
                if a.ok { "" } else { "FAILED: " },
                a.detail
            ),
        ),
    }
}

fn now_wall() -> WallTime {
    use chrono::Timelike;
    let now = chrono::Local::now();
    // Microseconds are plenty, and print as six digits.
    let now = now
        .with_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    WallTime {
        local: now.naive_local(),
        offset: Some(*now.offset()),
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

struct Daemon {
    host: Host,
    cfg: RunConfig,
    check: crate::config::CheckConfig,
    args: RunArgs,
    engine: Engine,
    triggers: Triggers,
    log: EventLog,
    kmsg: Option<Kmsg>,
    kmsg_retry: Instant,
    tracefs: Option<Tracefs>,
    proc: ProcPoller,
    next_proc: Instant,
    next_kdump: Instant,
    notifier: Notifier,
    next_ping: Option<Instant>,
    hostname: Option<String>,
    held: Vec<(Instant, Event)>,
    /// Recent OOM victims (when, pid), to fold their SIGKILL into the kill.
    oom_victims: Vec<(Instant, u32)>,
    metrics: crate::metrics::RunMetrics,
    next_metrics: Instant,
    oom_reported: u64,
    hung_reported: u64,
    events_seen: u64,
    actions_taken: u64,
}

fn say(prio: u8, msg: &str) {
    // One line each, journald reads the <N> prefix as the priority.
    eprintln!("<{prio}>{}", msg.replace('\n', " "));
}

impl Daemon {
    fn new(host: Host, config: Config, args: RunArgs) -> Result<Daemon, String> {
        let cfg = config.run.clone();
        let rules = compile_rules(&cfg.rules, "run.rules", cfg.allow_destructive).map_err(|e| {
            e.iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let target = args.events.clone().unwrap_or_else(|| cfg.event_log.clone());
        let now = Instant::now();
        let notifier = Notifier::from_env();
        let next_ping = notifier.watchdog_interval.map(|i| now + i);
        Ok(Daemon {
            triggers: Triggers {
                host: host.clone(),
                allow_destructive: cfg.allow_destructive,
                dry_run: args.dry_run,
                snapshots: Snapshots {
                    host: host.clone(),
                    instance_dir: None,
                    unavailable: "tracefs is not set up".into(),
                    dir: PathBuf::from(&cfg.evidence_dir),
                    keep: cfg.tracefs.snapshot_keep,
                    max_bytes: cfg.tracefs.snapshot_max_bytes,
                },
                check: config.check.clone(),
                exec: exec::Runner::default(),
            },
            log: EventLog::new(&target, cfg.event_log_max_bytes, cfg.event_log_keep),
            engine: Engine::new(rules),
            proc: ProcPoller::new(&host, cfg.proc.clone()),
            next_proc: now + Duration::from_secs(cfg.proc.interval_secs),
            next_kdump: now + Duration::from_secs(cfg.kdump_check.interval_hours * 3600),
            hostname: host.hostname(),
            check: config.check,
            host,
            cfg,
            args,
            kmsg: None,
            kmsg_retry: now,
            tracefs: None,
            notifier,
            next_ping,
            held: Vec::new(),
            oom_victims: Vec::new(),
            metrics: crate::metrics::RunMetrics {
                start_time: chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
                ..Default::default()
            },
            next_metrics: now,
            oom_reported: 0,
            hung_reported: 0,
            events_seen: 0,
            actions_taken: 0,
        })
    }

    /// What a daemon does for itself before it watches: survive the OOMs
    /// and the swap storms it is there to report.
    fn protect_self(&self) {
        if !self.host.is_live() {
            return;
        }
        let adj = self.cfg.oom_score_adj.to_string();
        if let Err(e) = std::fs::write(self.host.path(paths::SELF_OOM_SCORE_ADJ), &adj) {
            say(4, &format!("cannot set own oom_score_adj to {adj}: {e}"));
        }
        if self.cfg.mlockall {
            use nix::sys::mman::{mlockall, MlockAllFlags};
            if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
                say(
                    4,
                    &format!("cannot lock memory (mlockall): {e}; continuing unlocked"),
                );
            }
        }
    }

    fn open_kmsg(&mut self) {
        let state = PathBuf::from(&self.cfg.state_file);
        match Kmsg::open(&self.host, state, self.cfg.kmsg_start) {
            Ok((k, start)) => {
                let from = match start {
                    Start::End => "new messages only".to_string(),
                    Start::Beginning => "the start of the kernel buffer".to_string(),
                    Start::After(s) => format!("after record {s} (saved position)"),
                };
                say(
                    6,
                    &format!(
                        "reading {} from {from}",
                        self.host.path(paths::KMSG).display()
                    ),
                );
                self.kmsg = Some(k);
            }
            Err(e) => {
                say(
                    3,
                    &format!(
                        "cannot open {}: {e}; retrying every {} s",
                        self.host.path(paths::KMSG).display(),
                        KMSG_RETRY.as_secs()
                    ),
                );
                self.kmsg_retry = Instant::now() + KMSG_RETRY;
            }
        }
    }

    fn setup_tracefs(&mut self) {
        if !self.cfg.tracefs.enabled {
            self.triggers.snapshots.unavailable = "tracefs is disabled in the configuration".into();
            return;
        }
        match Tracefs::setup(&self.host, &self.cfg.tracefs) {
            Ok(t) => {
                for n in &t.notes {
                    say(4, n);
                }
                self.triggers.snapshots.instance_dir = t.flight_dir();
                if self.triggers.snapshots.instance_dir.is_none() {
                    self.triggers.snapshots.unavailable =
                        "no flight recorder on this kernel".into();
                }
                say(
                    6,
                    &format!(
                        "tracefs at /{}: instance {} set up",
                        t.root, self.cfg.tracefs.instance
                    ),
                );
                self.tracefs = Some(t);
            }
            Err(e) => {
                say(
                    4,
                    &format!("{e}: no signal-death tracing, no OOM victim events, no snapshots"),
                );
                self.triggers.snapshots.unavailable = e;
            }
        }
    }

    fn status(&self) {
        self.notifier.send(&format!(
            "STATUS=watching{}{}; {} events, {} actions",
            if self.kmsg.is_some() { " kmsg" } else { "" },
            if self.tracefs.is_some() {
                " tracefs"
            } else {
                ""
            },
            self.events_seen,
            self.actions_taken
        ));
    }

    /// Stamps, holds or emits one event from a collector.
    fn accept(&mut self, mut ev: Event, now: Instant) {
        if ev.time.is_none() {
            ev.time = Some(now_wall());
        }
        if ev.host.is_none() {
            ev.host.clone_from(&self.hostname);
        }
        if let Body::OomKill(o) = &ev.body {
            if let Some(pid) = o.pid {
                self.oom_victims
                    .retain(|(t, _)| now.saturating_duration_since(*t) < OOM_DEATH);
                self.oom_victims.push((now, pid));
            }
        }
        if let Some(key) = hold_key(&ev) {
            if let Some((_, first)) = self.held.iter_mut().find(|(_, h)| hold_key(h) == Some(key)) {
                merge(first, &ev);
                return;
            }
            self.held.push((now + HOLD, ev));
            return;
        }
        self.emit(ev, now);
    }

    fn release_held(&mut self, now: Instant, all: bool) {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(t, _)| all || *t <= now);
        self.held = keep;
        for (_, ev) in due {
            if self.is_oom_signal(&ev, now) {
                continue;
            }
            self.emit(ev, now);
        }
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

    fn write(&mut self, ev: &Event) {
        let (prio, text) = summary(ev);
        say(prio, &text);
        if let Some(err) = self.log.write(&ev.to_json()) {
            say(3, &err);
        }
    }

    /// Logs an event and runs whatever rules it fires.
    fn emit(&mut self, ev: Event, now: Instant) {
        self.events_seen += 1;
        *self
            .metrics
            .events
            .entry(ev.body.kind().to_string())
            .or_default() += 1;
        if let Body::Lost(l) = &ev.body {
            self.metrics.kmsg_lost += l.count;
        }
        if ev.source != "proc" {
            match ev.body.kind() {
                "oom_kill" => self.oom_reported += 1,
                "hung_task" => self.hung_reported += 1,
                _ => {}
            }
        }
        self.write(&ev);
        let decisions = self.engine.decide(&ev, now);
        let json = ev.to_json();
        for d in &decisions {
            for action in &d.actions {
                if let Some(outcome) = self.triggers.execute(&d.rule, action, &json) {
                    self.action_event(&d.rule, &action.label(), outcome);
                }
            }
        }
        if !decisions.is_empty() {
            // Never handle the records behind an action twice.
            self.save_position(true);
            self.status();
        }
    }

    /// Saves the kmsg position (at most once a second unless `force`);
    /// a failure is reported, never fatal.
    fn save_position(&mut self, force: bool) {
        if let Some(k) = self.kmsg.as_mut() {
            if let Err(e) = k.save_position(force) {
                say(
                    4,
                    &format!(
                        "cannot save the kmsg position to {}: {e}",
                        self.cfg.state_file
                    ),
                );
            }
        }
    }

    fn action_event(&mut self, rule: &str, action: &str, outcome: Outcome) {
        self.actions_taken += 1;
        *self
            .metrics
            .actions
            .entry((rule.to_string(), action.to_string(), outcome.ok))
            .or_default() += 1;
        let ev = Event {
            time: Some(now_wall()),
            kernel_time: None,
            source: "watchdog".into(),
            host: self.hostname.clone(),
            line: None,
            body: Body::Action(events::Action {
                rule: rule.to_string(),
                action: action.to_string(),
                ok: outcome.ok,
                detail: outcome.detail,
                dry_run: self.args.dry_run,
            }),
        };
        self.write(&ev);
    }

    fn kdump_check(&mut self) {
        let outcome = if self.args.dry_run {
            self.triggers
                .execute("kdump-schedule", &Action::KdumpCheck, "{}")
                .unwrap_or_else(|| Outcome::failed("no result"))
        } else {
            let (outcome, statuses) = crate::triggers::kdump::check(&self.host, &self.check);
            self.metrics.checks.extend(statuses);
            outcome
        };
        self.action_event("kdump-schedule", "kdump_check", outcome);
    }

    fn write_metrics(&mut self, now: Instant) {
        if self.cfg.metrics_file.is_empty() {
            return;
        }
        self.next_metrics = now + Duration::from_secs(self.cfg.metrics_interval_secs);
        let path = PathBuf::from(&self.cfg.metrics_file);
        if let Err(e) = crate::metrics::write_atomic(&path, &self.metrics.render()) {
            say(
                4,
                &format!("cannot write metrics to {}: {e}", path.display()),
            );
        }
    }

    fn reload(&mut self) {
        self.log.reopen();
        let Some(path) = self.args.config_path.clone() else {
            say(
                5,
                "SIGHUP: event log reopened (no --config file to re-read)",
            );
            return;
        };
        self.notifier.send("RELOADING=1");
        match Config::load(&path) {
            Ok(c) => match compile_rules(&c.run.rules, "run.rules", c.run.allow_destructive) {
                Ok(rules) => {
                    let kept = self.engine.reload(rules);
                    self.triggers.allow_destructive = c.run.allow_destructive;
                    self.triggers.snapshots.keep = c.run.tracefs.snapshot_keep;
                    self.triggers.snapshots.max_bytes = c.run.tracefs.snapshot_max_bytes;
                    self.triggers.snapshots.dir = PathBuf::from(&c.run.evidence_dir);
                    self.triggers.check = c.check.clone();
                    self.proc.cfg = c.run.proc.clone();
                    self.check = c.check;
                    self.cfg.rules = c.run.rules;
                    self.cfg.proc = c.run.proc;
                    say(5, &format!("SIGHUP: {} reloaded ({} rules); {kept} unchanged rules keep their windows and cooldowns; collector settings apply at the next start", path.display(), self.engine.rules().count()));
                }
                Err(e) => say(
                    3,
                    &format!(
                        "SIGHUP: {} not reloaded: {} errors, keeping the running configuration",
                        path.display(),
                        e.len()
                    ),
                ),
            },
            Err(e) => say(
                3,
                &format!("SIGHUP: keeping the running configuration: {e}"),
            ),
        }
        self.notifier.send("READY=1");
        self.status();
    }

    fn next_wakeup(&self, now: Instant) -> Instant {
        let mut t = now + MAX_SLEEP;
        let mut at = |d: Option<Instant>| {
            if let Some(d) = d {
                t = t.min(d);
            }
        };
        at(self.kmsg.as_ref().and_then(|k| k.reader().quiet_deadline()));
        at(Some(self.next_proc));
        at(Some(self.next_kdump));
        at(self.next_ping);
        if !self.cfg.metrics_file.is_empty() {
            at(Some(self.next_metrics));
        }
        at(self.held.iter().map(|(t, _)| *t).min());
        if !self.triggers.exec.is_idle() {
            at(Some(now + Duration::from_millis(100)));
        }
        match &self.kmsg {
            None => at(Some(self.kmsg_retry)),
            // A regular file cannot be polled: read it on a short timer.
            Some(k) if k.poll_fd().is_none() => at(Some(now + Duration::from_millis(200))),
            Some(_) => {}
        }
        t
    }

    fn drain_kmsg(&mut self, now: Instant) {
        let Some(k) = self.kmsg.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        loop {
            match k.drain(&mut out) {
                Ok(Drained::More) => continue,
                Ok(_) => break,
                Err(e) => {
                    say(3, &format!("reading kmsg failed: {e}; reopening"));
                    self.kmsg = None;
                    self.kmsg_retry = now;
                    break;
                }
            }
        }
        if let Some(k) = self.kmsg.as_mut() {
            k.flush_if_quiet(now, &mut out);
        }
        for ev in out {
            self.accept(ev, now);
        }
        self.save_position(false);
    }

    fn timers(&mut self, now: Instant) {
        if self.kmsg.is_none() && now >= self.kmsg_retry {
            self.open_kmsg();
        }
        if let Some(t) = self.tracefs.as_mut() {
            let mut out = Vec::new();
            t.drain(now, &mut out);
            for ev in out {
                self.accept(ev, now);
            }
        }
        if now >= self.next_proc {
            self.next_proc = now + Duration::from_secs(self.cfg.proc.interval_secs);
            let mut out = Vec::new();
            self.proc.poll(
                now,
                std::mem::take(&mut self.oom_reported),
                std::mem::take(&mut self.hung_reported),
                &mut out,
            );
            for ev in out {
                self.accept(ev, now);
            }
        }
        if now >= self.next_kdump {
            self.next_kdump = now + Duration::from_secs(self.cfg.kdump_check.interval_hours * 3600);
            self.kdump_check();
        }
        for f in self.triggers.exec.reap(now) {
            self.action_event(&f.rule, &f.label, f.outcome);
        }
        self.release_held(now, false);
        if now >= self.next_metrics {
            self.write_metrics(now);
        }
        if let Some(p) = self.next_ping {
            if now >= p {
                self.notifier.send("WATCHDOG=1");
                self.next_ping = self.notifier.watchdog_interval.map(|i| now + i);
            }
        }
    }

    fn shutdown(&mut self) {
        self.notifier.send("STOPPING=1");
        let now = Instant::now();
        let mut out = Vec::new();
        if let Some(k) = self.kmsg.as_mut() {
            k.finish(&mut out);
        }
        for ev in out {
            self.accept(ev, now);
        }
        self.release_held(now, true);
        for f in self.triggers.exec.kill_all() {
            self.action_event(&f.rule, &f.label, f.outcome);
        }
        self.save_position(true);
        if let Some(mut t) = self.tracefs.take() {
            t.cleanup();
        }
        self.write_metrics(Instant::now());
        say(
            6,
            &format!(
                "stopped after {} events and {} actions",
                self.events_seen, self.actions_taken
            ),
        );
    }
}

/// Runs until SIGTERM or SIGINT. Errors only when it cannot start at all.
pub fn run(host: Host, config: Config, args: RunArgs) -> Result<(), String> {
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let (mut wake_r, wake_w) =
        UnixStream::pair().map_err(|e| format!("cannot create the signal pipe: {e}"))?;
    wake_r.set_nonblocking(true).map_err(|e| e.to_string())?;
    wake_w.set_nonblocking(true).map_err(|e| e.to_string())?;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for (sig, flag) in [(SIGTERM, &term), (SIGINT, &term), (SIGHUP, &hup)] {
        signal_hook::flag::register(sig, Arc::clone(flag)).map_err(|e| e.to_string())?;
        let w = wake_w.try_clone().map_err(|e| e.to_string())?;
        signal_hook::low_level::pipe::register(sig, w).map_err(|e| e.to_string())?;
    }

    let mut d = Daemon::new(host, config, args)?;
    if d.args.dry_run {
        say(5, "dry run: decisions are logged, nothing is done");
    }
    d.protect_self();
    d.open_kmsg();
    d.setup_tracefs();
    say(
        6,
        &format!(
            "events go to {}; {} rules",
            d.log.describe(),
            d.engine.rules().count()
        ),
    );
    if d.cfg.kdump_check.at_start {
        d.kdump_check();
    }
    d.notifier.send("READY=1");
    d.status();

    while !term.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wake = d.next_wakeup(now);
        let timeout = wake.saturating_duration_since(now);
        let ms = i32::try_from(timeout.as_millis().min(60_000)).unwrap_or(60_000);
        {
            let mut fds = vec![PollFd::new(wake_r.as_fd(), PollFlags::POLLIN)];
            if let Some(fd) = d.kmsg.as_ref().and_then(|k| k.poll_fd()) {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            if let Some(fd) = d.tracefs.as_ref().and_then(|t| t.poll_fd()) {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            let _ = nix::poll::poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            );
        }
        let mut sink = [0u8; 64];
        while matches!(wake_r.read(&mut sink), Ok(n) if n > 0) {}
        if term.load(Ordering::Relaxed) {
            break;
        }
        if hup.swap(false, Ordering::Relaxed) {
            d.reload();
        }
        let now = Instant::now();
        d.drain_kmsg(now);
        d.timers(now);
    }
    d.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{OomKill, SignalDeath};

    fn oom(source: &str, comm: Option<&str>, anon: Option<u64>, memcg: bool) -> Event {
        Event {
            time: None,
            kernel_time: None,
            source: source.into(),
            host: None,
            line: None,
            body: Body::OomKill(OomKill {
                pid: Some(42),
                comm: comm.map(str::to_string),
                memcg,
                anon_rss_kb: anon,
                ..OomKill::default()
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

    fn death(pid: u32, sig: u8) -> Event {
        Event {
            time: None,
            kernel_time: None,
            source: "tracefs".into(),
            host: None,
            line: None,
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
    fn an_oom_victims_sigkill_is_part_of_the_oom_kill() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.run.event_log = dir.path().join("events.jsonl").display().to_string();
        let mut d = Daemon::new(Host::new(dir.path()), config, RunArgs::default()).unwrap();
        let now = Instant::now();
        // tracefs sees the death before the kernel log's report arrives.
        d.accept(death(42, 9), now);
        d.accept(oom("kmsg", Some("hog"), Some(10), false), now);
        d.accept(death(43, 9), now); // another process, killed by someone
        d.accept(death(44, 11), now);
        d.release_held(now + HOLD, true);
        let log = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
        let kinds: Vec<(String, u64)> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["kind"] != "action")
            .map(|v| {
                (
                    v["kind"].as_str().unwrap().to_string(),
                    v["pid"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("oom_kill".to_string(), 42),
                ("signal_death".to_string(), 43),
                ("signal_death".to_string(), 44)
            ]
        );
    }

    #[test]
    fn summaries_have_priorities() {
        let mut ev = death(5, 9);
        if let Body::SignalDeath(s) = &mut ev.body {
            s.comm = "sleep".into();
            s.sender_pid = Some(7);
            s.sender_comm = Some("kill".into());
        }
        assert_eq!(
            summary(&ev),
            (
                5,
                "sleep (pid 5) killed by SIGKILL from kill (pid 7)".into()
            )
        );
    }
}
