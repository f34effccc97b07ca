//! tracefs, in instances of our own: never the global buffer other tools
//! may be using, and everything we create is removed on exit.
//!
//! - `instances/NAME`: what we read through `trace_pipe` — a kprobe on
//!   `do_exit` filtered to deaths by signal (`code & 127`), the senders from
//!   `signal/signal_generate`, OOM victims from `oom/mark_victim`, and
//!   `vmscan/mm_shrink_slab_start` calls with a huge `total_scan`.
//! - `instances/NAME-flight`: the flight recorder, a ring buffer of recent
//!   scheduler events that the `ftrace_snapshot` action freezes and saves.
//!
//! Each feature degrades to one "not available on this kernel" message.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use super::settings::TracefsConfig;
use crate::events::{Body, DentryPressure, Event, OomKill, SignalDeath};
use crate::host::{paths, Host};
use crate::kernel::tables::headroom;
use crate::kernel::tracing::{locate, Tracing};

/// Signals that are sent all the time and never kill: not worth tracing
/// (SIGCHLD, SIGALRM, SIGURG, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGCONT).
const SIGNAL_FILTER: &str =
    "sig != 17 && sig != 14 && sig != 23 && sig != 26 && sig != 27 && sig != 28 && sig != 29 && sig != 18";
/// How long a sender is remembered waiting for its target to die.
const SENDER_TTL: Duration = Duration::from_secs(30);
const MAX_SENDERS: usize = 4096;
/// Threads of one process dying of one signal are one death.
const SAME_DEATH: Duration = Duration::from_secs(2);

/// One parsed line of `trace_pipe`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceLine<'a> {
    pub comm: &'a str,
    pub pid: u32,
    pub tgid: Option<u32>,
    pub ts: f64,
    pub event: &'a str,
    pub payload: &'a str,
}

/// Parses `COMM-PID [(TGID)] [CPU] FLAGS TIMESTAMP: EVENT: PAYLOAD`. The
/// comm may contain spaces and dashes; the pid is after the last dash
/// before the CPU field.
pub fn parse_trace_line(line: &str) -> Option<TraceLine<'_>> {
    // The CPU field: "[003]".
    let mut search = 0;
    let (cpu_open, cpu_close) = loop {
        let open = search + line[search..].find('[')?;
        let close = open + line[open..].find(']')?;
        if close > open + 1 && line[open + 1..close].bytes().all(|b| b.is_ascii_digit()) {
            break (open, close);
        }
        search = open + 1;
    };
    let mut task = line[..cpu_open].trim_end();
    let mut tgid = None;
    if task.ends_with(')') {
        let open = task.rfind('(')?;
        let t = task[open + 1..task.len() - 1].trim();
        tgid = t.parse().ok();
        task = task[..open].trim_end();
    }
    let task = task.trim_start();
    let dash = task.rfind('-')?;
    let comm = &task[..dash];
    let pid = task[dash + 1..].parse().ok()?;
    let rest = &line[cpu_close + 1..];
    // "FLAGS TIMESTAMP: EVENT: PAYLOAD"; flags are absent on old kernels.
    let colon = rest.find(": ")?;
    let ts = rest[..colon].split_whitespace().last()?.parse().ok()?;
    let after = &rest[colon + 2..];
    let (event, payload) = match after.find(": ") {
        Some(i) => (&after[..i], &after[i + 2..]),
        None => (after.trim_end_matches(':'), ""),
    };
    Some(TraceLine {
        comm,
        pid,
        tgid,
        ts,
        event: event.trim(),
        payload,
    })
}

/// `key=value` from a trace payload (values end at a space).
pub fn field<'a>(payload: &'a str, key: &str) -> Option<&'a str> {
    payload
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The number at the start of `text` (`2048kB` → 2048).
fn leading_u64(text: &str) -> Option<u64> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// `name N` pairs of mm_shrink_slab_start (`cache items 123 delta 4
/// total_scan 2`).
fn word_value(payload: &str, key: &str) -> Option<u64> {
    let words: Vec<&str> = payload.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == key)
        .and_then(|w| w[1].trim_end_matches(',').parse().ok())
}

struct Sender {
    pid: u32,
    comm: String,
    sig: u8,
    at: Instant,
}

/// The collector and everything it created.
pub struct Tracefs {
    host: Host,
    /// Tracing root relative to the host root.
    pub root: String,
    instance: String,
    flight: Option<String>,
    kprobe: Option<String>,
    mounted: bool,
    pipe: Option<File>,
    partial: Vec<u8>,
    senders: HashMap<u32, Sender>,
    deaths: HashMap<(u32, u8), Instant>,
    min_total_scan: u64,
    /// One line per feature that is not available.
    pub notes: Vec<String>,
}

fn write_file(host: &Host, rel: &str, data: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(host.path(rel))?;
    f.write_all(data.as_bytes())
}

fn append_file(host: &Host, rel: &str, data: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(host.path(rel))?;
    f.write_all(data.as_bytes())
}

/// Finds the tracing directory, mounting tracefs on a live host if the
/// kernel has it but nothing mounted it. Returns the directory and
/// whether we mounted it.
fn find_root(host: &Host) -> Option<(String, bool)> {
    let has = |d: &str| host.exists(&format!("{d}/trace"));
    if let Ok(Tracing::Mounted(dir)) = locate(host) {
        return Some((dir, false));
    }
    if host.is_live() && host.is_dir(paths::TRACEFS) {
        let target = host.path(paths::TRACEFS);
        let ok = nix::mount::mount(
            Some("nodev"),
            &target,
            Some("tracefs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .is_ok();
        if ok && has(paths::TRACEFS) {
            return Some((paths::TRACEFS.to_string(), true));
        }
    }
    None
}

/// Creates (or takes over a stale) instance directory.
fn make_instance(host: &Host, rel: &str) -> io::Result<()> {
    let p = host.path(rel);
    if p.is_dir() {
        // Left by a run that was killed: start from a clean buffer.
        let _ = std::fs::remove_dir(&p);
    }
    match std::fs::create_dir(&p) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

impl Tracefs {
    /// Sets up what the configuration asks for. `None` (with the reason)
    /// when tracefs itself is not available.
    pub fn setup(host: &Host, cfg: &TracefsConfig) -> Result<Tracefs, String> {
        let Some((root, mounted)) = find_root(host) else {
            return Err("tracefs is not available (not mounted at /sys/kernel/tracing or /sys/kernel/debug/tracing, and could not be mounted)".into());
        };
        let instance = format!("{root}/instances/{}", cfg.instance);
        let mut t = Tracefs {
            host: host.clone(),
            root: root.clone(),
            instance: instance.clone(),
            flight: None,
            kprobe: None,
            mounted,
            pipe: None,
            partial: Vec::new(),
            senders: HashMap::new(),
            deaths: HashMap::new(),
            min_total_scan: cfg.shrink_slab_min_total_scan,
            notes: Vec::new(),
        };
        if let Err(e) = make_instance(host, &instance) {
            return Err(format!(
                "cannot create tracefs instance {}: {e}",
                host.path(&instance).display()
            ));
        }
        let _ = write_file(host, &format!("{instance}/options/record-tgid"), "1");
        let mut any = false;
        if cfg.signal_deaths {
            match t.setup_signal_deaths(&cfg.instance) {
                Ok(()) => any = true,
                Err(e) => t.notes.push(format!("signal deaths not traced: {e}")),
            }
        }
        if cfg.oom_victims {
            match t.enable("oom/mark_victim", None) {
                Ok(()) => any = true,
                Err(e) => t.notes.push(format!("OOM victims not traced: {e}")),
            }
        }
        if cfg.shrink_slab {
            let filter = format!("total_scan >= {}", cfg.shrink_slab_min_total_scan);
            match t.enable("vmscan/mm_shrink_slab_start", Some(&filter)) {
                Ok(()) => any = true,
                Err(e) => t.notes.push(format!("slow dentry reclaim not traced: {e}")),
            }
        }
        if any {
            match std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(host.path(&format!("{instance}/trace_pipe")))
            {
                Ok(f) => t.pipe = Some(f),
                Err(e) => t.notes.push(format!("cannot open trace_pipe: {e}")),
            }
        }
        if !cfg.flight_recorder_events.is_empty() {
            match t.setup_flight(cfg) {
                Ok(()) => {}
                Err(e) => t
                    .notes
                    .push(format!("no flight recorder for snapshots: {e}")),
            }
        }
        Ok(t)
    }

    fn enable(&self, event: &str, filter: Option<&str>) -> Result<(), String> {
        let dir = format!("{}/events/{event}", self.instance);
        if !self.host.is_dir(&dir) {
            return Err(format!("this kernel has no {event} event"));
        }
        if let Some(f) = filter {
            write_file(&self.host, &format!("{dir}/filter"), f)
                .map_err(|e| format!("filter {f:?} for {event} refused: {e}"))?;
        }
        write_file(&self.host, &format!("{dir}/enable"), "1")
            .map_err(|e| format!("cannot enable {event}: {e}"))
    }

    fn setup_signal_deaths(&mut self, group: &str) -> Result<(), String> {
        let kprobe_events = format!("{}/kprobe_events", self.root);
        if !self.host.exists(&kprobe_events) {
            return Err("this kernel has no kprobe_events (CONFIG_KPROBE_EVENTS)".into());
        }
        let name = format!("{group}/do_exit");
        // A probe of the same name left by a killed run is removed first.
        let _ = append_file(&self.host, &kprobe_events, &format!("-:{name}\n"));
        // $arg1 needs Linux 4.20; older x86_64 kernels name the register.
        let mut added = false;
        for arg in ["$arg1", "%di"] {
            let def = format!("p:{name} do_exit code={arg}:s32\n");
            if append_file(&self.host, &kprobe_events, &def).is_ok() {
                added = true;
                break;
            }
        }
        if !added {
            return Err("kprobe on do_exit refused by the kernel".into());
        }
        self.kprobe = Some(name.clone());
        self.enable(&name, Some("code & 127"))?;
        if let Err(e) = self.enable("signal/signal_generate", Some(SIGNAL_FILTER)) {
            self.notes
                .push(format!("senders of signals not traced: {e}"));
        }
        Ok(())
    }

    fn setup_flight(&mut self, cfg: &TracefsConfig) -> Result<(), String> {
        let dir = format!("{}/instances/{}-flight", self.root, cfg.instance);
        make_instance(&self.host, &dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
        self.flight = Some(dir.clone());
        if !self.host.exists(&format!("{dir}/snapshot")) {
            return Err("this kernel has no snapshot file (CONFIG_TRACER_SNAPSHOT)".into());
        }
        let _ = write_file(
            &self.host,
            &format!("{dir}/buffer_size_kb"),
            &cfg.flight_recorder_buffer_kb.to_string(),
        );
        let mut enabled = 0;
        for ev in &cfg.flight_recorder_events {
            let p = format!("{dir}/events/{ev}/enable");
            match write_file(&self.host, &p, "1") {
                Ok(()) => enabled += 1,
                Err(e) => self
                    .notes
                    .push(format!("flight recorder: {ev} not enabled: {e}")),
            }
        }
        if enabled == 0 {
            return Err("none of the flight recorder's events could be enabled".into());
        }
        Ok(())
    }

    /// The flight recorder's directory, for the snapshot trigger.
    pub fn flight_dir(&self) -> Option<String> {
        self.flight
            .clone()
            .filter(|d| self.host.exists(&format!("{d}/snapshot")))
    }

    pub fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(|f| f.as_fd())
    }

    /// Reads what `trace_pipe` has and turns it into events.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<Event>) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..256 {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            if self.partial.len() > 64 * 1024 {
                self.partial.clear();
            }
            return;
        };
        let rest = self.partial.split_off(end + 1);
        let chunk = std::mem::replace(&mut self.partial, rest);
        for line in chunk.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            if let Some(t) = parse_trace_line(&line) {
                self.handle(&t, now, out);
            }
        }
        self.senders
            .retain(|_, s| now.saturating_duration_since(s.at) < SENDER_TTL);
        self.deaths
            .retain(|_, t| now.saturating_duration_since(*t) < SAME_DEATH);
    }

    /// One trace line; public for tests.
    pub fn handle(&mut self, t: &TraceLine<'_>, now: Instant, out: &mut Vec<Event>) {
        let event = |body| Event {
            time: None,
            kernel_time: Some(t.ts),
            source: "tracefs".into(),
            host: None,
            line: None,
            incident: None,
            body,
        };
        match t.event {
            "signal_generate" => {
                let (Some(sig), Some(target)) = (
                    field(t.payload, "sig").and_then(|s| s.parse::<u8>().ok()),
                    field(t.payload, "pid").and_then(|s| s.parse::<u32>().ok()),
                ) else {
                    return;
                };
                if self.senders.len() >= MAX_SENDERS {
                    self.senders.clear();
                }
                self.senders.insert(
                    target,
                    Sender {
                        pid: t.tgid.unwrap_or(t.pid),
                        comm: t.comm.trim().to_string(),
                        sig,
                        at: now,
                    },
                );
            }
            e if e == "do_exit" || e.ends_with("/do_exit") => {
                let Some(code) = field(t.payload, "code").and_then(|c| c.parse::<i32>().ok())
                else {
                    return;
                };
                let Ok(sig) = u8::try_from(code & 0x7f) else {
                    return;
                };
                if sig == 0 {
                    return;
                }
                let tgid = t.tgid.unwrap_or(t.pid);
                if self.deaths.insert((tgid, sig), now).is_some() {
                    return; // another thread of the same death
                }
                let sender = self
                    .senders
                    .get(&tgid)
                    .or_else(|| self.senders.get(&t.pid))
                    .filter(|s| s.sig == sig);
                out.push(event(Body::SignalDeath(SignalDeath {
                    pid: Some(tgid),
                    tid: Some(t.pid),
                    comm: t.comm.trim().to_string(),
                    signal: sig,
                    signal_name: crate::events::signal_name(sig).to_string(),
                    core_dumped: Some(code & 0x80 != 0),
                    sender_pid: sender.map(|s| s.pid),
                    sender_comm: sender.map(|s| s.comm.clone()),
                })));
            }
            "mark_victim" => {
                // Linux 6.8 extended the event; sizes are in kB already.
                let num = |k: &str| {
                    field(t.payload, k)
                        .or_else(|| field(t.payload, &k.replace('_', "-")))
                        .and_then(leading_u64)
                };
                let Some(pid) = field(t.payload, "pid").and_then(|v| v.parse::<u32>().ok()) else {
                    return;
                };
                out.push(event(Body::OomKill(OomKill {
                    pid: Some(pid),
                    comm: field(t.payload, "comm").map(str::to_string),
                    memcg: false,
                    total_vm_kb: num("total_vm"),
                    anon_rss_kb: num("anon_rss"),
                    file_rss_kb: num("file_rss"),
                    shmem_rss_kb: num("shmem_rss"),
                    uid: field(t.payload, "uid").and_then(|v| v.parse().ok()),
                    oom_score_adj: field(t.payload, "oom_score_adj").and_then(|v| v.parse().ok()),
                    constraint: None,
                    trigger_comm: None,
                    trigger_pid: None,
                    task_memcg: None,
                    oom_memcg: None,
                })));
            }
            "mm_shrink_slab_start" => {
                let Some(total_scan) = word_value(t.payload, "total_scan") else {
                    return;
                };
                if total_scan < self.min_total_scan {
                    return;
                }
                let shrinker = t
                    .payload
                    .split_whitespace()
                    .next()
                    .map(|s| s.split('+').next().unwrap_or(s).to_string());
                let (nr_dentry, nr_unused, pressure) =
                    super::proc::dentry_now(&self.host).unwrap_or((0, 0, 100));
                out.push(event(Body::DentryPressure(DentryPressure {
                    nr_dentry,
                    nr_unused,
                    vfs_cache_pressure: pressure,
                    headroom: headroom(nr_unused, pressure),
                    reason: Some(format!(
                        "shrink_slab asked to scan {total_scan} objects ({})",
                        shrinker.clone().unwrap_or_default()
                    )),
                    total_scan: Some(total_scan),
                    shrinker,
                })));
            }
            _ => {}
        }
    }

    /// Removes everything we created. Safe to call twice.
    pub fn cleanup(&mut self) {
        self.pipe = None;
        for dir in [Some(self.instance.clone()), self.flight.take()]
            .into_iter()
            .flatten()
        {
            let _ = write_file(&self.host, &format!("{dir}/events/enable"), "0");
            let _ = write_file(&self.host, &format!("{dir}/tracing_on"), "0");
            let _ = std::fs::remove_dir(self.host.path(&dir));
        }
        if let Some(name) = self.kprobe.take() {
            let _ = append_file(
                &self.host,
                &format!("{}/kprobe_events", self.root),
                &format!("-:{name}\n"),
            );
        }
        if self.mounted {
            self.mounted = false;
            let _ = nix::mount::umount(&self.host.path(&self.root));
        }
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trace_lines_of_several_kernels() {
        // Linux 6.1, kprobe event with record-tgid.
        let l = parse_trace_line(
            "           sleep-123     (    123) [000] d..1.  1234.567890: do_exit: (do_exit+0x0/0xa90) code=11",
        )
        .unwrap();
        assert_eq!(
            (l.comm.trim(), l.pid, l.tgid, l.event),
            ("sleep", 123, Some(123), "do_exit")
        );
        assert_eq!(l.ts, 1234.56789);
        assert_eq!(field(l.payload, "code"), Some("11"));
        // Linux 4.x: no tgid, four flag characters; comm with a dash and space.
        let l = parse_trace_line(
            " kworker/u8:2-my job-4711  [003] ....  99.000001: signal_generate: sig=9 errno=0 code=0 comm=victim pid=42 grp=1 res=0",
        )
        .unwrap();
        assert_eq!(
            (l.comm.trim(), l.pid, l.tgid),
            ("kworker/u8:2-my job", 4711, None)
        );
        assert_eq!(field(l.payload, "pid"), Some("42"));
        // Linux 3.10: no flags column at all.
        let l = parse_trace_line("  bash-1 [001] 5.5: mark_victim: pid=77").unwrap();
        assert_eq!((l.event, l.payload), ("mark_victim", "pid=77"));
        assert!(parse_trace_line("# tracer: nop").is_none());
        assert!(parse_trace_line("").is_none());
    }

    fn tracefs_for_test() -> Tracefs {
        Tracefs {
            host: Host::new("/nonexistent"),
            root: String::new(),
            instance: String::new(),
            flight: None,
            kprobe: None,
            mounted: false,
            pipe: None,
            partial: Vec::new(),
            senders: HashMap::new(),
            deaths: HashMap::new(),
            min_total_scan: 1000,
            notes: Vec::new(),
        }
    }

    #[test]
    fn sigkill_death_carries_its_sender_once_per_process() {
        let mut t = tracefs_for_test();
        let now = Instant::now();
        let mut out = Vec::new();
        for line in [
            "            kill-300     (    300) [001] d..1.  10.0: signal_generate: sig=9 errno=0 code=0 comm=sleep pid=200 grp=1 res=0",
            "           sleep-200     (    200) [000] d..1.  10.1: do_exit: (do_exit+0x0/0xa90) code=9",
            "           sleep-201     (    200) [000] d..1.  10.1: do_exit: (do_exit+0x0/0xa90) code=9",
            "            segv-400     (    400) [000] d..1.  11.0: do_exit: (do_exit+0x0/0xa90) code=139",
        ] {
            t.handle(&parse_trace_line(line).unwrap(), now, &mut out);
        }
        assert_eq!(out.len(), 2, "{out:?}");
        let Body::SignalDeath(k) = &out[0].body else {
            panic!()
        };
        assert_eq!(
            (k.pid, k.signal, k.signal_name.as_str()),
            (Some(200), 9, "SIGKILL")
        );
        assert_eq!(
            (k.sender_pid, k.sender_comm.as_deref()),
            (Some(300), Some("kill"))
        );
        let Body::SignalDeath(s) = &out[1].body else {
            panic!()
        };
        assert_eq!(
            (s.signal, s.core_dumped, s.sender_pid),
            (11, Some(true), None)
        );
    }

    #[test]
    fn oom_victim_and_shrinker() {
        let mut t = tracefs_for_test();
        let mut out = Vec::new();
        let now = Instant::now();
        // Linux 6.x mark_victim carries more than the pid.
        t.handle(&parse_trace_line("  hog-9 [0] .... 3.0: mark_victim: pid=9 uid=0 comm=hog total_vm=4096kB anon_rss=2000kB file_rss=0kB shmem_rss=0kB pgtables=100kB oom_score_adj=0").unwrap(), now, &mut out);
        t.handle(&parse_trace_line("  kswapd0-50 [1] .... 4.0: mm_shrink_slab_start: super_cache_scan+0x0/0x1b0 00000000f3c2 : nid: 0 objects to shrink 0 gfp_flags GFP_KERNEL cache items 5000000 delta 4 total_scan 2000000 priority 12").unwrap(), now, &mut out);
        t.handle(&parse_trace_line("  kswapd0-50 [1] .... 4.0: mm_shrink_slab_start: super_cache_scan+0x0/0x1b0 00000000f3c2 : nid: 0 objects to shrink 0 gfp_flags GFP_KERNEL cache items 5 delta 4 total_scan 20 priority 12").unwrap(), now, &mut out);
        assert_eq!(out.len(), 2);
        let Body::OomKill(o) = &out[0].body else {
            panic!()
        };
        assert_eq!(
            (o.pid, o.comm.as_deref(), o.anon_rss_kb),
            (Some(9), Some("hog"), Some(2000))
        );
        let Body::DentryPressure(d) = &out[1].body else {
            panic!()
        };
        assert_eq!(
            (d.total_scan, d.shrinker.as_deref()),
            (Some(2_000_000), Some("super_cache_scan"))
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            if let Some(l) = parse_trace_line(&s) {
                let mut t = tracefs_for_test();
                let mut out = Vec::new();
                t.handle(&l, Instant::now(), &mut out);
            }
        }
    }
}
