-- Up Migration
-- Every scheduled run: one row per function, cron and fire time (the unique index is what makes a fire
-- time run once even with several schedulers on one database); manual runs are not deduplicated.
CREATE TABLE workyard.cron_runs (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  function_name  text NOT NULL,
  cron           text NOT NULL,
  scheduled_at   timestamptz NOT NULL,
  trigger        text NOT NULL CHECK (trigger IN ('schedule', 'catch-up', 'manual')),
  node           text NOT NULL,
  status         text NOT NULL CHECK (status IN ('running', 'ok', 'exception', 'skipped', 'error')),
  started_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz,
  error          text
);
CREATE UNIQUE INDEX cron_runs_once ON workyard.cron_runs (function_name, cron, scheduled_at) WHERE trigger <> 'manual';
CREATE INDEX cron_runs_recent ON workyard.cron_runs (function_name, cron, started_at DESC);

-- Down Migration
DROP TABLE workyard.cron_runs;
