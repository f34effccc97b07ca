//! The rules engine: decides, acts on nothing.
//!
//! A rule matches events by kind and field conditions, counts matches in a
//! sliding window, and fires its actions when the count is reached, then
//! stays quiet for its cooldown. Rules come from the YAML configuration in
//! two stages: serde fills [`RuleConfig`] (plain values), then
//! [`compile_rules`] checks everything against the event schema
//! ([`crate::events::SCHEMA`]: the kind exists and can reach a rule, each
//! field exists for that kind, each value has the field's type) and
//! reports every problem with its YAML path. Rules then read typed fields
//! from the [`Event`] itself, never its JSON.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::events::{kind_schema, Event, Field, FieldType, FieldValue, KindSchema, SCHEMA};

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
    /// Whether firing opens an incident bundle (when `run.incidents` is
    /// enabled); events of the same kind within the cooldown join it.
    #[serde(default = "yes")]
    pub incident: bool,
}

fn yes() -> bool {
    true
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

/// Every kind of the event log (metrics count them all).
pub const EVENT_KINDS: &[&str] = crate::events::Body::KINDS;

/// The kinds a rule may name, for error messages.
fn rule_kinds() -> String {
    SCHEMA
        .iter()
        .filter(|k| k.rule_trigger)
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number in a rule: integers stay exact (a u64 counter compares
/// correctly past 2^53), anything else compares as f64.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(v: &FieldValue) -> Option<Num> {
        match v {
            FieldValue::Int(n) => Some(Num::Int(*n)),
            FieldValue::Float(x) => Some(Num::Float(*x)),
            _ => None,
        }
    }

    fn from_yaml(v: &serde_yaml::Value) -> Option<Num> {
        let serde_yaml::Value::Number(n) = v else {
            return None;
        };
        n.as_i64()
            .map(|i| Num::Int(i128::from(i)))
            .or_else(|| n.as_u64().map(|u| Num::Int(i128::from(u))))
            // A NaN bound would never hold, and would make the rule
            // unequal to itself, so that a reload reset it.
            .or_else(|| n.as_f64().filter(|x| x.is_finite()).map(Num::Float))
    }

    /// Only used when the other side is a float, where rounding past
    /// 2^53 is what a float comparison means anyway.
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Float(x) => x,
        }
    }

    fn cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

/// A value in a rule, checked against its field's type at load.
#[derive(Debug, Clone, PartialEq)]
enum Const {
    Str(String),
    Num(Num),
    Bool(bool),
    Null,
}

impl Const {
    fn equals(&self, v: &FieldValue) -> bool {
        match (self, v) {
            (Const::Str(a), FieldValue::Str(b)) => a == b,
            (Const::Bool(a), FieldValue::Bool(b)) => a == b,
            (Const::Null, FieldValue::Null) => true,
            (Const::Num(a), v) => Num::of(v).and_then(|b| b.cmp(*a)) == Some(Ordering::Equal),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Eq(Const),
    /// Holds when the field is `null` too (unless the value is `null`).
    Ne(Const),
    Gt(Num),
    Gte(Num),
    Lt(Num),
    Lte(Num),
    In(Vec<Const>),
    Contains(String),
}

impl Cond {
    fn holds(&self, v: &FieldValue) -> bool {
        let order = |bound: &Num| Num::of(v).and_then(|x| x.cmp(*bound));
        match self {
            Cond::Eq(want) => want.equals(v),
            Cond::Ne(want) => !want.equals(v),
            Cond::Gt(n) => order(n) == Some(Ordering::Greater),
            Cond::Gte(n) => matches!(order(n), Some(Ordering::Greater | Ordering::Equal)),
            Cond::Lt(n) => order(n) == Some(Ordering::Less),
            Cond::Lte(n) => matches!(order(n), Some(Ordering::Less | Ordering::Equal)),
            Cond::In(list) => list.iter().any(|w| w.equals(v)),
            Cond::Contains(s) => match v {
                FieldValue::Str(x) => x.contains(s.as_str()),
                // A frame list contains S when one of its frames does.
                FieldValue::List(l) => l.iter().any(|f| f.contains(s.as_str())),
                _ => false,
            },
        }
    }
}

/// A compiled rule. Two rules are equal when they would decide alike:
/// that is what lets a reload keep an unchanged rule's window and
/// cooldown.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: &'static str,
    conditions: Vec<(&'static str, Vec<Cond>)>,
    pub count: u32,
    pub window: Duration,
    pub cooldown: Duration,
    pub actions: Vec<Action>,
    pub incident: bool,
}

impl Rule {
    pub fn matches(&self, event: &Event) -> bool {
        event.body.kind() == self.kind
            && self.conditions.iter().all(|(field, conds)| {
                // Compiled against the schema, so the field exists; were
                // it missing it would read as null.
                let v = event.field(field).unwrap_or(FieldValue::Null);
                conds.iter().all(|c| c.holds(&v))
            })
    }
}

/// A rule value for `field`, of the field's type. `field` is `None` when
/// the field is not known (bad kind or name): the value is then taken as
/// it is, so that the operators can still be checked.
fn constant(v: &serde_yaml::Value, field: Option<&Field>) -> Result<Const, String> {
    use serde_yaml::Value as Y;
    let Some(f) = field else {
        return Ok(match v {
            Y::String(s) => Const::Str(s.clone()),
            Y::Bool(b) => Const::Bool(*b),
            other => Num::from_yaml(other).map_or(Const::Null, Const::Num),
        });
    };
    let wrong = || {
        let quote = if f.ty == FieldType::Str && !matches!(v, Y::Mapping(_) | Y::Sequence(_)) {
            " (quote it to compare as text)"
        } else {
            ""
        };
        format!(
            "{} is {}, found {}{quote}",
            f.name,
            f.ty.describe(),
            yaml_text(v)
        )
    };
    match (f.ty, v) {
        (_, Y::Null) if f.nullable => Ok(Const::Null),
        (_, Y::Null) => Err(format!("{} is never null", f.name)),
        (FieldType::Str, Y::String(s)) => Ok(Const::Str(s.clone())),
        (FieldType::Bool, Y::Bool(b)) => Ok(Const::Bool(*b)),
        (FieldType::Int, v) => match Num::from_yaml(v) {
            Some(n @ Num::Int(_)) => Ok(Const::Num(n)),
            _ => Err(wrong()),
        },
        (FieldType::Float, v) => match Num::from_yaml(v) {
            Some(n) => Ok(Const::Num(Num::Float(n.as_f64()))),
            None => Err(wrong()),
        },
        _ => Err(wrong()),
    }
}

/// A YAML value as the user wrote it, for messages.
fn yaml_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => format!("{s:?}"),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().replace('\n', " "))
            .unwrap_or_else(|_| format!("{other:?}")),
    }
}

const OPERATORS: &str = "eq, ne, gt, gte, lt, lte, in, contains";

fn compile_cond(
    v: &serde_yaml::Value,
    field: Option<&Field>,
    path: &str,
    errs: &mut Vec<ConfigError>,
) -> Vec<Cond> {
    let mut err = |m: String| {
        errs.push(ConfigError {
            path: path.to_string(),
            message: m,
        })
    };
    let serde_yaml::Value::Mapping(m) = v else {
        if let serde_yaml::Value::Sequence(_) = v {
            err("a list is not a condition; use {in: [...]}".into());
            return Vec::new();
        }
        return match constant(v, field) {
            Ok(c) => vec![Cond::Eq(c)],
            Err(e) => {
                err(e);
                Vec::new()
            }
        };
    };
    let mut out = Vec::new();
    for (k, val) in m {
        let Some(op) = k.as_str() else {
            err(format!("condition keys are operators: {OPERATORS}"));
            continue;
        };
        let typed = |c: Result<Const, String>, err: &mut dyn FnMut(String)| {
            c.map_err(|e| err(format!("{op}: {e}"))).ok()
        };
        let ordered = |err: &mut dyn FnMut(String)| {
            if let Some(f) = field.filter(|f| !matches!(f.ty, FieldType::Int | FieldType::Float)) {
                err(format!(
                    "{op} compares numbers; {} is {}",
                    f.name,
                    f.ty.describe()
                ));
                return None;
            }
            Num::from_yaml(val).or_else(|| {
                err(format!("{op} needs a number, found {}", yaml_text(val)));
                None
            })
        };
        let c = match op {
            "eq" => typed(constant(val, field), &mut err).map(Cond::Eq),
            "ne" => typed(constant(val, field), &mut err).map(Cond::Ne),
            "gt" => ordered(&mut err).map(Cond::Gt),
            "gte" => ordered(&mut err).map(Cond::Gte),
            "lt" => ordered(&mut err).map(Cond::Lt),
            "lte" => ordered(&mut err).map(Cond::Lte),
            "in" => match val {
                serde_yaml::Value::Sequence(items) => {
                    let list: Vec<Const> = items
                        .iter()
                        .filter_map(|i| typed(constant(i, field), &mut err))
                        .collect();
                    (list.len() == items.len()).then_some(Cond::In(list))
                }
                _ => {
                    err("in needs a list".into());
                    None
                }
            },
            "contains" => match (field.map(|f| (f.name, f.ty)), val.as_str()) {
                (Some((name, ty)), _) if !matches!(ty, FieldType::Str | FieldType::List) => {
                    err(format!(
                        "contains looks for text; {name} is {}",
                        ty.describe()
                    ));
                    None
                }
                (_, Some(s)) => Some(Cond::Contains(s.to_string())),
                (_, None) => {
                    err("contains needs a string".into());
                    None
                }
            },
            other => {
                err(format!("unknown operator {other:?} (one of {OPERATORS})"));
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

/// [`compile_rules_with`] without site patterns (tests).
#[cfg(test)]
pub fn compile_rules(
    rules: &[RuleConfig],
    prefix: &str,
    allow_destructive: bool,
) -> Result<Vec<Rule>, Vec<ConfigError>> {
    compile_rules_with(rules, prefix, allow_destructive, &[])
}

/// A capture name as a `&'static str`, as schema field names are. Each
/// distinct name is allocated once for the life of the process, so
/// reloads do not grow memory.
fn intern(name: &str) -> &'static str {
    use std::sync::Mutex;
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = match NAMES.lock() {
        Ok(n) => n,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(n);
    n
}

/// The capture fields a rule on `kind: pattern` may name: those of the
/// pattern its `where: {pattern: NAME}` names. Errors (an unknown
/// pattern, captures without a pattern named) go to `errs`.
fn pattern_fields(
    r: &RuleConfig,
    path: &str,
    patterns: &[(String, Vec<String>)],
    errs: &mut Vec<ConfigError>,
) -> Vec<Field> {
    let named = r.conditions.get("pattern").and_then(|v| match v {
        serde_yaml::Value::String(s) => Some(s.as_str()),
        serde_yaml::Value::Mapping(m) => m
            .get(serde_yaml::Value::from("eq"))
            .and_then(serde_yaml::Value::as_str),
        _ => None,
    });
    let others = r.conditions.keys().any(|k| {
        k != "pattern"
            && crate::events::kind_schema("pattern").is_some_and(|s| s.field(k).is_none())
    });
    let Some(name) = named else {
        if others {
            errs.push(ConfigError {
                path: format!("{path}.where"),
                message: "name the pattern (where: {pattern: NAME}) to use its captures".into(),
            });
        }
        return Vec::new();
    };
    match patterns.iter().find(|(n, _)| n == name) {
        Some((_, caps)) => caps
            .iter()
            .map(|c| Field {
                name: intern(c),
                ty: FieldType::Str,
                nullable: true,
            })
            .collect(),
        None => {
            let known: Vec<&str> = patterns.iter().map(|(n, _)| n.as_str()).collect();
            errs.push(ConfigError {
                path: format!("{path}.where.pattern"),
                message: format!(
                    "no site pattern named {name:?} (patterns: {})",
                    if known.is_empty() {
                        "none configured".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
            Vec::new()
        }
    }
}

/// Compiles rules, collecting every error with its YAML path under
/// `prefix` (e.g. `run.rules`), with the site patterns' names and capture
/// names (`patterns:`), which rules on `kind: pattern` may name. The one
/// place rules are checked: `config check`, `run` and its SIGHUP reload
/// all come here through `RunConfig::compile`.
pub fn compile_rules_with(
    rules: &[RuleConfig],
    prefix: &str,
    allow_destructive: bool,
    patterns: &[(String, Vec<String>)],
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
        let kind = kind_schema(&r.kind);
        match kind {
            None => err(
                format!("{path}.kind"),
                format!("unknown event kind {:?} (one of {})", r.kind, rule_kinds()),
            ),
            Some(k) if !k.rule_trigger => err(
                format!("{path}.kind"),
                format!(
                    "{} events never reach the rules: they are what rules cause (a rule can name {})",
                    k.name,
                    rule_kinds()
                ),
            ),
            Some(_) => {}
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
        let on_pattern = kind.is_some_and(|k| k.name == "pattern");
        let before = errs.len();
        let captures = if on_pattern {
            pattern_fields(r, &path, patterns, &mut errs)
        } else {
            Vec::new()
        };
        // The pattern could not be told: its fields were reported at once.
        let pattern_unknown = errs.len() > before;
        for (name, v) in &r.conditions {
            let p = format!("{path}.where.{name}");
            let field = kind.map(|k| {
                (
                    k,
                    k.field(name)
                        .or_else(|| captures.iter().find(|f| f.name == name)),
                )
            });
            if let Some((k, None)) = field {
                if pattern_unknown {
                    continue;
                }
                if on_pattern {
                    let caps: Vec<&str> = captures.iter().map(|f| f.name).collect();
                    errs.push(ConfigError {
                        path: p,
                        message: format!(
                            "the pattern has no capture {name:?} (captures: {}; on every event: {})",
                            if caps.is_empty() { "none".into() } else { caps.join(", ") },
                            crate::events::COMMON_FIELDS
                                .iter()
                                .map(|f| f.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                    continue;
                }
                errs.push(ConfigError {
                    path: p,
                    message: unknown_field(k, name),
                });
                continue;
            }
            let field = field.and_then(|(_, f)| f);
            let conds = compile_cond(v, field, &p, &mut errs);
            if let Some(f) = field {
                conditions.push((f.name, conds));
            }
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
        if let Some(k) = kind {
            out.push(Rule {
                name: r.name.clone(),
                kind: k.name,
                conditions,
                count: r.count.max(1),
                window: Duration::from_secs(r.window_secs),
                cooldown: Duration::from_secs(r.cooldown_secs),
                actions,
                incident: r.incident,
            });
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

fn unknown_field(k: &KindSchema, name: &str) -> String {
    let own: Vec<&str> = k.fields.iter().map(|f| f.name).collect();
    let common: Vec<&str> = crate::events::COMMON_FIELDS
        .iter()
        .map(|f| f.name)
        .collect();
    format!(
        "{} has no field {name:?} (fields: {}; on every event: {})",
        k.name,
        own.join(", "),
        common.join(", ")
    )
}

/// One rule firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: String,
    pub actions: Vec<Action>,
    /// The rule opens an incident, which stays open for its cooldown.
    pub incident: bool,
    pub cooldown: Duration,
}

struct RuleState {
    rule: Rule,
    hits: VecDeque<Instant>,
    last_fired: Option<Instant>,
    suppressed: u64,
}

impl RuleState {
    fn new(rule: Rule) -> RuleState {
        RuleState {
            rule,
            hits: VecDeque::new(),
            last_fired: None,
            suppressed: 0,
        }
    }
}

/// Rules with their windows and cooldowns.
pub struct Engine {
    rules: Vec<RuleState>,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        Engine {
            rules: rules.into_iter().map(RuleState::new).collect(),
        }
    }

    /// Takes a reloaded rule set (SIGHUP). A rule whose compiled form is
    /// unchanged keeps its window and cooldown, so a reload cannot make a
    /// rule fire again early; a new or changed rule starts fresh. Returns
    /// how many rules kept their state.
    pub fn reload(&mut self, rules: Vec<Rule>) -> usize {
        let mut old = std::mem::take(&mut self.rules);
        let mut kept = 0;
        self.rules = rules
            .into_iter()
            .map(|rule| match old.iter().position(|s| s.rule == rule) {
                Some(i) => {
                    kept += 1;
                    old.swap_remove(i)
                }
                None => RuleState::new(rule),
            })
            .collect();
        kept
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
    pub fn decide(&mut self, event: &Event, now: Instant) -> Vec<Decision> {
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
                    incident: s.rule.incident,
                    cooldown: s.rule.cooldown,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Body, DentryPressure, HungTask, Lost, OomKill, SignalDeath};

    fn rules(yaml: &str, destructive: bool) -> Result<Vec<Rule>, Vec<ConfigError>> {
        let cfg: Vec<RuleConfig> = serde_yaml::from_str(yaml).unwrap();
        compile_rules(&cfg, "run.rules", destructive)
    }

    /// The errors as `path: message` lines.
    fn errors(yaml: &str) -> Vec<String> {
        rules(yaml, false)
            .unwrap_err()
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    fn event(body: Body) -> Event {
        Event {
            time: None,
            kernel_time: Some(12.5),
            source: "kmsg".into(),
            host: Some("db01".into()),
            line: None,
            incident: None,
            body,
        }
    }

    fn death(signal: u8, comm: &str, core_dumped: Option<bool>, pid: u32) -> Event {
        event(Body::SignalDeath(SignalDeath {
            pid: Some(pid),
            tid: Some(pid),
            comm: comm.into(),
            signal,
            signal_name: crate::events::signal_name(signal).into(),
            core_dumped,
            sender_pid: None,
            sender_comm: None,
        }))
    }

    fn oom(pid: u32) -> Event {
        event(Body::OomKill(OomKill {
            pid: Some(pid),
            ..OomKill::default()
        }))
    }

    fn hung(comm: Option<&str>, pid: Option<u32>) -> Event {
        event(Body::HungTask(HungTask {
            comm: comm.map(str::to_string),
            pid,
            blocked_secs: Some(120),
            blocker_comm: None,
            blocker_pid: None,
            blocker_lock: None,
            frames: Vec::new(),
            unreported: None,
        }))
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
    fn a_field_the_kind_lacks_is_refused_with_the_fields_it_has() {
        let e = errors(
            "\
- {name: a, kind: panic, actions: [log]}
- {name: b, kind: oom_kill, where: {signal: 9}, actions: [log]}
- {name: c, kind: hung_task, where: {pidd: 5, comm: {contains: x}, blocked_secs: {gt: 60}}, actions: [log]}
",
        );
        assert_eq!(
            e,
            [
                "run.rules[1].where.signal: oom_kill has no field \"signal\" (fields: pid, comm, memcg, total_vm_kb, anon_rss_kb, file_rss_kb, shmem_rss_kb, uid, oom_score_adj, constraint, trigger_comm, trigger_pid, task_memcg, oom_memcg; on every event: kind, time, kernel_time, source, host, line, incident)",
                "run.rules[2].where.pidd: hung_task has no field \"pidd\" (fields: comm, pid, blocked_secs, blocker_comm, blocker_pid, blocker_lock, frames, unreported; on every event: kind, time, kernel_time, source, host, line, incident)",
            ]
        );
        // The common fields are there for every kind.
        rules(
            "- {name: a, kind: lost, where: {source: kmsg, host: {ne: null}, kernel_time: {gte: 5}}, actions: [log]}\n",
            false,
        )
        .unwrap();
    }

    #[test]
    fn action_and_unknown_kinds_are_refused() {
        let e = errors(
            "- {name: a, kind: action, where: {ok: false}, actions: [log]}\n- {name: b, kind: oom, actions: [log]}\n",
        );
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].starts_with(
                "run.rules[0].kind: action events never reach the rules: they are what rules cause"
            ),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with(
                "run.rules[1].kind: unknown event kind \"oom\" (one of hung_task, oom_kill,"
            ),
            "{}",
            e[1]
        );
        assert!(e[1].ends_with(", pattern, previous_boot)"), "{}", e[1]);
        assert!(
            !e[1].contains(" action,") && !e[1].contains(" action)"),
            "action is not offered: {}",
            e[1]
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_refused() {
        let e = errors(
            "\
- name: a
  kind: signal_death
  where:
    pid: '100'
    comm: 123
    core_dumped: yes please
    signal: null
    signal_name: {gt: 3}
    sender_comm: {contains: 5}
    tid: {contains: '1', in: [1, x, 2.5], eq: 1.5}
    sender_pid: {ne: null, lte: big}
  actions: [log]
",
        );
        assert_eq!(
            e,
            [
                "run.rules[0].where.comm: comm is a string, found 123 (quote it to compare as text)",
                "run.rules[0].where.core_dumped: core_dumped is true or false, found \"yes please\"",
                "run.rules[0].where.pid: pid is an integer, found \"100\"",
                "run.rules[0].where.sender_comm: contains needs a string",
                "run.rules[0].where.sender_pid: lte needs a number, found \"big\"",
                "run.rules[0].where.signal: signal is never null",
                "run.rules[0].where.signal_name: gt compares numbers; signal_name is a string",
                "run.rules[0].where.tid: contains looks for text; tid is an integer",
                "run.rules[0].where.tid: in: tid is an integer, found \"x\"",
                "run.rules[0].where.tid: in: tid is an integer, found 2.5",
                "run.rules[0].where.tid: eq: tid is an integer, found 1.5",
            ]
        );
    }

    #[test]
    fn conditions_match_typed_fields() {
        let r = rules(
            "- name: a\n  kind: signal_death\n  where: {signal: {in: [9, 11]}, comm: {contains: java}, core_dumped: false, pid: {gte: 100, lt: 200}}\n  actions: [log]\n",
            false,
        )
        .unwrap();
        let rule = &r[0];
        assert!(rule.matches(&death(11, "java main", Some(false), 150)));
        assert!(!rule.matches(&death(15, "java", Some(false), 150)), "in");
        assert!(!rule.matches(&death(9, "java", Some(false), 200)), "lt");
        assert!(!rule.matches(&death(9, "java", Some(false), 99)), "gte");
        assert!(
            !rule.matches(&death(9, "python", Some(false), 150)),
            "contains"
        );
        assert!(
            !rule.matches(&death(9, "java", None, 150)),
            "a null field does not equal false"
        );
        assert!(!rule.matches(&oom(150)), "another kind");
    }

    #[test]
    fn ne_holds_on_a_null_field_and_null_can_be_asked_for() {
        let r = rules(
            "\
- {name: not-java, kind: hung_task, where: {comm: {ne: java}}, actions: [log]}
- {name: printed, kind: hung_task, where: {comm: {ne: null}}, actions: [log]}
- {name: counted, kind: hung_task, where: {comm: null}, actions: [log]}
- {name: in-null, kind: hung_task, where: {pid: {in: [null, 1]}}, actions: [log]}
",
            false,
        )
        .unwrap();
        let fired = |e: &Event| -> Vec<&str> {
            r.iter()
                .filter(|r| r.matches(e))
                .map(|r| r.name.as_str())
                .collect()
        };
        assert_eq!(fired(&hung(Some("java"), Some(7))), ["printed"]);
        assert_eq!(
            fired(&hung(Some("dd"), Some(1))),
            ["not-java", "printed", "in-null"]
        );
        // A hung task the kernel only counted: no comm, no pid.
        assert_eq!(fired(&hung(None, None)), ["not-java", "counted", "in-null"]);
    }

    #[test]
    fn numbers_compare_by_value_and_integers_exactly() {
        let big = (1u64 << 53) + 1;
        let r = rules(
            &format!(
                "\
- {{name: exact, kind: dentry_pressure, where: {{total_scan: {{gt: {}}}}}, actions: [log]}}
- {{name: float, kind: dentry_pressure, where: {{headroom: {{lt: 1}}, nr_unused: 5.0e3}}, actions: [log]}}
- {{name: eq, kind: dentry_pressure, where: {{vfs_cache_pressure: 100, kernel_time: {{gte: 12}}}}, actions: [log]}}
",
                big - 1
            ),
            false,
        );
        // An integer field takes whole numbers only: 5.0e3 is a float.
        let e = r.unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(e[0].path, "run.rules[1].where.nr_unused");
        let r = rules(
            &format!(
                "\
- {{name: exact, kind: dentry_pressure, where: {{total_scan: {{gt: {}}}}}, actions: [log]}}
- {{name: float, kind: dentry_pressure, where: {{headroom: {{lt: 1}}, nr_unused: 5000}}, actions: [log]}}
- {{name: eq, kind: dentry_pressure, where: {{vfs_cache_pressure: 100, kernel_time: {{gte: 12}}}}, actions: [log]}}
",
                big - 1
            ),
            false,
        )
        .unwrap();
        let d = |total_scan: u64, headroom: f64| {
            event(Body::DentryPressure(DentryPressure {
                nr_dentry: 9000,
                nr_unused: 5000,
                vfs_cache_pressure: 100,
                headroom,
                reason: None,
                total_scan: Some(total_scan),
                shrinker: None,
            }))
        };
        let fired = |e: &Event| -> Vec<&str> {
            r.iter()
                .filter(|r| r.matches(e))
                .map(|r| r.name.as_str())
                .collect()
        };
        // 2^53 + 1 is not representable as f64: only an exact comparison
        // sees it above 2^53.
        assert_eq!(fired(&d(big, 0.5)), ["exact", "float", "eq"]);
        assert_eq!(fired(&d(big - 1, 1.0)), ["eq"]);
        assert_eq!(
            errors("- {name: a, kind: dentry_pressure, where: {headroom: {lt: .nan}}, actions: [log]}\n"),
            ["run.rules[0].where.headroom: lt needs a number, found .nan"]
        );
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
        let oom = oom(1);
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
                actions: vec![Action::Sysrq("m".into())],
                incident: true,
                cooldown: Duration::from_secs(60),
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
        let r = rules("- name: a\n  kind: lost\n  actions: [log]\n", false).unwrap();
        let mut e = Engine::new(r);
        let t = Instant::now();
        let lost = event(Body::Lost(Lost {
            count: 3,
            reason: None,
        }));
        for _ in 0..3 {
            assert_eq!(e.decide(&lost, t).len(), 1);
        }
    }

    /// docs/run.md lists what rules may name; it must say what the schema
    /// says.
    #[test]
    fn docs_list_the_rule_fields() {
        let list = |fields: &[Field]| {
            fields
                .iter()
                .map(|f| {
                    let ty = match f.ty {
                        FieldType::Str => "text",
                        FieldType::Int => "integer",
                        FieldType::Float => "number",
                        FieldType::Bool => "bool",
                        FieldType::List => "list",
                    };
                    let null = if f.nullable { "?" } else { "" };
                    format!("`{}` {ty}{null}", f.name)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut want = vec![format!(
            "| every kind | {} |",
            list(crate::events::COMMON_FIELDS)
        )];
        for k in SCHEMA.iter().filter(|k| k.rule_trigger) {
            want.push(format!("| `{}` | {} |", k.name, list(k.fields)));
        }
        let want = want.join("\n");
        let docs = include_str!("../docs/run.md");
        assert!(docs.contains(&want), "docs/run.md should have:\n{want}");
    }

    /// Issue 18, defect 10: "SIGHUP resets rule cooldowns" — a rule with
    /// `cooldown_secs: 300` fired three times in three minutes with a
    /// reload between records.
    #[test]
    fn issue18_10_sighup_resets_rule_cooldowns() {
        let yaml = "\
- {name: dump, kind: hung_task, cooldown_secs: 300, actions: [{sysrq: t}]}
- {name: burst, kind: oom_kill, count: 2, window_secs: 600, actions: [{sysrq: m}]}
";
        let mut e = Engine::new(rules(yaml, false).unwrap());
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let task = hung(Some("writer"), Some(412));
        assert_eq!(e.decide(&task, at(0)).len(), 1);
        assert!(e.decide(&oom(1), at(1)).is_empty(), "first of two");
        for minute in 1..=3 {
            assert_eq!(e.reload(rules(yaml, false).unwrap()), 2);
            assert!(
                e.decide(&task, at(minute * 60)).is_empty(),
                "reload {minute} ended the cooldown"
            );
        }
        assert_eq!(
            e.decide(&oom(2), at(200)).len(),
            1,
            "the window kept its first hit"
        );
        assert_eq!(e.decide(&task, at(301)).len(), 1, "the cooldown ends");

        // A changed rule starts fresh; the unchanged one keeps its state.
        let changed = "\
- {name: dump, kind: hung_task, cooldown_secs: 600, actions: [{sysrq: t}]}
- {name: burst, kind: oom_kill, count: 2, window_secs: 600, actions: [{sysrq: m}]}
";
        assert!(e.decide(&oom(3), at(302)).is_empty());
        assert_eq!(e.reload(rules(changed, false).unwrap()), 1);
        assert_eq!(e.decide(&task, at(303)).len(), 1, "new cooldown, fresh");
        assert_eq!(e.decide(&oom(4), at(304)).len(), 1, "window kept");
        assert_eq!(e.rules().count(), 2);
    }
}
