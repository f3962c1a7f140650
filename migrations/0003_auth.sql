-- Up Migration
-- Accounts of the auth function. Emails are stored lower-cased; the password hash is a PHC-style scrypt string.
CREATE TABLE auth_users (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email          text NOT NULL UNIQUE CHECK (length(email) <= 254 AND email = lower(email)),
  password_hash  text NOT NULL,
  role           text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens, stored as SHA-256 hashes (the token itself is never stored). Each login starts a family;
-- a refresh rotates the token within its family. Presenting a rotated token again revokes the whole family.
CREATE TABLE auth_refresh_tokens (
  token_hash      text PRIMARY KEY,
  user_id         uuid NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  family          uuid NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  revoked_at      timestamptz,
  revoked_reason  text CHECK (revoked_reason IN ('rotated', 'logout', 'reuse'))
);
CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens (family);
CREATE INDEX auth_refresh_tokens_user ON auth_refresh_tokens (user_id);
CREATE INDEX auth_refresh_tokens_expires ON auth_refresh_tokens (expires_at);

-- API keys for machine clients, one function each, made with `npm run apikey`. Only a SHA-256 hash is kept.
CREATE TABLE auth_api_keys (
  id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{12}$'),
  key_hash      text NOT NULL,
  function      text NOT NULL,
  name          text NOT NULL,
  role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz
);

-- Who created a link: "user:<uuid>" or "key:<id>" (null for links made before sign-in was required).
ALTER TABLE links ADD COLUMN owner text;

-- Down Migration
ALTER TABLE links DROP COLUMN owner;
DROP TABLE auth_api_keys;
DROP TABLE auth_refresh_tokens;
DROP TABLE auth_users;
