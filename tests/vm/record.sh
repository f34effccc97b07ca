#!/bin/sh
# Regenerates the real-kernel recordings under tests/fixtures/:
#   kernel-logs/real/debian-<6.1|6.12>-<scenario>.{kmsg,dmesg,trace}
#   netconsole/debian-<6.1|6.12>-*
# by running the suite with --record (a recording is written only when its
# scenario passed). Extra arguments go to vm.py, e.g. --kernel 6.12.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/fetch.sh"
exec python3 "$here/vm.py" run --record "$@"
