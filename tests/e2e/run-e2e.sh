#!/bin/bash
# run-e2e.sh - end-to-end tests of znstgt from a real Linux NVMe/TCP host.
#
#   tests/e2e/run-e2e.sh BUILD_DIR [TEST...]   # make e2e does this with BUILD_DIR=build
#   tests/e2e/run-e2e.sh --selftest            # check the rig itself (no znstgt needed)
#
# With BUILD_DIR: writes a configuration into a temporary directory (three
# subsystems: a conventional and a zoned namespace for the guest's host NQN, a
# third subsystem for another host NQN only), starts BUILD_DIR/znstgt on
# 127.0.0.1 on a free port, and runs each guest test (default: tcp-basic
# zns-basic zrwa faults vfio-user-qemu vfio-zns tls-6.12 auth-6.1 auth-6.12
# resv-6.1 resv-6.12 ana-6.1 blktests-6.1 blktests-6.12; a TEST is a
# script name in tests/e2e/guest/ without .sh, vfio-user-qemu, vfio-zns, one
# of the security tests, ana-6.1 / ana-6.12 or blktests-6.1 / blktests-6.12
# below) in its own boot of the guest,
# which reaches the target as 10.0.2.2. Guest scripts can ask for host
# actions through the share (guest/lib.sh: host_call); this script answers
# "ping", "restart-target" (kill -9, start again on the same port and data),
# "ctl REQUEST..." (a control socket request through BUILD_DIR/znstgt-ctl:
# the fault injection of guest/faults.sh) and "tcp-probe-zns" (a Zone Append
# from a TCP host on this machine, build/tools/znstgt-probe, into zone 0 of
# the zns namespace). Ends with "N passed, N failed": every PASS/FAIL line of the
# guests plus the checks made here (the target starts; it stops cleanly on
# SIGTERM with no sanitizer report).
#
# blktests-6.1 and blktests-6.12 run blktests' nvme group (guest/blktests.sh)
# in the bookworm guest (Linux 6.1) and the trixie guest (Linux 6.12), against
# a BUILD_DIR/znstgt that runs inside the guest, started by the blktests hook
# (tests/nvme-target-control). blktests comes from the tarball
# $BLKTESTS_TARBALL (a `git archive` of blktests; tests/e2e/README.md); when
# it is not set they are one SKIP line.
#
# tls-6.12, auth-6.1 and auth-6.12 (guest/tls.sh on Linux 6.12, guest/auth.sh
# on 6.1 and 6.12) run against a second znstgt of their own, started when the
# first of them runs: a plain listener and a tls_listen one, a subsystem that
# gives the guest's host a PSK and one that gives it DH-HMAC-CHAP secrets. (A
# target of their own: the discovery log tcp-basic checks stays as it is.)
# resv-6.1 and resv-6.12 (guest/resv.sh on Linux 6.1 and 6.12) use that
# target too: a subsystem any host may use, which the guest connects to as
# two hosts (reservations).
#
# ana-6.1 and ana-6.12 (guest/ana.sh on Linux 6.1 and 6.12) run a znstgt of
# their own inside the guest, with two listeners, and connect to it through
# both: native multipath over two ANA paths, changed with znstgt-ctl ana.
# ana-6.12 is not in the default list: fio fails in about one run in three
# after a path switch (tests/e2e/README.md).
#
# vfio-user-qemu needs no guest: BUILD_DIR/tools/vfu-qemu-check checks the
# vfio-user protocol server against QEMU's vfio-user client (the QEMU that
# build-qemu.sh installs from Debian sid; the first run needs root), through
# QEMU's qtest interface.
#
# --selftest runs guest/selftest-kernel-nvmet.sh (the same tests against the
# guest kernel's nvmet) and guest/selftest-qemu-zns.sh (zns-basic.sh against
# QEMU's emulated ZNS controller).
#
# Environment: ZNSTGT_E2E_CACHE (see build-guest.sh), E2E_KEEP=1 keeps the
# temporary directory (config, data, target log, guest logs), E2E_TIMEOUT
# (seconds per guest boot, default 400), BLKTESTS_TARBALL, E2E_BLKTESTS_TIMEOUT
# (seconds per blktests boot, default 2400), and those of run-guest.sh.
set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_DIR=$E2E_DIR/guest
export E2E_TIMEOUT=${E2E_TIMEOUT:-400}

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
selftest=
build=
case $1 in
    --selftest) selftest=1 ;;
    -*)         usage ;;
    *)          build=$(cd "$1" 2> /dev/null && pwd) || { echo "run-e2e.sh: no directory $1" >&2; exit 2; } ;;
esac
shift
tests=("$@")
[ ${#tests[@]} -gt 0 ] ||
    tests=(tcp-basic zns-basic zrwa faults vfio-user-qemu vfio-zns zonefs-6.12 tls-6.12 auth-6.1 auth-6.12
           resv-6.1 resv-6.12 ana-6.1 blktests-6.1 blktests-6.12)
# the guest variant (build-guest.sh) of each kernel blktests runs on
declare -A BLKTESTS_GUEST=([blktests-6.1]=bookworm [blktests-6.12]=trixie)
# the security tests: guest variant (the script is guest/NAME-without-kernel.sh)
declare -A SEC_GUEST=([tls-6.12]=trixie [auth-6.1]=bookworm [auth-6.12]=trixie [resv-6.1]=bookworm [resv-6.12]=trixie)
# ANA with native multipath (guest/ana.sh, its own znstgt inside the guest)
declare -A ANA_GUEST=([ana-6.1]=bookworm [ana-6.12]=trixie)
# tests of this runner's target on a guest other than bookworm (the script
# is guest/NAME-without-kernel.sh): zonefs-tools is in trixie only
declare -A OTHER_GUEST=([zonefs-6.12]=trixie)

T0=$SECONDS
passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
finish() {
    [ -z "${tpid:-}" ] || stop_target
    [ -z "${spid:-}" ] || { kill -TERM "$spid"; wait "$spid"; }
    if [ -n "${work:-}" ]; then
        if [ -n "${E2E_KEEP:-}" ] || [ $failed -gt 0 ]; then
            echo "run-e2e.sh: logs, config and data kept in $work"
        else
            rm -rf "$work"
        fi
    fi
    echo "run-e2e.sh: $((SECONDS - T0)) s in all"
    echo "$passed passed, $failed failed$([ $skipped -gt 0 ] && echo ", $skipped skipped")"
    [ $failed = 0 ]
    exit
}
trap 'echo "run-e2e.sh: interrupted"; fail "interrupted"; finish' INT TERM

# ------------------------------------------------------------------ rig
# the rig's own checks that need no guest (a second)
while IFS= read -r line; do
    echo "$line"
    case $line in
        PASS:*) passed=$((passed + 1)) ;;
        FAIL:*) failed=$((failed + 1)) ;;
    esac
done < <("$E2E_DIR/rig-check.sh")

# ------------------------------------------------------------------ guest
# the variants the tests need: bookworm for the others
variants=()
for t in "${tests[@]}"; do
    v=${BLKTESTS_GUEST[$t]:-${SEC_GUEST[$t]:-${ANA_GUEST[$t]:-${OTHER_GUEST[$t]:-bookworm}}}}
    [[ " ${variants[*]} " == *" $v "* ]] || variants+=("$v")
done
for v in "${variants[@]}"; do
    t=$SECONDS
    if "$E2E_DIR/build-guest.sh" "$v"; then
        echo "run-e2e.sh: guest $v ready in $((SECONDS - t)) s"
    else
        fail "build the guest (tests/e2e/build-guest.sh $v)"
        finish
    fi
done
work=$(mktemp -d /tmp/znstgt-e2e.XXXXXX)

# Two host identities: the guest is "this host" (allowed into the conv and zns
# subsystems) and uses the other one to check that access control holds.
uuid() { cat /proc/sys/kernel/random/uuid; }
GUEST_HOSTID=$(uuid) GUEST_OTHER_HOSTID=$(uuid)
export GUEST_HOSTID GUEST_OTHER_HOSTID
export GUEST_HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:$GUEST_HOSTID
export GUEST_OTHER_HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:$GUEST_OTHER_HOSTID

# ------------------------------------------------------------------ target
tpid='' port='' start_error=''
# The test subsystems; tcp-basic.sh, zns-basic.sh, zrwa.sh and faults.sh learn them from GUEST_*.
NQN_PREFIX=nqn.2024-01.io.znstgt.e2e
export GUEST_CONV_NQN=$NQN_PREFIX:conv GUEST_ZNS_NQN=$NQN_PREFIX:zns GUEST_ZRWA_NQN=$NQN_PREFIX:zrwa
# guest/faults.sh fails zones for good: a zoned subsystem of its own
export GUEST_FAULTS_NQN=$NQN_PREFIX:faults
# guest/zonefs.sh formats its namespace: one of its own, with a volatile
# write cache (zonefs' fsync sends a Flush)
export GUEST_ZONEFS_NQN=$NQN_PREFIX:zonefs GUEST_ZONEFS_SIZE=$((128 << 20))
export GUEST_SUBSYS_NQNS="$GUEST_CONV_NQN $GUEST_ZNS_NQN $GUEST_ZRWA_NQN $GUEST_FAULTS_NQN $GUEST_ZONEFS_NQN"
export GUEST_OTHER_SUBSYS_NQNS=$NQN_PREFIX:other
export GUEST_CONV_SIZE=$((256 << 20)) GUEST_CONV_LBA=4096
export GUEST_ZNS_SIZE=$((256 << 20)) GUEST_ZNS_LBA=4096 GUEST_ZONE_SIZE=$((16 << 20))
export GUEST_MAX_OPEN=4 GUEST_MAX_ACTIVE=6 GUEST_ZONE_APPEND_MAX=65536 GUEST_ZDE_SIZE=64
export GUEST_ZRWA_ZONE_SIZE=$((4 << 20)) GUEST_ZRWA_SIZE=$((64 << 10)) GUEST_ZRWA_FG=$((16 << 10))
export GUEST_ZRWA_RESOURCES=2

# subsys_file NAME NQN HOST: conf/NAME.ini, subsystem NQN for HOST only,
# with one namespace whose keys come on stdin
subsys_file() {
    { printf '[subsystem]\nnqn = %s\nallowed_hosts = %s\n\n[namespace 1]\n' "$2" "$3"; cat; } \
        > "$work/conf/$1.ini"
}
write_config() {
    mkdir -p "$work/conf" "$work/data"
    cat > "$work/znstgt.ini" <<EOF
[target]
listen = 127.0.0.1:$port
threads = 2
data_dir = $work/data
log_level = info
control_socket = $work/control.sock
include = conf/*.ini
EOF
    subsys_file faults "$GUEST_FAULTS_NQN" "$GUEST_HOSTNQN" <<EOF
zoned = yes
size = 64M
lba_size = $GUEST_ZNS_LBA
zone_size = $((GUEST_ZONE_SIZE >> 20))M
EOF
    subsys_file zonefs "$GUEST_ZONEFS_NQN" "$GUEST_HOSTNQN" <<EOF
zoned = yes
size = $((GUEST_ZONEFS_SIZE >> 20))M
lba_size = 4096
zone_size = $((GUEST_ZONE_SIZE >> 20))M
max_open = $GUEST_MAX_OPEN
max_active = $GUEST_MAX_ACTIVE
write_cache = yes
EOF
    subsys_file conv "$GUEST_CONV_NQN" "$GUEST_HOSTNQN" <<EOF
zoned = no
size = $((GUEST_CONV_SIZE >> 20))M
lba_size = $GUEST_CONV_LBA
EOF
    subsys_file zns "$GUEST_ZNS_NQN" "$GUEST_HOSTNQN" <<EOF
zoned = yes
size = $((GUEST_ZNS_SIZE >> 20))M
lba_size = $GUEST_ZNS_LBA
zone_size = $((GUEST_ZONE_SIZE >> 20))M
max_open = $GUEST_MAX_OPEN
max_active = $GUEST_MAX_ACTIVE
zone_append_max = $((GUEST_ZONE_APPEND_MAX >> 10))K
zde_size = $GUEST_ZDE_SIZE

[vfio-user]
socket = $work/vfio-zns.sock
EOF
    subsys_file zrwa "$GUEST_ZRWA_NQN" "$GUEST_HOSTNQN" <<EOF
size = 64M
zone_size = $((GUEST_ZRWA_ZONE_SIZE >> 20))M
zrwa_size = $((GUEST_ZRWA_SIZE >> 10))K
zrwa_flush_granularity = $((GUEST_ZRWA_FG >> 10))K
zrwa_resources = $GUEST_ZRWA_RESOURCES
EOF
    subsys_file other "$GUEST_OTHER_SUBSYS_NQNS" "$GUEST_OTHER_HOSTNQN" <<EOF
zoned = no
size = 64M
EOF
}

listening() { [ -n "$(ss -Hltn "sport = :$1")" ]; }
# start_target: start znstgt (on $port) and wait until it listens (TCP and
# the zns subsystem's vfio-user socket); on
# failure says why in $start_error
start_target() {
    "$build/znstgt" -c "$work/znstgt.ini" >> "$work/znstgt.log" 2>&1 &
    tpid=$!
    local i rc
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 $tpid 2> /dev/null; then
            rc=0; wait $tpid || rc=$?
            start_error="znstgt exited with status $rc"
            tpid=
            return 1
        fi
        # the vfio-user socket is bound after the TCP listener (once the
        # namespaces are open): wait for both
        listening "$port" && [ -S "$work/vfio-zns.sock" ] && return 0
        sleep 0.1
    done
    start_error="znstgt does not listen on 127.0.0.1:$port and $work/vfio-zns.sock after 10 s"
    return 1
}
# stop_target: SIGTERM, then the exit status of znstgt (SIGKILL after 10 s)
stop_target() {
    [ -n "$tpid" ] || return 0
    local pid=$tpid i rc=0
    tpid=
    kill -TERM $pid 2> /dev/null
    for ((i = 0; i < 100; i++)); do kill -0 $pid 2> /dev/null || break; sleep 0.1; done
    kill -0 $pid 2> /dev/null && { kill -KILL $pid; echo "znstgt ignored SIGTERM for 10 s: killed"; }
    wait $pid || rc=$?
    return $rc
}
# a free TCP port on 127.0.0.1 (not listened on now)
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        listening $p || { echo $p; return; }
    done
}
target_log_tail() { echo "--- last lines of $work/znstgt.log:"; tail -n 30 "$work/znstgt.log" | sed 's/^/    /'; }

# answer_host_calls SHARE PID: while PID runs, answer the guest's requests in
# SHARE (request.N -> reply.N)
answer_host_calls() {
    local share=$1 pid=$2 req n reply out
    while kill -0 "$pid" 2> /dev/null; do
        for req in "$share"/request.*; do
            [ -f "$req" ] || continue
            n=${req##*.}
            case $(< "$req") in
                ping) reply="ok pong" ;;
                restart-target)
                    if [ -z "$tpid" ]; then
                        reply="error: no target running"
                    else
                        kill -KILL $tpid
                        wait $tpid 2> /dev/null
                        echo "=== kill -9 and restart by run-e2e.sh" >> "$work/znstgt.log"
                        # the killed target's socket file stays (the new one
                        # replaces it): gone, start_target waits for the new
                        rm -f "$work/vfio-zns.sock"
                        if start_target; then reply="ok restarted (pid $tpid)"
                        else reply="error: restart failed: $start_error"; fi
                    fi ;;
                tcp-probe-zns)
                    # a TCP host on this machine beside the guest: one Zone
                    # Append (one block, bytes (i * 7 + 1) & 255) to zone 0
                    # of the zns namespace, read back (znstgt-probe)
                    if out=$("$build/tools/znstgt-probe" -a 127.0.0.1 -s "$port" -n "$GUEST_ZNS_NQN" \
                             -q "$GUEST_HOSTNQN" 2>&1); then reply="ok ${out//$'\n'/ }"
                    else reply="error: znstgt-probe: ${out//$'\n'/ }"; fi ;;
                ctl\ *)
                    read -ra words < "$req"
                    if reply=$("$build/znstgt-ctl" -s "$work/control.sock" "${words[@]:1}" 2>&1)
                    then reply="ok $reply"; else reply="error: $reply"; fi ;;
                *) reply="error: unknown request '$(< "$req")'" ;;
            esac
            rm -f "$req"
            echo "$reply" > "$share/.reply.$n"
            mv "$share/.reply.$n" "$share/reply.$n"
            echo "run-e2e.sh: guest asked '$n', answered '$reply'"
        done
        sleep 0.2
    done
}

# run_guest NAME SCRIPT [FILE...]: boot the guest with SCRIPT (helpers: lib.sh
# and FILEs), answer its host calls, count its PASS/FAIL/SKIP lines
run_guest() {
    local name=$1 script=$2 share=$work/guest-$1 rc=0 p f s t0=$SECONDS
    shift 2
    echo
    echo "======== $name"
    mkdir -p "$share"
    E2E_SHARE=$share "$E2E_DIR/run-guest.sh" "$script" "$GUEST_DIR/lib.sh" "$@" &
    local gpid=$!
    answer_host_calls "$share" $gpid
    wait $gpid || rc=$?
    count() { grep -c "^$1: " "$share/output.log" 2> /dev/null || true; }
    p=$(count PASS) f=$(count FAIL) s=$(count SKIP)
    p=${p:-0} f=${f:-0} s=${s:-0}
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    # a guest that failed without saying what (crash, timeout) is one failure
    if [ $rc != 0 ] && [ "$f" = 0 ]; then fail "$name: guest exit status $rc"; fi
    echo "======== $name: $p passed, $f failed, $s skipped (guest exit $rc) in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------ selftest
if [ -n "$selftest" ]; then
    run_guest selftest-kernel-nvmet "$GUEST_DIR/selftest-kernel-nvmet.sh" \
        "$GUEST_DIR/tcp-basic.sh" "$GUEST_DIR/zns-basic.sh"
    truncate -s 256M "$work/qemu-zns.img"
    E2E_QEMU_ARGS="-drive file=$work/qemu-zns.img,if=none,format=raw,cache=unsafe,id=zns
        -device nvme,id=nvme0,serial=e2e-qemu-zns,zoned.zasl=4
        -device nvme-ns,drive=zns,bus=nvme0,nsid=1,logical_block_size=4096,physical_block_size=4096,zoned=true,zoned.zone_size=16M,zoned.max_open=4,zoned.max_active=6,zoned.descr_ext_size=64" \
        run_guest selftest-qemu-zns "$GUEST_DIR/selftest-qemu-zns.sh" "$GUEST_DIR/zns-basic.sh"
    finish
fi

# ------------------------------------------------------------------ znstgt
echo
if [ -x "$build/znstgt" ] && "$build/znstgt" --help > "$work/help.txt" 2>&1; then
    pass "host: $build/znstgt --help works"
else
    fail "host: $build/znstgt exists and --help works"
    sed 's/^/    /' "$work/help.txt" 2> /dev/null | tail -5
    finish
fi
started=
for attempt in 1 2 3; do   # a port found free may be taken before we bind it
    port=$(free_port)
    write_config
    if start_target; then started=1; break; fi
    echo "run-e2e.sh: attempt $attempt on port $port: $start_error"
done
if [ -z "$started" ]; then
    fail "host: znstgt starts and listens"
    target_log_tail
    finish
fi
pass "host: znstgt (pid $tpid) listens on 127.0.0.1:$port"
export GUEST_TARGET_PORT=$port GUEST_RESTART=1

# ------------------------------------------------------------------ security target
# Secrets of the security tests (test keys, in the formats nvme-cli prints):
# a configured PSK (SHA-256), a host secret (transformed with SHA-512), a
# controller secret (SHA-256), and a valid secret that is neither.
export GUEST_TLS_NQN=$NQN_PREFIX:tls GUEST_AUTH_NQN=$NQN_PREFIX:auth GUEST_RESV_NQN=$NQN_PREFIX:resv
export GUEST_TLS_PSK="NVMeTLSkey-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOeXryU:"
export GUEST_DHCHAP_SECRET="DHHC-1:03:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+fx/Gj1o=:"
export GUEST_DHCHAP_CTRL_SECRET="DHHC-1:01:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj/jBqb2:"
export GUEST_DHCHAP_WRONG="DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
spid='' sec=''
write_sec_config() {
    sec=$work/sec
    mkdir -p "$sec/conf" "$sec/data"
    cat > "$sec/znstgt.ini" <<EOF
[target]
listen = 127.0.0.1:$GUEST_SEC_PORT
tls_listen = 127.0.0.1:$GUEST_SEC_TLS_PORT
threads = 2
data_dir = $sec/data
log_level = info
include = conf/*.ini
EOF
    # the PSK from a file, as an operator keeps it (group/other: no access)
    (umask 077 && echo "$GUEST_TLS_PSK" > "$sec/conf/tls.psk")
    sec_subsystem tls.ini "$GUEST_TLS_NQN" "psk_file = tls.psk"
    sec_subsystem auth.ini "$GUEST_AUTH_NQN" "dhchap_secret = $GUEST_DHCHAP_SECRET
dhchap_ctrl_secret = $GUEST_DHCHAP_CTRL_SECRET"
    # reservations (guest/resv.sh): any host, the guest connects as two
    printf '[subsystem]\nnqn = %s\nallow_any_host = yes\n\n[namespace 1]\nzoned = no\nsize = 64M\n' \
        "$GUEST_RESV_NQN" > "$sec/conf/resv.ini"
}
# sec_subsystem FILE NQN KEYS: a 64 MiB subsystem whose [host] section for
# the guest's host NQN has the lines KEYS
sec_subsystem() {
    cat > "$sec/conf/$1" <<EOF
[subsystem]
nqn = $2

[namespace 1]
zoned = no
size = 64M

[host $GUEST_HOSTNQN]
$3
EOF
}
# start_sec_target: the security tests' znstgt, once; 0 when it listens on both ports
start_sec_target() {
    [ -z "$spid" ] || return 0
    local attempt i
    for attempt in 1 2 3; do
        export GUEST_SEC_PORT GUEST_SEC_TLS_PORT
        GUEST_SEC_PORT=$(free_port)
        GUEST_SEC_TLS_PORT=$(free_port)
        [ "$GUEST_SEC_PORT" != "$GUEST_SEC_TLS_PORT" ] || continue
        write_sec_config
        "$build/znstgt" -c "$sec/znstgt.ini" >> "$sec/znstgt.log" 2>&1 &
        spid=$!
        for ((i = 0; i < 100; i++)); do
            kill -0 $spid 2> /dev/null || break
            listening "$GUEST_SEC_PORT" && listening "$GUEST_SEC_TLS_PORT" && return 0
            sleep 0.1
        done
        kill -KILL $spid 2> /dev/null; wait $spid 2> /dev/null; spid=''
        echo "run-e2e.sh: security target, attempt $attempt: not listening"
        tail -5 "$sec/znstgt.log"
    done
    return 1
}
# stop_sec_target: SIGTERM; it must exit 0, with no sanitizer report and no
# secret in its log
stop_sec_target() {
    [ -n "$spid" ] || return 0
    local rc=0 i
    kill -TERM $spid 2> /dev/null
    for ((i = 0; i < 100; i++)); do kill -0 $spid 2> /dev/null || break; sleep 0.1; done
    kill -0 $spid 2> /dev/null && kill -KILL $spid
    wait $spid || rc=$?
    spid=''
    if [ $rc = 0 ]; then
        pass "host: the security target exits 0 on SIGTERM"
    else
        fail "host: the security target exits 0 on SIGTERM (status $rc)"
        tail -20 "$sec/znstgt.log" | sed 's/^/    /'
    fi
    if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$sec/znstgt.log"; then
        fail "host: no sanitizer report in the security target's log"
    else
        pass "host: no sanitizer report in the security target's log"
    fi
    if grep -qF -e "${GUEST_TLS_PSK:16:20}" -e "${GUEST_DHCHAP_SECRET:10:20}" \
            -e "${GUEST_DHCHAP_CTRL_SECRET:10:20}" "$sec/znstgt.log"; then
        fail "host: no secret in the security target's log"
    else
        pass "host: no secret in the security target's log"
    fi
}

# run_sec_test NAME: guest/SCRIPT.sh of NAME on its guest variant, against
# the security target
run_sec_test() {
    local name=$1
    if ! start_sec_target; then
        fail "host: the security target starts and listens"
        return
    fi
    E2E_GUEST=${SEC_GUEST[$name]} run_guest "$name" "$GUEST_DIR/${name%-6.*}.sh"
    if ! kill -0 $spid 2> /dev/null; then
        fail "host: the security target survives $name"
        tail -20 "$sec/znstgt.log" | sed 's/^/    /'
        wait $spid
        spid=''
    fi
}

# ------------------------------------------------------------------ blktests
# prepare_blktests: a blktests tree with its helpers built, from
# $BLKTESTS_TARBALL, packed for the guest as $blktests_tar (kept in the cache,
# keyed by the tarball's checksum). Returns 1 with a reason in $blktests_skip
# when there is no tarball, 2 when it cannot be built.
blktests_tar='' blktests_skip=''
prepare_blktests() {
    [ -z "$blktests_tar" ] || return 0
    [ -z "$blktests_skip" ] || return 1
    if [ -z "${BLKTESTS_TARBALL:-}" ]; then
        blktests_skip="BLKTESTS_TARBALL is not set (a blktests tarball, tests/e2e/README.md)"
        return 1
    fi
    local sum dir src
    sum=$(sha256sum < "$BLKTESTS_TARBALL" | cut -c1-16) || return 2
    dir=${ZNSTGT_E2E_CACHE:-$HOME/.cache/znstgt-e2e}/blktests/$sum
    if [ ! -f "$dir/blktests.tar" ]; then
        echo "run-e2e.sh: building blktests from $BLKTESTS_TARBALL into $dir"
        rm -rf "$dir" && mkdir -p "$dir/tree" || return 2
        tar -xzf "$BLKTESTS_TARBALL" -C "$dir/tree" || return 2
        # with or without a leading directory (git archive --prefix)
        src=$(dirname "$(find "$dir/tree" -maxdepth 2 -name check -type f | head -1)")
        if [ ! -f "$src/check" ] || [ ! -d "$src/tests/nvme" ]; then
            echo "no blktests tree in $BLKTESTS_TARBALL"
            return 2
        fi
        make -s -C "$src/src" -j"$(nproc)" > "$dir/make.log" 2>&1 || { tail -20 "$dir/make.log"; return 2; }
        tar -cf "$dir/blktests.tar.tmp" -C "$src/.." --transform "s,^${src##*/},blktests," "${src##*/}" &&
            mv "$dir/blktests.tar.tmp" "$dir/blktests.tar" || return 2
    fi
    blktests_tar=$dir/blktests.tar
}

# run_blktests NAME: blktests' nvme group in the guest variant of NAME,
# against BUILD_DIR/znstgt started by the hook inside the guest
run_blktests() {
    local name=$1 rc=0
    prepare_blktests || rc=$?
    if [ $rc = 1 ]; then
        skipped=$((skipped + 1))
        echo "SKIP: $name: $blktests_skip"
        return
    elif [ $rc != 0 ]; then
        fail "$name: build blktests from $BLKTESTS_TARBALL"
        blktests_skip="blktests could not be built (above)"
        return
    fi
    E2E_GUEST=${BLKTESTS_GUEST[$name]} E2E_MEM=${E2E_MEM:-3072} \
        E2E_TIMEOUT=${E2E_BLKTESTS_TIMEOUT:-2400} \
        run_guest "$name" "$GUEST_DIR/blktests.sh" "$blktests_tar" "$build/znstgt" \
            "$build/znstgt-ctl" "$E2E_DIR/../nvme-target-control" "$build/tools/nvmet-hosts-fs"
}

# run_vfu_qemu: the vfio-user protocol server against QEMU's own vfio-user
# client (a QEMU from Debian sid, build-qemu.sh), without a guest OS:
# BUILD_DIR/tools/vfu-qemu-check drives the test device through qtest, once
# with guest RAM shared (DMA_MAP with fds), once unshared (DMA_READ/WRITE
# messages), once with the doorbell page as a sparse mmap area.
run_vfu_qemu() {
    local mode name log rc p f t0=$SECONDS
    echo
    echo "======== vfio-user-qemu"
    if ! "$E2E_DIR/build-qemu.sh"; then
        fail "vfio-user-qemu: build QEMU with the vfio-user client (tests/e2e/build-qemu.sh)"
        return
    fi
    for mode in --fd --no-fd --mmap-doorbell; do
        name=vfio-user-qemu${mode#-}
        log=$work/$name.log
        rc=0
        # --fd is the default: no option
        timeout -k 5 120 "$build/tools/vfu-qemu-check" ${mode/#--fd/} "$E2E_DIR/qemu-sid.sh" > "$log" 2>&1 || rc=$?
        sed -n "s/^\(PASS\|FAIL\|SKIP\): /\1: $name: /p" "$log"
        p=$(grep -c '^PASS: ' "$log") f=$(grep -c '^FAIL: ' "$log")
        passed=$((passed + p)) failed=$((failed + f))
        if [ $rc != 0 ] && [ "$f" = 0 ]; then
            fail "$name: vfu-qemu-check exit status $rc"
            tail -5 "$log" | sed 's/^/    /'
        fi
    done
    echo "======== vfio-user-qemu: done in $((SECONDS - t0)) s"
}

# run_vfio_zns: guest/vfio-zns.sh in three boots: a VM with the zns
# subsystem as a PCI NVMe controller over vfio-user (QEMU from build-qemu.sh,
# guest RAM a shared memfd) that ends with a kill -9 of the target, a host
# over NVMe/TCP, a second VM over vfio-user. Each finds the state/ the one
# before saved in its share.
run_vfio_zns() {
    local phase prev='' t0=$SECONDS dev
    if ! "$E2E_DIR/build-qemu.sh"; then
        fail "vfio-zns: build QEMU with the vfio-user client (tests/e2e/build-qemu.sh)"
        return
    fi
    # JSON: QEMU takes the socket address only so; no blanks (E2E_QEMU_ARGS
    # is split at them)
    dev='{"driver":"vfio-user-pci","rombar":0,"socket":{"type":"unix","path":"'$work/vfio-zns.sock'"}}'
    for phase in pcie tcp verify; do
        mkdir -p "$work/guest-vfio-zns-$phase"
        [ -z "$prev" ] || cp -r "$work/guest-vfio-zns-$prev/state" "$work/guest-vfio-zns-$phase/" 2> /dev/null
        if [ $phase = tcp ]; then
            GUEST_VFIO_PHASE=$phase run_guest vfio-zns-$phase "$GUEST_DIR/vfio-zns.sh"
        else
            GUEST_VFIO_PHASE=$phase E2E_QEMU=$E2E_DIR/qemu-sid.sh E2E_MEMFD=1 E2E_QEMU_ARGS="-device $dev" \
                run_guest vfio-zns-$phase "$GUEST_DIR/vfio-zns.sh" "$GUEST_DIR/zns-basic.sh"
        fi
        prev=$phase
        if [ -z "$tpid" ] || ! kill -0 "$tpid" 2> /dev/null; then
            fail "host: znstgt survives vfio-zns-$phase"
            target_log_tail
            return
        fi
    done
    pass "host: znstgt survives vfio-zns"
    echo "======== vfio-zns: three boots in $((SECONDS - t0)) s"
}

for t in "${tests[@]}"; do
    if [ -n "${BLKTESTS_GUEST[$t]:-}" ]; then run_blktests "$t"; continue; fi
    if [ -n "${SEC_GUEST[$t]:-}" ]; then run_sec_test "$t"; continue; fi
    if [ -n "${ANA_GUEST[$t]:-}" ]; then
        E2E_GUEST=${ANA_GUEST[$t]} run_guest "$t" "$GUEST_DIR/ana.sh" "$build/znstgt" "$build/znstgt-ctl"
        continue
    fi
    if [ "$t" = vfio-zns ]; then run_vfio_zns; continue; fi
    if [ "$t" = vfio-user-qemu ]; then run_vfu_qemu; continue; fi
    script=$GUEST_DIR/$t.sh
    [ -z "${OTHER_GUEST[$t]:-}" ] || script=$GUEST_DIR/${t%-6.*}.sh
    if [ ! -f "$script" ]; then fail "no guest test $script"; continue; fi
    E2E_GUEST=${OTHER_GUEST[$t]:-bookworm} run_guest "$t" "$script"
    [ -n "$tpid" ] || continue   # a failed restart-target: already a FAIL
    if kill -0 $tpid 2> /dev/null; then
        pass "host: znstgt survives $t"
    else
        died=0; wait $tpid || died=$?
        fail "host: znstgt survives $t (it exited with status $died)"
        target_log_tail
        start_target || { fail "host: znstgt starts again: $start_error"; break; }
    fi
done

echo
stop_sec_target
rc=0
if [ -z "$tpid" ]; then
    fail "host: znstgt is running at the end"
elif stop_target; then
    pass "host: znstgt exits 0 on SIGTERM"
else
    rc=$?
    fail "host: znstgt exits 0 on SIGTERM (status $rc)"
    target_log_tail
fi
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$work/znstgt.log"; then
    fail "host: no sanitizer report in the target's log"
    grep -m5 -A10 -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$work/znstgt.log" | sed 's/^/    /'
else
    pass "host: no sanitizer report in the target's log"
fi
finish
