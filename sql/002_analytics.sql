-- 002_analytics: derived views over the history tables of 001 (issue 7;
-- every column is described in docs/FEATURES.md).
--
-- Views, not tables: they are a pure function of the history rows, so a
-- replay of the same topics into an empty schema gives identical results,
-- and there is nothing to refresh or to keep in step with retention. No
-- value here depends on now(), ingested_at or the order rows were loaded
-- in: every ordering ends on the Kafka coordinates as a tie-break.
--
--   route_types               the GTFS type of each route seen
--   prediction_schedule_delay each prediction event against its schedule
--   actual_arrivals           stop visits (arrival, departure) detected from
--                             each vehicle's status transitions
--   prediction_outcomes       each prediction event joined to the arrival it
--                             predicted: error and lead time
--   prediction_error_by_route error by route and lead-time bucket
--   ml_vehicle_features       one typed row per vehicle event
--   ml_prediction_features    one typed row per prediction event, with its
--                             outcome as the label when known

-- The type of every route seen on any stream: its latest version (route
-- types do not change in practice; the latest is still well defined).
CREATE OR REPLACE VIEW ${schema}.route_types AS
SELECT DISTINCT ON (id) id AS route_id, type AS route_type
  FROM ${schema}.route_history
 WHERE type IS NOT NULL
 ORDER BY id, received_at DESC, kafka_topic DESC, kafka_partition DESC, kafka_offset DESC;

-- The schedule of each prediction event: its schedule relationship when the
-- prediction has one, else the same trip and stop sequence; the schedule
-- version received last at or before the prediction, else the first one
-- received after it (schedules and predictions come on different streams,
-- so either may arrive first). Trip ids repeat every service day: only a
-- schedule within 12 hours of the prediction counts.
CREATE OR REPLACE VIEW ${schema}.prediction_schedule_delay AS
SELECT DISTINCT ON (p.kafka_topic, p.kafka_partition, p.kafka_offset)
       p.kafka_topic, p.kafka_partition, p.kafka_offset,
       p.id AS prediction_id,
       s.id AS schedule_id,
       coalesce(s.arrival_time, s.departure_time) AS scheduled_time,
       extract(epoch FROM coalesce(p.arrival_time, p.departure_time)
                          - coalesce(s.arrival_time, s.departure_time))::double precision
           AS schedule_delay_s
  FROM ${schema}.prediction_history p
  JOIN ${schema}.schedule_history s
    ON s.trip_id = p.trip_id AND s.stop_sequence = p.stop_sequence
   AND (p.schedule_id IS NULL OR s.id = p.schedule_id)
 WHERE p.event <> 'remove' AND s.event <> 'remove'
   AND coalesce(p.arrival_time, p.departure_time) IS NOT NULL
   AND coalesce(s.arrival_time, s.departure_time) IS NOT NULL
   AND s.received_at BETWEEN p.received_at - interval '12 hours' AND p.received_at + interval '12 hours'
 ORDER BY p.kafka_topic, p.kafka_partition, p.kafka_offset,
          (s.received_at <= p.received_at) DESC,
          CASE WHEN s.received_at <= p.received_at THEN -extract(epoch FROM s.received_at)
               ELSE extract(epoch FROM s.received_at) END,
          s.kafka_topic, s.kafka_partition, s.kafka_offset;

-- Stop visits from each vehicle's reports. One report per (vehicle,
-- updated_at) (the same report may come on several streams: the first
-- received wins), in updated_at order. A segment is a run of reports with
-- the same trip, stop sequence and "STOPPED_AT or not"; every STOPPED_AT
-- segment is a visit. Its arrival is the first STOPPED_AT report, known
-- only when the report before it belongs to the same trip (else the
-- vehicle was first seen already there: arrived_at NULL); its departure is
-- the first report of the next segment of the same trip (NULL when the trip
-- ended or the vehicle is still there). arrival_gap_s says how precise the
-- arrival is: the arrival happened in (arrived_at - arrival_gap_s, arrived_at].
CREATE OR REPLACE VIEW ${schema}.actual_arrivals AS
WITH pos AS (
    SELECT DISTINCT ON (id, updated_at)
           id, trip_id, route_id, stop_id, current_stop_sequence AS seq, direction_id,
           current_status = 'STOPPED_AT' AS stopped, updated_at, service_date
      FROM ${schema}.vehicle_history
     WHERE event <> 'remove' AND updated_at IS NOT NULL AND trip_id IS NOT NULL
       AND current_stop_sequence IS NOT NULL AND current_status IS NOT NULL
     ORDER BY id, updated_at, received_at, kafka_topic, kafka_partition, kafka_offset
), lagged AS (
    SELECT *,
           lag(trip_id) OVER w AS prev_trip,
           lag(seq) OVER w AS prev_seq,
           lag(stopped) OVER w AS prev_stopped,
           lag(updated_at) OVER w AS prev_at
      FROM pos
    WINDOW w AS (PARTITION BY id ORDER BY updated_at)
), starts AS (
    SELECT *,
           lead(updated_at) OVER w AS next_at,
           lead(trip_id) OVER w AS next_trip,
           lead(prev_at) OVER w AS last_at
      FROM lagged
     WHERE prev_at IS NULL OR prev_trip <> trip_id OR prev_seq <> seq OR prev_stopped <> stopped
    WINDOW w AS (PARTITION BY id ORDER BY updated_at)
)
SELECT id AS vehicle_id, trip_id, route_id, stop_id, seq AS stop_sequence, direction_id,
       service_date,
       CASE WHEN prev_trip = trip_id THEN updated_at END AS arrived_at,
       CASE WHEN prev_trip = trip_id
            THEN extract(epoch FROM updated_at - prev_at)::double precision END AS arrival_gap_s,
       updated_at AS first_stopped_at,
       coalesce(last_at, (SELECT max(p.updated_at) FROM pos p
                           WHERE p.id = starts.id AND p.updated_at >= starts.updated_at))
           AS last_stopped_at,
       CASE WHEN next_trip = trip_id THEN next_at END AS departed_at,
       CASE WHEN next_trip = trip_id
            THEN extract(epoch FROM next_at - last_at)::double precision END AS departure_gap_s,
       CASE WHEN next_trip = trip_id AND prev_trip = trip_id
            THEN extract(epoch FROM next_at - updated_at)::double precision END AS dwell_s
  FROM starts
 WHERE stopped;

-- Every prediction event with an arrival time, joined to the first actual
-- arrival of its trip and stop sequence after it was received (within 12
-- hours: trip ids repeat daily). Only arrivals detected to within 120 s
-- (arrival_gap_s) count, so a gap in the vehicle's reports does not pass for
-- a prediction error.
CREATE OR REPLACE VIEW ${schema}.prediction_outcomes AS
WITH o AS (
    SELECT DISTINCT ON (p.kafka_topic, p.kafka_partition, p.kafka_offset)
           p.id AS prediction_id, p.trip_id, p.stop_id, p.stop_sequence, p.route_id,
           p.direction_id, p.vehicle_id, a.vehicle_id AS arrived_vehicle_id,
           p.received_at AS predicted_at, p.arrival_time AS predicted_arrival,
           a.arrived_at AS actual_arrival, a.arrival_gap_s,
           p.kafka_topic, p.kafka_partition, p.kafka_offset
      FROM ${schema}.prediction_history p
      JOIN ${schema}.actual_arrivals a
        ON a.trip_id = p.trip_id AND a.stop_sequence = p.stop_sequence
     WHERE p.event <> 'remove' AND p.arrival_time IS NOT NULL
       AND p.schedule_relationship IS DISTINCT FROM 'CANCELLED'
       AND p.schedule_relationship IS DISTINCT FROM 'SKIPPED'
       AND a.arrived_at IS NOT NULL AND a.arrival_gap_s <= 120
       AND a.arrived_at >= p.received_at AND a.arrived_at < p.received_at + interval '12 hours'
     ORDER BY p.kafka_topic, p.kafka_partition, p.kafka_offset, a.arrived_at, a.vehicle_id
), e AS (
    SELECT *,
           extract(epoch FROM actual_arrival - predicted_arrival)::double precision AS error_s,
           extract(epoch FROM predicted_arrival - predicted_at)::double precision AS lead_time_s,
           extract(epoch FROM actual_arrival - predicted_at)::double precision AS actual_lead_s,
           row_number() OVER (PARTITION BY trip_id, stop_sequence, actual_arrival
                              ORDER BY predicted_at DESC, kafka_topic DESC,
                                       kafka_partition DESC, kafka_offset DESC) = 1 AS is_last
      FROM o
)
SELECT prediction_id, trip_id, stop_id, stop_sequence, route_id, direction_id, vehicle_id,
       arrived_vehicle_id, predicted_at, predicted_arrival, actual_arrival, error_s,
       abs(error_s) AS abs_error_s, lead_time_s, actual_lead_s,
       CASE WHEN lead_time_s < 60 THEN '0-1'
            WHEN lead_time_s < 180 THEN '1-3'
            WHEN lead_time_s < 300 THEN '3-5'
            WHEN lead_time_s < 600 THEN '5-10'
            WHEN lead_time_s < 1200 THEN '10-20'
            ELSE '20+' END AS lead_bucket,
       (CASE WHEN lead_time_s < 60 THEN 1
             WHEN lead_time_s < 180 THEN 2
             WHEN lead_time_s < 300 THEN 3
             WHEN lead_time_s < 600 THEN 4
             WHEN lead_time_s < 1200 THEN 5
             ELSE 6 END)::smallint AS lead_bucket_no,
       is_last, arrival_gap_s, kafka_topic, kafka_partition, kafka_offset
  FROM e;

-- Error by route and lead-time bucket. Means over numeric so that the
-- result does not depend on the order rows are summed in.
CREATE OR REPLACE VIEW ${schema}.prediction_error_by_route AS
SELECT route_id, lead_bucket, lead_bucket_no,
       count(*) AS n,
       avg(error_s::numeric)::double precision AS mean_error_s,
       avg(abs_error_s::numeric)::double precision AS mean_abs_error_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY error_s) AS p50_error_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY abs_error_s) AS p50_abs_error_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY abs_error_s) AS p90_abs_error_s,
       count(*) FILTER (WHERE is_last) AS n_last,
       avg(abs_error_s::numeric) FILTER (WHERE is_last)::double precision AS mean_abs_error_last_s
  FROM ${schema}.prediction_outcomes
 GROUP BY route_id, lead_bucket, lead_bucket_no;

-- One row per vehicle event (removes aside): typed features, no raw jsonb.
CREATE OR REPLACE VIEW ${schema}.ml_vehicle_features AS
SELECT v.id AS vehicle_id, v.trip_id, v.route_id,
       coalesce(v.route_type, rt.route_type) AS route_type,
       v.direction_id, v.stop_id, v.current_stop_sequence, v.current_status,
       v.latitude, v.longitude, v.bearing,
       v.speed AS reported_speed_mps, v.implied_speed_mps, v.prev_gap_s, v.prev_distance_m,
       v.ingest_lag_ms, v.occupancy_status, v.revenue,
       v.updated_at, v.received_at, v.service_date, v.local_hour, v.local_dow,
       v.event, v.kafka_topic, v.kafka_partition, v.kafka_offset
  FROM ${schema}.vehicle_history v
  LEFT JOIN ${schema}.route_types rt ON rt.route_id = v.route_id
 WHERE v.event <> 'remove';

-- One row per prediction event (removes aside); the outcome columns are the
-- label, NULL until the predicted arrival has been detected.
CREATE OR REPLACE VIEW ${schema}.ml_prediction_features AS
SELECT p.id AS prediction_id, p.trip_id, p.route_id, rt.route_type, p.stop_id, p.stop_sequence,
       p.direction_id, p.vehicle_id,
       p.received_at AS predicted_at, p.arrival_time AS predicted_arrival,
       p.departure_time AS predicted_departure,
       p.arrival_uncertainty, p.departure_uncertainty,
       p.schedule_relationship, p.update_type, p.status, p.revenue,
       p.lead_time_s, p.drift_s,
       coalesce(p.schedule_delay_s, sd.schedule_delay_s) AS schedule_delay_s,
       sd.scheduled_time,
       ((p.received_at AT TIME ZONE 'America/New_York') - interval '3 hours')::date AS service_date,
       extract(hour FROM p.received_at AT TIME ZONE 'America/New_York')::smallint AS local_hour,
       extract(dow FROM p.received_at AT TIME ZONE 'America/New_York')::smallint AS local_dow,
       o.actual_arrival, o.error_s, o.actual_lead_s, o.is_last,
       p.event, p.kafka_topic, p.kafka_partition, p.kafka_offset
  FROM ${schema}.prediction_history p
  LEFT JOIN ${schema}.route_types rt ON rt.route_id = p.route_id
  LEFT JOIN ${schema}.prediction_schedule_delay sd
    ON sd.kafka_topic = p.kafka_topic AND sd.kafka_partition = p.kafka_partition
   AND sd.kafka_offset = p.kafka_offset
  LEFT JOIN ${schema}.prediction_outcomes o
    ON o.kafka_topic = p.kafka_topic AND o.kafka_partition = p.kafka_partition
   AND o.kafka_offset = p.kafka_offset
 WHERE p.event <> 'remove';

-- The joins above look up the same trip and stop sequence.
CREATE INDEX IF NOT EXISTS prediction_history_trip_seq
    ON ${schema}.prediction_history (trip_id, stop_sequence);
CREATE INDEX IF NOT EXISTS schedule_history_trip_seq
    ON ${schema}.schedule_history (trip_id, stop_sequence);
