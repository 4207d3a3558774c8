#!/bin/bash
# selftest-qemu-zns.sh - check zns-basic.sh against a second reference: QEMU's
# emulated NVMe ZNS controller (PCIe, hw/nvme), which unlike nvmet has zone
# descriptor extensions. run-e2e.sh --selftest boots the guest with
#   -device nvme,zoned.zasl=4 -device nvme-ns,zoned=true,zoned.zone_size=16M,
#   zoned.max_open=4,zoned.max_active=6,zoned.descr_ext_size=64,...
# Whatever fails here is a bug in the test, not in znstgt.
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=selftest-qemu-zns
. "$(dirname "$0")/lib.sh"

export GUEST_ZNS_DEV=/dev/nvme0n1
export GUEST_ZNS_SIZE=$((256 << 20)) GUEST_ZNS_LBA=4096 GUEST_ZONE_SIZE=$((16 << 20))
export GUEST_MAX_OPEN=4 GUEST_MAX_ACTIVE=6 GUEST_ZONE_APPEND_MAX=65536 GUEST_ZDE_SIZE=64
# QEMU does not implement the changed zone list log page
export GUEST_SKIP="changed-zone-list"

step "QEMU's NVMe controller"
modprobe nvme-core
modprobe nvme
for _ in {1..100}; do [ -b "$GUEST_ZNS_DEV" ] && break; sleep 0.1; done
expect_true "$GUEST_ZNS_DEV appears" -b "$GUEST_ZNS_DEV"

step "zns-basic.sh against QEMU's ZNS namespace"
run_script "$E2E_SHARE/zns-basic.sh"

e2e_finish
