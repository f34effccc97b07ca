//! systemd's notification protocol (sd_notify): READY, STATUS, WATCHDOG,
//! RELOADING, STOPPING, sent as datagrams to `$NOTIFY_SOCKET` when set.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    sock: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `$WATCHDOG_USEC`: how often systemd wants a keep-alive.
    pub watchdog_interval: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let sock = std::env::var("NOTIFY_SOCKET").ok().and_then(|path| {
            let addr = if let Some(name) = path.strip_prefix('@') {
                SocketAddr::from_abstract_name(name.as_bytes()).ok()?
            } else {
                SocketAddr::from_pathname(&path).ok()?
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        let watchdog_interval = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&us| us > 0)
            .map(|us| Duration::from_micros(us / 2));
        Notifier {
            sock,
            watchdog_interval,
        }
    }

    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.sock {
            let _ = sock.send_to_addr(state.as_bytes(), addr);
        }
    }
}
