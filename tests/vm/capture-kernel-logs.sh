#!/usr/bin/env bash
# Boots a real Debian kernel under QEMU (TCG) from a busybox initramfs and
# provokes what `watchdog scan` must recognise: a segfault and a divide
# error (with print-fatal-signals=1), SysRq w, m and t, a hung task (ext4 on a
# brd ramdisk frozen with fsfreeze), a global OOM kill and a memory-cgroup
# OOM kill, then SysRq c (a panic, seen on the serial console only). Leaves the serial console capture and, from inside the guest,
# raw /dev/kmsg records and `dmesg` output in tests/vm/cache/out/VERSION/.
# The fixtures tests/fixtures/kernel-logs/real-*.log were cut from those.
#
#   tests/vm/capture-kernel-logs.sh [linux-image package, default linux-image-6.1.0-56-amd64]
#
# Needs: qemu-system-x86 busybox-static cpio kmod gcc (libc6-dev), python3.
set -euo pipefail
cd "$(dirname "$0")"
pkg=${1:-linux-image-6.1.0-56-amd64}
cache=$PWD/cache
mkdir -p "$cache/debs"
deb=$(ls "$cache"/debs/"${pkg}"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    (cd "$cache/debs" && apt-get download "$pkg")
    deb=$(ls "$cache"/debs/"${pkg}"_*.deb | head -1)
fi
version=${pkg#linux-image-}
kdir=$cache/kernels/$version
if [ ! -f "$kdir/vmlinux" ]; then
    rm -rf "$kdir" && mkdir -p "$kdir/root"
    dpkg-deb -x "$deb" "$kdir/root"
    depmod -b "$kdir/root" "$version"
    python3 - "$kdir/root/boot/vmlinuz-$version" "$kdir/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
i = data.find(b"\xfd7zXZ\x00")
# XZ-compressed (6.1): boot the uncompressed vmlinux, faster under TCG;
# zstd (6.12): boot the bzImage itself.
out = lzma.LZMADecompressor().decompress(data[i:]) if i >= 0 else data
open(sys.argv[2], "wb").write(out)
PY
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/root
mkdir -p "$stage"/{bin,dev,proc,sys,mnt,tmp,lib/modules}
cp /bin/busybox "$stage/bin/busybox"
cat > "$work/segv.c" <<'C'
int main(void) { volatile int *p = (int *)0; return *p; }
C
cat > "$work/div.c" <<'C'
int main(int argc, char **argv) { volatile int z = argc - 1; return 7 / z; }
C
cat > "$work/hog.c" <<'C'
#include <stdlib.h>
#include <string.h>
int main(void) { for (;;) { char *p = malloc(1 << 20); if (p) memset(p, 1, 1 << 20); } }
C
for p in segv div hog; do gcc -O0 -static -o "$stage/bin/$p" "$work/$p.c"; done

mods=$kdir/root/lib/modules/$version
# Modules in load order (dependencies first), from modules.dep.
python3 - "$mods" brd crc32c_generic ext4 > "$work/modlist" <<'PY'
import sys
base, wanted = sys.argv[1], sys.argv[2:]
dep = {}
for line in open(base + "/modules.dep"):
    k, _, v = line.partition(":")
    dep[k.rsplit("/", 1)[-1].split(".ko")[0]] = (k, v.split())
seen, order = set(), []
def add(name):
    if name in seen or name not in dep:
        return
    seen.add(name)
    for d in dep[name][1]:
        add(d.rsplit("/", 1)[-1].split(".ko")[0])
    order.append(dep[name][0])
for w in wanted:
    add(w)
print("\n".join(order))
PY
: > "$work/insmods"
while read -r rel; do
    [ -n "$rel" ] || continue
    f=$mods/$rel
    name=$(basename "$rel"); name=${name%.xz}
    case "$f" in *.xz) xz -dc "$f" > "$stage/lib/modules/$name" ;; *) cp "$f" "$stage/lib/modules/$name" ;; esac
    echo "insmod /lib/modules/$name" >> "$work/insmods"
done < "$work/modlist"
sed -i 's#^\(insmod /lib/modules/brd.ko\).*#\1 rd_nr=1 rd_size=16384#' "$work/insmods"

{
cat <<'SH'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 > /proc/sys/kernel/print-fatal-signals
echo 1 > /proc/sys/kernel/sysrq
echo "== signals"
/bin/segv
/bin/div
echo "== sysrq"
echo w > /proc/sysrq-trigger
echo m > /proc/sysrq-trigger
echo t > /proc/sysrq-trigger
echo "== hung task"
SH
cat "$work/insmods"
cat <<'SH'
mke2fs -q /dev/ram0
mount -t ext4 /dev/ram0 /mnt
echo 2 > /proc/sys/kernel/hung_task_timeout_secs
fsfreeze --freeze /mnt
dd if=/dev/zero of=/mnt/f bs=4k count=1 conv=fsync 2>/dev/null &
sleep 6
fsfreeze --unfreeze /mnt
wait
echo 0 > /proc/sys/kernel/hung_task_timeout_secs
echo "== global oom"
/bin/hog
echo "== memcg oom"
mkdir -p /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/box
echo 32M > /sys/fs/cgroup/box/memory.max
sh -c 'echo $$ > /sys/fs/cgroup/box/cgroup.procs; exec /bin/hog'
dmesg -n 1
echo "==KMSG-BEGIN=="
cat /dev/kmsg > /tmp/kmsg & sleep 2; kill $!
cat /tmp/kmsg
echo "==KMSG-END=="
echo "==DMESG-BEGIN=="
dmesg
echo "==DMESG-END=="
dmesg -n 7
echo "== sysrq crash"
echo c > /proc/sysrq-trigger
SH
} > "$stage/init"
chmod +x "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet) > "$work/initrd"

out=$cache/out/$version
mkdir -p "$out"
timeout 300 qemu-system-x86_64 -accel tcg -m 256M -smp 1 -nic none \
    -kernel "$kdir/vmlinux" -initrd "$work/initrd" \
    -append "console=ttyS0 printk.time=1 loglevel=7 panic=-1" \
    -display none -monitor none -serial "file:$out/console.log" -no-reboot || true
python3 - "$out" <<'PY'
import sys, re
out = sys.argv[1]
text = open(out + "/console.log", "rb").read().decode("utf-8", "replace")
for name, tag in (("kmsg.log", "KMSG"), ("dmesg.log", "DMESG")):
    m = re.search(r"==%s-BEGIN==\r?\n(.*?)==%s-END==" % (tag, tag), text, re.S)
    open(out + "/" + name, "w").write(m.group(1).replace("\r\n", "\n") if m else "")
PY
ls -l "$out"
