//! Listening sockets (socket2): bind, share an address between workers
//! (`SO_REUSEPORT`), ask for a large receive buffer, turn on the kernel's
//! drop counter.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

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
    /// Last value of the socket's drop counter seen.
    pub drops: u32,
    /// The counter is read once per batch (`SO_MEMINFO`); `false` on
    /// kernels before 4.6, where it comes with every datagram
    /// (`SO_RXQ_OVFL`, a control message per datagram: more work).
    pub meminfo: bool,
}

impl Listener {
    /// Reads the drop counter with `SO_RXQ_OVFL` from now on, as on a
    /// kernel without `SO_MEMINFO` (for tests of that path).
    #[cfg(test)]
    pub fn count_drops_per_datagram(&mut self) -> Result<(), nix::Error> {
        setsockopt(&self.fd, sockopt::RxqOvfl, &1)?;
        self.meminfo = false;
        Ok(())
    }

    /// The drop counter now, when read per batch.
    pub fn batch_drops(&self) -> Option<u32> {
        use std::os::fd::AsFd;
        if !self.meminfo {
            return None;
        }
        crate::sys::socket_drops(self.fd.as_fd()).ok()
    }
}

/// Binds a non-blocking UDP socket on `addr`. With `reuse_port`, several
/// sockets (one per worker) share the address and the kernel spreads
/// senders over them by a hash of the sender's address and port, so one
/// sender always reaches the same socket.
pub fn listen(addr: SocketAddr, rcvbuf: usize, reuse_port: bool) -> Result<Listener, nix::Error> {
    let errno = |e: std::io::Error| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(
        domain,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )
    .map_err(errno)?;
    if let IpAddr::V6(ip) = addr.ip() {
        // `[::]` takes IPv4 too, whatever net.ipv6.bindv6only says.
        sock.set_only_v6(!ip.is_unspecified()).map_err(errno)?;
    }
    if reuse_port {
        sock.set_reuse_port(true).map_err(errno)?;
    }
    let fd = OwnedFd::from(sock);
    let meminfo = {
        use std::os::fd::AsFd;
        crate::sys::socket_drops(fd.as_fd()).is_ok()
    };
    if !meminfo {
        setsockopt(&fd, sockopt::RxqOvfl, &1)?;
    }
    let forced = setsockopt(&fd, sockopt::RcvBufForce, &rcvbuf).is_ok();
    if !forced {
        setsockopt(&fd, sockopt::RcvBuf, &rcvbuf)?;
    }
    let effective = getsockopt(&fd, sockopt::RcvBuf)?;
    let sock = Socket::from(fd);
    sock.bind(&addr.into()).map_err(errno)?;
    let local = sock.local_addr().ok().and_then(|a| a.as_socket());
    Ok(Listener {
        addr: local.unwrap_or(addr),
        fd: OwnedFd::from(sock),
        buffer: Buffer {
            asked: rcvbuf,
            effective,
            forced,
        },
        drops: 0,
        meminfo,
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
        let l = listen("127.0.0.1:0".parse().unwrap(), 1 << 20, false).unwrap();
        assert_ne!(l.addr.port(), 0);
        assert!(l.buffer.effective > 0);
        // Without SO_REUSEPORT the address is taken; with it on both
        // sockets, a second worker's socket shares it.
        assert!(listen(l.addr, 1 << 20, false).is_err());
        let a = listen("127.0.0.1:0".parse().unwrap(), 1 << 20, true).unwrap();
        let b = listen(a.addr, 1 << 20, true).unwrap();
        assert_eq!(a.addr, b.addr);
    }

    /// Both ways of reading the drop counter see the datagrams a full
    /// buffer refused: per batch (`SO_MEMINFO`) and per datagram
    /// (`SO_RXQ_OVFL`, kernels before 4.6).
    #[test]
    fn drops_are_counted_per_batch_and_per_datagram() {
        use std::os::fd::AsFd;
        for per_datagram in [false, true] {
            let mut l = listen("127.0.0.1:0".parse().unwrap(), 4096, false).unwrap();
            if per_datagram {
                l.count_drops_per_datagram().unwrap();
            } else {
                assert!(l.meminfo, "this kernel has SO_MEMINFO");
            }
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..200 {
                s.send_to(&[b'x'; 512], l.addr).unwrap();
            }
            // One more once there is room: it carries the counter.
            let mut batch = crate::sys::RecvBatch::new(64, 2048);
            let mut got = 0;
            while let Ok(n) = batch.recv(l.fd.as_fd()) {
                got += n;
                if n == 0 {
                    break;
                }
            }
            s.send_to(b"after", l.addr).unwrap();
            let n = batch.recv(l.fd.as_fd()).unwrap();
            assert_eq!(n, 1);
            let counted = if per_datagram {
                batch.get(0).unwrap().drops
            } else {
                l.batch_drops()
            };
            let dropped = u64::from(counted.unwrap());
            assert!(dropped > 0);
            assert_eq!(got as u64 + dropped, 200, "per datagram: {per_datagram}");
        }
    }
}
