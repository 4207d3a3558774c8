# lib.sh - helpers for the guest test scripts (sourced; run-e2e.sh copies it
# into the share next to the script). Every check prints one line
#   PASS: <name>        or        FAIL: <name>  (followed by indented detail)
# which run-e2e.sh counts; SKIP: lines are counted apart. e2e_finish prints
# this script's tally and exits non-zero if anything failed.
#
# Commands run under `timeout` (E2E_CMD_TIMEOUT, default 60 s) so that a
# target that stops answering fails a check instead of hanging the guest,
# as far as the kernel lets a process be killed.
#
# The zone helpers use dev, zone, zsec, zlba and slba, which the sourcing
# script sets; connect_ns sets ns and dev for it.
# shellcheck disable=SC2154,SC2034

E2E_PASSED=0 E2E_FAILED=0 E2E_SKIPPED=0
E2E_LOG=$(mktemp /tmp/e2e-cmd.XXXXXX)
E2E_NAME=${E2E_NAME:-guest}
E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-60}
E2E_CLEANUPS=()

step() { local up; read -r up _ < /proc/uptime; printf '\n### [%ss] %s\n' "$up" "$*"; }
info() { echo "    $*"; }
pass() { E2E_PASSED=$((E2E_PASSED + 1)); echo "PASS: $*"; }
skip() { E2E_SKIPPED=$((E2E_SKIPPED + 1)); echo "SKIP: $*"; }
fail() {  # fail NAME [DETAIL...]
    E2E_FAILED=$((E2E_FAILED + 1))
    echo "FAIL: $1"
    shift
    local line
    for line in "$@"; do
        while IFS= read -r line; do echo "      $line"; done <<< "$line"
    done
}

# run CMD...: run it with the timeout, output in $E2E_LOG; returns its status.
# A shell function cannot run under timeout(1): it runs as it is.
run() {
    if declare -F "$1" > /dev/null; then
        "$@" > "$E2E_LOG" 2>&1
    else
        timeout -k 5 "$E2E_CMD_TIMEOUT" "$@" > "$E2E_LOG" 2>&1
    fi
}
# last_output [LINES]: the tail of the last command's output, indented, for a
# FAIL's detail
# shellcheck disable=SC2120 # the scripts that source this pass LINES
last_output() { tail -n "${1:-15}" "$E2E_LOG" | sed 's/^/      | /'; }

# check NAME CMD...: PASS if CMD succeeds
check() {
    local name=$1 rc=0
    shift
    run "$@" || rc=$?
    if [ $rc = 0 ]; then
        pass "$name"
    else
        fail "$name" "\$ $* -> exit $rc$([ $rc = 124 ] && echo ' (timed out)')"
        last_output
    fi
    return $rc
}

# check_fails NAME CMD...: PASS if CMD fails by itself (a timeout is a FAIL:
# the target must answer, even if with an error)
check_fails() {
    local name=$1 rc=0
    shift
    run "$@" || rc=$?
    if [ $rc != 0 ] && [ $rc != 124 ] && [ $rc != 137 ]; then
        pass "$name"
        return 0
    fi
    fail "$name" "\$ $* -> exit $rc ($([ $rc = 0 ] && echo 'should have failed' || echo 'timed out'))"
    last_output
    return 1
}

# expect NAME GOT WANT: PASS if the two strings are equal
expect() {
    if [ "$2" = "$3" ]; then
        pass "$1 ($2)"
    else
        fail "$1" "got:  $2" "want: $3"
        return 1
    fi
}

# expect_true NAME COND...: PASS if the test(1) expression holds
expect_true() {
    local name=$1
    shift
    if [ "$@" ]; then pass "$name"; else fail "$name" "not true: $*"; return 1; fi
}

# require NAME CMD...: like check, but the rest of the script cannot run
# without it: on failure clean up, print the tally and exit
require() {
    check "$@" || e2e_finish
}

# on_exit CMD: run CMD (a string, eval'd) when the script finishes, last
# registered first
on_exit() { E2E_CLEANUPS=("$*" "${E2E_CLEANUPS[@]}"); }

e2e_finish() {
    local c
    for c in "${E2E_CLEANUPS[@]}"; do eval "$c" > /dev/null 2>&1 || true; done
    E2E_CLEANUPS=()
    rm -f "$E2E_LOG"
    echo
    echo "== $E2E_NAME: $E2E_PASSED PASS, $E2E_FAILED FAIL, $E2E_SKIPPED SKIP"
    [ $E2E_FAILED = 0 ] && exit 0
    exit 1
}

# ms: milliseconds since the epoch (bash's clock: no process to start)
ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# run_script PATH: run another guest test script; its PASS/FAIL lines count
# as they stand. Its failure makes this script fail too, and if it failed
# without printing a FAIL line (it crashed), that is reported here.
run_script() {
    local rc
    bash "$1" 2>&1 | tee /tmp/e2e-nested.log
    rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] && return 0
    E2E_FAILED=$((E2E_FAILED + 1))
    grep -q '^FAIL: ' /tmp/e2e-nested.log || echo "FAIL: $1 exited with status $rc"
    return 1
}

# ---------------------------------------------------------------- NVMe host
# The host identity comes from the runner (it put this NQN into the target's
# allowed_hosts); nvme-cli uses these files whenever --hostnqn is not given.
e2e_host_setup() {
    mkdir -p /etc/nvme
    echo "$GUEST_HOSTNQN" > /etc/nvme/hostnqn
    echo "$GUEST_HOSTID" > /etc/nvme/hostid
    # Short timeouts: a target that does not answer fails a check within
    # seconds instead of the defaults' minutes.
    modprobe nvme-core admin_timeout=15 io_timeout=15
    modprobe nvme-tcp
}

# Connect options used by every test: the reconnect delay and controller-loss
# timeout are short so that a dead target shows up as an error quickly (and a
# restarted one is reconnected to quickly).
# shellcheck disable=SC2034 # used by the scripts that source this
E2E_CONNECT_OPTS=(--reconnect-delay=1 --ctrl-loss-tmo=30)

# nvme_ctrl NQN: name (nvmeN) of a controller (in any state) of subsystem NQN
nvme_ctrl() {
    local c
    for c in /sys/class/nvme/nvme*; do
        [ -e "$c/subsysnqn" ] || continue
        if [ "$(< "$c/subsysnqn")" = "$1" ]; then echo "${c##*/}"; return 0; fi
    done
    return 1
}

# nvme_ns NQN NSID: block device name (nvmeXnY) of namespace NSID of the
# subsystem NQN: the multipath head if there is one, else the namespace of
# the controller (hidden per-path disks nvmeXcYnZ are skipped)
nvme_ns() {
    local b
    for b in /sys/block/nvme*n*; do
        [[ ${b##*/} =~ ^nvme[0-9]+n[0-9]+$ ]] || continue
        [ "$(cat "$b/device/subsysnqn" 2> /dev/null)" = "$1" ] || continue
        [ "$(< "$b/nsid")" = "$2" ] && { echo "${b##*/}"; return 0; }
    done
    return 1
}

# ns_paths NS: the per-controller path disks (nvme<S>c<C>n<N>) below the
# multipath head NS (nvme<S>n<N>); nothing if NS is not a head
ns_paths() {
    local p
    for p in /sys/block/"${1%n*}"c*n"${1##*n}"; do [ -e "$p" ] && echo "${p##*/}"; done
}

# wait_ns NQN NSID [SECONDS]: wait for the namespace's block device; prints its name
wait_ns() {
    local i n
    for ((i = 0; i < ${3:-20} * 10; i++)); do
        if n=$(nvme_ns "$1" "$2") && [ -b "/dev/$n" ]; then echo "$n"; return 0; fi
        sleep 0.1
    done
    return 1
}

# connect_ns NQN: connect to subsystem NQN on the runner's target
# (disconnected when the script finishes) and wait for its namespace 1:
# its name in $ns, its device in $dev. The script cannot go on without it.
connect_ns() {
    local tgt=(-t tcp -a "${GUEST_TARGET_ADDR:-$E2E_HOST_IP}" -s "$GUEST_TARGET_PORT")
    require "nvme connect $1" nvme connect "${tgt[@]}" -n "$1" "${E2E_CONNECT_OPTS[@]}"
    on_exit "nvme disconnect -n '$1'"
    if ! ns=$(wait_ns "$1" 1); then
        fail "namespace 1 of $1 appears as a block device"
        e2e_finish
    fi
    dev=/dev/$ns
    pass "namespace 1 is $dev"
}

# wait_ctrl_state NQN STATE [SECONDS]: wait until the controller is in STATE
wait_ctrl_state() {
    local i c
    for ((i = 0; i < ${3:-20} * 10; i++)); do
        c=$(nvme_ctrl "$1") && [ "$(cat "/sys/class/nvme/$c/state" 2> /dev/null)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- host calls
# host_call REQUEST...: ask run-e2e.sh on the host to do something (e.g.
# "restart-target") through the share, and wait for its answer. The request
# is written under a temporary name and renamed, so the host never reads a
# half-written one; the id includes our PID, so that nested scripts' calls
# never meet. Returns 0 if the host answered "ok".
E2E_CALLS=0
host_call() {
    local id reply i
    E2E_CALLS=$((E2E_CALLS + 1))
    id=$$-$E2E_CALLS
    echo "$*" > "$E2E_SHARE/.request.$id"
    mv "$E2E_SHARE/.request.$id" "$E2E_SHARE/request.$id"
    for ((i = 0; i < 600; i++)); do
        if [ -f "$E2E_SHARE/reply.$id" ]; then
            reply=$(< "$E2E_SHARE/reply.$id")
            rm -f "$E2E_SHARE/reply.$id"
            echo "    host: $reply"
            [ "${reply%% *}" = ok ]
            return
        fi
        sleep 0.1
    done
    echo "    host: no answer to '$*' in 60 s"
    return 1
}

# ---------------------------------------------------------------- zoned devices
# Helpers on the zoned block device $dev, whose zones are $zone bytes, $zsec
# sectors of 512 bytes and $zlba LBAs (the script sets these).
# zones [BLKZONE-ARGS]: one line per zone from blkzone report, in decimal:
# "<start> <len> <cap> <cond> <wp>", sectors of 512 bytes, wp relative to the
# zone start, cond one of em oi oe cl fu ro of. blkzone prints e.g.
#   start: 0x000008000, len 0x008000, cap 0x008000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [...]
zones() {
    local start len cap wp rest cond
    blkzone report "$@" "$dev" | while read -r _ start _ len _ cap _ wp rest; do
        cond=${rest#*zcond:}; cond=${cond#*(}; cond=${cond%%)*}
        echo "$((${start%,})) $((${len%,})) $((${cap%,})) $cond $((wp))"
    done
}
# zone_state Z: "<cond> <wp>" of zone Z
zone_state() { zones -o $(($1 * zsec)) -c 1 | cut -d' ' -f4-; }
# zone_is NAME Z COND WP: check zone Z's state and write pointer (sectors)
zone_is() { expect "$1: zone $2" "$(zone_state "$2")" "$3 $4"; }
# all_zones: "<cond> <wp>" of every zone, one a line
all_zones() { zones | cut -d' ' -f4-; }
# zwrite Z OFFSET BYTES: write BYTES of random data into zone Z at byte OFFSET
# within the zone (O_DIRECT); the data is kept in /tmp/zone-Z-OFFSET
zwrite() {
    local f=/tmp/zone-$1-$2
    head -c "$3" /dev/urandom > "$f"
    dd if="$f" of="$dev" bs="$3" count=1 seek=$(($1 * zone + $2)) oflag=direct,seek_bytes conv=notrunc status=none
}
# zread Z OFFSET BYTES FILE: read back (O_DIRECT)
zread() {
    dd if="$dev" of="$4" bs="$3" count=1 skip=$(($1 * zone + $2)) iflag=direct,skip_bytes status=none
}
# bz CMD Z [COUNT]: blkzone CMD (open, close, finish, reset) on COUNT zones from zone Z
bz() { blkzone "$1" -o $(($2 * zsec)) -c "${3:-1}" "$dev"; }
reset_all() { check "${1:-reset all zones}" blkzone reset "$dev"; }

# append FILE: zone-append FILE to the zone starting at LBA $slba; prints the
# LBA it was written at (decimal)
append() {
    run nvme zns zone-append "$dev" -s "$slba" -z "$(stat -c %s "$1")" -d "$1" || return 1
    printf '%d\n' "0x$(sed -n 's/.*appended data to LBA \([0-9a-fA-F]*\).*/\1/p' "$E2E_LOG")"
}
