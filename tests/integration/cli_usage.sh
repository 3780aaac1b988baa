#!/bin/sh
# Usage errors of every subcommand: exit 2, one line on stderr naming the
# problem, nothing on stdout; --help: exit 0, the options on stdout. Needs
# no server (all of it happens before anything connects).
cd "$(dirname "$0")/../.."
BIN=${MBTA_STREAM:-build/mbta-stream}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check NAME WANT_RC WANT_STDERR_SUBSTRING ARGS...: one PASS/FAIL line.
check() {
	name=$1 want=$2 msg=$3
	shift 3
	"$BIN" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL $name: exit $rc, want $want: $(head -n 1 "$tmp/err")"
	elif [ "$want" -eq 2 ] && { [ "$lines" -ne 1 ] || [ -s "$tmp/out" ] || ! grep -qF -- "$msg" "$tmp/err"; }; then
		echo "FAIL $name: want one stderr line with '$msg' and no stdout; got $lines lines: $(head -n 2 "$tmp/err" | tr '\n' '|') stdout $(wc -c <"$tmp/out") bytes"
	elif [ "$want" -eq 0 ] && ! grep -qF -- "$msg" "$tmp/out"; then
		echo "FAIL $name: --help does not show '$msg'"
	else
		echo "PASS $name"
	fi
}

for c in produce consume migrate serve record tail; do
	check "cli_${c}_bad_log_level" 2 "mbta-stream $c: log-level: \"loud\" is not a level" \
		"$c" --log-level loud
	check "cli_${c}_unknown_option" 2 "mbta-stream $c: unknown option --no-such-flag" \
		"$c" --no-such-flag
	check "cli_${c}_help" 0 "--log-level LEVEL" "$c" --help
done
check cli_unknown_command 2 "unknown command" no-such-command
