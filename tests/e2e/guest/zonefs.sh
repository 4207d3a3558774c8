#!/bin/bash
# zonefs.sh - guest test: zonefs, Linux's file system that shows each zone
# of a zoned device as a file whose size is the zone's write pointer, on a
# zoned namespace of znstgt over NVMe/TCP, formatted with zonefs-tools'
# mkzonefs:
#   - mkzonefs formats it (the super block in zone 0, which it finishes); the
#     mount shows one file per other zone, each empty;
#   - O_DIRECT appends grow a file by what was written and move its zone's
#     write pointer as far; the data reads back; a file filled to the zone's
#     capacity takes no more; truncating a file to 0 resets its zone, to the
#     zone size finishes it;
#   - a kill -9 of the target after each write's fsync (a Flush: the
#     namespace reports a volatile write cache): once the kernel has
#     reconnected by itself, a fresh mount finds every file's size and data
#     as before, and appends go on where they stopped;
#   - a power cut (the control socket's) after an append with fsync and one
#     without: a fresh mount finds the file as the fsync left it.
#
# From the host: GUEST_TARGET_PORT, GUEST_ZONEFS_NQN (NSID 1: GUEST_ZONEFS_SIZE
# bytes of GUEST_ZONE_SIZE zones, volatile write cache), the "restart-target"
# and "ctl power-cut" host calls. Needs mkzonefs (zonefs-tools, in the trixie guest).
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=zonefs
. "$(dirname "$0")/lib.sh"

nqn=$GUEST_ZONEFS_NQN
zone=$GUEST_ZONE_SIZE
zsec=$((zone / 512))
nr_zones=$((GUEST_ZONEFS_SIZE / zone))
mnt=/mnt/zonefs

step "host: $(uname -r), $(nvme version | head -1)"
require "mkzonefs (zonefs-tools) in the guest" sh -c "command -v mkzonefs"
e2e_host_setup
require "the zonefs module" modprobe zonefs
connect_ns "$nqn"

# size N: file seq/N's size in bytes
size() { stat -c %s "$mnt/seq/$1"; }
# wp Z: zone Z's "<cond> <write pointer in sectors>" (lib.sh: zones)
wp() { zone_state "$1"; }
# append N BYTES [BS]: O_DIRECT append of BYTES random bytes to seq/N, in
# writes of BS bytes, then fsync; what landed is kept in /tmp/want-N
append() {
    local bs=${3:-$2}
    head -c "$2" /dev/urandom > /tmp/chunk
    dd if=/tmp/chunk of="$mnt/seq/$1" bs="$bs" count=$(($2 / bs)) oflag=direct,append \
        conv=notrunc,fsync status=none || return
    cat /tmp/chunk >> "/tmp/want-$1"
}
# same N: seq/N holds what was appended to it
same() { cmp -s "$mnt/seq/$1" "/tmp/want-$1"; }
mount_it() { mount -t zonefs "$dev" "$mnt"; }

# ------------------------------------------------------------------ format
step "mkzonefs and mount"
check "mkzonefs -f $dev" mkzonefs -f "$dev"
expect "zone 0 holds the super block and is full" "$(wp 0 | cut -d' ' -f1)" fu
mkdir -p "$mnt"
require "mount -t zonefs $dev $mnt" mount_it
on_exit "umount '$mnt'"
expect "one file per zone but zone 0" "$(find "$mnt/seq" -type f | wc -l)" $((nr_zones - 1))
expect "seq/0 is empty" "$(size 0)" 0
for f in 0 1 2 3 4; do : > "/tmp/want-$f"; done

# ------------------------------------------------------------------ writes
# File N is zone N + 1.
step "appends, a full file, reset and finish by truncate"
check "append 1 MiB to seq/0" append 0 $((1 << 20))
check "append 2 MiB more to seq/0, in 256 KiB writes" append 0 $((2 << 20)) $((256 << 10))
expect "seq/0 is 3 MiB" "$(size 0)" $((3 << 20))
expect "zone 1's write pointer is at 3 MiB" "$(wp 1 | cut -d' ' -f2)" $(((3 << 20) / 512))
check "append 4 KiB to seq/1" append 1 4096
check "append 60 KiB more to seq/1" append 1 61440
expect "seq/1 is 64 KiB" "$(size 1)" 65536
check "fill seq/2 to the zone's capacity in 1 MiB writes" append 2 "$zone" $((1 << 20))
expect "seq/2 is a whole zone" "$(size 2)" "$zone"
expect "zone 3 is full" "$(wp 3)" "fu $zsec"
check_fails "a 4 KiB append to the full seq/2" \
    dd if=/dev/zero of="$mnt/seq/2" bs=4096 count=1 oflag=direct,append conv=notrunc status=none
expect "seq/2 is still a whole zone" "$(size 2)" "$zone"
check "append 1 MiB to seq/3" append 3 $((1 << 20))
check "truncate seq/3 to 0" truncate -s 0 "$mnt/seq/3"
: > /tmp/want-3
expect "seq/3 is empty" "$(size 3)" 0
expect "zone 4 is reset" "$(wp 4)" "em 0"
check "append 64 KiB to seq/4" append 4 65536
check "truncate seq/4 to the zone size" truncate -s "$zone" "$mnt/seq/4"
expect "seq/4 is a whole zone" "$(size 4)" "$zone"
expect "zone 5 is finished" "$(wp 5 | cut -d' ' -f1)" fu
head -c "$((zone - 65536))" /dev/zero >> /tmp/want-4   # a finished zone reads zeros above the data
for f in 0 1 2 3 4; do
    if same $f; then pass "seq/$f reads back what was written"; else fail "seq/$f reads back what was written"; fi
done

# ------------------------------------------------------------------ restart
step "kill -9 of the target; a fresh mount finds every file as it was"
sizes_before=$(for f in 0 1 2 3 4; do size $f; done | xargs)
umount "$mnt"
if ! host_call restart-target; then
    fail "the host killed the target with SIGKILL and started it again"
    e2e_finish
fi
pass "the host killed the target with SIGKILL and started it again"
if ! wait_ctrl_state "$nqn" live 40; then
    fail "the kernel reconnected by itself" "controller state: $(cat /sys/class/nvme/*/state 2>&1 | xargs)"
    e2e_finish
fi
pass "the kernel reconnected by itself"
require "mount again" mount_it
expect "every file's size as before the kill" "$(for f in 0 1 2 3 4; do size $f; done | xargs)" \
    "$sizes_before"
for f in 0 1 2 3 4; do
    if same $f; then pass "seq/$f data intact"; else fail "seq/$f data intact"; fi
done
check "append 1 MiB to seq/0 after the restart" append 0 $((1 << 20))
expect "seq/0 is 4 MiB" "$(size 0)" $((4 << 20))
if same 0; then pass "seq/0 reads back all four MiB"; else fail "seq/0 reads back all four MiB"; fi

# ------------------------------------------------------------------ power cut
# A power cut (the control socket's power-cut: nothing not made durable
# survives) loses what was written after the last Flush: with a volatile
# write cache the write pointer goes back to where that Flush left it.
step "power cut: what zonefs fsync'd stays, what it did not is gone"
check "append 1 MiB to seq/1, with fsync" append 1 $((1 << 20))
synced=$(size 1)
check "append 1 MiB more to seq/1, without fsync" \
    dd if=/dev/urandom of="$mnt/seq/1" bs=1M count=1 oflag=direct,append conv=notrunc status=none
expect "seq/1 has grown by it" "$(size 1)" $((synced + (1 << 20)))
# still mounted: an unmount might send a Flush of its own
if ! host_call ctl power-cut; then
    fail "power cut through the control socket"
    e2e_finish
fi
pass "power cut through the control socket"
if ! wait_ctrl_state "$nqn" live 40; then
    fail "the kernel reconnected after the power cut" "controller state: $(cat /sys/class/nvme/*/state 2>&1 | xargs)"
    e2e_finish
fi
pass "the kernel reconnected after the power cut"
check "umount" umount "$mnt"
require "mount again after the power cut" mount_it
expect "seq/1 is what was fsync'd" "$(size 1)" "$synced"
if same 1; then pass "seq/1 data intact up to there"; else fail "seq/1 data intact up to there"; fi
expect "seq/0 and seq/2 as before" "$(size 0) $(size 2)" "$((4 << 20)) $zone"
if same 0; then pass "seq/0 data intact"; else fail "seq/0 data intact"; fi
check "umount" umount "$mnt"
e2e_finish
