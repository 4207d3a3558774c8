#!/bin/bash
# tls.sh - guest test (Linux 6.12 with nvme-cli 2.13 and tlshd): NVMe/TCP
# over TLS 1.3 with a configured PSK, as a stock Debian host sets it up.
# The PSK the target has in its [host NQN] section goes into the kernel's
# .nvme keyring with `nvme check-tls-key --insert` (nvme-cli derives the
# retained PSK and the identity), tlshd does the handshakes for the kernel.
#
# From the host (run-e2e.sh):
#   GUEST_TARGET_ADDR   target address (default $E2E_HOST_IP, the host)
#   GUEST_SEC_PORT      the security target's plain listener
#   GUEST_SEC_TLS_PORT  its tls_listen listener (TLS 1.3 required)
#   GUEST_TLS_NQN       the subsystem whose [host] section gives this host
#                       GUEST_TLS_PSK
#   GUEST_HOSTNQN, GUEST_OTHER_HOSTNQN   this host, and one with no PSK
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=tls
. "$(dirname "$0")/lib.sh"

addr=${GUEST_TARGET_ADDR:-$E2E_HOST_IP}
nqn=$GUEST_TLS_NQN
disc_nqn=nqn.2014-08.org.nvmexpress.discovery
tls=(-t tcp -a "$addr" -s "$GUEST_SEC_TLS_PORT")

step "host: $(uname -r), $(nvme version | head -1), $(tlshd --version 2>&1 | head -1)"
e2e_host_setup
require "modprobe tls (kernel TLS for tlshd)" modprobe -a tls nvme-keyring
# tlshd: the kernel hands it each new NVMe/TCP socket for the handshake;
# its debug output goes with a failure's details
printf '[debug]\nloglevel=7\ntls=7\nnl=0\n[authenticate]\n' > /tmp/tlshd.conf
tlshd -s -c /tmp/tlshd.conf > /tmp/tlshd.log 2>&1 &
tlshd_pid=$!
on_exit "kill $tlshd_pid"
sleep 1
require "tlshd runs" kill -0 $tlshd_pid

# tlshd_said: the end of tlshd's log and the kernel's TLS messages
tlshd_said() {
    tail -n 25 /tmp/tlshd.log | sed 's/^/      tlshd: /'
    dmesg | grep -iE 'tls|handshake' | tail -n 5 | sed 's/^/      kernel: /'
}

step "the configured PSK into the .nvme keyring"
# For the subsystem, and for the discovery NQN (nvme discover --tls looks
# the key up under it): the target uses the same configured PSK for both.
require "nvme check-tls-key --insert ($nqn)" \
    nvme check-tls-key --keydata="$GUEST_TLS_PSK" --hostnqn="$GUEST_HOSTNQN" \
        --subsysnqn="$nqn" --insert
check "nvme check-tls-key --insert (discovery NQN)" \
    nvme check-tls-key --keydata="$GUEST_TLS_PSK" --hostnqn="$GUEST_HOSTNQN" \
        --subsysnqn="$disc_nqn" --insert
# the other host has a key too, but the target has none for it
check "nvme check-tls-key --insert (a host the target has no PSK for)" \
    nvme check-tls-key --keydata="$GUEST_TLS_PSK" --hostnqn="$GUEST_OTHER_HOSTNQN" \
        --subsysnqn="$nqn" --insert
grep -E ' psk +NVMe' /proc/keys | sed 's/^/    /'

step "discovery over TLS"
if run nvme discover "${tls[@]}" --tls -o json; then
    pass "nvme discover --tls"
    cp "$E2E_LOG" /tmp/discovery.json
    rec=$(jq -c --arg n "$nqn" --arg p "$GUEST_SEC_TLS_PORT" \
        '[.records[] | select(.subnqn == $n and .trsvcid == $p)] | first' /tmp/discovery.json)
    info "record: $rec"
    treq=$(jq -r '.treq // empty' <<< "$rec")
    sectype=$(jq -r '.tsas.sectype // .sectype // empty' <<< "$rec")
    expect_true "the TLS listener's record: TREQ required ($treq)" \
        -n "$treq" -a "${treq#*not required}" = "$treq" -a "${treq#*required}" != "$treq"
    expect_true "the TLS listener's record: TSAS TLS 1.3 ($sectype)" \
        -n "$sectype" -a "${sectype//[^0-9]/}" = 13
else
    fail "nvme discover --tls"; last_output 20
    tlshd_said
fi

step "plain connect to the TLS listener"
check_fails "nvme connect without --tls is refused" nvme connect "${tls[@]}" -n "$nqn"
expect "no controller left" "$(nvme_ctrl "$nqn" || echo none)" none

step "a host the target has no PSK for"
check_fails "nvme connect --tls as that host is refused" \
    nvme connect "${tls[@]}" -n "$nqn" --tls --hostnqn="$GUEST_OTHER_HOSTNQN" \
        --hostid="$GUEST_OTHER_HOSTID"
expect "no controller left" "$(nvme_ctrl "$nqn" || echo none)" none

step "connect over TLS"
if ! check "nvme connect --tls" nvme connect "${tls[@]}" -n "$nqn" --tls "${E2E_CONNECT_OPTS[@]}"; then
    tlshd_said
    e2e_finish
fi
on_exit "nvme disconnect -n '$nqn'"
if ! ns=$(wait_ns "$nqn" 1); then
    fail "namespace 1 of $nqn appears as a block device"
    e2e_finish
fi
pass "namespace 1 is /dev/$ns"
c=$(nvme_ctrl "$nqn")
key=$(cat "/sys/class/nvme/$c/tls_key" 2> /dev/null || true)
expect_true "the controller uses a TLS key (sysfs tls_key $key)" -n "$key"
info "$(cat "/sys/class/nvme/$c/address")"

step "fio write + verify over TLS"
check "fio 4 KiB random writes, QD 16, crc32c verify" \
    fio --name=tls-rand --filename="/dev/$ns" --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randwrite --bs=4k --size=8M --verify=crc32c --verify_fatal=1
check "fio 4-256 KiB random writes, crc32c verify" \
    fio --name=tls-mixed --filename="/dev/$ns" --direct=1 --ioengine=libaio --iodepth=8 \
        --rw=randwrite --bsrange=4k-256k --size=8M --offset=16M --verify=crc32c --verify_fatal=1

step "disconnect"
check "nvme disconnect" nvme disconnect -n "$nqn"
expect "no controller left" "$(nvme_ctrl "$nqn" || echo none)" none
info "tlshd: $(grep -c 'was successful' /tmp/tlshd.log) handshakes succeeded, $(grep -c 'failed' /tmp/tlshd.log) failed"
e2e_finish
