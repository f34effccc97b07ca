//! What `watchdog udplogger` forwards: every line it writes and every
//! marker, as RFC 5424 messages.
//!
//! A line: facility kern, severity the extended record's level (plain
//! console text has none: info), TIMESTAMP the receive time, HOSTNAME the
//! sender ([`UdpForward::hostname`]), APP-NAME `kernel`, MSGID
//! `netconsole`, and an [`SD_NETCONSOLE`] element with `addr` and `port`
//! and, for extended records, `seq`, `ts_usec` and one `dict` parameter
//! per dictionary line. A marker: severity warning, MSGID
//! `udplogger-marker`, HOSTNAME the sender it is about (else this host),
//! and an [`SD_MARKER`] element with `kind`, `about`, its counts and
//! `reason`; MSG is the marker's message.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use super::message::{self, Builder, Header, SD_MARKER, SD_NETCONSOLE};
use super::{Forwarder, NoticeFn, Target};
use crate::marker::{Body, Marker, Value};

/// The receiver's handle on its forward targets.
pub struct UdpForward {
    fwd: Forwarder,
    b: Builder,
    /// This host's name, for markers that are not about a sender.
    local: Option<String>,
}

/// `addr:port` / `[v6]:port` into its address and port.
fn split_source(source: &str) -> (&str, &str) {
    match source.rsplit_once(':') {
        Some((a, p)) if !a.is_empty() => (a.trim_start_matches('[').trim_end_matches(']'), p),
        _ => (source, ""),
    }
}

fn local_host() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}

/// A marker as a message: HOSTNAME `host` (the sender it is about, or
/// this host).
pub fn marker_message(b: &mut Builder, stamp: &str, host: Option<&str>, m: &Marker) -> Vec<u8> {
    b.start(&Header {
        facility: message::FACILITY_KERN,
        severity: 4,
        timestamp: Some(stamp),
        hostname: host,
        app_name: "kernel",
        procid: None,
        msgid: "udplogger-marker",
    });
    let mut sd = b.element(SD_MARKER);
    sd.param("kind", m.kind().name().as_bytes())
        .param("about", m.about.as_bytes());
    for (k, v) in m.fields() {
        match v {
            Value::Num(n) => sd.num(k, n),
            Value::Str(s) => sd.param(k, s.as_bytes()),
        };
    }
    if let Some(r) = &m.reason {
        sd.param("reason", r.as_bytes());
    }
    b.finish(m.message().as_bytes()).to_vec()
}

/// A line as a message: HOSTNAME `host`, the sender's address and port
/// from `source`, `meta` as in [`UdpForward::line`].
pub fn line_message<'b>(
    b: &'b mut Builder,
    stamp: &str,
    host: &str,
    source: &str,
    text: &[u8],
    meta: Option<(u32, u64, u64)>,
    dict: &[&[u8]],
) -> &'b [u8] {
    let (addr, port) = split_source(source);
    b.start(&Header {
        facility: message::FACILITY_KERN,
        severity: meta.map_or(6, |(pri, _, _)| message::severity_of(pri)),
        timestamp: Some(stamp),
        hostname: Some(host),
        app_name: "kernel",
        procid: None,
        msgid: "netconsole",
    });
    let mut sd = b.element(SD_NETCONSOLE);
    sd.param("addr", addr.as_bytes())
        .param("port", port.as_bytes());
    if let Some((_, seq, ts)) = meta {
        sd.num("seq", seq).num("ts_usec", ts);
    }
    for d in dict {
        sd.param("dict", d);
    }
    b.finish(text)
}

impl UdpForward {
    /// Starts the targets' threads; `log` says things on stderr.
    pub fn start(targets: &[Target], log: super::LogFn) -> Result<UdpForward, String> {
        let local = local_host();
        let host = local.clone();
        let notice: NoticeFn = Arc::new(move |target: &str, count: u64| {
            let m = Marker::new(target, Body::Dropped { count })
                .with_reason("its queue was full while it was slow or down");
            let now = chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            marker_message(&mut Builder::default(), &now, host.as_deref(), &m)
        });
        Ok(UdpForward {
            fwd: Forwarder::start(targets, &notice, log)?,
            b: Builder::default(),
            local,
        })
    }

    /// The HOSTNAME of a sender's messages: its address today. This is the
    /// one place that names a sender; a configured name map goes here.
    pub fn hostname<'a>(&self, source: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(split_source(source).0)
    }

    /// Forwards one line as written to the log, of the sender `name` (its
    /// mapped name, or its address when it has none) at `source`. `meta`
    /// is `(pri, seq, ts_usec)` of an extended record.
    pub fn line(
        &mut self,
        stamp: &str,
        name: &str,
        source: &str,
        text: &[u8],
        meta: Option<(u32, u64, u64)>,
        dict: &[&[u8]],
    ) {
        if !self.fwd.has_room() {
            self.fwd.drop_one();
            return;
        }
        let host = if name == source {
            self.hostname(source)
        } else {
            Cow::Borrowed(name)
        };
        let m = line_message(&mut self.b, stamp, &host, source, text, meta, dict);
        self.fwd.send(m);
    }

    /// Forwards a marker; `sender` is set when it is about a sender.
    pub fn marker(&mut self, stamp: &str, sender: Option<&str>, m: &Marker) {
        if !self.fwd.has_room() {
            self.fwd.drop_one();
            return;
        }
        let host = match sender {
            Some(s) => Some(self.hostname(s).into_owned()),
            None => self.local.clone(),
        };
        let msg = marker_message(&mut self.b, stamp, host.as_deref(), m);
        self.fwd.send(&msg);
    }

    pub fn metrics(&self) -> String {
        self.fwd.metrics("watchdog_udplogger_forward")
    }

    /// Lets the targets send what is queued (until `deadline`) and returns
    /// one summary line per target.
    pub fn finish(&mut self, deadline: Instant) -> Vec<String> {
        self.fwd.finish(deadline);
        self.fwd.summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_split_into_address_and_port() {
        assert_eq!(split_source("10.1.2.3:6665"), ("10.1.2.3", "6665"));
        assert_eq!(split_source("[fe80::1]:6665"), ("fe80::1", "6665"));
    }

    #[test]
    fn a_marker_as_a_message() {
        let m = Marker::new("10.0.0.1:6665", Body::Gap { from: 5, to: 7 });
        let out = marker_message(
            &mut Builder::default(),
            "2026-11-29T11:00:00.000001Z",
            Some("10.0.0.1"),
            &m,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<4>1 2026-11-29T11:00:00.000001Z 10.0.0.1 kernel - udplogger-marker [udplogger@32473 kind=\"gap\" about=\"10.0.0.1:6665\" count=\"3\" from=\"5\" to=\"7\"] 3 records missing"
        );
    }
}
