#!/usr/bin/env python3
"""Benchmarks of `watchdog run` against a fixture root (a FIFO stands in for
/dev/kmsg, a plain file for /proc/sysrq-trigger). Prints a table; asserts
nothing. Measures:

  - latency from a hung-task kmsg record written to the moment `t` lands in
    sysrq-trigger (p50, p99 over --samples records);
  - idle RSS and idle wakeups (voluntary context switches over --idle-secs);
  - CPU time per 10,000 ordinary kmsg records (a --records burst).

Usage: bench/run.py [--idle-secs 60] [--samples 100] [--records 200000]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle-secs", type=float, default=60)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()

    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    binary = os.path.join(REPO, "target/release/watchdog")
    tmp = tempfile.mkdtemp(prefix="wd-bench-")
    root = os.path.join(tmp, "root")
    shutil.copytree(os.path.join(REPO, "tests/fixtures/well-tuned"), root)
    os.makedirs(os.path.join(root, "dev"))
    os.makedirs(os.path.join(root, "proc/sys/kernel/random"), exist_ok=True)
    with open(os.path.join(root, "proc/sys/kernel/random/boot_id"), "w") as f:
        f.write("bench-boot\n")
    kmsg = os.path.join(root, "dev/kmsg")
    os.mkfifo(kmsg)
    sysrq = os.path.join(root, "proc/sysrq-trigger")
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"""run:
  event_log: {tmp}/events.jsonl
  state_file: {tmp}/kmsg.state
  evidence_dir: {tmp}/evidence
  kmsg_start: replay
  mlockall: false
  kdump_check: {{at_start: false, interval_hours: 24}}
  rules:
    - {{name: dump, kind: hung_task, actions: [{{sysrq: t}}]}}
""")
    d = subprocess.Popen([binary, "run", "--root", root, "--config", cfg],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "stderr"), "w"))
    w = open(kmsg, "w", buffering=1)  # keeps the FIFO's writer side open
    seq = 0
    try:
        time.sleep(1.0)
        # Idle.
        st0 = proc_status(d.pid)
        time.sleep(a.idle_secs)
        st1 = proc_status(d.pid)
        idle_rss_kb = int(st1["VmRSS"].split()[0])
        wakeups = int(st1["voluntary_ctxt_switches"]) - int(st0["voluntary_ctxt_switches"])

        # Latency: one hung-task record at a time.
        lat = []
        for i in range(a.samples):
            seq += 1
            before = os.path.getsize(sysrq)
            t0 = time.perf_counter()
            w.write(f"3,{seq},{seq*1000},-;INFO: task bench {i}:{1000+i} blocked for more than 120 seconds.\n")
            deadline = t0 + 10
            while os.path.getsize(sysrq) == before:
                if time.perf_counter() > deadline:
                    sys.exit("no SysRq within 10 s")
                time.sleep(0.0002)
            lat.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.05)

        # Throughput: a burst of ordinary records.
        c0 = cpu_secs(d.pid)
        lines = []
        for i in range(a.records):
            seq += 1
            lines.append(f"6,{seq},{seq*1000},-;usb 1-1.{i % 7}: new high-speed USB device number {i % 127} using xhci_hcd\n")
        t0 = time.perf_counter()
        w.write("".join(lines))
        last = seq
        while True:
            try:
                with open(os.path.join(tmp, "kmsg.state")) as f:
                    if json.load(f)["seq"] >= last:
                        break
            except (OSError, ValueError):
                pass
            if time.perf_counter() - t0 > 120:
                sys.exit("burst not consumed within 120 s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        c1 = cpu_secs(d.pid)
        busy_rss_kb = int(proc_status(d.pid)["VmRSS"].split()[0])
    finally:
        w.close()
        d.terminate()
        d.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    rows = [
        ("kmsg record -> sysrq latency p50", f"{p(0.50):.1f} ms"),
        ("kmsg record -> sysrq latency p99", f"{p(0.99):.1f} ms"),
        ("idle RSS", f"{idle_rss_kb} KiB"),
        (f"idle wakeups (voluntary ctx switches / {a.idle_secs:.0f} s)", f"{wakeups} ({wakeups / a.idle_secs:.2f}/s)"),
        ("CPU per 10k kmsg records", f"{(c1 - c0) * 1000 * 10_000 / a.records:.1f} ms"),
        ("records/s consumed (burst)", f"{a.records / elapsed:,.0f}"),
        ("RSS after the burst", f"{busy_rss_kb} KiB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"watchdog run benchmark ({a.samples} latency samples, {a.records} records, release build)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
