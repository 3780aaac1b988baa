#!/bin/sh
# tests/integration/smoke_servers.sh: prove that the servers named by
# KAFKA_BROKERS and DATABASE_URL (see scripts/services) are real and work
# the way this project uses them, with the stock clients only (kcat, psql):
# keyed messages with headers round-trip through a fresh topic, an idempotent
# producer and a consumer group work, rows COPY in and read back.
# It does not start servers: run `eval "$(scripts/services up)"` first.
#
# Prints `PASS <name>` or `FAIL <name>: <reason>` per case and a closing
# `N passed, N failed`; exits non-zero if any case failed.
set -u

pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/smoke_servers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tm=$(awk -v m="${TMOUT_MULTIPLIER:-1}" 'BEGIN { m += 0; print (m > 1) ? int(m + 0.999) : 1 }')

if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${DATABASE_URL:-}" ]; then
	ko env "KAFKA_BROKERS and DATABASE_URL must be set (eval \"\$(scripts/services up)\")"
	finish
fi
for tool in kcat psql python3; do
	command -v "$tool" >/dev/null 2>&1 || ko "tool_$tool" "$tool not found (run scripts/deps)"
done
[ "$fail" -eq 0 ] || finish

run="$$_$(date +%s)"
topic="smoke.servers.$run"
n=100

# ---------------------------------------------------------------- Kafka

if kcat -b "$KAFKA_BROKERS" -L -m $((5 * tm)) >"$tmp/meta" 2>"$tmp/err" &&
	grep -q ' 1 brokers:' "$tmp/meta"; then
	ok kafka_metadata
else
	ko kafka_metadata "kcat -L failed: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
	finish
fi

# The topic is created up front (3 partitions by the broker's default) so
# that consuming from the beginning sees every message.
i=1
: >"$tmp/expect"
while [ $i -le $n ]; do
	# key|value; headers are set per run below
	printf 'vehicle:y%d|{"id":"y%d","n":%d,"s":"caf\303\251 \\"q\\""}\n' $i $i $i >>"$tmp/expect"
	i=$((i + 1))
done

# 1. produce keyed messages with headers (idempotent producer, acks=all)
if kcat -b "$KAFKA_BROKERS" -P -t "$topic" -K '|' \
	-H event=update -H "stream=smoke-$run" -H generation=7 \
	-X enable.idempotence=true -X acks=all -X topic.metadata.refresh.interval.ms=1000 \
	-X allow.auto.create.topics=true \
	<"$tmp/expect" 2>"$tmp/err"; then
	ok kafka_produce_100_with_keys_and_headers
else
	ko kafka_produce_100_with_keys_and_headers "kcat -P: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
fi

# 2. consume them back: same keys, values, headers; per-key partition
if timeout $((30 * tm)) kcat -b "$KAFKA_BROKERS" -C -t "$topic" -o beginning \
	-c $n -e -q -f '%p\t%k|%s\t%h\n' >"$tmp/got" 2>"$tmp/err"; then
	cut -f2 "$tmp/got" | sort >"$tmp/got.kv"
	sort "$tmp/expect" >"$tmp/exp.kv"
	bad_hdr=$(cut -f3 "$tmp/got" | grep -cvxF "event=update,stream=smoke-$run,generation=7" || true)
	parts=$(cut -f1 "$tmp/got" | sort -u | wc -l)
	if ! cmp -s "$tmp/got.kv" "$tmp/exp.kv"; then
		ko kafka_consume_roundtrip "messages differ: $(diff "$tmp/exp.kv" "$tmp/got.kv" | head -n 3 | tr '\n' ' ')"
	elif [ "$bad_hdr" -ne 0 ]; then
		ko kafka_consume_roundtrip "$bad_hdr messages with wrong headers, e.g. $(cut -f3 "$tmp/got" | head -n 1)"
	elif [ "$parts" -ne 3 ]; then
		ko kafka_consume_roundtrip "keys spread over $parts partitions, want 3 (num.partitions)"
	else
		ok kafka_consume_roundtrip
	fi
else
	ko kafka_consume_roundtrip "kcat -C got $(wc -l <"$tmp/got") of $n: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
fi

# 3. a consumer group reads all and commits offsets the broker reports back
group="smoke-group-$run"
if timeout $((60 * tm)) kcat -b "$KAFKA_BROKERS" -G "$group" "$topic" \
	-X auto.offset.reset=earliest -X enable.auto.commit=true \
	-X auto.commit.interval.ms=100 -c $n -e -q -f '%k\n' \
	>"$tmp/group" 2>"$tmp/err"; then
	if [ "$(sort -u "$tmp/group" | wc -l)" -eq $n ]; then
		ok kafka_consumer_group
	else
		ko kafka_consumer_group "got $(sort -u "$tmp/group" | wc -l) distinct keys of $n"
	fi
else
	ko kafka_consumer_group "kcat -G got $(wc -l <"$tmp/group") of $n: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
fi

# 4. a tombstone (null value, as for `remove`) is kept as a null
if printf 'vehicle:gone|' | kcat -b "$KAFKA_BROKERS" -P -t "$topic" -K '|' -Z -p 0 2>"$tmp/err" &&
	timeout $((30 * tm)) kcat -b "$KAFKA_BROKERS" -C -t "$topic" -p 0 -o -1 -c 1 -e -q \
		-Z -f '%k|%S\n' >"$tmp/tomb" 2>>"$tmp/err" &&
	[ "$(cat "$tmp/tomb")" = "vehicle:gone|-1" ]; then
	ok kafka_tombstone
else
	ko kafka_tombstone "want 'vehicle:gone|-1', got '$(cat "$tmp/tomb" 2>/dev/null)' $(head -c 200 "$tmp/err" | tr '\n' ' ')"
fi

# ----------------------------------------------------------- PostgreSQL

pg() { psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }

if v=$(pg -tAc 'show server_version_num' 2>"$tmp/err") && [ "${v:-0}" -ge 150000 ]; then
	ok pg_connect_version_15
else
	ko pg_connect_version_15 "got '${v:-}' $(head -c 300 "$tmp/err" | tr '\n' ' ')"
	finish
fi

table="smoke_servers_$run"
python3 -c '
import sys
for i in range(1, 1001):
    # tab-separated COPY text; a backslash, UTF-8 and a NULL in the rows
    note = "\\N" if i % 100 == 0 else "caf\u00e9 \\\\ %d" % i
    print("%d\ty%d\t%d.5\t%s" % (i, i, i, note))
' >"$tmp/rows"

if pg -c "create table $table (id integer primary key, vid text not null, \
	speed double precision, note text, at timestamptz default now())" 2>"$tmp/err" &&
	pg -c "\\copy $table (id, vid, speed, note) from '$tmp/rows'" 2>>"$tmp/err"; then
	ok pg_create_and_copy
else
	ko pg_create_and_copy "$(head -c 300 "$tmp/err" | tr '\n' ' ')"
fi

if pg -c "\\copy (select id, vid, speed, note from $table order by id) to '$tmp/back'" 2>"$tmp/err" &&
	cmp -s "$tmp/rows" "$tmp/back"; then
	ok pg_copy_roundtrip
else
	ko pg_copy_roundtrip "rows differ or copy out failed: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
fi

sum=$(pg -tAc "select count(*), sum(speed), count(note) from $table" 2>"$tmp/err")
if [ "$sum" = "1000|501000|990" ]; then
	ok pg_aggregate
else
	ko pg_aggregate "want 1000|501000|990, got '$sum'"
fi

pg -c "drop table $table" 2>/dev/null || true
finish
