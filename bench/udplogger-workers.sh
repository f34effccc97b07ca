#!/bin/bash
# How udplogger's parsing scales with its workers, without sockets: the
# workers of `watchdog udplogger` fed made-up datagrams (`udpload replay`,
# `watchdog::replay`), detection on, files written to a scratch
# directory. Each worker has its own receiver and 20 senders of LINES
# lines, fed in batches of 64 as `recvmmsg` hands them over, through
# either path a worker can take:
#   direct  the shared lock held for each batch, lines appended as they
#           come (what one worker does; what every worker did before
#           workers staged their output);
#   staged  parsed, reordered and searched without the lock, the batch
#           handed over under it (what several workers do).
# The socket's cost and a sender on the same cores, which hide this in
# bench/udplogger-matrix.sh on a small machine, are left out.
#
# Prints per format, path and worker count the medians of REPEAT runs
# (default 5): lines (records) per second of wall time, and CPU seconds
# (all threads) per million. Takes about a minute. Run it under the
# shared lock:
#   flock /tmp/vm.lock bench/udplogger-workers.sh
# Usage: [LINES=50000] [REPEAT=5] [WORKERS="1 2"] bench/udplogger-workers.sh
set -euo pipefail

cd "$(dirname "$0")/.."
LINES=${LINES:-50000}
REPEAT=${REPEAT:-5}
# shellcheck disable=SC2206
WORKERS=(${WORKERS:-1 2})
cargo build --release --quiet --example udpload
LOAD=target/release/examples/udpload
WORK=$(mktemp -d /tmp/udplogger-workers.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

printf '%s, %s CPUs, %s\n' "$(uname -r)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-9s %-7s %7s %14s %9s\n' format path workers "lines/s" "cpu-s/M"
for format in plain extended; do
    ext=()
    [ "$format" = extended ] && ext=(--extended)
    for path in direct staged; do
        st=()
        [ "$path" = staged ] && st=(--staged)
        for w in "${WORKERS[@]}"; do
            rates=() cpus=()
            for _ in $(seq "$REPEAT"); do
                rm -rf "${WORK:?}"/*
                read -r _ lines _ wall _ cpu < <("$LOAD" replay --workers "$w" --senders 20 \
                    --lines "$LINES" "${ext[@]}" "${st[@]}" --dir "$WORK")
                rates+=("$(awk -v n="$lines" -v t="$wall" 'BEGIN {printf "%.0f", n / t}')")
                cpus+=("$(awk -v n="$lines" -v c="$cpu" 'BEGIN {printf "%.3f", c / (n / 1e6)}')")
            done
            printf '%-9s %-7s %7s %14s %9s\n' "$format" "$path" "$w" \
                "$(median "${rates[@]}")" "$(median "${cpus[@]}")"
        done
    done
done
