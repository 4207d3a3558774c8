#!/bin/bash
# qemu-sid.sh - run the QEMU that build-qemu.sh installed (one with the
# vfio-user client) as if it were installed here:
#
#   tests/e2e/qemu-sid.sh QEMU-ARGS...
#
# It runs qemu-system-x86_64 chrooted into the sid tree, in a private mount
# namespace where /proc is mounted, /dev is this machine's, and /tmp, the
# e2e cache, the current directory and each directory of E2E_QEMU_BINDS
# (colon-separated) are bound at their own paths: sockets, kernels and disk
# images there keep their paths. Nothing stays mounted when QEMU exits. Every
# step execs, so this script's PID is QEMU's. Needs root (mount namespace).
set -euo pipefail

CACHE=${ZNSTGT_E2E_CACHE:-$HOME/.cache/znstgt-e2e}
ROOT=$CACHE/qemu-sid/root

if [ "${1:-}" != --in-namespace ]; then
    [ -x "$ROOT/usr/bin/qemu-system-x86_64" ] ||
        { echo "qemu-sid.sh: no QEMU in $ROOT; run tests/e2e/build-qemu.sh (as root) first" >&2; exit 2; }
    exec unshare --mount --propagation private -- "$(readlink -f "$0")" --in-namespace "$@"
fi
shift

mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
IFS=: read -r -a extra <<< "${E2E_QEMU_BINDS:-}"
for d in /tmp "$CACHE" "$PWD" "${extra[@]}"; do
    [ -n "$d" ] && [ "$d" != / ] && [ -d "$d" ] || continue
    d=$(readlink -f "$d")
    mkdir -p "$ROOT$d"
    mount --bind "$d" "$ROOT$d"
done
exec chroot "$ROOT" /bin/sh -c 'cd "$1" 2> /dev/null || cd /; shift; exec qemu-system-x86_64 "$@"' sh "$PWD" "$@"
