#!/bin/bash
# zns-basic.sh - guest test: a zoned (ZNS) namespace as the Linux host sees
# it: the block layer's zone limits, the zone state machine through blkzone,
# nvme-cli's ZNS commands, fio --zonemode=zbd with verify, and (with
# GUEST_RESTART=1) a kill -9 of the target: write pointers, zone states and
# data must be as before once the host has reconnected.
#
# From the host (GUEST_* variables reach the guest):
#   GUEST_TARGET_ADDR/GUEST_TARGET_PORT, GUEST_HOSTNQN/GUEST_HOSTID  as in tcp-basic.sh
#   GUEST_ZNS_NQN       the subsystem with the zoned namespace (NSID 1)
#   GUEST_ZNS_DEV       or: an already present zoned block device to test
#                       instead (the self-test's reference devices)
#   GUEST_ZNS_SIZE      namespace size in bytes; GUEST_ZNS_LBA its LBA size
#   GUEST_ZONE_SIZE     zone size in bytes (zone capacity = zone size)
#   GUEST_MAX_OPEN / GUEST_MAX_ACTIVE   zone limits, 0 = none
#   GUEST_ZONE_APPEND_MAX   Zone Append size limit in bytes
#   GUEST_ZDE_SIZE      zone descriptor extension size in bytes (0 = none)
#   GUEST_SKIP          features the target under test lacks, reported as
#                       SKIP: any of "zde changed-zone-list"
#   GUEST_RESTART=1     run the restart phase (needs run-e2e.sh on the host)
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=zns-basic
. "$(dirname "$0")/lib.sh"

nqn=${GUEST_ZNS_NQN:-}
size=$GUEST_ZNS_SIZE
lba=$GUEST_ZNS_LBA
zone=$GUEST_ZONE_SIZE
max_open=$GUEST_MAX_OPEN
max_active=$GUEST_MAX_ACTIVE
append_max=$GUEST_ZONE_APPEND_MAX
zde=${GUEST_ZDE_SIZE:-0}
zsec=$((zone / 512))          # zone size in 512-byte sectors (blkzone's unit)
zlba=$((zone / lba))          # zone size in LBAs (nvme-cli's unit)
nr_zones=$((size / zone))
skipped() { [[ " ${GUEST_SKIP:-} " == *" $1 "* ]]; }

step "host: $(uname -r), $(nvme version | head -1), $(blkzone --version)"
e2e_host_setup
if [ -n "${GUEST_ZNS_DEV:-}" ]; then
    dev=$GUEST_ZNS_DEV
    ns=${dev#/dev/}
    info "testing the local device $dev"
else
    connect_ns "$nqn"
fi

# ------------------------------------------------------------------ limits
step "what the block layer made of it"
# The block devices that queue the requests: the namespace, or with
# multipath (CMIC bit 1: several controllers may share the subsystem) the
# path disks below the bio-based head.
paths=$(ns_paths "$ns")
# 6.1 keeps writes to a zone in order (one in flight per zone) only under
# mq-deadline, and picks a path disk's scheduler before it knows the disk is
# zoned, so it gets none; set it as blktests does for its test device, or
# writes at queue depth > 1 reach the target out of order.
for b in ${paths:-$ns}; do
    check "mq-deadline scheduler on $b" sh -c "echo mq-deadline > /sys/block/$b/queue/scheduler"
done
# 6.1 does not stack the zone resource limits onto a multipath head either
# (max_open/active_zones read 0 there): read them from the (first) path.
q=/sys/block/$ns/queue
if [ -n "$paths" ]; then
    q=/sys/block/$(head -1 <<< "$paths")/queue
    info "$ns is a multipath head over $(xargs <<< "$paths"); on the head max_open_zones is" \
         "$(< "/sys/block/$ns/queue/max_open_zones"), max_active_zones $(< "/sys/block/$ns/queue/max_active_zones")"
fi
info "limits from $q"
hw_bytes=$(( $(< "$q/max_hw_sectors_kb") * 1024 ))
want_append=$append_max
[ "$hw_bytes" -lt "$want_append" ] && want_append=$hw_bytes
[ "$zone" -lt "$want_append" ] && want_append=$zone
expect "zoned" "$(< "$q/zoned")" host-managed
expect "chunk_sectors (zone size in sectors)" "$(< "$q/chunk_sectors")" "$zsec"
expect "nr_zones" "$(< "$q/nr_zones")" "$nr_zones"
expect "max_open_zones" "$(< "$q/max_open_zones")" "$max_open"
expect "max_active_zones" "$(< "$q/max_active_zones")" "$max_active"
expect "zone_append_max_bytes (min of the limit, MDTS, zone size)" "$(< "$q/zone_append_max_bytes")" "$want_append"
expect "logical_block_size" "$(< "$q/logical_block_size")" "$lba"
expect "size (sectors)" "$(< "/sys/block/$ns/size")" $((size / 512))

step "nvme zns id-ctrl / id-ns"
if check "nvme zns id-ctrl" nvme zns id-ctrl "$dev" -o json; then
    zasl=$(jq -r .zasl "$E2E_LOG")
    if [ "$zasl" = 0 ]; then
        expect "ZASL 0 (= MDTS): append limit is the transfer limit" "$(< "$q/zone_append_max_bytes")" "$hw_bytes"
    else
        expect "ZASL $zasl: 4 KiB << ZASL = zone_append_max_bytes" $((4096 << zasl)) "$(< "$q/zone_append_max_bytes")"
    fi
fi
if check "nvme zns id-ns" nvme zns id-ns "$dev" -o json; then
    read -r zoc mor mar zsze zdes < <(jq -r '[.zoc, .mor, .mar, .lbafe[0].zsze, .lbafe[0].zdes] | @tsv' "$E2E_LOG")
    zeros_based() { if [ "$1" = 0 ]; then echo 4294967295; else echo $(($1 - 1)); fi; }
    expect "ZOC" "$zoc" 0
    expect "MOR (0's based, all ones = no limit)" "$mor" "$(zeros_based "$max_open")"
    expect "MAR (0's based, all ones = no limit)" "$mar" "$(zeros_based "$max_active")"
    expect "LBAFE 0 ZSZE (zone size in LBAs)" "$zsze" "$zlba"
    expect "LBAFE 0 ZDES (extension size / 64)" "$zdes" $((zde / 64))
fi

# ------------------------------------------------------------------ reports
step "zone reports"
zones > /tmp/zones
expect "blkzone report: $nr_zones zones" "$(wc -l < /tmp/zones)" "$nr_zones"
expect "blkzone report: zones are contiguous from sector 0" "$(cut -d' ' -f1 /tmp/zones | md5sum)" \
    "$(seq 0 "$zsec" $(((nr_zones - 1) * zsec)) | md5sum)"
expect "blkzone report: every zone's len, cap, state, wp" "$(cut -d' ' -f2- /tmp/zones | sort -u)" "$zsec $zsec em 0"
if check "nvme zns report-zones" nvme zns report-zones "$dev" -o json; then
    read -r nr slba1 types < <(jq -r '[.nr_zones, .zone_list[1].slba, ([.zone_list[].type] | unique | join(","))]
                                      | @tsv' "$E2E_LOG")
    expect "report-zones: nr_zones" "$nr" "$nr_zones"
    expect "report-zones: zone 1 starts at LBA $zlba" "$slba1" "$zlba"
    expect "report-zones: all zones sequential-write-required (type 2)" "$types" SEQWRITE_REQ
fi
if check "report-zones of 3 zones from zone 2" \
        nvme zns report-zones "$dev" -s $((2 * zlba)) -d 3 -o json; then
    expect "report of 3 zones: first zone, descriptors" \
        "$(jq -r '[.zone_list[0].slba, (.zone_list | length)] | @tsv' "$E2E_LOG")" "$(printf '%d\t3' $((2 * zlba)))"
fi

# ------------------------------------------------------------------ state machine
step "writes and the zone state machine (dd O_DIRECT, blkzone)"
check "write 1 MiB at the start of zone 0" zwrite 0 0 $((1 << 20))
cp /tmp/zone-0-0 /tmp/zone0-data
zone_is "after a write" 0 oi $(((1 << 20) / 512))
check_fails "a write past the write pointer is refused" zwrite 0 $((2 << 20)) 4096
check_fails "a write below the write pointer is refused" zwrite 0 0 4096
zone_is "the refused writes changed nothing" 0 oi $(((1 << 20) / 512))
check "a write at the write pointer" zwrite 0 $((1 << 20)) 4096
zone_is "after the second write" 0 oi $(((1 << 20) / 512 + 8))
if zread 0 0 $((1 << 20)) /tmp/rb && cmp -s /tmp/rb /tmp/zone0-data; then pass "zone 0 reads back"
else fail "zone 0 reads back"; last_output; fi
check "read below/above the write pointer (unwritten LBAs read fine)" zread 0 $((4 << 20)) 65536 /tmp/rb
check "blkzone open zone 1" bz open 1
zone_is "explicitly opened" 1 oe 0
check "blkzone close zone 0" bz close 0
zone_is "closed keeps its write pointer" 0 cl $(((1 << 20) / 512 + 8))
check "write to the closed zone 0 at its write pointer reopens it" zwrite 0 $(((1 << 20) + 4096)) 4096
zone_is "reopened" 0 oi $(((1 << 20) / 512 + 16))
check "blkzone finish zone 0" bz finish 0
zone_is "finished" 0 fu "$zsec"
check_fails "a write into a full zone is refused" zwrite 0 0 4096
check "blkzone finish zone 1 (explicitly open, empty)" bz finish 1
zone_is "finished" 1 fu "$zsec"
check "blkzone reset zone 0" bz reset 0
zone_is "reset" 0 em 0
check "fill zone 2 completely with one dd" zwrite 2 0 "$zone"
zone_is "written to capacity: full" 2 fu "$zsec"
reset_all "reset all zones (Select All)"
expect "all zones empty after reset all" "$(all_zones | sort -u | xargs)" "em 0"

if [ "$max_open" -gt 0 ]; then
    step "open zone limit ($max_open)"
    check "explicitly open $max_open zones" bz open 0 "$max_open"
    check_fails "opening one more is refused (Too Many Open Zones)" bz open "$max_open"
    zone_is "the refused zone stays empty" "$max_open" em 0
    reset_all
fi
if [ "$max_active" -gt 0 ] && [ "$max_active" -lt "$nr_zones" ]; then
    step "active zone limit ($max_active)"
    ok=1
    for ((z = 0; z < max_active; z++)); do zwrite $z 0 4096 || { ok=; break; }; done
    if [ -n "$ok" ]; then pass "a write into each of $max_active zones (implicitly closing when $max_open are open)"
    else fail "a write into each of $max_active zones: zone $z failed"; last_output; fi
    expect "zones active (open or closed)" "$(all_zones | grep -cE '^(oi|oe|cl) ')" "$max_active"
    check_fails "a write into one more zone is refused (Too Many Active Zones)" zwrite "$max_active" 0 4096
    check "finish the last zone written (frees an active zone)" bz finish $((max_active - 1))
    check "now the write succeeds" zwrite "$max_active" 0 4096
    reset_all
fi

# ------------------------------------------------------------------ nvme-cli ZNS
step "zone append (nvme zns zone-append)"
slba=$((2 * zlba))
head -c 4096 /dev/urandom > /tmp/a1
head -c 8192 /dev/urandom > /tmp/a2
if alba=$(append /tmp/a1); then expect "append 4 KiB to empty zone 2: written at the zone start" "$alba" "$slba"
else fail "zone-append 4 KiB"; last_output; fi
if alba=$(append /tmp/a2); then expect "append 8 KiB: written at the write pointer" "$alba" $((slba + 4096 / lba))
else fail "zone-append 8 KiB"; last_output; fi
zone_is "after two appends" 2 oi $((12288 / 512))
cat /tmp/a1 /tmp/a2 > /tmp/a12
if zread 2 0 12288 /tmp/rb && cmp -s /tmp/rb /tmp/a12; then pass "appended data reads back"
else fail "appended data reads back"; last_output; fi
head -c $((2 * append_max)) /dev/urandom > /tmp/abig
check_fails "an append of 2 x the append limit is refused" \
    nvme zns zone-append "$dev" -s $slba -z $((2 * append_max)) -d /tmp/abig
check_fails "an append to an LBA that is not a zone start is refused" \
    nvme zns zone-append "$dev" -s $((slba + 1)) -z 4096 -d /tmp/a1
zone_is "refused appends changed nothing" 2 oi $((12288 / 512))

step "nvme zns open/close/finish/reset-zone"
check "nvme zns open-zone zone 3" nvme zns open-zone "$dev" -s $((3 * zlba))
zone_is "open-zone" 3 oe 0
check "nvme zns close-zone zone 2" nvme zns close-zone "$dev" -s "$slba"
zone_is "close-zone" 2 cl $((12288 / 512))
check "nvme zns finish-zone zone 2" nvme zns finish-zone "$dev" -s "$slba"
zone_is "finish-zone" 2 fu "$zsec"
check_fails "zone management on an LBA that is not a zone start is refused" \
    nvme zns finish-zone "$dev" -s $((slba + 1))
check "nvme zns reset-zone --select-all" nvme zns reset-zone "$dev" -a
expect "all zones empty" "$(all_zones | sort -u | xargs)" "em 0"

step "zone descriptor extension (nvme zns set-zone-desc)"
if skipped zde || [ "$zde" = 0 ]; then
    skip "set-zone-desc: the target under test has no zone descriptor extensions"
else
    head -c "$zde" /dev/urandom > /tmp/zde
    z4=$((4 * zlba))
    check "set-zone-desc on empty zone 4" nvme zns set-zone-desc "$dev" -s $z4 -d /tmp/zde
    # nvme-cli prints the extended report as, per zone,
    #   SLBA: 0x4000 WP: 0x4000 Cap: 0x1000 State: 0x40 Type: 0x2 Attrs: 0x80 AttrsInfo: 0
    #   Extension Data:        0  1  2 ...
    #   0000: b0 0f 05 ... (16 bytes a line)
    # (its binary and JSON forms are unusable in nvme-cli 2.3)
    if run nvme zns report-zones "$dev" -s $z4 -d 1 -e; then
        cp "$E2E_LOG" /tmp/zrep
        expect "extended report: the extension reads back" \
            "$(grep -E '^[0-9a-f]+: ' /tmp/zrep | awk '{ for (i = 2; i <= 17; i++) printf "%s ", $i }' | xargs)" \
            "$(od -An -tx1 -v /tmp/zde | xargs)"
        expect "extended report: state closed (an extension makes an empty zone closed)" \
            "$(sed -n 's/.*State: \(0x[0-9a-f]*\).*/\1/p' /tmp/zrep)" 0x40
        expect "extended report: attribute ZDEV (zone descriptor extension valid)" \
            "$(sed -n 's/.*Attrs: \(0x[0-9a-f]*\).*/\1/p' /tmp/zrep)" 0x80
    else
        fail "nvme zns report-zones --extended"; last_output
    fi
    zone_is "blkzone sees the zone closed" 4 cl 0
    check "reset zone 4 (drops the extension)" nvme zns reset-zone "$dev" -s $z4
    zone_is "reset" 4 em 0
fi

step "changed zone list (log page BFh)"
if skipped changed-zone-list; then
    skip "changed-zone-list: the target under test does not support the log page"
elif run nvme zns changed-zone-list "$dev" -o binary; then
    # log page: NRZID (16 bits) then zone identifiers; no zone changed by itself
    expect "changed zone list: no zones (the controller changed none by itself)" \
        "$(od -An -tu2 -N 2 "$E2E_LOG" | xargs)" 0
else
    fail "nvme zns changed-zone-list"; last_output
fi

# ------------------------------------------------------------------ fio
step "fio --zonemode=zbd, sequential writes with verify"
fio_open=${max_open}
[ "$fio_open" = 0 ] && fio_open=4
if run fio --name=zbd --filename="$dev" --zonemode=zbd --direct=1 --ioengine=libaio --iodepth=4 \
        --rw=write --bs=64k --offset=$((4 * zone)) --size=$((2 * zone)) --max_open_zones="$fio_open" \
        --verify=crc32c --do_verify=1 --verify_fatal=1 && grep -q 'err= 0' "$E2E_LOG"; then
    pass "fio zbd write+verify of 2 zones: $(grep -oE 'WRITE: bw=[^ ]+' "$E2E_LOG")"
else
    fail "fio zbd write+verify"; last_output 25
fi
for z in 4 5; do zone_is "fio filled" $z fu "$zsec"; done
reset_all

# ------------------------------------------------------------------ restart
if [ "${GUEST_RESTART:-0}" = 1 ]; then
    step "kill -9 of the target, restart, reconnect: state and data survive"
    # zone 8: open with 3 MiB; 9: 1 MiB then finished; 10: 2 MiB then closed;
    # 11: explicitly opened, empty; 12: two zone appends
    zwrite 8 0 $((3 << 20)) && zwrite 9 0 $((1 << 20)) && bz finish 9 &&
        zwrite 10 0 $((2 << 20)) && bz close 10 && bz open 11 &&
        slba=$((12 * zlba)) && append /tmp/a1 > /dev/null && append /tmp/a2 > /dev/null
    expect "set up zones 8-12 before the kill" "$?" 0
    all_zones > /tmp/before
    zread 8 0 $((3 << 20)) /tmp/r8; zread 9 0 $((1 << 20)) /tmp/r9; zread 10 0 $((2 << 20)) /tmp/r10
    zread 12 0 12288 /tmp/r12
    wwid=$(< "/sys/block/$ns/wwid")
    if host_call restart-target; then
        pass "the host killed the target with SIGKILL and started it again"
        if wait_ctrl_state "$nqn" live 40 && ns2=$(wait_ns "$nqn" 1 10); then
            pass "the kernel reconnected by itself"
            expect "same block device after the reconnect" "$ns2" "$ns"
            expect "namespace identifiers unchanged (wwid)" "$(< "/sys/block/$ns/wwid")" "$wwid"
            # power-up: open zones come back closed; the empty open one empty
            awk '{ c = $1; if (c == "oi" || c == "oe") c = ($2 == 0 ? "em" : "cl"); print c, $2 }' /tmp/before > /tmp/want
            all_zones > /tmp/after
            if cmp -s /tmp/want /tmp/after; then
                pass "every zone's write pointer and state as before (open -> closed)"
            else
                mapfile -t diffs < <(paste -d'|' /tmp/want /tmp/after |
                                     awk -F'|' '$1 != $2 { print "zone " NR - 1 ": want " $1 ", got " $2 }')
                fail "every zone's write pointer and state as before (open -> closed)" "${diffs[@]}"
            fi
            for z in 8 9 10 12; do
                case $z in 8) n=$((3 << 20)) ;; 9) n=$((1 << 20)) ;; 10) n=$((2 << 20)) ;; 12) n=12288 ;; esac
                if zread $z 0 "$n" /tmp/rr && cmp -s /tmp/rr /tmp/r$z; then pass "zone $z data intact"
                else fail "zone $z data intact"; fi
            done
            expect "zone 12 data is what was appended" "$(md5sum < /tmp/r12)" "$(md5sum < /tmp/a12)"
            check "writing continues at zone 8's write pointer" zwrite 8 $((3 << 20)) 65536
            zone_is "zone 8 after the write" 8 oi $(((3 << 20) / 512 + 128))
            if alba=$(append /tmp/a1); then
                expect "zone append after the restart lands at the write pointer" "$alba" $((slba + 3))
            else
                fail "zone append after the restart"; last_output
            fi
        else
            fail "the kernel reconnected by itself" "controller state: $(cat /sys/class/nvme/*/state 2>&1 | xargs)"
        fi
    else
        fail "the host restarted the target"
    fi
fi

e2e_finish
