//! Forward targets as users write them: a URL (`--forward`, or a string
//! in `run.forward` / `udplogger.forward`) or a mapping with the URL and
//! its TLS files. [`parse`] turns either into a checked [`Target`].
//!
//! `syslog+udp://HOST[:PORT]` (RFC 5426, default port 514),
//! `syslog+tcp://HOST[:PORT]` (RFC 6587 octet counting, default 514),
//! `syslog+tls://HOST[:PORT]` (RFC 5425, default 6514). HOST is a name,
//! an IPv4 address or `[IPv6]`. Query parameters: `ca`, `cert`, `key`,
//! `name` (TLS: CA file, client certificate and key, the name the
//! server's certificate must carry; default HOST) and `queue` (messages
//! held while the target is slow or down; default [`DEFAULT_QUEUE`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Messages a target may have waiting before new ones are dropped (and
/// counted, and reported to it once it takes messages again).
pub const DEFAULT_QUEUE: usize = 16384;

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// TLS files and the server name to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: PathBuf,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: String,
}

/// One checked target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (without its query), for messages and metrics.
    pub name: String,
    pub transport: Transport,
    /// A name or address, resolved at every connection attempt.
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsFiles>,
    pub queue: usize,
}

/// A target in YAML: a URL, or a mapping with the URL and TLS files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetConfig {
    Url(String),
    Full(TargetSettings),
}

/// The mapping form of a target; the fields override the URL's query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<usize>,
}

impl TargetConfig {
    /// The checked target, or what is wrong with it.
    pub fn compile(&self) -> Result<Target, String> {
        match self {
            TargetConfig::Url(u) => parse(u, &TargetSettings::default()),
            TargetConfig::Full(s) => parse(&s.url, s),
        }
    }
}

/// Checks every target of a `forward` list, each problem at its YAML path
/// (`PATH[i]`).
pub fn validate(list: &[TargetConfig], path: &str) -> Vec<crate::error::ConfigError> {
    list.iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.compile().err().map(|message| crate::error::ConfigError {
                path: format!("{path}[{i}]"),
                message,
            })
        })
        .collect()
}

/// Parses a URL; `over` (the mapping form's fields) wins over its query.
pub fn parse(url: &str, over: &TargetSettings) -> Result<Target, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!(
            "{url:?}: not a URL (expected syslog+udp://, syslog+tcp:// or syslog+tls://HOST:PORT)"
        )
    })?;
    let (transport, default_port) = match scheme {
        "syslog+udp" => (Transport::Udp, 514),
        "syslog+tcp" => (Transport::Tcp, 514),
        "syslog+tls" => (Transport::Tls, 6514),
        _ => {
            return Err(format!(
                "{url:?}: unknown scheme {scheme:?} (expected syslog+udp, syslog+tcp or syslog+tls)"
            ))
        }
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, tail) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed '[' in the host"))?;
        (h, tail.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(format!("{url:?}: missing or invalid host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{url:?}: port {p:?} is not 1..65535"))?,
    };
    let mut q = TargetSettings::default();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("{url:?}: query parameter {kv:?} has no value"))?;
        let v = Some(v.to_string());
        match k {
            "ca" => q.ca_file = v,
            "cert" => q.cert_file = v,
            "key" => q.key_file = v,
            "name" => q.server_name = v,
            "queue" => {
                q.queue = Some(
                    v.as_deref()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| format!("{url:?}: queue must be a number of messages"))?,
                )
            }
            _ => {
                return Err(format!(
                    "{url:?}: unknown query parameter {k:?} (known: ca, cert, key, name, queue)"
                ))
            }
        }
    }
    let pick = |a: &Option<String>, b: Option<String>| a.clone().or(b).filter(|s| !s.is_empty());
    let ca = pick(&over.ca_file, q.ca_file);
    let cert = pick(&over.cert_file, q.cert_file);
    let key = pick(&over.key_file, q.key_file);
    let name = pick(&over.server_name, q.server_name);
    let queue = over.queue.or(q.queue).unwrap_or(DEFAULT_QUEUE);
    if !(16..=1 << 20).contains(&queue) {
        return Err(format!("{url:?}: queue must be 16..1048576, found {queue}"));
    }
    let tls = match transport {
        Transport::Tls => {
            let ca_file = ca.ok_or_else(|| {
                format!("{url:?}: syslog+tls needs a CA file (ca_file, or ?ca=FILE)")
            })?;
            if cert.is_some() != key.is_some() {
                return Err(format!(
                    "{url:?}: a client certificate needs its key and the key its certificate (cert_file and key_file)"
                ));
            }
            Some(TlsFiles {
                ca_file: ca_file.into(),
                cert_file: cert.map(PathBuf::from),
                key_file: key.map(PathBuf::from),
                server_name: name.unwrap_or_else(|| host.to_string()),
            })
        }
        _ => {
            if ca.is_some() || cert.is_some() || key.is_some() || name.is_some() {
                return Err(format!(
                    "{url:?}: TLS settings (ca, cert, key, name) need syslog+tls://"
                ));
            }
            None
        }
    };
    Ok(Target {
        name: format!("{scheme}://{authority}"),
        transport,
        host: host.to_string(),
        port,
        tls,
        queue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(u: &str) -> Result<Target, String> {
        parse(u, &TargetSettings::default())
    }

    #[test]
    fn schemes_hosts_and_default_ports() {
        let t = p("syslog+udp://127.0.0.1").unwrap();
        assert_eq!(
            (t.transport, t.host.as_str(), t.port),
            (Transport::Udp, "127.0.0.1", 514)
        );
        let t = p("syslog+tcp://[::1]:1601").unwrap();
        assert_eq!(
            (t.transport, t.host.as_str(), t.port),
            (Transport::Tcp, "::1", 1601)
        );
        assert_eq!(t.name, "syslog+tcp://[::1]:1601");
        let t = p("syslog+tls://logs.example.com?ca=/etc/ca.pem&queue=100").unwrap();
        assert_eq!(t.port, 6514);
        assert_eq!(t.queue, 100);
        let tls = t.tls.unwrap();
        assert_eq!(tls.server_name, "logs.example.com");
        assert_eq!(tls.ca_file, PathBuf::from("/etc/ca.pem"));
    }

    #[test]
    fn the_mapping_form_overrides_the_query() {
        let s = TargetSettings {
            url: "syslog+tls://10.0.0.5:6514?ca=/a.pem".into(),
            ca_file: Some("/b.pem".into()),
            server_name: Some("logs".into()),
            cert_file: Some("/c.pem".into()),
            key_file: Some("/k.pem".into()),
            queue: None,
        };
        let t = TargetConfig::Full(s).compile().unwrap();
        let tls = t.tls.unwrap();
        assert_eq!(tls.ca_file, PathBuf::from("/b.pem"));
        assert_eq!(tls.server_name, "logs");
        assert_eq!(tls.key_file, Some(PathBuf::from("/k.pem")));
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        for (u, want) in [
            ("127.0.0.1:514", "not a URL"),
            ("syslog+http://h:1", "unknown scheme"),
            ("syslog+tcp://:514", "missing or invalid host"),
            ("syslog+tcp://h:0", "is not 1..65535"),
            ("syslog+tcp://h:99999", "is not 1..65535"),
            ("syslog+tcp://[::1:514", "unclosed"),
            ("syslog+tls://h:6514", "needs a CA file"),
            ("syslog+tls://h?ca=/a&cert=/c", "needs its key"),
            ("syslog+udp://h?ca=/a", "need syslog+tls"),
            ("syslog+udp://h?foo=1", "unknown query parameter"),
            ("syslog+udp://h?queue=1", "queue must be 16..1048576"),
        ] {
            let e = p(u).unwrap_err();
            assert!(e.contains(want), "{u}: {e}");
        }
    }

    #[test]
    fn validate_names_the_yaml_path() {
        let list: Vec<TargetConfig> =
            serde_yaml::from_str("- syslog+udp://127.0.0.1:514\n- {url: 'syslog+tls://h'}\n")
                .unwrap();
        let e = validate(&list, "run.forward");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "run.forward[1]");
    }
}
