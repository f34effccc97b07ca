#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets from the test fixtures.

Usage: fuzz/seed-corpus.py [CORPUS_DIR]   (default: fuzz/corpus)

Seeds are small (a few KiB each) slices of tests/fixtures, encoded the way
each target reads its input (see the target's comments), so libFuzzer
starts from real kernel text and real netconsole traffic instead of
nothing. They are generated, never committed: regenerate at will. Files
are named `seed-*`; whatever else is in a corpus directory (what the
fuzzer found interesting) is left alone.
"""

import glob
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
CHUNK = 4000  # bytes per seed: libFuzzer's default max_len is 4096
PER_FILE = 6  # seeds per fixture file at most


def read(path):
    with open(path, "rb") as f:
        return f.read()


def body_lines(path):
    """Lines of a fixture without its `#` header comment."""
    return [l for l in read(path).split(b"\n") if not l.startswith(b"#")]


def chunks(lines, size=CHUNK, limit=PER_FILE):
    """Runs of whole lines, each under `size` bytes."""
    out, cur = [], b""
    for l in lines:
        l = l[:size - 1]
        if len(cur) + len(l) + 1 > size:
            out.append(cur)
            cur = b""
            if len(out) == limit:
                return out
        cur += l + b"\n"
    if cur:
        out.append(cur)
    return out[:limit]


class Corpus:
    def __init__(self, base):
        self.base = base
        self.count = {}

    def add(self, target, data):
        d = os.path.join(self.base, target)
        os.makedirs(d, exist_ok=True)
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.count[target] = self.count.get(target, 0) + 1


def datagrams(path):
    """Payloads of a netconsole recording (.jsonl, one datagram a line)."""
    out = []
    for line in read(path).splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        if "data" in d:
            out.append(d["data"].encode())
        elif "b64" in d:
            import base64
            out.append(base64.b64decode(d["b64"]))
    return out


def receiver_input(flags, max_byte, grams):
    """udplogger_receiver: flags, max_line - 64, then per datagram a
    control byte (sender in the low two bits; 0b1100 = flush), a
    little-endian u16 length and the payload."""
    out = bytes([flags, max_byte])
    for i, (who, g) in enumerate(grams):
        if who is None:
            out += bytes([0b1100])
        else:
            out += bytes([who & 3]) + struct.pack("<H", len(g)) + g
    return out


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")
    c = Corpus(base)
    logs = sorted(glob.glob(os.path.join(FIX, "kernel-logs", "*.log")))
    real = sorted(glob.glob(os.path.join(FIX, "kernel-logs", "real", "*.*")))
    kmsg = [p for p in real if p.endswith(".kmsg")]
    net = os.path.join(FIX, "netconsole")
    jsonl = sorted(glob.glob(os.path.join(net, "*.jsonl")))
    serial = sorted(glob.glob(os.path.join(net, "*-serial-udp.bin")))

    # parse_stream: a mode byte, then log text.
    for i, p in enumerate(logs + [p for p in real if not p.endswith("README.md")]):
        for ch in chunks(body_lines(p)):
            c.add("parse_stream", bytes([i % 3]) + ch)

    # kmsg_reader: a start byte and a saved sequence number, then reads
    # separated by NUL (one record with its dictionary per read; `E` after
    # a NUL is an overrun).
    for i, p in enumerate(kmsg):
        lines = body_lines(p)
        records, cur = [], b""
        for l in lines:
            if l.startswith(b" ") and cur:
                cur += b"\n" + l
            else:
                if cur:
                    records.append(cur + b"\n")
                cur = l
        if cur:
            records.append(cur + b"\n")
        for j, ch in enumerate(chunks(records, limit=3)):
            recs = [r for r in ch.split(b"\n\n") if r]
            joined = b"\0".join(r if r.endswith(b"\n") else r + b"\n" for r in recs)
            if j == 1:
                joined = joined.replace(b"\0", b"\0E", 1)
            head = bytes([(i + j) % 3]) + struct.pack("<Q", 40 * j)
            c.add("kmsg_reader", head + joined)

    # printk_header: single records, from /dev/kmsg and extended netconsole.
    for p in kmsg:
        for l in body_lines(p)[:40:4]:
            if l:
                c.add("printk_header", l)
    for p in jsonl:
        for g in datagrams(p)[::97][:20]:
            c.add("printk_header", g)
    for extra in [b"6.4.0,6,444,501151268,-;netconsole: network logging started",
                  b"6,416,1758426,-,ncfrag=16/31; the 2nd chunk.",
                  b"4,1043,125357424,-,caller=T140;INFO: task kworker/u4:2:87 blocked\n SUBSYSTEM=block\n"]:
        c.add("printk_header", extra)

    # udplogger_receiver: the recorded extended traffic as it arrived,
    # with a sender that interleaves, fragments, a gap and a restart; and
    # the serial-over-UDP stream as plain text.
    for p in jsonl:
        grams = datagrams(p)
        for k in range(3):
            part = grams[k * 400:k * 400 + 30]
            if part:
                c.add("udplogger_receiver", receiver_input(1, 100, [(0, g) for g in part]))
        frag = b"The quick brown fox jumps over the lazy dog. " * 6
        mixed = [(0, grams[0]), (1, b"4,7,1000,-,ncfrag=0/%d;" % len(frag) + frag[:120]),
                 (2, b"plain console text without its newline"),
                 (1, b"4,7,1000,-,ncfrag=120/%d;" % len(frag) + frag[120:]),
                 (0, grams[5] if len(grams) > 5 else grams[0]),
                 (2, b" and the end of it\r\nnext"), (3, b"6,1,2,c;Booting"),
                 (3, b"6,2,3,+; the kernel"), (None, b""), (3, b"6,1,1,-;restarted\n SUBSYSTEM=net")]
        c.add("udplogger_receiver", receiver_input(0, 0, mixed))
    for p in serial:
        data = read(p)[:CHUNK]
        grams = [(i % 2, data[o:o + 37]) for i, o in enumerate(range(0, len(data), 37))]
        c.add("udplogger_receiver", receiver_input(2, 16, grams))
        # udplogger_assembler: a limit byte, then length-prefixed datagrams.
        for lim in (79, 255):
            out = bytes([lim])
            for o in range(0, len(data), 61):
                piece = data[o:o + 61]
                out += bytes([len(piece)]) + piece
            c.add("udplogger_assembler", out)

    # config_yaml: the default configuration, and each top-level section.
    conf = read(os.path.join(ROOT, "config", "watchdog.yaml"))
    c.add("config_yaml", conf)
    sections, cur = [], b""
    for l in conf.split(b"\n"):
        if l and not l.startswith((b" ", b"#")) and cur.strip():
            sections.append(cur)
            cur = b""
        cur += l + b"\n"
    sections.append(cur)
    for s in sections:
        c.add("config_yaml", s)

    # kernel_tables: the /proc and /sys files of the fixture trees.
    seen = set()
    for p in sorted(glob.glob(os.path.join(FIX, "*", "proc", "**"), recursive=True)
                    + glob.glob(os.path.join(FIX, "*", "sys", "**"), recursive=True)):
        if os.path.isfile(p) and os.path.getsize(p) <= CHUNK:
            data = read(p)
            if data not in seen:
                seen.add(data)
                c.add("kernel_tables", data)
    for extra in [b"crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M", b"512M@16M", b"0x10000000",
                  b"2.6.32-358.23.2.el6.x86_64", b"5.14.0-427.13.1.el9_4.x86_64",
                  b"CONFIG_LOG_BUF_SHIFT\nCONFIG_LOG_BUF_SHIFT=20\n"]:
        c.add("kernel_tables", extra)

    # marker_roundtrip: mode 1 reads marker lines from logs; mode 0 builds
    # markers from bytes.
    for p in logs:
        if "udplogger" in os.path.basename(p):
            for ch in chunks(body_lines(p), limit=2):
                c.add("marker_roundtrip", b"\x01" + ch)
    for k in range(7):
        c.add("marker_roundtrip", bytes([0, 14]) + b"127.0.0.2:6665" + bytes([k, 0, 42, 1, 255, 3, 9]) + b"2026-11-22T04:10:32Z")

    # pstore_records: the pstore files of the last-boot fixtures, each as a
    # kind byte (by its name: see the target), a little-endian u16 length
    # and its contents; and kernel-log slices as ramoops dumps and console
    # records.
    def pstore_kind(name):
        if name.endswith(".enc.z"):
            return 3
        if name == "dmesg.txt":
            return 4
        for prefix, k in (("dmesg-ramoops", 0), ("dmesg-efi", 1), ("console-", 2), ("dmesg-erst", 5)):
            if name.startswith(prefix):
                return k
        return None

    lastboot = os.path.join(FIX, "lastboot")
    for case in sorted(glob.glob(os.path.join(lastboot, "*"))):
        out = b""
        for path in sorted(glob.glob(os.path.join(case, "**"), recursive=True)):
            k = pstore_kind(os.path.basename(path))
            if k is None or not os.path.isfile(path) or "pstore" not in path:
                continue
            data = read(path)[:CHUNK // 2]
            out += bytes([k]) + struct.pack("<H", len(data)) + data
        if out:
            c.add("pstore_records", out[:CHUNK])
    for i, p in enumerate(logs[:12]):
        for ch in chunks(body_lines(p), size=1800, limit=1):
            header = b"Panic#1 Part1\n" if i % 2 == 0 else b"Oops#2 Part1\n"
            out = bytes([0]) + struct.pack("<H", len(header + ch)) + header + ch
            out += bytes([2]) + struct.pack("<H", len(ch)) + ch
            c.add("pstore_records", out)

    # rfc5424_roundtrip: a mode byte, then fields each as a length byte, a
    # byte whose low bit adds 45, and the bytes. Mode 0: a host name, then
    # log text whose events are sent; 1: a udplogger line; 2: a marker;
    # 3: raw header fields and parameters.
    def field(b):
        b = b[:255]
        return bytes([len(b), 0]) + b
    for i, p in enumerate(logs[:20]):
        for ch in chunks(body_lines(p), size=3000, limit=1):
            host = [b"db1.example.com", b"bad host\x00name", "h\u00f6st".encode()][i % 3]
            c.add("rfc5424_roundtrip", bytes([0]) + field(host) + ch)
    for p in jsonl[:2]:
        for g in datagrams(p)[:200:40]:
            body = g.split(b";", 1)[-1]
            line = bytes([1]) + field(b"db1") + field(b"127.0.0.2:6665") + field(body)
            line += bytes([1, 6, 0, 42, 0, 99]) + bytes([1]) + field(b"SUBSYSTEM=net")
            c.add("rfc5424_roundtrip", line)
    c.add("rfc5424_roundtrip", bytes([2]) + field(b"[::1]:6665") + bytes([1]) + field(b"db1") + bytes([0, 0, 3, 0, 9, 1]) + field(b"why"))
    c.add("rfc5424_roundtrip", bytes([3, 3, 4, 1]) + field(b"2026-11-29T11:47:15.123456789+09:00") + bytes([1]) + field(b"host name") + bytes([1]) + field(b"app") + bytes([0, 1]) + field(b"msg id") + bytes([1]) + field(b"x@32473") + bytes([1]) + field(b"k") + bytes([0]) + field(b'a"b\\c]d\ne') + bytes([0]) + "grüße".encode())

    # site_patterns: a count byte, per pattern its min and max level bytes
    # (0..=15 a level, above 31 none), name and regex each ending in NUL;
    # then lines: a level byte and the text up to a NUL. The patterns of
    # the documentation and tests, against kernel-log lines.
    pats = [(b"mpath-fail", rb"multipath: (?:\d+:\d+: )?Failing path (?P<path>\S+)\."),
            (b"link-down", rb"^(?P<driver>\S+) \S+ (?P<iface>\S+): NIC Link is Down"),
            (b"oom", rb"Out of memory: Killed process (?P<victim>\d+) \((?P<cmd>[^)]*)\)"),
            (b"bad", rb"(?P<x"), (b"kind", rb"(?P<kind>x)")]
    lines = []
    for p in logs[:20]:
        lines += [l for l in body_lines(p) if l][:15]
    for i in range(0, len(pats), 2):
        group = pats[i:i + 2]
        out = bytes([len(group)])
        for name, rx in group:
            out += bytes([4 if name == b"mpath-fail" else 255, 255]) + name + b"\0" + rx + b"\0"
        for j, l in enumerate(lines[i * 20:i * 20 + 60]):
            out += bytes([j % 9 if j % 3 else 200]) + l.replace(b"\0", b"") + b"\0"
        out += bytes([3]) + b"device-mapper: multipath: 253:3: Failing path 8:32.\0"
        out += bytes([255]) + b"e1000e 0000:00:19.0 eth0: NIC Link is Down\0"
        c.add("site_patterns", out[:CHUNK])

    for t in sorted(c.count):
        print(f"{t}: {c.count[t]} seeds")


if __name__ == "__main__":
    main()
