-- Up Migration
CREATE TABLE links (
  code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{3,64}$'),
  url         text NOT NULL CHECK (length(url) <= 2048),
  clicks      bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX links_created_at ON links (created_at DESC, code);

-- Down Migration
DROP TABLE links;
