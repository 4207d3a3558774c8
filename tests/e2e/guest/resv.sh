#!/bin/bash
# resv.sh - guest test: NVMe reservations from two hosts, as nvme-cli drives
# them on a real drive. The guest connects twice to one subsystem, as two
# hosts (two host NQNs, two host IDs); with native multipath off each
# connection has its own block device of the one namespace. Host A
# registers, takes Write Exclusive: B's write meets Reservation Conflict,
# its read does not, A's write passes; the report (extended data structure)
# names both registrants and the holder; A releases and B may write; B
# preempts A's Exclusive Access: A is unregistered and its reads conflict;
# Clear ends it.
#
# From the host (run-e2e.sh):
#   GUEST_TARGET_ADDR   target address (default $E2E_HOST_IP, the host)
#   GUEST_SEC_PORT      the second target's plain listener
#   GUEST_RESV_NQN      a subsystem any host may use, one conventional namespace
#   GUEST_HOSTNQN, GUEST_HOSTID, GUEST_OTHER_HOSTNQN, GUEST_OTHER_HOSTID   hosts A and B
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=resv
. "$(dirname "$0")/lib.sh"

addr=${GUEST_TARGET_ADDR:-$E2E_HOST_IP}
nqn=$GUEST_RESV_NQN

step "host: $(uname -r), $(nvme version | head -1)"
# One block device per controller: native multipath would put both hosts'
# controllers behind one device (and send each command down either path).
modprobe nvme-core multipath=N admin_timeout=15 io_timeout=15
e2e_host_setup
require "native multipath is off" grep -qx N /sys/module/nvme_core/parameters/multipath

# ns_of HOSTNQN: the block device of namespace 1 of the controller that
# host HOSTNQN has on the subsystem
ns_of() {
    local c b
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2> /dev/null)" = "$nqn" ] || continue
        [ "$(cat "$c/hostnqn" 2> /dev/null)" = "$1" ] || continue
        for b in "$c"/nvme*n1; do [ -e "$b" ] && { echo "/dev/${b##*/}"; return 0; }; done
    done
    return 1
}
# connect_as HOSTNQN HOSTID: the device in $got. Through /dev/nvme-fabrics
# (what nvme connect writes there): nvme-cli 2.3 refuses a second connection
# to the same subsystem and address as "already connected" whatever its host
# NQN, --duplicate-connect or not.
connect_as() {
    local i opts="transport=tcp,traddr=$addr,trsvcid=$GUEST_SEC_PORT,nqn=$nqn,hostnqn=$1,hostid=$2"
    require "connect as $1" sh -c "echo '$opts,reconnect_delay=1,ctrl_loss_tmo=30' > /dev/nvme-fabrics"
    for ((i = 0; i < 100; i++)); do
        got=$(ns_of "$1") && [ -b "$got" ] && return 0
        sleep 0.1
    done
    fail "namespace 1 appears for $1"
    e2e_finish
}
on_exit "nvme disconnect -n '$nqn'"
connect_as "$GUEST_HOSTNQN" "$GUEST_HOSTID"
a=$got
connect_as "$GUEST_OTHER_HOSTNQN" "$GUEST_OTHER_HOSTID"
b=$got
expect_true "two devices for the two hosts ($a, $b)" "$a" != "$b"

step "capabilities"
check "Identify Namespace: RESCAP is 0xff" sh -c "nvme id-ns $a | grep -Eq '^rescap +: 0xff'"
check "Identify Controller: ONCS has Reservations (bit 5)" \
    sh -c "[ \$(( \$(nvme id-ctrl $a | sed -n 's/^oncs *: //p') & 0x20 )) != 0 ]"

blk=/tmp/resv-block
head -c 4096 /dev/urandom > "$blk"
wr() { nvme write "$1" --start-block=0 --block-count=0 --data-size=4096 --data="$blk"; }
rd() { nvme read "$1" --start-block=0 --block-count=0 --data-size=4096 --data=/dev/null; }
# conflicts NAME CMD...: CMD fails with the Reservation Conflict status
conflicts() {
    local name=$1 rc=0
    shift
    run "$@" || rc=$?
    if [ $rc != 0 ] && grep -qiE 'reservation.?conflict' "$E2E_LOG"; then
        pass "$name"
    else
        fail "$name" "\$ $* -> exit $rc (want a Reservation Conflict)"
        last_output
    fi
}
report() { nvme resv-report "$1" --eds; }
field() { sed -n "s/^$1 *: *//p" "$E2E_LOG" | head -1; }

step "register, Write Exclusive"
check "A registers (key 0xa1)" nvme resv-register "$a" --nrkey=0xa1 --rrega=0
check "B registers (key 0xb2)" nvme resv-register "$b" --nrkey=0xb2 --rrega=0
check_fails "B cannot register again with another key" nvme resv-register "$b" --nrkey=0xb3 --rrega=0
check "A acquires Write Exclusive" nvme resv-acquire "$a" --crkey=0xa1 --rtype=1 --racqa=0
conflicts "B's write meets Reservation Conflict" wr "$b"
check "B's read passes" rd "$b"
check "A's write passes" wr "$a"
conflicts "B cannot acquire it" nvme resv-acquire "$b" --crkey=0xb2 --rtype=1 --racqa=0
if check "B's report (extended data structure)" report "$b"; then
    expect "report: type" "$(field rtype)" 1
    expect "report: registrants" "$(field regctl)" 2
fi

step "release"
check "A releases" nvme resv-release "$a" --crkey=0xa1 --rtype=1 --rrela=0
check "B's write passes" wr "$b"

step "preempt"
check "A acquires Exclusive Access" nvme resv-acquire "$a" --crkey=0xa1 --rtype=2 --racqa=0
conflicts "B's read meets Reservation Conflict" rd "$b"
check "B preempts A (Write Exclusive)" nvme resv-acquire "$b" --crkey=0xb2 --prkey=0xa1 \
    --rtype=1 --racqa=1
conflicts "A, preempted, cannot write" wr "$a"
check "A, preempted, reads" rd "$a"
if check "A's report" report "$a"; then
    expect "report: type" "$(field rtype)" 1
    expect "report: registrants" "$(field regctl)" 1
fi
check_fails "A, unregistered, cannot release" nvme resv-release "$a" --crkey=0xa1 --rtype=1 --rrela=0

step "clear"
check "B clears" nvme resv-release "$b" --crkey=0xb2 --rrela=1
check "A's write passes" wr "$a"
if check "report after Clear" report "$a"; then
    expect "report: registrants" "$(field regctl)" 0
fi
e2e_finish
