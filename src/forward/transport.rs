//! Connections to one target: a connected UDP socket (one message per
//! datagram, RFC 5426), a TCP stream with octet-counted frames (RFC 6587
//! section 3.4.1: `LEN SP MSG`), or the same frames inside TLS (RFC 5425,
//! rustls with the ring provider: pure Rust and C that builds for musl, so
//! the binary stays static).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::target::{Target, TlsFiles, Transport};

/// How long one connection attempt (TCP connect, TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A write that makes no progress for this long means the receiver is
/// stuck: the connection is dropped and made again.
pub const WRITE_STALL: Duration = Duration::from_secs(30);

/// The TLS client configuration of a target, built once at start so a bad
/// file is reported before anything runs.
pub fn tls_config(f: &TlsFiles) -> Result<Arc<ClientConfig>, String> {
    let ca = f.ca_file.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&f.ca_file)
        .map_err(|e| format!("{ca}: cannot read the CA file: {e}"))?;
    for c in certs {
        let c = c.map_err(|e| format!("{ca}: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("{ca}: not a usable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{ca}: no certificate in the CA file"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let cfg = match (&f.cert_file, &f.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: cannot read the certificate: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no certificate in the file", cert.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: cannot read the private key: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: {e}", cert.display()))?
        }
        _ => builder.with_no_client_auth(),
    };
    ServerName::try_from(f.server_name.clone())
        .map_err(|e| format!("server name {:?}: {e}", f.server_name))?;
    Ok(Arc::new(cfg))
}

/// Appends one message as an octet-counted frame (RFC 6587 section
/// 3.4.1): its length in decimal, a space, the message.
pub fn octet_frame(out: &mut Vec<u8>, m: &[u8]) {
    out.extend_from_slice(m.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(m);
}

/// What [`Conn::state`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    /// Closed in order after reading everything that was written.
    Drained,
    /// Reset, failed, or closed with data unaccounted for.
    Broken,
}

/// An open connection.
pub enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

fn resolve(t: &Target) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no address", t.host),
        ));
    }
    Ok(addrs)
}

fn tcp(t: &Target) -> io::Result<TcpStream> {
    let mut last = None;
    for a in resolve(t)? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(WRITE_STALL))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no address")))
}

impl Conn {
    /// Connects (and for TLS completes the handshake, which checks the
    /// server's certificate and name).
    pub fn open(t: &Target, tls: Option<&Arc<ClientConfig>>) -> io::Result<Conn> {
        match t.transport {
            Transport::Udp => {
                let addr = resolve(t)?[0];
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(local)?;
                s.connect(addr)?;
                Ok(Conn::Udp(s))
            }
            Transport::Tcp => Ok(Conn::Tcp(tcp(t)?)),
            Transport::Tls => {
                let (Some(cfg), Some(files)) = (tls, &t.tls) else {
                    return Err(io::Error::other("TLS is not configured"));
                };
                let name = ServerName::try_from(files.server_name.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let conn = ClientConnection::new(Arc::clone(cfg), name)
                    .map_err(|e| io::Error::other(format!("TLS: {e}")))?;
                let sock = tcp(t)?;
                sock.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                let mut s = StreamOwned::new(conn, sock);
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                s.sock.set_read_timeout(None)?;
                Ok(Conn::Tls(Box::new(s)))
            }
        }
    }

    /// Sends messages: one datagram each over UDP, octet-counted frames
    /// written at once over TCP and TLS. An error means the connection is
    /// gone; it comes with how many messages were surely sent (over UDP,
    /// the datagrams before the failing one; over TCP and TLS, none: what
    /// was written of the batch is unknown).
    pub fn send(
        &mut self,
        batch: &[Arc<[u8]>],
        scratch: &mut Vec<u8>,
    ) -> Result<(), (usize, io::Error)> {
        let frame = |scratch: &mut Vec<u8>| {
            scratch.clear();
            for m in batch {
                octet_frame(scratch, m);
            }
        };
        match self {
            Conn::Udp(s) => {
                for (i, m) in batch.iter().enumerate() {
                    s.send(m).map_err(|e| (i, e))?;
                }
                Ok(())
            }
            Conn::Tcp(s) => {
                frame(scratch);
                s.write_all(scratch).map_err(|e| (0, e))
            }
            Conn::Tls(s) => {
                frame(scratch);
                s.write_all(scratch)
                    .and_then(|()| s.flush())
                    .map_err(|e| (0, e))
            }
        }
    }

    /// Whether the receiver has closed or reset the connection, looked at
    /// without blocking. Syslog receivers never send anything, so data
    /// (for TLS: a session ticket) is read and dropped.
    pub fn state(&mut self) -> State {
        let mut buf = [0u8; 512];
        let (sock, r) = match self {
            Conn::Udp(s) => {
                return match s.take_error() {
                    Ok(None) => State::Open,
                    _ => State::Broken,
                }
            }
            Conn::Tcp(s) => {
                if s.set_nonblocking(true).is_err() {
                    return State::Broken;
                }
                let r = loop {
                    match s.read(&mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(_) => continue,
                        Err(e) => break Err(e),
                    }
                };
                (&*s, r)
            }
            Conn::Tls(s) => {
                if s.sock.set_nonblocking(true).is_err() {
                    return State::Broken;
                }
                let r = loop {
                    match s.read(&mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(_) => continue,
                        // A TCP close without close_notify: as orderly as
                        // a FIN for what we need to know (we only write).
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Ok(()),
                        Err(e) => break Err(e),
                    }
                };
                (&s.sock, r)
            }
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if sock.set_nonblocking(false).is_err() {
                    State::Broken
                } else {
                    State::Open
                }
            }
            // An orderly close (FIN, or TLS close_notify then FIN). Linux
            // sends a reset instead when the closing side leaves data
            // unread, and data that arrives after the close is answered
            // with a reset too: so with nothing unacknowledged on our side,
            // the receiver read everything we wrote.
            Ok(()) => match crate::sys::tcp_unacked(sock.as_fd()) {
                Ok(0) => State::Drained,
                _ => State::Broken,
            },
            Err(_) => State::Broken,
        }
    }

    /// Ends a TLS session politely; other transports just close.
    pub fn close(self) {
        if let Conn::Tls(mut s) = self {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
    }
}
