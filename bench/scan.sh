#!/usr/bin/env bash
# Throughput of `watchdog scan` (release build) on a large generated log:
# ordinary kernel lines with an incident (hung task, OOM report with task
# table, segfault, soft lockup, oops) every ~2,000 lines, in dmesg framing
# and in syslog framing. Prints MB/s for each. Not a test: no thresholds.
#
#   bench/scan.sh [SIZE_MB]     (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
bin=target/release/watchdog

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

for fmt in dmesg syslog; do
    gen "$fmt" > "$work/$fmt.log"
    bytes=$(stat -c %s "$work/$fmt.log")
    start=$(date +%s.%N)
    events=$("$bin" scan "$work/$fmt.log" | wc -l)
    end=$(date +%s.%N)
    python3 -c "import sys; b,s,e,n=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]),sys.argv[5]; print('%-6s %7.1f MB in %6.2f s: %6.1f MB/s, %s events' % (sys.argv[4], b/1e6, e-s, b/1e6/(e-s), n))" \
        "$bytes" "$start" "$end" "$fmt" "$events"
done
