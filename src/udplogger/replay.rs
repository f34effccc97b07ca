//! Workers without sockets: what parsing on every core buys, for the
//! benchmark (`examples/udpload.rs replay`).
//!
//! On a small machine whose sender shares the cores, the socket's own
//! cost and the sender hide how the workers' parsing scales. Here each of
//! `workers` threads has its own receiver and its own senders and feeds
//! it made-up datagrams (generated before the clock starts) in batches of
//! `BATCH`, exactly as a worker feeds what `recvmmsg` returned: either
//! through the one-worker path (the shared lock held for each batch, the
//! lines appended as they come), or staged (parsed without the lock,
//! handed over once per batch). The files are written to `dir` as the
//! receiver writes them. Wall time and CPU time are measured around the
//! threads.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::clock::Stamper;
use super::names::Names;
use super::settings::UdpLoggerConfig;
use super::staged::{Batch, Direct, Staged};
use super::{lock, Receiver, Shared, BATCH};

/// What a replay did.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    /// Lines written (records, for extended traffic).
    pub lines: u64,
    pub wall: Duration,
    /// CPU time of the whole process (all threads) during the replay.
    pub cpu: Duration,
}

/// The made-up traffic of one worker: `senders` senders, `lines` lines
/// each, one extended record per datagram or eight plain lines.
fn traffic(
    worker: usize,
    senders: usize,
    lines: usize,
    extended: bool,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let per = if extended { 1 } else { 8 };
    let mut out = Vec::new();
    let mut next = vec![0usize; senders];
    while next.iter().any(|&n| n < lines) {
        for (s, n) in next.iter_mut().enumerate() {
            if *n >= lines {
                continue;
            }
            let w = u8::try_from(worker % 250).unwrap_or(0);
            let port = u16::try_from(6665 + s).unwrap_or(6665);
            let addr = SocketAddr::from(([10, 1, w, 1], port));
            let mut d = Vec::new();
            for _ in 0..per.min(lines - *n) {
                let text = format!(
                    "loadgen w={worker} s={s:02} n={:07} {}END",
                    *n,
                    "x".repeat(50)
                );
                if extended {
                    let ts = 5_000_000 + *n as u64 * 100;
                    d.extend_from_slice(format!("6,{},{ts},-;{text}\n", *n).as_bytes());
                } else {
                    d.extend_from_slice(text.as_bytes());
                    d.push(b'\n');
                }
                *n += 1;
            }
            out.push((addr, d));
        }
    }
    out
}

fn cpu_time() -> Duration {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map_or(
        Duration::ZERO,
        |u| {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            tv(u.user_time()) + tv(u.system_time())
        },
    )
}

/// Replays `lines` lines from each of `senders` senders on each of
/// `workers` workers into files under `dir` (detection on), `staged` or
/// through the one-worker path.
pub fn replay(
    dir: &Path,
    workers: usize,
    senders: usize,
    lines: usize,
    extended: bool,
    staged: bool,
) -> Result<Replayed, String> {
    let cfg = UdpLoggerConfig {
        dir: dir.display().to_string(),
        ..UdpLoggerConfig::default()
    };
    let settings = cfg
        .compile("udplogger")
        .map_err(|e| crate::error::one_line(&e))?;
    let settings = Arc::new(settings);
    let names = Names::new(std::collections::HashMap::new(), None)?;
    let shared = Mutex::new(Shared::new(&settings));
    let work: Vec<_> = (0..workers.max(1))
        .map(|w| traffic(w, senders, lines, extended))
        .collect();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        for datagrams in &work {
            let mut rx = Receiver::new(Arc::clone(&settings), names.clone());
            let shared = &shared;
            let settings = &settings;
            scope.spawn(move || {
                let mut stamper = Stamper::new(settings.zone, settings.period);
                let mut st = Staged::default();
                for chunk in datagrams.chunks(BATCH) {
                    let stamp = stamper.stamp(SystemTime::now());
                    let now = Instant::now();
                    if staged {
                        let mut b = Batch {
                            st: &mut st,
                            shared,
                        };
                        for (addr, d) in chunk {
                            rx.datagram(&mut b, *addr, d, &stamp, now);
                        }
                        st.apply(&mut lock(shared), &stamp, now);
                    } else {
                        let mut sh = lock(shared);
                        let mut d = Direct::new(&mut sh, &stamp, now);
                        for (addr, data) in chunk {
                            rx.datagram(&mut d, *addr, data, &stamp, now);
                        }
                    }
                }
                let stamp = stamper.stamp(SystemTime::now());
                let now = Instant::now();
                let mut sh = lock(shared);
                rx.flush_partials(&mut Direct::new(&mut sh, &stamp, now), &stamp, now, true);
                sh.out.flush(&stamp, now);
            });
        }
    });
    let wall = t0.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let sh = lock(&shared);
    Ok(Replayed {
        lines: sh.out.stats.lines,
        wall,
        cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_every_worker_is_written_either_way() {
        for extended in [false, true] {
            for staged in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let r = replay(dir.path(), 2, 3, 100, extended, staged).unwrap();
                assert_eq!(r.lines, 600, "extended {extended} staged {staged}");
                let mut text = String::new();
                for p in crate::testing::walk(dir.path()) {
                    text.push_str(&std::fs::read_to_string(p).unwrap());
                }
                for w in 0..2 {
                    for s in 0..3 {
                        for n in 0..100 {
                            let line = format!("loadgen w={w} s={s:02} n={n:07} ");
                            assert_eq!(text.matches(&line).count(), 1, "{line}");
                        }
                    }
                }
            }
        }
    }
}
