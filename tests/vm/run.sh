#!/bin/sh
# The real-kernel suite: fetch the kernels (once), then boot every scenario
# on each of them. Extra arguments go to vm.py, e.g.
#   tests/vm/run.sh --kernel 6.1 --only hung-task -j 2
# Needs: qemu-system-x86 busybox-static cpio kmod gcc libc6-dev xz-utils
# e2fsprogs python3, and the Rust musl target.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/fetch.sh"
exec python3 "$here/vm.py" run "$@"
