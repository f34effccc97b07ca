#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a bounded
# time each, one after the other, in one process each (no -jobs/-fork:
# the machines this runs on are small and shared).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 s, every target
#
# Needs the nightly toolchain (cargo +nightly); installs cargo-fuzz from
# crates.io when it is missing. Seeds each corpus from the test fixtures
# (fuzz/seed-corpus.py), builds with debug assertions (integer overflow
# panics, as in a debug build), then prints per target the executions,
# the corpus size and the findings. A finding (crash, panic, leak,
# timeout, out-of-memory) is saved under fuzz/artifacts/TARGET/; reproduce
# it with `cargo +nightly fuzz run -a TARGET fuzz/artifacts/TARGET/FILE`.
# Exits 1 when any target found something, 2 when it could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

# Asked, not installed: `cargo +nightly` alone may fetch a toolchain.
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if command -v python3 >/dev/null; then
    python3 fuzz/seed-corpus.py fuzz/corpus
else
    echo "fuzz: no python3: corpora are not seeded from the fixtures" >&2
fi

# -a: debug assertions (overflow checks) in an optimised build.
cargo +nightly fuzz build -O -a
bin=fuzz/target/x86_64-unknown-linux-gnu/release
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Scratch space, on a tmpfs when there is one: the udplogger_receiver
# target writes and reads back its log files for every input.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    scratch=$(mktemp -d -p /dev/shm watchdog-fuzz.XXXXXX)
else
    scratch=$(mktemp -d)
fi
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
logs=$scratch/logs
mkdir "$logs"
summary=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    echo "=== $t: ${secs} s"
    rc=0
    "$bin/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1536 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
        "fuzz/corpus/$t" >"$logs/$t" 2>&1 || rc=$?
    after=$(find "fuzz/artifacts/$t" -type f | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t" | tail -1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    found=$((after - before))
    if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then
        # Died without saving an input (e.g. killed): still a failure.
        found=1
    fi
    if [ "$found" -gt 0 ]; then
        failed=1
        # The panic and its message, the sanitizer's verdict, the input.
        grep -A2 -m3 ' panicked at ' "$logs/$t" || true
        grep -E '^(==[0-9]+==|SUMMARY|artifact_prefix)' "$logs/$t" | head -10 || true
    fi
    line=$(printf '%-22s %12s executions  %6s corpus  %s finding(s)' "$t" "${execs:-?}" "$corpus" "$found")
    echo "$line"
    summary+=("$line")
done

echo
echo "=== fuzz summary (${secs} s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "FINDINGS: see fuzz/artifacts/" >&2
    exit 1
fi
