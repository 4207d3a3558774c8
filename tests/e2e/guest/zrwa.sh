#!/bin/bash
# zrwa.sh - guest test: a zoned namespace's Zone Random Write Area as a Linux
# host drives it with nvme-cli passthrough (the block layer itself writes only
# at the write pointer): Identify, Open with ZRWA allocation, writes anywhere
# in the window and over each other, implicit flush, zrwa-flush-zone, Zone
# Append refused, and (with GUEST_RESTART=1) a kill -9 of the target: the
# ZRWA, the write pointer and the window's data come back.
#
# From the host (GUEST_* variables reach the guest):
#   GUEST_TARGET_ADDR/GUEST_TARGET_PORT, GUEST_HOSTNQN/GUEST_HOSTID  as in tcp-basic.sh
#   GUEST_ZRWA_NQN        the subsystem whose namespace 1 has a ZRWA
#   GUEST_ZRWA_ZONE_SIZE  zone size in bytes (4 KiB blocks)
#   GUEST_ZRWA_SIZE       ZRWA size in bytes; GUEST_ZRWA_FG its flush granularity
#   GUEST_ZRWA_RESOURCES  zones that may hold a ZRWA at once
#   GUEST_RESTART=1       run the restart phase (needs run-e2e.sh on the host)
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=zrwa
. "$(dirname "$0")/lib.sh"

nqn=$GUEST_ZRWA_NQN
lba=4096
zlba=$((GUEST_ZRWA_ZONE_SIZE / lba))   # zone size in LBAs
zsec=$((GUEST_ZRWA_ZONE_SIZE / 512))   # in blkzone's 512-byte sectors
zrwas=$((GUEST_ZRWA_SIZE / lba))
fg=$((GUEST_ZRWA_FG / lba))

step "host: $(uname -r), $(nvme version | head -1)"
e2e_host_setup
connect_ns "$nqn"

# ------------------------------------------------------------------ helpers
# zone Z: "<cond> <wp> <attrs>": blkzone's condition (em oi oe cl fu), the
# write pointer in LBAs from the zone start (nvme zns report-zones) and the
# zone attributes byte, read from the raw report (byte 2 of the descriptor
# after the 64-byte header; nvme-cli 2.3 prints a "nr_zones: N" line before
# it): nvme-cli 2.3's JSON report gives attrs 0 whatever the zone has
zone() {
    local cond wp attrs skip=66
    cond=$(blkzone report -o $(($1 * zsec)) -c 1 "$dev")
    cond=${cond#*zcond:}; cond=${cond#*(}; cond=${cond%%)*}
    wp=$(nvme zns report-zones "$dev" -s $(($1 * zlba)) -d 1 -o json | jq -r '.zone_list[0] | .wp - .slba')
    nvme zns report-zones "$dev" -s $(($1 * zlba)) -d 1 -o binary > /tmp/report.bin
    [ "$(head -c 9 /tmp/report.bin)" = "nr_zones:" ] && skip=$((skip + $(head -n 1 /tmp/report.bin | wc -c)))
    attrs=$(od -An -tu1 -j$skip -N1 /tmp/report.bin)
    echo "$cond $wp ${attrs// /}"
}
# zone_is NAME Z COND WP ZRWAV(0/1): zone Z's state, write pointer (LBAs) and
# whether it reports ZRWAV (attribute bit 3)
zone_is() {
    local cond wp attrs
    read -r cond wp attrs < <(zone "$2")
    expect "$1: zone $2" "$cond $wp $(((${attrs:-0} >> 3) & 1))" "$3 $4 $5"
}
# blocks FILE N: N blocks of random data into FILE
blocks() { head -c $(($2 * lba)) /dev/urandom > "$1"; }
# nwrite LBA N FILE: nvme write (passthrough) of N blocks from FILE at LBA
nwrite() { nvme write "$dev" -s "$1" -c $(($2 - 1)) -z $(($2 * lba)) -d "$3"; }
# nread LBA N FILE: nvme read of N blocks into FILE
nread() { nvme read "$dev" -s "$1" -c $(($2 - 1)) -z $(($2 * lba)) -d "$3"; }
# put FILE AT: copy FILE into the model of zone 0 (/tmp/model) at block AT
put() { dd if="$1" of=/tmp/model bs=$lba seek="$2" conv=notrunc status=none; }
# model_is NAME FROM N: blocks FROM..FROM+N-1 of zone 0 read as the model says
model_is() {
    if nread "$2" "$3" /tmp/rd > /dev/null 2>&1 &&
       cmp -s /tmp/rd <(dd if=/tmp/model bs=$lba skip="$2" count="$3" status=none); then
        pass "$1"
    else
        fail "$1"
    fi
}

# ------------------------------------------------------------------ identify
step "nvme zns id-ns: the ZRWA fields"
if check "nvme zns id-ns" nvme zns id-ns "$dev" -o json; then
    read -r ozcs zrwasz zrwafg numzrwa zrwacap < <(jq -r \
        '[.ozcs, (.zrwasz // "-"), (.zrwafg // "-"), (.numzrwa // "-"), (.zrwacap // "-")] | @tsv' "$E2E_LOG")
    expect "OZCS bit 1 (ZRWASUP)" $(((ozcs >> 1) & 1)) 1
    if [ "$zrwasz" = - ]; then
        skip "this nvme-cli prints no ZRWAS/ZRWAFG/NUMZRWA/ZRWACAP"
    else
        expect "ZRWAS (blocks)" "$zrwasz" "$zrwas"
        expect "ZRWAFG (blocks)" "$zrwafg" "$fg"
        expect "NUMZRWA (0's based)" "$numzrwa" $((GUEST_ZRWA_RESOURCES - 1))
        expect "ZRWACAP bit 0 (explicit flush)" $((zrwacap & 1)) 1
    fi
fi

# ------------------------------------------------------------------ the window
step "open with ZRWA allocation, writes anywhere in the window"
require "nvme zns open-zone --zrwaa" nvme zns open-zone "$dev" -s 0 --zrwaa
zone_is "opened with a ZRWA" 0 oe 0 1
check_fails "a second ZRWA allocation to the same zone is refused" nvme zns open-zone "$dev" -s 0 --zrwaa
head -c $((2 * zrwas * lba)) /dev/zero > /tmp/model
blocks /tmp/w1 2; blocks /tmp/w2 2; blocks /tmp/w3 1
check "a write at block 3 (above the write pointer)" nwrite 3 2 /tmp/w1 && put /tmp/w1 3
check "a write at block 0" nwrite 0 2 /tmp/w2 && put /tmp/w2 0
check "a write over block 1" nwrite 1 1 /tmp/w3 && put /tmp/w3 1
zone_is "writes in the window leave the write pointer" 0 oe 0 1
model_is "the window reads what was written, the gap zeros" 0 "$zrwas"
check_fails "a write past twice the window is refused" nwrite $((2 * zrwas)) 1 /tmp/w3
check_fails "zone append to a zone with a ZRWA is refused" \
    nvme zns zone-append "$dev" -s 0 -z $lba -d /tmp/w3

step "flushes: explicit (zrwa-flush-zone) and implicit"
check_fails "a flush not a multiple of ZRWAFG is refused" nvme zns zrwa-flush-zone "$dev" -l $((fg - 2))
check "zrwa-flush-zone up to block $((fg - 1))" nvme zns zrwa-flush-zone "$dev" -l $((fg - 1))
zone_is "the explicit flush moved the write pointer" 0 oe "$fg" 1
blocks /tmp/w4 "$fg"
at=$((fg + zrwas))   # the window is [fg, fg + zrwas): this write ends fg past it
check "a write ending past the window" nwrite "$at" "$fg" /tmp/w4 && put /tmp/w4 "$at"
zone_is "the implicit flush moved the write pointer by ZRWAFG" 0 oe $((2 * fg)) 1
model_is "zone 0 reads back" 0 $((2 * fg + zrwas))

# ------------------------------------------------------------------ restart
if [ "${GUEST_RESTART:-0}" = 1 ]; then
    step "kill -9 of the target: the ZRWA and its window survive"
    if host_call restart-target; then
        pass "the host killed the target with SIGKILL and started it again"
        if wait_ctrl_state "$nqn" live 40 && wait_ns "$nqn" 1 10 > /dev/null; then
            pass "the kernel reconnected by itself"
            zone_is "after the restart (open -> closed, ZRWA kept)" 0 cl $((2 * fg)) 1
            model_is "zone 0 reads back after the restart" 0 $((2 * fg + zrwas))
            blocks /tmp/w5 1
            check "the window takes writes again" nwrite $((2 * fg + 1)) 1 /tmp/w5 &&
                put /tmp/w5 $((2 * fg + 1))
            model_is "and reads them" 0 $((2 * fg + zrwas))
        else
            fail "the kernel reconnected by itself"
        fi
    else
        fail "the host killed the target with SIGKILL and started it again"
    fi
fi

step "finish and reset release the ZRWA"
check "nvme zns finish-zone" nvme zns finish-zone "$dev" -s 0
zone_is "finished: full, no ZRWA" 0 fu "$zlba" 0
model_is "finish keeps what the window held" 0 $((2 * fg + zrwas))
check "nvme zns reset-zone" nvme zns reset-zone "$dev" -s 0
zone_is "reset: empty, no ZRWA" 0 em 0 0
e2e_finish
