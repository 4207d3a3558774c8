#!/bin/bash
# `make install` into a staging directory, and what it put there:
#   - every file in its place (PREFIX=/usr, DESTDIR), the programs executable;
#   - the unit with its paths filled in, valid for `systemd-analyze verify`
#     (when systemd-analyze is there), its Documentation= pages found;
#   - the manual pages render without a warning (groff -ww, man -l);
#   - the example configuration serves: the installed daemon starts on it
#     (paths and port moved into the staging directory), answers ping and
#     reload on its control socket, and stops cleanly on SIGTERM;
#   - a second install keeps an edited configuration.
# Usage: tests/install-test.sh BUILD_DIR PORT  (run by build*/tests/test_install)
set -u
build=${1:-build}
port=${2:-4499}
root=$(cd "$(dirname "$0")/.." && pwd)
san=
case ${build##*/} in build-*) san=${build##*/build-} ;; esac
stage=$(mktemp -d /tmp/znstgt-install-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$stage"
}
trap cleanup EXIT
fail() {
    echo "install-test: $*" >&2
    [ -f "$stage/run/znstgt.log" ] && tail -n 20 "$stage/run/znstgt.log" >&2
    exit 1
}

# A make started by make check must not talk to the parent's job server.
unset MAKEFLAGS MFLAGS MAKELEVEL
install_it() {
    make -s -C "$root" ${san:+SAN=$san} install DESTDIR="$stage" PREFIX=/usr >"$stage.out" 2>&1 ||
        { cat "$stage.out" >&2; rm -f "$stage.out"; fail "make install failed"; }
    rm -f "$stage.out"
}
install_it

for f in usr/sbin/znstgt usr/sbin/znstgt-ctl usr/share/man/man8/znstgt.8 \
         usr/share/man/man8/znstgt-ctl.8 usr/share/man/man5/znstgt.ini.5 \
         usr/lib/systemd/system/znstgt.service etc/znstgt/znstgt.ini etc/znstgt/conf.d/zoned.ini; do
    [ -f "$stage/$f" ] || fail "$f not installed"
done
[ -x "$stage/usr/sbin/znstgt" ] && [ -x "$stage/usr/sbin/znstgt-ctl" ] || fail "programs not executable"

unit=$stage/usr/lib/systemd/system/znstgt.service
grep -qx 'ExecStart=/usr/sbin/znstgt -c /etc/znstgt/znstgt.ini' "$unit" || fail "ExecStart not filled in"
grep -qx 'Type=notify' "$unit" || fail "the unit does not wait for readiness"
! grep -q @ "$unit" || fail "a placeholder is left in the unit"
if command -v systemd-analyze >/dev/null; then
    # The unit as it would be, its programs where the staging put them.
    mkdir -p "$stage/verify"
    sed "s|/usr/sbin/|$stage/usr/sbin/|g" "$unit" >"$stage/verify/znstgt.service"
    out=$(MANPATH=$stage/usr/share/man systemd-analyze verify "$stage/verify/znstgt.service" 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
else
    echo "install-test: no systemd-analyze, unit not verified"
fi

for page in man8/znstgt.8 man8/znstgt-ctl.8 man5/znstgt.ini.5; do
    out=$(groff -man -ww -z "$stage/usr/share/man/$page" 2>&1) || fail "$page: groff failed"
    [ -z "$out" ] || fail "$page: $out"
    if command -v man >/dev/null; then
        out=$(MANWIDTH=80 man --warnings -l "$stage/usr/share/man/$page" 2>&1 >/dev/null)
        [ -z "$out" ] || fail "$page: $out"
    fi
done

# The example configuration, moved into the staging directory.
mkdir -p "$stage/run" "$stage/var"
sed -i -e "s|^listen = .*|listen = 127.0.0.1:$port|" -e "s|^data_dir = .*|data_dir = $stage/var|" \
    -e "s|^control_socket = .*|control_socket = $stage/run/control.sock|" \
    -e "s|^threads = .*|threads = 1|" "$stage/etc/znstgt/znstgt.ini"
"$stage/usr/sbin/znstgt" -c "$stage/etc/znstgt/znstgt.ini" >"$stage/run/znstgt.log" 2>&1 &
pid=$!
ctl="$stage/usr/sbin/znstgt-ctl -s $stage/run/control.sock"
$ctl -w 30 ping >/dev/null || fail "the installed daemon does not answer"
out=$($ctl reload) || fail "reload refused: $out"
case $out in *"0 subsystem(s) added, 0 removed"*) ;; *) fail "reload: $out" ;; esac
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "the installed daemon exited with $rc on SIGTERM"
grep -q 'stopped' "$stage/run/znstgt.log" || fail "no clean stop logged"
[ -f "$stage/var/zoned/ns1/zones.img" ] || fail "the namespace was not made in data_dir"

# An operator's configuration survives a second install.
echo "; edited" >>"$stage/etc/znstgt/conf.d/zoned.ini"
install_it
tail -n 1 "$stage/etc/znstgt/conf.d/zoned.ini" | grep -qx '; edited' || fail "reinstall overwrote the configuration"
echo "install-test: ok"
