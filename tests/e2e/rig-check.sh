#!/bin/bash
# rig-check.sh - checks of the rig itself that need no guest: run-guest.sh
# against a stand-in for QEMU that plays a boot script (no kernel is booted,
# it takes a second). Prints PASS:/FAIL: lines; exits non-zero on a failure.
#
# What is checked: a guest kernel that dies before init starts the script is
# booted again, up to E2E_BOOT_TRIES boots; one that dies once the script
# runs is a result (exit 125) and is never booted again.
set -uo pipefail
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d /tmp/znstgt-rig.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failed=0

# a cache with an empty "guest": run-guest.sh only checks that it is there
mkdir -p "$dir/cache/bookworm/out"
touch "$dir/cache/bookworm/out/"{.recipe,vmlinuz,initrd.img}
echo "kernel release: stand-in" > "$dir/cache/bookworm/out/info.txt"
echo 'true' > "$dir/script"

# The stand-in QEMU: boot number N (counted in $dir/boots) dies before the
# script while N <= DEAD_BOOTS; otherwise init "runs the script", which
# passes, or dies in it when DIE_IN_SCRIPT is set.
cat > "$dir/qemu" <<'QEMU'
#!/bin/bash
serial=() share=
while [ $# -gt 0 ]; do
    case $1 in
        -serial) serial+=("${2#file:}"); shift ;;
        -virtfs) share=${2#local,path=}; share=${share%%,*}; shift ;;
    esac
    shift
done
n=$(( $(cat "$RIG_DIR/boots" 2> /dev/null || echo 0) + 1 ))
echo $n > "$RIG_DIR/boots"
if [ $n -le "$DEAD_BOOTS" ]; then
    echo "Kernel panic - not syncing: Fatal exception in interrupt" >> "${serial[0]}"
    exit 0
fi
echo "e2e-init: running the script" >> "${serial[0]}"
echo "PASS: the script ran in boot $n" >> "${serial[1]}"
if [ -n "${DIE_IN_SCRIPT:-}" ]; then
    echo "Kernel panic - not syncing: Fatal exception" >> "${serial[0]}"
    exit 0
fi
echo 0 > "$share/rc"
QEMU
chmod +x "$dir/qemu"

# case DESCRIPTION EXPECTED_RC EXPECTED_BOOTS VAR=VALUE...
case_() {
    local what=$1 want_rc=$2 want_boots=$3 rc=0 boots
    shift 3
    rm -rf "$dir/boots" "$dir/share"
    env RIG_DIR="$dir" DIE_IN_SCRIPT= "$@" ZNSTGT_E2E_CACHE="$dir/cache" E2E_QEMU="$dir/qemu" \
        E2E_SHARE="$dir/share" E2E_QUIET=1 "$E2E_DIR/run-guest.sh" "$dir/script" \
        > "$dir/out" 2>&1 || rc=$?
    boots=$(cat "$dir/boots")
    if [ "$rc" = "$want_rc" ] && [ "$boots" = "$want_boots" ]; then
        echo "PASS: rig: $what (exit $rc after $boots boots)"
    else
        echo "FAIL: rig: $what: exit $rc after $boots boots, wanted exit $want_rc after $want_boots"
        sed 's/^/    /' "$dir/out"
        failed=1
    fi
}
case_ "a boot that dies before the script is booted again" 0 2 DEAD_BOOTS=1
case_ "two such boots of three" 0 3 DEAD_BOOTS=2
case_ "three such boots are a failure" 125 3 DEAD_BOOTS=3
case_ "E2E_BOOT_TRIES=1 boots once" 125 1 DEAD_BOOTS=1 E2E_BOOT_TRIES=1
case_ "a kernel that dies in the script is not booted again" 125 1 DEAD_BOOTS=0 DIE_IN_SCRIPT=1
if grep -qs 'Fatal exception$' "$dir/share/console.log"; then
    echo "PASS: rig: that kernel's console is the one shown"
else
    echo "FAIL: rig: that kernel's console is not in console.log"
    failed=1
fi
exit $failed
