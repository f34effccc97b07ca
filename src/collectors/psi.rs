//! Pressure stall information: the kernel's PSI triggers.
//!
//! Writing `some|full STALL_US WINDOW_US` (NUL-terminated) to
//! /proc/pressure/{memory,io,cpu} arms a trigger on that open file; the
//! kernel then wakes poll(2) with POLLPRI when tasks stalled that long
//! within the window. Nothing is read periodically: the daemon's loop
//! polls the descriptors with the others, and only a fired trigger costs a
//! read (for the avg10/avg60 the event carries, parsed by procfs-core).
//! One trigger per descriptor, as the kernel allows.
//!
//! PSI exists since Linux 4.20. RHEL 8 builds it disabled
//! (CONFIG_PSI_DEFAULT_DISABLED): /proc/pressure is absent until the
//! kernel runs with `psi=1`. [`Psi::open`] then says so once, and `watchdog
//! check` has the `psi` finding.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::settings::{PsiConfig, PsiTrigger};
use crate::events::{Body, Event, Pressure};
use crate::host::{paths, Host};

/// One armed trigger.
struct Armed {
    file: File,
    trigger: PsiTrigger,
}

/// The armed triggers.
pub struct Psi {
    armed: Vec<Armed>,
    /// Triggers the loop's poll saw fire. A trigger's POLLPRI is reported
    /// to one poll only (the kernel clears its event flag as it reports
    /// it), so the loop hands over what it saw.
    fired: Vec<bool>,
}

/// `(avg10, avg60)` of the `scope` line of a /proc/pressure file
/// (`some avg10=4.50 avg60=0.91 avg300=0.00 total=681245`).
pub fn averages(text: &str, scope: &str) -> Option<(f64, f64)> {
    let line = text.lines().find(|l| l.starts_with(scope))?;
    let r = procfs_core::parse_pressure_record(line).ok()?;
    // f32 in procfs-core; two decimals in the file.
    let round = |x: f32| (f64::from(x) * 100.0).round() / 100.0;
    Some((round(r.avg10), round(r.avg60)))
}

/// The text written to arm `t` (the kernel overwrites the last byte of
/// the write with a NUL, so it must be one).
pub fn trigger_text(t: &PsiTrigger) -> Vec<u8> {
    let mut b = format!(
        "{} {} {}",
        t.scope,
        t.stall_ms.saturating_mul(1000),
        t.window_ms.saturating_mul(1000)
    )
    .into_bytes();
    b.push(0);
    b
}

impl Psi {
    /// Arms every configured trigger. `Err` is the one message to give
    /// when none could be armed (PSI missing or disabled); triggers that
    /// failed alone are in the `Vec<String>` of problems.
    pub fn open(host: &Host, cfg: &PsiConfig) -> Result<(Psi, Vec<String>), String> {
        if !host.is_dir(paths::PRESSURE) {
            return Err(format!(
                "{} is missing: no pressure (PSI) events; Linux 4.20+ has PSI, RHEL 8 needs psi=1 on the kernel command line (see `watchdog check` finding psi)",
                host.path(paths::PRESSURE).display()
            ));
        }
        let mut armed = Vec::new();
        let mut problems = Vec::new();
        for t in &cfg.triggers {
            let path = host.path(&format!("{}/{}", paths::PRESSURE, t.resource));
            // Under a fixture root the files are plain text: they are
            // opened and polled, never written (nothing to arm).
            let live = host.is_live();
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .write(live)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&path);
            let mut file = match opened {
                Ok(f) => f,
                Err(e) => {
                    problems.push(format!("cannot open {}: {e}", path.display()));
                    continue;
                }
            };
            let wrote = if live {
                file.write_all(&trigger_text(t))
            } else {
                Ok(())
            };
            if let Err(e) = wrote {
                problems.push(format!(
                    "cannot arm {} {} {} ms/{} ms on {}: {e}",
                    t.resource,
                    t.scope,
                    t.stall_ms,
                    t.window_ms,
                    path.display()
                ));
                continue;
            }
            armed.push(Armed {
                file,
                trigger: t.clone(),
            });
        }
        if armed.is_empty() && !cfg.triggers.is_empty() {
            return Err(format!(
                "no PSI trigger could be armed: {}",
                problems.join("; ")
            ));
        }
        let fired = vec![false; armed.len()];
        Ok((Psi { armed, fired }, problems))
    }

    /// The descriptors to poll for POLLPRI.
    pub fn poll_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.armed.iter().map(|a| a.file.as_fd())
    }

    /// What each trigger is, for the start message.
    pub fn describe(&self) -> String {
        self.armed
            .iter()
            .map(|a| {
                format!(
                    "{} {} {} ms/{} ms",
                    a.trigger.resource, a.trigger.scope, a.trigger.stall_ms, a.trigger.window_ms
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What the loop's poll returned for [`poll_fds`](Self::poll_fds), in
    /// that order: which triggers fired.
    pub fn saw(&mut self, revents: &[Option<PollFlags>]) {
        for (f, r) in self.fired.iter_mut().zip(revents) {
            *f |= r.is_some_and(|r| r.contains(PollFlags::POLLPRI));
        }
    }

    /// One `pressure` event per trigger that fired since the last call:
    /// those the loop saw ([`saw`](Self::saw)) and those a zero-timeout
    /// poll of our own finds now.
    pub fn drain(&mut self, out: &mut Vec<Event>) {
        let now: Vec<bool> = {
            let mut fds: Vec<PollFd> = self
                .armed
                .iter()
                .map(|a| PollFd::new(a.file.as_fd(), PollFlags::POLLPRI))
                .collect();
            if nix::poll::poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) <= 0 {
                vec![false; fds.len()]
            } else {
                fds.iter()
                    .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLPRI)))
                    .collect()
            }
        };
        let fired: Vec<bool> = self.fired.iter().zip(now).map(|(a, b)| *a || b).collect();
        self.fired.iter_mut().for_each(|f| *f = false);
        for (a, fired) in self.armed.iter_mut().zip(fired) {
            if !fired {
                continue;
            }
            let (avg10, avg60) = read_averages(&mut a.file, &a.trigger.scope)
                .map_or((None, None), |(a10, a60)| (Some(a10), Some(a60)));
            out.push(Event {
                time: None,
                kernel_time: None,
                source: "proc".into(),
                host: None,
                line: None,
                incident: None,
                body: Body::Pressure(Pressure {
                    resource: a.trigger.resource.clone(),
                    scope: a.trigger.scope.clone(),
                    stall_us: a.trigger.stall_ms.saturating_mul(1000),
                    window_us: a.trigger.window_ms.saturating_mul(1000),
                    avg10,
                    avg60,
                }),
            });
        }
    }
}

/// Reads the pressure file behind an armed descriptor from its start.
fn read_averages(f: &mut File, scope: &str) -> Option<(f64, f64)> {
    f.seek(io::SeekFrom::Start(0)).ok()?;
    let mut buf = [0u8; 512];
    let n = f.read(&mut buf).ok()?;
    averages(std::str::from_utf8(&buf[..n]).ok()?, scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_of_each_scope() {
        // /proc/pressure/memory of a 6.1 kernel under a cgroup-limited hog.
        let text = "some avg10=41.23 avg60=12.07 avg300=2.81 total=9123456\n\
                    full avg10=38.90 avg60=10.55 avg300=2.40 total=8012345\n";
        assert_eq!(averages(text, "some"), Some((41.23, 12.07)));
        assert_eq!(averages(text, "full"), Some((38.9, 10.55)));
        // cpu before 5.13 has no full line.
        assert_eq!(
            averages("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "full"),
            None
        );
        assert_eq!(averages("some avg10=x\n", "some"), None);
    }

    #[test]
    fn trigger_text_is_microseconds_and_nul_terminated() {
        let t = PsiTrigger {
            resource: "memory".into(),
            scope: "full".into(),
            stall_ms: 100,
            window_ms: 1000,
        };
        assert_eq!(trigger_text(&t), b"full 100000 1000000\0");
    }

    #[test]
    fn missing_psi_is_one_message_and_a_fixture_file_arms_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path());
        let e = Psi::open(&host, &PsiConfig::default()).err().unwrap();
        assert!(e.contains("psi=1"), "{e}");
        std::fs::create_dir_all(dir.path().join("proc/pressure")).unwrap();
        std::fs::write(
            dir.path().join("proc/pressure/memory"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        let (mut psi, problems) = Psi::open(&host, &PsiConfig::default()).unwrap();
        assert_eq!(psi.describe(), "memory full 100 ms/1000 ms");
        assert_eq!(problems.len(), 1, "io is missing: {problems:?}");
        let mut out = Vec::new();
        psi.drain(&mut out);
        assert!(out.is_empty(), "a regular file never signals POLLPRI");
        // What the loop's poll saw is reported once, with the averages.
        psi.saw(&[Some(PollFlags::POLLPRI)]);
        psi.drain(&mut out);
        assert_eq!(out.len(), 1);
        let Body::Pressure(p) = &out[0].body else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                p.resource.as_str(),
                p.scope.as_str(),
                p.stall_us,
                p.window_us,
                p.avg10
            ),
            ("memory", "full", 100_000, 1_000_000, Some(0.0))
        );
        psi.drain(&mut out);
        assert_eq!(out.len(), 1, "no second event without a second firing");
    }
}
