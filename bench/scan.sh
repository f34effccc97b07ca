#!/usr/bin/env bash
# Throughput of `watchdog scan` (release build) on a large generated log:
# ordinary kernel lines with an incident (hung task, OOM report with task
# table, segfault, soft lockup, oops, warning, ext4 error, I/O errors,
# NETDEV WATCHDOG, MCE) every ~2,000 lines, in dmesg framing and in syslog
# framing. Prints MB/s for each, and beside it, on the same file,
# `LC_ALL=C grep -cE` with node-problem-detector's kernel-monitor
# patterns (config/kernel-monitor.json: what its default kernel monitor
# looks for) and the ratio. Not a test: no thresholds. Run it holding
# /tmp/vm.lock on shared machines (flock /tmp/vm.lock bench/scan.sh).
#
#   bench/scan.sh [SIZE_MB]     (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# WATCHDOG_BIN: a release binary already built (the VM suite's static
# musl build will do); else this builds one.
if [ -n "${WATCHDOG_BIN:-}" ]; then
    bin=$WATCHDOG_BIN
else
    cargo build --release --quiet
    bin=target/release/watchdog
fi

gen() { # $1 = dmesg|syslog
    python3 - "$1" "$size_mb" <<'PY'
import sys
fmt, size = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
normal = [
    "EXT4-fs (dm-0): mounted filesystem with ordered data mode. Opts: (null)",
    "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "audit: type=1400 audit(1700000000.123:456): apparmor=\"STATUS\" operation=\"profile_load\" name=\"/usr/bin/man\" pid=812 comm=\"apparmor_parser\"",
    "usb 1-1: new high-speed USB device number 2 using xhci_hcd",
    "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
    "systemd-journald[312]: Received client request to flush runtime journal.",
    "nf_conntrack: default automatic helper assignment has been turned off for security reasons",
    "sd 0:0:0:0: [sda] 976773168 512-byte logical blocks: (500 GB/466 GiB)",
]
incident = [
    "INFO: task kworker/u8:2:1234 blocked for more than 120 seconds.",
    "      Not tainted 5.14.0-362.el9.x86_64 #1",
    "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
    "task:kworker/u8:2    state:D stack:0     pid:1234  ppid:2      flags:0x00004000",
    "Call Trace:",
    " __schedule+0x21b/0x550",
    "java invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
    "CPU: 1 PID: 4242 Comm: java Not tainted 5.14.0-362.el9.x86_64 #1",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
] + ["[  %5d]  1000  %5d   500000   400000  3300000        0             0 java" % (p, p) for p in range(4000, 4040)] + [
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=java,pid=4020,uid=1000",
    "Out of memory: Killed process 4020 (java) total-vm:2000000kB, anon-rss:1600000kB, file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:3222kB oom_score_adj:0",
    "a.out[9999]: segfault at 0 ip 000000000040052d sp 00007ffd2f3e4a50 error 6 in a.out[400000+1000]",
    "watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:150]",
    "BUG: kernel NULL pointer dereference, address: 0000000000000010",
    "Oops: 0000 [#1] SMP PTI",
    "---[ end trace 0000000000000000 ]---",
    "------------[ cut here ]------------",
    "WARNING: CPU: 2 PID: 0 at net/core/dev.c:3214 skb_warn_bad_offload+0x88/0x110",
    "CPU: 2 PID: 0 Comm: swapper/2 Not tainted 5.14.0-362.el9.x86_64 #1",
    "RIP: 0010:skb_warn_bad_offload+0x88/0x110",
    "Call Trace:",
    " <IRQ>",
    " __skb_gso_segment+0x13f/0x150",
    " validate_xmit_skb+0x12e/0x2f0",
    "---[ end trace 7c3e0a2c1d52f87b ]---",
    "EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
    "EXT4-fs (sdb1): Remounting filesystem read-only",
    "blk_update_request: I/O error, dev sdb, sector 9437184 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 0",
    "Buffer I/O error on dev sdb1, logical block 1179392, async page read",
    "e1000e 0000:00:1f.6 eno1: NETDEV WATCHDOG: CPU: 2: transmit queue 0 timed out 5120 ms",
    "mce: [Hardware Error]: Machine check events logged",
]
out = sys.stdout
written, t, i = 0, 0.0, 0
while written < size:
    block = [normal[(i + k) % len(normal)] for k in range(2000)] + incident
    lines = []
    for text in block:
        t += 0.000137
        if fmt == "dmesg":
            lines.append("[%12.6f] %s\n" % (t, text))
        else:
            lines.append("Nov 22 03:%02d:%02d db1 kernel: %s\n" % (int(t / 60) % 60, int(t) % 60, text))
    s = "".join(lines)
    out.write(s)
    written += len(s)
    i += 1
PY
}

# node-problem-detector's kernel-monitor.json rules as POSIX ERE (its
# \d is [0-9] here; GNU grep knows \w).
cat > "$work/npd.txt" <<'NPD'
Killed process [0-9]+ (.+) total-vm:[0-9]+kB, anon-rss:[0-9]+kB, file-rss:[0-9]+kB.*
task .+:\w+ blocked for more than \w+ seconds\.
unregister_netdevice: waiting for \w+ to become free. Usage count = [0-9]+
BUG: unable to handle kernel NULL pointer dereference at .*
divide error: 0000 \[#[0-9]+\] SMP
EXT4-fs error .*
EXT4-fs warning .*
Buffer I/O error .*
XFS .* Shutting down filesystem.?
CE memory read error .*
task docker:\w+ blocked for more than \w+ seconds\.
Remounting filesystem read-only
NPD

secs() { # wall time of "$@" in seconds; its output goes to $work/out
    local start end
    start=$(date +%s.%N)
    "$@" > "$work/out" || true
    end=$(date +%s.%N)
    python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$end"
}

for fmt in dmesg syslog; do
    gen "$fmt" > "$work/$fmt.log"
    bytes=$(stat -c %s "$work/$fmt.log")
    # Read once unmeasured, so that both read from the page cache.
    cat "$work/$fmt.log" > /dev/null
    t_scan=$(secs "$bin" scan "$work/$fmt.log")
    events=$(wc -l < "$work/out")
    t_grep=$(secs env LC_ALL=C grep -cE -f "$work/npd.txt" "$work/$fmt.log")
    lines=$(cat "$work/out")
    python3 -c "
import sys
b, ts, tg = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print('%-6s %6.1f MB: scan %5.2f s (%6.1f MB/s, %s events) | LC_ALL=C grep -cE (NPD patterns) %5.2f s (%6.1f MB/s, %s lines) | scan/grep throughput %.2f'
      % (sys.argv[4], b / 1e6, ts, b / 1e6 / ts, sys.argv[5], tg, b / 1e6 / tg, sys.argv[6], tg / ts))
" "$bytes" "$t_scan" "$t_grep" "$fmt" "$events" "$lines"
done
