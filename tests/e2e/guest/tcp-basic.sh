#!/bin/bash
# tcp-basic.sh - guest test: the Linux NVMe/TCP host against a target's
# conventional namespace: discovery, connect, identify, data integrity
# (dd O_DIRECT, fio verify), a fast disconnect, and host access control.
#
# From the host (run-e2e.sh sets these; GUEST_* variables reach the guest):
#   GUEST_TARGET_ADDR   target address (default $E2E_HOST_IP, the host)
#   GUEST_TARGET_PORT   target port
#   GUEST_HOSTNQN/GUEST_HOSTID              this host's identity
#   GUEST_SUBSYS_NQNS   every NVM subsystem this host may use (discovery must
#                       list exactly these)
#   GUEST_OTHER_HOSTNQN/GUEST_OTHER_HOSTID  a second host identity, allowed
#                       only into GUEST_OTHER_SUBSYS_NQNS
#   GUEST_OTHER_SUBSYS_NQNS  what discovery must list for the second host
#   GUEST_CONV_NQN      the subsystem with the conventional namespace (NSID 1)
#   GUEST_CONV_SIZE     its size in bytes;  GUEST_CONV_LBA  its LBA size
#   GUEST_FIO_MB        MiB per fio job (default 16)
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=tcp-basic
. "$(dirname "$0")/lib.sh"

addr=${GUEST_TARGET_ADDR:-$E2E_HOST_IP}
port=$GUEST_TARGET_PORT
nqn=$GUEST_CONV_NQN
size=$GUEST_CONV_SIZE
lba=$GUEST_CONV_LBA
fio_mb=${GUEST_FIO_MB:-16}
tgt=(-t tcp -a "$addr" -s "$port")
other=(--hostnqn="$GUEST_OTHER_HOSTNQN" --hostid="$GUEST_OTHER_HOSTID")

step "host: $(uname -r), $(nvme version | head -1), target $addr:$port"
e2e_host_setup

# ------------------------------------------------------------------ discovery
# discovered_nqns [ARGS...]: the NVM subsystems in the discovery log, sorted
discovered_nqns() {
    run nvme discover "${tgt[@]}" "$@" -o json || return 1
    cp "$E2E_LOG" /tmp/discovery.json
    jq -r '.records[] | select(.subtype == "nvme subsystem") | .subnqn' /tmp/discovery.json | sort | xargs
}
# sorted WORD...: the words sorted, on one line (callers split lists on purpose)
sorted() { printf '%s\n' "$@" | sort | xargs; }

step "discovery as $GUEST_HOSTNQN"
if listed=$(discovered_nqns); then
    pass "nvme discover"
    # shellcheck disable=SC2086 # a list of NQNs
    expect "discovery lists exactly this host's subsystems" "$listed" "$(sorted $GUEST_SUBSYS_NQNS)"
    bad=$(jq -r --arg p "$port" '.records[] | select(.trtype != "tcp" or .trsvcid != $p or .adrfam != "ipv4")
                                 | .subnqn' /tmp/discovery.json)
    expect "every record is tcp/ipv4 on port $port" "$bad" ""
    # ...and everything it lists can be connected to
    for n in $listed; do
        if run nvme connect "${tgt[@]}" -n "$n" && wait_ctrl_state "$n" live 10; then
            pass "connect to discovered $n"
        else
            fail "connect to discovered $n"; last_output
        fi
        run nvme disconnect -n "$n"
    done
else
    fail "nvme discover"; last_output
fi

step "discovery as $GUEST_OTHER_HOSTNQN (a host with other rights)"
if listed=$(discovered_nqns "${other[@]}"); then
    # shellcheck disable=SC2086
    expect "discovery lists exactly the other host's subsystems" "$listed" "$(sorted $GUEST_OTHER_SUBSYS_NQNS)"
else
    fail "nvme discover as the other host"; last_output
fi

# ------------------------------------------------------------------ connect
step "connect to $nqn"
require "nvme connect" nvme connect "${tgt[@]}" -n "$nqn" "${E2E_CONNECT_OPTS[@]}"
on_exit "nvme disconnect -n '$nqn'"
if ! ns=$(wait_ns "$nqn" 1); then
    fail "namespace 1 of $nqn appears as a block device"
    e2e_finish
fi
ctrl=$(nvme_ctrl "$nqn")
dev=/dev/$ns
pass "namespace 1 is $dev (controller $ctrl)"
expect "controller state" "$(< "/sys/class/nvme/$ctrl/state")" live
expect "transport" "$(< "/sys/class/nvme/$ctrl/transport")" tcp

step "nvme list"
if check "nvme list" nvme list -o json; then
    read -r listed_size listed_lba < <(jq -r --arg d "$dev" \
        '.Devices[] | select(.DevicePath == $d) | [.PhysicalSize, .SectorSize] | @tsv' "$E2E_LOG")
    expect "nvme list shows $dev with its size and sector size" "${listed_size:-} ${listed_lba:-}" "$size $lba"
fi

step "nvme id-ctrl /dev/$ctrl"
# (one jq for all fields: every process start costs ~0.1 s in the guest)
if check "nvme id-ctrl" nvme id-ctrl "/dev/$ctrl" -o json; then
    IFS=$'\x1f' read -r subnqn cntlid sn mn fr ver mdts kas ioccsz iorcsz icdoff maxcmd sgls nn < <(
        jq -r '[.subnqn, .cntlid, .sn, .mn, .fr, .ver, .mdts, .kas, .ioccsz, .iorcsz, .icdoff,
                .maxcmd, .sgls, .nn] | map(tostring) | join("\u001f")' "$E2E_LOG")
    info "mn '$mn' sn '$sn' fr '$fr' ver $(printf 0x%x "$ver") mdts $mdts ioccsz $ioccsz maxcmd $maxcmd" \
         "kas $kas sgls $(printf 0x%x "$sgls") nn $nn"
    expect "id-ctrl subnqn" "$subnqn" "$nqn"
    expect "id-ctrl cntlid = the connected controller's" "$cntlid" "$(< "/sys/class/nvme/$ctrl/cntlid")"
    expect "id-ctrl serial = sysfs" "$(xargs <<< "$sn")" "$(xargs < "/sys/class/nvme/$ctrl/serial")"
    expect "id-ctrl model = sysfs" "$(xargs <<< "$mn")" "$(xargs < "/sys/class/nvme/$ctrl/model")"
    expect_true "id-ctrl: version >= 1.3 ($(printf 0x%x "$ver"))" "$ver" -ge $((0x10300))
    expect_true "id-ctrl: KAS != 0 (keep-alive is mandatory on fabrics)" "$kas" -gt 0
    expect_true "id-ctrl: IOCCSZ >= 4 ($ioccsz)" "$ioccsz" -ge 4
    expect_true "id-ctrl: IORCSZ >= 1 ($iorcsz)" "$iorcsz" -ge 1
    expect "id-ctrl: ICDOFF" "$icdoff" 0
    expect_true "id-ctrl: MAXCMD != 0 ($maxcmd)" "$maxcmd" -gt 0
    expect "id-ctrl: SGLS bit 0 (SGLs supported)" $((sgls & 1)) 1
    expect_true "id-ctrl: NN >= 1 ($nn)" "$nn" -ge 1
fi

step "nvme id-ns $dev"
if check "nvme id-ns" nvme id-ns "$dev" -o json; then
    read -r nsze ncap nuse ds ms < <(jq -r '(.flbas % 16) as $f
                                            | [.nsze, .ncap, .nuse, .lbafs[$f].ds, .lbafs[$f].ms] | @tsv' "$E2E_LOG")
    expect "id-ns NSZE (LBAs)" "$nsze" $((size / lba))
    expect "id-ns NCAP (LBAs)" "$ncap" $((size / lba))
    expect_true "id-ns NUSE <= NCAP ($nuse)" "$nuse" -le "$ncap"
    expect "id-ns: the LBA format in use has data size 2^ds = $lba" $((1 << ds)) "$lba"
    expect "id-ns: the LBA format in use has no metadata" "$ms" 0
fi
expect "sysfs logical_block_size" "$(< "/sys/block/$ns/queue/logical_block_size")" "$lba"
expect "sysfs size (512-byte sectors)" "$(< "/sys/block/$ns/size")" $((size / 512))

# ------------------------------------------------------------------ data
step "data written with dd (O_DIRECT) reads back"
# dd_roundtrip NAME BS COUNT AT: write COUNT blocks of BS bytes of random data
# at byte offset AT, read them back, compare; the data is kept for the
# recheck below
regions=()
dd_roundtrip() {
    local name=$1 bs=$2 count=$3 at=$4 f=/tmp/region-$4
    head -c $((bs * count)) /dev/urandom > "$f"
    regions+=("$at")
    if ! run dd if="$f" of="$dev" bs="$bs" count="$count" seek="$at" oflag=direct,seek_bytes conv=notrunc; then
        fail "$name: write"; last_output; return
    fi
    if ! run dd if="$dev" of=/tmp/readback bs="$bs" count="$count" skip="$at" iflag=direct,skip_bytes; then
        fail "$name: read"; last_output; return
    fi
    if cmp -s "$f" /tmp/readback; then pass "$name"; else fail "$name" "data differs: $(cmp "$f" /tmp/readback)"; fi
}
dd_roundtrip "4 KiB blocks" 4096 16 $((1 << 20))
dd_roundtrip "1 MiB blocks" $((1 << 20)) 4 $((8 << 20))
dd_roundtrip "4 MiB in one dd call (the kernel splits it at MDTS)" $((4 << 20)) 1 $((16 << 20))
dd_roundtrip "the last LBA" "$lba" 1 $((size - lba))
dd_roundtrip "the first LBA" "$lba" 1 0
dd_roundtrip "12 KiB at an odd LBA" 4096 3 $(((3 << 20) + 5 * lba))
# no write landed anywhere but where it belonged
bad=
for at in "${regions[@]}"; do
    n=$(stat -c %s "/tmp/region-$at")
    dd if="$dev" of=/tmp/readback bs="$n" count=1 skip="$at" iflag=direct,skip_bytes status=none &&
        cmp -s "/tmp/region-$at" /tmp/readback || bad="$bad $at"
done
expect "every region still holds its data after all the writes" "$bad" ""

step "fio --verify=crc32c"
# fio_verify NAME ARGS...: a write+verify fio job on the namespace
fio_verify() {
    local name=$1
    shift
    if run fio --name="$name" --filename="$dev" --direct=1 --ioengine=libaio --size="${fio_mb}M" \
           --verify=crc32c --do_verify=1 --verify_fatal=1 --group_reporting "$@" &&
       grep -q 'err= 0' "$E2E_LOG"; then
        pass "fio $name: $(grep -oE 'WRITE: bw=[^ ]+' "$E2E_LOG")"
    else
        fail "fio $name $*"; last_output 25
    fi
}
fio_verify randwrite-4k --rw=randwrite --bs=4k --iodepth=32
fio_verify randwrite-mixed-sizes --rw=randwrite --bsrange=4k-512k --iodepth=8 --offset=64M
fio_verify seqwrite-128k-2jobs --rw=write --bs=128k --iodepth=4 --numjobs=2 --offset=128M --size=$((fio_mb / 2))M \
    --offset_increment=$((fio_mb / 2))M

# ------------------------------------------------------------------ disconnect
step "disconnect"
t0=$(ms)
check "nvme disconnect" nvme disconnect -n "$nqn"
t1=$(ms)
expect_true "disconnect took $((t1 - t0)) ms (< 1000 ms)" $((t1 - t0)) -lt 1000
expect "no controller left for $nqn" "$(nvme_ctrl "$nqn")" ""

# ------------------------------------------------------------------ access control
step "host access control"
check_fails "connect as $GUEST_OTHER_HOSTNQN (not in allowed_hosts) is refused" \
    nvme connect "${tgt[@]}" -n "$nqn" "${other[@]}"
expect "no controller was created for the refused host" "$(nvme_ctrl "$nqn")" ""
for n in $GUEST_OTHER_SUBSYS_NQNS; do
    if run nvme connect "${tgt[@]}" -n "$n" "${other[@]}" && wait_ctrl_state "$n" live 10; then
        pass "the other host may connect to $n"
    else
        fail "the other host may connect to $n"; last_output
    fi
    run nvme disconnect -n "$n"
done

e2e_finish
