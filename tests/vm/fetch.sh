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

for pkg in $pkgs; do
    version=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
    deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        echo "fetch: apt-get download $pkg ($version)"
        (cd "$cache/debs" && apt-get download -q "$pkg")
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
    echo "fetch: $release ready in ${dest#$here/}"
done
