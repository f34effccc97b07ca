//! Site patterns: the `patterns:` section of the configuration. A site
//! names a kernel message of its own (a driver's complaint, a multipath
//! path failing) with a regular expression; each match is a `pattern`
//! event carrying the pattern's name and its named captures as fields,
//! usable in rules like any kind.
//!
//! Two stages like every section: serde fills [`PatternConfig`], then
//! [`compile`] checks every entry and reports all problems with their YAML
//! path. Expressions use the `regex` crate: linear time in the length of
//! the line whatever the pattern, so a site pattern cannot stall the
//! parser on a hostile line.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::events::{Pattern, COMMON_FIELDS};

/// One pattern as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// The event's `pattern` field; rules say `where: {pattern: NAME}`.
    pub name: String,
    /// A regular expression (Rust `regex` syntax) searched in the message
    /// text; `(?P<name>...)` captures become fields.
    pub regex: String,
    /// Only messages of this printk level or more severe (0 emerg … 7
    /// debug); messages without a level always qualify.
    #[serde(default)]
    pub max_level: Option<u8>,
    /// Only messages of this level or less severe.
    #[serde(default)]
    pub min_level: Option<u8>,
}

/// Compiled-size limit of one expression: bounds memory, whatever a
/// configuration says.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A compiled site pattern.
#[derive(Debug, Clone)]
pub struct SitePattern {
    pub name: String,
    regex: regex::Regex,
    min_level: u8,
    max_level: u8,
    /// Named captures, in the order of the expression.
    pub captures: Vec<String>,
}

/// Every compiled pattern, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct SitePatterns {
    pub patterns: Vec<SitePattern>,
}

impl SitePatterns {
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The pattern events of one kernel message (one per matching pattern).
    pub fn matches(&self, text: &str, level: Option<u8>) -> Vec<Pattern> {
        let mut out = Vec::new();
        for p in &self.patterns {
            if let Some(l) = level {
                if l < p.min_level || l > p.max_level {
                    continue;
                }
            }
            let Some(c) = p.regex.captures(text) else {
                continue;
            };
            out.push(Pattern {
                pattern: p.name.clone(),
                captures: p
                    .captures
                    .iter()
                    .map(|n| (n.clone(), c.name(n).map(|m| m.as_str().to_string())))
                    .collect(),
            });
        }
        out
    }

    /// Pattern names and their captures, for the rule compiler.
    pub fn fields(&self) -> Vec<(String, Vec<String>)> {
        self.patterns
            .iter()
            .map(|p| (p.name.clone(), p.captures.clone()))
            .collect()
    }
}

/// Compiles the `patterns:` section found at YAML path `prefix`; every
/// problem is reported, each with its path.
pub fn compile(list: &[PatternConfig], prefix: &str) -> Result<SitePatterns, Vec<ConfigError>> {
    let (p, errs) = compile_all(list, prefix);
    if errs.is_empty() {
        Ok(p)
    } else {
        Err(errs)
    }
}

/// The patterns that compiled and the problems of the others, so that the
/// rules can still be checked against the good ones' captures.
pub fn compile_all(list: &[PatternConfig], prefix: &str) -> (SitePatterns, Vec<ConfigError>) {
    let mut errs = Vec::new();
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in list.iter().enumerate() {
        let at = |f: &str| format!("{prefix}[{i}].{f}");
        let plain = !p.name.is_empty()
            && p.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plain {
            errs.push(ConfigError::new(
                at("name"),
                format!(
                    "must be letters, digits, - and _ (it names the events), found {:?}",
                    p.name
                ),
            ));
        } else if !names.insert(p.name.clone()) {
            errs.push(ConfigError::new(
                at("name"),
                format!("duplicate pattern name {:?}", p.name),
            ));
        }
        let min = p.min_level.unwrap_or(0);
        let max = p.max_level.unwrap_or(7);
        for (f, v) in [("min_level", p.min_level), ("max_level", p.max_level)] {
            if let Some(l) = v.filter(|l| *l > 7) {
                errs.push(ConfigError::new(
                    at(f),
                    format!("printk levels are 0 (emerg) to 7 (debug), found {l}"),
                ));
            }
        }
        if min > max && max <= 7 && min <= 7 {
            errs.push(ConfigError::new(
                at("min_level"),
                format!("min_level {min} is above max_level {max}: nothing would match"),
            ));
        }
        let regex = match regex::RegexBuilder::new(&p.regex)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                // The regex crate's message is several lines with a caret.
                let msg = e.to_string().replace('\n', " ");
                errs.push(ConfigError::new(at("regex"), msg));
                continue;
            }
        };
        if p.regex.is_empty() {
            errs.push(ConfigError::new(
                at("regex"),
                "an empty expression matches every line",
            ));
        }
        let captures: Vec<String> = regex.capture_names().flatten().map(String::from).collect();
        for c in &captures {
            if c == "pattern" || COMMON_FIELDS.iter().any(|f| f.name == c) {
                errs.push(ConfigError::new(
                    at("regex"),
                    format!("capture {c:?} would hide the event's own {c:?} field; rename it"),
                ));
            }
        }
        out.push(SitePattern {
            name: p.name.clone(),
            regex,
            min_level: min,
            max_level: max,
            captures,
        });
    }
    (SitePatterns { patterns: out }, errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Vec<PatternConfig> {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn captures_become_fields_and_levels_filter() {
        let p = compile(
            &cfg(r#"
- name: mpath-fail
  regex: 'device-mapper: multipath: (?:\d+:\d+: )?Failing path (?P<path>\S+)\.'
  max_level: 4
"#),
            "patterns",
        )
        .unwrap();
        let m = p.matches(
            "device-mapper: multipath: 253:3: Failing path 8:32.",
            Some(3),
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].pattern, "mpath-fail");
        assert_eq!(
            m[0].captures,
            [("path".to_string(), Some("8:32".to_string()))]
        );
        assert!(p
            .matches("device-mapper: multipath: Failing path 8:32.", Some(6))
            .is_empty());
        assert_eq!(
            p.matches("device-mapper: multipath: Failing path 8:32.", None)
                .len(),
            1
        );
        assert_eq!(p.fields(), [("mpath-fail".into(), vec!["path".into()])]);
    }

    #[test]
    fn every_error_has_its_path() {
        let e = compile(
            &cfg(r#"
- {name: a, regex: '(unclosed'}
- {name: a, regex: 'x', max_level: 9}
- {name: 'bad name', regex: '(?P<kind>x)', min_level: 5, max_level: 2}
"#),
            "patterns",
        )
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "patterns[0].regex",
                "patterns[1].name",
                "patterns[1].max_level",
                "patterns[2].name",
                "patterns[2].min_level",
                "patterns[2].regex"
            ]
        );
        assert!(e[0].message.contains("unclosed"), "{}", e[0].message);
        assert!(e[5].message.contains("\"kind\""), "{}", e[5].message);
    }
}
