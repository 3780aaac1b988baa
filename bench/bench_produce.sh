#!/bin/sh
# bench_produce: `mbta-stream produce` throughput from a fast `serve --rate`
# source into a real broker, and in the same run kcat producing the very
# same pre-split messages (dumped from produce's topic) to the same broker
# with the same no-loss settings, as a ratio (goal: >= 1). Prints numbers,
# asserts nothing.
#
#   sh bench/bench_produce.sh            (EVENTS=200000 RATE=100000 by default)
#
# Uses KAFKA_BROKERS when set; otherwise brings up its own services under a
# private state directory and takes them down at the end.
set -u
cd "$(dirname "$0")/.."
BIN=${MBTA_STREAM:-build/mbta-stream}
EVENTS=${EVENTS:-200000}
RATE=${RATE:-100000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_produce.XXXXXX")
own=
cleanup() {
	[ -n "${spid:-}" ] && kill "$spid" 2>/dev/null
	[ -n "${ppid_:-}" ] && kill "$ppid_" 2>/dev/null
	[ -n "$own" ] && MBTA_STATE_DIR=$tmp/services sh scripts/services down --clean >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

if [ -z "${KAFKA_BROKERS:-}" ]; then
	own=1
	eval "$(MBTA_STATE_DIR=$tmp/services sh scripts/services up 2>"$tmp/services.log")" || {
		echo "bench_produce: services up failed: $(tail -n 1 "$tmp/services.log")" >&2
		exit 1
	}
fi
run=$$_$(date +%s)
topic=bench.produce.$run
ktopic=bench.kcat.$run
props="-X enable.idempotence=true -X acks=all -X compression.codec=lz4 -X linger.ms=5"

now_ms() { date +%s%3N; }

"$BIN" serve --port 0 --seed 1 --clock 2026-03-02T08:00:00-05:00 --rate "$RATE" \
	--limit "$EVENTS" >"$tmp/serve.out" 2>"$tmp/serve.log" &
spid=$!
i=0
while [ ! -s "$tmp/serve.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
url=$(head -n 1 "$tmp/serve.out")

# Topics exist before the clock starts, for both sides alike.
kcat -b "$KAFKA_BROKERS" -L -t "$topic" >/dev/null 2>&1
"$BIN" produce -b "$KAFKA_BROKERS" --api-url "$url" --stats-interval 1 \
	--stream "vehicles=/vehicles?filter[route_type]=0,1@$topic" >/dev/null 2>"$tmp/produce.log" &
ppid_=$!
# Timed from the first connection to the stats line that shows every event
# in and delivered with nothing queued (1 s stats resolution: keep runs long).
t0=
while :; do
	if [ -z "$t0" ] && grep -q 'connected' "$tmp/produce.log"; then t0=$(now_ms); fi
	line=$(grep 'stats: ' "$tmp/produce.log" | tail -n 1)
	in=$(echo "$line" | sed -n 's/.* in=\([0-9]*\).*/\1/p')
	prod=$(echo "$line" | sed -n 's/.* produced=\([0-9]*\).*/\1/p')
	deliv=$(echo "$line" | sed -n 's/.* delivered=\([0-9]*\).*/\1/p')
	if [ -n "$in" ] && [ "$in" -gt "$EVENTS" ] && [ "$prod" = "$deliv" ]; then
		t1=$(now_ms)
		break
	fi
	if ! kill -0 "$ppid_" 2>/dev/null; then
		echo "bench_produce: produce exited early:" >&2
		tail -n 5 "$tmp/produce.log" >&2
		exit 1
	fi
	sleep 0.2
done
kill -TERM "$ppid_"
wait "$ppid_"
ppid_=
bytes=$(grep 'totals: ' "$tmp/produce.log" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')
ms=$((t1 - t0))

# The same messages, pre-split, through kcat to the same broker.
kcat -b "$KAFKA_BROKERS" -C -t "$topic" -e -q -f '%k\t%s\n' >"$tmp/msgs"
n=$(wc -l <"$tmp/msgs")
kcat -b "$KAFKA_BROKERS" -L -t "$ktopic" >/dev/null 2>&1
k0=$(now_ms)
# shellcheck disable=SC2086
kcat -b "$KAFKA_BROKERS" -P -t "$ktopic" -K '\t' -l $props "$tmp/msgs"
k1=$(now_ms)
kms=$((k1 - k0))
kbytes=$(wc -c <"$tmp/msgs")

awk -v n="$prod" -v ev="$in" -v b="$bytes" -v ms="$ms" -v kn="$n" -v kb="$kbytes" -v kms="$kms" 'BEGIN {
	s = ms / 1000.0; ks = kms / 1000.0
	if (s <= 0) s = 0.001; if (ks <= 0) ks = 0.001
	printf "produce: %d events, %d messages in %.2f s: %.0f events/s, %.0f msgs/s, %.2f MB/s\n", ev, n, s, ev / s, n / s, b / s / 1e6
	printf "kcat -P: %d messages in %.2f s: %.0f msgs/s, %.2f MB/s\n", kn, ks, kn / ks, kb / ks / 1e6
	printf "ratio (produce msgs/s / kcat msgs/s): %.2f\n", (n / s) / (kn / ks)
}'
