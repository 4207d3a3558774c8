#!/bin/sh
# The NVMe/TCP benchmark matrix of `make bench` (doc/performance.md), with
# three rows of the same reads over the subsystem's vfio-user socket.
#
# Starts build/znstgt on a configuration in a temporary directory (one
# subsystem, 1 GiB files: conventional namespaces with the volatile write
# cache off (1) and on (4), zoned ones of 64 MiB zones with it off (2) and
# on (3)), runs every row of the matrix
# BENCH_REPS times with tools/znstgt-load - which measures its own loopback
# limit in the same run - and prints one table: the figure, the limit, the
# ratio, and the spread of the ratio over the repetitions.
#
# Placement: with two or more CPUs the target runs on CPU 1 and the load
# generator on CPU 0, and the loopback limit puts its two ends the same way,
# like a host and a target on two machines. Unpinned, this VM's scheduler
# sometimes puts both ends of a connection on one CPU and sometimes not, and
# a wake-up across CPUs costs ~40 us here: figures would jump by 10x between
# runs. The "one CPU" row runs everything on CPU 0 instead (no cross-CPU
# wake-ups at all: it shows what the target costs in CPU).
#
# Another target (Linux nvmet, SPDK, ...) instead: TARGET=ADDR:PORT and
# NQN=its subsystem; the rows then run with the same initiator against it,
# on namespace NSID (conventional or zoned, default 1) and, for the Zone
# Append rows, ZNSID (a zoned namespace; without it they are skipped). Rows
# that need two settings of one namespace (write cache on and off) or the
# target's threads (the one-CPU row) are skipped. THE ROWS WRITE: they
# overwrite the first 256 MiB of NSID and reset zones of ZNSID.
#
# usage: bench/tcp_matrix.sh [BUILD_DIR]   (BENCH_REPS, BENCH_TIME override;
#        BENCH_ROWS=REGEX runs only the rows whose name matches; the vfio-user
#        rows read what the TCP read rows prefilled)
#        TARGET=ADDR:PORT NQN=SUBNQN [NSID=N] [ZNSID=N] bench/tcp_matrix.sh [BUILD_DIR]
set -eu

B=${1:-build}
REPS=${BENCH_REPS:-3}
TIME=${BENCH_TIME:-2}
ROWS=${BENCH_ROWS:-}
LOAD=$B/tools/znstgt-load
EXTERNAL=${TARGET:-}

if [ -n "$EXTERNAL" ]; then
	case $EXTERNAL in
	*:*) ;;
	*) echo "tcp_matrix: TARGET=$EXTERNAL is not ADDR:PORT" >&2; exit 2 ;;
	esac
	ADDR=${EXTERNAL%:*} port=${EXTERNAL##*:}
	[ -n "${NQN:-}" ] || { echo "tcp_matrix: TARGET=$EXTERNAL needs NQN=<subsystem NQN>" >&2; exit 2; }
	NS_READ=${NSID:-1} NS_WRITE_WC=${NSID:-1} NS_WRITE_NOWC=
	NS_APPEND_NOWC=${ZNSID:-} NS_APPEND_WC=
	need="$LOAD"
else
	ADDR=127.0.0.1
	NQN=nqn.2026-11.io.znstgt:bench
	# The namespaces of the configuration below.
	NS_READ=1 NS_WRITE_WC=4 NS_WRITE_NOWC=1 NS_APPEND_NOWC=2 NS_APPEND_WC=3
	need="$B/znstgt $LOAD"
fi

for f in $need; do
	[ -x "$f" ] || { echo "tcp_matrix: $f missing (run make first)" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/znstgt-tcpbench-XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
	GEN_CPU=0 TGT_CPU=1
	pin_gen="--cpu 0 --target-cpu 1"
else
	GEN_CPU= TGT_CPU=
	pin_gen=
fi

mkdir -p "$dir/conf"
cat > "$dir/conf/bench.ini" <<EOF
[subsystem]
nqn = $NQN
allow_any_host = yes

[namespace 1]
size = 1G
zoned = no

[namespace 2]
size = 1G
zone_size = 64M
write_cache = no

[namespace 3]
size = 1G
zone_size = 64M
write_cache = yes

[namespace 4]
size = 1G
zoned = no
write_cache = yes

[vfio-user]
socket = $dir/vm.sock
EOF

# TLS 1.3 rows: a subsystem of their own whose hosts hold PSKs (doc/security.md),
# reached over the plain listener and over a tls_listen one, same host and
# namespace: only the channel differs. One host per cipher suite: a SHA-256
# PSK gives TLS_AES_128_GCM_SHA256, a SHA-384 PSK TLS_AES_256_GCM_SHA384.
# Fixed test keys: the target and the generator run here, on loopback.
TLS_NQN=nqn.2026-11.io.znstgt:bench-tls
TLS_HOST128=nqn.2026-11.io.znstgt:bench-aes128
TLS_HOST256=nqn.2026-11.io.znstgt:bench-aes256
tls_conf() {
	printf '%s\n' 'NVMeTLSkey-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOeXryU:' \
		> "$dir/conf/psk128"
	printf '%s\n' 'NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:' \
		> "$dir/conf/psk256"
	chmod 600 "$dir/conf/psk128" "$dir/conf/psk256"
	cat > "$dir/conf/bench-tls.ini" <<EOF
[subsystem]
nqn = $TLS_NQN

[namespace 1]
size = 1G
zoned = no

[host $TLS_HOST128]
psk_file = psk128

[host $TLS_HOST256]
psk_file = psk256
EOF
}
[ -n "$EXTERNAL" ] || tls_conf

# A free port: try a few from a pseudo-random start; the target refuses to
# start when the port is taken.
start_target() {
	port=$(( 20000 + $$ % 20000 ))
	for try in 1 2 3 4 5 6 7 8; do
		cat > "$dir/znstgt.ini" <<EOF
[target]
listen = 127.0.0.1:$port
tls_listen = 127.0.0.1:$((port + 1))
threads = 1
io_threads = 4
poll = ${TGT_POLL:-no}
data_dir = data
log_level = warn
include = conf/*.ini
EOF
		if [ -n "$TGT_CPU" ]; then
			taskset -c "$TGT_CPU" "$B/znstgt" -c "$dir/znstgt.ini" --format \
				> "$dir/target.log" 2>&1 &
		else
			"$B/znstgt" -c "$dir/znstgt.ini" --format > "$dir/target.log" 2>&1 &
		fi
		pid=$!
		# Ready once it accepts connections (the load generator retries
		# nothing, so probe with a short run).
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			if "$LOAD" -p "$port" -n "$NQN" -t 0.05 --ramp 0 --no-limit --terse \
				--region 1M > /dev/null 2>&1; then
				return 0
			fi
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
		port=$((port + 2))
	done
	echo "tcp_matrix: the target did not start; its log:" >&2
	cat "$dir/target.log" >&2
	exit 1
}

# Move every thread of the target (and later runs of the generator) to
# other CPUs: for the one-CPU row.
place() { # TARGET_CPU GENERATOR_PIN_OPTIONS
	[ -n "$TGT_CPU" ] || return 0
	taskset -a -p -c "$1" "$pid" > /dev/null
	pin_gen=$2
}

results=$dir/results
: > "$results"

# Is row NAME one of those BENCH_ROWS selects (all without it)?
selected() {
	[ -z "$ROWS" ] || printf '%s\n' "$1" | grep -Eq -- "$ROWS"
}

# run ROW_NAME METRIC LIMIT_KEY RATIO_KEY TARGET NSID [znstgt-load options]
# An empty NSID skips the row (it is listed as such in the table).
run() {
	name=$1 metric=$2 limkey=$3 ratiokey=$4 target=$5 nsid=$6
	shift 6
	selected "$name" || return 0
	if [ -z "$nsid" ]; then
		echo "$name|$metric|$limkey|$ratiokey|$target|skipped" >> "$results"
		return 0
	fi
	r=1
	while [ "$r" -le "$REPS" ]; do
		# shellcheck disable=SC2086
		out=$("$LOAD" -a "$ADDR" -p "$port" -n "$NQN" -N "$nsid" -t "$TIME" --ramp 0.3 \
			--limit-time 1 $pin_gen --terse "$@") ||
			{ echo "tcp_matrix: $name failed: $out" >&2; exit 1; }
		echo "$name|$metric|$limkey|$ratiokey|$target|$out" >> "$results"
		r=$((r + 1))
	done
}

# vfio_row ROW_NAME METRIC TARGET NSID [znstgt-load options]: the same
# reads over NVMe/TCP and, right after, over the vfio-user socket (a
# polling guest driver); the figure is vfio-user's, the "limit" column the
# TCP figure, the ratio vfio-user / TCP. Needs the region prefilled.
vfio_row() {
	name=$1 metric=$2 target=$3 nsid=$4
	shift 4
	selected "$name" || return 0
	if [ -n "$EXTERNAL" ]; then
		echo "$name|$metric|tcp_$metric|vs_tcp|$target|skipped" >> "$results"
		return 0
	fi
	r=1
	while [ "$r" -le "$REPS" ]; do
		# shellcheck disable=SC2086
		tcp=$("$LOAD" -a "$ADDR" -p "$port" -n "$NQN" -N "$nsid" -t "$TIME" --ramp 0.3 \
			--no-limit $pin_gen --terse "$@") ||
			{ echo "tcp_matrix: $name (TCP) failed: $tcp" >&2; exit 1; }
		# shellcheck disable=SC2086
		vfu=$("$LOAD" --vfio-user "$dir/vm.sock" -N "$nsid" -t "$TIME" --ramp 0.3 \
			$pin_gen --terse "$@") ||
			{ echo "tcp_matrix: $name (vfio-user) failed: $vfu" >&2; exit 1; }
		echo "$name|$metric|tcp_$metric|vs_tcp|$target|$(echo "$tcp $vfu" | awk -v k="$metric" '
			{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) v[++n] = kv[2] } }
			END { printf "%s=%s tcp_%s=%s vs_tcp=%.3f", k, v[2], k, v[1], (v[1] > 0 ? v[2] / v[1] : 0) }')" \
			>> "$results"
		r=$((r + 1))
	done
}

# The target's CPU time so far, in clock ticks (user + system).
tgt_ticks() { cut -d')' -f2 "/proc/$pid/stat" | awk '{ print $12 + $13 }'; }

# tls_run PORT HOST [znstgt-load options]: one run as HOST; prints its
# terse line plus cpu_us=, the CPU per counted I/O of the generator and the
# target together (the target's time over the whole run, ramp included,
# spread over the I/Os the ramp and the run did at the measured rate).
tls_run() {
	tport=$1 thost=$2
	shift 2
	t0=$(tgt_ticks)
	# shellcheck disable=SC2086
	out=$("$LOAD" -a "$ADDR" -p "$tport" -n "$TLS_NQN" --hostnqn "$thost" -t "$TIME" --ramp 0.3 \
		--no-limit $pin_gen --terse "$@") || { echo "$out"; return 1; }
	t1=$(tgt_ticks)
	echo "$out" | awk -v dt="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v t="$TIME" '
		{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
		END { ios = v["ios"] + 0; if (ios < 1) ios = 1
		      gen = v["cpu_pct"] / 100 * v["seconds"] * 1e6 / ios
		      tgt = dt / hz * 1e6 / (ios * (t + 0.3) / t)
		      printf "%s cpu_us=%.2f\n", $0, gen + tgt }'
}

# tls_row ROW_NAME METRIC TARGET HOST PSK_FILE [znstgt-load options]: the
# same I/O on the TLS rows' subsystem as host HOST over the plain listener
# and, right after, over the tls_listen one with HOST's PSK; the figure is
# TLS's, the "limit" column plain text's, the ratio TLS / plain. A second
# row gives the CPU both ends spent per I/O (generator + target), TLS
# beside plain text, and plain / TLS: the throughput ratio the CPU allows
# where the machine is busy enough to make the throughput ratio noise.
tls_row() {
	name=$1 metric=$2 target=$3 host=$4 psk=$5
	shift 5
	selected "$name" || return 0
	if [ -n "$EXTERNAL" ]; then
		echo "$name|$metric|plain_$metric|vs_plain|$target|skipped" >> "$results"
		return 0
	fi
	if [ -z "${tls_prefilled:-}" ]; then
		"$LOAD" -a "$ADDR" -p "$port" -n "$TLS_NQN" --hostnqn "$host" -t 0.05 --ramp 0 \
			--no-limit --terse --region 256M --prefill > /dev/null ||
			{ echo "tcp_matrix: prefilling the TLS rows' namespace failed" >&2; exit 1; }
		tls_prefilled=1
	fi
	r=1
	while [ "$r" -le "$REPS" ]; do
		plain=$(tls_run "$port" "$host" "$@") ||
			{ echo "tcp_matrix: $name (plain) failed: $plain" >&2; exit 1; }
		tls=$(tls_run "$((port + 1))" "$host" --tls-key-file "$dir/conf/$psk" "$@") ||
			{ echo "tcp_matrix: $name (TLS) failed: $tls" >&2; exit 1; }
		echo "$plain
$tls" | awk -v k="$metric" -v name="$name" -v target="$target" '
			{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] } }
			END {
				printf "%s|%s|plain_%s|vs_plain|%s|%s=%s plain_%s=%s vs_plain=%.3f\n",
				       name, k, k, target, k, v[2, k], k, v[1, k],
				       (v[1, k] > 0 ? v[2, k] / v[1, k] : 0)
				printf "%s|cpu_us|plain_cpu_us|cpu_ratio||cpu_us=%s plain_cpu_us=%s cpu_ratio=%.3f\n",
				       "  " name " CPU/IO", v[2, "cpu_us"], v[1, "cpu_us"],
				       (v[2, "cpu_us"] > 0 ? v[1, "cpu_us"] / v[2, "cpu_us"] : 0)
			}' >> "$results"
		r=$((r + 1))
	done
}

# NVMe/TCP over TLS 1.3 beside the same I/O in plain text (targets: 0.7 of
# the IOPS, 0.5 of the MB/s); the first row that runs prefills the region.
tls_rows() {
	tls_row "TLS 4K randread QD32" iops ">= 0.7" "$TLS_HOST128" psk128 \
		-w randread -b 4K -q 32 --region 256M
	tls_row "TLS 128K seq read QD8" mbps ">= 0.5" "$TLS_HOST128" psk128 \
		-w read -b 128K -q 8 --region 256M
	tls_row "TLS-256 4K randread QD32" iops ">= 0.7" "$TLS_HOST256" psk256 \
		-w randread -b 4K -q 32 --region 256M
	tls_row "TLS-256 128K seq read QD8" mbps ">= 0.5" "$TLS_HOST256" psk256 \
		-w read -b 128K -q 8 --region 256M
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

if [ -n "$EXTERNAL" ]; then
	# Not ours: no CPU to put it on. Fail early, with the tool's reason.
	out=$("$LOAD" -a "$ADDR" -p "$port" -n "$NQN" -N "$NS_READ" -t 0.05 --ramp 0 --no-limit \
		--terse --region 1M 2>&1) || { echo "tcp_matrix: $EXTERNAL ($NQN): $out" >&2; exit 1; }
	[ -z "$GEN_CPU" ] || pin_gen="--cpu $GEN_CPU --target-cpu $TGT_CPU"
	echo "NVMe/TCP matrix against $EXTERNAL ($NQN), namespace $NS_READ," \
	     "zoned namespace ${NS_APPEND_NOWC:-none}: $REPS runs of ${TIME} s per row;" \
	     "generator on CPU ${GEN_CPU:-any}"
else
	start_target
	echo "NVMe/TCP matrix: $REPS runs of ${TIME} s per row; target on CPU ${TGT_CPU:-any}," \
	     "generator on CPU ${GEN_CPU:-any}; data in $dir"
fi
# Other jobs on the machine move the figures: say how busy it was.
echo "load average before: $(loadavg)"

run "4K randread QD1 (latency)"  lat_mean_us rr_mean_us lat_per_rr "<= 1.5" "$NS_READ" \
	-w randread -b 4K -q 1 --region 256M --prefill
run "4K randread QD32"           iops rr_ops iops_per_rr ">= 0.9" "$NS_READ" \
	-w randread -b 4K -q 32 --region 256M --prefill
# Many queues, as a Linux host opens one per CPU: N connections (one I/O
# queue and one generator thread each) on the target's one worker, and the
# limit measured with N connections too.
run "4K randread QD32 x4 conns"  iops rr_ops iops_per_rr "" "$NS_READ" \
	-w randread -b 4K -q 32 -j 4 --region 256M --prefill
run "4K randread QD32 x16 conns" iops rr_ops iops_per_rr ">= 0.9" "$NS_READ" \
	-w randread -b 4K -q 32 -j 16 --region 256M --prefill
run "128K seq read QD8 (MB/s)"   mbps stream_mbps mbps_per_stream ">= 0.8" "$NS_READ" \
	-w read -b 128K -q 8 --region 256M --prefill
tls_rows
vfio_row "vfio-user 4K randread QD1 lat" lat_mean_us "<= 0.33" "$NS_READ" \
	-w randread -b 4K -q 1 --region 256M
vfio_row "vfio-user 4K randread QD32" iops ">= 3" "$NS_READ" \
	-w randread -b 4K -q 32 --region 256M
vfio_row "vfio-user 128K seq read QD8" mbps "" "$NS_READ" \
	-w read -b 128K -q 8 --region 256M
run "128K seq write QD8 (MB/s)"  mbps stream_mbps mbps_per_stream "" "$NS_WRITE_WC" \
	-w write -b 128K -q 8 --region 256M
run "  same, WC off (durable)"   mbps stream_mbps mbps_per_stream "" "$NS_WRITE_NOWC" \
	-w write -b 128K -q 8 --region 256M
run "4K append QD32 WC off"      iops sync_ops iops_per_sync ">= 20" "$NS_APPEND_NOWC" \
	-w append -b 4K -q 32 --sync-dir "$dir"
run "4K append QD32 WC off x4"   iops sync_ops iops_per_sync "" "$NS_APPEND_NOWC" \
	-w append -b 4K -q 32 -j 4 --sync-dir "$dir"
run "4K append QD32 WC off x16"  iops sync_ops iops_per_sync "" "$NS_APPEND_NOWC" \
	-w append -b 4K -q 32 -j 16 --sync-dir "$dir"
run "4K append QD32 WC on"       iops rr_ops iops_per_rr "" "$NS_APPEND_WC" \
	-w append -b 4K -q 32
if [ -n "$TGT_CPU" ] && [ -z "$EXTERNAL" ]; then
	place "$GEN_CPU" "--cpu $GEN_CPU --target-cpu $GEN_CPU"
	run "4K randread QD1, one CPU"   lat_mean_us rr_mean_us lat_per_rr "<= 1.5" "$NS_READ" \
		-w randread -b 4K -q 1 --region 256M --prefill
else
	run "4K randread QD1, one CPU"   lat_mean_us rr_mean_us lat_per_rr "<= 1.5" ""
fi

# Polling mode (the `poll` key; doc/performance.md, "Polling mode"): 4 KiB
# QD1 reads with the target's worker and the generator both spinning on
# their sockets, beside the loopback round trip with both of its ends
# spinning; then the same with a sleeping target (and the generator and the
# limit's client still spinning). Each repetition restarts the target both
# ways, alternating. The CPU rows: the target's CPU time (utime + stime from
# /proc/PID/stat) over a run of the same reads without the loopback
# measurement, in % of one CPU; the "limit" column is the sleeping target's
# figure from the same repetition, the ratio polling / sleeping.
# The median latency against the median round trip: on a shared machine the
# mean of a spinning thread carries every preemption it suffered.
p50_ratio() {
	echo "$1" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
		END { printf "p50_per_rr=%.3f", (v["rr_p50_us"] > 0 ? v["lat_p50_us"] / v["rr_p50_us"] : 0) }'
}
target_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }

poll_rows() {
	selected "4K randread QD1 poll" || return 0
	# Another target's polling is not ours to switch; one CPU cannot host
	# two spinning ends.
	if [ -n "$EXTERNAL" ] || [ -z "$TGT_CPU" ]; then
		echo "4K randread QD1 poll (lat)|lat_mean_us|rr_mean_us|lat_per_rr|<= 1.1|skipped" \
			>> "$results"
		return 0
	fi
	hz=$(getconf CLK_TCK)
	r=1
	while [ "$r" -le "$REPS" ]; do
		for mode in yes no; do
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			pid=
			TGT_POLL=$mode start_target
			tpoll=
			[ "$mode" = yes ] && tpoll=--target-poll
			# shellcheck disable=SC2086
			lat=$("$LOAD" -a "$ADDR" -p "$port" -n "$NQN" -N "$NS_READ" -t "$TIME" \
				--ramp 0.3 --limit-time 1 --cpu "$GEN_CPU" --target-cpu "$TGT_CPU" \
				--poll $tpoll --terse -w randread -b 4K -q 1 --region 64M --prefill) ||
				{ echo "tcp_matrix: poll=$mode failed: $lat" >&2; exit 1; }
			t0=$(target_cpu_ticks) s0=$(date +%s.%N)
			cpu=$("$LOAD" -a "$ADDR" -p "$port" -n "$NQN" -N "$NS_READ" -t "$TIME" \
				--ramp 0 --no-limit --cpu "$GEN_CPU" --poll --terse -w randread -b 4K \
				-q 1 --region 64M) ||
				{ echo "tcp_matrix: poll=$mode failed: $cpu" >&2; exit 1; }
			t1=$(target_cpu_ticks) s1=$(date +%s.%N)
			pct=$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$hz" \
				'BEGIN { printf "%.1f", (b - a) / hz / (e - s) * 100 }')
			eval "lat_$mode=\$lat pct_$mode=\$pct"
		done
		# shellcheck disable=SC2154
		{
			echo "4K randread QD1 poll (lat)|lat_mean_us|rr_mean_us|lat_per_rr|<= 1.1|$lat_yes"
			echo "  same, p50|lat_p50_us|rr_p50_us|p50_per_rr||$lat_yes $(p50_ratio "$lat_yes")"
			echo "  same, target sleeping|lat_mean_us|rr_mean_us|lat_per_rr||$lat_no"
			echo "  same, sleeping, p50|lat_p50_us|rr_p50_us|p50_per_rr||$lat_no $(p50_ratio "$lat_no")"
			echo "  target CPU % (poll/sleep)|cpu|cpu_sleep|per_sleep||cpu=$pct_yes" \
			     "cpu_sleep=$pct_no per_sleep=$(awk -v a="$pct_yes" -v b="$pct_no" \
				'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
		} >> "$results"
		r=$((r + 1))
	done
}
poll_rows

echo "load average after:  $(loadavg)"
echo
awk -F'|' '
function val(line, key,    n, i, kv, f) {
	n = split(line, f, " ")
	for (i = 1; i <= n; i++) {
		split(f[i], kv, "=")
		if (kv[1] == key)
			return kv[2] + 0
	}
	return -1
}
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	if (!($1 in seen)) {
		seen[$1] = 1
		order[++rows] = $1
		metric[$1] = $2; limkey[$1] = $3; target[$1] = $5
	}
	if ($6 == "skipped") {
		skipped[$1] = 1
		next
	}
	k = ++cnt[$1]
	fig[$1, k] = val($6, $2)
	lim[$1, k] = val($6, $3)
	rat[$1, k] = val($6, $4)
}
END {
	printf "%-28s %14s %14s %8s %15s %8s\n", "row (median of runs)", "figure", "limit", "ratio",
	       "ratio spread", "target"
	for (r = 1; r <= rows; r++) {
		name = order[r]
		if (name in skipped) {
			printf "%-28s %14s\n", name, "skipped"
			continue
		}
		n = cnt[name]
		lo = hi = rat[name, 1]
		for (k = 1; k <= n; k++) {
			f[k] = fig[name, k]; l[k] = lim[name, k]; q[k] = rat[name, k]
			if (q[k] < lo) lo = q[k]
			if (q[k] > hi) hi = q[k]
		}
		unit = metric[name] ~ /lat|_us$/ ? " us" : (metric[name] ~ /mbps/ ? " MB/s" : " /s")
		if (metric[name] == "cpu") unit = " %"
		lunit = limkey[name] ~ /sync/ ? " sync/s" : unit
		printf "%-28s %14s %14s %8.2f %7.2f-%-7.2f %8s\n", name,
		       sprintf("%.1f%s", median(f, n), unit), sprintf("%.1f%s", median(l, n), lunit),
		       median(q, n), lo, hi, target[name]
	}
	print ""
	print "figure: latency mean (us), IOPS or MB/s of the NVMe/TCP run; limit: the same"
	print "program over plain loopback TCP in the same run (round trip 72 B -> 4 KiB or"
	print "4168 B -> 24 B; a stream of the block size), or for durable appends one"
	print "4 KiB pwrite + fdatasync per append on the same file system. xN conns: N"
	print "connections of one I/O queue each (QD32 each), the round-trip limit measured"
	print "with N connections; the fdatasync limit stays one writer. vfio-user rows:"
	print "the figure over the vfio-user socket (a polling guest driver), the limit the"
	print "same reads over NVMe/TCP right before, the ratio vfio-user / TCP. TLS rows:"
	print "the figure over TLS 1.3 (PSK), the limit the same I/O in plain text right"
	print "before (same subsystem, host and namespace), the ratio TLS / plain; CPU/IO:"
	print "generator + target CPU per I/O, TLS beside plain, the ratio plain / TLS."
	print "poll rows: target (poll = yes) and generator spinning, the limit with both"
	print "ends spinning; then a sleeping target; target CPU in % of one CPU."
}' "$results"
