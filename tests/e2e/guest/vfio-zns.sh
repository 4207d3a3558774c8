#!/bin/bash
# vfio-zns.sh - guest test: the zoned namespace of GUEST_ZNS_NQN as a PCI NVMe
# controller over vfio-user (QEMU's vfio-user-pci device on the subsystem's
# [vfio-user] socket, guest RAM a shared memfd), its durability across a
# kill -9 of the target, and the same namespace over NVMe/TCP. run-e2e.sh
# runs it three times, one boot each, in this order (GUEST_VFIO_PHASE):
#
#   pcie    The nvme driver binds the PCI function (class 010802, transport
#           pcie, the subsystem's NQN, NVMe 2.0). zns-basic.sh against its
#           namespace: zone limits, blkzone report/reset/open/close/finish,
#           nvme zns report-zones and zone-append, fio --zonemode=zbd
#           write+verify at queue depth 4. A TCP host on the host machine
#           (znstgt-probe, through host_call tcp-probe-zns) appends to zone 0
#           while this VM has the controller: the VM sees its block between
#           its own appends. Then zones 8-12 are put in known states, what a host must find after a power cut is saved in the
#           share (state/), and the target is killed with SIGKILL and
#           started again while this VM still has the device.
#   tcp     A host over NVMe/TCP (a second guest, after the first): finds
#           state/ (open zones closed by the power cut, data intact), writes
#           zone 13 and appends to zone 12, and saves the new state/.
#   verify  A new VM over vfio-user finds state/ as the TCP host left it,
#           and writing and appending continue at the write pointers.
#
# From the host: GUEST_ZNS_NQN, GUEST_ZNS_SIZE, GUEST_ZNS_LBA,
# GUEST_ZONE_SIZE and the rest of zns-basic.sh's; GUEST_TARGET_PORT and the
# host identity for the tcp phase. run-e2e.sh copies state/ from one phase's
# share to the next.
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=vfio-zns-${GUEST_VFIO_PHASE:-}
. "$(dirname "$0")/lib.sh"

nqn=$GUEST_ZNS_NQN
lba=$GUEST_ZNS_LBA
zone=$GUEST_ZONE_SIZE
zsec=$((zone / 512))
zlba=$((zone / lba))
state=$E2E_SHARE/state

e2e_host_setup
# pcie_ns: the namespace of the PCI NVMe controller; PASS/FAIL on what the
# driver made of the function
pcie_ns() {
    local c pci
    modprobe nvme
    if ! ns=$(wait_ns "$nqn" 1 30); then
        fail "the nvme driver binds the vfio-user PCI function, namespace 1 of $nqn appears" \
             "$(dmesg | grep -i -E 'nvme|vfio' | tail -10)"
        e2e_finish
    fi
    c=$(nvme_ctrl "$nqn")
    pass "namespace 1 of $nqn is /dev/$ns (controller $c)"
    expect "transport" "$(< "/sys/class/nvme/$c/transport")" pcie
    pci=$(readlink -f "/sys/class/nvme/$c/device")
    expect "PCI class (mass storage, NVM, NVM Express)" "$(< "$pci/class")" 0x010802
    expect "bound to the nvme driver" "$(basename "$(readlink -f "$pci/driver")")" nvme
    expect_true "MSI-X in use (msi_irqs)" -n "$(ls "$pci/msi_irqs" 2> /dev/null)"
    if check "nvme id-ctrl" nvme id-ctrl "/dev/$c" -o json; then
        expect "id-ctrl: NVMe version 2.0" "$(jq -r .ver "$E2E_LOG")" $((0x20000))
        expect "id-ctrl: subnqn" "$(jq -r .subnqn "$E2E_LOG")" "$nqn"
    fi
    dev=/dev/$ns
}

# save_state: what the next host must find: every zone's "<cond> <wp>", the
# data from each zone's start to its write pointer (zones 8-13)
save_state() {
    local z wp
    rm -rf "$state" && mkdir -p "$state"
    all_zones > "$state/zones"
    for z in 8 9 10 12 13; do
        wp=$(sed -n "$((z + 1))p" "$state/zones" | cut -d' ' -f2)
        [ "$wp" -gt 0 ] && zread $z 0 $((wp * 512)) "$state/data.$z"
    done
}
# check_state WHAT: the zones and data are those of state/
check_state() {
    local f z
    all_zones > /tmp/now
    if cmp -s "$state/zones" /tmp/now; then
        pass "$1: every zone's state and write pointer"
    else
        mapfile -t diffs < <(paste -d'|' "$state/zones" /tmp/now |
                             awk -F'|' '$1 != $2 { print "zone " NR - 1 ": want " $1 ", got " $2 }')
        fail "$1: every zone's state and write pointer" "${diffs[@]}"
    fi
    for f in "$state"/data.*; do
        z=${f##*.}
        if zread "$z" 0 "$(stat -c %s "$f")" /tmp/rr && cmp -s /tmp/rr "$f"; then
            pass "$1: zone $z data ($(stat -c %s "$f") bytes)"
        else
            fail "$1: zone $z data ($(stat -c %s "$f") bytes)"
        fi
    done
}
# the scheduler that keeps a zone's writes in order on 6.1 (zns-basic.sh)
deadline() {
    local b
    for b in $(ns_paths "$ns") $ns; do echo mq-deadline > "/sys/block/$b/queue/scheduler"; done 2> /dev/null
}

if [ "${GUEST_VFIO_PHASE:-}" != pcie ] && [ ! -f "$state/zones" ]; then
    fail "the state the phase before saved ($state): missing, that phase failed"
    e2e_finish
fi

case ${GUEST_VFIO_PHASE:-} in
pcie)
    step "the PCI NVMe controller over vfio-user"
    pcie_ns
    # the namespace as an earlier test (zns-basic over TCP) left it
    check "reset all zones first" blkzone reset "$dev"

    step "zns-basic.sh against the PCIe namespace"
    export GUEST_ZNS_DEV=$dev GUEST_RESTART=0
    run_script "$E2E_SHARE/zns-basic.sh"

    step "a TCP host beside this VM: one zone state"
    # The host runs znstgt-probe while this VM has the controller: its Zone
    # Append to zone 0 must land after this VM's, and this VM must see it.
    deadline
    slba=0
    head -c $((2 * lba)) /dev/urandom > /tmp/v1
    head -c "$lba" /dev/urandom > /tmp/v2
    if alba=$(append /tmp/v1); then expect "VM's zone append to zone 0 at its start" "$alba" 0
    else fail "VM's zone append to zone 0"; last_output; fi
    if host_call tcp-probe-zns; then
        pass "a TCP host appended to zone 0 while this VM has the controller"
        zone_is "the TCP host's append seen over PCIe" 0 oi $((3 * lba / 512))
        perl -e "print map { chr((\$_ * 7 + 1) & 255) } 0 .. $((lba - 1))" > /tmp/probe.pat
        if zread 0 $((2 * lba)) "$lba" /tmp/got && cmp -s /tmp/got /tmp/probe.pat; then
            pass "the TCP host's block reads back over PCIe at LBA 2"
        else
            fail "the TCP host's block reads back over PCIe at LBA 2"
        fi
        if alba=$(append /tmp/v2); then expect "the VM's next append lands after the TCP host's" "$alba" 3
        else fail "VM's second zone append"; last_output; fi
    else
        fail "a TCP host appended to zone 0 while this VM has the controller"
    fi
    check "reset zone 0" bz reset 0

    step "zones in known states, then kill -9 of the target while this VM has the device"
    slba=$((12 * zlba))
    head -c 4096 /dev/urandom > /tmp/a1
    head -c 8192 /dev/urandom > /tmp/a2
    # zone 8: open with 3 MiB; 9: 1 MiB then finished; 10: 2 MiB then
    # closed; 11: explicitly opened, empty; 12: two zone appends
    zwrite 8 0 $((3 << 20)) && zwrite 9 0 $((1 << 20)) && bz finish 9 &&
        zwrite 10 0 $((2 << 20)) && bz close 10 && bz open 11 &&
        append /tmp/a1 > /dev/null && append /tmp/a2 > /dev/null
    expect "set up zones 8-12" "$?" 0
    zone_is "before the kill" 8 oi $((3 << 11))
    zone_is "before the kill" 11 oe 0
    save_state
    # After a power cut open zones come back closed (ZNS 2.1.1.1: an open
    # zone with data becomes closed, an empty one empty).
    awk '{ c = $1; if (c == "oi" || c == "oe") c = ($2 == 0 ? "em" : "cl"); print c, $2 }' \
        "$state/zones" > /tmp/want && mv /tmp/want "$state/zones"
    if host_call restart-target; then
        pass "the host killed the target with SIGKILL and started it again"
    else
        fail "the host killed the target with SIGKILL and started it again"
    fi
    # The controller's server is gone: I/O must fail, not hang (the kernel's
    # timeouts are 15 s; run() bounds the command).
    check_fails "I/O to the dead controller fails" \
        dd if="$dev" of=/dev/null bs=4096 count=1 iflag=direct
    ;;
tcp)
    step "the same namespace over NVMe/TCP"
    connect_ns "$nqn"
    expect "transport" "$(< "/sys/class/nvme/$(nvme_ctrl "$nqn")/transport")" tcp
    deadline
    check_state "after the kill -9, seen over TCP"
    slba=$((12 * zlba))
    head -c 4096 /dev/urandom > /tmp/a3
    wp12=$(zone_state 12 | cut -d' ' -f2)
    if alba=$(append /tmp/a3); then
        expect "TCP host's zone append lands at zone 12's write pointer" "$alba" $((slba + wp12 * 512 / lba))
    else
        fail "zone append over TCP"; last_output
    fi
    check "write 1 MiB into zone 13 over TCP" zwrite 13 0 $((1 << 20))
    save_state
    ;;
verify)
    step "a new VM over vfio-user after the kill -9 and the TCP host"
    pcie_ns
    deadline
    check_state "a new VM over vfio-user"
    wp8=$(zone_state 8 | cut -d' ' -f2)
    check "writing continues at zone 8's write pointer" zwrite 8 $((wp8 * 512)) 65536
    zone_is "zone 8 after the write" 8 oi $((wp8 + 128))
    slba=$((12 * zlba))
    wp12=$(zone_state 12 | cut -d' ' -f2)
    head -c 4096 /dev/urandom > /tmp/a4
    if alba=$(append /tmp/a4); then
        expect "zone append lands at zone 12's write pointer" "$alba" $((slba + wp12 * 512 / lba))
    else
        fail "zone append after the restart"; last_output
    fi
    # zones 8, 12 and 13 are open: closed first, so that fio's two zones
    # stay within the open limit
    check "close zones 8, 12, 13" sh -c "blkzone close -o $((8 * zsec)) -c 1 $dev &&
        blkzone close -o $((12 * zsec)) -c 2 $dev"
    check "fio zbd write+verify at queue depth 8 over vfio-user" \
        fio --name=zbd --filename="$dev" --zonemode=zbd --direct=1 --ioengine=libaio --iodepth=8 \
        --rw=write --bs=16k --offset=$((14 * zone)) --size=$((2 * zone)) --max_open_zones=2 \
        --verify=crc32c --do_verify=1 --verify_fatal=1
    ;;
*)
    fail "GUEST_VFIO_PHASE is pcie, tcp or verify (got '${GUEST_VFIO_PHASE:-}')"
    ;;
esac

e2e_finish
