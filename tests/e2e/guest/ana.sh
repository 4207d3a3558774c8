#!/bin/bash
# ana.sh - guest test: Asymmetric Namespace Access (doc/ana.md) with Linux's
# native NVMe multipath. znstgt runs inside the guest with two listeners,
# 127.0.0.1:4420 and 127.0.0.1:4421, serving one zoned subsystem; the host
# connects to it through both, so that its namespace is one multipath head
# with two paths. While fio writes and verifies the zones through the head,
# `znstgt-ctl ana set` makes each path inaccessible in turn (on 6.12 by way
# of non-optimized, below) and then optimized again: the host must see each
# state (the paths' ana_state in sysfs, as the ANA Change notice and log
# page told it), fio must finish with every block verified and no I/O
# error, and both controllers must disconnect.
#
# From the host (run-e2e.sh copies these into the share, beside this script):
#   znstgt, znstgt-ctl    the target and its control client
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=ana
. "$(dirname "$0")/lib.sh"

NQN=nqn.2024-01.io.znstgt.e2e:ana
work=/tmp/ana-e2e
ctl() { "$work/znstgt-ctl" -s "$work/control.sock" "$@"; }

step "ANA over two paths on $(uname -r), $(nvme version | head -1)"
mkdir -p "$work/data" "$work/conf"
cp "$E2E_SHARE/znstgt" "$E2E_SHARE/znstgt-ctl" "$work/"
require "znstgt runs in the guest" "$work/znstgt" --help
# The namespace lives in memory: tmpfs costs no emulated disk I/O.
require "a tmpfs for the target's data" mount -t tmpfs -o size=512M znstgt "$work/data"
on_exit "umount '$work/data'"
cat > "$work/znstgt.ini" <<EOF
[target]
listen = 127.0.0.1:4420, 127.0.0.1:4421
threads = 2
io_threads = 2
data_dir = data
control_socket = control.sock
include = conf/*.ini
EOF
cat > "$work/conf/ana.ini" <<EOF
[subsystem]
nqn = $NQN
allow_any_host = yes

[namespace 1]
size = 128M
zone_size = 8M
lba_size = 4096
EOF
"$work/znstgt" -c "$work/znstgt.ini" > "$work/znstgt.log" 2>&1 &
tpid=$!
on_exit "kill $tpid; wait $tpid"
require "znstgt answers on its control socket" "$work/znstgt-ctl" -s "$work/control.sock" -w 20 ping

e2e_host_setup
mp=$(cat /sys/module/nvme_core/parameters/multipath 2> /dev/null)
if [ "$mp" != Y ]; then
    skip "native NVMe multipath is off in this kernel (nvme_core.multipath=$mp)"
    e2e_finish
fi
for p in 4420 4421; do
    require "nvme connect through 127.0.0.1:$p" nvme connect -t tcp -a 127.0.0.1 -s $p -n "$NQN" \
        "${E2E_CONNECT_OPTS[@]}"
done
on_exit "nvme disconnect -n '$NQN'"
if ! ns=$(wait_ns "$NQN" 1); then
    fail "namespace 1 appears as a block device"
    e2e_finish
fi
dev=/dev/$ns
pass "namespace 1 is $dev"

# path_of PORT: the path disk (nvmeXcYnZ) of the controller connected to PORT
path_of() {
    local c
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2> /dev/null)" = "$NQN" ] || continue
        grep -q "trsvcid=$1\(,\|$\)" "$c/address" 2> /dev/null || continue
        for p in "$c"/nvme*c*n1; do [ -e "$p/ana_state" ] && { echo "$p"; return 0; }; done
    done
    return 1
}
paths=()
for p in 4420 4421; do
    if path=$(path_of $p); then paths+=("$path"); else fail "a path through port $p" \
        "$(ls /sys/class/nvme/*/ 2>&1 | head -20)"; e2e_finish; fi
done
expect "two paths below $ns" "$(ns_paths "$ns" | wc -l)" 2
# wait_ana PATH STATE: until the host shows STATE for PATH (20 s)
wait_ana() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(cat "$1/ana_state")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
for i in 0 1; do
    expect "path ${paths[$i]##*/}: ANA group 1" "$(cat "${paths[$i]}/ana_grpid")" 1
    expect "path ${paths[$i]##*/}: optimized at connect" "$(cat "${paths[$i]}/ana_state")" optimized
done

# One write at a time (fio queue depth 1): the multipath head orders no
# zoned writes, so with several in flight a write sent down one path can
# overtake an earlier one still on the other when the host switches paths
# (a Zone Invalid Write), on either kernel.
# How a path leaves: on Linux 6.1 at once (optimized -> inaccessible), so
# that a write in flight on it fails with the ANA path status and the host
# fails it over to the other path. Linux 6.12's zone write
# plugging cannot fail a zoned write over to another path (a WARN in
# blk-zoned.c, then the path's disk is never freed and `nvme disconnect`
# spins for ever): there the path first goes non-optimized, the host moves
# its I/O off it, and only then inaccessible, as a storage array moves its
# paths; the path status itself is covered by tests/component/test_ana_wire.c.
case $(uname -r) in
    6.1.*) abrupt=1 ;;
    *)     abrupt=0 ;;
esac
# set_state PORT STATE PATH: znstgt-ctl ana set, and the host shows it
set_state() {
    if run ctl ana set "127.0.0.1:$1" 1 "$2"; then
        pass "znstgt-ctl ana set 127.0.0.1:$1 1 $2"
    else
        fail "znstgt-ctl ana set 127.0.0.1:$1 1 $2" "$(last_output)"
    fi
    if wait_ana "$3" "$2"; then
        pass "the host sees ${3##*/} $2"
    else
        fail "the host sees ${3##*/} $2" "ana_state: $(cat "$3/ana_state")"
    fi
}

step "fio write + verify through $dev while each path goes inaccessible and comes back"
run blkzone reset "$dev"
fio --name=ana --filename="$dev" --direct=1 --ioengine=libaio --iodepth=1 --zonemode=zbd \
    --rw=write --bs=64k --size=128M --verify=crc32c --do_verify=1 --verify_backlog=64 \
    --output="$work/fio.log" > /dev/null 2>&1 &
fpid=$!
sleep 2
for i in 0 1; do
    path=${paths[$i]} port=$((4420 + i))
    [ $abrupt = 1 ] || set_state $port non-optimized "$path"
    set_state $port inaccessible "$path"
    # I/O goes on through the other path meanwhile
    sleep 3
    info "fio $(kill -0 $fpid 2> /dev/null && echo still running || echo done) with ${path##*/} inaccessible"
    subsys=$(nvme list-subsys "$dev" 2>&1 | grep trsvcid | sed 's/^[ +-]*//')
    if grep -q "trsvcid=$port.* inaccessible" <<< "$subsys"; then
        pass "nvme list-subsys shows port $port inaccessible"
    else
        fail "nvme list-subsys shows port $port inaccessible" "$subsys"
    fi
    set_state $port optimized "$path"
    sleep 1
done
rc=0
wait $fpid || rc=$?
if [ $rc = 0 ] && grep -q 'err= 0' "$work/fio.log"; then
    pass "fio wrote and verified 128 MiB with no error across the changes"
else
    fail "fio wrote and verified 128 MiB with no error across the changes (exit $rc)" \
        "$(grep -iE 'error|err=|verify|zone|wp' "$work/fio.log" | head -12)" "$(tail -6 "$work/fio.log")"
fi
if dmesg | grep -q "I/O error.*${ns}\|${ns}.*I/O error"; then
    fail "no I/O error on $ns in the kernel log" "$(dmesg | grep 'I/O error' | tail -5)"
else
    pass "no I/O error on $ns in the kernel log"
fi
info "$(ctl ana show 2>&1 | paste -sd ';')"
for c in /sys/class/nvme/nvme*; do
    [ "$(cat "$c/subsysnqn" 2> /dev/null)" = "$NQN" ] || continue
    step "disconnect ${c##*/}"
    check "nvme disconnect -d ${c##*/}" nvme disconnect -d "${c##*/}"
done
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$work/znstgt.log"; then
    fail "no sanitizer report in the target's log" "$(tail -20 "$work/znstgt.log")"
fi
e2e_finish
