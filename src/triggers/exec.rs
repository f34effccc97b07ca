//! Site commands run by rules: started without waiting, given the event in
//! `WATCHDOG_EVENT`, killed at their deadline. The daemon's loop never
//! blocks on them; [`Runner::reap`] collects their outcomes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Outcome;

/// At most this many commands run at once; more are refused (and logged).
pub const MAX_RUNNING: usize = 8;

struct Running {
    rule: String,
    label: String,
    child: Child,
    started: Instant,
    deadline: Instant,
}

#[derive(Default)]
pub struct Runner {
    running: Vec<Running>,
}

/// A finished command.
pub struct Finished {
    pub rule: String,
    pub label: String,
    pub outcome: Outcome,
}

impl Runner {
    pub fn spawn(
        &mut self,
        rule: &str,
        command: &[String],
        timeout: Duration,
        event_json: &str,
    ) -> Result<(), String> {
        if self.running.len() >= MAX_RUNNING {
            return Err(format!(
                "{MAX_RUNNING} commands already running; not starting {}",
                command.first().map_or("", String::as_str)
            ));
        }
        let (prog, args) = command.split_first().ok_or("empty command")?;
        let child = Command::new(prog)
            .args(args)
            .env("WATCHDOG_EVENT", event_json)
            .env("WATCHDOG_RULE", rule)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {prog}: {e}"))?;
        let now = Instant::now();
        self.running.push(Running {
            rule: rule.to_string(),
            label: format!("exec {prog}"),
            child,
            started: now,
            deadline: now + timeout,
        });
        Ok(())
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Collects finished commands and kills those past their deadline.
    pub fn reap(&mut self, now: Instant) -> Vec<Finished> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.running.len() {
            let r = &mut self.running[i];
            let outcome = match r.child.try_wait() {
                Ok(Some(status)) => Some(if status.success() {
                    Outcome::ok(format!(
                        "exited 0 after {:.1} s",
                        r.started.elapsed().as_secs_f64()
                    ))
                } else {
                    Outcome::failed(format!("{status}"))
                }),
                Ok(None) if now >= r.deadline => {
                    let _ = r.child.kill();
                    let _ = r.child.wait();
                    Some(Outcome::failed(format!(
                        "timed out after {:.0} s; killed",
                        (r.deadline - r.started).as_secs_f64()
                    )))
                }
                Ok(None) => None,
                Err(e) => Some(Outcome::failed(format!("cannot wait: {e}"))),
            };
            match outcome {
                Some(outcome) => {
                    let r = self.running.swap_remove(i);
                    done.push(Finished {
                        rule: r.rule,
                        label: r.label,
                        outcome,
                    });
                }
                None => i += 1,
            }
        }
        done
    }

    /// On shutdown: give running commands no more time.
    pub fn kill_all(&mut self) -> Vec<Finished> {
        let now = Instant::now();
        for r in &mut self.running {
            r.deadline = now;
        }
        self.reap(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn runs_times_out_and_reports() {
        let mut r = Runner::default();
        r.spawn(
            "a",
            &cmd(&["sh", "-c", "test \"$WATCHDOG_EVENT\" = '{\"kind\":\"x\"}'"]),
            Duration::from_secs(30),
            "{\"kind\":\"x\"}",
        )
        .unwrap();
        r.spawn(
            "b",
            &cmd(&["sleep", "30"]),
            Duration::from_millis(100),
            "{}",
        )
        .unwrap();
        r.spawn("c", &cmd(&["false"]), Duration::from_secs(30), "{}")
            .unwrap();
        assert!(r
            .spawn(
                "d",
                &cmd(&["/nonexistent/prog"]),
                Duration::from_secs(1),
                "{}"
            )
            .is_err());
        let mut got = Vec::new();
        let until = Instant::now() + Duration::from_secs(20);
        while !r.is_idle() && Instant::now() < until {
            got.extend(r.reap(Instant::now()));
            std::thread::sleep(Duration::from_millis(20));
        }
        got.sort_by(|a, b| a.rule.cmp(&b.rule));
        let summary: Vec<(&str, bool)> = got
            .iter()
            .map(|f| (f.rule.as_str(), f.outcome.ok))
            .collect();
        assert_eq!(summary, [("a", true), ("b", false), ("c", false)]);
        assert!(got[1].outcome.detail.contains("timed out"));
    }
}
