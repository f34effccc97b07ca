#!/bin/sh
# Fetch Debian's kernel packages for the VM suite and unpack them under
# tests/vm/cache/ (git-ignored). Never installs them on the host.
#
# Picks the newest linux-image-6.1.0-N-amd64 and linux-image-6.12.N+deb12-amd64
# the configured APT sources offer; override with WD_VM_PACKAGES="pkg pkg".
# Needs: apt-get, dpkg-deb (and `apt-get update` done once).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"

# Host tools the suite needs: installed when missing and we are root.
missing=""
for t in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio \
         depmod:kmod gcc:gcc xz:xz-utils mkfs.ext4:e2fsprogs zstd:zstd python3:python3; do
    command -v "${t%%:*}" >/dev/null 2>&1 || PATH="$PATH:/sbin:/usr/sbin" command -v "${t%%:*}" >/dev/null 2>&1 \
        || missing="$missing ${t#*:}"
done
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing="$missing libc6-dev"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "fetch: installing$missing"
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends $missing
    else
        echo "fetch: missing host packages:$missing (apt-get install them as root)" >&2
        exit 1
    fi
fi
if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed | grep -qx x86_64-unknown-linux-musl \
        || rustup target add x86_64-unknown-linux-musl
fi
mkdir -p "$cache/debs"

newest() {
    apt-cache search --names-only "$1" | cut -d' ' -f1 | sort -V | tail -n 1
}

if [ -n "${WD_VM_PACKAGES:-}" ]; then
    pkgs=$WD_VM_PACKAGES
else
    p61=$(newest '^linux-image-6\.1\.0-[0-9]+-amd64$')
    p612=$(newest '^linux-image-6\.12\.[0-9]+\+deb[0-9]+-amd64$')
    [ -n "$p61" ] || { echo "fetch: no linux-image-6.1.0-*-amd64 in the APT lists (apt-get update?)" >&2; exit 1; }
    [ -n "$p612" ] || { echo "fetch: no linux-image-6.12.*-amd64 in the APT lists (apt-get update?)" >&2; exit 1; }
    pkgs="$p61 $p612"
fi

: > "$cache/selected.tmp"
for pkg in $pkgs; do
    version=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
    deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        echo "fetch: apt-get download $pkg ($version)"
        (cd "$cache/debs" && timeout 900 apt-get download -q "$pkg")
        deb=$(ls "$cache/debs/${pkg}_"*.deb | head -n 1)
    fi
    # The package name carries the kernel release: linux-image-RELEASE.
    release=${pkg#linux-image-}
    dest="$cache/kernels/$release"
    if [ ! -f "$dest/.extracted" ]; then
        echo "fetch: unpacking $(basename "$deb")"
        rm -rf "$dest"
        mkdir -p "$dest"
        dpkg-deb -x "$deb" "$dest/root"
        dpkg-deb -f "$deb" Package Version > "$dest/package"
        touch "$dest/.extracted"
    fi
    echo "$release" >> "$cache/selected.tmp"
    echo "fetch: $release ready in ${dest#$here/}"
done
# vm.py boots these (older releases may still sit in the cache).
mv "$cache/selected.tmp" "$cache/selected"
