#!/usr/bin/env python3
"""Real-kernel test suite: boot Debian's kernels under QEMU and assert on
what `watchdog` (and, for recordings, the kernel) says.

    tests/vm/vm.py run [--kernel 6.1] [--only NAME,...] [-j N] [--record]

Steps, each with a deadline:
  prepare  per kernel in tests/vm/cache/kernels/ (see fetch.sh): a bootable
           image (uncompressed vmlinux when it can be extracted: QEMU boots
           it through the PVH entry, seconds faster under TCG), the module
           subset (dependency closure, .ko.xz decompressed, depmod), and an
           initramfs of busybox-static + the static watchdog + wdhelper.
  boot     one QEMU per boot (-accel tcg, -no-reboot, hard timeout: the
           process group is killed, the boot fails, nothing hangs).
  assert   results come from the guest's second serial port (a tar of
           /out), never from the console, where kernel messages interleave.

Python 3 standard library only. Nothing is sent anywhere but 127.0.0.1.
"""

import argparse
import base64
import concurrent.futures
import glob
import json
import lzma
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(HERE, "cache")
FIXTURES = os.path.join(REPO, "tests", "fixtures")
MUSL = "x86_64-unknown-linux-musl"
WD_BIN = []  # the static watchdog under test, set by main()
SYSTEMD_IMAGE = []  # the systemd boot's root file system image, set by main()
RECORDING = []  # non-empty with --record: guests do not start watchdog run

# Modules the scenarios load; their dependencies come from modules.dep.
ROOT_MODULES = ["ext4", "crc32c_generic", "brd", "configfs", "netconsole", "e1000", "ramoops"]
# The systemd boot's initramfs only mounts the root file system image.
SYSTEMD_INITRD_MODULES = ["virtio_pci", "virtio_blk", "ext4", "crc32c_generic"]

MARKER = re.compile(rb"@@WD-(INIT|BEGIN|END|DONE)([^@]*)@@")


def log(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    """Every host step has a deadline too (subprocess.TimeoutExpired)."""
    kw.setdefault("check", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, **kw)


# --- preparing kernels and the initramfs ---------------------------------


class Kernel:
    def __init__(self, kdir):
        self.dir = kdir
        self.release = os.path.basename(kdir)
        self.root = os.path.join(kdir, "root")
        meta = dict(
            line.split(": ", 1)
            for line in open(os.path.join(kdir, "package")).read().splitlines()
            if ": " in line
        )
        self.package = meta.get("Package", "linux-image-" + self.release)
        self.version = meta.get("Version", "?")
        m = re.match(r"(\d+\.\d+)", self.release)
        self.short = m.group(1) if m else self.release
        self.vmlinuz = os.path.join(self.root, "boot", "vmlinuz-" + self.release)
        self.build = os.path.join(CACHE, "build", self.release)
        self.image = None  # what QEMU boots
        self.initramfs = None
        self.initramfs_kdump = None
        self.initramfs_systemd = None
        self.payload_systemd = None

    def __repr__(self):
        return "Kernel(%s)" % self.release


def kernels():
    """The kernels fetch.sh selected last (cache/selected), else all cached."""
    sel = os.path.join(CACHE, "selected")
    if os.path.exists(sel):
        dirs = [os.path.join(CACHE, "kernels", r) for r in open(sel).read().split()]
    else:
        dirs = sorted(glob.glob(os.path.join(CACHE, "kernels", "*")))
    return [Kernel(d) for d in dirs if os.path.exists(os.path.join(d, ".extracted"))]


def extract_vmlinux(k):
    """The uncompressed ELF kernel from the bzImage, or None.

    6.1 is XZ (Python's lzma), 6.12 is zstd (the `zstd` tool, if present).
    """
    out = os.path.join(k.dir, "vmlinux")
    if os.path.exists(out):
        return out
    data = open(k.vmlinuz, "rb").read()
    raw = None
    xz = data.find(b"\xfd7zXZ\x00")
    zs = data.find(b"\x28\xb5\x2f\xfd")
    if xz >= 0:
        try:
            raw = lzma.LZMADecompressor().decompress(data[xz:])
        except lzma.LZMAError:
            raw = None
    elif zs >= 0 and shutil.which("zstd"):
        # Trailing bytes after the frame make zstd complain; the frame
        # itself is complete, so keep stdout whatever the exit status.
        p = subprocess.run(
            ["zstd", "-d", "-c", "-q"],
            input=data[zs:],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        raw = p.stdout
    if not raw or not raw.startswith(b"\x7fELF"):
        return None
    with open(out + ".tmp", "wb") as f:
        f.write(raw)
    os.rename(out + ".tmp", out)
    return out


def module_closure(k, roots=None):
    """Relative paths (as in modules.dep) of ROOT_MODULES (or `roots`) and
    their deps."""
    moddir = os.path.join(k.root, "lib", "modules", k.release)
    dep = os.path.join(moddir, "modules.dep")
    if not os.path.exists(dep):
        run(["depmod", "-b", k.root, k.release])
    deps = {}
    by_name = {}
    for line in open(dep):
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        name = re.sub(r"\.ko(\.[a-z]+)?$", "", os.path.basename(path)).replace("-", "_")
        by_name[name] = path
    want, todo = set(), []
    for name in roots or ROOT_MODULES:
        if name in by_name:
            todo.append(by_name[name])
        else:
            log("  note: %s: no module %s (built in?)" % (k.release, name))
    while todo:
        p = todo.pop()
        if p not in want:
            want.add(p)
            todo.extend(deps.get(p, []))
    return sorted(want)


def host_binaries():
    """The static watchdog (built now) and wdhelper (built when stale)."""
    run(["cargo", "build", "--quiet", "--release", "--target", MUSL], cwd=REPO, timeout=1800)
    wd = os.path.join(REPO, "target", MUSL, "release", "watchdog")
    src = os.path.join(HERE, "guest", "wdhelper.c")
    helper = os.path.join(CACHE, "build", "wdhelper")
    os.makedirs(os.path.dirname(helper), exist_ok=True)
    if not os.path.exists(helper) or os.path.getmtime(helper) < os.path.getmtime(src):
        run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", helper, src])
    return wd, helper


def ext4_image():
    img = os.path.join(CACHE, "build", "ext4.img")
    if not os.path.exists(img):
        with open(img + ".tmp", "wb") as f:
            f.truncate(8 << 20)
        run(["mkfs.ext4", "-q", "-F", "-L", "wdtest", img + ".tmp"])
        os.rename(img + ".tmp", img)
    return img


def cpio(staging, out):
    files = run(
        "find . | LC_ALL=C sort", shell=True, cwd=staging, stdout=subprocess.PIPE
    ).stdout
    with open(out + ".tmp", "wb") as f:
        run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=staging, input=files, stdout=f)
    os.rename(out + ".tmp", out)


def copy_modules(k, staging, roots=None):
    """The module closure into staging/lib/modules, decompressed, depmod'ed."""
    src_mods = os.path.join(k.root, "lib", "modules", k.release)
    dst_mods = os.path.join(staging, "lib", "modules", k.release)
    os.makedirs(dst_mods, exist_ok=True)
    for f in ["modules.builtin", "modules.builtin.modinfo", "modules.order"]:
        if os.path.exists(os.path.join(src_mods, f)):
            shutil.copy(os.path.join(src_mods, f), dst_mods)
    for rel in module_closure(k, roots):
        dst = os.path.join(dst_mods, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(os.path.join(src_mods, rel), dst)
        if dst.endswith(".xz"):
            run(["xz", "-d", "-f", dst])
    run(["depmod", "-b", staging, k.release])


def prepare(k, wd, helper, want_vmlinux=True):
    os.makedirs(k.build, exist_ok=True)
    k.image = (extract_vmlinux(k) if want_vmlinux else None) or k.vmlinuz
    staging = os.path.join(k.build, "root")
    shutil.rmtree(staging, ignore_errors=True)
    for d in ["bin", "wd", "boot", "lib/modules/" + k.release]:
        os.makedirs(os.path.join(staging, d))
    shutil.copy(shutil.which("busybox") or "/bin/busybox", os.path.join(staging, "bin", "busybox"))
    # WD_VM_GUEST_BIN: boot another static build (e.g. a branch's).
    shutil.copy(os.environ.get("WD_VM_GUEST_BIN", wd), os.path.join(staging, "wd", "watchdog"))
    shutil.copy(helper, os.path.join(staging, "wd", "wdhelper"))
    shutil.copy(os.path.join(HERE, "guest", "init"), os.path.join(staging, "init"))
    os.chmod(os.path.join(staging, "init"), 0o755)
    shutil.copy(ext4_image(), os.path.join(staging, "ext4.img"))
    copy_modules(k, staging)
    k.initramfs = os.path.join(k.build, "initramfs.cpio")
    cpio(staging, k.initramfs)
    # The kdump boot also carries the kernel to load as crash kernel: a
    # second archive appended (the kernel unpacks concatenated archives).
    extra = os.path.join(k.build, "kdump-root")
    shutil.rmtree(extra, ignore_errors=True)
    os.makedirs(os.path.join(extra, "boot"))
    shutil.copy(k.vmlinuz, os.path.join(extra, "boot", "vmlinuz"))
    cpio(extra, os.path.join(k.build, "kdump-extra.cpio"))
    k.initramfs_kdump = os.path.join(k.build, "initramfs-kdump.cpio")
    with open(k.initramfs_kdump, "wb") as out:
        for part in [k.initramfs, os.path.join(k.build, "kdump-extra.cpio")]:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)


def systemd_common():
    """What every systemd boot shares: the cached Debian root file system
    image (tests/vm/rootfs.sh builds it when missing or when its recipe
    changed) and the Debian package under test (WD_VM_DEB, or
    scripts/build-deb.sh --package-only from this checkout's static
    binary). Both scripts print the path on their last line."""
    out = run([os.path.join(HERE, "rootfs.sh")], stdout=subprocess.PIPE, timeout=2400).stdout.decode()
    image = out.strip().splitlines()[-1]
    deb = os.environ.get("WD_VM_DEB")
    if not deb:
        out = run([os.path.join(REPO, "scripts", "build-deb.sh"), "--package-only"], cwd=REPO,
                  stdout=subprocess.PIPE, timeout=1800).stdout.decode()
        deb = out.strip().splitlines()[-1]
    return image, os.path.abspath(deb)


def prepare_systemd(k, helper, deb):
    """The systemd boot's initramfs (busybox, virtio and ext4 modules,
    guest/init-systemd: mount /dev/vda, switch_root to its systemd) and its
    payload disk: a plain tar (the guest reads /dev/vdb with tar -x) of
    guest/systemd-test.sh, the package, wdhelper, the ext4 image for the
    hung task and the modules of prepare()'s initramfs."""
    staging = os.path.join(k.build, "sd-root")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "bin"))
    shutil.copy(shutil.which("busybox") or "/bin/busybox", os.path.join(staging, "bin", "busybox"))
    shutil.copy(os.path.join(HERE, "guest", "init-systemd"), os.path.join(staging, "init"))
    os.chmod(os.path.join(staging, "init"), 0o755)
    copy_modules(k, staging, SYSTEMD_INITRD_MODULES)
    k.initramfs_systemd = os.path.join(k.build, "initramfs-systemd.cpio")
    cpio(staging, k.initramfs_systemd)
    payload = os.path.join(k.build, "systemd-payload.tar")
    with tarfile.open(payload + ".tmp", "w", format=tarfile.GNU_FORMAT) as t:
        t.add(os.path.join(HERE, "guest", "systemd-test.sh"), "systemd-test.sh")
        t.add(deb, os.path.basename(deb))
        t.add(helper, "wdhelper")
        t.add(ext4_image(), "ext4.img")
        t.add(os.path.join(k.build, "root", "lib"), "modules/lib")
    # A disk's size is a multiple of 512 bytes; tar's records already are.
    os.rename(payload + ".tmp", payload)
    k.payload_systemd = payload


# --- booting ----------------------------------------------------------------


class UdpSink:
    """A receiver on 127.0.0.1 that keeps every datagram with its time."""

    def __init__(self, forward=None):
        # forward: a 127.0.0.1 port to re-send every datagram to, unchanged
        # and in order (watchdog udplogger under test), from a socket of
        # its own so each sink is one sender there.
        self.forward = forward
        self.fwd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if forward else None
        if self.fwd:
            self.fwd.bind(("127.0.0.1", 0))
            self.fwd_port = self.fwd.getsockname()[1]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams = []  # (monotonic time, (addr, port), bytes)
        self.stream = bytearray()
        self.done = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.done:
            try:
                data, src = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            self.datagrams.append((time.monotonic(), src, data))
            self.stream += data
            if self.fwd:
                self.fwd.sendto(data, ("127.0.0.1", self.forward))

    def close(self):
        time.sleep(0.3)
        self.done = True
        self.thread.join()
        self.sock.close()
        if self.fwd:
            self.fwd.close()


def has_subcommand(name):
    """True when the watchdog under test has subcommand `name` (scan and
    udplogger land separately from this suite)."""
    p = subprocess.run([WD_BIN[0], name, "--help"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    return p.returncode == 0


class Udplogger:
    """`watchdog udplogger` on 127.0.0.1, fed by the sinks' forwarding."""

    def __init__(self, outdir):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.dir = os.path.join(outdir, "udplogger")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.events = os.path.join(outdir, "udplogger-events.jsonl")
        self.cmd = [WD_BIN[0], "udplogger", "--listen", "127.0.0.1:%d" % self.port,
                    "--dir", self.dir, "--utc", "--event-log", self.events]
        self.err = open(os.path.join(outdir, "udplogger.stderr"), "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.err,
                                     stderr=self.err, start_new_session=True)
        self.exit = None
        self.sources = {}
        time.sleep(0.5)

    def stop(self, *sinks):
        for s in sinks:
            if s and s.fwd:
                self.sources[s] = "127.0.0.1:%d" % s.fwd_port
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.exit = "killed after SIGTERM timeout"
            self.proc.wait()
        self.err.close()

    def detected(self):
        """The events its detection wrote (JSON objects)."""
        try:
            with open(self.events, encoding="utf-8") as f:
                return [json.loads(l) for l in f if l.strip()]
        except OSError:
            return []

    def lines(self):
        """(time, source, text) of every line it wrote, all log files (not
        the last-words files)."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "**", "*"), recursive=True)):
            if os.path.isfile(path) and "/last-words/" not in path:
                for line in open(path, encoding="utf-8", errors="replace").read().splitlines():
                    parts = line.split(" ", 2)
                    if len(parts) >= 2:
                        out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
        return out


class Boot:
    def __init__(self, name, scenarios, mem="256M", append="", kdump=False, net=False,
                 udp_console=False, timeout=None, reboot=False, systemd=False, kernels=None):
        self.name = name
        self.scenarios = scenarios
        self.mem = mem
        self.append = append
        self.kdump = kdump
        self.net = net
        self.udp_console = udp_console
        self.timeout = timeout
        # Let the guest reset once (no -no-reboot): QEMU keeps its RAM, so
        # a ramoops region survives into the second boot.
        self.reboot = reboot
        # Boot the cached Debian root file system with its systemd (the
        # initramfs only mounts it), the package installed from a second
        # disk; only on these kernels (short names), or on all.
        self.systemd = systemd
        self.kernels = kernels


class BootResult:
    def __init__(self):
        self.ok = False
        self.error = ""
        self.wall = 0.0
        self.init_at = None
        self.marks = {}  # name -> (begin s, end s, rc)
        self.console = b""
        self.files = {}
        self.cmdline = ""
        self.qemu = []
        self.netconsole = None
        self.serial_udp = None
        self.udplogger = None
        self.release = ""
        # The guest ended with SysRq c (wd.crash=1) after @@WD-DONE@@.
        self.crashed = False


def accel():
    return os.environ.get("WD_VM_ACCEL", "tcg")


def boot(k, b, outdir):
    """Boots kernel k for boot b; everything lands in outdir."""
    os.makedirs(outdir, exist_ok=True)
    res = BootResult()
    res.release = k.release
    console = os.path.join(outdir, "console.log")
    channel = os.path.join(outdir, "channel.tar")
    for p in (console, channel):
        if os.path.exists(p):
            os.remove(p)
    ul = Udplogger(outdir) if (b.net or b.udp_console) and not b.systemd and has_subcommand("udplogger") else None
    hostfwd = None
    if b.systemd:
        # The guest's netconsole goes to this sink, which sends every
        # datagram back into the guest (QEMU hostfwd to 10.0.2.15:6666,
        # where the udplogger unit listens): all on 127.0.0.1.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        hostfwd = probe.getsockname()[1]
        probe.close()
    nc = UdpSink(ul.port if ul else hostfwd) if b.net else None
    ser = UdpSink(ul.port if ul else None) if b.udp_console else None
    append = ["console=ttyS0", "panic=-1", "log_buf_len=4M", "wd.run=" + ",".join(GUEST_NAME.get(s, s) for s in b.scenarios)]
    # quiet also keeps the systemd boot's SysRq-T dump off the slow serial
    # console (its netconsole scenario raises the level itself).
    if not b.net or b.systemd:
        append.insert(1, "quiet")
    if nc:
        append.append("wd.ncport=%d" % nc.port)
    if RECORDING:
        append.append("wd.norun=1")
    if os.environ.get("WD_VM_APPEND"):
        append += os.environ["WD_VM_APPEND"].split()
    if b.append:
        append += b.append.split()
    res.cmdline = " ".join(append)
    initrd = k.initramfs_kdump if b.kdump else k.initramfs
    if b.systemd:
        initrd = k.initramfs_systemd
    cmd = [
        "qemu-system-x86_64", "-accel", accel(), "-smp", "1", "-m", b.mem,
        "-display", "none", "-monitor", "none",
    ] + ([] if b.reboot else ["-no-reboot"]) + [
        "-kernel", k.image,
        "-initrd", initrd,
        "-append", res.cmdline,
    ]
    if b.systemd:
        # snapshot=on: the guest's writes go to a temporary file, never to
        # the cached image.
        cmd += ["-drive", "file=%s,format=raw,if=virtio,snapshot=on" % SYSTEMD_IMAGE[0],
                "-drive", "file=%s,format=raw,if=virtio,readonly=on" % k.payload_systemd]
    if ser:
        cmd += ["-chardev", "udp,id=con,host=127.0.0.1,port=%d,localaddr=127.0.0.1,localport=0" % ser.port,
                "-serial", "chardev:con"]
    else:
        cmd += ["-serial", "file:" + console]
    cmd += ["-serial", "file:" + channel]
    if nc:
        netdev = "user,id=n0,ipv6=off,restrict=off"
        if hostfwd:
            netdev += ",hostfwd=udp:127.0.0.1:%d-10.0.2.15:6666" % hostfwd
        cmd += ["-netdev", netdev, "-device", "e1000,netdev=n0"]
    else:
        cmd += ["-nic", "none"]
    res.qemu = cmd
    timeout = b.timeout or (120 if k.image.endswith("vmlinux") else 180)
    with open(os.path.join(outdir, "qemu.cmd"), "w") as f:
        f.write(shlex.join(cmd) + "\n")
    start = time.monotonic()
    qerr = open(os.path.join(outdir, "qemu.stderr"), "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qerr, stderr=qerr,
                            start_new_session=True)
    seen = 0
    buf = b""
    begun = {}
    try:
        while True:
            now = time.monotonic() - start
            if ser:
                buf = bytes(ser.stream)
            elif os.path.exists(console):
                with open(console, "rb") as f:
                    buf = f.read()
            for m in MARKER.finditer(buf, max(0, seen - 200)):
                kind, rest = m.group(1).decode(), m.group(2).decode().strip()
                key = (kind, rest)
                if key in begun:
                    continue
                begun[key] = now
                if kind == "INIT" and res.init_at is None:
                    res.init_at = now
                elif kind == "END":
                    name = rest.split()[0]
                    rc = int(re.search(r"rc=(\d+)", rest).group(1))
                    t0 = begun.get(("BEGIN", name), now)
                    res.marks[name] = (t0, now, rc)
            seen = len(buf)
            if proc.poll() is not None:
                break
            if now > timeout:
                res.error = "timed out after %d s (killed QEMU)" % timeout
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        qerr.close()
    res.wall = time.monotonic() - start
    if ser:
        ser.close()
        buf = bytes(ser.stream)
        res.serial_udp = ser
        with open(console, "wb") as f:
            f.write(buf)
    if nc:
        nc.close()
        res.netconsole = nc
        with open(os.path.join(outdir, "netconsole.jsonl"), "w") as f:
            for line in datagram_lines(nc):
                f.write(line)
    if ul:
        ul.stop(nc, ser)
        res.udplogger = ul
    res.console = buf
    res.crashed = "wd.crash=1" in res.cmdline.split()
    if not res.error and ("DONE", "") not in begun:
        res.error = "guest powered off without @@WD-DONE@@ (qemu exit %s)" % proc.returncode
    try:
        with tarfile.open(channel, "r:") as t:
            for m in t.getmembers():
                if m.isfile():
                    res.files[os.path.basename(m.name)] = t.extractfile(m).read()
    except (OSError, tarfile.TarError) as e:
        if not res.error:
            res.error = "no results from the guest channel: %s" % e
    res.ok = not res.error
    return res


# --- scenarios: what each asserts -----------------------------------------


class Failed(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Failed(what)


def facts(out):
    d = {}
    for line in out.splitlines():
        if line.startswith("wd-fact "):
            key, _, val = line[len("wd-fact "):].partition("=")
            d[key] = val
    return d


def findings(doc):
    return {f["id"]: f for f in doc.get("findings", [])}


def check_json(res, name):
    raw = res.files.get(name + ".json")
    need(raw is not None, "no %s.json from the guest" % name)
    try:
        return json.loads(raw)
    except ValueError as e:
        raise Failed("%s.json is not JSON: %s" % (name, e))


def status_is(doc, fid, want):
    f = findings(doc).get(fid)
    need(f is not None, "finding %s missing" % fid)
    need(f["status"] == want, "%s is %s, want %s (%s)" % (fid, f["status"], want, f.get("summary")))


def exit_is(out, doc, want):
    m = re.search(r"^exit=(\d+)$", out, re.M)
    need(m is not None, "watchdog exit status not reported")
    need(int(m.group(1)) == want, "watchdog check exited %s, want %d" % (m.group(1), want))
    need(doc.get("exit_code") == want, "JSON exit_code %s, want %d" % (doc.get("exit_code"), want))


def a_check(res, out, f):
    doc = check_json(res, "check")
    status_is(doc, "kdump-loaded", "critical")
    status_is(doc, "sysrq-trigger", "ok")
    status_is(doc, "tracefs", "ok")
    status_is(doc, "kprobe-events", "ok")
    status_is(doc, "ftrace-snapshot", "ok")
    # What this guest's own settings make of the rest: the boot line has
    # quiet, console=ttyS0 and log_buf_len=4M; Debian keeps
    # hung_task_warnings=10 and a 120 s timeout, checked every 120 s (a
    # report can take 240 s, past the 120 s failover default).
    status_is(doc, "cmdline-quiet", "warning")
    status_is(doc, "remote-console", "ok")
    status_is(doc, "log-buf-size", "ok")
    status_is(doc, "printk-time", "ok")
    status_is(doc, "hung-task-timeout", "warning")
    status_is(doc, "hung-task-warnings", "warning")
    # quiet sets the console log level to 4, and ttyS0 is a remote console:
    # task dumps (level 6) never reach it.
    status_is(doc, "console-loglevel", "warning")
    need(findings(doc)["console-loglevel"]["values"].get("console_loglevel") == 4,
         "console-loglevel values: %r" % findings(doc)["console-loglevel"]["values"])
    # No kdump.conf or kdump-tools in the guest and nothing loaded.
    status_is(doc, "kdump-target", "ok")
    # The guest has no watchdog device (QEMU adds none unless asked).
    status_is(doc, "hardware-watchdog", "ok")
    need(findings(doc)["hardware-watchdog"]["values"].get("devices") == [],
         "hardware-watchdog values: %r" % findings(doc)["hardware-watchdog"]["values"])
    # No pstore backend before ramoops is loaded (SeaBIOS: no EFI, no
    # ERST); /var/log holds neither a journal nor a syslog file.
    status_is(doc, "pstore", "warning")
    status_is(doc, "persistent-journal", "warning")
    # A real kernel has every file the checks read.
    unknown = [f["id"] for f in doc.get("findings", []) if f["status"] == "unknown"]
    need(not unknown, "unknown findings on a real kernel: %s" % unknown)
    need(doc.get("kernel") == res.release, "kernel %r, want %r" % (doc.get("kernel"), res.release))
    exit_is(out, doc, 2)
    return ("kdump-loaded critical; sysrq-trigger, tracefs, kprobe-events, ftrace-snapshot, remote-console, "
            "log-buf-size, printk-time, kdump-target, hardware-watchdog ok; cmdline-quiet, hung-task-timeout, "
            "hung-task-warnings, console-loglevel, pstore, persistent-journal warning; no unknown; %d findings; exit 2"
            % len(doc.get("findings", [])))


def a_kdump_off(res, out, f):
    doc = check_json(res, "kdump")
    status_is(doc, "kdump-reserved", "critical")
    status_is(doc, "kdump-loaded", "critical")
    exit_is(out, doc, 2)
    return "no crashkernel=: kdump-reserved and kdump-loaded critical; exit 2"


def a_kdump_reserved(res, out, f):
    doc = check_json(res, "kdump")
    status_is(doc, "kdump-reserved", "ok")
    status_is(doc, "kdump-loaded", "critical")
    exit_is(out, doc, 2)
    return "crashkernel=128M, nothing loaded: kdump-reserved ok, kdump-loaded critical; exit 2"


def a_kdump_load(res, out, f):
    need(f.get("kexec_crash_loaded") == "1", "kexec_crash_loaded is %r after kexec_file_load" % f.get("kexec_crash_loaded"))
    doc = check_json(res, "kdump_load")
    status_is(doc, "kdump-reserved", "ok")
    status_is(doc, "kdump-loaded", "ok")
    exit_is(out, doc, 0)
    return "after kexec_file_load(ON_CRASH): kdump-reserved and kdump-loaded ok; exit 0"


def a_snapshot(res, out, f):
    n = int(f.get("snapshot_events", "0") or 0)
    need(n > 0, "snapshot file empty")
    return "instance snapshot holds %d events" % n


def text(res, name, ext):
    raw = res.files.get("%s.%s" % (name, ext))
    need(raw is not None, "no %s.%s from the guest" % (name, ext))
    return raw.decode("utf-8", "replace")


def a_hung_task(res, out, f):
    log_ = text(res, "hung_task", "kmsg")
    pat = "INFO: task %s:%s blocked for more than" % (f.get("comm"), f.get("pid"))
    need(pat in log_, "kernel log lacks %r" % pat)
    need("sysrq: Show State" in log_, "no SysRq t header in the log")
    need("sysrq: Show Blocked State" in log_, "no SysRq w header in the log")
    return "kernel: %r; SysRq t and w dumps present" % pat


def a_frozen_evidence(res, out, f):
    log_ = text(res, "frozen_evidence", "kmsg")
    pat = "INFO: task %s:%s blocked for more than" % (f.get("comm"), f.get("pid"))
    need(pat in log_, "kernel log lacks %r" % pat)
    need("sysrq: Show State" in log_, "no SysRq t dump: watchdog run did not fire it while its files were frozen")
    need(f.get("run_state") in ("S", "R"), "watchdog run's main thread was in state %r while its filesystem was frozen" % f.get("run_state"))
    need(f.get("run_exit") == "0", "watchdog run exited %r" % f.get("run_exit"))
    return "kernel: %r; SysRq-T fired by watchdog run with its event log, position and evidence frozen; its loop in state %s" % (
        pat, f.get("run_state"))


def a_oom(res, out, f, memcg=False):
    name = "oom_memcg" if memcg else "oom"
    log_ = text(res, name, "kmsg")
    pat = "Killed process %s (%s)" % (f.get("pid"), f.get("comm"))
    need(pat in log_, "kernel log lacks %r" % pat)
    if memcg:
        need("Memory cgroup out of memory: " + pat in log_, "the kill is not a memcg kill")
    else:
        need("Out of memory: " + pat in log_, "the kill is not a global OOM kill")
    need(re.search(r"oom-kill:constraint=CONSTRAINT_%s" % ("MEMCG" if memcg else "NONE"), log_),
         "no oom-kill:constraint line")
    return "kernel: %r%s" % (pat, " (memcg)" if memcg else "")


def a_sigsegv(res, out, f):
    log_ = text(res, "sigsegv", "kmsg")
    pat = "wd-segv[%s]: segfault at 0 ip" % f.get("pid")
    need(pat in log_, "kernel log lacks %r" % pat)
    need("potentially unexpected fatal signal 11" in log_, "no print-fatal-signals line")
    trace = text(res, "sigsegv", "trace")
    need(re.search(r"signal_generate: sig=11 .*comm=wd-segv pid=%s" % f.get("pid"), trace),
         "trace lacks signal_generate sig=11 for the pid")
    need(re.search(r"do_exit: .*code=11\b", trace), "trace lacks do_exit code=11")
    return "kernel: %r; trace: signal_generate sig=11, do_exit code=11" % pat


def a_sigkill(res, out, f):
    trace = text(res, "sigkill", "trace")
    line = "wd-killer-%s" % f.get("sender_pid")
    gen = [l for l in trace.splitlines() if "signal_generate: sig=9 " in l and "pid=%s " % f.get("pid") in l]
    need(gen, "trace lacks signal_generate sig=9 for pid %s" % f.get("pid"))
    need(any(line in l for l in gen), "signal_generate sig=9 was not sent by %s" % line)
    need(re.search(r"sleep-%s .*do_exit: .*code=9\b" % f.get("pid"), trace), "trace lacks do_exit code=9 of the victim")
    return "trace: signal_generate sig=9 to sleep:%s from %s; do_exit code=9" % (f.get("pid"), line)


def a_sysrq(res, out, f):
    log_ = text(res, "sysrq", "kmsg")
    for h in ["sysrq: Show State", "sysrq: Show Blocked State", "sysrq: Show Memory"]:
        need(h in log_, "no %r in the log" % h)
    return "SysRq t, w, m headers and dumps in the log"


def a_psi(res, out, f):
    need(f.get("pressure") == "yes", "no /proc/pressure in the guest (PSI off?)")
    log_ = text(res, "psi", "kmsg")
    pat = "Memory cgroup out of memory: Killed process %s (%s)" % (f.get("pid"), f.get("comm"))
    need(pat in log_, "kernel log lacks %r" % pat)
    return "kernel: %r" % pat


NC_HEADER = re.compile(rb"^(\d+),(\d+),(\d+),([^,;]*)(?:,[^;]*)?;")


def a_netconsole(res, out, f):
    nc = res.netconsole
    need(nc is not None and nc.datagrams, "no netconsole datagrams on 127.0.0.1")
    seqs = []
    for _, _, d in nc.datagrams:
        m = NC_HEADER.match(d)
        need(m is not None, "datagram not in extended format: %r" % d[:80])
        seqs.append(int(m.group(2)))
    body = b"".join(d for _, _, d in nc.datagrams)
    for i in range(1, 21):
        need(b"wd-netconsole: line %d of 20\n" % i in body, "test line %d did not arrive" % i)
    need(b"wd-netconsole: done" in body, "the last test line did not arrive")
    uniq = sorted(set(seqs))
    gaps = [(a, b) for a, b in zip(uniq, uniq[1:]) if b != a + 1]
    # The replay of the log buffer when netconsole starts may lose records
    # inside the guest (netpoll's small skb pool; the host's UDP counters
    # show no drops): allowed, and the udplogger must report them. After
    # "network logging started" nothing may be missing.
    started = [int(NC_HEADER.match(d).group(2)) for _, _, d in nc.datagrams
               if b"netconsole: network logging started" in d]
    need(started, "no 'network logging started' record")
    late = [(a, b) for a, b in gaps if b > started[0]]
    need(not late, "sequence gaps after netconsole started: %s" % late[:5])
    sent = f.get("tx_packets")
    ser = res.serial_udp
    need(ser is not None and ser.datagrams, "no serial-over-UDP datagrams")
    need(b"@@WD-INIT" in ser.stream and b"@@WD-DONE@@" in ser.stream, "serial-over-UDP stream incomplete")
    sizes = {len(d) for _, _, d in ser.datagrams}
    detail = udplogger_check(res, gaps)
    return ("netconsole: %d datagrams (guest eth0 sent %s), seq %d..%d, %d gap(s) in the replay, none after; "
            "serial UDP: %d datagrams of sizes %s") % (
        len(nc.datagrams), sent, uniq[0], uniq[-1], len(gaps), len(ser.datagrams), sorted(sizes)[:5]) + detail


KTIME = re.compile(r"^\[\s*\d+\.\d{6}\] ")
RFC3339_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")


def udplogger_check(res, gaps):
    """watchdog udplogger got the same datagrams as the Python sinks."""
    ul = res.udplogger
    if ul is None:
        return "; udplogger: not in this build (skipped)"
    need(ul.exit == 0, "watchdog udplogger exit status after SIGTERM: %s" % ul.exit)
    lines = ul.lines()
    need(lines, "watchdog udplogger wrote nothing in %s" % ul.dir)
    bad = [l for l in lines if not RFC3339_US.match(l[0])]
    need(not bad, "udplogger lines without an RFC 3339 microsecond time: %s" % bad[:3])
    nc_src = ul.sources.get(res.netconsole)
    ser_src = ul.sources.get(res.serial_udp)
    # Extended records carry the kernel's time before the text.
    nc_text = [KTIME.sub("", t) for _, src, t in lines if src == nc_src]
    for i in range(1, 21):
        want = "wd-netconsole: line %d of 20" % i
        need(nc_text.count(want) == 1, "udplogger: %r appears %d times from %s" % (want, nc_text.count(want), nc_src))
    need("wd-netconsole: done" in nc_text, "udplogger: the last netconsole line is missing")
    marks = [t for _, src, t in lines if src == "udplogger"]
    need(len(marks) >= len(gaps), "udplogger: %d marker line(s) for %d sequence gap(s)" % (len(marks), len(gaps)))
    ser_text = [t.rstrip("\r") for _, src, t in lines if src == ser_src]
    need(any(t.endswith("@@WD-DONE@@") for t in ser_text) and any("@@WD-INIT" in t for t in ser_text),
         "udplogger: the serial console (one byte per datagram) was not assembled into lines")
    panic = ""
    if res.crashed:
        # The guest ended with SysRq c (kdump off): udplogger's detection
        # reports the panic it received, with the sender and last words.
        evs = ul.detected()
        # Kernels whose netconsole prints from a thread (nbcon, 6.13+) do
        # not send at panic: then the panic reaches the host only over the
        # serial console, and udplogger must report it from that sender.
        src = nc_src
        via = "netconsole"
        if not any("Kernel panic - not syncing" in t for t in nc_text):
            src, via = ser_src, "the serial console (netconsole sent no panic)"
        panics = [e for e in evs if e.get("kind") == "panic" and e.get("host") == src]
        need(len(panics) == 1, "udplogger: %d panic events from %s (events: %s)" % (
            len(panics), src, [(e.get("kind"), e.get("host")) for e in evs][:20]))
        p = panics[0]
        need(p.get("source") == "netconsole" and "sysrq triggered crash" in p.get("summary", ""),
             "udplogger: panic event %s" % p)
        lw = p.get("last_words") or ""
        need(os.path.isfile(lw), "udplogger: last-words file %r missing" % lw)
        words = open(lw, encoding="utf-8", errors="replace").read()
        need("sysrq: Trigger a crash" in words and "Kernel panic - not syncing" in words,
             "udplogger: last words lack the crash: %s" % words[-500:])
        panic = ", the panic event (%s) from %s with %d lines of last words" % (p["summary"], via, words.count("\n"))
    return "; udplogger: %d lines, the 20 test lines once each, %d marker line(s), serial lines assembled%s" % (
        len(lines), len(marks), panic)


def prevboot_events(res, name):
    out = {}
    for what in ("lastboot", "run"):
        raw = res.files.get("%s.%s.json%s" % (name, what, "" if what == "lastboot" else "l"))
        need(raw is not None, "no %s output of the second boot" % what)
        out[what] = [json.loads(l) for l in raw.decode("utf-8", "replace").splitlines() if l.strip()]
    return out


def a_prevboot_panic(res, out, f):
    ev = prevboot_events(res, "prevboot_panic")
    need(f.get("pid"), "the writer's pid is not in the pstore records")
    pid = int(f["pid"])
    want_summary = "Kernel panic - not syncing: hung_task: blocked tasks"
    for who, events in ev.items():
        pb = [e for e in events if e.get("kind") == "previous_boot"]
        need(len(pb) == 1, "%s: %d previous_boot events" % (who, len(pb)))
        need(pb[0].get("cause") == "hung_task_panic", "%s: cause %r (%s)" % (who, pb[0].get("cause"), pb[0].get("summary")))
        need(pb[0].get("summary") == want_summary, "%s: summary %r" % (who, pb[0].get("summary")))
        need("dmesg-ramoops" in pb[0].get("sources", ""), "%s: sources %r" % (who, pb[0].get("sources")))
        hung = [e for e in events if e.get("kind") == "hung_task" and e.get("previous_boot") is True]
        need(any(e.get("comm") == "wd-writer" and e.get("pid") == pid for e in hung),
             "%s: no hung_task wd-writer pid %d marked previous_boot: %s" % (who, pid, hung))
    need(re.search(r"^exit=1$", out, re.M), "watchdog last-boot did not exit 1")
    txt = text(res, "prevboot_panic", "lastboot.txt")
    need(txt.startswith("previous boot: hung_task_panic\n  " + want_summary), "last-boot text: %r" % txt[:200])
    need("wd-writer[%d]" % pid in txt, "last-boot text does not name wd-writer[%d]" % pid)
    return "after the reset: run and last-boot say hung_task_panic, %r, hung task wd-writer[%d]; pstore: %s" % (
        want_summary, pid, sorted(n for n in res.files if n.startswith("dmesg-") or n.startswith("console-")))


def a_prevboot_reboot(res, out, f):
    ev = prevboot_events(res, "prevboot_reboot")
    for who, events in ev.items():
        pb = [e for e in events if e.get("kind") == "previous_boot"]
        need(len(pb) == 1, "%s: %d previous_boot events" % (who, len(pb)))
        need(pb[0].get("cause") in ("reboot", "clean_shutdown"), "%s: a clean reboot reported as %r (%s)" % (
            who, pb[0].get("cause"), pb[0].get("summary")))
        crash = [e for e in events if e.get("kind") in ("panic", "oops", "hung_task")]
        need(not crash, "%s: incidents in a clean boot: %s" % (who, crash))
    need(re.search(r"^exit=0$", out, re.M), "watchdog last-boot did not exit 0")
    return "after `reboot -f`: run and last-boot say %s, no incident" % ev["lastboot"][0].get("cause")


# --- the systemd boot: the package under Debian's systemd --------------------

UNIT = "watchdog-evidence"
UDP_UNIT = "watchdog-evidence-udplogger"
HUNG_MSGID = "67778d9a27f04f93914ef2f5371a4709"
# systemd-analyze security of the shipped units as documented (docs/run.md,
# docs/udplogger.md): the boot fails if either gets worse.
EXPOSURE_MAX = {UNIT: 2.4, UDP_UNIT: 1.1}


def a_sd_install(res, out, f):
    need(f.get("enabled_" + UNIT) == "disabled" and f.get("enabled_" + UDP_UNIT) == "disabled",
         "units after dpkg -i: %s / %s (want disabled, as the RPM)" % (f.get("enabled_" + UNIT), f.get("enabled_" + UDP_UNIT)))
    need(f.get("active_" + UNIT) == "inactive", "%s is %s right after dpkg -i" % (UNIT, f.get("active_" + UNIT)))
    need(f.get("catalog") == "yes", "the journal catalog lacks the hung-task entry after dpkg -i")
    need("/etc/watchdog/watchdog.yaml" in f.get("conffiles", "").split(), "conffiles: %r" % f.get("conffiles"))
    files = res.files.get("systemd_install.files", b"").decode().split()
    for want in ["/usr/bin/watchdog-evidence", "/usr/share/watchdog-evidence/exec-and-metrics.conf",
                 "/usr/lib/systemd/catalog/watchdog-evidence.catalog"]:
        need(want in files, "dpkg -L lacks %s" % want)
    need(f.get("dir_lib") == "750 root" and f.get("dir_log") == "750 root",
         "/var/lib/watchdog, /var/log/watchdog: %r, %r" % (f.get("dir_lib"), f.get("dir_log")))
    return "dpkg -i under systemd %s: %d paths, units installed disabled, config a conffile, catalog entry %s known to journalctl" % (
        f.get("systemd_version"), len(files), HUNG_MSGID)


def a_sd_security(res, out, f):
    got = {}
    for u, limit in EXPOSURE_MAX.items():
        v = f.get("exposure_" + u)
        need(v, "no exposure level for %s:\n%s" % (u, res.files.get("security.%s.txt" % u, b"").decode()[-500:]))
        need(float(v) <= limit, "systemd-analyze security %s: %s, above %.1f" % (u, v, limit))
        got[u] = v
    return "systemd-analyze security: %s %s (<= %.1f), %s %s (<= %.1f)" % (
        UNIT, got[UNIT], EXPOSURE_MAX[UNIT], UDP_UNIT, got[UDP_UNIT], EXPOSURE_MAX[UDP_UNIT])


def a_sd_notify(res, out, f):
    need(f.get("type") == "notify" and f.get("active") == "active",
         "after systemctl start: Type=%s, %s" % (f.get("type"), f.get("active")))
    w1, w2 = int(f.get("watchdog_ts_1") or 0), int(f.get("watchdog_ts_2") or 0)
    need(w1 > 0 and w2 > w1, "WatchdogTimestampMonotonic did not advance: %s -> %s" % (w1, w2))
    need(f.get("active_after_pings") == "active", "not active after 12 s: %s" % f.get("active_after_pings"))
    inst, kp = f.get("instances", "").split(), f.get("kprobes", "").split()
    need("watchdog" in inst and "watchdog-flight" in inst, "trace instances in the sandbox: %s" % inst)
    need(any("watchdog/do_exit" in p for p in kp), "kprobes: %s" % kp)
    return ("Type=notify active after READY=1 (start took %s s); WatchdogTimestamp advanced %.1f s in 12 s; "
            "STATUS=%r; instances %s and kprobe %s set up in the sandbox") % (
        f.get("start_secs"), (w2 - w1) / 1e6, f.get("status_text"), " ".join(inst), " ".join(kp))


def a_sd_reload(res, out, f):
    n = int(f.get("rules_before") or -1)
    need(n > 0, "no rule count from the first reload")
    need(f.get("rules_after") == str(n + 1), "after adding a rule: %s rules, want %d" % (f.get("rules_after"), n + 1))
    need(f.get("active_after_broken") == "active" and f.get("same_pid") == "yes",
         "after the broken reload: %s, same pid: %s" % (f.get("active_after_broken"), f.get("same_pid")))
    return "systemctl reload: %d -> %d rules; a broken file refused, the running configuration kept (same pid, active)" % (n, n + 1)


def a_sd_hung_task(res, out, f):
    raw = res.files.get("systemd_hung_task.journal.json", b"").decode("utf-8", "replace")
    entries = [json.loads(l) for l in raw.splitlines() if l.strip()]
    mine = [e for e in entries if e.get("WATCHDOG_PID") == f.get("pid")]
    need(mine, "no journal entry MESSAGE_ID=%s for pid %s (%d entries)" % (HUNG_MSGID, f.get("pid"), len(entries)))
    e = mine[0]
    need(e.get("WATCHDOG_COMM") == f.get("comm") and e.get("_SYSTEMD_UNIT") == UNIT + ".service",
         "journal entry: comm %r, unit %r" % (e.get("WATCHDOG_COMM"), e.get("_SYSTEMD_UNIT")))
    need(f.get("active_after") == "active", "the unit is %s after the hung task" % f.get("active_after"))
    detail = "journal: MESSAGE_ID=%s %r from %s" % (HUNG_MSGID, e.get("MESSAGE"), e.get("_SYSTEMD_UNIT"))
    return detail + run_check(res, "hung-task", f, name="systemd_hung_task", stacks=False)


def a_sd_stop(res, out, f):
    before, after = f.get("instances_before", "").split(), f.get("instances_after", "").split()
    kbefore, kafter = f.get("kprobes_before", "").split(), f.get("kprobes_after", "").split()
    need("watchdog" in before and any("watchdog/" in p for p in kbefore), "nothing to remove: %s %s" % (before, kbefore))
    need(f.get("result") == "success", "Result=%s after systemctl stop" % f.get("result"))
    left = [i for i in after if i.startswith("watchdog")] + [p for p in kafter if "watchdog/" in p]
    need(not left, "left after systemctl stop: %s" % left)
    return "systemctl stop: Result=success, exit %s; instances %s and kprobe %s removed" % (
        f.get("exit_status"), " ".join(i for i in before if i.startswith("watchdog")), " ".join(kbefore))


def a_sd_exec(res, out, f):
    need(f.get("strict_action_ok") == "false", "under the shipped unit the exec action said ok=%s" % f.get("strict_action_ok"))
    need(not f.get("strict_listener"), "under the shipped unit the listener got %r" % f.get("strict_listener"))
    need(f.get("strict_metrics") == "none", "under the shipped unit the metrics file was written: %s" % f.get("strict_metrics"))
    need(f.get("dropin_action_ok") == "true", "with the drop-in the exec action said ok=%s" % f.get("dropin_action_ok"))
    need(f.get("dropin_listener") == "wd-exec-reached", "with the drop-in the listener got %r" % f.get("dropin_listener"))
    need(f.get("dropin_metrics", "none").isdigit() and int(f["dropin_metrics"]) > 0,
         "with the drop-in the metrics file has %s watchdog_ lines" % f.get("dropin_metrics"))
    strict = json.loads(res.files.get("systemd_exec.strict.action.json", b"{}") or b"{}")
    return ("shipped unit: exec to 10.0.2.15 failed (%s), metrics not written; with exec-and-metrics.conf: "
            "the listener got the line, %s metric lines in the textfile directory; exposure with it %s") % (
        (strict.get("detail") or "")[:80], f.get("dropin_metrics"), f.get("exposure_dropin"))


def a_sd_udplogger(res, out, f):
    need(f.get("udp_active") == "active", "%s: %s" % (UDP_UNIT, f.get("udp_active")))
    lines = res.files.get("systemd_udplogger.lines", b"").decode("utf-8", "replace").splitlines()
    for i in range(1, 21):
        want = "wd-systemd-netconsole: line %d of 20" % i
        n = sum(1 for l in lines if l.endswith(want))
        need(n == 1, "udplogger unit: %r %d times" % (want, n))
    nc = res.netconsole
    need(nc is not None and nc.datagrams, "the host sink got no netconsole datagrams")
    return "%s (DynamicUser %s) wrote the 20 lines once each into %s, from %d datagrams looped through the host" % (
        UDP_UNIT, f.get("udp_owner"), f.get("udp_files"), len(nc.datagrams))


# name -> (assert, how it is provoked: recorded into fixture headers)
SCENARIOS = {
    "check": (a_check, "watchdog check --format json with tracefs mounted, no crashkernel="),
    "kdump-off": (a_kdump_off, "watchdog check --only kdump-loaded,kdump-reserved without crashkernel="),
    "kdump-reserved": (a_kdump_reserved, "watchdog check --only kdump-loaded,kdump-reserved with crashkernel=128M, nothing loaded"),
    "kdump-load": (a_kdump_load, "kexec_file_load(KEXEC_FILE_ON_CRASH|KEXEC_FILE_NO_INITRAMFS) of the same bzImage, then watchdog check"),
    "snapshot": (a_snapshot, "a tracefs instance with sched events, echo 1 > snapshot"),
    "hung-task": (a_hung_task, "ext4 on brd, hung_task_timeout_secs=2, fsfreeze --freeze, `wdhelper write` (comm wd-writer) blocks in D state; after the warning SysRq t and w, then fsfreeze --unfreeze"),
    "frozen-evidence": (a_frozen_evidence, "ext4 on brd holds watchdog run's event log, kmsg position and evidence directory; hung_task_timeout_secs=2, fsfreeze --freeze, `wdhelper write` (comm wd-writer) blocks in D state; no manual SysRq"),
    "oom": (a_oom, "`wdhelper hog` (comm wd-hog) touches 1 MiB chunks until the global OOM killer kills it, -m 256M, no swap"),
    "oom-memcg": (lambda r, o, f: a_oom(r, o, f, memcg=True), "`wdhelper hog` (comm wd-hog) in cgroup v2 /wd with memory.max=32M"),
    "sigsegv": (a_sigsegv, "`wdhelper segv` (comm wd-segv) loads from NULL, twice: first with the defaults (debug.exception-trace=1), then with kernel.print-fatal-signals=1; a tracefs instance records signal_generate, signal_deliver, sched_process_exit and a kprobe p:wdtest/do_exit do_exit code=$arg1:s32"),
    "sigkill": (a_sigkill, "busybox `sleep 1000` killed with SIGKILL by `wdhelper kill 9 PID` (comm wd-killer); the same tracefs instance as sigsegv"),
    "sysrq": (a_sysrq, "echo t, w, m > /proc/sysrq-trigger"),
    "psi": (a_psi, "`wdhelper hog` (comm wd-hog) in cgroup v2 /wdpsi with memory.high=28M (throttled: memory stall) and memory.max=32M (memcg OOM kill), psi=1; watchdog run with its default PSI trigger"),
    "hang": (None, "a scenario that never ends (sleeps forever)"),
    "prevboot-panic": (a_prevboot_panic, "ramoops (memmap=1M$0x8000000, mem_size=1M, record_size=64K, console_size=128K, max_reason=4); kernel.hung_task_panic=1, hung_task_timeout_secs=2, fsfreeze + `wdhelper write` (comm wd-writer); panic=-1 resets the guest, QEMU keeps its RAM; the second boot runs watchdog run and watchdog last-boot"),
    "prevboot-reboot": (a_prevboot_reboot, "the same ramoops setup (max_reason=4: a dump at an orderly reboot too, headed Shutdown#1); watchdog run started and stopped, then reboot -f; the second boot runs watchdog run and watchdog last-boot"),
    "systemd-install": (a_sd_install, "dpkg -i watchdog-evidence_*.deb in a Debian 12 root file system with systemd as PID 1"),
    "systemd-security": (a_sd_security, "systemd-analyze security of both installed units"),
    "systemd-notify": (a_sd_notify, "systemctl start watchdog-evidence (Type=notify) with a test drop-in WatchdogSec=10s"),
    "systemd-reload": (a_sd_reload, "systemctl reload: unchanged, one rule added, then an unknown key"),
    "systemd-hung-task": (a_sd_hung_task, "the unit running; ext4 on brd, hung_task_timeout_secs=2, fsfreeze --freeze, `wdhelper write` (comm wd-writer) in D state"),
    "systemd-stop": (a_sd_stop, "systemctl stop watchdog-evidence"),
    "systemd-exec": (a_sd_exec, "an exec rule on SysRq w sending a line to nc -l 10.0.2.15:7777 and metrics_file in /var/lib/node_exporter/textfile_collector, without and with exec-and-metrics.conf"),
    "systemd-udplogger": (a_sd_udplogger, "the udplogger unit on [::]:6666; the guest's extended netconsole to 10.0.2.2, looped back by the host through QEMU hostfwd"),
    "netconsole": (a_netconsole, "e1000 + user networking, modprobe netconsole netconsole=+6665@10.0.2.15/eth0,PORT@10.0.2.2/ (extended), 20 lines written to /dev/kmsg, SysRq t; console on -serial udp:127.0.0.1:PORT"),
}

# Scenarios that map to the guest's scn_ functions under another name.
GUEST_NAME = {"kdump-off": "kdump", "kdump-reserved": "kdump"}

BOOTS = [
    Boot("basic", ["check", "kdump-off", "snapshot"]),
    Boot("kdump", ["kdump-reserved", "kdump-load"], mem="512M", append="crashkernel=128M", kdump=True),
    Boot("hung-task", ["hung-task"]),
    Boot("frozen-evidence", ["frozen-evidence"]),
    Boot("oom", ["oom"]),
    Boot("oom-memcg", ["oom-memcg"]),
    Boot("sigsegv", ["sigsegv"]),
    Boot("sigkill", ["sigkill"]),
    Boot("sysrq", ["sysrq"]),
    Boot("psi", ["psi"], append="psi=1"),
    # Ends with SysRq c (kdump off, panic=-1): the panic reaches the
    # host only over netconsole, where udplogger must report it.
    Boot("netconsole", ["netconsole"], net=True, udp_console=True, append="wd.crash=1"),
    Boot("prevboot-panic", ["prevboot-panic"], append="memmap=1M$0x8000000", reboot=True, timeout=240),
    Boot("prevboot-reboot", ["prevboot-reboot"], append="memmap=1M$0x8000000", reboot=True, timeout=240),
    # Debian 12 with its systemd as PID 1 and the .deb installed: on
    # bookworm's own kernel only (the slowest boot of the suite).
    Boot("systemd", ["systemd-install", "systemd-security", "systemd-notify", "systemd-reload",
                     "systemd-hung-task", "systemd-stop", "systemd-exec", "systemd-udplogger"],
         mem="1G", net=True, systemd=True, kernels=("6.1",), timeout=900),
]

# Run only when named (--only hang): proves a stuck guest fails its boot at
# the deadline instead of hanging the suite.
EXTRA_BOOTS = [Boot("hang", ["hang"], timeout=15)]

# Recording scenarios: their kernel text becomes fixtures with --record.
RECORDED = ["hung-task", "oom", "oom-memcg", "sigsegv", "sigkill", "sysrq"]


# --- watchdog scan of the saved logs -------------------------------------

# What `watchdog scan` must find in each recording (docs/contracts.md's event
# contract), from the facts the guest reported.
def scan_expect(s, f):
    if s == "hung-task":
        return [{"kind": "hung_task", "comm": f.get("comm"), "pid": int(f.get("pid", -1))},
                {"kind": "sysrq", "command": "Show State"},
                {"kind": "sysrq", "command": "Show Blocked State"}]
    if s in ("oom", "oom-memcg", "psi"):
        return [{"kind": "oom_kill", "pid": int(f.get("pid", -1)), "comm": f.get("comm"),
                 "memcg": s != "oom"}]
    if s == "sigsegv":
        return [{"kind": "signal_death", "pid": int(f.get(p, -1)), "comm": "wd-segv", "signal": 11}
                for p in ("pid", "pid2")]
    if s == "sysrq":
        return [{"kind": "sysrq", "command": c} for c in ("Show State", "Show Blocked State", "Show Memory")]
    if s == "sigkill":
        return []  # the kernel log says nothing about a SIGKILL
    return None


# Kinds no recording may yield: none of these happened in any of them (the
# boot noise, register dumps of print-fatal-signals and SysRq dumps must not
# look like one), and a SIGKILL leaves no kernel text to find.
ABSENT = ["oops", "panic", "soft_lockup", "rcu_stall", "bug", "hard_lockup", "mce"]
ABSENT_IN = {"sigkill": ["signal_death"]}


def events_match(events, want, who):
    """Every wanted event is there, and (one event per incident, docs/contracts.md)
    of the kinds wanted nothing else: only hung tasks (re-reported each
    detector interval while blocked) and pressure (each trigger window
    while the stall lasts) may come more than once; actions are
    not checked for strays."""
    def match(e, w):
        return all(e.get(key) == v for key, v in w.items())
    for w in want:
        need(any(match(e, w) for e in events), "%s: no event %s among %d" % (who, w, len(events)))
    for kind in {w["kind"] for w in want} - {"action"}:
        got = [e for e in events if e.get("kind") == kind]
        wanted = [w for w in want if w["kind"] == kind]
        stray = [e for e in got if not any(match(e, w) for w in wanted)]
        need(not stray, "%s: unexpected %s event(s): %s" % (
            who, kind, [{k_: e.get(k_) for k_ in ("pid", "comm", "command", "line", "kernel_time") if k_ in e}
                        for e in stray]))
        need(kind in ("hung_task", "pressure") or len(got) == len(wanted),
             "%s: %d %s event(s), want %d" % (who, len(got), kind, len(wanted)))


def scan_check(res, s, f, outdir):
    """Runs `watchdog scan` on the saved .kmsg and .dmesg; both must hold
    the expected events, and the same ones."""
    want = scan_expect(s, f)
    if want is None:
        return ""
    absent = ABSENT + ABSENT_IN.get(s, [])
    if not has_subcommand("scan"):
        return "; scan: not in this build (skipped)"
    name = s.replace("-", "_")
    seen = {}
    for ext in ("kmsg", "dmesg"):
        path = os.path.join(outdir, "%s.%s" % (name, ext))
        with open(path, "wb") as out:
            out.write(res.files["%s.%s" % (name, ext)])
        p = subprocess.run([WD_BIN[0], "scan", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        need(p.returncode == 0, "watchdog scan %s.%s exited %d: %s" % (name, ext, p.returncode, p.stderr.decode()[-300:]))
        events = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
        with open(path + ".scan.jsonl", "wb") as out:
            out.write(p.stdout)
        wrong = [e for e in events if e.get("kind") in absent]
        need(not wrong, "watchdog scan %s.%s: events that did not happen: %s" % (
            name, ext, [{k_: e.get(k_) for k_ in ("kind", "line", "summary", "pid", "comm")} for e in wrong]))

        events_match(events, want, "watchdog scan %s.%s" % (name, ext))
        seen[ext] = sorted(json.dumps({k_: v for k_, v in e.items() if k_ not in ("source", "line", "time")},
                                      sort_keys=True) for e in events)
    need(seen["kmsg"] == seen["dmesg"], "watchdog scan finds different events in %s.kmsg and %s.dmesg" % (name, name))
    return "; scan (kmsg and dmesg): %d event(s) as expected" % len(seen["kmsg"])


# --- watchdog run in the guest ---------------------------------------------

def run_expect(s, f):
    """What `watchdog run` must have reported while the scenario ran."""
    pid = lambda key="pid": int(f.get(key, -1))
    if s in ("kdump-off", "kdump-reserved", "kdump-load"):
        return [{"kind": "action", "action": "kdump_check", "ok": s == "kdump-load"}]
    if s in ("hung-task", "frozen-evidence"):
        return [{"kind": "hung_task", "comm": f.get("comm"), "pid": pid()},
                {"kind": "action", "action": "sysrq t", "ok": True},
                {"kind": "action", "action": "ftrace_snapshot", "ok": True}]
    if s in ("oom", "oom-memcg"):
        return [{"kind": "oom_kill", "pid": pid(), "comm": f.get("comm"), "memcg": s == "oom-memcg"}]
    if s == "sigsegv":
        return [{"kind": "signal_death", "pid": pid(p), "comm": "wd-segv", "signal": 11} for p in ("pid", "pid2")]
    if s == "sigkill":
        return [{"kind": "signal_death", "pid": pid(), "signal": 9,
                 "sender_pid": pid("sender_pid"), "sender_comm": f.get("sender_comm")}]
    if s == "sysrq":
        return [{"kind": "sysrq", "command": c} for c in ("Show State", "Show Blocked State", "Show Memory")]
    if s == "psi":
        return [{"kind": "pressure", "resource": "memory", "scope": "full"},
                {"kind": "oom_kill", "pid": pid(), "comm": f.get("comm"), "memcg": True},
                {"kind": "action", "rule": "memory-pressure-evidence", "action": "sysrq m", "ok": True}]
    return None


def run_check(res, s, f, name=None, stacks=True):
    want = run_expect(s, f)
    if want is None:
        return ""
    name = name or GUEST_NAME.get(s, s).replace("-", "_")
    raw = res.files.get("%s.run.jsonl" % name)
    if raw is None:
        if RECORDING:
            return "; run: not started (recording)"
        return "; run: not in this build (skipped)"
    events = [json.loads(l) for l in raw.decode("utf-8", "replace").splitlines() if l.strip()]
    events_match(events, want, "watchdog run")
    notes = ""
    # Each snapshot it says it saved is a non-empty trace on disk.
    sizes = {}
    for line in res.files.get("%s.evidence" % name, b"").decode().splitlines():
        size, _, path = line.partition(" ")
        sizes[path] = int(size)
    for e in events:
        if s == "frozen-evidence":
            break  # its evidence lives on the filesystem the guest unmounts
        if e.get("action") == "ftrace_snapshot" and e.get("ok"):
            m = re.search(r" to (/\S+)", e.get("detail", ""))
            need(m is not None, "ftrace_snapshot action names no file: %r" % e.get("detail"))
            need(sizes.get(m.group(1), 0) > 0, "snapshot %s is missing or empty in the guest (%s)" % (m.group(1), sizes))
            notes += "; snapshot %s: %d bytes" % (os.path.basename(m.group(1)), sizes[m.group(1)])
    if s in ("oom", "oom-memcg"):
        # The OOM killer's SIGKILL (generated in the allocating task's
        # context) is part of the kill: one event per incident.
        dup = [e for e in events if e.get("kind") == "signal_death" and e.get("pid") == int(f.get("pid", -1))]
        need(not dup, "watchdog run reported the OOM victim's SIGKILL as a second incident: %s" % dup)
    if s == "psi":
        # Issue 15: the pressure comes before the OOM kill.
        kinds = [e.get("kind") for e in events]
        first_p = kinds.index("pressure")
        first_k = kinds.index("oom_kill")
        need(first_p < first_k, "the pressure event came after the OOM kill: %s" % kinds)
        p = events[first_p]
        notes += "; pressure (memory full, avg10 %s) before the OOM kill" % p.get("avg10")
    if s in ("hung-task", "frozen-evidence"):
        # The kernel's own clock: from the hung-task warning to the SysRq-T
        # header that run's action produced. Issue: within one second.
        recs = []
        for line in text(res, name, "kmsg").splitlines():
            m = re.match(r"^\d+,(\d+),(\d+),[^;]*;(.*)$", line)
            if m:
                recs.append((int(m.group(1)), int(m.group(2)), m.group(3)))
        warn = [r for r in recs if "INFO: task %s:%s blocked" % (f.get("comm"), f.get("pid")) in r[2]]
        need(warn, "no hung-task record in %s.kmsg" % name)
        dump = [r for r in recs if r[0] > warn[0][0] and "sysrq: Show State" in r[2]]
        need(dump, "no SysRq-T header after the hung-task record")
        latency = (dump[0][1] - warn[0][1]) / 1e6
        need(latency < 1.0, "SysRq-T came %.3f s after the hung-task warning (limit 1 s)" % latency)
        notes += "; hung-task warning -> SysRq-T in %.0f ms (kernel clock)" % (latency * 1000)
    notes += incident_check(res, s, f, name, events, stacks)
    return "; run: %d event(s), the expected ones among them%s" % (len(events), notes)


def incident_check(res, s, f, name, events, stacks=True):
    """The incident bundle `run` left: the SysRq answer in kmsg.txt, the hung
    task with its kernel stack, the largest processes at an OOM kill.
    stacks=False (under the systemd unit): /proc/PID/stack of a task with
    more capabilities than the daemon needs CAP_SYS_PTRACE, which the unit
    does not grant; the bundle must say so instead."""
    kind = {"hung-task": "hung_task", "frozen-evidence": "hung_task",
            "oom": "oom_kill", "oom-memcg": "oom_kill"}.get(s)
    if kind is None:
        return ""
    bundles = []
    i = 0
    while "%s.incident%d.manifest.json" % (name, i) in res.files:
        m = json.loads(res.files["%s.incident%d.manifest.json" % (name, i)])
        kmsg = res.files.get("%s.incident%d.kmsg.txt" % (name, i), b"").decode("utf-8", "replace")
        bundles.append((i, m, kmsg))
        i += 1
    mine = [b for b in bundles if b[1].get("kind") == kind]
    need(mine, "no %s incident bundle (bundles: %s)" % (kind, [b[1].get("kind") for b in bundles]))
    i, m, kmsg = mine[0]
    ev = [e for e in events if e.get("kind") == kind]
    need(ev and ev[0].get("incident") == m.get("id"),
         "the %s event names incident %r, the bundle is %r" % (kind, ev[0].get("incident") if ev else None, m.get("id")))
    need(m.get("closed"), "the bundle was not closed")
    if kind == "hung_task":
        need("INFO: task %s:%s blocked" % (f.get("comm"), f.get("pid")) in kmsg, "kmsg.txt lacks the hung-task report")
        need("sysrq: Show State" in kmsg, "kmsg.txt lacks the SysRq-T dump")
        need("task:%s" % f.get("comm") in kmsg, "kmsg.txt lacks the hung task in the dump")
        if s == "frozen-evidence":
            # The bundle could only be written once the filesystem thawed,
            # and its /proc copies were taken then (docs/run.md says so).
            return "; bundle %s (written after the thaw): SysRq-T dump (%d lines)" % (
                m.get("name"), kmsg.count("\n"))
        tasks = [t for t in m.get("blocked_tasks", []) if t.get("comm") == f.get("comm")]
        need(tasks, "the D-state task list lacks %s: %s" % (f.get("comm"), m.get("blocked_tasks")))
        if not stacks:
            want = "proc/%s/task/%s/stack" % (tasks[0]["pid"], tasks[0]["pid"])
            why = [n.get("reason") for n in m.get("not_collected", []) if n.get("what") == want]
            need(why == ["permission denied"], "the bundle's not_collected says %r for %s" % (why, want))
            return "; bundle %s: SysRq-T dump (%d lines) with %s's stack; its /proc stack not collected (%s: no CAP_SYS_PTRACE in the unit)" % (
                m.get("name"), kmsg.count("\n"), f.get("comm"), why[0])
        stack = res.files.get("%s.incident%d.stack.%s" % (name, i, tasks[0]["pid"]), b"").decode()
        need("[<0>]" in stack, "no kernel stack for %s (pid %s): %r" % (f.get("comm"), tasks[0]["pid"], stack[:200]))
        return "; bundle %s: SysRq-T dump (%d lines), %s in D state with a %d-frame stack" % (
            m.get("name"), kmsg.count("\n"), f.get("comm"), stack.count("\n"))
    need("sysrq: Show Memory" in kmsg, "kmsg.txt lacks the SysRq-m memory report")
    procs = m.get("largest_processes", [])
    need(procs, "the bundle lists no largest processes")
    return "; bundle %s: SysRq-m report, %d largest processes (top: %s %s kB)" % (
        m.get("name"), len(procs), procs[0].get("comm"), procs[0].get("rss_kb"))


# --- recording fixtures ----------------------------------------------------


def qemu_for_header(k, res):
    """The QEMU command with paths relative to the checkout."""
    out = []
    for a in res.qemu:
        if a.startswith("file:"):
            a = "file:" + os.path.basename(a[5:])
        elif a.startswith(REPO + "/"):
            a = os.path.relpath(a, REPO)
        out.append(a)
    return shlex.join(out)


def header(k, res, scenario, fmt, f):
    lines = [
        "Real kernel text recorded by tests/vm/record.sh (do not edit; regenerate).",
        "Kernel: Debian package %s %s (release %s), booted under QEMU TCG." % (k.package, k.version, k.release),
        "QEMU: %s" % qemu_for_header(k, res),
        "Provoked: %s." % SCENARIOS[scenario][1],
        "Facts: %s" % " ".join("%s=%s" % kv for kv in sorted(f.items()) if kv[0] != "oom_kill"),
        "Format: %s" % fmt,
        "The lines 'wd-scenario: begin/end NAME' were written to /dev/kmsg by the test's /init.",
    ]
    return "".join("# " + l + "\n" for l in lines)


FORMATS = {
    "kmsg": "raw /dev/kmsg records as read() returned them (PRI,SEQ,TS_USEC,FLAGS[,...];text, dictionary lines start with a space), read until EAGAIN by wdhelper kmsg.",
    "dmesg": "busybox dmesg (klogctl READ_ALL, [seconds] text).",
    "trace": "the `trace` file of tracefs instance wdtest (signal events + kprobe wdtest/do_exit).",
}


def record(k, res, scenario, f, limit=300 * 1024):
    dest = os.path.join(FIXTURES, "kernel-logs", "real")
    os.makedirs(dest, exist_ok=True)
    name = scenario.replace("-", "_")
    written = []
    for ext in ["kmsg", "dmesg", "trace"]:
        raw = res.files.get("%s.%s" % (name, ext))
        if raw is None:
            continue
        body = raw.decode("utf-8", "replace")
        if len(body) > limit:
            # Keep the end: the scenario's events come last; the boot log
            # at the start is what gets cut.
            cut = body.find("\n", len(body) - limit) + 1
            body = body[cut:]
            fmt = FORMATS[ext] + " Trimmed to the last %d bytes." % len(body)
        else:
            fmt = FORMATS[ext]
        path = os.path.join(dest, "debian-%s-%s.%s" % (k.short, scenario, ext))
        with open(path, "w") as out:
            out.write(header(k, res, scenario, fmt, f))
            out.write(body)
        written.append(os.path.relpath(path, REPO))
    return written


def datagram_lines(sink):
    """JSON lines, one per datagram: t (s after the first), src_port, len,
    and data (the payload when it is UTF-8) or b64."""
    if not sink.datagrams:
        return
    t0 = sink.datagrams[0][0]
    for t, src, d in sink.datagrams:
        rec = {"t": round(t - t0, 6), "src_port": src[1], "len": len(d)}
        try:
            rec["data"] = d.decode("utf-8")
        except UnicodeDecodeError:
            rec["b64"] = base64.b64encode(d).decode()
        yield json.dumps(rec) + "\n"


def record_udp(k, res, f):
    dest = os.path.join(FIXTURES, "netconsole")
    os.makedirs(dest, exist_ok=True)
    written = []
    nc = res.netconsole
    if nc and nc.datagrams:
        path = os.path.join(dest, "debian-%s-extended.jsonl" % k.short)
        with open(path, "w") as out:
            for line in datagram_lines(nc):
                out.write(line)
        written.append(os.path.relpath(path, REPO))
    ser = res.serial_udp
    if ser and ser.datagrams:
        path = os.path.join(dest, "debian-%s-serial-udp.bin" % k.short)
        with open(path, "wb") as out:
            out.write(bytes(ser.stream))
        sizes = os.path.join(dest, "debian-%s-serial-udp.sizes" % k.short)
        with open(sizes, "w") as out:
            counts = {}
            for _, _, d in ser.datagrams:
                counts[len(d)] = counts.get(len(d), 0) + 1
            out.write("# datagram size -> count, for debian-%s-serial-udp.bin\n" % k.short)
            for size, n in sorted(counts.items()):
                out.write("%d %d\n" % (size, n))
        written += [os.path.relpath(p, REPO) for p in (path, sizes)]
    meta = os.path.join(dest, "debian-%s.meta" % k.short)
    seqs = sorted({int(NC_HEADER.match(d).group(2)) for _, _, d in nc.datagrams})
    gaps = ["%d-%d" % (a + 1, b - 1) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    with open(meta, "w") as out:
        out.write(header(k, res, "netconsole", "see README.md in this directory.", f))
        out.write("# Extended netconsole: %d datagrams, sequence numbers %d..%d, missing (lost in the guest during the replay): %s\n"
                  % (len(nc.datagrams), seqs[0], seqs[-1], " ".join(gaps) or "none"))
        out.write("# Serial over UDP: %d datagrams, %d bytes\n" % (len(ser.datagrams), len(ser.stream)))
    written.append(os.path.relpath(meta, REPO))
    return written


# --- the driver -------------------------------------------------------------


def run_boot(k, b, outroot, do_record):
    res = boot(k, b, os.path.join(outroot, k.release, b.name))
    rows = []
    recorded = []
    if b.name == "hang":
        # The harness's own test: a guest that never finishes must be
        # killed at its deadline and reported, not waited for.
        ok = res.error.startswith("timed out") and "hang" not in res.marks
        detail = "the stuck guest was killed after %.1f s: %s" % (res.wall, res.error or "it was not")
        return res, [(k.short, b.name, "hang", ok, res.wall, detail)], recorded
    for s in b.scenarios:
        gname = GUEST_NAME.get(s, s).replace("-", "_")
        mark = res.marks.get(GUEST_NAME.get(s, s))
        secs = (mark[1] - mark[0]) if mark else None
        out = res.files.get(gname + ".out", b"").decode("utf-8", "replace")
        f = facts(out)
        try:
            need(res.ok or mark is not None, res.error)
            rc = res.files.get(gname + ".rc", b"?").decode().strip()
            need(rc == "0", "guest scenario exited %s:\n%s" % (rc, out))
            detail = SCENARIOS[s][0](res, out, f)
            # The kernel did what was asked: the recording is good whatever
            # watchdog makes of it below.
            if do_record and s in RECORDED:
                recorded += record(k, res, s, f)
            if do_record and s == "netconsole":
                recorded += record_udp(k, res, f)
            detail += run_check(res, s, f)
            detail += scan_check(res, s, f, os.path.join(outroot, k.release, b.name))
            ok = True
        except Failed as e:
            ok, detail = False, str(e)
        rows.append((k.short, b.name, s, ok, secs, detail))
    return res, rows, recorded


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "prepare"])
    ap.add_argument("--kernel", action="append", help="only kernels whose release starts with this (6.1, 6.12)")
    ap.add_argument("--only", help="only the boots holding these scenarios (comma-separated)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="guests at once (default 1)")
    ap.add_argument("--record", action="store_true", help="write fixtures under tests/fixtures/")
    ap.add_argument("--bzimage", action="store_true", help="boot the compressed bzImage, not the extracted vmlinux")
    ap.add_argument("--out", default=os.path.join(CACHE, "results"), help="where consoles and outputs go")
    args = ap.parse_args()

    for tool in ["qemu-system-x86_64", "cpio", "depmod", "gcc", "musl-gcc", "xz", "mkfs.ext4", "busybox"]:
        if not shutil.which(tool):
            sys.exit("vm: %s not found (apt-get install qemu-system-x86 busybox-static cpio kmod gcc libc6-dev musl-tools xz-utils e2fsprogs)" % tool)
    ks = kernels()
    if args.kernel:
        ks = [k for k in ks if any(k.release == p or k.release.startswith(p + ".") or k.short == p for p in args.kernel)]
    if not ks:
        sys.exit("vm: no kernels in %s: run tests/vm/fetch.sh" % os.path.relpath(CACHE, REPO))
    boots = BOOTS
    if args.only:
        names = set(args.only.split(","))
        boots = [b for b in BOOTS + EXTRA_BOOTS if names & set(b.scenarios) or b.name in names]

    if args.record:
        RECORDING.append(True)
    t_start = time.monotonic()
    wd, helper = host_binaries()
    WD_BIN.append(os.environ.get("WD_VM_BIN", wd))
    for k in ks:
        t = time.monotonic()
        prepare(k, wd, helper, want_vmlinux=not args.bzimage)
        log("prepared %s (%s %s): boots %s, initramfs %d KiB, %.1f s" % (
            k.release, k.package, k.version, os.path.basename(k.image),
            os.path.getsize(k.initramfs) // 1024, time.monotonic() - t))
    if args.command == "prepare":
        return 0

    jobs = [(k, b) for k in ks for b in boots if not b.kernels or k.short in b.kernels]
    if any(b.systemd for _, b in jobs):
        t = time.monotonic()
        image, deb = systemd_common()
        SYSTEMD_IMAGE.append(image)
        for k in {k for k, b in jobs if b.systemd}:
            prepare_systemd(k, helper, deb)
        log("prepared the systemd boot: %s, %s, %.1f s" % (
            os.path.relpath(image, REPO), os.path.basename(deb), time.monotonic() - t))
    all_rows, recorded, boot_times = [], [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = {ex.submit(run_boot, k, b, args.out, args.record): (k, b) for k, b in jobs}
        for fut in concurrent.futures.as_completed(futs):
            k, b = futs[fut]
            res, rows, rec = fut.result()
            recorded += rec
            all_rows += rows
            boot_times.append((k.short, b.name, res.init_at, res.wall))
            state = "ok" if res.ok else "FAILED: " + res.error
            log("boot %-5s %-11s /init at %5s s, total %5.1f s  %s" % (
                k.short, b.name, "%.1f" % res.init_at if res.init_at is not None else "-", res.wall, state))
            for r in rows:
                if not r[3]:
                    log("    %s: %s" % (r[2], r[5]))

    total = time.monotonic() - t_start
    log("")
    log("%-6s %-15s %-6s %7s  %s" % ("kernel", "scenario", "result", "secs", "detail"))
    order = {b.name: i for i, b in enumerate(BOOTS + EXTRA_BOOTS)}
    failed = 0
    for kshort, bname, s, ok, secs, detail in sorted(all_rows, key=lambda r: (r[0], order[r[1]])):
        failed += not ok
        log("%-6s %-15s %-6s %7s  %s" % (kshort, s, "pass" if ok else "FAIL",
                                        "%.1f" % secs if secs is not None else "-", detail.splitlines()[0] if detail else ""))
    for kshort in sorted({r[0] for r in boot_times}):
        walls = [w for ks_, _, _, w in boot_times if ks_ == kshort]
        inits = [i for ks_, _, i, _ in boot_times if ks_ == kshort and i is not None]
        log("kernel %s: %d boots, /init reached after %.1f s on average, %.1f s of guest time" % (
            kshort, len(walls), sum(inits) / max(1, len(inits)), sum(walls)))
    if recorded:
        log("recorded:")
        for p in sorted(recorded):
            log("  " + p)
    log("%d scenario(s), %d failed, %.1f s in all (outputs in %s)" % (
        len(all_rows), failed, total, os.path.relpath(args.out, REPO)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
