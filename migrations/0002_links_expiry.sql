-- Up Migration
ALTER TABLE links ADD COLUMN expires_at timestamptz;
CREATE INDEX links_expires_at ON links (expires_at) WHERE expires_at IS NOT NULL;

-- Down Migration
DROP INDEX links_expires_at;
ALTER TABLE links DROP COLUMN expires_at;
