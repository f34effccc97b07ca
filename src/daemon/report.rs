//! How the record stage's writer threads report back to the loop: a
//! result on a channel and a byte on the loop's wake-up pipe, so that its
//! poll returns for it.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use crate::triggers::Outcome;

/// What the writer reports back to the loop.
#[derive(Debug)]
pub enum Done {
    /// The outcome of a snapshot copy: the loop logs it as the
    /// `ftrace_snapshot` action's result.
    Snapshot {
        rule: String,
        outcome: Outcome,
        incident: Option<String>,
    },
    /// A message for the journal from a writer (a failed write).
    Note(u8, String),
}

/// A non-blocking write of a wake-up byte: a full pipe already means
/// "wake up".
fn wake(w: &mut UnixStream) {
    let _ = w.write(&[1]);
}

/// How a writer reports back: a result for the loop, and a byte on the
/// loop's wake-up pipe so its poll returns for it.
#[derive(Clone)]
pub struct Reporter {
    pub(super) done: mpsc::Sender<Done>,
    pub(super) waker: std::sync::Arc<std::sync::Mutex<UnixStream>>,
}

impl Reporter {
    pub fn send(&self, d: Done) {
        let _ = self.done.send(d);
        if let Ok(mut w) = self.waker.lock() {
            wake(&mut w);
        }
    }

    pub fn note(&self, prio: u8, msg: String) {
        self.send(Done::Note(prio, msg));
    }
}
