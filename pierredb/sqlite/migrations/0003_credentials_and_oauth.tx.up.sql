-- Credentials (API keys, admin tokens, A2A clients) and OAuth data get their Go
-- API. Twin of pierredb/postgres/migrations/0003_credentials_and_oauth.tx.up.sql.
--
-- SQLite cannot change a CHECK constraint or a column's nullability in place, so
-- api_keys and a2a_clients are rebuilt. With foreign_keys on (always, in pierre),
-- DROP TABLE deletes the table's rows first and that delete cascades into child
-- tables: each child is therefore copied to its new table and dropped before its
-- parent, so no row is lost. RENAME then points the new children's foreign keys
-- at the renamed parents.

-- api_keys: a 'week' period; rate_limit_requests NULL means unlimited (the
-- enterprise tier); revoked_at marks a key revoked for good.
CREATE TABLE api_keys_next (
    id                  TEXT NOT NULL PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    name                TEXT NOT NULL,
    description         TEXT,
    key_prefix          TEXT NOT NULL UNIQUE,
    key_hash            TEXT NOT NULL,
    tier                TEXT NOT NULL DEFAULT 'starter'
                        CHECK (tier IN ('trial', 'starter', 'professional', 'enterprise')),
    rate_limit_requests INTEGER CHECK (rate_limit_requests IS NULL OR rate_limit_requests >= 0),
    rate_limit_period   TEXT NOT NULL DEFAULT 'month'
                        CHECK (rate_limit_period IN ('hour', 'day', 'week', 'month')),
    is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    expires_at          TEXT,
    revoked_at          TEXT,
    last_used_at        TEXT,
    usage_count         INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, user_id, name),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split
INSERT INTO api_keys_next (id, tenant_id, user_id, name, description, key_prefix, key_hash, tier,
    rate_limit_requests, rate_limit_period, is_active, expires_at, last_used_at, usage_count, created_at, updated_at)
SELECT id, tenant_id, user_id, name, description, key_prefix, key_hash, tier,
    rate_limit_requests, rate_limit_period, is_active, expires_at, last_used_at, usage_count, created_at, updated_at
FROM api_keys;
--bun:split
CREATE TABLE api_key_usage_next (
    tenant_id     TEXT NOT NULL,
    api_key_id    TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (api_key_id, window_start),
    FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_keys_next (tenant_id, id) ON DELETE CASCADE
);
--bun:split
INSERT INTO api_key_usage_next SELECT tenant_id, api_key_id, window_start, request_count, updated_at FROM api_key_usage;
--bun:split
DROP TABLE api_key_usage;
--bun:split
DROP TABLE api_keys;
--bun:split
ALTER TABLE api_keys_next RENAME TO api_keys;
--bun:split
ALTER TABLE api_key_usage_next RENAME TO api_key_usage;
--bun:split
CREATE INDEX idx_api_key_usage_tenant ON api_key_usage (tenant_id, api_key_id);
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
CREATE TABLE a2a_clients_next (
    client_id                 TEXT NOT NULL PRIMARY KEY,
    tenant_id                 TEXT NOT NULL,
    user_id                   TEXT NOT NULL,
    name                      TEXT NOT NULL,
    description               TEXT,
    public_key                TEXT UNIQUE,
    client_secret_hash        TEXT NOT NULL,
    permissions               TEXT NOT NULL DEFAULT '[]',
    capabilities              TEXT NOT NULL DEFAULT '[]',
    redirect_uris             TEXT NOT NULL DEFAULT '[]',
    contact_email             TEXT,
    agent_version             TEXT,
    documentation_url         TEXT,
    rate_limit_requests       INTEGER NOT NULL DEFAULT 1000 CHECK (rate_limit_requests >= 0),
    rate_limit_window_seconds INTEGER NOT NULL DEFAULT 3600 CHECK (rate_limit_window_seconds > 0),
    is_active                 INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    last_used_at              TEXT,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    UNIQUE (tenant_id, client_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split
INSERT INTO a2a_clients_next (client_id, tenant_id, user_id, name, description, public_key, client_secret_hash,
    permissions, capabilities, redirect_uris, contact_email, rate_limit_requests, rate_limit_window_seconds,
    is_active, created_at, updated_at)
SELECT id, tenant_id, user_id, name, description, public_key, client_secret_hash,
    permissions, capabilities, redirect_uris, contact_email, rate_limit_requests, rate_limit_window_seconds,
    is_active, created_at, updated_at
FROM a2a_clients;
--bun:split
CREATE TABLE a2a_client_usage_next (
    tenant_id     TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (client_id, window_start),
    FOREIGN KEY (tenant_id, client_id) REFERENCES a2a_clients_next (tenant_id, client_id) ON DELETE CASCADE
);
--bun:split
INSERT INTO a2a_client_usage_next SELECT tenant_id, client_id, window_start, request_count, updated_at FROM a2a_client_usage;
--bun:split
DROP TABLE a2a_client_usage;
--bun:split
DROP TABLE a2a_clients;
--bun:split
ALTER TABLE a2a_clients_next RENAME TO a2a_clients;
--bun:split
ALTER TABLE a2a_client_usage_next RENAME TO a2a_client_usage;
--bun:split
CREATE INDEX idx_a2a_clients_tenant_user ON a2a_clients (tenant_id, user_id);
--bun:split
CREATE INDEX idx_a2a_clients_tenant_created ON a2a_clients (tenant_id, created_at, client_id);
--bun:split
CREATE INDEX idx_a2a_client_usage_tenant ON a2a_client_usage (tenant_id, client_id);
--bun:split

-- Admin tokens, newest listing order; the JWT signing secret, sealed under the
-- data key (one row: rotating it replaces it, which invalidates every older token).
CREATE INDEX idx_admin_tokens_created ON admin_tokens (created_at, id);
--bun:split
CREATE TABLE admin_jwt_secret (
    id               INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    secret_encrypted BLOB NOT NULL,
    secret_hash      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    rotated_at       TEXT
);
--bun:split

-- OAuth tokens: when each was last synced, and the tokens that expire soonest,
-- per tenant, for a background refresher.
ALTER TABLE user_oauth_tokens ADD COLUMN last_sync_at TEXT;
--bun:split
CREATE INDEX idx_user_oauth_tokens_expiry ON user_oauth_tokens (tenant_id, expires_at, id);
