#!/bin/bash
# Test of the blktests hook (tests/nvme-target-control): drive it the way
# blktests does (config, setup, cleanup, add-ports) and check every step
# from the host side with build/tools/znstgt-probe, a host that connects
# over NVMe/TCP, reads the namespace's identifiers and writes a block.
#
#   tests/nvme-target-control-test.sh [BUILD_DIR]       (default: build)
#
# Runs the hook's target on a free port with its state in a temporary
# directory; prints "PASS" and exits 0, or names the first failed check.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd) || exit 1
hook=$here/nvme-target-control
probe=$build/tools/znstgt-probe
step=start

fail() {
	echo "FAIL ($step): $*" >&2
	[[ -f $ZNSTGT_HOOK_DIR/znstgt.log ]] && tail -n 20 "$ZNSTGT_HOOK_DIR/znstgt.log" >&2
	exit 1
}

# A port nothing listens on, outside the ephemeral ports connections get
# their local port from (a port an outgoing connection holds does not
# answer the probe below, yet the target cannot bind it): below them, or
# above when they start too low.
free_port() {
	local p lo=32768 hi=60999 base span

	read -r lo hi 2> /dev/null < /proc/sys/net/ipv4/ip_local_port_range
	if ((lo > 12000)); then
		base=10000 span=$((lo - 10000))
	elif ((hi < 64535)); then
		base=$((hi + 1)) span=$((65535 - hi))
	else
		base=20000 span=10000 # all of them ephemeral: any
	fi
	for ((p = base + RANDOM % span; ; p++)); do
		(exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null || { echo "$p"; return; }
	done
}

ZNSTGT_HOOK_DIR=$(mktemp -d /tmp/znstgt-hook-XXXXXX) || exit 1
export ZNSTGT_HOOK_DIR
export ZNSTGT_BIN=$build/znstgt ZNSTGT_CTL=$build/znstgt-ctl
export ZNSTGT_NS_SIZE=64M
ZNSTGT_TRSVCID=$(free_port)
export ZNSTGT_TRSVCID
trap '"$hook" stop; rm -rf "$ZNSTGT_HOOK_DIR"' EXIT

show() {
	"$hook" config "--show-$1"
}

# Host side: probe SUBNQN HOSTNQN [probe options]
connect() {
	local nqn=$1 host=$2

	shift 2
	"$probe" -a "$(show traddr)" -s "$(show trsvid)" -n "$nqn" -q "$host" "$@"
}

step="config"
[[ $(show trtype) == tcp ]] || fail "trtype"
[[ $(show traddr) == 127.0.0.1 ]] || fail "traddr"
[[ $(show trsvid) == "$ZNSTGT_TRSVCID" ]] || fail "trsvid"
[[ $(show host-traddr) == 127.0.0.1 ]] || fail "host-traddr"
[[ $(show blkdev-type) == file ]] || fail "blkdev-type"
[[ $(show subsysnqn) == blktests-subsystem-1 ]] || fail "subsysnqn"
[[ $(show subsys-uuid) == 91fdba0d-f87b-4c25-b80f-db7be1418b9e ]] || fail "subsys-uuid"
host=$(show hostnqn)
[[ $host == "nqn.2014-08.org.nvmexpress:uuid:$(show hostid)" ]] || fail "hostnqn/hostid"
[[ $(show hostid | wc -l) -eq 1 ]] || fail "one line per value"
"$hook" config --show-trtype --show-traddr > /dev/null 2>&1 && fail "two flags at once accepted"
"$hook" config --show-nothing > /dev/null 2>&1 && fail "unknown flag accepted"
"$hook" frobnicate > /dev/null 2>&1 && fail "unknown command accepted"

step="setup with blktests' defaults"
nqn=$(show subsysnqn)
uuid=$(show subsys-uuid)
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid" --hostnqn "$host" || fail "setup"
out=$(connect "$nqn" "$host" -u "$uuid") || fail "probe: $out"
[[ $out == *"uuid $uuid"* && $out == *"csi 0"* && $out == *"io ok"* ]] || fail "probe said: $out"
# blktests counts in 512-byte blocks, as nvmet's backends have them
grep -qx "lba_size = 512" "$ZNSTGT_HOOK_DIR/subsys/"bt-blktests-subsystem-1-*.ini || fail "not 512-byte blocks"
connect "$nqn" nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555 -r \
	> /dev/null || fail "a host that is not allowed got in"

step="a second, zoned subsystem"
zuuid=3f4c2a8e-5b6d-4e7f-8a9b-0c1d2e3f4a5b
ZNSTGT_ZONED=yes ZNSTGT_ZONE_SIZE=4M "$hook" setup --subsysnqn blktests-subsystem-2 \
	--subsys-uuid "$zuuid" --hostnqn "$host" || fail "setup"
out=$(connect blktests-subsystem-2 "$host" -u "$zuuid") || fail "probe: $out"
[[ $out == *"csi 2"* && $out == *"io ok"* ]] || fail "probe said: $out"

# hold NQN HOST: a host connected to NQN that holds its connection open for
# 20 s (in the background, PID in $holder), once it is connected
hold() {
	local i

	# Emptied here, not by the redirection below: that one runs in the
	# background shell, which on a loaded machine may start after the
	# first poll, and the poll would read the previous hold's "holding".
	: > "$ZNSTGT_HOOK_DIR/held"
	connect "$1" "$2" -H 20 >> "$ZNSTGT_HOOK_DIR/held" &
	holder=$!
	# up to 30 s: a connect can take seconds on a loaded machine
	for ((i = 0; i < 600; i++)); do
		grep -q holding "$ZNSTGT_HOOK_DIR/held" && break
		kill -0 "$holder" 2> /dev/null || break
		sleep 0.05
	done
	grep -q holding "$ZNSTGT_HOOK_DIR/held" ||
		fail "the holding probe did not connect ($i polls; probe" \
		     "$(kill -0 "$holder" 2> /dev/null && echo running || echo gone):" \
		     "$(tr '\n' ' ' < "$ZNSTGT_HOOK_DIR/held"))"
}

step="cleanup drops the connections"
hold "$nqn" "$host"
"$hook" cleanup --subsysnqn "$nqn" || fail "cleanup"
wait "$holder" || fail "the connections stayed: $(cat "$ZNSTGT_HOOK_DIR/held")"
connect "$nqn" "$host" -r > /dev/null || fail "the subsystem is still there"
[[ $(ls "$ZNSTGT_HOOK_DIR/data") == bt-blktests-subsystem-2-* ]] || fail "namespace files left"
connect blktests-subsystem-2 "$host" > /dev/null || fail "the other subsystem went too"

step="setup again after cleanup"
uuid2=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid2" --hostnqn "$host" || fail "setup"
connect "$nqn" "$host" -u "$uuid2" > /dev/null || fail "probe"
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid2" --hostnqn "$host" || fail "a stale subsystem blocks setup"

step="setup with DH-HMAC-CHAP keys"
hostkey=DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:
ctrlkey=DHHC-1:01:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj/jBqb2:
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid2" --hostnqn "$host" \
	--hostkey "$hostkey" --ctrkey "$ctrlkey" || fail "setup"
kfile=$(grep -l "dhchap_ctrl_secret = $ctrlkey" "$ZNSTGT_HOOK_DIR"/subsys/*.ini) || fail "keys not written"
[[ $(stat -c %a "$kfile") == 600 ]] || fail "$kfile readable by others"
grep -q "dhchap_secret = $hostkey" "$kfile" || fail "host key not written"
# The probe does not authenticate: the target must not serve it.
connect "$nqn" "$host" -u "$uuid2" > /dev/null 2>&1 && fail "served without authentication"
grep -q "for $host on $nqn, .*authentication required" "$ZNSTGT_HOOK_DIR/znstgt.log" ||
	fail "the Connect did not ask for authentication"
# Keys gone at the next setup: served again.
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid2" --hostnqn "$host" || fail "setup"
connect "$nqn" "$host" -u "$uuid2" > /dev/null || fail "probe after the keys went"

step="refused setups"
err=$("$hook" setup --subsysnqn blktests-subsystem-3 --subsys-uuid 5a5a5a5a-1b1b-4c4c-8d8d-9e9e9e9e9e9e \
	--hostnqn "$host" --hostkey DHHC-1:00:abc: 2>&1) && fail "a malformed DH-HMAC-CHAP key accepted"
[[ $err == *"dhchap_secret"* && $err != *abc* ]] || fail "no reason given, or the key quoted: $err"
"$hook" setup --subsysnqn blktests-subsystem-3 --hostnqn "$host" > /dev/null 2>&1 &&
	fail "setup without --subsys-uuid accepted"
err=$("$hook" setup --subsysnqn blktests-subsystem-3 --subsys-uuid "$zuuid" --hostnqn "$host" 2>&1) &&
	fail "a UUID already in use accepted"
[[ $err == *UUID* ]] || fail "no reason given: $err"

step="host attributes changed at run time (host-attr, as nvmet's configfs hosts/H/ATTR)"
# The subsystem runs without keys; a key set for its host applies at once
# (set-hosts), without a new setup: the probe, which does not authenticate,
# is refused from then on.
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid2" --hostnqn "$host" || fail "setup"
sfile=$(grep -l "^; $nqn\$" "$ZNSTGT_HOOK_DIR"/subsys/*.ini) || fail "no file names $nqn"
connect "$nqn" "$host" -u "$uuid2" > /dev/null || fail "probe before the key"
"$hook" host-attr --hostnqn "$host" dhchap_key "$hostkey" || fail "host-attr dhchap_key"
grep -qx "dhchap_secret = $hostkey" "$sfile" || fail "key not in $sfile"
[[ $(stat -c %a "$sfile") == 600 ]] || fail "$sfile readable by others"
[[ $("$hook" host-attr --hostnqn "$host" dhchap_key) == "$hostkey" ]] || fail "host-attr does not read back"
connect "$nqn" "$host" -u "$uuid2" > /dev/null 2>&1 && fail "served without authentication after host-attr"
"$hook" host-attr --hostnqn "$host" dhchap_hash "hmac(sha384)" || fail "host-attr dhchap_hash"
"$hook" host-attr --hostnqn "$host" dhchap_dhgroup ffdhe3072 || fail "host-attr dhchap_dhgroup"
"$hook" host-attr --hostnqn "$host" dhchap_ctrl_key "$ctrlkey" || fail "host-attr dhchap_ctrl_key"
grep -qx "dhchap_hashes = sha384" "$sfile" || fail "hash not in $sfile"
grep -qx "dhchap_dhgroups = ffdhe3072" "$sfile" || fail "DH group not in $sfile"
grep -qx "dhchap_ctrl_secret = $ctrlkey" "$sfile" || fail "controller key not in $sfile"
# every change reached both subsystems that serve the host (a host's
# attributes are the host's, as in nvmet)
hosts_changed() {
	grep -c "subsystem $1: hosts now" "$ZNSTGT_HOOK_DIR/znstgt.log"
}
[[ $(hosts_changed "$nqn") -eq 4 && $(hosts_changed blktests-subsystem-2) -eq 4 ]] ||
	fail "not one change of each subsystem's hosts per host-attr: $(hosts_changed "$nqn"), $(hosts_changed blktests-subsystem-2)"
# A key the target refuses changes nothing, and the message keeps it to itself.
err=$("$hook" host-attr --hostnqn "$host" dhchap_key DHHC-1:00:abc: 2>&1) && fail "a malformed key accepted"
[[ $err == *dhchap_secret* && $err != *abc* ]] || fail "no reason given, or the key quoted: $err"
grep -qx "dhchap_secret = $hostkey" "$sfile" || fail "the refused key replaced the old one"
[[ $("$hook" host-attr --hostnqn "$host" dhchap_key) == "$hostkey" ]] || fail "the refused key was kept"
"$hook" host-attr --hostnqn "$host" dhchap_nothing x > /dev/null 2>&1 && fail "an unknown attribute accepted"
# nvmet-hosts-fs: the same through files, each write applied before it
# returns. It mounts a FUSE file system: only where this runs as root with
# /dev/fuse (a container may refuse the mount: then say so).
cfs=$ZNSTGT_HOOK_DIR/cfs
mkdir "$cfs"
if [[ $(id -u) -ne 0 || ! -w /dev/fuse ]]; then
	echo "nvmet-hosts-fs not checked: it needs root and /dev/fuse"
elif ! err=$("$build/tools/nvmet-hosts-fs" "$cfs" "$hook" "$ZNSTGT_HOOK_DIR/fs.log" 2>&1); then
	echo "nvmet-hosts-fs not checked: $err"
else
	hostkey2=DHHC-1:02:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5voBXMjQ==:
	[[ $(< "$cfs/$host/dhchap_key") == "$hostkey" ]] || { umount "$cfs"; fail "a read through nvmet-hosts-fs"; }
	n=$(hosts_changed "$nqn")
	echo "$hostkey2" > "$cfs/$host/dhchap_key" || { umount "$cfs"; fail "a write through nvmet-hosts-fs"; }
	# applied when the write returned: nothing to wait for
	grep -qx "dhchap_secret = $hostkey2" "$sfile" || { umount "$cfs"; fail "the write did not reach $sfile"; }
	[[ $(hosts_changed "$nqn") -eq $((n + 1)) ]] ||
		{ umount "$cfs"; fail "the write did not reach the target"; }
	( echo DHHC-1:00:abc: > "$cfs/$host/dhchap_key" ) 2> /dev/null &&
		{ umount "$cfs"; fail "a malformed key written through nvmet-hosts-fs"; }
	grep -qx "dhchap_secret = $hostkey2" "$sfile" || { umount "$cfs"; fail "the refused write changed $sfile"; }
	# shellcheck disable=SC2012 # fixed names
	[[ $(ls "$cfs/$host" | tr '\n' ' ') == "dhchap_ctrl_key dhchap_dhgroup dhchap_hash dhchap_key " ]] ||
		{ umount "$cfs"; fail "not nvmet's host attributes: $(ls "$cfs/$host")"; }
	umount "$cfs" || fail "umount $cfs"
fi
# As nvmet's cleanup removes hosts/H, the host's attributes go with its last
# subsystem (blktests-subsystem-2 has the same host: they stay until then).
"$hook" cleanup --subsysnqn "$nqn" || fail "cleanup"
[[ -n $("$hook" host-attr --hostnqn "$host" dhchap_key) ]] || fail "host attributes gone with a subsystem left"
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid2" --hostnqn "$host" || fail "setup"
[[ -z $("$hook" host-attr --hostnqn "$host" dhchap_key) ]] || fail "a setup without keys kept the old ones"
connect "$nqn" "$host" -u "$uuid2" > /dev/null || fail "probe after a setup without keys"

step="add-ports"
[[ $("$hook" add-ports --subsysnqn "$nqn" --ports 1) == "tcp 127.0.0.1 $ZNSTGT_TRSVCID" ]] || fail "one port"
"$hook" add-ports --ports 2 > /dev/null 2>&1 && fail "two ports on a one-port target"

step="cleanup of what is not there"
"$hook" cleanup --subsysnqn blktests-subsystem-9 || fail "unknown subsystem"
"$hook" cleanup --subsysnqn blktests-subsystem-2 || fail "cleanup"
connect "$nqn" "$host" > /dev/null || fail "the target went with a subsystem left"

step="the last cleanup closes the port, the next setup opens it"
# A host connected while its subsystem goes must meet a closed port, and
# retry, rather than a Connect refused for good.
hold "$nqn" "$host"
"$hook" cleanup --subsysnqn "$nqn" || fail "cleanup"
wait "$holder" || fail "the connection stayed: $(cat "$ZNSTGT_HOOK_DIR/held")"
"$ZNSTGT_CTL" -s "$ZNSTGT_HOOK_DIR/control.sock" ping > /dev/null 2>&1 && fail "the target still runs"
(exec 3<> "/dev/tcp/127.0.0.1/$ZNSTGT_TRSVCID") 2> /dev/null && fail "the port still accepts connections"
grep -q "stopped" "$ZNSTGT_HOOK_DIR/znstgt.log" || fail "no clean stop in the log"
"$hook" setup --subsysnqn "$nqn" --subsys-uuid "$uuid" --hostnqn "$host" || fail "setup"
connect "$nqn" "$host" -u "$uuid" > /dev/null || fail "probe after the restart"
"$hook" stop || fail "stop"
"$ZNSTGT_CTL" -s "$ZNSTGT_HOOK_DIR/control.sock" ping > /dev/null 2>&1 && fail "the target still runs"
# With the sanitized build (make check-asan) the target reports there.
grep -qE "Sanitizer|runtime error" "$ZNSTGT_HOOK_DIR/znstgt.log" && fail "the sanitizers complained"
"$hook" cleanup --subsysnqn "$nqn" || fail "cleanup without a target"

echo PASS
