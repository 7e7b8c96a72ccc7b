#!/usr/bin/env bash
# The binary must not contain VEX-encoded VNNI instructions ({vex} vpdpbusd/vpdpwssd...): those are
# AVX-VNNI, which AVX-512 CPUs without AVX-VNNI (Zen 4, Ice Lake, ...) lack, while Highway's AVX3_DL
# target (selected on them) lets GCC emit them for 256-bit VNNI intrinsics. On a CPU with AVX-VNNI
# (Zen 5) the tests would pass anyway, so this check reads the machine code instead.
# Usage: tests/cli/no_vex_vnni.sh BINARY...
set -euo pipefail
command -v objdump >/dev/null || { echo "no_vex_vnni: objdump not installed (binutils)" >&2; exit 2; }
status=0
for bin in "$@"; do
  n=$(objdump -d --no-show-raw-insn "$bin" | grep -c '{vex} vpdp' || true)
  if [ "$n" != 0 ]; then
    echo "no_vex_vnni: $bin has $n VEX-encoded VNNI instructions (AVX-VNNI; SIGILL on Zen 4), in:" >&2
    objdump -d --no-show-raw-insn "$bin" | awk '/^[0-9a-f]+ <.*>:$/{fn=$2} /\{vex\} vpdp/{print "  " fn}' | sort | uniq -c >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "no_vex_vnni: no VEX-encoded VNNI instructions in $*"
exit $status
