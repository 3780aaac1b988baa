#!/bin/sh
# bench/bench_consume.sh: the sink alone. N vehicle events (BENCH_EVENTS,
# default 1000000; 10,000 vehicles, so most events are updates of an entity
# already in the current table) are written straight to a fresh 3-partition
# topic with kcat, then:
#   1. `consume --exit-at-eof` drains them into a fresh schema: rows/s from
#      the first assignment to the final stats line (history COPY, current
#      upserts, enrichment reads, offsets: everything).
#   2. The same history rows, exported, are COPY'd by psql into the same
#      (partitioned, indexed) history table of a second fresh schema: the
#      rows/s of a bare COPY.
# Prints `name value unit` lines (consume_only_rows_per_s,
# copy_only_rows_per_s, consume_only_copy_ratio); asserts nothing about time.
# Needs KAFKA_BROKERS and DATABASE_URL (or run it under bench/run's services).
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
: "${KAFKA_BROKERS:?}" "${DATABASE_URL:?}"
N=${BENCH_EVENTS:-1000000}
run=$$_$(date +%s)
S=bc_$run
B=bcbare_$run
T=bench.consume.$run
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_consume.XXXXXX")
cleanup() {
	q "DROP SCHEMA IF EXISTS $S CASCADE; DROP SCHEMA IF EXISTS $B CASCADE" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "bench_consume: $N events into $T"
python3 - "$N" >"$tmp/msgs" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    v = i % 10000
    t = 1796410991 + i // 10000
    hh, mm, ss = (t // 3600) % 24, (t // 60) % 60, t % 60
    out.write('vehicle:v%d\t{"attributes":{"bearing":%d,"carriages":[],"current_status":"IN_TRANSIT_TO",'
              '"current_stop_sequence":%d,"direction_id":%d,"label":"%d","latitude":%.5f,'
              '"longitude":%.5f,"occupancy_status":null,"revenue":"REVENUE","speed":null,'
              '"updated_at":"2026-12-04T%02d:%02d:%02dZ"},"id":"v%d","links":{"self":"/vehicles/v%d"},'
              '"relationships":{"route":{"data":{"id":"Red","type":"route"}},"stop":{"data":'
              '{"id":"70077","type":"stop"}},"trip":{"data":{"id":"T%d","type":"trip"}}},'
              '"type":"vehicle"}\n' % (v, i % 360, i % 50, v % 2, v, 42.3 + (i % 1000) * 1e-5,
                                        -71.06 + (i % 777) * 1e-5, hh, mm, ss, v, v, v))
PY
kcat -P -b "$KAFKA_BROKERS" -t "$T" -K '\t' -z lz4 -H event=update -H stream=vehicles \
	-H generation=1 -H "received-at=$(date +%s%N)" -H seq=1 -X linger.ms=50 <"$tmp/msgs" ||
	{ say "kcat failed"; exit 1; }

$RUSAGE "$tmp/c.ru" "$tmp/c.pid" -- "$BIN" consume -b "$KAFKA_BROKERS" --pg "$DATABASE_URL" \
	--topics "$T" --group "g$run" --schema "$S" --exit-at-eof --stats-interval 10 \
	>/dev/null 2>"$tmp/c.log" || { say "consume failed:"; tail -n 3 "$tmp/c.log" >&2; exit 1; }
a=$(grep -m 1 ': assigned' "$tmp/c.log" | cut -d' ' -f1)
z=$(grep 'final stats' "$tmp/c.log" | cut -d' ' -f1)
drain_ms=$(($(iso_ms "$z") - $(iso_ms "$a")))
rows=$(q "SELECT count(*) FROM $S.vehicle_history")
say "consume: $rows history rows in $drain_ms ms ($(cat "$tmp/c.ru"))"

"$BIN" migrate --pg "$DATABASE_URL" --schema "$B" 2>/dev/null || { say "migrate failed"; exit 1; }
for d in $(q "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM $S.vehicle_history"); do
	q "SELECT $B.ensure_day_partitions('$d')" >/dev/null
done
psql -X -q "$DATABASE_URL" -c "\\copy (SELECT * FROM $S.vehicle_history) TO '$tmp/h.copy'" || exit 1
c0=$(now_ms)
psql -X -q "$DATABASE_URL" -c "\\copy $B.vehicle_history FROM '$tmp/h.copy'" || exit 1
copy_ms=$(($(now_ms) - c0))
say "bare COPY: $rows rows in $copy_ms ms"
awk -v rows="$rows" -v dms="$drain_ms" -v cms="$copy_ms" 'BEGIN {
	if (dms <= 0) dms = 1; if (cms <= 0) cms = 1
	printf "consume_only_rows_per_s %d rows/s\n", rows * 1000 / dms
	printf "copy_only_rows_per_s %d rows/s\n", rows * 1000 / cms
	printf "consume_only_copy_ratio %.2f x\n", (rows / dms) / (rows / cms)
}'
