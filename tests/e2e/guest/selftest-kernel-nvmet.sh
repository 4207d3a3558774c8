#!/bin/bash
# selftest-kernel-nvmet.sh - check the rig and the test scripts themselves,
# without znstgt: the guest kernel's own NVMe target (nvmet) serves null_blk
# devices over nvmet-tcp on the guest's 127.0.0.1, configured the way
# run-e2e.sh configures znstgt (a conventional subsystem and a zoned one for
# this host, a third one for another host only), and tcp-basic.sh and
# zns-basic.sh run against it. Whatever fails here is a bug in the rig or in
# the tests, not in znstgt.
#   tests/e2e/run-e2e.sh --selftest
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=selftest-kernel-nvmet
. "$(dirname "$0")/lib.sh"

export GUEST_TARGET_ADDR=127.0.0.1 GUEST_TARGET_PORT=4420
export GUEST_CONV_NQN=nqn.2024-01.io.znstgt.e2e:conv GUEST_ZNS_NQN=nqn.2024-01.io.znstgt.e2e:zns
export GUEST_OTHER_SUBSYS_NQNS=nqn.2024-01.io.znstgt.e2e:other
export GUEST_SUBSYS_NQNS="$GUEST_CONV_NQN $GUEST_ZNS_NQN"
export GUEST_CONV_SIZE=$((256 << 20)) GUEST_CONV_LBA=4096
export GUEST_ZNS_SIZE=$((256 << 20)) GUEST_ZNS_LBA=4096 GUEST_ZONE_SIZE=$((16 << 20))
export GUEST_MAX_OPEN=4 GUEST_MAX_ACTIVE=6
# nvmet reports ZASL = log2 of the backing device's append limit in 4 KiB
# units, rounded down: null_blk's 124 KiB becomes 64 KiB
export GUEST_ZONE_APPEND_MAX=65536
# nvmet has neither zone descriptor extensions nor the changed zone list
export GUEST_ZDE_SIZE=0 GUEST_SKIP="zde changed-zone-list"

# Target and host share one kernel here, and nvmet-tcp's receive path trips
# 6.1's hardened usercopy check (kernel BUG in usercopy_abort) when a write's
# data sits in a transparent huge page (a 16 MiB dd buffer): not a problem of
# a host talking to another machine, so keep user buffers in small pages.
echo never > /sys/kernel/mm/transparent_hugepage/enabled

step "host call through the share"
if reply=$(host_call ping) && [ "$reply" = "    host: ok pong" ]; then pass "host_call ping answered by the host"
else fail "host_call ping" "$reply"; fi

step "null_blk devices (configfs)"
modprobe null_blk nr_devices=0
# nullb NAME ATTR=VALUE...: create a null_blk device through configfs; 6.1
# names the disk after the configfs directory (older kernels: nullb<index>,
# which is the same for nullb0, nullb1, ... made in that order)
nullb() {
    local d=/sys/kernel/config/nullb/$1 kv
    mkdir "$d" || return 1
    for kv in "${@:2}"; do echo "${kv#*=}" > "$d/${kv%%=*}" || return 1; done
    echo 1 > "$d/power" && echo "/dev/$1"
}
conv_dev=$(nullb nullb0 size=256 blocksize=4096 memory_backed=1)
zns_dev=$(nullb nullb1 size=256 blocksize=4096 memory_backed=1 zoned=1 zone_size=16 zone_nr_conv=0 \
          zone_max_open=$GUEST_MAX_OPEN zone_max_active=$GUEST_MAX_ACTIVE)
other_dev=$(nullb nullb2 size=64 blocksize=4096 memory_backed=1)
expect_true "three null_blk devices ($conv_dev $zns_dev $other_dev)" -b "$conv_dev" -a -b "$zns_dev" -a -b "$other_dev"

step "nvmet: subsystems, allowed hosts, tcp port 127.0.0.1:4420"
modprobe -a nvmet nvmet-tcp
cfg=/sys/kernel/config/nvmet
# subsys NQN DEVICE HOSTNQN: a subsystem with namespace 1 on DEVICE that only
# HOSTNQN may use
subsys() {
    local s=$cfg/subsystems/$1
    mkdir -p "$s" "$cfg/hosts/$3" "$s/namespaces/1" &&
        echo 0 > "$s/attr_allow_any_host" &&
        ln -s "$cfg/hosts/$3" "$s/allowed_hosts/" &&
        echo -n "$2" > "$s/namespaces/1/device_path" &&
        echo 1 > "$s/namespaces/1/enable" &&
        ln -s "$s" "$cfg/ports/1/subsystems/"
}
mkdir "$cfg/ports/1"
echo ipv4 > "$cfg/ports/1/addr_adrfam"
echo tcp > "$cfg/ports/1/addr_trtype"
echo 127.0.0.1 > "$cfg/ports/1/addr_traddr"
echo 4420 > "$cfg/ports/1/addr_trsvcid"
subsys "$GUEST_CONV_NQN" "$conv_dev" "$GUEST_HOSTNQN" &&
    subsys "$GUEST_ZNS_NQN" "$zns_dev" "$GUEST_HOSTNQN" &&
    subsys "$GUEST_OTHER_SUBSYS_NQNS" "$other_dev" "$GUEST_OTHER_HOSTNQN"
expect "nvmet configured" "$?" 0

step "tcp-basic.sh against nvmet"
run_script "$E2E_SHARE/tcp-basic.sh"

step "zns-basic.sh against nvmet"
run_script "$E2E_SHARE/zns-basic.sh"

e2e_finish
