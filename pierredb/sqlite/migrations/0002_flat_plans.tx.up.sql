-- Indexes and counters that keep every listing and count flat in the size of the
-- tables (a page or a count costs the same at 10k and at 100k users). Twin of
-- pierredb/postgres/migrations/0002_flat_plans.tx.up.sql.

-- Admins and non-admins, oldest first: ListUsers{IsAdmin} walks only them.
CREATE INDEX idx_users_admin_created ON users (is_admin, created_at, id);
--bun:split
-- The costliest kind of password hash still stored ("$2b$12$" for a bcrypt
-- import), found in one index probe: logins are made to cost as much.
CREATE INDEX idx_users_hash_kind ON users (substr(password_hash, 1, 7));
--bun:split
-- A tenant's members in join order: member listings are driven from here.
CREATE INDEX idx_tenant_users_tenant_created ON tenant_users (tenant_id, created_at, user_id);
--bun:split
-- A user's tenants in join order.
CREATE INDEX idx_tenant_users_user_created ON tenant_users (user_id, created_at, tenant_id);
--bun:split
-- An owner's tenants, oldest first.
CREATE INDEX idx_tenants_owner_created ON tenants (owner_user_id, created_at, id);
--bun:split

-- How many users there are per status and admin flag, kept by the triggers below
-- (so hand-written SQL, such as the approval recipe in the README, keeps them
-- right too). Counting users reads these six rows instead of the users table.
CREATE TABLE user_counts (
    user_status TEXT NOT NULL CHECK (user_status IN ('pending', 'active', 'suspended')),
    is_admin    INTEGER NOT NULL CHECK (is_admin IN (0, 1)),
    n           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_status, is_admin)
);
--bun:split
INSERT INTO user_counts (user_status, is_admin, n)
SELECT s.user_status, a.is_admin,
       (SELECT count(*) FROM users u WHERE u.user_status = s.user_status AND u.is_admin = a.is_admin)
FROM (SELECT 'pending' AS user_status UNION ALL SELECT 'active' UNION ALL SELECT 'suspended') s,
     (SELECT 0 AS is_admin UNION ALL SELECT 1) a;
--bun:split
CREATE TRIGGER users_count_insert AFTER INSERT ON users
BEGIN
    UPDATE user_counts SET n = n + 1 WHERE user_status = NEW.user_status AND is_admin = NEW.is_admin;
END;
--bun:split
CREATE TRIGGER users_count_delete AFTER DELETE ON users
BEGIN
    UPDATE user_counts SET n = n - 1 WHERE user_status = OLD.user_status AND is_admin = OLD.is_admin;
END;
--bun:split
CREATE TRIGGER users_count_update AFTER UPDATE OF user_status, is_admin ON users
WHEN OLD.user_status IS NOT NEW.user_status OR OLD.is_admin IS NOT NEW.is_admin
BEGIN
    UPDATE user_counts SET n = n - 1 WHERE user_status = OLD.user_status AND is_admin = OLD.is_admin;
    UPDATE user_counts SET n = n + 1 WHERE user_status = NEW.user_status AND is_admin = NEW.is_admin;
END;
--bun:split

-- Retiring a key destroys its material (keyring.Retire). Keys retired before
-- that rule still hold it, and their state is not authenticated: destroy it now,
-- so that setting such a row back to active can never revive the key.
UPDATE keyring_keys SET wrapped_key = x'', mek_fingerprint = '' WHERE state = 'retired';
