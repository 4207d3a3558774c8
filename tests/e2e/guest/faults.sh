#!/bin/bash
# faults.sh - guest test: what a Linux host makes of the faults the operator
# injects (doc/fault-injection.md), asked of the target through run-e2e.sh
# (host_call ctl ...), on a zoned namespace of its own:
#   - an injected Unrecovered Read Error (DNR set) fails dd at once (with
#     ENODATA: Linux's errno for a medium error), and the kernel logs the
#     NVMe status; the next read works;
#   - an injected Internal Error with DNR clear, once: the kernel retries
#     and dd succeeds;
#   - a zone taken read-only, then one taken offline: blkzone report shows
#     them so (ro, of), writes fail, the read-only zone's data still
#     reads, the offline zone does not, and the Changed Zone List (nvme-cli)
#     lists both.
#
# From the host: GUEST_TARGET_PORT, GUEST_FAULTS_NQN (NSID 1: 64 MiB of
# GUEST_ZONE_SIZE zones, LBA GUEST_ZNS_LBA), and the "ctl" host call.
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=faults
. "$(dirname "$0")/lib.sh"

nqn=$GUEST_FAULTS_NQN
zone=$GUEST_ZONE_SIZE
lba=$GUEST_ZNS_LBA
zsec=$((zone / 512))
zlba=$((zone / lba))
ctl() { host_call ctl "$@"; }

step "host: $(uname -r), $(nvme version | head -1)"
e2e_host_setup
connect_ns "$nqn"
on_exit "host_call ctl inject clear all"
for b in $(ns_paths "$ns") $ns; do echo mq-deadline > "/sys/block/$b/queue/scheduler" 2> /dev/null; done

# zcond Z: blkzone's condition of zone Z (em, oi, ..., ro, of)
zcond() {
    local rest
    rest=$(blkzone report -o $(($1 * zsec)) -c 1 "$dev")
    rest=${rest#*zcond:}; rest=${rest#*(}; echo "${rest%%)*}"
}
# dd_read Z BYTES FILE / dd_write Z BYTES FILE: one O_DIRECT read into FILE /
# write of FILE at the start of zone Z (run through check and check_fails)
# shellcheck disable=SC2317
dd_read() { dd if="$dev" of="$3" bs="$2" count=1 skip=$(($1 * zone)) iflag=direct,skip_bytes status=none; }
# shellcheck disable=SC2317
dd_write() { dd if="$3" of="$dev" bs="$2" count=1 seek=$(($1 * zone)) oflag=direct,seek_bytes conv=notrunc status=none; }

head -c 65536 /dev/urandom > /tmp/data
for z in 0 1 2; do check "write 64 KiB into zone $z" dd_write $z 65536 /tmp/data; done

# ------------------------------------------------------------------ errors
step "an injected media error reaches the application and the kernel log"
dmesg -C
if ctl inject error "$nqn" 1 op=read lba=0+16 status=2:0x81 count=1; then
    pass "inject error: Unrecovered Read Error on zone 0's first 16 blocks, once"
    check_fails "dd read of zone 0 fails" dd_read 0 65536 /tmp/back
    # Linux turns a media error into BLK_STS_MEDIUM, which reaches the
    # application as ENODATA ("No data available"); other errors as EIO.
    expect "dd's error is the medium error's" "$(grep -o 'No data available' "$E2E_LOG")" \
        "No data available"
    sleep 1
    if dmesg | grep -qiE 'Unrecovered Read Error|sct 0x2 / sc 0x81|critical medium error'; then
        pass "the kernel logs the status: $(dmesg | grep -iE 'Unrecovered Read Error|sct 0x2 / sc 0x81|critical medium error' | head -2 | xargs)"
    else
        fail "the kernel logs the media error" "$(dmesg | tail -10)"
    fi
    check "the count ran out: dd read of zone 0 works" dd_read 0 65536 /tmp/back
    check "and returns the data written" cmp /tmp/data /tmp/back
else
    fail "inject error on $nqn"
fi

step "a retryable error (DNR clear) once: the kernel retries"
if ctl inject error "$nqn" 1 op=read zone=$zlba status=0:0x6 dnr=no count=1; then
    check "dd read of zone 1 works (retried)" dd_read 1 65536 /tmp/back
    check "with the data written" cmp /tmp/data /tmp/back
    ctl inject list > /tmp/list
    if grep -qx "    host: ok 0 injection(s)" /tmp/list; then
        pass "the one injection fired (the list is empty)"
    else
        fail "the one injection fired"
    fi
else
    fail "inject error dnr=no on $nqn"
fi

# ------------------------------------------------------------------ zones
step "zones that fail: read-only, offline"
if ctl zone read-only "$nqn" 1 $zlba; then
    expect "blkzone report: zone 1 read-only" "$(zcond 1)" ro
    check "zone 1 still reads" dd_read 1 65536 /tmp/back
    check "its data" cmp /tmp/data /tmp/back
    check_fails "a write to zone 1 fails" dd_write 1 4096 /tmp/data
    check_fails "blkzone reset of zone 1 fails" blkzone reset -o $zsec -c 1 "$dev"
else
    fail "zone read-only"
fi
if ctl zone offline "$nqn" 1 $((2 * zlba)); then
    expect "blkzone report: zone 2 offline" "$(zcond 2)" of
    check_fails "a read of zone 2 fails" dd_read 2 4096 /tmp/back
    expect "zone 0 unchanged" "$(zcond 0)" oi
else
    fail "zone offline"
fi
if run nvme zns changed-zone-list "$dev" -o binary; then
    # NRZID, then 8-byte zone IDs (ZSLBAs) from byte 8
    expect "changed zone list: zones 1 and 2" \
        "$(od -An -tu2 -N 2 "$E2E_LOG" | xargs) $(od -An -tu8 -j 8 -N 16 "$E2E_LOG" | xargs)" \
        "2 $zlba $((2 * zlba))"
else
    fail "nvme zns changed-zone-list"; last_output
fi
e2e_finish
