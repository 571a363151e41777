-- The admin API lists API keys across tenants: all of them, or one user's,
-- newest first, a page at a time (httpserver's GET /admin/list).
CREATE INDEX idx_api_keys_created ON api_keys (created_at, id);
--bun:split
CREATE INDEX idx_api_keys_user_created ON api_keys (user_id, created_at, id);
--bun:split
CREATE INDEX idx_api_keys_active_created ON api_keys (is_active, created_at, id);
