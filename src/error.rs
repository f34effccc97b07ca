//! Configuration errors: one problem with its YAML path, and every problem
//! of one file. A leaf module, so each subsystem can validate its own
//! section and report in the same form without importing the assembler
//! (`config`).

use std::fmt;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// YAML path such as `check.dentry.warning_ratio` (empty: the document).
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Problems on one line, `path: message; path: message`, for an error
/// that has no file to name (settings built in code).
pub fn one_line(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} configuration error{}",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            if e.path.is_empty() {
                write!(f, "\n  {}", e.message)?;
            } else {
                write!(f, "\n  {}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects the problems of one section, each under the section's YAML
/// path (`udplogger`, `run.tracefs`), so a section's validation does not
/// need to know where in the document it sits.
#[derive(Debug)]
pub struct Problems {
    prefix: String,
    errors: Vec<ConfigError>,
}

impl Problems {
    /// Problems of the section at `prefix` (empty: the document root).
    pub fn new(prefix: &str) -> Problems {
        Problems {
            prefix: prefix.to_string(),
            errors: Vec::new(),
        }
    }

    /// The YAML path of `field` in this section (`field` may be empty: the
    /// section itself, or carry an index: `listen[0]`).
    pub fn path(&self, field: &str) -> String {
        match (self.prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{field}", self.prefix),
        }
    }

    /// Records a problem with `field`.
    pub fn at(&mut self, field: &str, message: impl Into<String>) {
        let path = self.path(field);
        self.errors.push(ConfigError::new(path, message));
    }

    /// Adds problems found by a subsection (already carrying full paths).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = ConfigError>) {
        self.errors.extend(errors);
    }

    /// Every problem recorded, in the order found.
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// `value` when nothing was wrong, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<ConfigError>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_under_the_section() {
        let mut p = Problems::new("run.tracefs");
        p.at("instance", "bad");
        p.at("", "whole section");
        let mut root = Problems::new("");
        root.at("check", "x");
        assert_eq!(root.into_errors()[0].path, "check");
        let e = p.finish(()).unwrap_err();
        assert_eq!(e[0].path, "run.tracefs.instance");
        assert_eq!(e[1].path, "run.tracefs");
        assert!(Problems::new("x").finish(7).is_ok_and(|v| v == 7));
    }

    #[test]
    fn display_lists_every_error() {
        let e = ConfigErrors {
            source: "f.yaml".into(),
            errors: vec![ConfigError::new("", "doc"), ConfigError::new("a.b", "m")],
        };
        assert_eq!(
            e.to_string(),
            "f.yaml: 2 configuration errors\n  doc\n  a.b: m"
        );
    }
}
