//! `watchdog run`: a pipeline of stages on one poll loop, and a writer
//! thread for the disk.
//!
//! collect (kmsg, tracefs, /proc) → correlate (one event per incident) →
//! decide (the engine's rules) → act (SysRq, the tracefs snapshot swap:
//! the kernel only) → record (event log, stderr, position, metrics,
//! snapshot copies: [`record`], on its own thread behind a bounded queue).
//! The loop never writes to a regular file system, so a hung disk cannot
//! stop it from acting on the next hang.

mod correlate;
mod evidence;
mod incidents;
mod record;
mod report;

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::collectors::kmsg::{Drained, Kmsg, Start};
use crate::collectors::proc::ProcPoller;
use crate::collectors::tracefs::Tracefs;
use crate::config::Config;
use crate::engine::{Action, Decision, Engine};
use crate::eventlog::EventLog;
use crate::events::{self, Body, Event, WallTime};
use crate::host::{paths, Host};
use crate::notify::Notifier;
use crate::run::settings::RunConfig;
use crate::triggers::{exec, snapshot::Snapshots, Fired, Outcome, Triggers};
use correlate::Correlator;
use evidence::{IncidentJob, Opening};
use incidents::{Incidents, Placed};
use record::{say, Done, Job, Recorder};

/// How often a missing /dev/kmsg is retried.
const KMSG_RETRY: Duration = Duration::from_secs(10);
/// The longest sleep, so that a clock jump or a lost wake-up costs little.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// While events wait to be reported as lost, retry this often.
const LOST_RETRY: Duration = Duration::from_secs(1);
/// How long a stop waits for the kernel's answer to a SysRq fired at the
/// stop itself.
const STOP_READBACK: Duration = Duration::from_secs(2);
/// How long a stop waits for the writer to finish what is queued.
const WRITER_PATIENCE: Duration = Duration::from_secs(5);

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
            match &l.reason {
                Some(r) => format!("{} events lost: {r}", l.count),
                None => format!("{} kernel messages lost before they could be read", l.count),
            },
        ),
        Body::PreviousBoot(p) => (
            if p.cause == "clean_shutdown" || p.cause == "reboot" {
                5
            } else {
                2
            },
            format!("previous boot ended: {}: {}", p.cause, p.summary),
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
        other => other
            .headline()
            .unwrap_or_else(|| (5, other.kind().to_string())),
    }
}

struct Daemon {
    host: Host,
    cfg: RunConfig,
    check: crate::check::CheckConfig,
    args: RunArgs,
    engine: Engine,
    triggers: Triggers,
    rec: Recorder,
    /// Syslog targets (`run.forward`); empty when there are none.
    forward: crate::forward::Forwarder,
    fwd_msg: crate::forward::message::Builder,
    /// Where events go, for messages.
    log_target: String,
    kmsg: Option<Kmsg>,
    kmsg_retry: Instant,
    tracefs: Option<Tracefs>,
    proc: ProcPoller,
    next_proc: Instant,
    next_kdump: Instant,
    notifier: Notifier,
    next_ping: Option<Instant>,
    hostname: Option<String>,
    correlate: Correlator,
    incidents: Incidents,
    metrics: crate::run::metrics::RunMetrics,
    next_metrics: Instant,
    oom_reported: u64,
    hung_reported: u64,
    events_seen: u64,
    actions_taken: u64,
    /// `run`'s stop stamp for the previous-boot report, written at SIGTERM.
    boot_stop: Option<crate::lastboot::Stopper>,
    /// The armed PSI triggers (`run.psi`).
    psi: Option<crate::collectors::psi::Psi>,
    /// Site patterns (`patterns:`), handed to the kmsg parser.
    patterns: std::sync::Arc<crate::patterns::SitePatterns>,
}

impl Daemon {
    /// `waker` is the write end of the loop's wake-up pipe, handed to the
    /// writer thread so its results wake the poll.
    fn new(host: Host, config: Config, args: RunArgs, waker: UnixStream) -> Result<Daemon, String> {
        let cfg = config.run.clone();
        let patterns = std::sync::Arc::new(config.site_patterns());
        let settings = cfg
            .compile("run", &patterns.fields())
            .map_err(|e| crate::error::one_line(&e))?;
        let target = args.events.clone().unwrap_or_else(|| cfg.event_log.clone());
        let log = EventLog::new(&target, cfg.event_log_max_bytes, cfg.event_log_keep);
        let log_target = log.describe();
        let journal = {
            use crate::run::settings::JournalMode;
            let socket = host.path(paths::JOURNAL_SOCKET);
            match cfg.journal {
                JournalMode::Off => None,
                JournalMode::On => Some(socket),
                JournalMode::Auto => socket.exists().then_some(socket),
            }
        };
        let rec = Recorder::start(log, cfg.record_queue, waker, journal)
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        let incidents = Incidents::new(settings.incidents, host.read_value(paths::BOOT_ID).ok());
        let targets = cfg
            .forward
            .iter()
            .map(crate::forward::TargetConfig::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let forward = crate::forward::Forwarder::start(
            &targets,
            &crate::forward::run_notice(host.hostname()),
            say,
        )?;
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
            rec,
            forward,
            fwd_msg: crate::forward::message::Builder::default(),
            log_target,
            engine: Engine::new(settings.rules),
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
            correlate: Correlator::default(),
            incidents,
            metrics: crate::run::metrics::RunMetrics {
                start_time: chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
                ..Default::default()
            },
            next_metrics: now,
            oom_reported: 0,
            hung_reported: 0,
            events_seen: 0,
            actions_taken: 0,
            boot_stop: None,
            psi: None,
            patterns,
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

    /// A message for stderr from the loop: through the writer, in order
    /// with the events, so that a blocked journal cannot block the loop.
    fn tell(&mut self, prio: u8, msg: String) {
        self.rec.send(Job::Say(prio, msg));
    }

    /// Arms the PSI triggers; a kernel without PSI is one message.
    fn setup_psi(&mut self) {
        if !self.cfg.psi.enabled {
            return;
        }
        match crate::collectors::psi::Psi::open(&self.host, &self.cfg.psi) {
            Ok((p, problems)) => {
                for m in problems {
                    self.tell(4, m);
                }
                let msg = format!("pressure triggers armed: {}", p.describe());
                self.tell(6, msg);
                self.psi = Some(p);
            }
            Err(m) => self.tell(4, m),
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
                let msg = format!(
                    "reading {} from {from}",
                    self.host.path(paths::KMSG).display()
                );
                self.tell(6, msg);
                let mut k = k;
                k.reader_mut().keep_text = self.incidents.enabled();
                k.set_patterns(self.patterns.clone());
                self.kmsg = Some(k);
            }
            Err(e) => {
                let msg = format!(
                    "cannot open {}: {e}; retrying every {} s",
                    self.host.path(paths::KMSG).display(),
                    KMSG_RETRY.as_secs()
                );
                self.tell(3, msg);
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

    /// What ended the previous boot, once per boot id: the
    /// `previous_boot` event goes through the pipeline (rules may act on
    /// it), the incidents of that boot straight to the record stage (they
    /// are history: no rule acts on them). Returns the report, whose
    /// `evidence_files` an incident bundle can hold.
    fn previous_boot(&mut self) -> Option<crate::lastboot::Report> {
        let start = match crate::lastboot::run_start(&self.host, &self.cfg.state_file) {
            Ok(s) => s,
            Err(e) => {
                self.tell(4, e);
                return None;
            }
        };
        for w in &start.writes {
            self.rec.send(Job::State(w.clone()));
        }
        self.boot_stop = Some(start.stopper());
        let report = start.report?;
        let now = Instant::now();
        let mut ev = report.event(self.hostname.clone());
        if !report.cause.is_clean() && report.readable {
            // Its own bundle: copies of the evidence (pstore records,
            // vmcore-dmesg.txt; never a vmcore) and what the journal said.
            // (Nothing readable at all: the event says so, a bundle would
            // hold nothing.)
            let placed = self.incidents.open_now("previous_boot", now);
            ev.incident = placed.and_then(|p| self.open_bundle(p));
            if let Some(id) = &ev.incident {
                for (i, src) in report.evidence_files.iter().enumerate() {
                    let base = src
                        .file_name()
                        .map_or_else(|| format!("file-{i}"), |n| n.to_string_lossy().into_owned());
                    self.rec.send(Job::Incident(IncidentJob::Copy {
                        id: id.clone(),
                        src: src.clone(),
                        name: format!("previous-boot/{base}"),
                    }));
                }
                for (name, text) in &report.captured {
                    self.rec.send(Job::Incident(IncidentJob::File {
                        id: id.clone(),
                        name: format!("previous-boot/{name}"),
                        text: text.clone(),
                    }));
                }
            }
        }
        self.accept(ev, now);
        for (ev, json) in report
            .incidents
            .iter()
            .zip(report.json_lines(self.hostname.clone()).into_iter().skip(1))
        {
            let (prio, text) = summary(ev);
            self.tell(prio.max(5), format!("previous boot: {text}"));
            self.rec.send(Job::Line(json));
        }
        Some(report)
    }

    // --- collect ---------------------------------------------------------

    /// Every collector that is due hands over what it read.
    fn collect(&mut self, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        if self.kmsg.is_none() && now >= self.kmsg_retry {
            self.open_kmsg();
        }
        self.drain_kmsg(now, &mut out);
        if let Some(t) = self.tracefs.as_mut() {
            t.drain(now, &mut out);
        }
        if let Some(p) = self.psi.as_mut() {
            p.drain(&mut out);
        }
        if now >= self.next_proc {
            self.next_proc = now + Duration::from_secs(self.cfg.proc.interval_secs);
            self.proc.poll(
                now,
                std::mem::take(&mut self.oom_reported),
                std::mem::take(&mut self.hung_reported),
                &mut out,
            );
        }
        out
    }

    fn drain_kmsg(&mut self, now: Instant, out: &mut Vec<Event>) {
        let Some(k) = self.kmsg.as_mut() else {
            return;
        };
        loop {
            match k.drain(out) {
                Ok(Drained::More) => continue,
                Ok(_) => break,
                Err(e) => {
                    self.tell(3, format!("reading kmsg failed: {e}; reopening"));
                    self.kmsg = None;
                    self.kmsg_retry = now;
                    return;
                }
            }
        }
        k.flush_if_quiet(now, out);
        let text = k.reader_mut().take_text();
        for j in self.incidents.records(text, now) {
            self.rec.send(Job::Incident(j));
        }
    }

    // --- correlate -------------------------------------------------------

    /// Stamps one event from a collector and passes it on, or holds it for
    /// its twin report.
    fn accept(&mut self, mut ev: Event, now: Instant) {
        if ev.time.is_none() {
            ev.time = Some(WallTime::now());
        }
        if ev.host.is_none() {
            ev.host.clone_from(&self.hostname);
        }
        if let Some(ev) = self.correlate.accept(ev, now) {
            self.emit(ev, now);
        }
    }

    fn release_held(&mut self, now: Instant, all: bool) {
        for ev in self.correlate.release(now, all) {
            self.emit(ev, now);
        }
    }

    // --- decide, act, record ---------------------------------------------

    /// Runs whatever rules one event fires, acts on the kernel, then
    /// queues the event and the actions' outcomes for the record stage.
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
        let decisions = self.engine.decide(&ev, now);
        let mut ev = ev;
        if ev.incident.is_none() {
            ev.incident = self.place(&ev, &decisions, now);
        }
        let json = ev.to_json();
        let mut outcomes = Vec::new();
        for d in &decisions {
            for action in &d.actions {
                let fired = self.triggers.execute(&d.rule, action, &json);
                if let (Action::Sysrq(_), Fired::Done(o), Some(id)) = (action, &fired, &ev.incident)
                {
                    if o.ok {
                        self.incidents.sysrq_fired(id, now);
                    }
                }
                outcomes.push((d.rule.clone(), action.label(), fired));
            }
        }
        self.record(&ev, json);
        let incident = ev.incident;
        for (rule, label, fired) in outcomes {
            match fired {
                Fired::Done(outcome) => self.action_event(&rule, &label, outcome, incident.clone()),
                Fired::Running => {}
                Fired::Save(frozen) => {
                    if !self.rec.send(Job::Snapshot {
                        rule: rule.clone(),
                        frozen,
                        incident: incident.clone(),
                    }) {
                        self.action_event(
                            &rule,
                            &label,
                            Outcome::failed(
                                "snapshot frozen in tracefs, but the recording queue was full: not saved",
                            ),
                            incident.clone(),
                        );
                    }
                }
            }
        }
        if !decisions.is_empty() {
            // Never handle the records behind an action twice.
            self.save_position(true);
            self.status();
        }
    }

    /// The incident an event belongs to, opening one (and asking the
    /// evidence lane for its bundle) when a rule that opens incidents fired.
    fn place(&mut self, ev: &Event, decisions: &[Decision], now: Instant) -> Option<String> {
        let placed = self.incidents.place(ev, decisions, now)?;
        self.open_bundle(placed)
    }

    /// Asks the evidence lane for the bundle of a newly opened incident.
    fn open_bundle(&mut self, placed: Placed) -> Option<String> {
        match placed {
            Placed::Join(id) => Some(id),
            Placed::Open {
                id,
                kind,
                opened_at,
                lookback,
            } => {
                let settings = self.incidents.settings().cloned()?;
                let opening = Opening {
                    id: id.clone(),
                    kind: kind.to_string(),
                    opened_at,
                    evidence_dir: PathBuf::from(&self.cfg.evidence_dir),
                    settings,
                    host: self.host.clone(),
                    check: self.check.clone(),
                    lookback,
                };
                if !self
                    .rec
                    .send(Job::Incident(IncidentJob::Open(Box::new(opening))))
                {
                    self.tell(
                        3,
                        format!("incident {id}: the evidence queue is full: no bundle"),
                    );
                }
                Some(id)
            }
        }
    }

    /// Queues an event's summary (journal) and its JSON line (event log),
    /// the line for its incident's bundle, and hands it to the forward
    /// targets; none of it blocks.
    fn record(&mut self, ev: &Event, json: String) {
        let (prio, text) = summary(ev);
        if !self.forward.is_empty() {
            if self.forward.has_room() {
                let m = crate::forward::event_message(&mut self.fwd_msg, ev, &json, prio, &text);
                self.forward.send(&m);
            } else {
                self.forward.drop_one();
            }
        }
        // A bundle lists its actions on their own (`IncidentJob::Action`).
        if let (Some(id), false) = (&ev.incident, matches!(ev.body, Body::Action(_))) {
            self.rec.send(Job::Incident(IncidentJob::Event {
                id: id.clone(),
                json: json.clone(),
            }));
        }
        self.rec.send(Job::Entry {
            prio,
            text,
            json: json.clone(),
        });
        self.rec.send(Job::Line(json));
    }

    /// Queues the kmsg position (at most once a second unless `force`).
    fn save_position(&mut self, force: bool) {
        let Some(k) = self.kmsg.as_mut() else {
            return;
        };
        if let Some((path, pos)) = k.position_due(force) {
            if !self.rec.send(Job::Position { path, pos }) {
                if let Some(k) = self.kmsg.as_mut() {
                    k.position_unsaved();
                }
            }
        }
    }

    fn action_event(
        &mut self,
        rule: &str,
        action: &str,
        outcome: Outcome,
        incident: Option<String>,
    ) {
        if let Some(id) = &incident {
            self.rec.send(Job::Incident(IncidentJob::Action {
                id: id.clone(),
                rule: rule.to_string(),
                action: action.to_string(),
                ok: outcome.ok,
                detail: outcome.detail.clone(),
            }));
        }
        self.log_action(rule, action, outcome, incident);
    }

    /// The `action` event of an outcome, to the event log, the journal and
    /// the forward targets (its incident's bundle lists actions apart).
    fn log_action(&mut self, rule: &str, action: &str, outcome: Outcome, incident: Option<String>) {
        self.actions_taken += 1;
        *self
            .metrics
            .actions
            .entry((rule.to_string(), action.to_string(), outcome.ok))
            .or_default() += 1;
        let ev = Event {
            time: Some(WallTime::now()),
            kernel_time: None,
            source: "watchdog".into(),
            host: self.hostname.clone(),
            line: None,
            incident,
            body: Body::Action(events::Action {
                rule: rule.to_string(),
                action: action.to_string(),
                ok: outcome.ok,
                detail: outcome.detail,
                dry_run: self.args.dry_run,
            }),
        };
        let json = ev.to_json();
        self.record(&ev, json);
    }

    /// Results the writer thread sent back (saved snapshots).
    fn writer_results(&mut self) {
        for d in self.rec.take_done() {
            match d {
                Done::Snapshot {
                    rule,
                    outcome,
                    incident,
                } => {
                    // The evidence lane put it in the bundle already.
                    self.log_action(&rule, "ftrace_snapshot", outcome, incident);
                }
                Done::Note(prio, msg) => self.tell(prio, msg),
            }
        }
    }

    fn kdump_check(&mut self) {
        let outcome = if self.args.dry_run {
            match self
                .triggers
                .execute("kdump-schedule", &Action::KdumpCheck, "{}")
            {
                Fired::Done(o) => o,
                _ => Outcome::failed("no result"),
            }
        } else {
            let (outcome, statuses) = crate::triggers::kdump::check(&self.host, &self.check);
            self.metrics.checks.extend(statuses);
            outcome
        };
        self.action_event("kdump-schedule", "kdump_check", outcome, None);
    }

    fn write_metrics(&mut self, now: Instant) {
        if self.cfg.metrics_file.is_empty() {
            return;
        }
        self.next_metrics = now + Duration::from_secs(self.cfg.metrics_interval_secs);
        self.metrics.records_lost = self.rec.lost_lines;
        self.metrics.records_lost_other = self.rec.lost_other;
        self.metrics.suppressed = self
            .engine
            .suppressed()
            .map(|(rule, n)| (rule.to_string(), n))
            .collect();
        let mut text = self.metrics.render();
        text.push_str(&self.forward.metrics("watchdog_forward"));
        let job = Job::Metrics {
            path: PathBuf::from(&self.cfg.metrics_file),
            text,
        };
        self.rec.send(job);
    }

    fn reload(&mut self) {
        self.rec.send(Job::Reopen);
        let Some(path) = self.args.config_path.clone() else {
            self.tell(
                5,
                "SIGHUP: event log reopened (no --config file to re-read)".into(),
            );
            return;
        };
        self.notifier.send("RELOADING=1");
        match Config::load(&path) {
            Ok(c) => match c.run.compile("run", &c.site_patterns().fields()) {
                Ok(settings) => {
                    self.patterns = std::sync::Arc::new(c.site_patterns());
                    if let Some(k) = self.kmsg.as_mut() {
                        k.set_patterns(self.patterns.clone());
                    }
                    let kept = self.engine.reload(settings.rules);
                    self.triggers.allow_destructive = c.run.allow_destructive;
                    self.triggers.snapshots.keep = c.run.tracefs.snapshot_keep;
                    self.triggers.snapshots.max_bytes = c.run.tracefs.snapshot_max_bytes;
                    self.triggers.snapshots.dir = PathBuf::from(&c.run.evidence_dir);
                    self.triggers.check = c.check.clone();
                    self.proc.cfg = c.run.proc.clone();
                    self.check = c.check;
                    self.incidents.reconfigure(settings.incidents);
                    if let Some(k) = self.kmsg.as_mut() {
                        k.reader_mut().keep_text = self.incidents.enabled();
                    }
                    self.cfg.evidence_dir = c.run.evidence_dir;
                    self.cfg.incidents = c.run.incidents;
                    self.cfg.rules = c.run.rules;
                    self.cfg.proc = c.run.proc;
                    let msg = format!("SIGHUP: {} reloaded ({} rules); {kept} unchanged rules keep their windows and cooldowns; collector settings apply at the next start", path.display(), self.engine.rules().count());
                    self.tell(5, msg);
                }
                Err(e) => {
                    let msg = format!(
                        "SIGHUP: {} not reloaded: {} errors, keeping the running configuration",
                        path.display(),
                        e.len()
                    );
                    self.tell(3, msg);
                }
            },
            Err(e) => self.tell(3, format!("SIGHUP: keeping the running configuration: {e}")),
        }
        self.notifier.send("READY=1");
        self.status();
    }

    // --- the loop's clock ------------------------------------------------

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
        at(self.correlate.next_due());
        at(self.incidents.next_deadline());
        if !self.triggers.exec.is_idle() {
            at(Some(now + Duration::from_millis(100)));
        }
        if self.rec.pending_lost() > 0 {
            at(Some(now + LOST_RETRY));
        }
        match &self.kmsg {
            None => at(Some(self.kmsg_retry)),
            // A regular file cannot be polled: read it on a short timer.
            Some(k) if k.poll_fd().is_none() => at(Some(now + Duration::from_millis(200))),
            Some(_) => {}
        }
        t
    }

    /// Everything that is due by the clock rather than by a descriptor.
    fn timers(&mut self, now: Instant) {
        if now >= self.next_kdump {
            self.next_kdump = now + Duration::from_secs(self.cfg.kdump_check.interval_hours * 3600);
            self.kdump_check();
        }
        for f in self.triggers.exec.reap(now) {
            self.action_event(&f.rule, &f.label, f.outcome, None);
        }
        self.release_held(now, false);
        for j in self.incidents.due(now) {
            self.rec.send(Job::Incident(j));
        }
        self.rec.flush_lost();
        self.save_position(false);
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

    /// One turn of the pipeline.
    fn turn(&mut self, now: Instant) {
        self.writer_results();
        for ev in self.collect(now) {
            self.accept(ev, now);
        }
        self.timers(now);
    }

    fn shutdown(mut self) {
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
            self.action_event(&f.rule, &f.label, f.outcome, None);
        }
        // A SysRq fired just now (for an event released by the stop) is
        // still answering: its answer goes into the bundle before it
        // closes, for a moment at the most.
        let until = Instant::now() + STOP_READBACK;
        while self.incidents.reading_back() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            let now = Instant::now();
            let mut out = Vec::new();
            self.drain_kmsg(now, &mut out);
            for ev in out {
                self.accept(ev, now);
            }
            for j in self.incidents.due(now) {
                self.rec.send(Job::Incident(j));
            }
        }
        for j in self.incidents.close_all() {
            self.rec.send(Job::Incident(j));
        }
        self.save_position(true);
        if let Some(mut t) = self.tracefs.take() {
            t.cleanup();
        }
        // Snapshots still being copied, bundles still being written: their
        // outcomes go to the event log before the disk writer stops.
        let deadline = Instant::now() + WRITER_PATIENCE;
        let evidence_done = self.rec.finish_evidence(deadline);
        self.writer_results();
        self.write_metrics(Instant::now());
        if let Some(s) = self.boot_stop.take() {
            self.rec.send(Job::State(s.write()));
        }
        let lost_before = self.rec.lost_lines;
        let finished = self.rec.finish(deadline) && evidence_done;
        self.forward.finish(deadline);
        for line in self.forward.summary() {
            say(6, &line);
        }
        // The writers are done (or left behind): the last words go to
        // stderr directly.
        if !finished {
            say(
                3,
                &format!(
                    "the writer threads did not finish within {} s (is the disk of {} hung?): what they still held is lost",
                    WRITER_PATIENCE.as_secs(),
                    self.log_target
                ),
            );
        }
        say(
            6,
            &format!(
                "stopped after {} events and {} actions{}",
                self.events_seen,
                self.actions_taken,
                if lost_before > 0 {
                    format!("; {lost_before} events could not be queued for the event log")
                } else {
                    String::new()
                }
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
    // One descriptor wakes the poll for all three signals (a host at its
    // descriptor limit still runs); it lives until the process ends.
    let signal_w = wake_w.try_clone().map_err(|e| e.to_string())?;
    for (sig, flag) in [(SIGTERM, &term), (SIGINT, &term), (SIGHUP, &hup)] {
        signal_hook::flag::register(sig, Arc::clone(flag)).map_err(|e| e.to_string())?;
        signal_hook::low_level::pipe::register_raw(sig, signal_w.as_raw_fd())
            .map_err(|e| e.to_string())?;
    }

    let mut d = Daemon::new(host, config, args, wake_w)?;
    if d.args.dry_run {
        say(5, "dry run: decisions are logged, nothing is done");
    }
    d.protect_self();
    d.open_kmsg();
    // Integrator: unless `_last_boot.cause.is_clean()`, an incident bundle
    // for the previous boot holds `evidence_files` and `captured`.
    let _last_boot = d.previous_boot();
    d.setup_tracefs();
    d.setup_psi();
    let msg = format!(
        "events go to {}; {} rules",
        d.log_target,
        d.engine.rules().count()
    );
    d.tell(6, msg);
    if d.cfg.kdump_check.at_start {
        d.kdump_check();
    }
    d.notifier.send("READY=1");
    d.status();

    while !term.load(Ordering::Relaxed) {
        let now = Instant::now();
        let timeout = d.next_wakeup(now).saturating_duration_since(now);
        let ms = i32::try_from(timeout.as_millis().min(60_000)).unwrap_or(60_000);
        {
            let mut fds = vec![PollFd::new(wake_r.as_fd(), PollFlags::POLLIN)];
            if let Some(fd) = d.kmsg.as_ref().and_then(|k| k.poll_fd()) {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            if let Some(fd) = d.tracefs.as_ref().and_then(|t| t.poll_fd()) {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            let psi_at = fds.len();
            for fd in d.psi.iter().flat_map(|p| p.poll_fds()) {
                fds.push(PollFd::new(fd, PollFlags::POLLPRI));
            }
            let _ = nix::poll::poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            );
            // A PSI trigger reports its POLLPRI once: keep what this poll saw.
            let psi_seen: Vec<Option<PollFlags>> =
                fds[psi_at..].iter().map(|f| f.revents()).collect();
            drop(fds);
            if let Some(p) = d.psi.as_mut() {
                p.saw(&psi_seen);
            }
        }
        let mut sink = [0u8; 64];
        while matches!(wake_r.read(&mut sink), Ok(n) if n > 0) {}
        if term.load(Ordering::Relaxed) {
            break;
        }
        if hup.swap(false, Ordering::Relaxed) {
            d.reload();
        }
        d.turn(Instant::now());
    }
    d.shutdown();
    // The signal handlers may still write to it until the process exits.
    std::mem::forget(signal_w);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oom_victims_sigkill_is_not_logged_as_a_second_incident() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.run.event_log = dir.path().join("events.jsonl").display().to_string();
        let (_r, w) = UnixStream::pair().unwrap();
        let mut d = Daemon::new(Host::new(dir.path()), config, RunArgs::default(), w).unwrap();
        let now = Instant::now();
        d.accept(correlate::tests::death(42, 9), now);
        let mut oom = correlate::tests::death(42, 9);
        oom.body = Body::OomKill(events::OomKill {
            pid: Some(42),
            comm: Some("hog".into()),
            ..events::OomKill::default()
        });
        d.accept(oom, now);
        d.accept(correlate::tests::death(43, 9), now);
        d.release_held(now + correlate::HOLD, true);
        assert!(d.rec.finish(Instant::now() + Duration::from_secs(10)));
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
                ("signal_death".to_string(), 43)
            ]
        );
    }

    #[test]
    fn summaries_have_priorities() {
        let mut ev = correlate::tests::death(5, 9);
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
