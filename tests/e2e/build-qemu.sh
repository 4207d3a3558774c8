#!/bin/bash
# build-qemu.sh - build (idempotently) a QEMU with the vfio-user client
# (`-device vfio-user-pci`, QEMU 10.1 or later) for the vfio-user tests.
#
#   tests/e2e/build-qemu.sh            # builds once, then returns at once
#   tests/e2e/build-qemu.sh --check    # exit 0 when built and up to date
#
# Debian 12 ships QEMU 7.2, which has no vfio-user client. Debian sid has a
# recent one: this script debootstraps a minimal sid tree into the cache and
# installs qemu-system-x86 in it. Nothing on this machine changes (apt runs
# inside the tree; the host gains only debootstrap if it lacks it).
# qemu-sid.sh runs the QEMU of that tree.
#
# Environment (all optional):
#   ZNSTGT_E2E_CACHE      cache directory (default ~/.cache/znstgt-e2e); the
#                         tree lives in $ZNSTGT_E2E_CACHE/qemu-sid/root
#   ZNSTGT_E2E_SID_MIRROR Debian mirror for sid (default: the first Debian
#                         mirror of this machine's own apt sources, else
#                         http://deb.debian.org/debian)
#   ZNSTGT_E2E_REFRESH=1  rebuild the tree (a newer QEMU of sid)
#
# Needs root only when something has to be (re)built.
set -euo pipefail
{

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ZNSTGT_E2E_CACHE:-$HOME/.cache/znstgt-e2e}/qemu-sid
ROOT=$CACHE/root
# qemu-system-x86 brings the firmware (seabios, ipxe-qemu) it needs.
PKGS="qemu-system-x86"

log() { printf '[build-qemu %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The mirror this machine already uses (deb822 .sources first, then a
# one-line sources.list), so that a machine behind a local mirror keeps
# using it; the security archive has no sid.
host_mirror() {
    local u
    u=$(cat /etc/apt/sources.list.d/*.sources 2> /dev/null |
        awk '/^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i }' | grep -v -- '-security' | head -1)
    [ -n "$u" ] || u=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }' \
                       /etc/apt/sources.list 2> /dev/null | grep -v -- '-security' | head -1)
    echo "${u:-http://deb.debian.org/debian}"
}
MIRROR=${ZNSTGT_E2E_SID_MIRROR:-$(host_mirror)}

RECIPE=$( { echo "mirror=$MIRROR pkgs=$PKGS"; cat "$E2E_DIR/build-qemu.sh"; } | md5sum | cut -c1-16)
# in_root CMD...: run CMD in the tree with /proc mounted, in a private mount
# namespace (nothing stays mounted on this machine)
in_root() {
    unshare --mount --propagation private -- sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' \
        "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"
}
# the client must be there: `-device vfio-user-pci,help` lists socket=
has_client() {
    in_root qemu-system-x86_64 -device vfio-user-pci,help 2> /dev/null | grep -q 'socket='
}
up_to_date() {
    [ -z "${ZNSTGT_E2E_REFRESH:-}" ] && [ -f "$ROOT/.e2e-done" ] &&
        [ "$(cat "$ROOT/.e2e-done")" = "$RECIPE" ] && [ -x "$ROOT/usr/bin/qemu-system-x86_64" ]
}
if [ "${1:-}" = --check ]; then
    up_to_date && exit 0
    exit 1
fi
if up_to_date; then
    log "QEMU in $ROOT is up to date ($(cat "$CACHE/version.txt" 2> /dev/null))"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "building the sid QEMU needs root (debootstrap, chroot); run as root once"
T_START=$SECONDS
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
if ! flock -n 9; then
    log "another build-qemu.sh holds $CACHE/.lock; waiting"
    flock 9
    if up_to_date; then log "built by the other run meanwhile"; exit 0; fi
fi

if ! command -v debootstrap > /dev/null || [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    log "installing host packages: debootstrap debian-archive-keyring"
    apt-get update -qq >&2 || log "apt-get update reported errors; trying the install anyway"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends debootstrap debian-archive-keyring > "$CACHE/host-apt.log" 2>&1 ||
        { tail -20 "$CACHE/host-apt.log" >&2; die "apt-get install debootstrap failed"; }
fi

# remove a tree we built without descending into a mount below it (a failed
# debootstrap can leave proc mounted in its target)
safe_rm() {
    local d m
    [ -e "$1" ] || return 0
    d=$(realpath "$1")
    awk -v d="$d/" 'index($2 "/", d) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$d"
}

# Built beside, moved into place when complete: a half-built tree is never used.
NEW=$ROOT.tmp
safe_rm "$NEW"
mkdir -p "$CACHE/debs"
log "debootstrap --variant=minbase sid from $MIRROR -> $ROOT"
t0=$SECONDS
debootstrap --variant=minbase --cache-dir="$CACHE/debs" sid "$NEW" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 ||
    { tail -30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
log "debootstrap done in $((SECONDS - t0)) s"

# sid's Release file can carry a Valid-Until that is already past on a
# machine whose clock or mirror snapshot lags: apt would refuse the lists.
# No recommends (GUI libraries), no services started by package scripts.
cat > "$NEW/etc/apt/apt.conf.d/99znstgt-e2e" << 'EOF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
Acquire::Languages "none";
EOF
printf '#!/bin/sh\nexit 101\n' > "$NEW/usr/sbin/policy-rc.d"
chmod +x "$NEW/usr/sbin/policy-rc.d"
echo "deb $MIRROR sid main" > "$NEW/etc/apt/sources.list"

log "apt-get install $PKGS (inside the tree)"
t0=$SECONDS
ROOT=$NEW in_root sh -c "apt-get update -qq && apt-get install -y -qq $PKGS && apt-get clean" \
    > "$CACHE/apt.log" 2>&1 || { tail -30 "$CACHE/apt.log" >&2; die "apt-get install $PKGS failed (log: $CACHE/apt.log)"; }
rm -rf "$NEW"/usr/share/{doc,man,info,locale}/* "$NEW"/var/lib/apt/lists/*_*
log "installed in $((SECONDS - t0)) s"

ROOT=$NEW in_root qemu-system-x86_64 --version | head -1 > "$CACHE/version.txt"
ROOT=$NEW has_client || die "$(cat "$CACHE/version.txt") has no vfio-user-pci device with a socket property"
echo "$RECIPE" > "$NEW/.e2e-done"
safe_rm "$ROOT"
mv "$NEW" "$ROOT"
log "$(cat "$CACHE/version.txt") with vfio-user-pci in $ROOT ($(du -sh "$ROOT" | cut -f1)) in $((SECONDS - T_START)) s"
exit 0
}
