//! Names for senders: the one place that decides what a sender is called
//! in events, forwarded messages and per-sender directories.
//!
//! In order of precedence:
//! 1. the operator's word: `udplogger.hosts` (address → name) and
//!    `udplogger.hosts_file` (`/etc/hosts` format, read again on SIGHUP);
//! 2. the kernel's own hint: netconsole userdata `hostname=NAME`, which
//!    kernels with configfs userdata (6.9+) append to every extended record
//!    as a dictionary line;
//! 3. the address, `a.b.c.d:port` or `[v6]:port`.
//!
//! The extended release prefix (`6.1.0-13-amd64,6,…`) is no name — many
//! hosts run one kernel — so it is kept beside the name
//! ([`Hints::release`]) for events, not in it.
//!
//! Log lines keep the address in their source column whatever the name:
//! a name can be claimed by any sender, an address (on a trusted network)
//! cannot.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Longest name taken from a file or a sender; longer ones are ignored.
const MAX_NAME: usize = 253;

/// What a sender said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// netconsole userdata `hostname=` (a dictionary line).
    pub hostname: Option<String>,
    /// The extended release prefix (netconsole `release`, 4.20+).
    pub release: Option<String>,
}

impl Hints {
    /// Takes what a record's dictionary lines say; true when a hint
    /// changed.
    pub fn learn(&mut self, dict: &[&[u8]]) -> bool {
        let mut changed = false;
        for d in dict {
            if let Some(v) = d.strip_prefix(b"hostname=") {
                if let Some(n) = valid_name(v) {
                    if self.hostname.as_deref() != Some(n) {
                        self.hostname = Some(n.to_string());
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

/// A host name as a sender or a file may give it: printable ASCII without
/// spaces or `/` (it becomes a directory name), not `.` or `..`.
fn valid_name(b: &[u8]) -> Option<&str> {
    let ok = !b.is_empty()
        && b.len() <= MAX_NAME
        && b.iter().all(|c| c.is_ascii_graphic() && *c != b'/')
        && b != b"."
        && b != b"..";
    ok.then(|| std::str::from_utf8(b).ok()).flatten()
}

/// The address → name table.
#[derive(Debug, Clone, Default)]
pub struct Names {
    configured: HashMap<IpAddr, String>,
    file: Option<PathBuf>,
    from_file: HashMap<IpAddr, String>,
}

impl Names {
    /// The table from the configuration's `hosts` map and `hosts_file`
    /// (read now; an error names the file and line).
    pub fn new(
        configured: HashMap<IpAddr, String>,
        file: Option<PathBuf>,
    ) -> Result<Names, String> {
        let mut n = Names {
            configured,
            file,
            from_file: HashMap::new(),
        };
        n.reload()?;
        Ok(n)
    }

    /// Reads `hosts_file` again (SIGHUP). On error the table read before
    /// stays in force.
    pub fn reload(&mut self) -> Result<(), String> {
        if let Some(p) = &self.file {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            self.from_file = parse_hosts(&text, p)?;
        }
        Ok(())
    }

    /// The name of the sender at `addr`: the one function that names a
    /// sender (events, forwarding, per-sender directories).
    pub fn name_of(&self, addr: SocketAddr, hints: &Hints) -> String {
        let ip = addr.ip().to_canonical();
        if let Some(n) = self.configured.get(&ip).or_else(|| self.from_file.get(&ip)) {
            return n.clone();
        }
        if let Some(h) = &hints.hostname {
            return h.clone();
        }
        super::source_name(addr)
    }
}

/// `/etc/hosts` format: `ADDRESS NAME [ALIAS...]`, `#` comments. The first
/// name is the one used. A line that is not of that form is an error
/// naming its file and line.
pub fn parse_hosts(text: &str, path: &Path) -> Result<HashMap<IpAddr, String>, String> {
    let mut map = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(a), Some(n)) = (f.next(), f.next()) else {
            return Err(format!(
                "{}:{}: expected \"ADDRESS NAME\", found {line:?}",
                path.display(),
                i + 1
            ));
        };
        let ip: IpAddr = a
            .parse()
            .map_err(|_| format!("{}:{}: {a:?} is not an IP address", path.display(), i + 1))?;
        let name = valid_name(n.as_bytes()).ok_or_else(|| {
            format!(
                "{}:{}: {n:?} is not a usable host name (printable, no '/')",
                path.display(),
                i + 1
            )
        })?;
        // The first line for an address wins, as for the resolver.
        map.entry(ip.to_canonical())
            .or_insert_with(|| name.to_string());
    }
    Ok(map)
}

/// The configured `hosts` map, checked: every problem as `(key, message)`.
pub fn parse_configured(
    hosts: &std::collections::BTreeMap<String, String>,
) -> (HashMap<IpAddr, String>, Vec<(String, String)>) {
    let mut map = HashMap::new();
    let mut problems = Vec::new();
    for (a, n) in hosts {
        match (a.parse::<IpAddr>(), valid_name(n.as_bytes())) {
            (Ok(ip), Some(n)) => {
                map.insert(ip.to_canonical(), n.to_string());
            }
            (Err(_), _) => problems.push((a.clone(), format!("{a:?} is not an IP address"))),
            (_, None) => problems.push((
                a.clone(),
                format!("{n:?} is not a usable host name (printable, no '/')"),
            )),
        }
    }
    (map, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_names_beat_the_file_and_the_senders_hint() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("hosts");
        std::fs::write(&f, "# fleet\n10.0.0.1 web1 web1.example\n10.0.0.2\tdb1 # primary\n::1 lo6\n10.0.0.1 other\n").unwrap();
        let mut cfg = std::collections::BTreeMap::new();
        cfg.insert("10.0.0.2".to_string(), "db-primary".to_string());
        let (configured, problems) = parse_configured(&cfg);
        assert!(problems.is_empty());
        let names = Names::new(configured, Some(f.clone())).unwrap();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let none = Hints::default();
        let hinted = Hints {
            hostname: Some("kernel-says".into()),
            release: None,
        };
        assert_eq!(names.name_of(a("10.0.0.1:6665"), &hinted), "web1");
        assert_eq!(names.name_of(a("[::ffff:10.0.0.1]:6665"), &none), "web1");
        assert_eq!(names.name_of(a("10.0.0.2:6665"), &none), "db-primary");
        assert_eq!(names.name_of(a("[::1]:6665"), &none), "lo6");
        assert_eq!(names.name_of(a("10.0.0.3:6665"), &hinted), "kernel-says");
        assert_eq!(names.name_of(a("10.0.0.3:6665"), &none), "10.0.0.3:6665");
    }

    #[test]
    fn the_file_is_read_again_and_a_bad_file_keeps_the_old_table() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("hosts");
        std::fs::write(&f, "10.0.0.1 a\n").unwrap();
        let mut names = Names::new(HashMap::new(), Some(f.clone())).unwrap();
        let addr: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(names.name_of(addr, &Hints::default()), "a");
        std::fs::write(&f, "10.0.0.1 b\n").unwrap();
        names.reload().unwrap();
        assert_eq!(names.name_of(addr, &Hints::default()), "b");
        std::fs::write(&f, "10.0.0.1 b\nnot-an-address c\n").unwrap();
        let e = names.reload().unwrap_err();
        assert!(
            e.ends_with("hosts:2: \"not-an-address\" is not an IP address"),
            "{e}"
        );
        assert_eq!(names.name_of(addr, &Hints::default()), "b");
        std::fs::write(&f, "10.0.0.9\n").unwrap();
        assert!(names.reload().unwrap_err().contains("hosts:1: expected"));
    }

    #[test]
    fn hints_come_from_userdata_and_must_be_usable_names() {
        let mut h = Hints::default();
        assert!(!h.learn(&[b"SUBSYSTEM=pci"]));
        assert!(h.learn(&[b"SUBSYSTEM=pci", b"hostname=web7"]));
        assert!(!h.learn(&[b"hostname=web7"]));
        assert!(!h.learn(&[b"hostname=../etc"]));
        assert!(!h.learn(&[b"hostname=a b"]));
        assert_eq!(h.hostname.as_deref(), Some("web7"));
        let mut bad = std::collections::BTreeMap::new();
        bad.insert("x".to_string(), "n".to_string());
        bad.insert("10.0.0.1".to_string(), "a/b".to_string());
        let (_, p) = parse_configured(&bad);
        assert_eq!(p.len(), 2);
    }
}
