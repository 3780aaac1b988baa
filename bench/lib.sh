# bench/lib.sh: helpers shared by the benchmark scripts (sourced, POSIX sh).
# Each script prints its figures on stdout as `name value unit` lines and
# its progress on stderr; bench/run collects the former into the results
# file and the table.

BIN=${MBTA_STREAM:-build/mbta-stream}
RUSAGE="python3 bench/rusage.py"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
say() { echo "bench: $*" >&2; }
# result NAME VALUE UNIT
result() { printf '%s %s %s\n' "$1" "$2" "$3"; }

# stats_sum FILE FIELD: the sum over streams of FIELD= in FILE's last
# produce stats/totals line (empty if there is none yet).
stats_sum() {
	grep -E 'produce INFO: (stats|totals): ' "$1" 2>/dev/null | tail -n 1 |
		awk -v f="$2" '{ n = 0; s = 0
			for (i = 1; i <= NF; i++) if (index($i, f "=") == 1) { s += substr($i, length(f) + 2) + 0; n++ }
			if (n) print s }'
}
# stats_queue FILE: queue= of the last produce stats line.
stats_queue() {
	grep -E 'produce INFO: (stats|totals): ' "$1" 2>/dev/null | tail -n 1 |
		sed -n 's/.* queue=\([0-9]*\).*/\1/p'
}

# wait_produced LOG PID EVENTS TIMEOUT_S: wait until the produce whose
# stderr is LOG has read at least EVENTS SSE events and every message it
# produced is delivered with nothing queued. False if PID died or timed out.
wait_produced() {
	_end=$(($(now_ms) + $4 * 1000))
	while [ "$(now_ms)" -lt "$_end" ]; do
		kill -0 "$2" 2>/dev/null || return 1
		_in=$(stats_sum "$1" in)
		_p=$(stats_sum "$1" produced)
		_d=$(stats_sum "$1" delivered)
		if [ -n "$_in" ] && [ "$_in" -ge "$3" ] && [ "$_p" = "$_d" ] &&
			[ "$(stats_queue "$1")" = 0 ]; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# serve_start OUTDIR RATE LIMIT CLOCK: a simulator in the background; sets
# serve_pid and serve_url.
serve_start() {
	rm -f "$1/serve.out"
	"$BIN" serve --port 0 --seed 1 --clock "$4" --rate "$2" --limit "$3" --keepalive 5 \
		>"$1/serve.out" 2>"$1/serve.log" &
	serve_pid=$!
	_i=0
	while [ ! -s "$1/serve.out" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	serve_url=$(head -n 1 "$1/serve.out")
	[ -n "$serve_url" ]
}

# ru_field FILE FIELD: a field of a bench/rusage.py output line.
ru_field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$1"; }

# iso_ms TIMESTAMP: milliseconds since the epoch of a log line's timestamp.
iso_ms() { echo $(($(date -d "$1" +%s%N) / 1000000)); }

# q SQL: one psql query, unaligned, no headers.
q() { psql -X -qtA "$DATABASE_URL" -c "$1"; }
