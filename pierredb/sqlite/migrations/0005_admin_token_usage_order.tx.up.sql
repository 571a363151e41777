-- Admin token usage in the order ListUsage pages it, (timestamp, id) per token:
-- with the id in the index, a page is read in index order and never sorts the
-- actions that share a timestamp. It replaces idx_admin_token_usage_token
-- (admin_token_id, timestamp), whose leading column it keeps for the foreign
-- key's cascade. Twin of pierredb/postgres/migrations/0005_admin_token_usage_order.tx.up.sql.
DROP INDEX idx_admin_token_usage_token;
--bun:split
CREATE INDEX idx_admin_token_usage_token_time ON admin_token_usage (admin_token_id, timestamp, id);
