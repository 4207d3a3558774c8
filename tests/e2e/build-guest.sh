#!/bin/bash
# build-guest.sh - build (idempotently) a Linux guest that run-guest.sh boots:
# a stock Debian kernel and a debootstrapped userspace of the same release
# with nvme-cli, fio, util-linux and what blktests' nvme group uses, acting as
# a real NVMe/TCP host for the end-to-end tests.
#
#   tests/e2e/build-guest.sh [VARIANT]   # builds once, then returns at once
#
# VARIANT (default $E2E_GUEST, else bookworm):
#   bookworm   Debian 12: Linux 6.1, nvme-cli 2.3
#   trixie     Debian 13: Linux 6.12, nvme-cli 2.13
# Each variant has a cache directory of its own, so both stay built.
#
# Environment (all optional):
#   ZNSTGT_E2E_CACHE    cache directory (default ~/.cache/znstgt-e2e); the
#                       variant lives in $ZNSTGT_E2E_CACHE/VARIANT
#   ZNSTGT_E2E_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   ZNSTGT_E2E_SECURITY_MIRROR  (default http://deb.debian.org/debian-security)
#   ZNSTGT_E2E_REFRESH=1  re-resolve the kernel package (a newer kernel of
#                       the release is picked up) and rebuild the boot files
#
# Result in $ZNSTGT_E2E_CACHE/VARIANT/out/:
#   vmlinux       the kernel as an uncompressed ELF, booted through PVH
#                 (skips the firmware's real-mode setup and the in-guest
#                 decompression: ~3 s faster per boot under TCG)
#   vmlinuz       the same kernel as Debian ships it (fallback)
#   initrd.img    busybox + the few modules needed to mount the root disk
#   rootfs.ext4   the root disk; run-guest.sh boots it with snapshot=on, so it
#                 is never modified and runs can overlap
#   info.txt      kernel and package versions
#
# Needs root only when something has to be (re)built: debootstrap, chroot and
# apt-get (for missing host tools). Everything else in the system is left
# alone: apt runs with a private configuration and private lists in the cache.
set -euo pipefail

# The whole script is one { } block: bash then parses it before running any of
# it, so editing this file while a build runs cannot corrupt that build.
{

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VARIANT=${1:-${E2E_GUEST:-bookworm}}
CACHE=${ZNSTGT_E2E_CACHE:-$HOME/.cache/znstgt-e2e}/$VARIANT
MIRROR=${ZNSTGT_E2E_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${ZNSTGT_E2E_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
OUT=$CACHE/out

# Guest userspace. minbase already has coreutils, util-linux (blkzone,
# losetup), bash, mawk, grep, sed, gzip; busybox-static provides poweroff and
# the initramfs shell. blktests' check wants gawk, column (bsdextrautils) and
# udevadm (udev; the daemon never runs); its nvme group mkfs.xfs and xfs_io.
# znstgt itself runs in the guest for blktests: its shared libraries (ldd
# build/znstgt) and the sanitizer runtimes of SAN=asan builds.
GUEST_PKGS="kmod iproute2 procps e2fsprogs nvme-cli fio jq busybox-static
            gawk bsdextrautils udev xfsprogs libinih1 liburing2 libasan8 libubsan1"
case $VARIANT in
    bookworm) SUITE=bookworm; GUEST_PKGS+=" libev4" ;;
    # trixie renamed libraries for the 64-bit time_t transition; tlshd
    # (ktls-utils) does the TLS handshakes of `nvme connect --tls` (6.12);
    # mkzonefs (zonefs-tools, not in bookworm) formats zonefs (zonefs.sh)
    trixie)   SUITE=trixie;   GUEST_PKGS+=" libev4t64 ktls-utils zonefs-tools" ;;
    *)        echo "build-guest.sh: unknown variant '$VARIANT' (bookworm, trixie)" >&2; exit 2 ;;
esac
GUEST_PKGS=$(xargs <<< "$GUEST_PKGS") # one line: it goes into stamps and --include

# Kernel modules copied into the guest (with their dependencies, resolved by
# modprobe). kTLS (tls) needs gcm(aes) for the records tlshd hands to the
# kernel after an NVMe/TCP TLS handshake. Only these: the full module tree is
# ~400 MB, and a smaller image is built and booted faster.
ROOT_MODS="virtio_pci virtio_blk ext4 crc32c_generic"
GUEST_MODS="$ROOT_MODS virtio_net 9p 9pnet_virtio configfs
            nvme nvme-tcp nvme-fabrics nvme-core nvmet nvmet-tcp null_blk
            crc32c-intel zonefs scsi_debug dm-zoned loop xfs dh_generic
            tls gcm ghash-generic aesni-intel ghash-clmulni-intel"

log() { printf '[build-guest %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Everything that decides what we build. When it is unchanged and the boot
# files exist, there is nothing to do (the warm path: no root, no network).
RECIPE=$( { echo "suite=$SUITE mirror=$MIRROR security=$SECURITY_MIRROR"
            echo "pkgs=$GUEST_PKGS mods=$GUEST_MODS root=$ROOT_MODS"
            cat "$E2E_DIR/build-guest.sh" "$E2E_DIR"/boot/*; } | md5sum | cut -c1-16)
up_to_date() {
    [ -z "${ZNSTGT_E2E_REFRESH:-}" ] && [ -f "$OUT/.recipe" ] &&
        [ "$(cat "$OUT/.recipe")" = "$RECIPE" ] &&
        [ -f "$OUT/rootfs.ext4" ] && [ -f "$OUT/initrd.img" ] && [ -f "$OUT/vmlinuz" ]
}
if up_to_date; then
    log "guest in $OUT is up to date ($(sed -n 's/^kernel release: //p' "$OUT/info.txt"))"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "building the guest needs root (debootstrap, chroot); run as root once"
T_START=$SECONDS

# One build at a time: builds share apt lists, the .deb cache and the rootfs.
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
if ! flock -n 9; then
    log "another build-guest.sh holds $CACHE/.lock; waiting"
    flock 9
    if up_to_date; then log "built by the other run meanwhile"; exit 0; fi
fi

# ------------------------------------------------------------ host tools
# command:package pairs; only missing ones are installed.
missing=()
for pair in debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 mkfs.ext4:e2fsprogs \
            cpio:cpio xz:xz-utils zstd:zstd gzip:gzip dpkg-deb:dpkg depmod:kmod flock:util-linux ss:iproute2; do
    command -v "${pair%%:*}" > /dev/null 2>&1 || missing+=("${pair#*:}")
done
[ -f "$KEYRING" ] || missing+=(debian-archive-keyring)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing host packages: ${missing[*]}"
    t0=$SECONDS
    # Other configured sources may be unreachable; Debian's own are enough.
    apt-get update -qq >&2 || log "apt-get update reported errors; trying the install anyway"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" > "$CACHE/host-apt.log" 2>&1 \
        || { tail -20 "$CACHE/host-apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
    log "host packages installed in $((SECONDS - t0)) s"
fi

# ------------------------------------------------------------ private apt
# A sources.list and state directories of our own, so that we can ask about
# and download bookworm packages without touching the system's apt setup.
APT=$CACHE/apt
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc/sources.list.d" "$APT/etc/preferences.d"
cat > "$APT/etc/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR $SUITE main
deb [signed-by=$KEYRING] $MIRROR $SUITE-updates main
deb [signed-by=$KEYRING] $SECURITY_MIRROR $SUITE-security main
EOF
APT_OPTS=(-o Dir::Etc::sourcelist="$APT/etc/sources.list" -o Dir::Etc::sourceparts="$APT/etc/sources.list.d"
          -o Dir::Etc::preferencesparts="$APT/etc/preferences.d" -o Dir::State::Lists="$APT/lists"
          -o Dir::Cache="$APT" -o Dir::Cache::archives="$APT/archives" -o Dir::State::status=/dev/null
          -o Acquire::Languages=none -o APT::Sandbox::User=root -o Debug::NoLocking=1)
# Lists are refreshed when older than a day or when asked to.
if [ -n "${ZNSTGT_E2E_REFRESH:-}" ] || [ -z "$(find "$APT/updated" -mmin -1440 2>/dev/null)" ]; then
    log "apt-get update (private lists in $APT)"
    apt-get "${APT_OPTS[@]}" update -qq >&2 || die "apt-get update from $MIRROR failed"
    touch "$APT/updated"
fi

# remove a directory we built without ever descending into a mount below it
# (a failed debootstrap can leave proc or sys mounted in its target)
safe_rm() {
    local d m
    for d in "$@"; do
        [ -e "$d" ] || continue
        d=$(realpath "$d")
        awk -v d="$d/" 'index($2 "/", d) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" || true; done
        rm -rf --one-file-system "$d"
    done
}

# ------------------------------------------------------------ 1. rootfs
ROOTFS=$CACHE/rootfs
WANT_ROOTFS="suite=$SUITE mirror=$MIRROR pkgs=$GUEST_PKGS"
if [ -f "$ROOTFS/.e2e-done" ] && [ "$(cat "$ROOTFS/.e2e-done")" = "$WANT_ROOTFS" ]; then
    log "rootfs $ROOTFS up to date"
else
    log "debootstrap --variant=minbase $SUITE -> $ROOTFS"
    t0=$SECONDS
    safe_rm "$ROOTFS.tmp"
    mkdir -p "$CACHE/debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="${GUEST_PKGS// /,}" \
        "$SUITE" "$ROOTFS.tmp" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
        || { tail -30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    rm -rf "$ROOTFS.tmp"/usr/share/{doc,man,info,locale}/* "$ROOTFS.tmp"/var/cache/apt/*.bin \
           "$ROOTFS.tmp"/var/cache/apt/archives/*.deb "$ROOTFS.tmp"/var/lib/apt/lists/*_*
    echo "$WANT_ROOTFS" > "$ROOTFS.tmp/.e2e-done"
    safe_rm "$ROOTFS"
    mv "$ROOTFS.tmp" "$ROOTFS"
    log "debootstrap done in $((SECONDS - t0)) s"
fi

# ------------------------------------------------------------ 2. kernel
# linux-image-amd64 is a metapackage; its first dependency names the real one.
# The package is unpacked with dpkg-deb: nothing is installed, no initramfs
# generator runs.
KPKG=$(apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null |
       awk '/Depends: linux-image-/ && !f { print $2; f = 1 }')
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 in $SUITE"
# Only the .deb is kept (~70 MB; unpacked it is ~400 MB): the boot files are
# made from a fresh unpacking.
mkdir -p "$CACHE/kernels"
deb=$(ls "$CACHE/kernels/${KPKG}"_*.deb 2> /dev/null || true)
if [ -z "$deb" ]; then
    log "downloading $KPKG"
    rm -f "$CACHE"/kernels/*.deb
    (cd "$CACHE/kernels" && apt-get "${APT_OPTS[@]}" download -qq "$KPKG" >&2) || die "apt-get download $KPKG failed"
    deb=$(ls "$CACHE/kernels/${KPKG}"_*.deb)
fi
KVERSION=$(dpkg-deb -f "$deb" Version)
log "kernel $KPKG $KVERSION"

# ------------------------------------------------------------ 3. boot files
t0=$SECONDS
safe_rm "$OUT.tmp"
mkdir -p "$OUT.tmp"
KDIR=$OUT.tmp/kernel
dpkg-deb -x "$deb" "$KDIR"
# trixie's package has its modules in usr/lib/modules (merged /usr); a link
# lets depmod and modprobe find them where they look
[ -d "$KDIR/lib" ] || ln -s usr/lib "$KDIR/lib"
KVER=$(ls "$KDIR/lib/modules")
[ -f "$KDIR/boot/vmlinuz-$KVER" ] || die "no kernel image in $deb"
# the package ships no modules.dep (its postinst would make it)
depmod -b "$KDIR" "$KVER"
STAGE=$OUT.tmp/stage
# A hard-link copy of the rootfs costs nothing; files we change in it are
# unlinked first so that the rootfs itself stays pristine.
cp -al "$ROOTFS" "$STAGE"
rm -f "$STAGE/.e2e-done" "$STAGE/etc/hostname" "$STAGE/etc/hosts"
install -m 0755 "$E2E_DIR/boot/init" "$STAGE/sbin/e2e-init"
install -m 0644 "$E2E_DIR/boot/fstab" "$STAGE/etc/e2e-fstab"
echo znstgt-e2e > "$STAGE/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 znstgt-e2e\n' > "$STAGE/etc/hosts"

# Kernel modules: the wanted ones and what they depend on.
KSRC=$KDIR/lib/modules/$KVER
KDST=$STAGE/lib/modules/$KVER
mkdir -p "$KDST"
cp "$KSRC"/modules.builtin* "$KSRC"/modules.order "$KDST/"
# shellcheck disable=SC2086 # word splitting of the module lists is intended
for m in $GUEST_MODS; do
    modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" 2>/dev/null ||
        die "kernel $KVER has no module $m"
done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r f; do
    rel=${f#"$KSRC"/}
    mkdir -p "$KDST/$(dirname "$rel")"
    cp "$f" "$KDST/$rel"
done
depmod -b "$STAGE" "$KVER"

cp "$KDIR/boot/vmlinuz-$KVER" "$OUT.tmp/vmlinuz"
cp "$KDIR/boot/config-$KVER" "$OUT.tmp/config"
# blktests reads the kernel's options from /boot/config-$(uname -r)
rm -f "$STAGE/boot/config-$KVER"
cp "$KDIR/boot/config-$KVER" "$STAGE/boot/"
# vmlinux: the bzImage carries the kernel compressed (xz on bookworm, zstd on
# trixie); find the stream by its magic bytes and decompress it, as the
# kernel's scripts/extract-vmlinux does. The decompressor stops at the end of
# the stream and complains about the trailing bytes, hence the ELF check
# instead of its status.
extract_vmlinux() {
    local bz=$1 out=$2 pos spec
    for spec in 'xz -dc:\xfd7zXZ\x00' 'zstd -qdc:\x28\xb5\x2f\xfd'; do
        command -v "${spec%% *}" > /dev/null || continue
        # (only the offsets reach `read`: the matched bytes can swallow the
        # line's end when read as UTF-8)
        while read -r pos; do
            tail -c +$((pos + 1)) "$bz" | ${spec%%:*} 2> /dev/null > "$out" || true
            [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && return 0
        done < <(LC_ALL=C grep -aboP "${spec#*:}" "$bz" | cut -d: -f1)
    done
    rm -f "$out"
    return 1
}
extract_vmlinux "$OUT.tmp/vmlinuz" "$OUT.tmp/vmlinux" || log "no vmlinux extracted: run-guest.sh boots vmlinuz"

# rootfs.ext4: the staged tree plus 256 MiB of room (tests write to tmpfs or
# to the share, rarely to the root disk). No journal: every boot uses a
# throw-away snapshot of the image, and mounting without one is ~0.5 s faster.
size_mb=$(( $(du -sm "$STAGE" | cut -f1) + 256 ))
mkfs.ext4 -q -F -L e2eroot -O ^has_journal -E lazy_itable_init=0 -d "$STAGE" \
    "$OUT.tmp/rootfs.ext4" "${size_mb}M" > /dev/null

# initrd.img: static busybox (the guest's own) and the root-disk modules,
# loaded in dependency order by the initramfs' /init; busybox's insmod wants
# them uncompressed (trixie's are .ko.xz).
IR=$OUT.tmp/initramfs
mkdir -p "$IR"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$STAGE/bin/busybox" "$IR/bin/busybox"
for a in sh mount insmod switch_root sleep cat poweroff; do ln -s busybox "$IR/bin/$a"; done
# shellcheck disable=SC2086
for m in $ROOT_MODS; do modprobe -d "$STAGE" -S "$KVER" --show-depends "$m"; done |
    awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r f; do
        b=$(basename "$f")
        case $b in
            *.ko.xz)  b=${b%.xz};  xz -dc "$f" > "$IR/lib/modules/$b" ;;
            *.ko.zst) b=${b%.zst}; zstd -qdc "$f" > "$IR/lib/modules/$b" ;;
            *)        cp "$f" "$IR/lib/modules/" ;;
        esac
        echo "$b" >> "$IR/modules.order"
    done
install -m 0755 "$E2E_DIR/boot/initramfs-init" "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet) | gzip -1 > "$OUT.tmp/initrd.img"
rm -rf "$IR"

{
    echo "built: $(date -u +%FT%TZ)"
    echo "suite: $SUITE ($MIRROR)"
    echo "kernel package: $KPKG $KVERSION"
    echo "kernel release: $KVER"
    echo "versions:"
    # shellcheck disable=SC2016 # ${Package} is dpkg-query's, not ours
    # (libnvme1t64 is trixie's libnvme1; dpkg-query fails on the name it lacks)
    chroot "$STAGE" dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' nvme-cli libnvme1 \
        libnvme1t64 fio util-linux kmod iproute2 jq busybox-static gawk xfsprogs 2> /dev/null |
        awk '$1 == "ii" { print "  " $2, $3 }' || true
} > "$OUT.tmp/info.txt"
safe_rm "$STAGE" "$KDIR"
echo "$RECIPE" > "$OUT.tmp/.recipe"
safe_rm "$OUT"
mv "$OUT.tmp" "$OUT"
log "boot files built in $((SECONDS - t0)) s; whole build $((SECONDS - T_START)) s"
sed 's/^/  /' "$OUT/info.txt" >&2
exit 0
}
