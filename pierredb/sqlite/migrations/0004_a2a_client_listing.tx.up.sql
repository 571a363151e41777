-- A user's A2A clients in the order A2AClients.List pages them, (created_at,
-- client_id) within (tenant_id, user_id): a filtered page is read in index order
-- and never sorts the user's clients. It replaces idx_a2a_clients_tenant_user
-- (tenant_id, user_id), whose leading columns it keeps for the membership
-- foreign key's cascade. Twin of pierredb/postgres/migrations/0004_a2a_client_listing.tx.up.sql.
DROP INDEX idx_a2a_clients_tenant_user;
--bun:split
CREATE INDEX idx_a2a_clients_tenant_user_created ON a2a_clients (tenant_id, user_id, created_at, client_id);
