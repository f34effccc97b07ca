//! Prometheus text-format metrics for node_exporter's textfile collector:
//! written whole to `FILE.tmp` and renamed, so the collector never reads
//! half a file.
//!
//! Only the generic text rendering lives here (a leaf: it imports nothing
//! of the crate); what each subcommand exports is rendered by its owner
//! (`check::metrics`, `run::metrics`, `udplogger`).

use std::path::Path;

/// Escapes a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Why node_exporter's textfile collector would not read a metrics file
/// (it reads only `*.prom`); empty means "off" and is fine.
pub fn file_error(path: &str) -> Option<String> {
    (!path.is_empty() && !path.ends_with(".prom")).then(|| {
        format!("node_exporter's textfile collector reads only *.prom files, found {path:?}")
    })
}

/// Writes `text` to `path` atomically.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn only_prom_files_are_read_by_node_exporter() {
        assert_eq!(file_error(""), None);
        assert_eq!(file_error("/var/lib/node_exporter/watchdog.prom"), None);
        assert!(file_error("/tmp/watchdog.txt").is_some_and(|e| e.contains("*.prom")));
    }
}
