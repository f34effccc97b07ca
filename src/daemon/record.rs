//! The record stage of `watchdog run`: everything that touches a regular
//! file system runs here, on writer threads behind bounded queues — the
//! disk lane (event log, position, metrics), the evidence lane (snapshot
//! copies, incident bundles: [`super::evidence`]) and the journal lane
//! (stderr), so that none of them can hold up another.
//!
//! A hang watchdog's most common incident is storage that stopped
//! answering. The poll loop acts on the kernel first (SysRq, the tracefs
//! snapshot swap) and then hands what is to be written to this thread with
//! a non-blocking send: when the disk hangs, the writer blocks, the queue
//! fills, and the loop goes on watching and acting. What could not be
//! queued is counted by the loop and reported as a `lost` event once the
//! queue has room again (see [`Recorder::send`]).

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::evidence::{Evidence, IncidentJob};
pub use super::report::Done;
use super::report::Reporter;
use crate::collectors::kmsg::Position;
use crate::eventlog::EventLog;
use crate::triggers::snapshot::Frozen;

/// One piece of work for the writer.
pub enum Job {
    /// A line of the event log (an event or an action, as JSON).
    Line(String),
    /// A one-line message for the journal (native, or stderr), with its
    /// priority.
    Say(u8, String),
    /// An event's summary with its priority and JSON: natively, one
    /// journal entry with `MESSAGE_ID` and `WATCHDOG_*` fields; on stderr,
    /// the summary line only.
    Entry {
        prio: u8,
        text: String,
        json: String,
    },
    /// The kmsg position, written with fsync of the file and its directory.
    Position { path: PathBuf, pos: Position },
    /// The Prometheus textfile, replaced atomically.
    Metrics { path: PathBuf, text: String },
    /// Copy a frozen ftrace snapshot out of tracefs into the evidence
    /// directory (into the incident's bundle when there is one); the
    /// outcome comes back as [`Done::Snapshot`].
    Snapshot {
        rule: String,
        frozen: Frozen,
        incident: Option<String>,
    },
    /// Work on an incident bundle.
    Incident(IncidentJob),
    /// Close the event log so the next line reopens it (SIGHUP, logrotate).
    Reopen,
    /// A state file of the previous-boot report (`run`'s start and stop
    /// stamp, the boots reported), replaced atomically.
    State(crate::lastboot::record::StateWrite),
}

/// Stack of a writer thread: the deepest work is the `check` run of an
/// incident bundle (which has its own thread) and JSON rendering.
const LANE_STACK: usize = 256 << 10;

enum Msg {
    Job(Job),
    Stop,
}

/// One thread and its bounded queue.
struct Lane {
    tx: SyncSender<Msg>,
    finished: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Lane {
    fn start(
        name: &str,
        capacity: usize,
        mut handle: impl FnMut(Job) + Send + 'static,
    ) -> io::Result<Lane> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(capacity.max(1));
        let (fin_tx, finished) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            // `run` locks its memory (mlockall): a default 2 MiB stack
            // would be resident in full. Writers need little.
            .stack_size(LANE_STACK)
            .spawn(move || {
                while let Ok(Msg::Job(job)) = rx.recv() {
                    handle(job);
                }
                let _ = fin_tx.send(());
            })?;
        Ok(Lane {
            tx,
            finished,
            thread: Some(thread),
        })
    }

    fn try_send(&self, job: Job) -> bool {
        self.tx.try_send(Msg::Job(job)).is_ok()
    }

    /// Asks the thread to stop after what is queued and waits until
    /// `deadline` at the most.
    fn finish(&mut self, deadline: Instant) -> bool {
        let mut stop = Msg::Stop;
        loop {
            match self.tx.try_send(stop) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    stop = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        match self
            .finished
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
        }
    }
}

/// The loop's handle on the record stage's three writer threads.
pub struct Recorder {
    disk: Lane,
    evidence: Lane,
    journal: Lane,
    done: Receiver<Done>,
    /// Event-log lines that found the queue full, not yet reported.
    pending_lost: u64,
    /// stderr lines that found the journal's queue full, not yet reported.
    pending_said: u64,
    /// Totals, for metrics and the stop summary.
    pub lost_lines: u64,
    pub lost_other: u64,
}

impl Recorder {
    /// Starts the writer threads with room for `capacity` jobs each.
    /// `waker` is written to whenever a writer has something to report
    /// back, so the loop's poll wakes up for it.
    ///
    /// With `journal` (the native socket's path), messages and events go
    /// to the journal natively, and to stderr only while it cannot be
    /// reached; without, to stderr.
    pub fn start(
        log: EventLog,
        capacity: usize,
        waker: UnixStream,
        journal: Option<PathBuf>,
    ) -> io::Result<Recorder> {
        let (done_tx, done) = mpsc::channel();
        let report = Reporter {
            done: done_tx,
            waker: std::sync::Arc::new(std::sync::Mutex::new(waker)),
        };
        let mut disk = Disk {
            log,
            report: report.clone(),
        };
        let disk = Lane::start("record-disk", capacity, move |job| disk.handle(job))?;
        let mut evidence = Evidence::new(report);
        let evidence = Lane::start("record-evidence", capacity, move |job| match job {
            Job::Snapshot {
                rule,
                frozen,
                incident,
            } => evidence.snapshot(rule, frozen, incident),
            Job::Incident(j) => evidence.incident(j),
            _ => {}
        })?;
        let mut sink = journal.map(JournalSink::new);
        let journal = Lane::start("record-journal", capacity, move |job| {
            let (prio, text, fields) = match job {
                Job::Say(prio, text) => {
                    let f = sink
                        .is_some()
                        .then(|| crate::journal::base_fields(prio, &text));
                    (prio, text, f)
                }
                Job::Entry { prio, text, json } => {
                    let f = sink
                        .is_some()
                        .then(|| crate::journal::event_fields(prio, &text, &json));
                    (prio, text, f)
                }
                _ => return,
            };
            // The journal natively, or stderr: never both.
            let sent = match (sink.as_mut(), fields) {
                (Some(j), Some(f)) => j.send(&f),
                _ => false,
            };
            if !sent {
                say(prio, &text);
            }
        })?;
        Ok(Recorder {
            disk,
            evidence,
            journal,
            done,
            pending_lost: 0,
            pending_said: 0,
            lost_lines: 0,
            lost_other: 0,
        })
    }

    /// Queues a job without ever blocking. Returns false when the queue was
    /// full (or the writer is gone); the job is dropped and counted.
    pub fn send(&mut self, job: Job) -> bool {
        match job {
            Job::Say(..) | Job::Entry { .. } => {
                if self.pending_said > 0 {
                    let note = Job::Say(
                        4,
                        format!(
                            "{} messages were not written to stderr: the journal did not keep up",
                            self.pending_said
                        ),
                    );
                    if self.journal.try_send(note) {
                        self.pending_said = 0;
                    }
                }
                let ok = self.pending_said == 0 && self.journal.try_send(job);
                if !ok {
                    self.pending_said += 1;
                    self.lost_other += 1;
                }
                ok
            }
            Job::Line(_) => {
                // Keep the order: nothing after a gap until the gap is told.
                if self.flush_lost() && self.disk.try_send(job) {
                    return true;
                }
                self.pending_lost += 1;
                self.lost_lines += 1;
                false
            }
            Job::Snapshot { .. } | Job::Incident(_) => {
                let ok = self.evidence.try_send(job);
                self.count_other(ok)
            }
            Job::Position { .. } | Job::Metrics { .. } | Job::Reopen | Job::State(_) => {
                let ok = self.disk.try_send(job);
                self.count_other(ok)
            }
        }
    }

    /// Counts a record other than an event-log line that found its queue
    /// full; passes `ok` on.
    fn count_other(&mut self, ok: bool) -> bool {
        if !ok {
            self.lost_other += 1;
        }
        ok
    }

    /// Event-log lines dropped and not yet reported.
    pub fn pending_lost(&self) -> u64 {
        self.pending_lost
    }

    /// Queues the `lost` event for lines dropped so far; true when there is
    /// nothing left to report.
    pub fn flush_lost(&mut self) -> bool {
        if self.pending_lost == 0 {
            return true;
        }
        let ev = crate::events::Event {
            time: Some(crate::events::WallTime::now()),
            kernel_time: None,
            source: "watchdog".into(),
            host: None,
            line: None,
            incident: None,
            body: crate::events::Body::Lost(crate::events::Lost {
                count: self.pending_lost,
                reason: Some(
                    "the recording queue was full: the event log's file system did not keep up"
                        .into(),
                ),
            }),
        };
        if !self.disk.try_send(Job::Line(ev.to_json())) {
            return false;
        }
        let n = std::mem::take(&mut self.pending_lost);
        self.send(Job::Say(
            4,
            format!("{n} events could not be queued for the event log (its disk is slow or hung)"),
        ));
        true
    }

    /// Results the writer has reported since the last call.
    pub fn take_done(&self) -> Vec<Done> {
        self.done.try_iter().collect()
    }

    /// Stops the evidence writer after what is queued, waiting until
    /// `deadline` at the most; its results (snapshot outcomes) are then
    /// in [`Recorder::take_done`], for the loop to log before the disk
    /// writer stops. True when it finished.
    pub fn finish_evidence(&mut self, deadline: Instant) -> bool {
        self.evidence.finish(deadline)
    }

    /// Stops the writers after what is queued, waiting until `deadline` at
    /// the most: a writer stuck on a hung disk is left behind rather than
    /// holding up the exit. True when all finished.
    pub fn finish(mut self, deadline: Instant) -> bool {
        let _ = self.flush_lost();
        let evidence = self.evidence.finish(deadline);
        let disk = self.disk.finish(deadline);
        let journal = self.journal.finish(deadline);
        disk && evidence && journal
    }
}

/// The disk lane: the event log, the kmsg position, metrics.
struct Disk {
    log: EventLog,
    report: Reporter,
}

/// The journal's socket, connected lazily and again after a failure.
struct JournalSink {
    path: PathBuf,
    conn: Option<crate::journal::Journal>,
    /// When to try connecting again after a failure.
    retry: Instant,
    /// The last failure was said on stderr (said once per outage).
    told: bool,
}

/// How long a journal that cannot be reached is left alone.
const JOURNAL_RETRY: Duration = Duration::from_secs(10);

impl JournalSink {
    fn new(path: PathBuf) -> JournalSink {
        JournalSink {
            path,
            conn: None,
            retry: Instant::now(),
            told: false,
        }
    }

    /// Sends one entry; false when it could not (the caller then writes
    /// the line to stderr instead: never both).
    fn send(&mut self, fields: &[(String, Vec<u8>)]) -> bool {
        if self.conn.is_none() && Instant::now() >= self.retry {
            match crate::journal::Journal::connect(&self.path) {
                Ok(j) => {
                    self.conn = Some(j);
                    self.told = false;
                }
                Err(e) => self.failed(&e),
            }
        }
        let Some(j) = &self.conn else { return false };
        match j.send(fields) {
            Ok(()) => true,
            Err(e) => {
                self.conn = None;
                self.failed(&e);
                false
            }
        }
    }

    fn failed(&mut self, e: &io::Error) {
        self.retry = Instant::now() + JOURNAL_RETRY;
        if !self.told {
            self.told = true;
            say(
                4,
                &format!(
                    "the journal at {} cannot be reached ({e}): messages go to stderr until it can",
                    self.path.display()
                ),
            );
        }
    }
}

impl Disk {
    fn handle(&mut self, job: Job) {
        match job {
            Job::Line(json) => {
                if let Some(err) = self.log.write(&json) {
                    self.report.note(3, err);
                }
            }
            Job::Position { path, pos } => {
                if let Err(e) = pos.save(&path) {
                    self.report.note(
                        4,
                        format!("cannot save the kmsg position to {}: {e}", path.display()),
                    );
                }
            }
            Job::Metrics { path, text } => {
                if let Err(e) = crate::metrics::write_atomic(&path, &text) {
                    self.report.note(
                        4,
                        format!("cannot write metrics to {}: {e}", path.display()),
                    );
                }
            }
            Job::Reopen => self.log.reopen(),
            Job::State(w) => {
                if let Err(e) = w.save() {
                    self.report
                        .note(4, format!("cannot write {}: {e}", w.path.display()));
                }
            }
            Job::Say(..) | Job::Entry { .. } | Job::Snapshot { .. } | Job::Incident(_) => {}
        }
    }
}

/// One line on stderr; journald reads the `<N>` prefix as the priority.
pub fn say(prio: u8, msg: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "<{prio}>{}", msg.replace('\n', " "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32) -> Job {
        Job::Line(format!("{{\"n\":{n}}}"))
    }

    #[test]
    fn a_full_queue_counts_and_then_reports_what_it_dropped() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("events.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (_r, w) = UnixStream::pair().unwrap();
        w.set_nonblocking(true).unwrap();
        let log = EventLog::new(fifo.to_str().unwrap(), 1 << 20, 1);
        let mut rec = Recorder::start(log, 4, w, None).unwrap();
        // The writer blocks opening the FIFO (nobody reads it); one job is
        // in its hands, four in the queue, the rest dropped.
        let mut queued = 0;
        for n in 0..20 {
            if rec.send(line(n)) {
                queued += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Four or five lines, or one fewer where a lost note got a slot
        // that freed up while the writer was starting.
        assert!((3..=5).contains(&queued), "queued {queued}");
        assert!(rec.pending_lost() > 0);
        assert!(!rec.flush_lost(), "no room yet");
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::read_to_string(fifo).unwrap()
        });
        // Once the reader is there the queue drains and the gap is told.
        let until = Instant::now() + Duration::from_secs(10);
        while !rec.flush_lost() {
            assert!(Instant::now() < until, "queue never drained");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(rec.finish(Instant::now() + Duration::from_secs(10)));
        let text = reader.join().unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let numbers = lines.iter().filter(|v| v["n"].is_number()).count() as u64;
        let lost: u64 = lines
            .iter()
            .filter(|v| v["kind"] == "lost")
            .map(|v| v["count"].as_u64().unwrap())
            .sum();
        assert_eq!(numbers, queued);
        assert_eq!(numbers + lost, 20, "{text}");
        let last = lines.last().unwrap();
        assert_eq!(last["kind"], "lost");
        assert!(last["reason"].as_str().unwrap().contains("queue was full"));
    }

    #[test]
    fn finish_does_not_wait_forever_for_a_stuck_writer() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("events.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (_r, w) = UnixStream::pair().unwrap();
        let log = EventLog::new(fifo.to_str().unwrap(), 1 << 20, 1);
        let mut rec = Recorder::start(log, 2, w, None).unwrap();
        rec.send(line(1));
        assert!(!rec.finish(Instant::now() + Duration::from_millis(200)));
    }
}
