//! The systemd journal's native protocol (systemd's "Native Journal
//! Protocol" document): one datagram per entry on the socket under
//! run/systemd/journal/, each field `NAME=value\n`, or `NAME\n`, a
//! little-endian 64-bit length and the value when the value holds a
//! newline. An entry too large for a datagram is written to a sealed
//! memfd whose descriptor is passed with SCM_RIGHTS, as journald expects.
//!
//! `watchdog run` sends each event and action as one entry: `MESSAGE`
//! (the one-line summary), `PRIORITY`, `SYSLOG_IDENTIFIER=watchdog`, a
//! `MESSAGE_ID` fixed per event kind ([`MESSAGE_IDS`], explained in
//! packaging/watchdog.catalog for `journalctl -x`), and every field of the
//! event's JSON as `WATCHDOG_<FIELD>` (the incident id as
//! `WATCHDOG_INCIDENT` when the event has one).

use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// One `MESSAGE_ID` per event kind: 128-bit ids, fixed forever (users
/// filter on them: `journalctl MESSAGE_ID=67778d9a...`). A new kind gets a
/// new id here and an entry in packaging/watchdog.catalog; a test holds
/// the list to [`crate::events::SCHEMA`] and to the catalog.
pub const MESSAGE_IDS: &[(&str, &str)] = &[
    ("hung_task", "67778d9a27f04f93914ef2f5371a4709"),
    ("oom_kill", "60fcfb4c2c6b4b94bc567282a59ddd18"),
    ("signal_death", "53a08d3722494d7da59c5cda75ada85a"),
    ("soft_lockup", "e644fafae6344358bcc464decde8fec3"),
    ("rcu_stall", "0099d30982624964920a4f5cc884dc3b"),
    ("oops", "494b8b2c7f2d416086d2b596686e2e2c"),
    ("panic", "b3eda38ce1514be2a1e3ecc688d7e05c"),
    ("sysrq", "84ce4e84169d47c5930452d31609fcdf"),
    ("dentry_pressure", "4df728dd07324fd0bed8c0ac1f578f28"),
    ("lost", "da5d1c2479e6451685550b511dee24a1"),
    ("action", "7c7f464a46514a6c95ae220f4a4a2bff"),
    ("warning", "1027a7b649ae46158309e245c18dd71f"),
    ("bug", "df0ba579ab8b46948ad587674180fb9e"),
    ("hard_lockup", "f16e3aff30b341ae8f9787def589d125"),
    ("mce", "af729e91e3ef41b6a9565f7df0844a42"),
    ("fs_error", "eb6aed615023491fbfb452e75b6d5e18"),
    ("io_error", "1dc4e98e64a24c749a3acc14a5232f70"),
    ("netdev_timeout", "6f99b02f53d24c678c286c72f178aca2"),
    ("alloc_failure", "0fcf9efa74f7478ca6e7ee164ff8d05c"),
    ("oom_no_killable", "eb1c72b823ef4caf89a7a9b7974f0209"),
    ("pressure", "8565c88895e44194841d51245af078d5"),
    ("pattern", "1f69805f19cc4c6c8fbc7ec2dafed711"),
    ("previous_boot", "734c1a08b48f4429ba4103a8002ff2c3"),
];

/// The `MESSAGE_ID` of an event kind.
pub fn message_id(kind: &str) -> Option<&'static str> {
    MESSAGE_IDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, id)| *id)
}

/// A journal field name from a JSON key: upper case, `[A-Z0-9_]` only,
/// at most 64 characters (journald drops entries with other names).
pub fn field_name(prefix: &str, key: &str) -> String {
    let mut n: String = prefix.to_string();
    n.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    n.truncate(64);
    n
}

/// The members of a JSON object in document order (serde_json's map
/// sorts them; the event's own order, `kind` first, reads better).
/// Empty when `json` is not an object.
pub fn json_members(json: &str) -> Vec<(String, serde_json::Value)> {
    struct Ordered(Vec<(String, serde_json::Value)>);
    impl<'de> serde::Deserialize<'de> for Ordered {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Ordered, A::Error> {
                    let mut v = Vec::new();
                    while let Some(kv) = map.next_entry()? {
                        v.push(kv);
                    }
                    Ok(Ordered(v))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Ordered>(json).map_or_else(|_| Vec::new(), |o| o.0)
}

/// The fields of one entry for an event: its summary, priority, id and
/// every non-null member of its JSON as `WATCHDOG_<KEY>` (strings as they
/// are, other values as JSON text).
pub fn event_fields(prio: u8, text: &str, json: &str) -> Vec<(String, Vec<u8>)> {
    let mut f = base_fields(prio, text);
    let obj = json_members(json);
    if let Some(id) = obj
        .iter()
        .find(|(k, _)| k == "kind")
        .and_then(|(_, v)| v.as_str())
        .and_then(message_id)
    {
        f.push(("MESSAGE_ID".into(), id.as_bytes().to_vec()));
    }
    for (k, v) in &obj {
        let value = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        f.push((field_name("WATCHDOG_", k), value));
    }
    f
}

/// The fields of a message that is not an event.
pub fn base_fields(prio: u8, text: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("MESSAGE".into(), text.as_bytes().to_vec()),
        ("PRIORITY".into(), prio.min(7).to_string().into_bytes()),
        ("SYSLOG_IDENTIFIER".into(), b"watchdog".to_vec()),
    ]
}

/// Serializes fields in the native protocol.
pub fn encode(fields: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// A connection to the journal's socket.
pub struct Journal {
    sock: UnixDatagram,
    pub path: PathBuf,
}

impl Journal {
    pub fn connect(path: &Path) -> io::Result<Journal> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(path)?;
        Ok(Journal {
            sock,
            path: path.to_path_buf(),
        })
    }

    /// Sends one entry: a datagram, or a memfd when it is too large.
    pub fn send(&self, fields: &[(String, Vec<u8>)]) -> io::Result<()> {
        let buf = encode(fields);
        match self.sock.send(&buf) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE) | Some(libc::ENOBUFS)) => {
                self.send_memfd(&buf)
            }
            Err(e) => Err(e),
        }
    }

    /// The large-entry path: the entry in a sealed memfd, its descriptor
    /// in an otherwise empty datagram (journald checks the seals, so the
    /// file cannot change under it).
    fn send_memfd(&self, buf: &[u8]) -> io::Result<()> {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
        let fd = memfd_create(
            c"watchdog-journal",
            MemFdCreateFlag::MFD_ALLOW_SEALING | MemFdCreateFlag::MFD_CLOEXEC,
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(buf)?;
        fcntl(
            file.as_raw_fd(),
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_WRITE
                    | SealFlag::F_SEAL_SEAL,
            ),
        )?;
        let fds = [file.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov: [IoSlice<'_>; 0] = [];
        sendmsg::<UnixAddr>(self.sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_message_id() {
        for k in crate::events::SCHEMA {
            assert!(message_id(k.name).is_some(), "no MESSAGE_ID for {}", k.name);
        }
        let mut ids: Vec<&str> = MESSAGE_IDS.iter().map(|(_, id)| *id).collect();
        assert!(ids
            .iter()
            .all(|i| i.len() == 32 && i.bytes().all(|b| b.is_ascii_hexdigit())));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), MESSAGE_IDS.len());
    }

    #[test]
    fn the_catalog_explains_every_message_id() {
        let cat = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/watchdog.catalog"),
        )
        .unwrap();
        for (kind, id) in MESSAGE_IDS {
            assert!(cat.contains(&format!("-- {id}\n")), "{kind} ({id}) missing");
        }
    }

    #[test]
    fn fields_and_encoding() {
        let f = event_fields(
            4,
            "hung task: dd (pid 7)",
            r#"{"kind":"hung_task","comm":"dd","pid":7,"blocker_comm":null,"frames":["a","b"],"incident":"x1"}"#,
        );
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "MESSAGE",
                "PRIORITY",
                "SYSLOG_IDENTIFIER",
                "MESSAGE_ID",
                "WATCHDOG_KIND",
                "WATCHDOG_COMM",
                "WATCHDOG_PID",
                "WATCHDOG_FRAMES",
                "WATCHDOG_INCIDENT"
            ]
        );
        assert_eq!(f[7].1, br#"["a","b"]"#);
        let e = encode(&[
            ("A".into(), b"x".to_vec()),
            ("B".into(), b"two\nlines".to_vec()),
        ]);
        let mut want = b"A=x\nB\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(e, want);
        assert_eq!(
            field_name("WATCHDOG_", "kernel-time.x"),
            "WATCHDOG_KERNEL_TIME_X"
        );
    }

    #[test]
    fn a_large_entry_goes_through_a_sealed_memfd() {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        let j = Journal::connect(&path).unwrap();
        let big = vec![b'x'; 4 << 20];
        j.send(&[("MESSAGE".into(), big.clone())]).unwrap();
        let mut buf = [0u8; 16];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<UnixAddr>(
            server.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        assert_eq!(msg.bytes, 0);
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(f) => Some(f[0]),
                _ => None,
            })
            .unwrap();
        // Our end wrote it, so the shared offset is at the end.
        nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekSet).unwrap();
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = nix::unistd::read(fd, &mut chunk).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        nix::unistd::close(fd).unwrap();
        assert_eq!(got.len(), "MESSAGE=".len() + big.len() + 1);
        assert!(got.starts_with(b"MESSAGE=xxx"));
    }
}
