#!/bin/bash
# `watchdog udplogger` alone, side by side in one run: plain and extended
# traffic, 1 and 2 workers, detection on and off. For each combination a
# ladder of sustained rates (20 senders, loopback only, the sendmmsg load
# generator examples/udpload.rs); per rate the receiver is started afresh,
# fed for SECS seconds, stopped, and its files checked line by line.
#
# Beside them, the floor: udplogger's receive loop with nothing behind it
# (`udpload sink`: the same socket, poll, recvmmsg batches and pause; it
# only counts), fed the same way. Its CPU is what the socket interface
# alone costs on this machine, before a receiver does anything.
#
# Reports per combination: the highest rate the generator ACHIEVED (not
# the one asked for) at which nothing was lost, the receiver's CPU seconds
# per million lines at that rate (all threads, /proc/PID/task/*/schedstat),
# its peak RSS (VmHWM), and its RSS after 1 s idle. Each rate is run
# REPEAT times (default 3): a rate counts as lossless only if every run
# lost nothing, and the CPU, the achieved rate and the kernel's share of
# the CPU (system time / all time, from /proc/PID/stat) are the runs'
# medians, as one run on a shared machine moves by a third. The top rate
# of each ladder asks for more than the generator can send on the
# 2-vCPU development machine (it achieved 1.8-2.3M plain lines and
# 0.34-0.60M extended records a second there on 2026-11-30, sharing the
# cores with the receiver): there
# the achieved rate is the generator's ceiling, and a receiver that loses
# nothing at it was never the limit. Takes about 17 minutes. Run it
# under the shared lock:
#   flock /tmp/vm.lock bench/udplogger-matrix.sh
# Usage: [SECS=2] [REPEAT=3] [PLAIN_RATES="..."] [EXT_RATES="..."] [BIN=...] bench/udplogger-matrix.sh
set -euo pipefail

cd "$(dirname "$0")/.."
SECS=${SECS:-2}
REPEAT=${REPEAT:-3}
# shellcheck disable=SC2206
PLAIN_RATES=(${PLAIN_RATES:-250000 500000 1000000 1500000 2500000})
# shellcheck disable=SC2206
EXT_RATES=(${EXT_RATES:-50000 100000 200000 400000 800000})
PORT=17661

# The binary users run: the static musl build (its libc, its memcpy).
# BIN=path measures another build.
if [ -z "${BIN:-}" ]; then
    scripts/build-static.sh >/dev/null
    BIN=target/x86_64-unknown-linux-musl/release/watchdog
fi
cargo build --release --quiet --example udpload
LOAD=target/release/examples/udpload
WORK=$(mktemp -d /tmp/udplogger-matrix.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# %.0f, not %d: mawk (Debian's awk) clamps %d at 2^31 - 1, so past 2.1 s
# of CPU every reading was the same and a row printed 0.000.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }
# user and system clock ticks of the whole process (all threads)
ticks() { awk '{print $14, $15}' /proc/"$1"/stat; }
# the median of numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# One run: format workers detect rate -> "achieved sent found cpu_ns hwm_kb idle_kb sys_pct"
one() {
    local format=$1 workers=$2 detect=$3 rate=$4
    local dir=$WORK/$format-$workers-$detect-$rate
    mkdir -p "$dir"
    local extra=()
    [ "$detect" = off ] && extra+=(--no-detect)
    if [ "$detect" = floor ]; then
        "$LOAD" sink --listen "127.0.0.1:$PORT" --seconds "$((SECS + 5))" >"$dir/sink" &
    else
        "$BIN" udplogger --listen "127.0.0.1:$PORT" --dir "$dir/logs" --utc --workers "$workers" \
            "${extra[@]}" 2>"$dir/stderr" &
    fi
    local rpid=$!
    sleep 1
    local idle before after out sent achieved hwm found
    idle=$(kb "$rpid" VmRSS)
    before=$(cpu_ns "$rpid")
    local u0 s0 u1 s1
    read -r u0 s0 < <(ticks "$rpid")
    local per=10 args=()
    if [ "$format" = extended ]; then
        per=1
        args+=(--extended)
    fi
    local n=$((rate * SECS / 20 + 1))
    out=$("$LOAD" send --target "127.0.0.1:$PORT" --tag m --senders 20 --lines "$n" \
        --per-datagram "$per" --rate "$rate" --seconds "$((SECS + 2))" "${args[@]}")
    sleep 1 # let the receiver drain before its CPU is read
    after=$(cpu_ns "$rpid")
    read -r u1 s1 < <(ticks "$rpid")
    hwm=$(kb "$rpid" VmHWM)
    sent=$(awk '/^SENT/ {print $2}' <<<"$out")
    achieved=$(awk '/^RATE/ {print $2}' <<<"$out")
    if [ "$detect" = floor ]; then
        # It stops by itself. It counts newlines (plain lines) and
        # datagrams (extended records); it does not check them.
        wait "$rpid" 2>/dev/null || true
        if [ "$format" = extended ]; then
            found=$(awk '/^DATAGRAMS/ {print $2}' "$dir/sink")
        else
            found=$(awk '/^DATAGRAMS/ {print $6}' "$dir/sink")
        fi
    else
        kill -TERM "$rpid"
        wait "$rpid" 2>/dev/null || true
        found=$("$LOAD" check --tag m $(find "$dir/logs" -type f) | awk '{print $2}')
    fi
    PORT=$((PORT + 1))
    rm -rf "$dir/logs"
    local sys_pct
    sys_pct=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) 'BEGIN {printf "%d", (u + s) ? 100 * s / (u + s) : 0}')
    echo "$achieved $sent $found $((after - before)) $hwm $idle $sys_pct"
}

ROWS=()
ALL=()
for format in plain extended; do
    if [ "$format" = plain ]; then rates=("${PLAIN_RATES[@]}"); else rates=("${EXT_RATES[@]}"); fi
    for combo in "1 on" "1 off" "2 on" "2 off" "1 floor"; do
        read -r workers detect <<<"$combo"
        best="-" best_cpu="-" best_sys="-" peak=0 idle=0
        for r in "${rates[@]}"; do
            cpus=() rates_got=() syss=() idles=() lost_any=0
            for k in $(seq "$REPEAT"); do
                read -r achieved sent found cpu hwm idl sys < <(one "$format" "$workers" "$detect" "$r")
                lost=$((sent - found))
                cpu_m=$(awk -v t="$cpu" -v s="$sent" 'BEGIN {printf "%.3f", s ? t / 1e9 / (s / 1e6) : 0}')
                ALL+=("$(printf '%-9s %7s %6s %9s %3s %9s %9s %8s %8s %5s %8s' "$format" "$workers" "$detect" "$r" "$k" "$achieved" "$sent" "$lost" "$cpu_m" "$sys" "$hwm")")
                [ "$hwm" -gt "$peak" ] && peak=$hwm
                [ "$lost" -ne 0 ] && lost_any=1
                cpus+=("$cpu_m") rates_got+=("$achieved") syss+=("$sys") idles+=("$idl")
            done
            idle=$(median "${idles[@]}")
            if [ "$lost_any" -eq 0 ]; then
                best=$(median "${rates_got[@]}")
                best_cpu=$(median "${cpus[@]}")
                best_sys=$(median "${syss[@]}")
            fi
        done
        ROWS+=("$(printf '%-9s %7s %6s %14s %10s %8s %12s %12s' "$format" "$workers" "$detect" "$best" "$best_cpu" "$best_sys" "$peak" "$idle")")
    done
done

echo
echo "watchdog udplogger ($BIN: $(file -b "$BIN" | cut -d, -f1-2)), loopback, 20 senders, $(nproc) CPUs, $(uname -r), $(date -u +%FT%TZ)"
echo "plain: 10 lines of 90 bytes a datagram; extended: one record a datagram; ${SECS} s a rate, ${REPEAT} runs each"
echo "detect: on or off; floor: the receive loop alone (udpload sink), what any receiver reading this way pays"
echo
echo "every run (rate asked, run, rate the generator achieved, lines sent, lost, CPU s / M lines, kernel's % of it, peak RSS kB):"
printf '%-9s %7s %6s %9s %3s %9s %9s %8s %8s %5s %8s\n' format workers detect asked run achieved sent lost cpu-s/M sys% rss-kB
printf '%s\n' "${ALL[@]}"
echo
echo "summary (highest rate with no loss in any run, medians there: achieved rate, CPU s / M lines, kernel's % of it; peak and idle RSS kB):"
printf '%-9s %7s %6s %14s %10s %8s %12s %12s\n' format workers detect zero-loss/s cpu-s/M sys% peak-rss-kB idle-rss-kB
printf '%s\n' "${ROWS[@]}"
