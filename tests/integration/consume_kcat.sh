#!/bin/sh
# consume_kcat: `mbta-stream consume` against messages written straight to
# Kafka with kcat (docs/CONTRACT.md), rows asserted with psql.
# Cases: upsert/update/remove into current and history (same entity twice in
# one batch: the last wins), the reset-end sweep, poison messages to
# dead_letters, a restart that must not double anything, migrate idempotent.
# Env: MBTA_STREAM, KAFKA_BROKERS, DATABASE_URL, TMOUT_MULTIPLIER.
set -u
: "${MBTA_STREAM:?}" "${KAFKA_BROKERS:?}" "${DATABASE_URL:?}"
M=${TMOUT_MULTIPLIER:-1}
run=$$_$(date +%s)
S=ck_$run
T=mbta.ck$run.vehicles
D=mbta.ck$run.dead-letters
tmp=$(mktemp -d)
fails=0
[ -n "${KEEP:-}" ] || trap 'psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1; rm -rf "$tmp"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
q() { psql -qtA "$DATABASE_URL" -c "$1" 2>&1; }
# put PARTITION KEY EVENT GEN VALUE [TOPIC]: one message (VALUE "-" = null)
put() {
    now=$(date +%s%N)
    if [ "$5" = - ]; then
        # kcat skips empty lines: a key and an empty value with -Z is a null
        printf '%s\t\n' "$2" | kcat -P -Z -K '\t' -b "$KAFKA_BROKERS" -t "${6:-$T}" -p "$1" \
            -H "event=$3" -H stream=vehicles -H "generation=$4" -H "received-at=$now" -H seq=1
    else
        printf '%s' "$5" | kcat -P -b "$KAFKA_BROKERS" -t "${6:-$T}" -p "$1" -k "$2" -H "event=$3" \
            -H stream=vehicles -H "generation=$4" -H "received-at=$now" -H seq=1
    fi
}
veh() { # ID LAT UPDATED_AT STATUS
    printf '{"type":"vehicle","id":"%s","attributes":{"latitude":%s,"longitude":-71.06,"updated_at":"%s","current_status":"%s","bearing":90,"speed":null,"direction_id":1,"label":"L%s"},"relationships":{"route":{"data":{"type":"route","id":"Red"}},"stop":{"data":null}}}' "$1" "$2" "$3" "$4" "$1"
}
consume() {
    timeout $((20 * M)) "$MBTA_STREAM" consume -b "$KAFKA_BROKERS" --pg "$DATABASE_URL" \
        --topics "^mbta\\.ck$run\\..*" --dead-letter-topic "$D" --schema "$S" --group "g$run" \
        --exit-at-eof --stats-interval 0 "$@" >>"$tmp/consume.out" 2>>"$tmp/consume.log"
}

# 1. reset of two vehicles in generation 1, updates, the same entity twice.
put 0 vehicle:v1 reset 1 "$(veh v1 42.30 2026-12-04T14:00:00-05:00 STOPPED_AT)"
put 0 vehicle:v2 reset 1 "$(veh v2 42.40 2026-12-04T14:00:00-05:00 STOPPED_AT)"
put 0 mbta-stream:reset-end:vehicles reset-end 1 '{"stream":"vehicles","generation":1,"count":2}'
put 0 vehicle:v1 update 1 "$(veh v1 42.31 2026-12-04T14:00:30-05:00 IN_TRANSIT_TO)"
put 0 vehicle:v1 update 1 "$(veh v1 42.32 2026-12-04T14:01:00-05:00 INCOMING_AT)"
put 1 vehicle:v3 add 1 "$(veh v3 42.50 2026-12-04T14:00:00-05:00 STOPPED_AT)"
put 1 vehicle:v3 remove 1 -
put 2 facility:f1 add 1 '{"type":"facility","id":"f1","attributes":{"x":1}}'
consume --batch-size 1000
rc=$?
if [ $rc -ne 0 ]; then
    fail consume_exit "exit $rc: $(tail -n 3 "$tmp/consume.log")"
fi
got=$(q "SELECT string_agg(id || ':' || current_status || ':' || latitude, ',' ORDER BY id) FROM $S.vehicles")
[ "$got" = "v1:INCOMING_AT:42.32,v2:STOPPED_AT:42.4" ] && pass current_upsert_last_wins ||
    fail current_upsert_last_wins "vehicles: $got"
got=$(q "SELECT string_agg(id || ':' || event || ':' || kafka_partition || ':' || kafka_offset, ',' ORDER BY kafka_partition, kafka_offset) FROM $S.vehicle_history")
[ "$got" = "v1:reset:0:0,v2:reset:0:1,v1:update:0:3,v1:update:0:4,v3:add:1:0,v3:remove:1:1" ] &&
    pass history_one_row_per_event || fail history_one_row_per_event "$got"
got=$(q "SELECT count(*) FROM $S.vehicles WHERE id = 'v3'")
[ "$got" = 0 ] && pass remove_deletes || fail remove_deletes "v3 rows: $got"
got=$(q "SELECT type || ':' || id || ':' || (raw->'attributes'->>'x') FROM $S.resources")
[ "$got" = "facility:f1:1" ] && pass unknown_type_generic || fail unknown_type_generic "$got"
got=$(q "SELECT round(prev_gap_s)::int || ':' || round(prev_distance_m)::int || ':' || service_date || ':' || local_hour FROM $S.vehicle_history WHERE kafka_partition = 0 AND kafka_offset = 3")
[ "$got" = "30:1112:2026-12-04:14" ] && pass enrichment_from_committed || fail enrichment_from_committed "$got"
got=$(q "SELECT coalesce(prev_gap_s::text, 'NULL') FROM $S.vehicle_history WHERE kafka_partition = 0 AND kafka_offset = 0")
[ "$got" = NULL ] && pass enrichment_null_first || fail enrichment_null_first "$got"
got=$(q "SELECT string_agg(partition || '=' || next_offset, ',' ORDER BY partition) FROM $S.offsets WHERE topic = '$T'")
[ "$got" = "0=5,1=2,2=1" ] && pass offsets_stored || fail offsets_stored "$got"

# 2. a new reset (generation 2) without v2: the marker sweeps v2 away, and
#    the enrichment of v1 continues from its committed row.
put 0 vehicle:v1 reset 2 "$(veh v1 42.33 2026-12-04T14:01:30-05:00 STOPPED_AT)"
put 0 mbta-stream:reset-end:vehicles reset-end 2 '{"stream":"vehicles","generation":2,"count":1}'
put 0 vehicle:v4 add 2 "$(veh v4 42.60 2026-12-04T14:02:00-05:00 STOPPED_AT)"
# 3. poison: malformed JSON, a wrong type, an out-of-range value, a key that
#    does not match, an unknown event, a producer dead letter.
put 1 vehicle:p1 update 2 'not json {'
put 1 vehicle:p2 update 2 '{"type":"vehicle","id":"p2","attributes":{"latitude":"north"}}'
put 1 vehicle:p3 update 2 '{"type":"vehicle","id":"p3","attributes":{"bearing":720}}'
put 1 vehicle:p4 update 2 '{"type":"vehicle","id":"other"}'
put 1 vehicle:p5 teleport 2 '{"type":"vehicle","id":"p5"}'
printf 'data line that failed' | kcat -P -b "$KAFKA_BROKERS" -t "$D" -p 0 -k vehicles \
    -H event=update -H stream=vehicles -H 'reason=malformed JSON at byte 4'
put 1 vehicle:v5 add 2 "$(veh v5 42.70 2026-12-04T14:02:00-05:00 STOPPED_AT)"
consume --batch-size 3
got=$(q "SELECT string_agg(id || ':' || generation, ',' ORDER BY id) FROM $S.vehicles")
[ "$got" = "v1:2,v4:2,v5:2" ] && pass reset_sweep || fail reset_sweep "vehicles: $got"
got=$(q "SELECT round(prev_gap_s)::int FROM $S.vehicle_history WHERE event = 'reset' AND generation = 2")
[ "$got" = 30 ] && pass enrichment_across_runs || fail enrichment_across_runs "$got"
got=$(q "SELECT count(*) || ':' || string_agg(split_part(reason, ':', 1), '|' ORDER BY kafka_topic DESC, kafka_offset) FROM $S.dead_letters")
case "$got" in
"6:malformed JSON|vehicle p2|vehicle p3|key vehicle|unknown event \"teleport\"|malformed JSON at byte 4")
    pass dead_letters ;;
*) fail dead_letters "$got" ;;
esac
got=$(q "SELECT convert_from(raw, 'UTF8') || '|' || (headers->>'event') || '|' || key FROM $S.dead_letters WHERE kafka_topic = '$T' AND kafka_offset = 2")
[ "$got" = "not json {|update|vehicle:p1" ] && pass dead_letter_raw_bytes || fail dead_letter_raw_bytes "$got"

# 4. a restart from the stored offsets adds nothing; migrate is idempotent.
before=$(q "SELECT (SELECT count(*) FROM $S.vehicle_history) || '/' || (SELECT count(*) FROM $S.dead_letters)")
consume
after=$(q "SELECT (SELECT count(*) FROM $S.vehicle_history) || '/' || (SELECT count(*) FROM $S.dead_letters)")
[ "$before" = "$after" ] && [ "$before" = "9/6" ] && pass restart_no_duplicates ||
    fail restart_no_duplicates "before $before after $after"
out=$("$MBTA_STREAM" migrate --pg "$DATABASE_URL" --schema "$S" 2>&1)
case "$out" in *"(0 applied)"*) pass migrate_idempotent ;; *) fail migrate_idempotent "$out" ;; esac
out=$("$MBTA_STREAM" consume -b "$KAFKA_BROKERS" --schema 'Bad-Name' 2>&1)
[ $? -eq 2 ] && pass bad_schema_usage || fail bad_schema_usage "$out"

[ $fails -eq 0 ] || { echo "--- consume log"; tail -n 30 "$tmp/consume.log"; }
[ $fails -eq 0 ]
