//! The event log: one JSON object per line, rotated by size
//! (`events.jsonl` → `events.jsonl.1` → … → `events.jsonl.N`).
//!
//! A full disk or a vanished directory never stops the daemon: the line is
//! counted as dropped, the failure reported at most once a minute, and the
//! next write tries again (reopening the file); once writing works again a
//! line records how many were dropped.

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
                    let _ = self.try_write(&note);
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
                    let f = OpenOptions::new()
                        .create(true)
                        .append(true)
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
                let mut buf = Vec::with_capacity(json.len() + 1);
                buf.extend_from_slice(json.as_bytes());
                buf.push(b'\n');
                f.write_all(&buf)?;
                *size += line;
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
}
