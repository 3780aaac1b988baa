#!/bin/sh
# analytics_views: the views of sql/002_analytics.sql over hand-written
# history rows with hand-computed answers (no Kafka needed: rows go straight
# into the history tables of a schema made by `mbta-stream migrate`).
# Cases: a visit first seen already stopped (arrival NULL), arrival with its
# gap, a report duplicated on a second topic, departure and dwell, the end
# of a trip (no departure), a trip id repeating the next day, a prediction
# received after the arrival (no outcome), an arrival detected too coarsely
# (no outcome), lead-time buckets (lower bound inclusive), is_last, the
# aggregate, schedule delay and route type in the ML views.
# Env: MBTA_STREAM, DATABASE_URL.
set -u
: "${MBTA_STREAM:?}" "${DATABASE_URL:?}"
S=av_$$_$(date +%s)
fails=0
trap 'psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
q() { psql -qtAX -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1" 2>&1; }
check() { # NAME SQL EXPECTED
    got=$(q "$2")
    [ "$got" = "$3" ] && pass "$1" || fail "$1" "got [$got] expected [$3]"
}

if ! "$MBTA_STREAM" migrate --pg "$DATABASE_URL" --schema "$S" 2>/dev/null; then
    fail migrate "mbta-stream migrate --schema $S failed"
    exit 1
fi
out=$(q "
SELECT $S.ensure_day_partitions('2026-12-04'); SELECT $S.ensure_day_partitions('2026-12-05');
CREATE TEMP TABLE v (id text, trip text, seq int, st text, upd text, topic text, off int, ev text) ON COMMIT DROP;
INSERT INTO $S.vehicle_history (id, trip_id, route_id, stop_id, current_stop_sequence, current_status,
                                 updated_at, service_date, event, kafka_topic, kafka_partition, kafka_offset, received_at)
SELECT id, trip, CASE WHEN id = 'v2' THEN 'Orange' ELSE 'Red' END, CASE WHEN seq IS NULL THEN NULL ELSE 's' || seq END, seq, st,
       upd::timestamptz, (upd::timestamptz AT TIME ZONE 'America/New_York' - interval '3 hours')::date,
       ev, topic, 0, off, coalesce(upd::timestamptz, '2026-12-04 14:05:00-05') + interval '1 second'
  FROM (VALUES
   ('v1','T1',1,'STOPPED_AT',   '2026-12-04 14:00:00-05','tv',0,'reset'),
   ('v1','T1',2,'IN_TRANSIT_TO','2026-12-04 14:00:30-05','tv',1,'update'),
   ('v1','T1',2,'INCOMING_AT',  '2026-12-04 14:01:00-05','tv',2,'update'),
   ('v1','T1',2,'STOPPED_AT',   '2026-12-04 14:01:05-05','tv',3,'update'),
   ('v1','T1',2,'STOPPED_AT',   '2026-12-04 14:01:05-05','tv2',0,'update'),
   ('v1','T1',2,'STOPPED_AT',   '2026-12-04 14:01:35-05','tv',4,'update'),
   ('v1','T1',3,'IN_TRANSIT_TO','2026-12-04 14:01:50-05','tv',5,'update'),
   ('v1','T1',3,'STOPPED_AT',   '2026-12-04 14:03:00-05','tv',6,'update'),
   ('v1',NULL,NULL,NULL,        NULL,                    'tv',7,'remove'),
   ('v1','T2',1,'STOPPED_AT',   '2026-12-04 14:10:00-05','tv',8,'add'),
   ('v2','T3',5,'IN_TRANSIT_TO','2026-12-04 14:00:00-05','tv',9,'update'),
   ('v2','T3',5,'STOPPED_AT',   '2026-12-04 14:05:00-05','tv',10,'update'),
   ('v3','T1',2,'IN_TRANSIT_TO','2026-12-05 14:00:00-05','tv',11,'update'),
   ('v3','T1',2,'STOPPED_AT',   '2026-12-05 14:00:50-05','tv',12,'update')
  ) AS x(id, trip, seq, st, upd, topic, off, ev);
INSERT INTO $S.prediction_history (id, trip_id, route_id, stop_id, stop_sequence, arrival_time, schedule_relationship,
                                    event, kafka_topic, kafka_partition, kafka_offset, received_at)
SELECT id, trip, CASE WHEN trip = 'T3' THEN 'Orange' ELSE 'Red' END, 's' || seq, seq, arr::timestamptz, rel,
       'update', 'tp', 0, off, rx::timestamptz
  FROM (VALUES
   ('p1','T1',2,'2026-12-04 14:01:00-05','2026-12-04 13:58:00-05',0,NULL),
   ('p2','T1',2,'2026-12-04 14:01:15-05','2026-12-04 14:00:05-05',1,NULL),
   ('p3','T1',2,'2026-12-04 14:01:05-05','2026-12-04 14:01:10-05',2,NULL),
   ('p4','T1',3,'2026-12-04 14:02:50-05','2026-12-04 14:02:00-05',3,NULL),
   ('p5','T3',5,'2026-12-04 14:02:00-05','2026-12-04 14:01:00-05',4,NULL),
   ('p6','T1',2,'2026-12-05 14:00:40-05','2026-12-05 13:59:00-05',5,NULL),
   ('p7','T1',3,'2026-12-04 14:02:40-05','2026-12-04 14:02:10-05',6,'SKIPPED')
  ) AS x(id, trip, seq, arr, rx, off, rel);
INSERT INTO $S.schedule_history (id, trip_id, stop_sequence, arrival_time, event, kafka_topic, kafka_partition,
                                  kafka_offset, received_at)
VALUES ('sch-T1-2', 'T1', 2, '2026-12-04 14:00:30-05', 'reset', 'ts', 0, 0, '2026-12-04 13:00:00-05');
INSERT INTO $S.route_history (id, type, event, kafka_topic, kafka_partition, kafka_offset, received_at)
VALUES ('Red', 1, 'reset', 'tr', 0, 0, '2026-12-04 13:00:00-05');
" 2>&1 >/dev/null)
[ -z "$out" ] || fail setup "$out"

ts() { printf "coalesce(to_char(%s AT TIME ZONE 'America/New_York', 'HH24:MI:SS'), '-')" "$1"; }
check actual_arrivals \
    "SELECT string_agg(concat_ws('|', vehicle_id, trip_id, stop_sequence, $(ts arrived_at), coalesce(arrival_gap_s::text, '-'),
                                 $(ts first_stopped_at), $(ts last_stopped_at), $(ts departed_at),
                                 coalesce(departure_gap_s::text, '-'), coalesce(dwell_s::text, '-'), service_date),
                       ' ' ORDER BY vehicle_id, first_stopped_at) FROM $S.actual_arrivals" \
    "v1|T1|1|-|-|14:00:00|14:00:00|14:00:30|30|-|2026-12-04 v1|T1|2|14:01:05|5|14:01:05|14:01:35|14:01:50|15|45|2026-12-04 v1|T1|3|14:03:00|70|14:03:00|14:03:00|-|-|-|2026-12-04 v1|T2|1|-|-|14:10:00|14:10:00|-|-|-|2026-12-04 v2|T3|5|14:05:00|300|14:05:00|14:05:00|-|-|-|2026-12-04 v3|T1|2|14:00:50|50|14:00:50|14:00:50|-|-|-|2026-12-05"
check prediction_outcomes \
    "SELECT string_agg(concat_ws('|', prediction_id, error_s, lead_time_s, actual_lead_s, lead_bucket, lead_bucket_no, is_last,
                                 arrived_vehicle_id), ' ' ORDER BY prediction_id) FROM $S.prediction_outcomes" \
    "p1|5|180|185|3-5|3|f|v1 p2|-10|70|60|1-3|2|t|v1 p4|10|50|60|0-1|1|t|v1 p6|10|100|110|1-3|2|t|v3"
check error_by_route \
    "SELECT string_agg(concat_ws('|', route_id, lead_bucket, n, mean_error_s, mean_abs_error_s, p50_abs_error_s,
                                 p90_abs_error_s, n_last, coalesce(mean_abs_error_last_s::text, '-')), ' '
                       ORDER BY route_id, lead_bucket_no) FROM $S.prediction_error_by_route" \
    "Red|0-1|1|10|10|10|10|1|10 Red|1-3|2|0|10|10|10|2|10 Red|3-5|1|5|5|5|5|0|-"
check ml_prediction_features \
    "SELECT string_agg(concat_ws('|', prediction_id, coalesce(route_type::text, '-'), coalesce(schedule_delay_s::text, '-'),
                                 coalesce(error_s::text, '-'), service_date, local_hour, local_dow), ' ' ORDER BY prediction_id)
       FROM $S.ml_prediction_features" \
    "p1|1|30|5|2026-12-04|13|5 p2|1|45|-10|2026-12-04|14|5 p3|1|35|-|2026-12-04|14|5 p4|1|-|10|2026-12-04|14|5 p5|-|-|-|2026-12-04|14|5 p6|1|-|10|2026-12-05|13|6 p7|1|-|-|2026-12-04|14|5"
check ml_vehicle_features \
    "SELECT count(*) || '|' || count(*) FILTER (WHERE route_type = 1) || '|' || count(*) FILTER (WHERE route_type IS NULL)
       FROM $S.ml_vehicle_features" \
    "13|11|2"
exit $((fails > 0))
