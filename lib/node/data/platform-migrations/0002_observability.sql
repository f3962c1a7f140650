-- Up Migration
-- Errors: every uncaught exception and every 5xx, grouped by fingerprint (function, error name, message with
-- the variable parts taken out, top source-mapped frame). A group keeps its count and first/last seen; its
-- latest events keep the request id and the source-mapped stack. Old events and groups are pruned by the
-- collector's platform job (WORKYARD_ERROR_RETENTION_DAYS).
CREATE TABLE workyard.error_groups (
  fingerprint    text PRIMARY KEY,
  function_name  text NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('exception', 'logged', '5xx')),
  name           text NOT NULL,
  message        text NOT NULL,
  location       text,
  count          bigint NOT NULL,
  first_seen     timestamptz NOT NULL,
  last_seen      timestamptz NOT NULL
);
CREATE INDEX error_groups_recent ON workyard.error_groups (last_seen DESC);

CREATE TABLE workyard.error_events (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  fingerprint    text NOT NULL REFERENCES workyard.error_groups ON DELETE CASCADE,
  occurred_at    timestamptz NOT NULL,
  function_name  text NOT NULL,
  request_id     text,
  method         text,
  path           text,
  status         integer,
  cron           text,
  message        text NOT NULL,
  stack          text
);
CREATE INDEX error_events_by_group ON workyard.error_events (fingerprint, occurred_at DESC);
CREATE INDEX error_events_by_time ON workyard.error_events (occurred_at);

-- Usage: requests per function per minute, added to by each node's collector, rolled into hours by the
-- collector's platform job once an hour is complete; days are a view over the hours.
CREATE TABLE workyard.usage_minutes (
  bucket         timestamptz NOT NULL,
  function_name  text NOT NULL,
  requests       bigint NOT NULL,
  errors         bigint NOT NULL,
  duration_ms    bigint NOT NULL,
  PRIMARY KEY (bucket, function_name)
);
CREATE TABLE workyard.usage_hourly (
  hour           timestamptz NOT NULL,
  function_name  text NOT NULL,
  requests       bigint NOT NULL,
  errors         bigint NOT NULL,
  duration_ms    bigint NOT NULL,
  PRIMARY KEY (hour, function_name)
);
CREATE VIEW workyard.usage_daily AS
  SELECT date_trunc('day', hour, 'UTC') AS day, function_name,
         sum(requests)::bigint AS requests, sum(errors)::bigint AS errors, sum(duration_ms)::bigint AS duration_ms
  FROM workyard.usage_hourly GROUP BY 1, 2;

-- Down Migration
DROP VIEW workyard.usage_daily;
DROP TABLE workyard.usage_hourly;
DROP TABLE workyard.usage_minutes;
DROP TABLE workyard.error_events;
DROP TABLE workyard.error_groups;
