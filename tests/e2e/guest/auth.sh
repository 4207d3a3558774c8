#!/bin/bash
# auth.sh - guest test: in-band authentication (DH-HMAC-CHAP) of the Linux
# host against a subsystem whose [host NQN] section gives this host a
# dhchap_secret and a dhchap_ctrl_secret. One-way (--dhchap-secret) and
# bidirectional (--dhchap-ctrl-secret too) connects with a write + verify;
# a wrong host secret, a wrong controller secret and no secret are refused.
# A kernel built without NVMe in-band authentication (Debian 12's 6.1) cannot
# authenticate: it must be refused, and the connects with secrets are skipped.
#
# From the host (run-e2e.sh):
#   GUEST_TARGET_ADDR   target address (default $E2E_HOST_IP, the host)
#   GUEST_SEC_PORT      the security target's plain listener
#   GUEST_AUTH_NQN      the subsystem that asks this host to authenticate
#   GUEST_DHCHAP_SECRET, GUEST_DHCHAP_CTRL_SECRET   the secrets it has
#   GUEST_DHCHAP_WRONG  a valid secret that is neither
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=auth
. "$(dirname "$0")/lib.sh"

addr=${GUEST_TARGET_ADDR:-$E2E_HOST_IP}
nqn=$GUEST_AUTH_NQN
tgt=(-t tcp -a "$addr" -s "$GUEST_SEC_PORT" -n "$nqn")

step "host: $(uname -r), $(nvme version | head -1)"
e2e_host_setup

# refused NAME ARGS...: the connect fails and leaves no controller
refused() {
    local name=$1
    shift
    check_fails "$name" nvme connect "${tgt[@]}" "$@"
    expect "$name: no controller left" "$(nvme_ctrl "$nqn" || echo none)" none
    run nvme disconnect -n "$nqn"
}

# connected NAME ARGS...: connect, write + verify 8 MiB, disconnect
connected() {
    local name=$1 ns
    shift
    if ! check "$name" nvme connect "${tgt[@]}" "$@" "${E2E_CONNECT_OPTS[@]}"; then
        return
    fi
    if ns=$(wait_ns "$nqn" 1); then
        check "$name: fio write + crc32c verify" \
            fio --name=auth --filename="/dev/$ns" --direct=1 --ioengine=libaio --iodepth=8 \
                --rw=randwrite --bs=4k --size=8M --verify=crc32c --verify_fatal=1
    else
        fail "$name: the namespace appears"
    fi
    check "$name: disconnect" nvme disconnect -n "$nqn"
}

step "no secret"
refused "connect without a secret is refused"

if ! grep -qsE '^CONFIG_NVME_(HOST_)?AUTH=[ym]' "/boot/config-$(uname -r)"; then
    skip "DH-HMAC-CHAP connects: $(uname -r) is built without NVMe in-band authentication (CONFIG_NVME_AUTH)"
    e2e_finish
fi

step "one-way"
connected "connect --dhchap-secret" --dhchap-secret="$GUEST_DHCHAP_SECRET"
refused "a wrong host secret is refused" --dhchap-secret="$GUEST_DHCHAP_WRONG"

step "bidirectional"
connected "connect --dhchap-secret --dhchap-ctrl-secret" \
    --dhchap-secret="$GUEST_DHCHAP_SECRET" --dhchap-ctrl-secret="$GUEST_DHCHAP_CTRL_SECRET"
# the host checks the controller's response with the secret it expects
refused "a wrong controller secret is refused" \
    --dhchap-secret="$GUEST_DHCHAP_SECRET" --dhchap-ctrl-secret="$GUEST_DHCHAP_WRONG"
e2e_finish
