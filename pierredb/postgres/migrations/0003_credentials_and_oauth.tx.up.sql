-- Credentials (API keys, admin tokens, A2A clients) and OAuth data get their Go
-- API. Twin of pierredb/sqlite/migrations/0003_credentials_and_oauth.tx.up.sql
-- (which rebuilds two tables that PostgreSQL alters in place).

-- api_keys: a 'week' period; rate_limit_requests NULL means unlimited (the
-- enterprise tier); revoked_at marks a key revoked for good.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_rate_limit_period_check;
--bun:split
ALTER TABLE api_keys ADD CONSTRAINT api_keys_rate_limit_period_check
    CHECK (rate_limit_period IN ('hour', 'day', 'week', 'month'));
--bun:split
ALTER TABLE api_keys ALTER COLUMN rate_limit_requests DROP NOT NULL;
--bun:split
ALTER TABLE api_keys ALTER COLUMN rate_limit_requests DROP DEFAULT;
--bun:split
ALTER TABLE api_keys ADD COLUMN revoked_at TIMESTAMPTZ;
--bun:split
-- A tenant's keys (all, or active ones) and a user's keys, oldest first.
CREATE INDEX idx_api_keys_tenant_created ON api_keys (tenant_id, created_at, id);
--bun:split
CREATE INDEX idx_api_keys_tenant_active ON api_keys (tenant_id, is_active, created_at, id);
--bun:split
CREATE INDEX idx_api_keys_tenant_user ON api_keys (tenant_id, user_id, created_at, id);
--bun:split

-- a2a_clients: client_id is the key column (as in the reference schema), the
-- public key becomes optional, and the agent's version, documentation and last
-- use are kept.
ALTER TABLE a2a_clients RENAME COLUMN id TO client_id;
--bun:split
ALTER TABLE a2a_clients ALTER COLUMN public_key DROP NOT NULL;
--bun:split
ALTER TABLE a2a_clients ADD COLUMN agent_version TEXT;
--bun:split
ALTER TABLE a2a_clients ADD COLUMN documentation_url TEXT;
--bun:split
ALTER TABLE a2a_clients ADD COLUMN last_used_at TIMESTAMPTZ;
--bun:split
CREATE INDEX idx_a2a_clients_tenant_created ON a2a_clients (tenant_id, created_at, client_id);
--bun:split

-- Admin tokens, newest listing order; the JWT signing secret, sealed under the
-- data key (one row: rotating it replaces it, which invalidates every older token).
CREATE INDEX idx_admin_tokens_created ON admin_tokens (created_at, id);
--bun:split
CREATE TABLE admin_jwt_secret (
    id               INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    secret_encrypted BYTEA NOT NULL,
    secret_hash      TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    rotated_at       TIMESTAMPTZ
);
--bun:split

-- OAuth tokens: when each was last synced, and the tokens that expire soonest,
-- per tenant, for a background refresher.
ALTER TABLE user_oauth_tokens ADD COLUMN last_sync_at TIMESTAMPTZ;
--bun:split
CREATE INDEX idx_user_oauth_tokens_expiry ON user_oauth_tokens (tenant_id, expires_at, id);
