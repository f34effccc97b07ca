//! Reads of /proc files that may never return, with a deadline each.
//!
//! A read of `/proc/PID/cmdline` (or `status`, `stack`) takes the process's
//! mm lock; a process hung with that lock held blocks the reader for as long
//! as the hang lasts. The kernel offers no timeout for such a read, so each
//! read runs on a helper thread and the caller stops waiting at the
//! deadline. A helper stuck in the kernel is left behind (it ends when its
//! read does) and a fresh one takes the next read; while a few helpers are
//! stuck, further reads are skipped rather than leaking threads.

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Helpers left blocked before the reader gives up on further reads.
const MAX_STUCK: usize = 4;

/// What one bounded read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The bytes read; `truncated` when the file had more than the cap.
    Data {
        bytes: Vec<u8>,
        truncated: bool,
    },
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    PermissionDenied,
    Io(String),
    TimedOut(Duration),
    /// Not attempted: earlier reads are still blocked, or the collection's
    /// own deadline passed.
    Skipped(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotFound => f.write_str("no such file"),
            Failure::PermissionDenied => f.write_str("permission denied"),
            Failure::Io(e) => f.write_str(e),
            Failure::TimedOut(d) => write!(
                f,
                "timed out after {} ms (the read is blocked in the kernel)",
                d.as_millis()
            ),
            Failure::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

struct Job {
    path: PathBuf,
    cap: u64,
}

type Reply = io::Result<(Vec<u8>, bool)>;

struct Worker {
    jobs: SyncSender<Job>,
    replies: Receiver<Reply>,
    /// Cleared by the helper when it ends (its read returned at last).
    alive: Arc<AtomicBool>,
}

/// Bounded reads with a deadline per file and one for the whole batch.
pub struct DeadlineReader {
    worker: Option<Worker>,
    per_file: Duration,
    until: Instant,
    /// Helpers abandoned at a deadline, while they are still blocked.
    stuck: Vec<Arc<AtomicBool>>,
}

impl DeadlineReader {
    pub fn new(per_file: Duration, overall: Duration) -> DeadlineReader {
        DeadlineReader {
            worker: None,
            per_file,
            until: Instant::now() + overall,
            stuck: Vec::new(),
        }
    }

    /// Reads at most `cap` bytes of `path`.
    pub fn read(&mut self, path: PathBuf, cap: u64) -> Outcome {
        self.stuck.retain(|alive| alive.load(Ordering::Acquire));
        if self.stuck.len() >= MAX_STUCK {
            return Outcome::Failed(Failure::Skipped(format!(
                "{} earlier reads are still blocked in the kernel",
                self.stuck.len()
            )));
        }
        let now = Instant::now();
        if now >= self.until {
            return Outcome::Failed(Failure::Skipped(
                "the collection ran past collect_timeout_secs".into(),
            ));
        }
        let wait = self.per_file.min(self.until - now);
        let worker = match self.worker.take() {
            Some(w) => w,
            None => match spawn() {
                Ok(w) => w,
                Err(e) => {
                    return Outcome::Failed(Failure::Io(format!(
                        "cannot start a reader thread: {e}"
                    )))
                }
            },
        };
        if worker.jobs.send(Job { path, cap }).is_err() {
            return Outcome::Failed(Failure::Io("the reader thread ended".into()));
        }
        match worker.replies.recv_timeout(wait) {
            Ok(reply) => {
                self.worker = Some(worker);
                match reply {
                    Ok((bytes, truncated)) => Outcome::Data { bytes, truncated },
                    Err(e) => Outcome::Failed(failure(&e)),
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // Dropping the worker's channels lets its thread end once
                // the kernel lets its read return.
                self.stuck.push(worker.alive);
                Outcome::Failed(Failure::TimedOut(wait))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Outcome::Failed(Failure::Io("the reader thread ended".into()))
            }
        }
    }
}

fn spawn() -> io::Result<Worker> {
    let (jobs, job_rx) = mpsc::sync_channel::<Job>(1);
    let (reply_tx, replies) = mpsc::sync_channel::<Reply>(1);
    let alive = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&alive);
    std::thread::Builder::new()
        .name("incident-read".into())
        // Reads need little stack; many may be left stuck.
        .stack_size(64 << 10)
        .spawn(move || {
            for job in job_rx {
                if reply_tx.send(read_capped(&job)).is_err() {
                    break;
                }
            }
            flag.store(false, Ordering::Release);
        })?;
    Ok(Worker {
        jobs,
        replies,
        alive,
    })
}

fn read_capped(job: &Job) -> Reply {
    let file = std::fs::File::open(&job.path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::other("a directory, not a file"));
    }
    let mut buf = Vec::new();
    file.take(job.cap + 1).read_to_end(&mut buf)?;
    let truncated = buf.len() as u64 > job.cap;
    if truncated {
        buf.truncate(usize::try_from(job.cap).unwrap_or(usize::MAX));
    }
    Ok((buf, truncated))
}

fn failure(e: &io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::NotFound => Failure::NotFound,
        io::ErrorKind::PermissionDenied => Failure::PermissionDenied,
        _ if e.raw_os_error() == Some(libc::ENOTDIR) => Failure::NotFound,
        _ => Failure::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_capped_and_failures_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        let mut r = DeadlineReader::new(Duration::from_secs(5), Duration::from_secs(5));
        assert_eq!(
            r.read(dir.path().join("f"), 4),
            Outcome::Data {
                bytes: b"0123".to_vec(),
                truncated: true
            }
        );
        assert_eq!(
            r.read(dir.path().join("f"), 10),
            Outcome::Data {
                bytes: b"0123456789".to_vec(),
                truncated: false
            }
        );
        assert_eq!(
            r.read(dir.path().join("none"), 10),
            Outcome::Failed(Failure::NotFound)
        );
    }

    #[test]
    fn a_blocked_read_times_out_and_the_next_read_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        // Opening a FIFO for reading blocks until a writer comes: the same
        // shape as a read stuck behind a hung process's mm lock.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        std::fs::write(dir.path().join("ok"), b"fine").unwrap();
        let mut r = DeadlineReader::new(Duration::from_millis(100), Duration::from_secs(10));
        let t = Instant::now();
        let out = r.read(fifo.clone(), 100);
        assert!(
            matches!(out, Outcome::Failed(Failure::TimedOut(_))),
            "{out:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            r.read(dir.path().join("ok"), 100),
            Outcome::Data { .. }
        ));
        for _ in 1..MAX_STUCK {
            r.read(fifo.clone(), 100);
        }
        let Outcome::Failed(Failure::Skipped(why)) = r.read(dir.path().join("ok"), 100) else {
            panic!("expected a skip once {MAX_STUCK} helpers are stuck");
        };
        assert!(why.contains("still blocked"), "{why}");
        // One writer wakes every helper stuck in the FIFO's open; once they
        // have ended, reads are attempted again.
        use std::os::unix::fs::OpenOptionsExt;
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap(),
        );
        let t = Instant::now();
        loop {
            match r.read(dir.path().join("ok"), 100) {
                Outcome::Data { bytes, .. } => break assert_eq!(bytes, b"fine"),
                other if t.elapsed() > Duration::from_secs(5) => panic!("{other:?}"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}
