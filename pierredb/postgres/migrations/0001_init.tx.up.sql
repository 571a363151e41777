-- pierre schema, PostgreSQL dialect. Its twin is pierredb/sqlite/migrations; the
-- schema-parity test fails if their tables, columns, nullability, unique
-- constraints or index names differ. Never edit a migration once it has landed:
-- add a new one to both directories.
--
-- Tables are created unqualified, so they land in the first schema of the
-- connection's search_path (pierredb creates it when missing). Conventions: ids are
-- TEXT (UUIDv7 made in Go), timestamps TIMESTAMPTZ holding UTC at microsecond
-- precision, booleans BOOLEAN, ciphertext BYTEA.

CREATE TABLE users (
    id                  TEXT NOT NULL PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    display_name        TEXT,
    password_hash       TEXT NOT NULL,
    tier                TEXT NOT NULL DEFAULT 'starter'
                        CHECK (tier IN ('starter', 'professional', 'enterprise')),
    tenant_id           TEXT,
    is_active           BOOLEAN NOT NULL DEFAULT TRUE,
    is_admin            BOOLEAN NOT NULL DEFAULT FALSE,
    user_status         TEXT NOT NULL DEFAULT 'pending'
                        CHECK (user_status IN ('pending', 'active', 'suspended')),
    approved_by         TEXT REFERENCES users (id) ON DELETE SET NULL,
    approved_by_service TEXT,
    approved_at         TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    last_active         TIMESTAMPTZ
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
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
--bun:split
ALTER TABLE users ADD CONSTRAINT users_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE SET NULL;
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
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
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
    is_active           BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at          TIMESTAMPTZ,
    last_used_at        TIMESTAMPTZ,
    usage_count         BIGINT NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, user_id, name),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split

CREATE TABLE api_key_usage (
    tenant_id     TEXT NOT NULL,
    api_key_id    TEXT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    request_count BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL,
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
    is_super_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    is_active           BOOLEAN NOT NULL DEFAULT TRUE,
    created_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ,
    last_used_at        TIMESTAMPTZ,
    last_used_ip        TEXT,
    usage_count         BIGINT NOT NULL DEFAULT 0
);
--bun:split
CREATE INDEX idx_admin_tokens_service ON admin_tokens (service_name);
--bun:split

CREATE TABLE admin_token_usage (
    id                 TEXT NOT NULL PRIMARY KEY,
    admin_token_id     TEXT NOT NULL REFERENCES admin_tokens (id) ON DELETE CASCADE,
    timestamp          TIMESTAMPTZ NOT NULL,
    action             TEXT NOT NULL,
    target_resource    TEXT,
    ip_address         TEXT,
    user_agent         TEXT,
    request_size_bytes INTEGER,
    success            BOOLEAN NOT NULL,
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
    is_active                 BOOLEAN NOT NULL DEFAULT TRUE,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split
CREATE INDEX idx_a2a_clients_tenant_user ON a2a_clients (tenant_id, user_id);
--bun:split

CREATE TABLE a2a_client_usage (
    tenant_id     TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    request_count BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL,
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
    client_secret_encrypted BYTEA NOT NULL,
    redirect_uri            TEXT NOT NULL,
    scopes                  TEXT NOT NULL DEFAULT '[]',
    rate_limit_per_day      INTEGER NOT NULL DEFAULT 15000 CHECK (rate_limit_per_day >= 0),
    is_active               BOOLEAN NOT NULL DEFAULT TRUE,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, provider)
);
--bun:split

CREATE TABLE user_oauth_tokens (
    id                      TEXT NOT NULL PRIMARY KEY,
    tenant_id               TEXT NOT NULL,
    user_id                 TEXT NOT NULL,
    provider                TEXT NOT NULL,
    access_token_encrypted  BYTEA NOT NULL,
    refresh_token_encrypted BYTEA,
    token_type              TEXT NOT NULL DEFAULT 'Bearer',
    expires_at              TIMESTAMPTZ,
    scope                   TEXT,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
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
    updated_at TIMESTAMPTZ NOT NULL
);
--bun:split

CREATE TABLE keyring_meta (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    database_id TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
--bun:split

CREATE TABLE keyring_keys (
    purpose         TEXT NOT NULL,
    version         BIGINT NOT NULL CHECK (version > 0),
    state           TEXT NOT NULL CHECK (state IN ('primary', 'active', 'retired')),
    wrapped_key     BYTEA NOT NULL,
    mek_fingerprint TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (purpose, version)
);
--bun:split
CREATE UNIQUE INDEX idx_keyring_keys_one_primary ON keyring_keys (purpose) WHERE state = 'primary';
