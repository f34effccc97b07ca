#!/bin/bash
# Benchmark of `watchdog udplogger` against socat and rsyslog's imudp, side
# by side in one run, over loopback only (127.0.0.1).
#
# For each receiver: a SysRq-T-shaped burst (20 senders x 5,000 lines, ~10
# lines per datagram, as fast as possible), the same burst with lines cut
# across datagrams (assembly), then sustained rates. Reports lines sent,
# lines found intact on disk, loss, receiver CPU seconds per million lines
# and peak RSS. Needs root for apt-get and SO_RCVBUFFORCE; takes about a
# minute. Usage: [KEEP=1] [TOOLS="watchdog watchdog-fwd"] bench/udplogger.sh
# [RATE ...] (default rates: 1000000 1600000). CPU is read from
# /proc/PID/task/*/schedstat (all threads, the forward thread included).
# `watchdog-fwd` is watchdog udplogger forwarding every line to one TCP
# target (a socat sink on loopback that discards what it reads); its stop
# summary (messages sent and dropped for the target) is printed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
RATES=("${@:-1000000 1600000}")
# shellcheck disable=SC2206
RATES=(${RATES[*]})
SUSTAIN_SECS=2
PORT=16661

# shellcheck disable=SC2206
TOOLS=(${TOOLS:-watchdog watchdog-fwd socat rsyslog})
need() { command -v "$1" >/dev/null 2>&1; }
if ! need socat || ! need rsyslogd; then
    apt-get install -y socat rsyslog >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y socat rsyslog >/dev/null; }
fi
# A system rsyslog must not be started by the package: we run our own.
if need systemctl; then systemctl stop rsyslog 2>/dev/null || true; fi

cargo build --release --quiet --bin watchdog --example udpload
BIN=${CARGO_TARGET_DIR:-target}/release/watchdog
LOAD=${CARGO_TARGET_DIR:-target}/release/examples/udpload
WORK=$(mktemp -d /tmp/udplogger-bench.XXXXXX)
# KEEP=1 keeps the receivers' files for a look afterwards.
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"' EXIT

# CPU time of all the receiver's threads in ns (schedstat: exact, where
# /proc/PID/stat counts 10 ms ticks).
# %.0f, not %d: mawk (Debian's awk) clamps %d at 2^31 - 1, so past 2.1 s
# of CPU every reading was the same and a row printed 0.000.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }
rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

start_receiver() { # tool -> sets RPID, FILES
    local tool=$1 dir=$WORK/$1
    mkdir -p "$dir"
    case $tool in
    watchdog)
        "$BIN" udplogger --listen "127.0.0.1:$PORT" --dir "$dir/logs" --utc 2>"$dir/stderr" &
        RPID=$!
        FILES="$dir/logs"
        ;;
    watchdog-fwd)
        socat -u "TCP-LISTEN:$((PORT + 100)),bind=127.0.0.1,reuseaddr" OPEN:/dev/null 2>"$dir/sink.stderr" &
        sleep 0.3
        "$BIN" udplogger --listen "127.0.0.1:$PORT" --dir "$dir/logs" --utc \
            --forward "syslog+tcp://127.0.0.1:$((PORT + 100))" 2>"$dir/stderr" &
        RPID=$!
        FILES="$dir/logs"
        ;;
    socat)
        socat -u -b 65536 "UDP-RECV:$PORT,bind=127.0.0.1,rcvbuf=8388608" \
            "OPEN:$dir/socat.log,creat,append" 2>"$dir/stderr" &
        RPID=$!
        FILES="$dir"
        ;;
    rsyslog)
        mkdir -p "$dir/spool"
        cat >"$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/spool" maxMessageSize="64k")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="$PORT" rcvbufSize="8m")
template(name="raw" type="string" string="%fromhost-ip% %rawmsg%\n")
action(type="omfile" file="$dir/out/rsyslog.log" template="raw")
CONF
        mkdir -p "$dir/out"
        rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid" 2>"$dir/stderr" &
        RPID=$!
        FILES="$dir/out"
        ;;
    esac
    sleep 0.7
}

ROWS=()
row() { ROWS+=("$(printf '%-9s %-22s %9s %9s %7s %10s %8s %9s' "$@")"); }

scenario() { # tool name args... : runs one load, measures the receiver
    local tool=$1 name=$2
    shift 2
    local tag="$tool-$name" before after out sent rate
    before=$(cpu_ns "$RPID")
    out=$("$LOAD" send --target "127.0.0.1:$PORT" --tag "$tag" "$@")
    sleep 1 # let the receiver finish draining before CPU is read
    after=$(cpu_ns "$RPID")
    sent=$(awk '/^SENT/ {print $2}' <<<"$out")
    grep -q ' 0 send errors' <<<"$out" || echo "$tool $name: $(head -1 <<<"$out")" >&2
    rate=$(grep -o '([0-9]* lines/s)' <<<"$out" | tr -dc 0-9)
    SC_NAMES+=("$name")
    SC_TAGS+=("$tag")
    SC_SENT+=("$sent")
    SC_RATE+=("$rate")
    SC_CPU+=("$((after - before))")
}

for tool in "${TOOLS[@]}"; do
    SC_NAMES=() SC_TAGS=() SC_SENT=() SC_RATE=() SC_CPU=()
    start_receiver "$tool"
    scenario "$tool" "burst 20x5000" --senders 20 --lines 5000 --per-datagram 10
    scenario "$tool" "burst split (assembly)" --senders 20 --lines 5000 --per-datagram 10 --split 937
    for r in "${RATES[@]}"; do
        n=$((r * SUSTAIN_SECS / 20))
        scenario "$tool" "sustained $((r / 1000))k/s" --senders 20 --lines "$n" --rate "$r" --seconds "$((SUSTAIN_SECS + 2))"
    done
    rss=$(rss_kb "$RPID")
    kill -TERM "$RPID"
    wait "$RPID" 2>/dev/null || true
    PORT=$((PORT + 1))
    for i in "${!SC_TAGS[@]}"; do
        found=$("$LOAD" check --tag "${SC_TAGS[$i]}" $(find "$FILES" -type f) | awk '{print $2}')
        sent=${SC_SENT[$i]}
        loss=$(awk -v s="$sent" -v f="$found" 'BEGIN {printf "%.2f", s ? 100 * (s - f) / s : 0}')
        cpu=$(awk -v t="${SC_CPU[$i]}" -v s="$sent" 'BEGIN {printf "%.3f", s ? t / 1e9 / (s / 1e6) : 0}')
        row "$tool" "${SC_NAMES[$i]}" "$sent" "$found" "$loss" "$cpu" "$rss" "${SC_RATE[$i]}"
    done
done

echo
echo "watchdog udplogger vs socat vs rsyslog imudp, loopback, $(nproc) CPUs, $(uname -r)"
printf '%-9s %-22s %9s %9s %7s %10s %8s %9s\n' tool scenario sent on-disk loss% "cpu-s/M" "rss-kB" "sent/s"
printf '%s\n' "${ROWS[@]}"
echo
for w in watchdog watchdog-fwd; do
    [ -f "$WORK/$w/stderr" ] || continue
    grep -h "receive buffer\|stopped\|forward to" "$WORK/$w/stderr" || true
    grep -h "kernel_drop" "$WORK/$w"/logs/*.log | head -5 || true
done
