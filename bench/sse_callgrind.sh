#!/bin/sh
# Instructions per event of the SSE parser, counted by callgrind over
# sse_parser_feed only (the stream generation is not counted).
#   sh bench/sse_callgrind.sh        (after `make`)
set -eu
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}/bench/bench_sse_parse
command -v valgrind > /dev/null || { echo "sse_callgrind: valgrind not installed" >&2; exit 1; }
[ -x "$BIN" ] || { echo "sse_callgrind: build $BIN first (make)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --toggle-collect=sse_parser_feed \
    --callgrind-out-file="$out/cg.out" "$BIN" --callgrind > "$out/stdout" 2> "$out/stderr" || {
    cat "$out/stderr" >&2; exit 1; }
events=$(sed -n 's/^events \([0-9]*\) bytes \([0-9]*\)$/\1/p' "$out/stdout")
bytes=$(sed -n 's/^events \([0-9]*\) bytes \([0-9]*\)$/\2/p' "$out/stdout")
ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/cg.out")
[ -n "$ir" ] || ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/cg.out")
awk -v ir="$ir" -v ev="$events" -v b="$bytes" 'BEGIN {
    printf "sse_parse under callgrind: %d events, %d bytes: %.0f instructions/event, %.2f instructions/byte\n",
        ev, b, ir / ev, ir / b }'
