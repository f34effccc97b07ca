//! The kernel-log side of a bundle, kept free of I/O so the daemon's kmsg
//! reader can drive it and tests can feed it (record, time) pairs:
//! [`Lookback`], the bounded ring of recent records that starts `kmsg.txt`,
//! and [`Readback`], which decides when the kernel's answer to a SysRq has
//! been read back in full (or long enough).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The last N kernel records, so that a bundle opened by a hung-task report
/// also holds what the kernel said just before it.
#[derive(Debug, Clone)]
pub struct Lookback {
    records: VecDeque<String>,
    capacity: usize,
}

impl Lookback {
    pub fn new(capacity: usize) -> Lookback {
        Lookback {
            records: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    /// Remembers one record (its text as it goes into `kmsg.txt`), forgetting
    /// the oldest when full.
    pub fn push(&mut self, record: impl Into<String>) {
        if self.capacity == 0 {
            return;
        }
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record.into());
    }

    /// The records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &str> {
        self.records.iter().map(String::as_str)
    }

    /// All records as one text, a newline after each.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for r in &self.records {
            s.push_str(r.trim_end_matches('\n'));
            s.push('\n');
        }
        s
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A new size (a reloaded configuration), dropping the oldest records
    /// that no longer fit.
    pub fn resize(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.records.len() > capacity {
            self.records.pop_front();
        }
    }
}

/// Bounds on reading back a SysRq answer (`run.incidents.sysrq_readback_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadbackLimits {
    pub max_records: usize,
    pub max_bytes: u64,
    /// From the SysRq write to the last record taken.
    pub timeout: Duration,
    /// The dump is over once the kernel has been quiet this long: a SysRq-T
    /// dump is printed in one burst, and nothing marks its end.
    pub quiet: Duration,
}

/// Why a readback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadbackEnd {
    Quiet,
    Timeout,
    Records,
    Bytes,
}

impl ReadbackEnd {
    /// For the manifest: whether the dump may be incomplete, and why.
    pub fn describe(self) -> &'static str {
        match self {
            ReadbackEnd::Quiet => "complete (the kernel went quiet)",
            ReadbackEnd::Timeout => "cut at sysrq_readback_timeout_ms",
            ReadbackEnd::Records => "cut at sysrq_readback_max_records",
            ReadbackEnd::Bytes => "cut at sysrq_readback_max_bytes",
        }
    }
}

/// Reading back one SysRq answer: feed each record read from /dev/kmsg
/// after the trigger with the time it was read; [`Readback::accept`] says
/// whether it belongs in `kmsg.txt`, [`Readback::poll`] whether to stop,
/// and [`Readback::next_deadline`] when to poll again if nothing arrives.
#[derive(Debug, Clone)]
pub struct Readback {
    limits: ReadbackLimits,
    started: Instant,
    last: Instant,
    records: usize,
    bytes: u64,
    end: Option<ReadbackEnd>,
}

impl Readback {
    pub fn start(limits: ReadbackLimits, now: Instant) -> Readback {
        Readback {
            limits,
            started: now,
            last: now,
            records: 0,
            bytes: 0,
            end: None,
        }
    }

    /// Takes one record; false when a limit has been reached (the record is
    /// not part of the readback, and the readback is over).
    pub fn accept(&mut self, record: &str, now: Instant) -> bool {
        if self.poll(now).is_some() {
            return false;
        }
        let len = record.len() as u64 + 1;
        if self.records >= self.limits.max_records {
            self.end = Some(ReadbackEnd::Records);
            return false;
        }
        if self.bytes + len > self.limits.max_bytes {
            self.end = Some(ReadbackEnd::Bytes);
            return false;
        }
        self.records += 1;
        self.bytes += len;
        self.last = now;
        true
    }

    /// `Some` once the readback is over.
    pub fn poll(&mut self, now: Instant) -> Option<ReadbackEnd> {
        if self.end.is_none() {
            if now.saturating_duration_since(self.started) >= self.limits.timeout {
                self.end = Some(ReadbackEnd::Timeout);
            } else if now.saturating_duration_since(self.last) >= self.limits.quiet {
                self.end = Some(ReadbackEnd::Quiet);
            }
        }
        self.end
    }

    /// When [`Readback::poll`] will next change its answer if no record
    /// arrives.
    pub fn next_deadline(&self) -> Instant {
        (self.last + self.limits.quiet).min(self.started + self.limits.timeout)
    }

    /// Records and bytes taken so far.
    pub fn taken(&self) -> (usize, u64) {
        (self.records, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ReadbackLimits {
        ReadbackLimits {
            max_records: 3,
            max_bytes: 1000,
            timeout: Duration::from_secs(10),
            quiet: Duration::from_secs(1),
        }
    }

    #[test]
    fn lookback_keeps_the_newest() {
        let mut l = Lookback::new(2);
        l.push("a");
        l.push("b\n");
        l.push("c");
        assert_eq!(l.records().collect::<Vec<_>>(), ["b\n", "c"]);
        assert_eq!(l.text(), "b\nc\n");
        l.resize(1);
        assert_eq!(l.text(), "c\n");
        let mut none = Lookback::new(0);
        none.push("x");
        assert!(none.is_empty());
    }

    #[test]
    fn readback_ends_when_quiet() {
        let t0 = Instant::now();
        let mut r = Readback::start(limits(), t0);
        assert!(r.accept("sysrq: Show Blocked State", t0 + Duration::from_millis(300)));
        assert_eq!(r.poll(t0 + Duration::from_millis(1200)), None);
        assert_eq!(r.next_deadline(), t0 + Duration::from_millis(1300));
        assert_eq!(
            r.poll(t0 + Duration::from_millis(1300)),
            Some(ReadbackEnd::Quiet)
        );
        assert!(!r.accept("late", t0 + Duration::from_millis(1400)));
        assert_eq!(r.taken().0, 1);
    }

    #[test]
    fn readback_is_bounded_by_count_bytes_and_time() {
        let t0 = Instant::now();
        let mut r = Readback::start(limits(), t0);
        for _ in 0..3 {
            assert!(r.accept("x", t0));
        }
        assert!(!r.accept("x", t0));
        assert_eq!(r.poll(t0), Some(ReadbackEnd::Records));

        let mut r = Readback::start(limits(), t0);
        assert!(r.accept(&"y".repeat(900), t0));
        assert!(!r.accept(&"y".repeat(200), t0));
        assert_eq!(r.poll(t0), Some(ReadbackEnd::Bytes));

        // A kernel that never goes quiet is still cut at the timeout.
        let mut r = Readback::start(limits(), t0);
        let mut t = t0;
        for _ in 0..2 {
            t += Duration::from_millis(900);
            assert!(r.accept("z", t));
        }
        assert_eq!(
            r.poll(t0 + Duration::from_secs(10)),
            Some(ReadbackEnd::Timeout)
        );
    }
}
