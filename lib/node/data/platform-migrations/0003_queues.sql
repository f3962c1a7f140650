-- Up Migration
-- Queue messages (lib/node/queues): a row per message from the moment send() is acknowledged until the message is
-- acked, dropped after its last retry, or purged. A message moved to a dead-letter queue is the same row with
-- another queue (failed_queue says where it failed).
--   ready:     visible_at <= now()   (a lease that ran out makes a message ready again)
--   in flight: lease IS NOT NULL AND visible_at > now()   (visible_at is then the lease's end)
--   delayed:   lease IS NULL AND visible_at > now()
CREATE TABLE workyard.queue_messages (
  id             uuid PRIMARY KEY,
  queue          text NOT NULL,
  body           bytea NOT NULL,
  content_type   text NOT NULL CHECK (content_type IN ('json', 'text', 'bytes', 'v8')),
  attempts       integer NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  visible_at     timestamptz NOT NULL DEFAULT now(),
  lease          uuid,
  failed_queue   text,
  failed_reason  text
);
CREATE INDEX queue_messages_ready ON workyard.queue_messages (queue, visible_at);
-- A delivery's messages (giving them back), and dead letters (npm run queues, /metrics).
CREATE INDEX queue_messages_lease ON workyard.queue_messages (lease) WHERE lease IS NOT NULL;
CREATE INDEX queue_messages_dead ON workyard.queue_messages (queue) WHERE failed_queue IS NOT NULL;

-- A consumer an operator paused (npm run queues -- pause <queue>): its messages wait.
CREATE TABLE workyard.queue_paused (
  queue      text PRIMARY KEY,
  paused_at  timestamptz NOT NULL DEFAULT now()
);

-- What happened to messages, per queue and minute: throughput for npm run queues, /metrics and the dashboard.
CREATE TABLE workyard.queue_counts (
  queue    text NOT NULL,
  minute   timestamptz NOT NULL,
  sent     bigint NOT NULL DEFAULT 0,
  acked    bigint NOT NULL DEFAULT 0,
  retried  bigint NOT NULL DEFAULT 0,
  dead     bigint NOT NULL DEFAULT 0,
  dropped  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, minute)
);
CREATE INDEX queue_counts_minute ON workyard.queue_counts (minute);

-- Down Migration
DROP TABLE workyard.queue_counts;
DROP TABLE workyard.queue_paused;
DROP TABLE workyard.queue_messages;
