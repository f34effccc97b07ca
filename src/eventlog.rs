//! The event log: one JSON object per line, rotated by size
//! (`events.jsonl` → `events.jsonl.1` → … → `events.jsonl.N`).
//!
//! A full disk or a vanished directory never stops the daemon: the line is
//! counted as dropped, the failure reported at most once a minute, and the
//! next write tries again (reopening the file); once writing works again a
//! line records how many were dropped.
//!
//! A line lands whole or not at all: a write cut short (ENOSPC half-way
//! through a line) is rolled back by truncating the file to its last good
//! length, and when even that fails, or a file is found ending in the
//! middle of a line (a crash, a power cut), the next write starts with a
//! newline so that no event is ever glued to a torn one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const REPORT_EVERY: Duration = Duration::from_secs(60);

pub enum Sink {
    Stdout,
    File {
        path: PathBuf,
        file: Option<File>,
        size: u64,
        max_bytes: u64,
        keep: u32,
        /// False for a FIFO or a character device (a pipe to another
        /// program, /dev/stdout): those are written, never rotated.
        regular: bool,
        /// The file ends in the middle of a line that could not be rolled
        /// back: terminate it before the next line.
        torn: bool,
    },
}

pub struct EventLog {
    sink: Sink,
    pub dropped: u64,
    last_report: Option<Instant>,
}

impl EventLog {
    /// `-` is stdout; anything else a file, created 0640 with its directory.
    pub fn new(target: &str, max_bytes: u64, keep: u32) -> EventLog {
        let sink = if target == "-" {
            Sink::Stdout
        } else {
            Sink::File {
                path: PathBuf::from(target),
                file: None,
                size: 0,
                max_bytes,
                keep,
                regular: true,
                torn: false,
            }
        };
        EventLog {
            sink,
            dropped: 0,
            last_report: None,
        }
    }

    pub fn describe(&self) -> String {
        match &self.sink {
            Sink::Stdout => "stdout".into(),
            Sink::File { path, .. } => path.display().to_string(),
        }
    }

    /// Writes one line. Returns an error message when it should be
    /// reported (rate-limited); the caller sends it to stderr.
    pub fn write(&mut self, json: &str) -> Option<String> {
        let result = self.try_write(json);
        match result {
            Ok(()) => {
                if self.dropped > 0 {
                    let n = std::mem::take(&mut self.dropped);
                    let note = format!(
                        "{{\"kind\":\"lost\",\"time\":\"{}\",\"kernel_time\":null,\"source\":\"watchdog\",\"host\":null,\"count\":{n},\"detail\":\"events not written to the event log\"}}",
                        chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
                    );
                    if self.try_write(&note).is_err() {
                        // Said with the next line that does get written.
                        self.dropped += n;
                        return None;
                    }
                    return Some(format!(
                        "event log {} writable again; {n} events were not written",
                        self.describe()
                    ));
                }
                None
            }
            Err(e) => {
                self.dropped += 1;
                if let Sink::File { file, .. } = &mut self.sink {
                    *file = None;
                }
                let due = self.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY);
                due.then(|| {
                    self.last_report = Some(Instant::now());
                    format!(
                        "cannot write event log {}: {e} ({} events dropped so far; retrying)",
                        self.describe(),
                        self.dropped
                    )
                })
            }
        }
    }

    fn try_write(&mut self, json: &str) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(json.as_bytes())?;
                out.write_all(b"\n")?;
                out.flush()
            }
            Sink::File {
                path,
                file,
                size,
                max_bytes,
                keep,
                regular,
                torn,
            } => {
                let line = json.len() as u64 + 1;
                if file.is_some() && *regular && *size + line > *max_bytes && *size > 0 {
                    *file = None;
                    rotate(path, *keep)?;
                }
                if file.is_none() {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    // A FIFO opened for reading too would never block on
                    // open and would swallow its own lines: write-only.
                    let special = std::fs::metadata(&*path).is_ok_and(|m| !m.is_file());
                    let f = OpenOptions::new()
                        .create(true)
                        .append(true)
                        // To look at the last byte: is a line torn?
                        .read(!special)
                        .mode(0o640)
                        .open(&*path)?;
                    // Opening a FIFO blocks until it has a reader: this
                    // runs on the writer thread, never on the loop.
                    let kind = f.metadata()?.file_type();
                    use std::os::unix::fs::FileTypeExt;
                    *regular = kind.is_file();
                    if !*regular && !kind.is_fifo() && !kind.is_char_device() {
                        return Err(io::Error::other(
                            "not a regular file, a FIFO or a character device",
                        ));
                    }
                    *size = if *regular { f.metadata()?.len() } else { 0 };
                    *torn = *regular && !ends_a_line(&f, *size)?;
                    *file = Some(f);
                    if *regular && *size + line > *max_bytes && *size > 0 {
                        *file = None;
                        rotate(path, *keep)?;
                        return self.try_write(json);
                    }
                }
                let Some(f) = file.as_mut() else {
                    return Err(io::Error::other("event log not open"));
                };
                let mut buf = Vec::with_capacity(json.len() + 2);
                if *torn {
                    buf.push(b'\n');
                }
                buf.extend_from_slice(json.as_bytes());
                buf.push(b'\n');
                if let Err(e) = f.write_all(&buf) {
                    // Some of the line may be on disk: take it back, so
                    // the next line does not continue it.
                    if f.set_len(*size).is_err() {
                        *torn = true;
                    }
                    return Err(e);
                }
                *torn = false;
                *size += buf.len() as u64;
                Ok(())
            }
        }
    }

    /// Closes the file so the next write reopens it (SIGHUP, logrotate).
    pub fn reopen(&mut self) {
        if let Sink::File { file, .. } = &mut self.sink {
            *file = None;
        }
    }
}

/// True when the file is empty or its last byte ends a line.
fn ends_a_line(f: &File, size: u64) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    if size == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    f.read_at(&mut last, size - 1)?;
    Ok(last[0] == b'\n')
}

fn rotate(path: &std::path::Path, keep: u32) -> io::Result<()> {
    let name = |i: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    };
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(name(keep));
    for i in (1..keep).rev() {
        let _ = std::fs::rename(name(i), name(i + 1));
    }
    std::fs::rename(path, name(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/events.jsonl");
        let mut log = EventLog::new(p.to_str().unwrap(), 100, 2);
        for i in 0..20 {
            assert!(log
                .write(&format!(
                    "{{\"n\":{i:03},\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}}"
                ))
                .is_none());
        }
        let cur = std::fs::read_to_string(&p).unwrap();
        assert!(
            cur.len() <= 100 && cur.ends_with("\"n\":019,\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}\n"),
            "{cur}"
        );
        assert!(d.path().join("sub/events.jsonl.1").exists());
        assert!(d.path().join("sub/events.jsonl.2").exists());
        assert!(!d.path().join("sub/events.jsonl.3").exists());
    }

    #[test]
    fn failures_are_counted_reported_and_recovered() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("events.jsonl");
        std::fs::create_dir(&p).unwrap(); // a directory where the log goes
        let mut log = EventLog::new(p.to_str().unwrap(), 1 << 20, 1);
        let first = log.write("{}").expect("first failure is reported");
        assert!(first.contains("events.jsonl"), "{first}");
        assert!(log.write("{}").is_none(), "rate-limited");
        assert_eq!(log.dropped, 2);
        std::fs::remove_dir(&p).unwrap();
        let back = log.write("{\"a\":1}").expect("recovery is reported");
        assert!(back.contains("2 events were not written"), "{back}");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("{\"a\":1}\n{\"kind\":\"lost\""), "{text}");
        assert!(text.contains("\"count\":2"), "{text}");
    }

    #[test]
    fn a_torn_line_left_by_a_crash_is_terminated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("events.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"kind\":\"hung_ta").unwrap();
        let mut log = EventLog::new(p.to_str().unwrap(), 1 << 20, 1);
        assert!(log.write("{\"b\":2}").is_none());
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"kind\":\"hung_ta\n{\"b\":2}\n");
    }

    use crate::testing::Tmpfs;

    #[test]
    fn enospc_half_way_through_a_line_rolls_it_back() {
        let Some(fs) = Tmpfs::mount("64k") else {
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return;
        };
        let p = fs.path.join("events.jsonl");
        let mut log = EventLog::new(p.to_str().unwrap(), 1 << 20, 1);
        assert!(log.write("{\"first\":1}").is_none());
        // Fill the rest: the log's page still has ~4 KB of slack, so a
        // longer line starts landing and then hits ENOSPC.
        let filler = fs.path.join("filler");
        let _ = std::fs::write(&filler, vec![0u8; 128 * 1024]);
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(6000));
        let err = log.write(&big).expect("reported");
        assert!(err.contains("No space left"), "{err}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"first\":1}\n");
        std::fs::remove_file(&filler).unwrap();
        assert!(log.write("{\"next\":2}").is_some());
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1]["next"], 2);
        assert_eq!(lines[2]["kind"], "lost");
        assert_eq!(lines[2]["count"], 1);
    }
}
