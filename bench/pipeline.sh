#!/bin/sh
# bench/pipeline.sh: consume throughput, its ratio to a bare COPY, catch-up
# time, and the footprint (peak RSS, CPU seconds per million events) of
# produce and consume, on one backlog of BENCH_EVENTS events.
#
#   1. serve (fast --rate) -> produce: BENCH_EVENTS events, half vehicles,
#      half predictions, into two fresh 3-partition topics (produce's
#      footprint, under bench/rusage.py).
#   2. consume --exit-at-eof drains them into a fresh schema: rows/s over
#      the drain (first partition assigned -> final stats line), and its
#      footprint.
#   3. The same history rows, exported, COPY'd by psql into the same
#      history tables of a second fresh schema: rows/s of a bare COPY.
#   4. The consumer stays stopped while another BENCH_EVENTS events are
#      produced; then catch-up = wall time from starting consume again (same
#      group and schema: positions from PostgreSQL) to its exit at the end.
#
# Needs KAFKA_BROKERS and DATABASE_URL (bench/run sets them). Prints
# `name value unit` lines on stdout; asserts nothing about time.
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
: "${KAFKA_BROKERS:?}" "${DATABASE_URL:?}"
N=${BENCH_EVENTS:-1000000}
run=$$_$(date +%s)
S=bench_$run
B=bare_$run
G=bench_g$run
TV=bench.$run.vehicles
TP=bench.$run.predictions
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_pipeline.XXXXXX")
cleanup() {
	[ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null
	[ -n "${wpid:-}" ] && kill "$wpid" 2>/dev/null
	q "DROP SCHEMA IF EXISTS $S CASCADE; DROP SCHEMA IF EXISTS $B CASCADE" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# produce_backlog TAG CLOCK: N events into the two topics; leaves the
# rusage line in $tmp/TAG.ru and the log in $tmp/TAG.log.
produce_backlog() {
	half=$(((N + 1) / 2))
	serve_start "$tmp" 500000 "$half" "$2" || { say "serve did not start"; return 1; }
	$RUSAGE "$tmp/$1.ru" "$tmp/$1.pid" -- "$BIN" produce -b "$KAFKA_BROKERS" \
		--api-url "$serve_url" --stats-interval 1 \
		--stream "vehicles=/vehicles?filter[route_type]=0,1,2,3@$TV" \
		--stream "predictions=/predictions?filter[route_type]=0,1,2,3@$TP" \
		>/dev/null 2>"$tmp/$1.log" &
	wpid=$!
	sleep 0.3
	t0=$(now_ms)
	if ! wait_produced "$tmp/$1.log" "$wpid" "$((2 * half))" $((120 + N / 2000)); then
		say "produce ($1) did not deliver $N events:"
		tail -n 3 "$tmp/$1.log" >&2
		return 1
	fi
	t1=$(now_ms)
	kill -TERM "$(cat "$tmp/$1.pid")"
	wait "$wpid"
	wpid=
	kill "$serve_pid" 2>/dev/null
	wait "$serve_pid" 2>/dev/null
	serve_pid=
	msgs=$(stats_sum "$tmp/$1.log" delivered)
	say "produce ($1): $msgs messages in $(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100)) s ($(cat "$tmp/$1.ru"))"
}

# consume_drain TAG: consume --exit-at-eof under rusage.
consume_drain() {
	$RUSAGE "$tmp/$1.ru" "$tmp/$1.pid" -- "$BIN" consume -b "$KAFKA_BROKERS" \
		--pg "$DATABASE_URL" --topics "$TV,$TP" --group "$G" --schema "$S" \
		--exit-at-eof --stats-interval 10 >/dev/null 2>"$tmp/$1.log"
}

history_rows() { # SCHEMA
	q "SELECT coalesce(sum(n), 0) FROM (
		SELECT (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text::bigint AS n
		FROM information_schema.tables WHERE table_schema = '$1' AND table_name LIKE '%\\_history' ESCAPE '\\') s"
}

say "pipeline: $N events per backlog, topics bench.$run.*, schema $S"
produce_backlog produce1 2026-03-02T08:00:00-05:00 || exit 1
pmsgs=$msgs

say "consume: draining into $S"
consume_drain consume1 || { say "consume failed:"; tail -n 3 "$tmp/consume1.log" >&2; exit 1; }
a=$(grep -m 1 ': assigned' "$tmp/consume1.log" | cut -d' ' -f1)
[ -n "$a" ] || a=$(grep -m 1 'consuming ' "$tmp/consume1.log" | cut -d' ' -f1)
z=$(grep 'final stats' "$tmp/consume1.log" | cut -d' ' -f1)
drain_ms=$(($(iso_ms "$z") - $(iso_ms "$a")))
rows=$(history_rows "$S")
cmsgs=$(sed -n 's/.*final stats: messages \([0-9]*\).*/\1/p' "$tmp/consume1.log")
say "consume: $cmsgs messages, $rows history rows in $drain_ms ms ($(cat "$tmp/consume1.ru"))"

say "bare COPY: the same rows into $B"
"$BIN" migrate --pg "$DATABASE_URL" --schema "$B" 2>"$tmp/migrate.log" || {
	say "migrate failed: $(tail -n 1 "$tmp/migrate.log")"
	exit 1
}
tables=$(q "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = '$S' AND c.relkind = 'p' AND c.relname LIKE '%\\_history' ESCAPE '\\' ORDER BY 1")
for d in $(q "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM (
	SELECT received_at FROM $S.vehicle_history UNION ALL SELECT received_at FROM $S.prediction_history) s"); do
	q "SELECT $B.ensure_day_partitions('$d')" >/dev/null
done
: >"$tmp/export.sql"
: >"$tmp/import.sql"
for t in $tables; do
	printf '\\copy (SELECT * FROM %s.%s) TO %s\n' "$S" "$t" "'$tmp/$t.copy'" >>"$tmp/export.sql"
	printf '\\copy %s.%s FROM %s\n' "$B" "$t" "'$tmp/$t.copy'" >>"$tmp/import.sql"
done
psql -X -q "$DATABASE_URL" -v ON_ERROR_STOP=1 -f "$tmp/export.sql" >/dev/null || exit 1
c0=$(now_ms)
psql -X -q "$DATABASE_URL" -v ON_ERROR_STOP=1 -f "$tmp/import.sql" >/dev/null || exit 1
c1=$(now_ms)
copy_ms=$((c1 - c0))
crows=$(history_rows "$B")
say "bare COPY: $crows rows in $copy_ms ms"
q "DROP SCHEMA $B CASCADE" >/dev/null 2>&1

say "catch-up: $N more events while the consumer is stopped"
produce_backlog produce2 2026-03-02T09:00:00-05:00 || exit 1
c0=$(now_ms)
consume_drain consume2 || { say "consume failed:"; tail -n 3 "$tmp/consume2.log" >&2; exit 1; }
c1=$(now_ms)
catch_ms=$((c1 - c0))
cmsgs2=$(sed -n 's/.*final stats: messages \([0-9]*\).*/\1/p' "$tmp/consume2.log")
say "catch-up: $cmsgs2 messages in $catch_ms ms ($(cat "$tmp/consume2.ru"))"

awk -v rows="$rows" -v dms="$drain_ms" -v crows="$crows" -v cms="$copy_ms" \
	-v cms2="$catch_ms" -v m2="$cmsgs2" -v pm="$pmsgs" -v cm="$cmsgs" \
	-v pr="$(ru_field "$tmp/produce1.ru" maxrss_kb)" \
	-v pu="$(ru_field "$tmp/produce1.ru" utime_s)" -v ps="$(ru_field "$tmp/produce1.ru" stime_s)" \
	-v cr="$(ru_field "$tmp/consume1.ru" maxrss_kb)" \
	-v cu="$(ru_field "$tmp/consume1.ru" utime_s)" -v cs="$(ru_field "$tmp/consume1.ru" stime_s)" '
function r(n, v, u) { printf "%s %s %s\n", n, v, u }
BEGIN {
	if (dms <= 0) dms = 1; if (cms <= 0) cms = 1
	r("consume_events", rows, "rows")
	r("consume_rows_per_s", sprintf("%.0f", rows / (dms / 1000)), "rows/s")
	r("copy_rows_per_s", sprintf("%.0f", crows / (cms / 1000)), "rows/s")
	r("consume_copy_ratio", sprintf("%.2f", (rows / dms) / (crows / cms)), "x")
	r("catchup_events", m2, "messages")
	r("catchup_s", sprintf("%.1f", cms2 / 1000), "s")
	r("produce_peak_rss_mb", sprintf("%.1f", pr / 1024), "MB")
	r("produce_cpu_s_per_m_events", sprintf("%.2f", (pu + ps) / (pm / 1e6)), "s")
	r("consume_peak_rss_mb", sprintf("%.1f", cr / 1024), "MB")
	r("consume_cpu_s_per_m_events", sprintf("%.2f", (cu + cs) / (cm / 1e6)), "s")
}'
