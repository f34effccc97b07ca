#!/bin/sh
# The systemd boot's root file system: a small Debian 12 (bookworm) with
# systemd, built with mmdebstrap from Debian's archive into
# tests/vm/cache/rootfs/ (git-ignored) as an ext4 image. Rebuilt only when
# the image is missing or this recipe changed (the image's .recipe file
# holds the sha256 of this script). The image is never modified by a
# boot: QEMU opens it with snapshot=on, and the package under test comes on
# a second disk (see vm.py, systemd boot).
#
# Nothing kernel-specific is in it: the modules a boot needs come with the
# per-boot payload. Prints the image's path on its last line.
# Needs: mmdebstrap (installed when missing and root), e2fsprogs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/cache/rootfs"
img="$dest/bookworm-systemd.ext4"
recipe=$(sha256sum "$0" | cut -d' ' -f1)
if [ -f "$img" ] && [ "$(cat "$img.recipe" 2>/dev/null)" = "$recipe" ]; then
    echo "rootfs: cached (recipe ${recipe%"${recipe#????????????}"})"
    echo "$img"
    exit 0
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "rootfs: mmdebstrap is missing (apt-get install mmdebstrap as root)" >&2; exit 1; }
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends mmdebstrap
fi
mkdir -p "$dest"
tree="$dest/tree.tmp"
rm -rf "$tree" "$img.tmp"
start=$(date +%s)

# What the test drives: systemd (with systemd-analyze and journalctl), kmod
# for the modules, iproute2 for the network, e2fsprogs and util-linux
# (essential) for the ramdisk and fsfreeze, procps, and netcat-openbsd as
# the TCP listener an `exec` action connects to. No udev, no dbus, no
# getty: fewer units to start under TCG.
pkgs=systemd,systemd-sysv,kmod,iproute2,e2fsprogs,procps,netcat-openbsd

# The unit that runs the test: the script and the package under test come
# on /dev/vdb as a plain tar (vm.py builds it per boot).
unit="$dest/wd-vmtest.service"
cat > "$unit" <<'UNIT'
[Unit]
Description=watchdog VM test (tests/vm/guest/systemd-test.sh from /dev/vdb)
After=multi-user.target
ConditionPathExists=/dev/vdb

[Service]
Type=oneshot
ExecStart=/bin/sh -c "mkdir -p /wdtest && tar -xf /dev/vdb -C /wdtest && exec /wdtest/systemd-test.sh"
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT

timeout 1800 mmdebstrap --variant=minbase --include="$pkgs" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='echo wdguest > "$1/etc/hostname"' \
    --customize-hook='printf "/dev/vda / ext4 rw,noatime 0 1\n" > "$1/etc/fstab"' \
    --customize-hook="upload $unit /etc/systemd/system/wd-vmtest.service" \
    --customize-hook='chroot "$1" systemctl enable wd-vmtest.service' \
    --customize-hook='for u in getty.target getty-static.service getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service console-getty.service systemd-logind.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
    --customize-hook='mkdir -p "$1/etc/systemd/journald.conf.d" && printf "[Journal]\nStorage=volatile\n" > "$1/etc/systemd/journald.conf.d/wd-vmtest.conf"' \
    --customize-hook='rm -f "$1/etc/machine-id" && : > "$1/etc/machine-id"' \
    bookworm "$tree" http://deb.debian.org/debian

# 1 GiB, sparse; the tree is about 200 MB. mkfs.ext4 -d copies it with
# owners and modes, no loop mount needed.
truncate -s 1G "$img.tmp"
mkfs.ext4 -q -F -L wdroot -d "$tree" "$img.tmp"
rm -rf "$tree"
mv "$img.tmp" "$img"
echo "$recipe" > "$img.recipe"
echo "rootfs: built in $(( $(date +%s) - start )) s ($(du -k "$img" | cut -f1) KiB used)"
echo "$img"
