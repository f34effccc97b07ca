//! The receive loop with nothing behind it: what the socket interface
//! alone costs a receiver on this machine, for the benchmark to print
//! beside udplogger's own figures (`examples/udpload.rs sink`).
//!
//! It listens as a worker does ([`super::socket::listen`]: the same
//! receive buffer), waits with `poll(2)`, and reads as a worker does:
//! `recvmmsg(2)` of `BATCH` datagrams of up to `SLOT` bytes with their
//! sources, up to `BATCHES_PER_ROUND` calls a round, the `COALESCE` pause
//! after a busy round. Each datagram's source is decoded and its bytes
//! and newlines counted; nothing else is done with it.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{BATCH, BATCHES_PER_ROUND, COALESCE, COALESCE_AT, SLOT};
use crate::sys::RecvBatch;

/// What the loop received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub datagrams: u64,
    pub bytes: u64,
    /// Newline bytes: the lines of plain console text.
    pub newlines: u64,
}

/// Receives on `listen` for `run` (the loop ends by itself), with a
/// receive buffer of `buffer` bytes.
pub fn receive(listen: SocketAddr, buffer: usize, run: Duration) -> Result<Received, String> {
    let l = super::socket::listen(listen, buffer, false)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut batch = RecvBatch::new(BATCH, SLOT);
    let mut got = Received::default();
    let end = Instant::now() + run;
    let mut busy = false;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if busy {
            std::thread::sleep(COALESCE);
        }
        let ms = i32::try_from(left.as_millis().min(100)).unwrap_or(100);
        let mut fds = [PollFd::new(l.fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
        ) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let mut round = 0;
        let mut backlog = true;
        for _ in 0..BATCHES_PER_ROUND {
            let n = match batch.recv(l.fd.as_fd()) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("receive on {listen}: {e}")),
            };
            round += n;
            for i in 0..n {
                let Some(d) = batch.get(i) else { break };
                if d.addr.is_some() {
                    got.datagrams += 1;
                    got.bytes += d.data.len() as u64;
                    got.newlines += memchr::memchr_iter(b'\n', d.data).count() as u64;
                }
            }
            if n < batch.capacity() {
                backlog = false;
                break;
            }
        }
        busy = round >= COALESCE_AT && !backlog;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_arrives_and_stops_by_itself() {
        let port = {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let at: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let rx = std::thread::spawn(move || receive(at, 1 << 20, Duration::from_millis(1500)));
        std::thread::sleep(Duration::from_millis(300));
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..100u8 {
            s.send_to(&[i; 100], at).unwrap();
        }
        s.send_to(b"two\nlines\n", at).unwrap();
        let got = rx.join().unwrap().unwrap();
        assert_eq!(
            got,
            Received {
                datagrams: 101,
                bytes: 10_010,
                // The byte 10 sent a hundred times, and two lines.
                newlines: 102,
            }
        );
    }
}
