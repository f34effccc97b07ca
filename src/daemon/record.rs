//! The record stage of `watchdog run`: everything that touches a regular
//! file system runs here, on one writer thread behind a bounded queue.
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

use crate::collectors::kmsg::Position;
use crate::eventlog::EventLog;
use crate::triggers::snapshot::Frozen;
use crate::triggers::Outcome;

/// One piece of work for the writer.
pub enum Job {
    /// A line of the event log (an event or an action, as JSON).
    Line(String),
    /// A one-line summary for stderr, with its journald priority.
    Say(u8, String),
    /// The kmsg position, written with fsync of the file and its directory.
    Position { path: PathBuf, pos: Position },
    /// The Prometheus textfile, replaced atomically.
    Metrics { path: PathBuf, text: String },
    /// Copy a frozen ftrace snapshot out of tracefs into the evidence
    /// directory; the outcome comes back as [`Done::Snapshot`].
    Snapshot { rule: String, frozen: Frozen },
    /// Close the event log so the next line reopens it (SIGHUP, logrotate).
    Reopen,
    /// A state file of the previous-boot report (`run`'s start and stop
    /// stamp, the boots reported), replaced atomically.
    State(crate::lastboot::record::StateWrite),
}

/// What the writer reports back to the loop.
#[derive(Debug)]
pub enum Done {
    /// The outcome of a [`Job::Snapshot`]: the loop logs it as the
    /// `ftrace_snapshot` action's result.
    Snapshot { rule: String, outcome: Outcome },
}

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
    fn start(name: &str, capacity: usize, mut w: Writer) -> io::Result<Lane> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(capacity.max(1));
        let (fin_tx, finished) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Ok(Msg::Job(job)) = rx.recv() {
                    w.handle(job);
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

/// The loop's handle on the record stage: two writer threads, one for the
/// disk (event log, position, metrics, snapshots) and one for the journal
/// (stderr), so that a hung disk does not silence the journal and a stuck
/// journal does not hold up the files.
pub struct Recorder {
    disk: Lane,
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

/// A non-blocking write of a wake-up byte: a full pipe already means
/// "wake up".
fn wake(w: &mut UnixStream) {
    let _ = w.write(&[1]);
}

impl Recorder {
    /// Starts the writer threads with room for `capacity` jobs each.
    /// `waker` is written to whenever the disk writer has something to
    /// report back, so the loop's poll wakes up for it.
    pub fn start(log: EventLog, capacity: usize, waker: UnixStream) -> io::Result<Recorder> {
        let (done_tx, done) = mpsc::channel();
        let disk = Lane::start(
            "record-disk",
            capacity,
            Writer {
                log: Some(log),
                done: done_tx.clone(),
                waker: Some(waker),
            },
        )?;
        let journal = Lane::start(
            "record-journal",
            capacity,
            Writer {
                log: None,
                done: done_tx,
                waker: None,
            },
        )?;
        Ok(Recorder {
            disk,
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
            Job::Say(..) => {
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
            _ => {
                let ok = self.disk.try_send(job);
                if !ok {
                    self.lost_other += 1;
                }
                ok
            }
        }
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

    /// Stops the writers after what is queued, waiting at most `patience`:
    /// a writer stuck on a hung disk is left behind rather than holding up
    /// the exit. True when both finished.
    pub fn finish(mut self, patience: Duration) -> bool {
        let _ = self.flush_lost();
        let deadline = Instant::now() + patience;
        let disk = self.disk.finish(deadline);
        let journal = self.journal.finish(deadline);
        disk && journal
    }
}

/// The writer thread's state: it owns every file `run` writes.
struct Writer {
    /// The event log, on the disk lane only.
    log: Option<EventLog>,
    done: mpsc::Sender<Done>,
    waker: Option<UnixStream>,
}

impl Writer {
    fn handle(&mut self, job: Job) {
        match job {
            Job::Line(json) => {
                if let Some(err) = self.log.as_mut().and_then(|l| l.write(&json)) {
                    say(3, &err);
                }
            }
            Job::Say(prio, text) => say(prio, &text),
            Job::Position { path, pos } => {
                if let Err(e) = pos.save(&path) {
                    say(
                        4,
                        &format!("cannot save the kmsg position to {}: {e}", path.display()),
                    );
                }
            }
            Job::Metrics { path, text } => {
                if let Err(e) = crate::metrics::write_atomic(&path, &text) {
                    say(
                        4,
                        &format!("cannot write metrics to {}: {e}", path.display()),
                    );
                }
            }
            Job::Snapshot { rule, frozen } => {
                let outcome = frozen.save();
                let _ = self.done.send(Done::Snapshot { rule, outcome });
                if let Some(w) = self.waker.as_mut() {
                    wake(w);
                }
            }
            Job::Reopen => {
                if let Some(l) = self.log.as_mut() {
                    l.reopen();
                }
            }
            Job::State(w) => {
                if let Err(e) = w.save() {
                    say(4, &format!("cannot write {}: {e}", w.path.display()));
                }
            }
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
        let mut rec = Recorder::start(log, 4, w).unwrap();
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
        assert!(rec.finish(Duration::from_secs(10)));
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
        let mut rec = Recorder::start(log, 2, w).unwrap();
        rec.send(line(1));
        assert!(!rec.finish(Duration::from_millis(200)));
    }
}
