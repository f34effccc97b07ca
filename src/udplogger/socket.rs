//! Listening sockets: bind, ask for a large receive buffer, turn on the
//! kernel's drop counter.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    bind, getsockname, getsockopt, setsockopt, socket, sockopt, AddressFamily, SockFlag,
    SockProtocol, SockType, SockaddrStorage,
};

/// Default netconsole target port.
pub const DEFAULT_PORT: u16 = 6666;

/// `ADDR:PORT`, `[V6]:PORT`, a bare address (port 6666) or a bare port
/// (all addresses, dual-stack).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    Err(format!(
        "{s:?}: not an address to listen on (ADDR:PORT, [IPV6]:PORT, ADDR or PORT)"
    ))
}

/// How the receive buffer was set.
#[derive(Debug, Clone)]
pub struct Buffer {
    pub asked: usize,
    /// What the kernel reports (it doubles the request for bookkeeping).
    pub effective: usize,
    pub forced: bool,
}

impl std::fmt::Display for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.effective;
        if self.forced {
            write!(f, "receive buffer {e} bytes (SO_RCVBUFFORCE)")
        } else if e >= self.asked.saturating_mul(2) {
            write!(f, "receive buffer {e} bytes (SO_RCVBUF)")
        } else {
            write!(
                f,
                "receive buffer {e} bytes (SO_RCVBUF, capped by net.core.rmem_max; SO_RCVBUFFORCE needs CAP_NET_ADMIN): raise net.core.rmem_max to at least {} or bursts may be dropped",
                self.asked
            )
        }
    }
}

pub struct Listener {
    pub fd: OwnedFd,
    pub addr: SocketAddr,
    pub buffer: Buffer,
    /// Last `SO_RXQ_OVFL` counter seen.
    pub drops: u32,
}

fn to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(a) = s.as_sockaddr_in() {
        return Some(SocketAddr::from((a.ip(), a.port())));
    }
    s.as_sockaddr_in6()
        .map(|a| SocketAddr::from((a.ip(), a.port())))
}

/// Binds a non-blocking UDP socket on `addr`.
pub fn listen(addr: SocketAddr, rcvbuf: usize) -> Result<Listener, nix::Error> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        SockProtocol::Udp,
    )?;
    if let IpAddr::V6(ip) = addr.ip() {
        // `[::]` takes IPv4 too, whatever net.ipv6.bindv6only says.
        setsockopt(&fd, sockopt::Ipv6V6Only, &!ip.is_unspecified())?;
    }
    setsockopt(&fd, sockopt::RxqOvfl, &1)?;
    let forced = setsockopt(&fd, sockopt::RcvBufForce, &rcvbuf).is_ok();
    if !forced {
        setsockopt(&fd, sockopt::RcvBuf, &rcvbuf)?;
    }
    let effective = getsockopt(&fd, sockopt::RcvBuf)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    let local: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    Ok(Listener {
        addr: to_std(&local).unwrap_or(addr),
        fd,
        buffer: Buffer {
            asked: rcvbuf,
            effective,
            forced,
        },
        drops: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:7000").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:7000").unwrap(),
            "[::1]:7000".parse().unwrap()
        );
        assert_eq!(parse_listen("::1").unwrap(), "[::1]:6666".parse().unwrap());
        assert_eq!(
            parse_listen("127.0.0.1").unwrap(),
            "127.0.0.1:6666".parse().unwrap()
        );
        assert_eq!(parse_listen("6000").unwrap(), "[::]:6000".parse().unwrap());
        assert!(parse_listen("host:1").is_err());
    }

    #[test]
    fn binds_loopback_with_a_buffer() {
        let l = listen("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        assert_ne!(l.addr.port(), 0);
        assert!(l.buffer.effective > 0);
    }
}
