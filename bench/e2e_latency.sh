#!/bin/sh
# bench/e2e_latency.sh: end-to-end latency, serve --rate -> produce ->
# Kafka -> consume -> PostgreSQL, at BENCH_E2E_RATE events/s (default 1000:
# vehicles and predictions at half each) for BENCH_E2E_SECONDS (default 60).
#
# Per history row: latency = the commit timestamp of the transaction that
# inserted it (pg_xact_commit_timestamp(xmin); history rows are insert-only)
# - its received_at (the producer's received-at header: the instant produce
# parsed the event from the simulator's stream, ns, stored as µs). Both are
# CLOCK_REALTIME of this machine. p50/p99 are exact (percentile_disc over
# every row of the run), max is the slowest row. Needs track_commit_timestamp
# = on (bench/run turns it on); without it the figures are measured to the
# transaction's start (ingested_at = now()), a lower bound, and named so.
#
# Topics are created and the consumer is assigned every partition before the
# measured run starts (warm-up events are not counted): this measures the
# steady state, not a cold start. The warm-up events are loaded by a first
# consume (--exit-at-eof); the measured one starts after it, so its own
# latency histogram (received-at -> after COMMIT returned, its final stats
# line) covers the measured events only: e2e_consume_* is that cross-check. Also reports the RSS and CPU of produce and
# consume at that rate. Needs KAFKA_BROKERS and DATABASE_URL. Prints `name
# value unit` lines on stdout; asserts nothing about time.
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
: "${KAFKA_BROKERS:?}" "${DATABASE_URL:?}"
RATE=${BENCH_E2E_RATE:-1000}
SECS=${BENCH_E2E_SECONDS:-60}
run=$$_$(date +%s)
S=e2e_$run
TV=bench.e2e$run.vehicles
TP=bench.e2e$run.predictions
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_e2e.XXXXXX")
cleanup() {
	[ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null
	[ -n "${ppid_:-}" ] && kill "$ppid_" 2>/dev/null
	[ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null
	[ -n "${BENCH_KEEP:-}" ] || q "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1
	if [ -n "${BENCH_KEEP:-}" ]; then say "kept $tmp and schema $S"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

produce() { # TAG
	$RUSAGE "$tmp/$1.ru" "$tmp/$1.pid" -- "$BIN" produce -b "$KAFKA_BROKERS" \
		--api-url "$serve_url" --stats-interval 1 \
		--stream "vehicles=/vehicles?filter[route_type]=0,1,2,3@$TV" \
		--stream "predictions=/predictions?filter[route_type]=0,1,2,3@$TP" \
		>/dev/null 2>"$tmp/$1.log" &
	ppid_=$!
}
stop_produce() { # TAG
	kill -TERM "$(cat "$tmp/$1.pid")"
	wait "$ppid_"
	ppid_=
	kill "$serve_pid" 2>/dev/null
	wait "$serve_pid" 2>/dev/null
	serve_pid=
}
rows_since() { # SQL_TIMESTAMP
	q "SELECT (SELECT count(*) FROM $S.vehicle_history WHERE received_at >= $1)
		+ (SELECT count(*) FROM $S.prediction_history WHERE received_at >= $1)"
}

say "e2e: warm-up (topics, consumer assignment)"
serve_start "$tmp" 100 20 2026-03-02T08:00:00-05:00 || { say "serve did not start"; exit 1; }
produce warm
wait_produced "$tmp/warm.log" "$ppid_" 20 60 || { say "warm-up produce failed"; tail -n 3 "$tmp/warm.log" >&2; exit 1; }
stop_produce warm
"$BIN" consume -b "$KAFKA_BROKERS" --pg "$DATABASE_URL" --topics "$TV,$TP" --group "g$run" \
	--schema "$S" --exit-at-eof >/dev/null 2>"$tmp/warm-consume.log" || {
	say "warm-up consume failed:"
	tail -n 3 "$tmp/warm-consume.log" >&2
	exit 1
}
$RUSAGE "$tmp/consume.ru" "$tmp/consume.pid" -- "$BIN" consume -b "$KAFKA_BROKERS" \
	--pg "$DATABASE_URL" --topics "$TV,$TP" --group "g$run" --schema "$S" \
	--stats-interval 10 >/dev/null 2>"$tmp/consume.log" &
cpid=$!
i=0
while [ "$(grep -c ': assigned' "$tmp/consume.log")" -lt 6 ]; do
	kill -0 "$cpid" 2>/dev/null && [ $i -lt 600 ] || {
		say "consumer not ready:"
		tail -n 3 "$tmp/consume.log" >&2
		exit 1
	}
	sleep 0.1
	i=$((i + 1))
done
sleep 1

half=$((RATE / 2))
t0=$(now_ms)
ts="to_timestamp($t0 / 1000.0)"
say "e2e: $RATE events/s for $SECS s"
serve_start "$tmp" "$half" $((half * SECS)) 2026-03-02T10:00:00-05:00 || { say "serve did not start"; exit 1; }
produce run
wait_produced "$tmp/run.log" "$ppid_" $((2 * half * SECS)) $((SECS + 60)) || {
	say "produce did not deliver:"
	tail -n 3 "$tmp/run.log" >&2
	exit 1
}
t1=$(now_ms)
stop_produce run
msgs=$(stats_sum "$tmp/run.log" delivered)
# The last rows: wait until the count stops growing.
prev=-1
n=$(rows_since "$ts")
i=0
while [ "$n" != "$prev" ] && [ $i -lt 60 ]; do
	sleep 1
	prev=$n
	n=$(rows_since "$ts")
	i=$((i + 1))
done
kill -TERM "$(cat "$tmp/consume.pid")"
wait "$cpid"
cpid=
say "e2e: $msgs messages produced in $(((t1 - t0) / 1000)) s, $n history rows"

if [ "$(q "SHOW track_commit_timestamp")" = on ]; then
	at="pg_xact_commit_timestamp(xmin)"
	name=e2e
else
	say "e2e: track_commit_timestamp is off: measuring to the transaction start (a lower bound)"
	at=ingested_at
	name=e2e_txstart
fi
lat=$(q "WITH l AS (
	SELECT extract(epoch FROM $at - received_at) * 1000 AS ms FROM $S.vehicle_history WHERE received_at >= $ts
	UNION ALL
	SELECT extract(epoch FROM $at - received_at) * 1000 FROM $S.prediction_history WHERE received_at >= $ts)
	SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY ms),
	       percentile_disc(0.99) WITHIN GROUP (ORDER BY ms), max(ms) FROM l" | tr '|' ' ')
set -- $lat
# consume's own view: "latency n=N p50=Xms p99=Yms max=Zms" (final stats)
clat=$(sed -n 's/.*final stats: .*latency n=\([0-9]*\) p50=\([0-9.]*\)ms p99=\([0-9.]*\)ms max=\([0-9.]*\)ms.*/\1 \2 \3 \4/p' "$tmp/consume.log")
[ -n "$clat" ] || clat="- - - -"
set -- $lat $clat
awk -v n="$1" -v p50="$2" -v p99="$3" -v mx="$4" -v name="$name" -v rate="$RATE" \
	-v cn="$5" -v c50="$6" -v c99="$7" -v cmx="$8" \
	-v secs="$SECS" -v msgs="$msgs" \
	-v pr="$(ru_field "$tmp/run.ru" maxrss_kb)" \
	-v pu="$(ru_field "$tmp/run.ru" utime_s)" -v ps="$(ru_field "$tmp/run.ru" stime_s)" \
	-v pw="$(ru_field "$tmp/run.ru" wall_s)" \
	-v cr="$(ru_field "$tmp/consume.ru" maxrss_kb)" \
	-v cu="$(ru_field "$tmp/consume.ru" utime_s)" -v cs="$(ru_field "$tmp/consume.ru" stime_s)" \
	-v cw="$(ru_field "$tmp/consume.ru" wall_s)" '
function r(k, v, u) { printf "%s %s %s\n", k, v, u }
BEGIN {
	r(name "_rate", rate, "events/s")
	r(name "_seconds", secs, "s")
	r(name "_rows", n, "rows")
	r(name "_p50_ms", sprintf("%.1f", p50), "ms")
	r(name "_p99_ms", sprintf("%.1f", p99), "ms")
	r(name "_max_ms", sprintf("%.1f", mx), "ms")
	if (cn != "-") {
		r("e2e_consume_msgs", cn, "messages")
		r("e2e_consume_p50_ms", c50, "ms")
		r("e2e_consume_p99_ms", c99, "ms")
		r("e2e_consume_max_ms", cmx, "ms")
	}
	r("produce_rss_at_rate_mb", sprintf("%.1f", pr / 1024), "MB")
	r("produce_cpu_share_at_rate", sprintf("%.3f", (pu + ps) / pw), "cores")
	r("consume_rss_at_rate_mb", sprintf("%.1f", cr / 1024), "MB")
	r("consume_cpu_share_at_rate", sprintf("%.3f", (cu + cs) / cw), "cores")
}'
