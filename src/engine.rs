//! The rules engine: decides, acts on nothing.
//!
//! A rule matches events by kind and field conditions, counts matches in a
//! sliding window, and fires its actions when the count is reached, then
//! stays quiet for its cooldown. Rules come from the YAML configuration in
//! two stages: serde fills [`RuleConfig`] (plain values), then
//! [`compile_rules`] checks everything and reports every problem with its
//! YAML path. Events are seen as JSON objects, the same shape that goes to
//! the event log, so a rule can test any field the log shows.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ConfigError;

/// A rule as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// Event kind to match (`hung_task`, `oom_kill`, …).
    pub kind: String,
    /// Field conditions, all of which must hold: `field: value` for
    /// equality, or `field: {gte: N, lt: N, ne: V, in: [..], contains: S}`.
    #[serde(default, rename = "where")]
    pub conditions: BTreeMap<String, serde_yaml::Value>,
    /// Matches needed within `window_secs` to fire (default 1).
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub window_secs: u64,
    /// After firing, further matches do nothing for this long.
    #[serde(default)]
    pub cooldown_secs: u64,
    /// Actions, in order: `sysrq: t`, `ftrace_snapshot`, `kdump_check`,
    /// `log`, `exec: {command: [..], timeout_secs: N}`.
    pub actions: Vec<serde_yaml::Value>,
}

fn one() -> u32 {
    1
}

/// What a rule makes the triggers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these letters to /proc/sysrq-trigger, one after the other.
    Sysrq(String),
    /// Save the flight-recorder trace buffer to the evidence directory.
    FtraceSnapshot,
    /// Re-run the kdump readiness checks.
    KdumpCheck,
    /// Record the decision only.
    Log,
    /// Run a site command with the event in `WATCHDOG_EVENT`.
    Exec {
        command: Vec<String>,
        timeout: Duration,
    },
}

impl Action {
    /// Short name for logs and `action` events.
    pub fn label(&self) -> String {
        match self {
            Action::Sysrq(l) => format!("sysrq {l}"),
            Action::FtraceSnapshot => "ftrace_snapshot".into(),
            Action::KdumpCheck => "kdump_check".into(),
            Action::Log => "log".into(),
            Action::Exec { command, .. } => {
                format!("exec {}", command.first().map_or("", String::as_str))
            }
        }
    }
}

/// SysRq letters that only print information. Anything else (`c` crash,
/// `b` reboot, `o` power off, `e`/`i` kill all, `f` OOM kill, `u` remount,
/// `s` sync that can hang on a dead disk, log-level digits, …) needs
/// `allow_destructive: true`.
pub const SAFE_SYSRQ: &str = "tdlmpqwz";

/// Every known action name, for error messages and docs.
pub const ACTION_NAMES: &[&str] = &["sysrq", "ftrace_snapshot", "kdump_check", "log", "exec"];

/// Event kinds rules may name: every kind of the event log.
pub const EVENT_KINDS: &[&str] = crate::events::Body::KINDS;

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Eq(Value),
    Ne(Value),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    In(Vec<Value>),
    Contains(String),
}

impl Cond {
    fn holds(&self, v: Option<&Value>) -> bool {
        let num = v.and_then(Value::as_f64);
        match self {
            Cond::Eq(want) => v.is_some_and(|v| loose_eq(v, want)),
            Cond::Ne(want) => !v.is_some_and(|v| loose_eq(v, want)),
            Cond::Gt(n) => num.is_some_and(|x| x > *n),
            Cond::Gte(n) => num.is_some_and(|x| x >= *n),
            Cond::Lt(n) => num.is_some_and(|x| x < *n),
            Cond::Lte(n) => num.is_some_and(|x| x <= *n),
            Cond::In(list) => v.is_some_and(|v| list.iter().any(|w| loose_eq(v, w))),
            Cond::Contains(s) => v
                .and_then(Value::as_str)
                .is_some_and(|x| x.contains(s.as_str())),
        }
    }
}

/// Numbers compare by value (`9` equals `9.0`), everything else exactly.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: String,
    conditions: Vec<(String, Vec<Cond>)>,
    pub count: u32,
    pub window: Duration,
    pub cooldown: Duration,
    pub actions: Vec<Action>,
}

impl Rule {
    pub fn matches(&self, event: &Map<String, Value>) -> bool {
        event.get("kind").and_then(Value::as_str) == Some(self.kind.as_str())
            && self
                .conditions
                .iter()
                .all(|(field, conds)| conds.iter().all(|c| c.holds(event.get(field))))
    }
}

fn to_json(v: &serde_yaml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn compile_cond(v: &serde_yaml::Value, path: &str, errs: &mut Vec<ConfigError>) -> Vec<Cond> {
    let mut err = |m: String| {
        errs.push(ConfigError {
            path: path.to_string(),
            message: m,
        })
    };
    let serde_yaml::Value::Mapping(m) = v else {
        return match v {
            serde_yaml::Value::Sequence(_) => {
                err("a list is not a condition; use {in: [...]}".into());
                Vec::new()
            }
            other => vec![Cond::Eq(to_json(other))],
        };
    };
    let mut out = Vec::new();
    for (k, val) in m {
        let Some(op) = k.as_str() else {
            err("condition keys are operators: eq, ne, gt, gte, lt, lte, in, contains".into());
            continue;
        };
        let number = |errs: &mut dyn FnMut(String)| {
            val.as_f64().or_else(|| {
                errs(format!("{op} needs a number, found {val:?}"));
                None
            })
        };
        let c = match op {
            "eq" => Some(Cond::Eq(to_json(val))),
            "ne" => Some(Cond::Ne(to_json(val))),
            "gt" => number(&mut err).map(Cond::Gt),
            "gte" => number(&mut err).map(Cond::Gte),
            "lt" => number(&mut err).map(Cond::Lt),
            "lte" => number(&mut err).map(Cond::Lte),
            "in" => match val {
                serde_yaml::Value::Sequence(items) => {
                    Some(Cond::In(items.iter().map(to_json).collect()))
                }
                _ => {
                    err("in needs a list".into());
                    None
                }
            },
            "contains" => match val.as_str() {
                Some(s) => Some(Cond::Contains(s.to_string())),
                None => {
                    err("contains needs a string".into());
                    None
                }
            },
            other => {
                err(format!(
                    "unknown operator {other:?} (one of eq, ne, gt, gte, lt, lte, in, contains)"
                ));
                None
            }
        };
        out.extend(c);
    }
    out
}

fn compile_action(
    v: &serde_yaml::Value,
    path: &str,
    allow_destructive: bool,
    errs: &mut Vec<ConfigError>,
) -> Option<Action> {
    let mut err = |p: &str, m: String| {
        errs.push(ConfigError {
            path: p.to_string(),
            message: m,
        })
    };
    let unknown = |name: &str| {
        format!(
            "unknown action {name:?} (one of {})",
            ACTION_NAMES.join(", ")
        )
    };
    let (name, arg) = match v {
        serde_yaml::Value::String(s) => (s.as_str(), None),
        serde_yaml::Value::Mapping(m) if m.len() == 1 => {
            let (k, a) = m.iter().next()?;
            let Some(k) = k.as_str() else {
                err(path, "an action is a name or a one-key map".into());
                return None;
            };
            (k, Some(a))
        }
        _ => {
            err(
                path,
                "an action is a name (log, ftrace_snapshot, kdump_check) or a one-key map (sysrq: t, exec: {...})".into(),
            );
            return None;
        }
    };
    let p = format!("{path}.{name}");
    match (name, arg) {
        ("log", None) => Some(Action::Log),
        ("ftrace_snapshot", None) => Some(Action::FtraceSnapshot),
        ("kdump_check", None) => Some(Action::KdumpCheck),
        ("sysrq", Some(a)) => {
            let letters = match a {
                serde_yaml::Value::String(s) => s.clone(),
                other => {
                    err(
                        &p,
                        format!("sysrq needs letters such as t or tw, found {other:?}"),
                    );
                    return None;
                }
            };
            if letters.is_empty() || !letters.chars().all(|c| c.is_ascii_alphanumeric()) {
                err(
                    &p,
                    format!("sysrq needs letters such as t or tw, found {letters:?}"),
                );
                return None;
            }
            let unsafe_letters: String = letters
                .chars()
                .filter(|c| !SAFE_SYSRQ.contains(*c))
                .collect();
            if !unsafe_letters.is_empty() && !allow_destructive {
                err(
                    &p,
                    format!(
                        "SysRq {unsafe_letters:?} is not a read-only dump (safe: {SAFE_SYSRQ}); set run.allow_destructive: true to allow it"
                    ),
                );
                return None;
            }
            Some(Action::Sysrq(letters))
        }
        ("exec", Some(a)) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Exec {
                command: Vec<String>,
                #[serde(default = "default_exec_timeout")]
                timeout_secs: u64,
            }
            match serde_yaml::from_value::<Exec>(a.clone()) {
                Ok(e) if e.command.is_empty() || e.command[0].is_empty() => {
                    err(&p, "command must name a program".into());
                    None
                }
                Ok(e) if e.timeout_secs == 0 || e.timeout_secs > 3600 => {
                    err(
                        &p,
                        format!("timeout_secs must be 1..3600, found {}", e.timeout_secs),
                    );
                    None
                }
                Ok(e) => Some(Action::Exec {
                    command: e.command,
                    timeout: Duration::from_secs(e.timeout_secs),
                }),
                Err(e) => {
                    err(&p, format!("{e}"));
                    None
                }
            }
        }
        ("log" | "ftrace_snapshot" | "kdump_check", Some(_)) => {
            err(&p, format!("{name} takes no argument"));
            None
        }
        ("sysrq" | "exec", None) => {
            err(&p, format!("{name} needs an argument"));
            None
        }
        (other, _) => {
            err(path, unknown(other));
            None
        }
    }
}

fn default_exec_timeout() -> u64 {
    30
}

/// Compiles rules, collecting every error with its YAML path under
/// `prefix` (e.g. `run.rules`).
pub fn compile_rules(
    rules: &[RuleConfig],
    prefix: &str,
    allow_destructive: bool,
) -> Result<Vec<Rule>, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in rules.iter().enumerate() {
        let path = format!("{prefix}[{i}]");
        let mut err = |p: String, m: String| {
            errs.push(ConfigError {
                path: p,
                message: m,
            })
        };
        if r.name.is_empty() {
            err(format!("{path}.name"), "must not be empty".into());
        } else if !names.insert(r.name.clone()) {
            err(
                format!("{path}.name"),
                format!("duplicate rule name {:?}", r.name),
            );
        }
        if !EVENT_KINDS.contains(&r.kind.as_str()) {
            err(
                format!("{path}.kind"),
                format!(
                    "unknown event kind {:?} (one of {})",
                    r.kind,
                    EVENT_KINDS.join(", ")
                ),
            );
        }
        if r.count == 0 {
            err(format!("{path}.count"), "must be at least 1".into());
        }
        if r.count > 1 && r.window_secs == 0 {
            err(
                format!("{path}.window_secs"),
                format!("count {} needs a window (window_secs > 0)", r.count),
            );
        }
        if r.actions.is_empty() {
            err(
                format!("{path}.actions"),
                "a rule needs at least one action (log, if nothing else)".into(),
            );
        }
        let mut conditions = Vec::new();
        for (field, v) in &r.conditions {
            let conds = compile_cond(v, &format!("{path}.where.{field}"), &mut errs);
            conditions.push((field.clone(), conds));
        }
        let actions: Vec<Action> = r
            .actions
            .iter()
            .enumerate()
            .filter_map(|(j, a)| {
                compile_action(
                    a,
                    &format!("{path}.actions[{j}]"),
                    allow_destructive,
                    &mut errs,
                )
            })
            .collect();
        out.push(Rule {
            name: r.name.clone(),
            kind: r.kind.clone(),
            conditions,
            count: r.count.max(1),
            window: Duration::from_secs(r.window_secs),
            cooldown: Duration::from_secs(r.cooldown_secs),
            actions,
        });
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// One rule firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: String,
    pub actions: Vec<Action>,
}

struct RuleState {
    rule: Rule,
    hits: VecDeque<Instant>,
    last_fired: Option<Instant>,
    suppressed: u64,
}

/// Rules with their windows and cooldowns.
pub struct Engine {
    rules: Vec<RuleState>,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        Engine {
            rules: rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    hits: VecDeque::new(),
                    last_fired: None,
                    suppressed: 0,
                })
                .collect(),
        }
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|s| &s.rule)
    }

    /// Matches that a cooldown swallowed, per rule.
    pub fn suppressed(&self) -> impl Iterator<Item = (&str, u64)> {
        self.rules
            .iter()
            .map(|s| (s.rule.name.as_str(), s.suppressed))
    }

    /// Feeds one event; returns the rules that fire, in rule order.
    pub fn decide(&mut self, event: &Map<String, Value>, now: Instant) -> Vec<Decision> {
        let mut out = Vec::new();
        for s in &mut self.rules {
            if !s.rule.matches(event) {
                continue;
            }
            if let Some(t) = s.last_fired {
                if now.saturating_duration_since(t) < s.rule.cooldown {
                    s.suppressed += 1;
                    continue;
                }
            }
            s.hits.push_back(now);
            while let Some(&first) = s.hits.front() {
                if s.rule.count > 1 && now.saturating_duration_since(first) > s.rule.window {
                    s.hits.pop_front();
                } else {
                    break;
                }
            }
            // Bounded: never more hits than the count needs.
            while s.hits.len() > s.rule.count as usize {
                s.hits.pop_front();
            }
            if s.hits.len() >= s.rule.count as usize {
                s.hits.clear();
                s.last_fired = Some(now);
                out.push(Decision {
                    rule: s.rule.name.clone(),
                    actions: s.rule.actions.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str, destructive: bool) -> Result<Vec<Rule>, Vec<ConfigError>> {
        let cfg: Vec<RuleConfig> = serde_yaml::from_str(yaml).unwrap();
        compile_rules(&cfg, "run.rules", destructive)
    }

    fn ev(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn actions_compile() {
        let r = rules(
            "- name: a\n  kind: hung_task\n  actions: [{sysrq: tw}, ftrace_snapshot, kdump_check, log, {exec: {command: [/bin/true, x], timeout_secs: 5}}]\n",
            false,
        )
        .unwrap();
        assert_eq!(
            r[0].actions,
            vec![
                Action::Sysrq("tw".into()),
                Action::FtraceSnapshot,
                Action::KdumpCheck,
                Action::Log,
                Action::Exec {
                    command: vec!["/bin/true".into(), "x".into()],
                    timeout: Duration::from_secs(5)
                }
            ]
        );
    }

    #[test]
    fn destructive_sysrq_needs_the_flag() {
        let yaml = "- name: crash\n  kind: panic\n  actions: [{sysrq: c}]\n";
        let e = rules(yaml, false).unwrap_err();
        assert_eq!(e[0].path, "run.rules[0].actions[0].sysrq");
        assert!(
            e[0].message.contains("allow_destructive"),
            "{}",
            e[0].message
        );
        assert_eq!(
            rules(yaml, true).unwrap()[0].actions,
            vec![Action::Sysrq("c".into())]
        );
        for l in ["b", "o", "e", "i", "f", "u", "s", "7"] {
            let y = format!("- name: x\n  kind: panic\n  actions: [{{sysrq: '{l}'}}]\n");
            assert!(rules(&y, false).is_err(), "{l} must be refused");
        }
    }

    #[test]
    fn every_error_has_its_path() {
        let yaml = "\
- name: a
  kind: hung_tsk
  count: 3
  where: {pid: {between: 3}, comm: [a]}
  actions: [sysrk, {sysrq: 5}, {log: 1}, {exec: {command: []}}]
- name: a
  kind: oom_kill
  actions: []
";
        let e = rules(yaml, false).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "run.rules[0].kind",
                "run.rules[0].window_secs",
                "run.rules[0].where.comm",
                "run.rules[0].where.pid",
                "run.rules[0].actions[0]",
                "run.rules[0].actions[1].sysrq",
                "run.rules[0].actions[2].log",
                "run.rules[0].actions[3].exec",
                "run.rules[1].name",
                "run.rules[1].actions",
            ],
            "{e:#?}"
        );
    }

    #[test]
    fn conditions_match_fields() {
        let r = rules(
            "- name: a\n  kind: signal_death\n  where: {signal: {in: [9, 11]}, comm: {contains: java}, core_dumped: false, pid: {gte: 100, lt: 200}}\n  actions: [log]\n",
            false,
        )
        .unwrap();
        let rule = &r[0];
        assert!(rule.matches(&ev(r#"{"kind":"signal_death","signal":11,"comm":"java main","core_dumped":false,"pid":150}"#)));
        assert!(!rule.matches(&ev(
            r#"{"kind":"signal_death","signal":15,"comm":"java","core_dumped":false,"pid":150}"#
        )));
        assert!(!rule.matches(&ev(
            r#"{"kind":"signal_death","signal":9,"comm":"java","core_dumped":false,"pid":200}"#
        )));
        assert!(
            !rule.matches(&ev(
                r#"{"kind":"signal_death","signal":9,"comm":"java","pid":150}"#
            )),
            "missing field does not equal false"
        );
        assert!(!rule.matches(&ev(
            r#"{"kind":"oom_kill","signal":9,"comm":"java","core_dumped":false,"pid":150}"#
        )));
    }

    #[test]
    fn count_window_and_cooldown() {
        let r = rules(
            "- name: burst\n  kind: oom_kill\n  count: 3\n  window_secs: 10\n  cooldown_secs: 60\n  actions: [{sysrq: m}]\n",
            false,
        )
        .unwrap();
        let mut e = Engine::new(r);
        let t0 = Instant::now();
        let oom = ev(r#"{"kind":"oom_kill","pid":1}"#);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(e.decide(&oom, at(0)).is_empty());
        assert!(e.decide(&oom, at(5)).is_empty());
        // The first hit left the 10 s window: still only two.
        assert!(e.decide(&oom, at(12)).is_empty());
        let d = e.decide(&oom, at(14));
        assert_eq!(
            d,
            vec![Decision {
                rule: "burst".into(),
                actions: vec![Action::Sysrq("m".into())]
            }]
        );
        // Cooldown: nothing for 60 s, whatever arrives.
        for s in 15..74 {
            assert!(e.decide(&oom, at(s)).is_empty());
        }
        assert_eq!(e.suppressed().next(), Some(("burst", 59)));
        assert!(e.decide(&oom, at(75)).is_empty());
        assert!(e.decide(&oom, at(76)).is_empty());
        assert_eq!(e.decide(&oom, at(77)).len(), 1);
    }

    #[test]
    fn single_count_fires_every_time_without_cooldown() {
        let r = rules("- name: a\n  kind: panic\n  actions: [log]\n", false).unwrap();
        let mut e = Engine::new(r);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(e.decide(&ev(r#"{"kind":"panic"}"#), t).len(), 1);
        }
    }
}
