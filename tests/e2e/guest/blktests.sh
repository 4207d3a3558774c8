#!/bin/bash
# blktests.sh - guest test: blktests' nvme group against znstgt, through the
# target hook (tests/nvme-target-control, doc/blktests.md), as blktests
# expects an external target: the hook starts znstgt on the guest's
# 127.0.0.1:4420 and every test sets its subsystem up and tears it down
# through it. Then blktests' zbd group on a zoned namespace of znstgt (set up
# through the same hook) as its TEST_DEVS.
#
# From the host (run-e2e.sh copies these into the share, beside this script):
#   blktests.tar          a blktests tree with its helpers built (src/)
#   znstgt, znstgt-ctl    the target and its control client
#   nvme-target-control   the hook
#   nvmet-hosts-fs        nvmet's configfs host attributes, passed to the hook
#
# Prints one line per blktests test, with the kernel:
#   PASS: GROUP/NNN (KERNEL, RUNTIME)
#   FAIL: GROUP/NNN (KERNEL) and blktests' detail, indented
#   SKIP: GROUP/NNN (KERNEL): the reason
# Tests that cannot pass against any external target (below, and in
# doc/blktests.md) are not run and reported as SKIP with the reason.
# blktests' full output is kept in the share (blktests-check.log, and
# blktests-results.tar with every test's output and kernel messages).
set -u
# shellcheck disable=SC2034 # read by lib.sh
E2E_NAME=blktests
. "$(dirname "$0")/lib.sh"

kernel=$(uname -r)

# Not run: they need what only the kernel target (or a feature znstgt lacks)
# has. doc/blktests.md says the same; keep the two in step.
declare -A NOT_RUN=(
    [nvme/051]="external target: enables and disables the namespace through nvmet's configfs"
    [nvme/062]="external target: blktests does not pass --tls / --force-tls on to the hook (the same setup must first allow, then refuse, a plain connect); and it starts tlshd with systemctl, which the guest (no systemd) has not (a Linux host over TLS is the tls-6.12 test)"
    [nvme/057]="external target: changes ANA states through nvmet's configfs ports"
    [nvme/058]="external target: creates namespaces and ANA groups through nvmet's configfs"
)

# zbd/005 writes 256 KiB at queue depth 128. On Linux 6.1 the host's data,
# sent over loopback to the target in this guest, reaches the target's
# readv() in socket buffers whose fragments span two compound pages, and the
# kernel's hardened usercopy check takes that for an exposure of kernel
# memory: "usercopy: Kernel memory exposure attempt detected from page
# alloc", a kernel BUG in tcp_recvmsg, and the guest panics. The copy itself
# is sound; 6.12 passes the test.
if [[ $kernel == 6.1.* ]]; then
    NOT_RUN[zbd/005]="Linux 6.1's hardened usercopy BUGs in the target's readv() of the 256 KiB writes its own nvme-tcp host sends over loopback (socket buffer fragments spanning two compound pages)"
fi

step "blktests nvme group on $kernel, $(nvme version | head -1), target znstgt in the guest"
work=/tmp/blktests-e2e
mkdir -p "$work/znstgt/build" "$work/znstgt/tests" "$work/hook"
require "unpack blktests" tar -xf "$E2E_SHARE/blktests.tar" -C "$work"
# the hook finds build/znstgt and build/znstgt-ctl beside itself
cp "$E2E_SHARE/znstgt" "$work/znstgt/build/"
cp "$E2E_SHARE/znstgt-ctl" "$work/znstgt/build/"
cp "$E2E_SHARE/nvme-target-control" "$work/znstgt/tests/"
require "znstgt runs in the guest" "$work/znstgt/build/znstgt" --help
# The target's namespaces live in memory: tmpfs costs no emulated disk I/O.
require "a tmpfs for the target's data" mount -t tmpfs -o size=2G znstgt "$work/hook"
export ZNSTGT_HOOK_DIR=$work/hook
# blktests' namespace size (the hook follows it). Its default, 1 GiB, makes
# the fio verify tests (nvme/010, 012) write and read 1 GiB each at a few
# MiB/s under emulation; 512 MiB is above what any test requires (012: 350m)
# and halves the run.
export NVME_IMG_SIZE=${GUEST_NVME_IMG_SIZE:-512M}
hook=$work/znstgt/tests/nvme-target-control
on_exit "'$hook' stop"

# nvme/042-045 change a host's DH-HMAC-CHAP keys, hash and DH group by
# writing nvmet's configfs (hosts/NQN/dhchap_key, ...) themselves, hook or
# not, and connect (or re-authenticate) right after. nvmet-hosts-fs serves
# those files there and passes each write to the hook, which applies it to
# znstgt before the write returns. Its mount point is nvmet's own configfs
# directory hosts/ (subsystems/ and ports/ stay nvmet's): nvmet-tcp is
# loaded first, so that blktests, which unloads the modules it loaded itself
# after each test, leaves it (and the mount) be. Linux 6.1 has no NVME_AUTH
# (blktests skips those tests) and this guest no FUSE there.
cfs=/sys/kernel/config/nvmet/hosts
if [ -e /dev/fuse ]; then
    cp "$E2E_SHARE/nvmet-hosts-fs" "$work/znstgt/build/"
    require "nvmet-tcp loaded (its configfs directory: $cfs)" \
        sh -c "modprobe nvmet-tcp && test -d $cfs"
    # The kernel tests each crypto algorithm the first time it is
    # instantiated (its self-tests); under emulation that takes ~9 s for
    # ffdhe6144(dh) and more for ffdhe8192(dh), longer than the 5 s
    # keep-alive timeout of the connect that first uses the group. With
    # nvmet, blktests' write of hosts/H/dhchap_dhgroup instantiates it
    # (nvmet checks the group with crypto_has_kpp) before the connect; here
    # the same writes into nvmet's configfs do it once, up front.
    E2E_CMD_TIMEOUT=600 require "the kernel's ffdhe DH groups instantiated (self-tests run)" \
        sh -c "mkdir $cfs/znstgt-dh && for g in ffdhe2048 ffdhe3072 ffdhe4096 ffdhe6144 ffdhe8192;
               do echo \$g > $cfs/znstgt-dh/dhchap_dhgroup || exit 1; done; rmdir $cfs/znstgt-dh"
    require "nvmet-hosts-fs on $cfs" "$work/znstgt/build/nvmet-hosts-fs" "$cfs" "$hook" \
        "$E2E_SHARE/nvmet-hosts-fs.log"
    on_exit "umount '$cfs'"
else
    info "no /dev/fuse: nvmet's configfs stays as it is (nvme/042-045 need NVME_AUTH, which this kernel has not)"
fi

excludes=()
for t in "${!NOT_RUN[@]}"; do excludes+=(-x "$t"); done
# GUEST_BLKTESTS names some tests ("nvme/041 zbd/002") or groups; default:
# both groups.
read -ra only <<< "${GUEST_BLKTESTS:-nvme zbd}"
# chosen TEST: TEST (group/NNN) is to run
chosen() { [[ " ${only[*]} " == *" ${1%/*} "* || " ${only[*]} " == *" $1 "* ]]; }
# chosen_of GROUP: the tests of GROUP to run, for ./check ("GROUP" for all)
chosen_of() {
    if [[ " ${only[*]} " == *" $1 "* ]]; then echo "$1"; return; fi
    local t
    for t in "${only[@]}"; do [ "${t%/*}" = "$1" ] && echo "$t"; done
}

# report NAME STATUS RUNTIME DETAIL: one line for a finished blktests test
report() {
    case $2 in
        passed)    pass "$1 ($kernel, $3)" ;;
        failed)    fail "$1 ($kernel)" "$4" ;;
        "not run") skip "$1 ($kernel): $(sed 's/^ *//' <<< "$4" | paste -sd ';' | sed 's/;/; /g')" ;;
    esac
    echo "$1" >> /tmp/blktests-seen
}

# run_check GROUP [ARG...]: ./check ARG... with one line per test of GROUP.
# blktests writes, per test: "GROUP/NNN (description)" (a test of a device:
# "GROUP/NNN => DEV (description)") when it starts and the same followed by
# "[passed|failed|not run]" when it ends, then indented lines (runtime, skip
# reasons, the diff of a failure). Lines are passed on as they come so that
# the run shows its progress. The environment is ./check's.
run_check() {
    local group=$1
    shift
    name='' status='' runtime='' detail=''
    ./check "$@" < /dev/null 2>&1 |
        tee -a "$E2E_SHARE/blktests-check.log" | {
        while IFS= read -r line; do
            if [[ $line =~ ^($group/[0-9]+)\ .*\[(passed|failed|not\ run)\]\ *$ ]]; then
                [ -z "$name" ] || report "$name" "$status" "$runtime" "$detail"
                name=${BASH_REMATCH[1]} status=${BASH_REMATCH[2]} runtime='' detail=''
            elif [[ $line =~ ^($group/[0-9]+)\  ]]; then
                [ -z "$name" ] || report "$name" "$status" "$runtime" "$detail"
                name='' status=''
                info "running ${BASH_REMATCH[1]}"
            elif [ -n "$name" ]; then
                if [[ $line =~ ^\ +runtime\ .*\ ([0-9.]+s)\ *$ ]]; then
                    runtime=${BASH_REMATCH[1]}
                else
                    detail+=${detail:+$'\n'}$line
                fi
            else
                info "$line"
            fi
        done
        [ -z "$name" ] || report "$name" "$status" "$runtime" "$detail"
        # the tally leaves the pipeline (a subshell) through a file
        echo "$E2E_PASSED $E2E_FAILED $E2E_SKIPPED" > /tmp/blktests-tally
    }
    read -r E2E_PASSED E2E_FAILED E2E_SKIPPED < /tmp/blktests-tally ||
        fail "./check $group printed nothing"
}

# ./check passes over the tests that need a test device (test_device())
# without a word when TEST_DEVS is empty. And its _have_kver reads the
# kernel release as blktests does below: Debian 13's "6.12.118+deb13-amd64"
# becomes "6.12.118deb13", which bash's arithmetic rejects, and the test
# using it dies in requires() without a word either. Every other test of
# those given (TESTS...) must have said something.
kver=$(uname -r | sed 's/-.*//;s/[^.0-9]//')
account_silent() {
    local f t
    for t in "$@"; do
        f=tests/$t
        grep -qx "$t" /tmp/blktests-seen && continue
        if grep -q '^test_device()' "$f"; then
            skip "$t ($kernel): a test of a given device (test_device), and TEST_DEVS is empty"
        elif [[ ! $kver =~ ^[0-9]+(\.[0-9]+)*$ ]] && grep -q '_have_kver' "$f"; then
            skip "$t ($kernel): blktests' _have_kver cannot read this kernel's release ('$kver'); the test stops in requires()"
        else
            fail "$t ($kernel): ./check reported nothing"
        fi
    done
}

cd "$work/blktests" || e2e_finish
: > /tmp/blktests-seen
: > "$E2E_SHARE/blktests-check.log"
mapfile -t nvme_run < <(chosen_of nvme)
if [ ${#nvme_run[@]} -gt 0 ]; then
    nvme_not_run=$(printf '%s\n' "${!NOT_RUN[@]}" | grep '^nvme/' | sort)
    step "./check nvme (the rest of the group: $(xargs <<< "$nvme_not_run") are not run)"
    NVME_TARGET_CONTROL=$hook run_check nvme "${excludes[@]}" "${nvme_run[@]}"
    for t in $nvme_not_run; do
        chosen "$t" && skip "$t ($kernel): ${NOT_RUN[$t]}"
    done
    mapfile -t all < <(cd tests && ls -d nvme/[0-9][0-9][0-9])
    mine=()
    for t in "${all[@]}"; do [ -z "${NOT_RUN[$t]:-}" ] && chosen "$t" && mine+=("$t"); done
    account_silent "${mine[@]}"
fi

# blktests' zbd group on a zoned namespace of znstgt, TEST_DEVS: the hook
# sets up a subsystem with one (ZNSTGT_ZONED), and the guest connects to it
# as any host would. Only the tests of a given device run (test_device()):
# the others build their own devices (null_blk, scsi_debug) and so test
# the guest's kernel, not the target.
mapfile -t zbd_all < <(cd tests && grep -l '^test_device()' zbd/[0-9][0-9][0-9])
zbd_run=()
for t in "${zbd_all[@]}"; do
    chosen "$t" || continue
    if [ -n "${NOT_RUN[$t]:-}" ]; then skip "$t ($kernel): ${NOT_RUN[$t]}"; else zbd_run+=("$t"); fi
done
if [ ${#zbd_run[@]} -gt 0 ]; then
    # 64 zones of 8 MiB in blktests' namespace size (above), 4 KiB blocks:
    # zbd/004 fills a zone with one dd write per physical block, each a
    # round trip of a few ms under emulation
    export ZNSTGT_ZONE_SIZE=8M ZNSTGT_LBA_SIZE=4096
    step "./check ${zbd_run[*]} on a zoned namespace of znstgt ($NVME_IMG_SIZE, $ZNSTGT_ZONE_SIZE zones)"
    zbd_nqn=nqn.2026-12.io.znstgt.e2e:zbd
    zbd_host=$("$hook" config --show-hostnqn) zbd_hostid=$("$hook" config --show-hostid)
    # blktests unloads the modules it loaded itself
    if check "nvme-tcp loaded" modprobe nvme-tcp &&
       check "the hook sets up a zoned subsystem" env ZNSTGT_ZONED=yes "$hook" setup \
            --subsysnqn "$zbd_nqn" --subsys-uuid "$(cat /proc/sys/kernel/random/uuid)" \
            --hostnqn "$zbd_host" &&
       check "nvme connect to it" nvme connect -t tcp -a "$("$hook" config --show-traddr)" \
            -s "$("$hook" config --show-trsvid)" -n "$zbd_nqn" --hostnqn "$zbd_host" \
            --hostid "$zbd_hostid" "${E2E_CONNECT_OPTS[@]}"; then
        on_exit "nvme disconnect -n '$zbd_nqn'"
        if zbd_ns=$(wait_ns "$zbd_nqn" 1); then
            pass "its zoned namespace is /dev/$zbd_ns ($(cat "/sys/block/$zbd_ns/queue/zoned"))"
            # Linux 6.1 orders the writes to a zone only under mq-deadline,
            # which blktests sets on TEST_DEV: with multipath that is the
            # bio-based head, and the path disks below need it (zns-basic.sh)
            for b in $(ns_paths "$zbd_ns"); do
                check "mq-deadline scheduler on $b" sh -c "echo mq-deadline > /sys/block/$b/queue/scheduler"
            done
            TEST_DEVS=/dev/$zbd_ns run_check zbd "${zbd_run[@]}"
            account_silent "${zbd_run[@]}"
        else
            fail "the zoned namespace of $zbd_nqn appears as a block device"
        fi
        check "nvme disconnect from it" nvme disconnect -n "$zbd_nqn"
    fi
    check "the hook removes the zoned subsystem" "$hook" cleanup --subsysnqn "$zbd_nqn"
fi

tar -cf "$E2E_SHARE/blktests-results.tar" -C "$work/blktests" results 2> /dev/null
check "the hook stops the target" "$hook" stop
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$work/hook/znstgt.log"; then
    fail "no sanitizer report in the target's log" "$(grep -m3 -A10 -E 'Sanitizer|runtime error:' "$work/hook/znstgt.log")"
else
    pass "no sanitizer report in the target's log"
fi
cp "$work/hook/znstgt.log" "$E2E_SHARE/znstgt-guest.log"
e2e_finish
