#!/bin/bash
# run-guest.sh SCRIPT [FILE...] - boot the guest built by build-guest.sh under
# QEMU, run SCRIPT in it as root, stream its output to our stdout, and exit
# with its exit status.
#
# Inside the guest SCRIPT runs with bash as /e2e/script, cwd /e2e: a host
# directory shared over virtio-9p (files written there stay on the host). Each
# FILE is copied next to it (e.g. a helper library the script sources). The
# network is QEMU's user-mode (slirp) NAT: the guest is 10.0.2.15 and reaches
# the host's 127.0.0.1 as 10.0.2.2 ($E2E_HOST_IP). Every host variable named
# GUEST_* is exported to the script. There is no udev: modprobe what you need.
#
# Environment (all optional):
#   ZNSTGT_E2E_CACHE    cache directory of build-guest.sh (default ~/.cache/znstgt-e2e)
#   E2E_GUEST           the guest variant build-guest.sh built (default
#                       bookworm: Linux 6.1; trixie: Linux 6.12)
#   E2E_SHARE           host directory to share (default: a new temporary one,
#                       removed afterwards unless E2E_KEEP=1); it receives
#                       output.log (the script's output), console.log (the
#                       kernel console), qemu.log and rc
#   E2E_TIMEOUT         seconds before QEMU is killed (default 600) -> exit 124
#   E2E_MEM             guest memory in MiB (default 1024)
#   E2E_SMP             guest CPUs (default 2)
#   E2E_APPEND          extra kernel command line ("loglevel=7" puts the whole
#                       kernel log into console.log)
#   E2E_QEMU_ARGS       more QEMU arguments (split at blanks), e.g. devices
#   E2E_QEMU            the QEMU to run (split at blanks; default
#                       qemu-system-x86_64), e.g. tests/e2e/qemu-sid.sh
#   E2E_MEMFD=1         guest RAM in a shared memfd (memory-backend-memfd,
#                       share=on): a vfio-user device then gets each RAM
#                       DMA_MAP with an fd and reaches guest memory in place
#   E2E_BOOT_TRIES      boots when the guest kernel dies before the script
#                       starts (default 3; see below)
#   E2E_QUIET=1         no summary line on stderr
#   E2E_SHELL=1         an interactive root shell on this terminal instead of
#                       running SCRIPT (Ctrl-A X quits QEMU)
#
# Exit status: the script's; 124 on timeout; 125 if the guest stopped without
# a result (the console's tail is printed); 2 on usage errors.
#
# A guest kernel that dies while booting, before init starts the script, is
# booted again (up to E2E_BOOT_TRIES boots in all). Under multi-threaded TCG a
# stock kernel very rarely oopses while it patches its own code at boot; no
# test has touched znstgt by then, so that boot says nothing about it. The dead
# boot's console is kept as console.bootN.log and its tail printed. A kernel
# that dies once the script runs is a result, never retried.
set -euo pipefail
{
CACHE=${ZNSTGT_E2E_CACHE:-$HOME/.cache/znstgt-e2e}
OUT=$CACHE/${E2E_GUEST:-bookworm}/out
TIMEOUT=${E2E_TIMEOUT:-600}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
if [ $# -lt 1 ] || [ ! -f "$1" ]; then usage; fi
for f in "$@"; do [ -f "$f" ] || { echo "run-guest.sh: no file $f" >&2; exit 2; }; done
[ -f "$OUT/.recipe" ] || { echo "run-guest.sh: no guest in $OUT; run build-guest.sh ${E2E_GUEST:-bookworm} first" >&2; exit 2; }

if [ -n "${E2E_SHARE:-}" ]; then
    mkdir -p "$E2E_SHARE"
    share=$(cd "$E2E_SHARE" && pwd)
    temp_share=
else
    mkdir -p "$CACHE/runs"
    share=$(mktemp -d "$CACHE/runs/run.XXXXXX")
    temp_share=1
fi
cp "$1" "$share/script"
shift
for f in "$@"; do cp "$f" "$share/"; done
for v in ${!GUEST_@}; do printf 'export %s=%q\n' "$v" "${!v}"; done > "$share/.env"
rm -f "$share/rc"
: > "$share/output.log"
: > "$share/console.log"

# oops=panic + panic=-1 + -no-reboot: a guest kernel oops ends the run at once
# (exit 125, console shown) instead of leaving hung tasks until the timeout
append="console=ttyS0 quiet loglevel=4 oops=panic panic=-1 ${E2E_APPEND:-}"
console=(-serial "file:$share/console.log")
if [ -n "${E2E_SHELL:-}" ]; then
    append="$append e2e.shell"
    console=(-serial mon:stdio)
fi
kernel=$OUT/vmlinux
[ -f "$kernel" ] || kernel=$OUT/vmlinuz
mem=${E2E_MEM:-1024}
machine=q35
ram=()
if [ -n "${E2E_MEMFD:-}" ]; then
    machine+=,memory-backend=ram0
    ram=(-object "memory-backend-memfd,id=ram0,size=${mem}M,share=on")
fi
# TCG (software emulation): KVM hangs the guest on this kind of machine.
# romfile= : no iPXE option ROM for the NIC (we never network-boot).
# shellcheck disable=SC2054,SC2206 # QEMU's commas; E2E_QEMU is split at blanks
qemu=(${E2E_QEMU:-qemu-system-x86_64} -accel tcg,thread=multi,tb-size=512 -cpu max -machine "$machine"
      "${ram[@]}" -m "$mem" -smp "${E2E_SMP:-2}" -nodefaults -no-user-config -display none -no-reboot
      -kernel "$kernel" -initrd "$OUT/initrd.img" -append "$append"
      -drive "file=$OUT/rootfs.ext4,format=raw,if=virtio,snapshot=on,cache=unsafe"
      -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
      -virtfs "local,path=$share,mount_tag=e2e,security_model=none,id=e2e"
      "${console[@]}" -serial "file:$share/output.log")
# shellcheck disable=SC2206 # splitting at blanks is the documented interface
qemu+=(${E2E_QEMU_ARGS:-})

# boot: run QEMU once, its exit status in qrc
boot() {
    qrc=0
    if [ -n "${E2E_SHELL:-}" ]; then
        "${qemu[@]}" || qrc=$?
        return
    fi
    timeout -k 5 "$TIMEOUT" "${qemu[@]}" < /dev/null > "$share/qemu.log" 2>&1 &
    qpid=$!
    trap 'kill $qpid 2> /dev/null; exit 130' INT TERM
    # stream the script's output (ttyS1) while QEMU runs
    tail -n +1 -s 0.2 -f --pid=$qpid "$share/output.log" &
    tpid=$!
    wait $qpid || qrc=$?
    wait $tpid || true
    trap - INT TERM
}

# died_booting: QEMU ended by itself (no timeout), with no result and before
# init said it runs the script
died_booting() {
    [ -z "${E2E_SHELL:-}" ] && [ ! -s "$share/rc" ] && [ "$qrc" != 124 ] && [ "$qrc" != 137 ] &&
        ! grep -q 'e2e-init: running the script' "$share/console.log"
}

start=$(date +%s.%N)
tries=${E2E_BOOT_TRIES:-3}
for ((try = 1; ; try++)); do
    boot
    if ! died_booting || [ "$try" -ge "$tries" ]; then break; fi
    echo "run-guest.sh: the guest kernel died while booting (boot $try of $tries," \
         "qemu exit $qrc), before the script started; booting again. Console tail:" >&2
    tail -12 "$share/console.log" >&2
    mv "$share/console.log" "$share/console.boot$try.log"
    : > "$share/console.log"
    : > "$share/output.log"
done
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

if [ -s "$share/rc" ]; then
    rc=$(cat "$share/rc")
elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    rc=124
    echo "run-guest.sh: TIMEOUT after ${TIMEOUT} s; console tail:" >&2
    tail -20 "$share/console.log" >&2
else
    rc=125
    echo "run-guest.sh: the guest stopped without a result (qemu exit $qrc):" >&2
    tail -5 "$share/qemu.log" >&2
    tail -30 "$share/console.log" >&2
fi
where=
if [ -n "$temp_share" ] && [ -z "${E2E_KEEP:-}" ]; then
    rm -rf "$share"
else
    where="; share $share"
fi
[ -n "${E2E_QUIET:-}" ] ||
    echo "run-guest.sh: exit $rc after $secs s (kernel $(sed -n 's/^kernel release: //p' "$OUT/info.txt"))$where" >&2
exit "$rc"
}
