#!/usr/bin/env bash
# Builds the RPM from the tracked files of this checkout with rpmbuild
# (Debian's `rpm` package provides it; installed when missing) and checks
# its file list. Prints the RPM's path. Reuses target/ for the cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if ! command -v rpmbuild >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm
fi
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl
name=watchdog-evidence
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
git ls-files -z | tar --null -T - --transform "s|^|$name-$version/|" -czf "$top/SOURCES/$name-$version.tar.gz"
export WATCHDOG_GIT_COMMIT
WATCHDOG_GIT_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
export CARGO_TARGET_DIR="$repo/target"
rpmbuild -bb --nodeps --quiet --define "_topdir $top" packaging/$name.spec
rpm=$(find "$top/RPMS" -name "$name-$version-*.rpm" | head -n1)
mkdir -p target/rpm
cp "$rpm" target/rpm/
rpm=target/rpm/$(basename "$rpm")
list=$(rpm -qlp "$rpm")
echo "$list"
missing=0
for want in \
    /usr/bin/watchdog-evidence \
    /etc/watchdog/watchdog.yaml \
    /usr/lib/systemd/system/watchdog-evidence.service \
    /usr/lib/systemd/system/watchdog-evidence-udplogger.service \
    /usr/share/man/man8/watchdog-evidence.8 \
    /usr/share/man/man8/watchdog-evidence-check.8 \
    /usr/share/bash-completion/completions/watchdog-evidence \
    /usr/share/zsh/site-functions/_watchdog-evidence \
    /usr/share/fish/vendor_completions.d/watchdog-evidence.fish \
    /usr/lib/systemd/catalog/watchdog-evidence.catalog \
    /usr/share/watchdog-evidence/exec-and-metrics.conf \
    /var/lib/watchdog; do
    if ! grep -q "^$want\(\.gz\)\?$" <<<"$list"; then
        echo "MISSING from the RPM: $want" >&2
        missing=1
    fi
done
if grep -qx /usr/sbin/watchdog <<<"$list" || grep -qx /usr/lib/systemd/system/watchdog.service <<<"$list"; then
    echo "the RPM would clash with the distribution's watchdog package" >&2
    missing=1
fi
rpm -qp --configfiles "$rpm" | grep -qx /etc/watchdog/watchdog.yaml || { echo "config is not %config" >&2; missing=1; }
[ "$missing" = 0 ]
echo "RPM OK: $rpm ($(stat -c %s "$rpm") bytes)"
