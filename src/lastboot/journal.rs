//! The previous boot in the system's own logs: the persistent journal
//! (through `journalctl`, a child with a deadline and a size cap), or
//! `/var/log/messages` / `kern.log` after the last boot marker before this
//! boot; and the lines that say a boot ended on purpose.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::host::{paths, Host};

/// How a boot ended, by what its last lines say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Reboot,
    Poweroff,
}

/// Lines printed on the way down of an orderly shutdown. Kernel text per
/// kernel/reboot.c (`pr_emerg("Restarting system\n")` with pr_fmt
/// `reboot: `, since 3.15; `Restarting system.` before), systemd's
/// target names (`Reached target System Reboot.` since v246,
/// `Reboot.` before), and kexec_core's `Starting new kernel`.
pub fn end_marker(text: &str) -> Option<End> {
    const REBOOT: &[&str] = &[
        "reboot: Restarting system",
        "Restarting system.",
        "Reached target System Reboot",
        "Reached target Reboot",
        "Reached target Reboot via kexec",
        "Reached target System Reboot via kexec",
        "kexec_core: Starting new kernel",
        "Starting new kernel",
    ];
    const POWEROFF: &[&str] = &[
        "reboot: Power down",
        "Power down.",
        "reboot: System halted",
        "System halted.",
        "Reached target System Power Off",
        "Reached target Power-Off",
        "Reached target System Halt",
        "Reached target Halt",
        "Reached target System Shutdown",
        "Reached target Shutdown",
    ];
    let t = text.trim();
    if REBOOT.iter().any(|m| t.contains(m)) {
        Some(End::Reboot)
    } else if POWEROFF.iter().any(|m| t.contains(m)) {
        Some(End::Poweroff)
    } else {
        None
    }
}

/// The last end marker in a text whose lines may carry any log prefix.
pub fn last_end(text: &str) -> Option<End> {
    text.lines().rev().find_map(end_marker)
}

/// Whether the journal keeps earlier boots: `var/log/journal` exists and
/// journald.conf does not say `Storage=volatile` or `none`.
pub fn is_persistent(host: &Host) -> bool {
    if !host.is_dir(paths::JOURNAL_DIR) {
        return false;
    }
    let storage = host
        .read(paths::JOURNALD_CONF)
        .ok()
        .and_then(|c| {
            c.lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("Storage="))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    !matches!(storage.as_str(), "volatile" | "none")
}

/// Output of a child process: at most the last `cap` bytes, whether more
/// was cut, and whether it was stopped at its deadline.
#[derive(Debug, Default)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub cut: bool,
    pub timed_out: bool,
}

/// Runs `cmd`, keeping the last `cap` bytes of its stdout, killing it at
/// `timeout`. The reader runs on its own thread so that a child that
/// stops writing cannot hold the caller past the deadline.
pub fn run_capped(mut cmd: Command, timeout: Duration, cap: usize) -> Result<Output, String> {
    use std::os::unix::process::CommandExt;
    use std::sync::{Arc, Mutex};
    let name = cmd.get_program().to_string_lossy().into_owned();
    // Its own process group, so that a deadline ends whatever it started.
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    let kill = |child: &mut std::process::Child| {
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.kill();
        let _ = child.wait();
    };
    let Some(mut stdout) = child.stdout.take() else {
        kill(&mut child);
        return Err(format!("{name}: no output pipe"));
    };
    // What the reader has so far: taken as it is at the deadline.
    let shared = Arc::new(Mutex::new((Vec::<u8>::new(), false)));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("lastboot-journal".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let Ok(mut g) = sink.lock() else { break };
                        let (keep, cut) = &mut *g;
                        keep.extend_from_slice(&buf[..n]);
                        // Keep the tail: the end of a boot is what tells.
                        // Trimmed at twice the cap, so that a long output
                        // costs one move per `cap` bytes, not per read.
                        if keep.len() > cap.saturating_mul(2) {
                            let drop = keep.len() - cap;
                            keep.drain(..drop);
                            *cut = true;
                        }
                    }
                }
            }
            let _ = tx.send(());
        })
        .map_err(|e| format!("{name}: {e}"))?;
    let timed_out = rx.recv_timeout(timeout).is_err();
    kill(&mut child);
    let (mut bytes, mut cut) = match shared.lock() {
        Ok(mut g) => std::mem::take(&mut *g),
        Err(_) => (Vec::new(), false),
    };
    if bytes.len() > cap {
        bytes.drain(..bytes.len() - cap);
        cut = true;
    }
    Ok(Output {
        bytes,
        cut,
        timed_out,
    })
}

/// The `journalctl` to run: `WATCHDOG_JOURNALCTL` when set (tests point
/// it at a recorded export), else the one in PATH.
fn journalctl() -> String {
    std::env::var("WATCHDOG_JOURNALCTL").unwrap_or_else(|_| "journalctl".to_string())
}

/// `journalctl ARGS` for the previous boot of the host under the root.
pub fn command(host: &Host, args: &[&str]) -> Command {
    let mut c = Command::new(journalctl());
    if !host.is_live() {
        c.arg("--directory").arg(host.path(paths::JOURNAL_DIR));
    }
    c.args(["--no-pager", "-b", "-1", "-o", "json"]).args(args);
    c
}

/// The journal's view of the previous boot: its kernel messages (JSON
/// lines) and its last entries of any kind.
#[derive(Debug, Default)]
pub struct Journal {
    pub kernel: String,
    pub tail: String,
    pub notes: Vec<String>,
}

/// Reads the previous boot from the journal. `Err` when journalctl could
/// not be run at all.
pub fn read(host: &Host, timeout: Duration, cap: usize) -> Result<Journal, String> {
    let mut j = Journal::default();
    let k = run_capped(command(host, &["-k"]), timeout, cap)?;
    if k.cut {
        j.notes.push(format!(
            "journal: only the last {} KiB of the previous boot's kernel messages were read",
            cap / 1024
        ));
    }
    if k.timed_out {
        j.notes.push(format!(
            "journal: journalctl -k -b -1 did not finish within {} s",
            timeout.as_secs()
        ));
    }
    j.kernel = String::from_utf8_lossy(&k.bytes).into_owned();
    let t = run_capped(command(host, &["-n", "100"]), timeout, cap)?;
    j.tail = String::from_utf8_lossy(&t.bytes).into_owned();
    Ok(j)
}

/// `MESSAGE` and `_BOOT_ID` of one `journalctl -o json` line.
pub fn entry(line: &str) -> Option<(String, Option<String>)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let msg = match v.get("MESSAGE")? {
        serde_json::Value::String(s) => s.clone(),
        // Non-UTF-8 messages are arrays of bytes.
        serde_json::Value::Array(a) => {
            let b: Vec<u8> = a
                .iter()
                .filter_map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => return None,
    };
    let boot = v
        .get("_BOOT_ID")
        .and_then(|b| b.as_str())
        .map(str::to_string);
    Some((msg, boot))
}

/// How the journal's last entries say the boot ended, and its boot id.
pub fn tail_end(tail: &str) -> (Option<End>, Option<String>) {
    let mut end = None;
    let mut boot = None;
    for (msg, b) in tail.lines().filter_map(entry) {
        if let Some(e) = end_marker(&msg) {
            // A reboot target outranks the generic shutdown target that
            // precedes it.
            if end != Some(End::Reboot) {
                end = Some(e);
            }
        }
        if b.is_some() {
            boot = b;
        }
    }
    (end, boot)
}

/// The boot id of a `journalctl -o json` text.
pub fn boot_id(json_lines: &str) -> Option<String> {
    json_lines
        .lines()
        .rev()
        .find_map(|l| entry(l).and_then(|(_, b)| b))
}

/// The syslog file with kernel messages, newest kind first.
pub const SYSLOG_FILES: &[&str] = &[paths::VAR_LOG_MESSAGES, paths::VAR_LOG_KERN];

/// What of a syslog file is read, at most (its end).
pub const SYSLOG_TAIL: u64 = 16 << 20;

/// The lines of the previous boot in a syslog text: those logged before
/// `boot_start` (this boot's start, when known), from the last kernel
/// `Linux version` line among them. `time_of` gives a line's wall time
/// as a comparable instant.
pub fn previous_boot_lines(
    text: &str,
    boot_start: Option<chrono::NaiveDateTime>,
    time_of: impl Fn(&str) -> Option<chrono::NaiveDateTime>,
) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(start) = boot_start {
        if let Some(cut) = lines
            .iter()
            .position(|l| time_of(l).is_some_and(|t| t >= start))
        {
            lines.truncate(cut);
        }
    }
    let from = lines
        .iter()
        .rposition(|l| l.contains("kernel: Linux version ") || l.contains("] Linux version "))
        .unwrap_or(0);
    lines.split_off(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_markers_from_kernel_and_systemd() {
        assert_eq!(
            end_marker("[   88.1] reboot: Restarting system"),
            Some(End::Reboot)
        );
        assert_eq!(end_marker("reboot: Power down"), Some(End::Poweroff));
        assert_eq!(
            end_marker("Reached target System Power Off."),
            Some(End::Poweroff)
        );
        assert_eq!(end_marker("Reached target Reboot."), Some(End::Reboot));
        assert_eq!(end_marker("Kernel panic - not syncing: x"), None);
        assert_eq!(last_end("a\nreboot: Power down\nb\n"), Some(End::Poweroff));
    }

    #[test]
    fn journal_tail_reboot_outranks_shutdown() {
        let tail = r#"{"MESSAGE":"Reached target System Shutdown.","_BOOT_ID":"b1"}
{"MESSAGE":"Reached target System Reboot.","_BOOT_ID":"b1"}
{"MESSAGE":[74,111,117,114,110,97,108,32,115,116,111,112,112,101,100],"_BOOT_ID":"b1"}"#;
        assert_eq!(tail_end(tail), (Some(End::Reboot), Some("b1".into())));
        assert_eq!(
            entry(tail.lines().nth(2).unwrap()).unwrap().0,
            "Journal stopped"
        );
        assert_eq!(tail_end("not json\n"), (None, None));
    }

    #[test]
    fn a_child_past_its_deadline_is_killed_and_output_is_capped() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo start; sleep 30"]);
        let t = std::time::Instant::now();
        let out = run_capped(c, Duration::from_millis(300), 1024).unwrap();
        assert!(out.timed_out);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(out.bytes, b"start\n");
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done",
        ]);
        let out = run_capped(c, Duration::from_secs(20), 100).unwrap();
        assert!(out.cut && !out.timed_out);
        assert_eq!(out.bytes.len(), 100);
        assert!(String::from_utf8(out.bytes)
            .unwrap()
            .ends_with("line2999\n"));
        assert!(run_capped(
            Command::new("/nonexistent/journalctl"),
            Duration::from_secs(1),
            10
        )
        .is_err());
    }

    #[test]
    fn syslog_previous_boot_is_between_the_last_two_markers() {
        let text = "Mar  1 kernel: Linux version 5.14 (old)\nMar  1 kernel: a\nMar  2 kernel: Linux version 5.14\nMar  2 kernel: b\nMar  2 kernel: Kernel panic\nMar  3 kernel: Linux version 5.14 (this boot)\nMar  3 kernel: c\n";
        let day = |l: &str| {
            let d: u32 = l.get(4..6)?.trim().parse().ok()?;
            chrono::NaiveDate::from_ymd_opt(2024, 3, d)?.and_hms_opt(0, 0, 0)
        };
        let start = chrono::NaiveDate::from_ymd_opt(2024, 3, 3)
            .unwrap()
            .and_hms_opt(0, 0, 0);
        let prev = previous_boot_lines(text, start, day);
        assert_eq!(prev.len(), 3);
        assert!(prev[0].contains("Linux version 5.14") && prev[2].contains("panic"));
        // This boot not yet in the file: from the last marker on.
        let prev = previous_boot_lines(&text[..text.find("Mar  3").unwrap()], start, day);
        assert_eq!(prev.len(), 3);
    }
}
