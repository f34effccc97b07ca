#!/bin/sh
# Fetch Debian's kernel packages for the VM suite and unpack them under
# tests/vm/cache/ (git-ignored). Never installs them on the host.
#
# Picks the newest linux-image-6.1.0-N-amd64 and linux-image-6.12.N+deb12-amd64
# the configured APT sources offer, and from Debian's archive Debian 11's
# newest linux-image-5.10.0-N-amd64 (bullseye) and the newest kernel of
# unstable (sid), through a private APT configuration under cache/apt that
# leaves the host's sources alone. Override with WD_VM_PACKAGES="pkg pkg".
# Needs: apt-get, dpkg-deb (and `apt-get update` done once).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"

# Host tools the suite needs: installed when missing and we are root.
missing=""
for t in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio \
         depmod:kmod gcc:gcc musl-gcc:musl-tools xz:xz-utils mkfs.ext4:e2fsprogs zstd:zstd python3:python3; do
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

# Debian 11 and unstable: their own package lists in cache/apt, so the
# host's /etc/apt is neither read for them nor changed. Debian's archive
# keyring (debian-archive-keyring) signs both.
private="$cache/apt"
mkdir -p "$private/lists/partial" "$private/archives/partial"
cat > "$private/sources.list" <<'SRC'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
SRC
# Options that point apt-get/apt-cache at the private sources and lists.
popts="-o Dir::Etc::sourcelist=$private/sources.list -o Dir::Etc::sourceparts=/nonexistent -o Dir::State::Lists=$private/lists -o Dir::Cache=$private"
pnewest() {
    apt-cache $popts search --names-only "$1" | cut -d' ' -f1 | sort -V | tail -n 1
}

if [ -n "${WD_VM_PACKAGES:-}" ]; then
    pkgs=$WD_VM_PACKAGES
else
    p61=$(newest '^linux-image-6\.1\.0-[0-9]+-amd64$')
    p612=$(newest '^linux-image-6\.12\.[0-9]+\+deb[0-9]+-amd64$')
    [ -n "$p61" ] || { echo "fetch: no linux-image-6.1.0-*-amd64 in the APT lists (apt-get update?)" >&2; exit 1; }
    [ -n "$p612" ] || { echo "fetch: no linux-image-6.12.*-amd64 in the APT lists (apt-get update?)" >&2; exit 1; }
    if [ ! -f "$private/updated" ] || [ -n "$(find "$private/updated" -mtime +1)" ]; then
        echo "fetch: apt-get update (bullseye, sid; private lists in ${private#$here/})"
        timeout 900 apt-get $popts update -qq
        touch "$private/updated"
    fi
    p510=$(pnewest '^linux-image-5\.10\.0-[0-9]+-amd64$')
    # sid names its kernel linux-image-MAJOR.MINOR.PATCH+debNN-amd64 (its
    # image and modules are in linux-binary-* and linux-modules-*: below).
    psid=$(pnewest '^linux-image-[0-9]+\.[0-9]+\.[0-9]+\+deb[0-9]+-amd64$')
    [ -n "$p510" ] || { echo "fetch: no linux-image-5.10.0-*-amd64 in bullseye" >&2; exit 1; }
    [ -n "$psid" ] || { echo "fetch: no linux-image-*-amd64 in sid" >&2; exit 1; }
    pkgs="$p510 $p61 $p612 $psid"
fi

: > "$cache/selected.tmp"
for pkg in $pkgs; do
    # Packages of the host's sources, or else of the private ones.
    opts=""
    version=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        opts=$popts
        version=$(apt-cache $opts policy "$pkg" | sed -n 's/^ *Candidate: //p')
    fi
    # The package name carries the kernel release: linux-image-RELEASE.
    release=${pkg#linux-image-}
    # Newer Debian (sid, 2026) splits the kernel: linux-image-R is a
    # shell over linux-binary-R (the image) and linux-modules-R.
    parts=$pkg
    for extra in "linux-binary-$release" "linux-modules-$release"; do
        v=$(apt-cache $opts policy "$extra" 2>/dev/null | sed -n 's/^ *Candidate: //p')
        if [ -n "$v" ] && [ "$v" != "(none)" ]; then
            parts="$parts $extra"
        fi
    done
    dest="$cache/kernels/$release"
    if [ "$(cat "$dest/.extracted" 2>/dev/null)" != "$parts" ]; then
        rm -rf "$dest"
        mkdir -p "$dest"
        for part in $parts; do
            deb=$(ls "$cache/debs/${part}_"*.deb 2>/dev/null | head -n 1 || true)
            if [ -z "$deb" ]; then
                echo "fetch: apt-get download $part ($version)"
                (cd "$cache/debs" && timeout 900 apt-get $opts download -q "$part")
                deb=$(ls "$cache/debs/${part}_"*.deb | head -n 1)
            fi
            echo "fetch: unpacking $(basename "$deb")"
            dpkg-deb -x "$deb" "$dest/root"
        done
        # vm.py looks in /lib/modules and /boot (merged-/usr packages may
        # ship /usr/lib/modules, or the image elsewhere).
        if [ ! -d "$dest/root/lib/modules" ] && [ -d "$dest/root/usr/lib/modules" ]; then
            mkdir -p "$dest/root/lib"
            mv "$dest/root/usr/lib/modules" "$dest/root/lib/modules"
        fi
        deb=$(ls "$cache/debs/${pkg}_"*.deb | head -n 1)
        dpkg-deb -f "$deb" Package Version > "$dest/package"
        echo "$parts" > "$dest/.extracted"
    fi
    # sid's linux-binary-R ships the image as /usr/lib/modules/R/vmlinuz.
    if [ ! -f "$dest/root/boot/vmlinuz-$release" ] && [ -f "$dest/root/lib/modules/$release/vmlinuz" ]; then
        mkdir -p "$dest/root/boot"
        cp "$dest/root/lib/modules/$release/vmlinuz" "$dest/root/boot/vmlinuz-$release"
    fi
    echo "$release" >> "$cache/selected.tmp"
    echo "fetch: $release ready in ${dest#$here/}"
done
# vm.py boots these (older releases may still sit in the cache).
mv "$cache/selected.tmp" "$cache/selected"
