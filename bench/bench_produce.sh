#!/bin/sh
# bench_produce: `mbta-stream produce` against kcat -P on the same messages,
# same broker, same librdkafka settings. Prints numbers, asserts nothing.
#
#   sh bench/bench_produce.sh     (EVENTS=200000 RUNS=5 STREAM=vehicles by default)
#
# What is compared, so that the source is not the bottleneck and both sides
# do the same work:
#   - The source is a recording, made once from a fast `serve --rate` world
#     (`mbta-stream record`), then replayed by `serve --replay --speed 1e6`:
#     serve only copies recorded chunks to the socket (cheap), and produce
#     stops after exactly the recording's events (--max-events).
#   - kcat gets the very messages produce wrote (dumped from produce's
#     topic: keys, values, tombstones as NULL with -Z), the same number of
#     headers (5 constant -H headers of the contract's sizes: event, stream,
#     generation, received-at, seq) and the same librdkafka settings as
#     produce's defaults (idempotence, acks=all, lz4, linger, partitioner).
#   - Wall time: the same way for both, each process timed from start to
#     exit minus the wall time of a 1-event run of the same program
#     (start-up, topic, metadata, the final flush), both shown. produce's
#     own `timing:` line (first event -> last delivery report) is shown
#     too; it holds one final flush that the subtraction takes out of
#     kcat's time (1-3% of a run).
#   - CPU: user+sys of each whole process (all threads: librdkafka's too)
#     from getrusage(RUSAGE_CHILDREN), minus that of a 1-message run of the
#     same program (start-up, topic, metadata, flush: as for the wall
#     time), in seconds per million messages.
# Each of RUNS runs uses fresh topics, after one warm-up round that is not
# counted; the medians decide the ratios.
#
# Two ways, each run, one after the other (ONE_CORE=0 skips the second):
#   - free: every process where the scheduler puts it, sharing the cores
#     with the broker and serve (kcat has no source process to wake);
#   - one core, the condition DESIGN.md states ("at least kcat's
#     throughput on the same messages, on one core"): produce and kcat
#     each pinned to CPU 0 (taskset, all their threads), serve and, when
#     its pid file is found under MBTA_STATE_DIR, the Kafka broker pinned
#     to the other CPUs (its affinity is given back at the end). Then each
#     client's throughput is what its own CPU time per message allows.
#
# What it showed on the shared 2-core test machine (Dec 2026, 200,000
# vehicle events of ~850 bytes, 3 partitions):
#   - on one core, parity: the median ratio of kcat's messages/s was
#     0.90-1.12x from one invocation to the next on Dec 4, 0.95-1.03x on
#     Dec 5 (0.95x, single runs 0.89-1.02x, in that day's last `make
#     bench`), ~2.5-2.9 CPU-s per million messages each;
#   - free, 0.6-0.8x. serve is not what takes the CPU (~0.05 CPU-s per
#     run); perf sched shows both CPUs ~20% idle during produce's runs
#     (9-15% during kcat's): produce's main thread, which carries the
#     source work, serve and librdkafka's thread wake one another across
#     the 2 CPUs, and the one woken often preempts produce's main thread.
# Where produce's CPU goes (perf, one core): its librdkafka broker thread
# (batches, lz4: the same work as kcat's) ~40%; librdkafka's calls on the
# main thread (produce, headers, delivery reports) ~25%; receiving over
# loopback TCP ~10%, half of it sending serve's queued bytes in the
# receive path (loopback bills the sender's transmit to the reader whose
# ACK opens the window); JSON validation (jscan) ~12% of the samples, but
# only ~5% of the time (measured without it: the document it leaves in
# the cache is copied next). kcat's own share instead: reading its file
# (~17%) and glibc's malloc (~10%). What got produce from 0.75x to parity:
# jemalloc instead of glibc's malloc (librdkafka's ~7 small allocations
# per message freed in bursts by the delivery reports: -15% CPU), jscan's
# fast path (1.4x), the record timestamp from the received-at clock read
# (no gettimeofday per message), cheaper number formatting. Tried and
# worse or no change: our own arena for values (no F_COPY), handing the
# SSE parser's bytes on without copying, larger curl buffers (64-256 KB:
# more CPU), a fixed 8 MB receive buffer, TCP_NOTSENT_LOWAT on serve,
# linger.ms 10/20, glibc tcache and jemalloc decay/THP settings,
# SCHED_BATCH.
#
# Uses KAFKA_BROKERS when set; otherwise brings up its own services under a
# private state directory and takes them down at the end.
set -u
cd "$(dirname "$0")/.."
BIN=${MBTA_STREAM:-build/mbta-stream}
EVENTS=${EVENTS:-200000}
RUNS=${RUNS:-5}
STREAM=${STREAM:-vehicles}
case $STREAM in
vehicles) path='/vehicles?filter[route_type]=0,1' ;;
predictions) path='/predictions?filter[route]=Red,Orange,Green-B,Mattapan' ;;
*) echo "bench_produce: STREAM=vehicles|predictions" >&2; exit 2 ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_produce.XXXXXX")
own=
pids=
jvm=
ONE_CORE=${ONE_CORE:-1}
ncpu=$(nproc 2>/dev/null || echo 1)
if [ "$ONE_CORE" = 1 ] && { [ "$ncpu" -lt 2 ] || ! command -v taskset >/dev/null 2>&1; }; then
	echo "bench_produce: one core: needs 2 CPUs and taskset; skipped" >&2
	ONE_CORE=0
fi
rest=1-$((ncpu - 1)) # the CPUs other than 0
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	[ -n "$jvm" ] && taskset -a -p -c "0-$((ncpu - 1))" "$jvm" >/dev/null 2>&1
	[ -n "$own" ] && MBTA_STATE_DIR=$tmp/services sh scripts/services down --clean >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${KAFKA_BROKERS:-}" ]; then
	own=1
	MBTA_STATE_DIR=$tmp/services
	eval "$(MBTA_STATE_DIR=$tmp/services sh scripts/services up 2>"$tmp/services.log")" || {
		echo "bench_produce: services up failed: $(tail -n 1 "$tmp/services.log")" >&2
		exit 1
	}
fi
# The broker's pid (scripts/services keeps it in its state directory): to
# keep it off CPU 0 in the one-core runs.
sdir=${MBTA_STATE_DIR:-.state/services}
if [ "$ONE_CORE" = 1 ] && [ -s "$sdir/kafka/pid" ]; then
	p=$(cat "$sdir/kafka/pid")
	kill -0 "$p" 2>/dev/null && jvm=$p
fi
[ "$ONE_CORE" = 1 ] && [ -z "$jvm" ] &&
	echo "bench_produce: one core: the broker's pid is not under $sdir: it is not pinned" >&2

# Runs a command; prints "wall_s cpu_s" of it (CPU of the process and its
# threads, microsecond resolution) on fd 3.
timed() {
	python3 -c '
import os, resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[1:])
w = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
os.write(3, b"%.6f %.6f\n" % (w, r.ru_utime + r.ru_stime))
sys.exit(rc)' "$@"
}

wait_url() { # file -> the first line once written
	i=0
	while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	head -n 1 "$1"
}

# ---- 1. the recording: a fast world, once
"$BIN" serve --port 0 --seed 1 --clock 2026-03-02T08:00:00-05:00 --rate 500000 \
	--limit "$EVENTS" --keepalive 3600 >"$tmp/serve.out" 2>"$tmp/serve.log" &
spid=$!
pids="$spid"
url=$(wait_url "$tmp/serve.out")
"$BIN" record "$url$path" --out "$tmp/rec" 2>"$tmp/record.log" &
rpid=$!
pids="$pids $rpid"
# Done when the recording stops growing (serve sends only keep-alives after
# --limit, and those come once an hour).
last=-1
i=0
while :; do
	sleep 0.5
	size=$(wc -c <"$tmp/rec" 2>/dev/null || echo 0)
	[ "$size" -gt 0 ] && [ "$size" = "$last" ] && break
	last=$size
	i=$((i + 1))
	if [ $i -gt 240 ]; then
		echo "bench_produce: no recording after 2 minutes: $(tail -n 1 "$tmp/record.log")" >&2
		exit 1
	fi
done
kill -TERM "$rpid" "$spid"
wait "$rpid" "$spid" 2>/dev/null
pids=
# Events in the recording (the SSE framing is exact: one "event:" line each).
n_events=$(python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
body, i = [], d.index(b"\n") + 1
while i < len(d):
    j = d.index(b"\n", i)
    f = d[i:j].split(b" ")
    i = j + 1
    if f[0] == b"D":
        n = int(f[2]); body.append(d[i:i + n]); i += n + 1
print(b"".join(body).count(b"\nevent: ") + b"".join(body).startswith(b"event: "))' "$tmp/rec")
echo "recording: $n_events events of $STREAM, $(wc -c <"$tmp/rec") bytes"

# The librdkafka settings produce uses by default (src/kafka/producer.c:
# keep in sync), given to kcat as well. PRODUCE_EXTRA (-X ...) goes to both.
props="-X enable.idempotence=true -X acks=all -X message.timeout.ms=0 -X compression.codec=lz4
 -X partitioner=murmur2_random -X linger.ms=5 ${PRODUCE_EXTRA:-}"

run=$$_$(date +%s)

# one_run MODE R: produce then kcat on the same messages, MODE free or
# onecore; appends "p_msgs p_bytes p_ms p_cpu k_msgs k_wall k1_wall k_cpu
# n_events p1_cpu k1_cpu" to $tmp/results.MODE (p1, k1: the 1-message runs).
one_run() {
	mode=$1
	r=$2
	topic=bench.produce.$run.$mode.$r
	ktopic=bench.kcat.$run.$mode.$r
	pin0=
	pin1=
	if [ "$mode" = onecore ]; then
		pin0="taskset -c 0"
		pin1="taskset -c $rest"
		[ -n "$jvm" ] && taskset -a -p -c "$rest" "$jvm" >/dev/null 2>&1
	elif [ -n "$jvm" ]; then
		taskset -a -p -c "0-$((ncpu - 1))" "$jvm" >/dev/null 2>&1
	fi
	rm -f "$tmp/replay.out" # not the last run's URL
	$pin1 "$BIN" serve --port 0 --replay "$tmp/rec" --speed 1e6 >"$tmp/replay.out" 2>"$tmp/replay.log" &
	spid=$!
	pids="$spid"
	url=$(wait_url "$tmp/replay.out")
	# Start-up CPU (topic creation, metadata, connection, flush), as kcat's
	# 1-message run below: one event into a topic of its own.
	# shellcheck disable=SC2086
	timed timeout 60 $pin0 "$BIN" produce -b "$KAFKA_BROKERS" --api-url "$url" --stats-interval 0 \
		--max-events 1 --stream "$STREAM=$path@$topic.one" ${PRODUCE_EXTRA:-} \
		>/dev/null 2>"$tmp/produce1.log" 3>"$tmp/produce1.time"
	# shellcheck disable=SC2086
	timed timeout 300 $pin0 "$BIN" produce -b "$KAFKA_BROKERS" --api-url "$url" --stats-interval 0 \
		--max-events "$n_events" --stream "$STREAM=$path@$topic" ${PRODUCE_EXTRA:-} \
		>/dev/null 2>"$tmp/produce.log" 3>"$tmp/produce.time"
	prc=$?
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	pids=
	tl=$(grep 'timing: ' "$tmp/produce.log")
	if [ $prc -ne 0 ] || [ -z "$tl" ]; then
		echo "bench_produce: produce exited $prc:" >&2
		tail -n 5 "$tmp/produce.log" >&2
		return 1
	fi
	get() { echo "$tl" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
	p_msgs=$(get delivered)
	p_bytes=$(get bytes)
	p_ms=$(get elapsed_ms)
	p_cpu=$(cut -d' ' -f2 "$tmp/produce.time")
	p1_cpu=$(cut -d' ' -f2 "$tmp/produce1.time")
	p_wall=$(cut -d' ' -f1 "$tmp/produce.time")
	p1_wall=$(cut -d' ' -f1 "$tmp/produce1.time")

	# The same messages through kcat (created topic first, like produce).
	kcat -b "$KAFKA_BROKERS" -C -t "$topic" -e -q -f '%k\t%s\n' >"$tmp/msgs"
	k_msgs=$(wc -l <"$tmp/msgs")
	"$BIN" produce -b "$KAFKA_BROKERS" --api-url http://127.0.0.1:9 --max-events 1 \
		--stream "x=/x@$ktopic" --topic-timeout 30 --flush-timeout 0 >/dev/null 2>&1 &
	kp=$!
	i=0
	while [ $i -lt 100 ] && ! kcat -b "$KAFKA_BROKERS" -L -t "$ktopic" 2>/dev/null | grep -q 'partition 0'; do
		sleep 0.1
		i=$((i + 1))
	done
	kill "$kp" 2>/dev/null
	wait "$kp" 2>/dev/null
	head -n 1 "$tmp/msgs" >"$tmp/one"
	hdrs="-H event=update -H stream=$STREAM -H generation=1772456400123456789 -H received-at=1772456400123456789 -H seq=123456"
	# shellcheck disable=SC2086
	timed $pin0 kcat -b "$KAFKA_BROKERS" -P -t "$ktopic" -K '\t' -Z -l $hdrs $props "$tmp/one" 3>"$tmp/kcat1.time"
	# shellcheck disable=SC2086
	timed timeout 300 $pin0 kcat -b "$KAFKA_BROKERS" -P -t "$ktopic" -K '\t' -Z -l $hdrs $props "$tmp/msgs" 3>"$tmp/kcat.time"
	k_wall=$(cut -d' ' -f1 "$tmp/kcat.time")
	k_cpu=$(cut -d' ' -f2 "$tmp/kcat.time")
	k1_wall=$(cut -d' ' -f1 "$tmp/kcat1.time")
	k1_cpu=$(cut -d' ' -f2 "$tmp/kcat1.time")
	# One line per run; the last two columns, 14 and 15, are the seconds
	# each side is timed by (its wall minus its 1-event run's; the whole
	# wall, or produce's own timing, if that is not positive).
	echo "$p_msgs $p_bytes $p_ms $p_cpu $k_msgs $k_wall $k1_wall $k_cpu $n_events $p1_cpu $k1_cpu $p_wall $p1_wall" |
		awk '{ ps = $12 - $13; if (ps <= 0) ps = $3 / 1000; ks = $6 - $7; if (ks <= 0) ks = $6
			print $0, ps, ks }' >>"$tmp/results.$mode"
	awk -v r="$r" -v m="$mode" '{
		printf "run %d (%s): produce %d msgs %.3f s (-%.3f startup) %.0f msgs/s %.1f MB/s (own timing %.3f s) cpu %.3f s (%.2f s/M) | kcat %d msgs %.3f s (-%.3f startup) %.0f msgs/s cpu %.3f s (%.2f s/M)\n",
			r, m, $1, $12, $13, $1 / $14, $2 / $14 / 1e6, $3 / 1000, $4, ($4 - $10) / $1 * 1e6, $5, $6, $7, $5 / $15, $8, ($8 - $11) / $5 * 1e6
	}' "$tmp/results.$mode" | tail -n 1
}

modes=free
[ "$ONE_CORE" = 1 ] && modes="free onecore"
for mode in $modes; do : >"$tmp/results.$mode"; done
# A warm-up round, not counted: a freshly started broker (its JIT, its
# first segments) is slower for whoever comes first, and produce does.
one_run warmup 0 >/dev/null || exit 1
r=0
while [ $r -lt "$RUNS" ]; do
	r=$((r + 1))
	for mode in $modes; do
		one_run "$mode" "$r" || exit 1
	done
done
[ -n "$jvm" ] && taskset -a -p -c "0-$((ncpu - 1))" "$jvm" >/dev/null 2>&1

# Medians over the runs, per mode. The free mode's lines keep the wording
# bench/run reads; the one-core lines say "on one core".
summary() {
	res=$1
	sfx=$2
	sort -n -k14 "$res" | awk -v n="$RUNS" -v sfx="$sfx" '{ ps[NR] = $14; m = $1; b = $2; ev = $9 }
	END {
		i = int((n + 1) / 2); p = ps[i]
		printf "produce%s (median of %d): %d events, %d msgs in %.3f s: %.0f events/s, %.0f msgs/s, %.2f MB/s\n", sfx, n, ev, m, p, ev / p, m / p, b / p / 1e6
	}'
	awk '{ print $15, $8 / $5, $5, $6 }' "$res" | sort -n | awk -v n="$RUNS" -v sfx="$sfx" -v b="$(tail -n 1 "$res" | cut -d' ' -f2)" '
	{ ks[NR] = $1; kw[NR] = $4; m = $3 } END {
		i = int((n + 1) / 2)
		printf "kcat -P%s (median): %d msgs in %.3f s (%.3f s with startup): %.0f msgs/s, %.2f MB/s\n", sfx, m, ks[i], kw[i], m / ks[i], b / ks[i] / 1e6
	}'
	awk -v n="$RUNS" -v sfx="$sfx" '{ pt[NR] = $1 / $14; kt[NR] = $5 / $15
		pc[NR] = ($4 - $10) / $1 * 1e6; kc[NR] = ($8 - $11) / $5 * 1e6
		# The pair of each run (produce, then kcat, seconds apart), taken
		# before med() sorts the columns: how far the noise of the machine
		# moves one comparison.
		rt[NR] = pt[NR] / kt[NR]; rc[NR] = kc[NR] / pc[NR] }
	function med(a, k, i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int((k + 1) / 2)] }
	END {
		p = med(pt, n); k = med(kt, n); c1 = med(pc, n); c2 = med(kc, n)
		printf "CPU per million messages%s (median): produce %.2f s, kcat %.2f s\n", sfx, c1, c2
		printf "ratio throughput%s (produce msgs/s / kcat msgs/s): %.2f\n", sfx, p / k
		printf "ratio CPU per message%s (kcat / produce, >= 1 means produce is cheaper): %.2f\n", sfx, c2 / c1
		m1 = med(rt, n); m2 = med(rc, n) # sorted now: [1] and [n] are the extremes
		printf "spread%s, produce/kcat of each run: throughput %.2f-%.2f (median %.2f), CPU per message %.2f-%.2f (median %.2f)\n", sfx, rt[1], rt[n], m1, rc[1], rc[n], m2
	}' "$res"
}
summary "$tmp/results.free" ""
[ "$ONE_CORE" = 1 ] && summary "$tmp/results.onecore" " on one core"
exit 0
