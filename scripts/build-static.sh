#!/usr/bin/env bash
# Builds the release binary for x86_64 musl and proves it is static: `file`
# must call it statically linked (or static-pie) and the ELF must have no
# program interpreter. Prints the path and size. Installs the musl target
# through rustup when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    rustup target add "$target"
fi
# ring (rustls's crypto) has C and assembly: musl-gcc builds it for musl
# (.cargo/config.toml points cc at it).
if ! command -v musl-gcc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools
fi
cargo build --release --locked --target "$target"
bin="target/$target/release/watchdog"
desc=$(file -b "$bin")
echo "$bin: $desc"
case "$desc" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "FAIL: $bin is not statically linked" >&2; exit 1 ;;
esac
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
    echo "FAIL: $bin asks for a dynamic loader" >&2
    exit 1
fi
size=$(stat -c %s "$bin")
echo "static binary OK: $size bytes ($(( (size + 1023) / 1024 )) KiB)"
