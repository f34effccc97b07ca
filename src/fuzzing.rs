//! The library surface the fuzz crate (`fuzz/`, cargo-fuzz) drives, and
//! nothing else: each fuzz target imports only from here, so the rest of
//! the crate may keep its modules private without breaking the fuzzers.
//! Not an API for other programs; it changes with the parsers it exposes.

/// Saved logs and /dev/kmsg records: line framing and incident assembly.
pub mod parse {
    pub use crate::parse::frame::MAX_LINE;
    pub use crate::parse::{Framer, Parser, Record};
}

/// Events as `scan` prints them and rules see them, and their schema.
pub mod events {
    pub use crate::events::{kind_schema, Event, FieldType};
}

/// The live /dev/kmsg reader, behind a record source the target fakes.
pub mod kmsg {
    pub use crate::collectors::kmsg::{Drained, Reader, RecordSource, Start};
}

/// The `udplogger` receive path: the whole receiver (datagram in, log
/// file out) behind [`udplogger::Harness`], and its pure parts.
pub mod udplogger {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::{Duration, Instant, SystemTime};

    pub use crate::udplogger::assemble::{Assembler, End};
    use crate::udplogger::clock::Stamp;
    use crate::udplogger::names::Names;
    pub use crate::udplogger::settings::InputFormat;
    use crate::udplogger::settings::{Layout, OutputFormat, UdpLoggerConfig};
    use crate::udplogger::staged::{Batch, Staged};
    use crate::udplogger::{clock, lock, Receiver, Shared};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// The real [`Receiver`] writing JSON lines under a directory, driven
    /// the way `udplogger::run` drives it, with a clock of its own: each
    /// call is one millisecond later. Kept here, compiled and tested with
    /// the crate, so that a change of the receiver's interface shows up in
    /// `cargo test` rather than only when the fuzzers are next built.
    pub struct Harness {
        rx: Receiver,
        sh: Mutex<Shared>,
        /// The receiver's output goes through a worker's staging, as
        /// with several workers (the unit tests compare it with the
        /// direct path of one worker).
        staged: Staged,
        stamp: clock::Stamp,
        t0: Instant,
        step: u64,
    }

    /// What is left once everything was flushed: all zero when nothing
    /// was held back or lost.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Leftover {
        /// Bytes of lines not yet written to a file.
        pub unwritten: usize,
        /// Lines dropped because a file could not be written.
        pub dropped: u64,
    }

    impl Harness {
        /// A receiver of `format` input with `max_line` bytes per line,
        /// writing under `dir` (one file, or one directory per sender).
        /// The memory cap is lifted: a harness decides itself when
        /// unfinished lines are written ([`Harness::time_passes`]).
        pub fn new(
            dir: &Path,
            format: InputFormat,
            max_line: usize,
            per_sender: bool,
        ) -> Result<Harness, String> {
            let cfg = UdpLoggerConfig {
                dir: dir.display().to_string(),
                input: format,
                max_line_bytes: max_line,
                output_format: OutputFormat::Json,
                layout: if per_sender {
                    Layout::PerSender
                } else {
                    Layout::Single
                },
                ..UdpLoggerConfig::default()
            };
            let mut settings = cfg
                .compile("udplogger")
                .map_err(|e| crate::error::one_line(&e))?;
            settings.max_buffered = usize::MAX / 2;
            let stamp = clock::Stamper::new(clock::Zone::Utc, clock::Period::Daily)
                .stamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000));
            let names = Names::new(HashMap::new(), None)?;
            let settings = Arc::new(settings);
            Ok(Harness {
                sh: Mutex::new(Shared::new(&settings)),
                staged: Staged::default(),
                rx: Receiver::new(settings, names),
                stamp,
                t0: Instant::now(),
                step: 0,
            })
        }

        fn tick(&mut self) -> Instant {
            self.step += 1;
            self.t0 + Duration::from_millis(self.step)
        }

        /// Runs `f` on the receiver with the staged sink, then hands
        /// what it staged to the shared files, as a worker does after a
        /// batch.
        fn staged(&mut self, now: Instant, f: impl FnOnce(&mut Receiver, &mut Batch<'_>, &Stamp)) {
            let mut b = Batch {
                st: &mut self.staged,
                shared: &self.sh,
            };
            f(&mut self.rx, &mut b, &self.stamp);
            self.staged.apply(&mut lock(&self.sh), &self.stamp, now);
        }

        /// One datagram from `from`.
        pub fn datagram(&mut self, from: SocketAddr, data: &[u8]) {
            let now = self.tick();
            self.staged(now, |rx, b, stamp| rx.datagram(b, from, data, stamp, now));
        }

        /// The partial timeout passes: every unfinished line and record
        /// of every sender is written as it is.
        pub fn time_passes(&mut self) {
            let now = self.tick();
            self.staged(now, |rx, b, stamp| rx.flush_partials(b, stamp, now, true));
        }

        /// Shutdown: every unfinished line and record is written, then
        /// the buffers; what could not be is returned.
        pub fn finish(&mut self) -> Leftover {
            let now = self.tick();
            self.staged(now, |rx, b, stamp| rx.flush_partials(b, stamp, now, true));
            let mut sh = lock(&self.sh);
            sh.out.flush(&self.stamp, now);
            Leftover {
                unwritten: sh.out.held(),
                dropped: sh.out.stats.dropped,
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn harness_writes_json_lines_and_markers() {
            let dir = tempfile::tempdir().unwrap();
            let mut h = Harness::new(dir.path(), InputFormat::Auto, 64, false).unwrap();
            let a: SocketAddr = "127.0.0.1:6665".parse().unwrap();
            h.datagram(a, b"6,1,10,-;first\n");
            h.datagram(a, b"6,3,30,-;third\n");
            h.datagram("127.0.0.2:6665".parse().unwrap(), b"plain, unfinished");
            h.time_passes();
            let left = h.finish();
            assert_eq!(
                left,
                Leftover {
                    unwritten: 0,
                    dropped: 0
                }
            );
            let file = std::fs::read_dir(dir.path())
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            let text = std::fs::read_to_string(file).unwrap();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 4, "{text}");
            // In order within each sender (senders are flushed in no
            // particular order).
            let of = |who: &str| -> Vec<&serde_json::Value> {
                lines
                    .iter()
                    .filter(|l| l["source"] == who || l["about"] == who)
                    .collect()
            };
            let a = of("127.0.0.1:6665");
            assert_eq!(a.len(), 3, "{text}");
            assert_eq!(a[0]["text"], "first");
            assert_eq!(a[1]["marker"], "gap");
            assert_eq!(
                (a[1]["from"].as_u64(), a[1]["to"].as_u64()),
                (Some(2), Some(2))
            );
            assert_eq!(a[2]["text"], "third");
            let b = of("127.0.0.2:6665");
            assert_eq!(b.len(), 1, "{text}");
            assert_eq!(b[0]["text"], "plain, unfinished");
        }
    }
}

/// Configuration from YAML text.
pub mod config {
    pub use crate::config::Config;
}

/// The kernel's own text: /proc tables, command line, sizes, releases,
/// and the printk record header.
pub mod kernel {
    pub use crate::kernel::cmdline::Cmdline;
    pub use crate::kernel::printk::{self, Flag, Header, MAX_HEADER};
    pub use crate::kernel::size::{human, memparse, CrashKernel};
    pub use crate::kernel::tables::{
        headroom, kb_field, kconfig_value, loadavg_threads, uptime_secs, DentryState,
    };
    pub use crate::kernel::version::{compare_builds, KernelVersion};
    pub use crate::kernel::{parse_int, parse_uint, quote};
}

/// udplogger's marker lines, written and read back.
pub mod marker {
    pub use crate::marker::{parse_json, parse_line, Body, Kind, Marker, Value, MAX_GAP, SOURCE};
}

/// What ended the previous boot: the pstore parser and the verdict built
/// from a root directory's records.
pub mod lastboot {
    pub use crate::host::Host;
    pub use crate::lastboot::pstore::{join, parse_header, parse_part, read, Part};
    pub use crate::lastboot::{analyze, Options};
}

/// RFC 5424 messages as the forward targets get them, and their RFC 6587
/// framing.
pub mod forward {
    pub use crate::daemon::summary;
    pub use crate::forward::event_message;
    pub use crate::forward::message::{Builder, Header, MAX_MESSAGE};
    pub use crate::forward::transport::octet_frame;
    pub use crate::forward::udplogger::{line_message, marker_message};
}

/// Site patterns from the configuration.
pub mod patterns {
    pub use crate::events::Pattern;
    use crate::events::{Body, Event};
    pub use crate::patterns::{compile, PatternConfig};

    /// The JSON line of the `pattern` event a match makes.
    pub fn event_json(p: &Pattern) -> String {
        Event {
            time: None,
            kernel_time: None,
            source: "fuzz".into(),
            host: None,
            line: None,
            incident: None,
            body: Body::Pattern(p.clone()),
        }
        .to_json()
    }
}
