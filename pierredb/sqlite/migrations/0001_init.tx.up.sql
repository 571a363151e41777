-- pierre schema, SQLite dialect. Its twin is pierredb/postgres/migrations; the
-- schema-parity test fails if their tables, columns, nullability, unique
-- constraints or index names differ. Never edit a migration once it has landed:
-- add a new one to both directories.
--
-- Conventions: ids are TEXT (UUIDv7 made in Go); timestamps are TEXT holding UTC
-- RFC 3339 with exactly six fractional digits ("2026-11-30T12:48:35.123456Z"), so
-- they sort and compare as text; booleans are INTEGER 0/1; ciphertext is BLOB.

CREATE TABLE users (
    id                  TEXT NOT NULL PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    display_name        TEXT,
    password_hash       TEXT NOT NULL,
    tier                TEXT NOT NULL DEFAULT 'starter'
                        CHECK (tier IN ('starter', 'professional', 'enterprise')),
    tenant_id           TEXT REFERENCES tenants (id) ON DELETE SET NULL,
    is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    is_admin            INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    user_status         TEXT NOT NULL DEFAULT 'pending'
                        CHECK (user_status IN ('pending', 'active', 'suspended')),
    approved_by         TEXT REFERENCES users (id) ON DELETE SET NULL,
    approved_by_service TEXT,
    approved_at         TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    last_active         TEXT
);
--bun:split
CREATE INDEX idx_users_status_created ON users (user_status, created_at, id);
--bun:split
CREATE INDEX idx_users_created ON users (created_at, id);
--bun:split
CREATE INDEX idx_users_tenant ON users (tenant_id);
--bun:split
CREATE INDEX idx_users_approved_by ON users (approved_by);
--bun:split

CREATE TABLE tenants (
    id            TEXT NOT NULL PRIMARY KEY,
    name          TEXT NOT NULL,
    slug          TEXT NOT NULL UNIQUE,
    plan          TEXT NOT NULL DEFAULT 'starter'
                  CHECK (plan IN ('starter', 'professional', 'enterprise')),
    owner_user_id TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
--bun:split
CREATE INDEX idx_tenants_owner ON tenants (owner_user_id);
--bun:split
CREATE INDEX idx_tenants_created ON tenants (created_at, id);
--bun:split

CREATE TABLE tenant_users (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL DEFAULT 'member'
               CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
--bun:split
CREATE INDEX idx_tenant_users_user ON tenant_users (user_id);
--bun:split

CREATE TABLE api_keys (
    id                  TEXT NOT NULL PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    name                TEXT NOT NULL,
    description         TEXT,
    key_prefix          TEXT NOT NULL UNIQUE,
    key_hash            TEXT NOT NULL,
    tier                TEXT NOT NULL DEFAULT 'starter'
                        CHECK (tier IN ('trial', 'starter', 'professional', 'enterprise')),
    rate_limit_requests INTEGER NOT NULL DEFAULT 1000 CHECK (rate_limit_requests >= 0),
    rate_limit_period   TEXT NOT NULL DEFAULT 'month'
                        CHECK (rate_limit_period IN ('hour', 'day', 'month')),
    is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    expires_at          TEXT,
    last_used_at        TEXT,
    usage_count         INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, user_id, name),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split

CREATE TABLE api_key_usage (
    tenant_id     TEXT NOT NULL,
    api_key_id    TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (api_key_id, window_start),
    FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_keys (tenant_id, id) ON DELETE CASCADE
);
--bun:split
CREATE INDEX idx_api_key_usage_tenant ON api_key_usage (tenant_id, api_key_id);
--bun:split

CREATE TABLE admin_tokens (
    id                  TEXT NOT NULL PRIMARY KEY,
    service_name        TEXT NOT NULL,
    service_description TEXT,
    token_hash          TEXT NOT NULL,
    token_prefix        TEXT NOT NULL UNIQUE,
    jwt_secret_hash     TEXT NOT NULL,
    permissions         TEXT NOT NULL DEFAULT '["provision_keys"]',
    is_super_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_super_admin IN (0, 1)),
    is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at          TEXT NOT NULL,
    expires_at          TEXT,
    last_used_at        TEXT,
    last_used_ip        TEXT,
    usage_count         INTEGER NOT NULL DEFAULT 0
);
--bun:split
CREATE INDEX idx_admin_tokens_service ON admin_tokens (service_name);
--bun:split

CREATE TABLE admin_token_usage (
    id                 TEXT NOT NULL PRIMARY KEY,
    admin_token_id     TEXT NOT NULL REFERENCES admin_tokens (id) ON DELETE CASCADE,
    timestamp          TEXT NOT NULL,
    action             TEXT NOT NULL,
    target_resource    TEXT,
    ip_address         TEXT,
    user_agent         TEXT,
    request_size_bytes INTEGER,
    success            INTEGER NOT NULL CHECK (success IN (0, 1)),
    error_message      TEXT,
    response_time_ms   INTEGER
);
--bun:split
CREATE INDEX idx_admin_token_usage_token ON admin_token_usage (admin_token_id, timestamp);
--bun:split

CREATE TABLE a2a_clients (
    id                        TEXT NOT NULL PRIMARY KEY,
    tenant_id                 TEXT NOT NULL,
    user_id                   TEXT NOT NULL,
    name                      TEXT NOT NULL,
    description               TEXT,
    public_key                TEXT NOT NULL UNIQUE,
    client_secret_hash        TEXT NOT NULL,
    permissions               TEXT NOT NULL DEFAULT '[]',
    capabilities              TEXT NOT NULL DEFAULT '[]',
    redirect_uris             TEXT NOT NULL DEFAULT '[]',
    contact_email             TEXT,
    rate_limit_requests       INTEGER NOT NULL DEFAULT 1000 CHECK (rate_limit_requests >= 0),
    rate_limit_window_seconds INTEGER NOT NULL DEFAULT 3600 CHECK (rate_limit_window_seconds > 0),
    is_active                 INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split
CREATE INDEX idx_a2a_clients_tenant_user ON a2a_clients (tenant_id, user_id);
--bun:split

CREATE TABLE a2a_client_usage (
    tenant_id     TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (client_id, window_start),
    FOREIGN KEY (tenant_id, client_id) REFERENCES a2a_clients (tenant_id, id) ON DELETE CASCADE
);
--bun:split
CREATE INDEX idx_a2a_client_usage_tenant ON a2a_client_usage (tenant_id, client_id);
--bun:split

CREATE TABLE tenant_oauth_configs (
    id                      TEXT NOT NULL PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider                TEXT NOT NULL,
    client_id               TEXT NOT NULL,
    client_secret_encrypted BLOB NOT NULL,
    redirect_uri            TEXT NOT NULL,
    scopes                  TEXT NOT NULL DEFAULT '[]',
    rate_limit_per_day      INTEGER NOT NULL DEFAULT 15000 CHECK (rate_limit_per_day >= 0),
    is_active               INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, provider)
);
--bun:split

CREATE TABLE user_oauth_tokens (
    id                      TEXT NOT NULL PRIMARY KEY,
    tenant_id               TEXT NOT NULL,
    user_id                 TEXT NOT NULL,
    provider                TEXT NOT NULL,
    access_token_encrypted  BLOB NOT NULL,
    refresh_token_encrypted BLOB,
    token_type              TEXT NOT NULL DEFAULT 'Bearer',
    expires_at              TEXT,
    scope                   TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, user_id, provider),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split
CREATE INDEX idx_user_oauth_tokens_user ON user_oauth_tokens (user_id);
--bun:split

CREATE TABLE system_settings (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
--bun:split

CREATE TABLE keyring_meta (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    database_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
--bun:split

CREATE TABLE keyring_keys (
    purpose         TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version > 0),
    state           TEXT NOT NULL CHECK (state IN ('primary', 'active', 'retired')),
    wrapped_key     BLOB NOT NULL,
    mek_fingerprint TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (purpose, version)
);
--bun:split
CREATE UNIQUE INDEX idx_keyring_keys_one_primary ON keyring_keys (purpose) WHERE state = 'primary';
