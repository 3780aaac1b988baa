-- 001_schema: the whole first schema of mbta-stream (see docs/SCHEMA.md).
-- Applied by `mbta-stream migrate` (and `consume` at start) in one
-- transaction, with ${schema} replaced by the quoted schema name.
--
-- Per known type: a current table (one row per entity, upserted; deleted on
-- remove and by the reset-end sweep) and a history table (one row per Kafka
-- message, append-only, range-partitioned by received_at in UTC days; the
-- consumer creates day partitions on demand with ensure_day_partitions(),
-- retention is drop_day_partitions_before()). The typed columns are the
-- descriptors of src/mbta/resource.c, in the same order. Current tables
-- leave 20% of each page free so that an update can stay on its page (HOT:
-- no index update). Enrichment columns
-- (issue 7) are nullable and computed by the consumer (src/mbta/enrich.c).

CREATE TABLE IF NOT EXISTS ${schema}.offsets (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE ${schema}.offsets IS 'exactly-once state: the next Kafka offset to load per topic partition, written in the same transaction as the rows';

CREATE TABLE IF NOT EXISTS ${schema}.dead_letters (
    dead_letter_id bigserial PRIMARY KEY,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    key text,
    headers jsonb,
    raw bytea,
    reason text NOT NULL,
    received_at timestamptz,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);

CREATE TABLE IF NOT EXISTS ${schema}.vehicles (
    id text PRIMARY KEY,
    bearing smallint,
    current_status text,
    current_stop_sequence integer,
    direction_id smallint,
    label text,
    latitude double precision,
    longitude double precision,
    speed double precision,
    updated_at timestamptz,
    occupancy_status text,
    carriages jsonb,
    revenue text,
    trip_id text,
    stop_id text,
    route_id text,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS vehicles_stream_partition ON ${schema}.vehicles (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.vehicle_history (
    id text NOT NULL,
    bearing smallint,
    current_status text,
    current_stop_sequence integer,
    direction_id smallint,
    label text,
    latitude double precision,
    longitude double precision,
    speed double precision,
    updated_at timestamptz,
    occupancy_status text,
    carriages jsonb,
    revenue text,
    trip_id text,
    stop_id text,
    route_id text,
    ingest_lag_ms bigint,
    prev_gap_s double precision,
    prev_distance_m double precision,
    implied_speed_mps double precision,
    service_date date,
    local_hour smallint,
    local_dow smallint,
    route_type smallint,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS vehicle_history_id ON ${schema}.vehicle_history (id, received_at);

COMMENT ON COLUMN ${schema}.vehicle_history.ingest_lag_ms IS 'received_at - updated_at, milliseconds';
COMMENT ON COLUMN ${schema}.vehicle_history.prev_gap_s IS 'seconds since the same vehicle''s previous position (updated_at)';
COMMENT ON COLUMN ${schema}.vehicle_history.prev_distance_m IS 'great-circle metres from that previous position';
COMMENT ON COLUMN ${schema}.vehicle_history.implied_speed_mps IS 'prev_distance_m / prev_gap_s';
COMMENT ON COLUMN ${schema}.vehicle_history.service_date IS 'MBTA service date (America/New_York, the day ends at 03:00)';
COMMENT ON COLUMN ${schema}.vehicle_history.local_hour IS 'hour of updated_at in America/New_York, 0-23';
COMMENT ON COLUMN ${schema}.vehicle_history.local_dow IS 'day of week of updated_at in America/New_York, 0 = Sunday';
COMMENT ON COLUMN ${schema}.vehicle_history.route_type IS 'GTFS route type of the vehicle''s route, when the route is known';

CREATE TABLE IF NOT EXISTS ${schema}.predictions (
    id text PRIMARY KEY,
    arrival_time timestamptz,
    departure_time timestamptz,
    arrival_uncertainty integer,
    departure_uncertainty integer,
    direction_id smallint,
    last_trip boolean,
    schedule_relationship text,
    status text,
    stop_sequence integer,
    revenue text,
    update_type text,
    stop_id text,
    route_id text,
    trip_id text,
    vehicle_id text,
    schedule_id text,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS predictions_stream_partition ON ${schema}.predictions (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.prediction_history (
    id text NOT NULL,
    arrival_time timestamptz,
    departure_time timestamptz,
    arrival_uncertainty integer,
    departure_uncertainty integer,
    direction_id smallint,
    last_trip boolean,
    schedule_relationship text,
    status text,
    stop_sequence integer,
    revenue text,
    update_type text,
    stop_id text,
    route_id text,
    trip_id text,
    vehicle_id text,
    schedule_id text,
    lead_time_s double precision,
    drift_s double precision,
    schedule_delay_s double precision,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS prediction_history_id ON ${schema}.prediction_history (id, received_at);

COMMENT ON COLUMN ${schema}.prediction_history.lead_time_s IS 'predicted time (arrival, else departure) - received_at';
COMMENT ON COLUMN ${schema}.prediction_history.drift_s IS 'predicted time - the same prediction''s previous predicted time';
COMMENT ON COLUMN ${schema}.prediction_history.schedule_delay_s IS 'predicted time - scheduled time, when the schedule is known';

CREATE TABLE IF NOT EXISTS ${schema}.alerts (
    id text PRIMARY KEY,
    header text,
    short_header text,
    description text,
    effect text,
    cause text,
    severity smallint,
    created_at timestamptz,
    updated_at timestamptz,
    active_period jsonb,
    informed_entity jsonb,
    service_effect text,
    timeframe text,
    lifecycle text,
    banner text,
    url text,
    image text,
    image_alternative_text text,
    duration_certainty text,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS alerts_stream_partition ON ${schema}.alerts (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.alert_history (
    id text NOT NULL,
    header text,
    short_header text,
    description text,
    effect text,
    cause text,
    severity smallint,
    created_at timestamptz,
    updated_at timestamptz,
    active_period jsonb,
    informed_entity jsonb,
    service_effect text,
    timeframe text,
    lifecycle text,
    banner text,
    url text,
    image text,
    image_alternative_text text,
    duration_certainty text,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS alert_history_id ON ${schema}.alert_history (id, received_at);

CREATE TABLE IF NOT EXISTS ${schema}.trips (
    id text PRIMARY KEY,
    name text,
    headsign text,
    direction_id smallint,
    wheelchair_accessible smallint,
    block_id text,
    bikes_allowed smallint,
    revenue text,
    route_id text,
    shape_id text,
    service_id text,
    route_pattern_id text,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS trips_stream_partition ON ${schema}.trips (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.trip_history (
    id text NOT NULL,
    name text,
    headsign text,
    direction_id smallint,
    wheelchair_accessible smallint,
    block_id text,
    bikes_allowed smallint,
    revenue text,
    route_id text,
    shape_id text,
    service_id text,
    route_pattern_id text,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS trip_history_id ON ${schema}.trip_history (id, received_at);

CREATE TABLE IF NOT EXISTS ${schema}.stops (
    id text PRIMARY KEY,
    name text,
    description text,
    address text,
    platform_code text,
    platform_name text,
    latitude double precision,
    longitude double precision,
    wheelchair_boarding smallint,
    location_type smallint,
    municipality text,
    on_street text,
    at_street text,
    vehicle_type smallint,
    parent_station_id text,
    zone_id text,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS stops_stream_partition ON ${schema}.stops (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.stop_history (
    id text NOT NULL,
    name text,
    description text,
    address text,
    platform_code text,
    platform_name text,
    latitude double precision,
    longitude double precision,
    wheelchair_boarding smallint,
    location_type smallint,
    municipality text,
    on_street text,
    at_street text,
    vehicle_type smallint,
    parent_station_id text,
    zone_id text,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS stop_history_id ON ${schema}.stop_history (id, received_at);

CREATE TABLE IF NOT EXISTS ${schema}.routes (
    id text PRIMARY KEY,
    description text,
    fare_class text,
    short_name text,
    long_name text,
    sort_order integer,
    type smallint,
    color text,
    text_color text,
    direction_names jsonb,
    direction_destinations jsonb,
    listed_route boolean,
    line_id text,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS routes_stream_partition ON ${schema}.routes (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.route_history (
    id text NOT NULL,
    description text,
    fare_class text,
    short_name text,
    long_name text,
    sort_order integer,
    type smallint,
    color text,
    text_color text,
    direction_names jsonb,
    direction_destinations jsonb,
    listed_route boolean,
    line_id text,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS route_history_id ON ${schema}.route_history (id, received_at);

CREATE TABLE IF NOT EXISTS ${schema}.schedules (
    id text PRIMARY KEY,
    arrival_time timestamptz,
    departure_time timestamptz,
    stop_sequence integer,
    pickup_type smallint,
    drop_off_type smallint,
    timepoint boolean,
    direction_id smallint,
    stop_headsign text,
    stop_id text,
    trip_id text,
    route_id text,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS schedules_stream_partition ON ${schema}.schedules (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.schedule_history (
    id text NOT NULL,
    arrival_time timestamptz,
    departure_time timestamptz,
    stop_sequence integer,
    pickup_type smallint,
    drop_off_type smallint,
    timepoint boolean,
    direction_id smallint,
    stop_headsign text,
    stop_id text,
    trip_id text,
    route_id text,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS schedule_history_id ON ${schema}.schedule_history (id, received_at);

CREATE TABLE IF NOT EXISTS ${schema}.resources (
    type text NOT NULL,
    id text NOT NULL,
    raw jsonb NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, id)
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS resources_stream_partition ON ${schema}.resources (stream, kafka_partition);

CREATE TABLE IF NOT EXISTS ${schema}.resource_history (
    type text NOT NULL,
    id text NOT NULL,
    raw jsonb,
    event text NOT NULL,
    stream text,
    generation bigint,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS resource_history_id ON ${schema}.resource_history (type, id, received_at);

-- The day partitions (UTC days) of every history table, named
-- <table>_pYYYYMMDD. Serialized by an advisory lock so that two consumers
-- creating the same day do not collide.
CREATE OR REPLACE FUNCTION ${schema}.ensure_day_partitions(day date) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    s text := '${schema}';
    t text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(s || ' day partitions'));
    FOREACH t IN ARRAY ARRAY['vehicle_history', 'prediction_history', 'alert_history', 'trip_history', 'stop_history', 'route_history', 'schedule_history', 'resource_history'] LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS %s.%I PARTITION OF %s.%I FOR VALUES FROM (%L) TO (%L)',
                       s, t || '_p' || to_char(day, 'YYYYMMDD'), s, t,
                       day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
    END LOOP;
END
$fn$;

-- Retention: drops every day partition of every history table before `day`
-- (UTC); returns how many tables were dropped.
CREATE OR REPLACE FUNCTION ${schema}.drop_day_partitions_before(day date) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    s text := '${schema}';
    r record;
    n integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(s || ' day partitions'));
    FOR r IN SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
               JOIN pg_namespace ns ON ns.oid = p.relnamespace
              WHERE '"' || replace(ns.nspname, '"', '""') || '"' = s
                AND p.relname = ANY (ARRAY['vehicle_history', 'prediction_history', 'alert_history', 'trip_history', 'stop_history', 'route_history', 'schedule_history', 'resource_history'])
                AND c.relname ~ '_p[0-9]{8}$'
                AND to_date(right(c.relname, 8), 'YYYYMMDD') < day LOOP
        EXECUTE format('DROP TABLE %s.%I', s, r.relname);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$fn$;

-- The reset-end sweep (docs/CONTRACT.md): after the marker of `generation`
-- on partition `kpartition` of `ktopic`, the current rows of that stream and
-- partition with another generation vanished at the source. Returns how many
-- rows went.
CREATE OR REPLACE FUNCTION ${schema}.reset_sweep(ktopic text, kstream text, kpartition integer,
                                                 kgeneration bigint) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    s text := '${schema}';
    t text;
    n bigint;
    total bigint := 0;
BEGIN
    FOREACH t IN ARRAY ARRAY['vehicles', 'predictions', 'alerts', 'trips', 'stops', 'routes',
                             'schedules', 'resources'] LOOP
        EXECUTE format('DELETE FROM %s.%I WHERE stream = $1 AND kafka_partition = $2'
                       ' AND kafka_topic = $3 AND generation IS DISTINCT FROM $4', s, t)
            USING kstream, kpartition, ktopic, kgeneration;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END
$fn$;
