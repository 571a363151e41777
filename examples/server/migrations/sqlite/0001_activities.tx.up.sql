-- The example host's own table: activities recorded per tenant and member,
-- as the seed's get_user_activities(tenant_id, user_id, limit) reads them.
-- The composite foreign key ties each row to a membership in pierre's
-- tenant_users, so a row cannot point into another tenant, and removing the
-- member removes their activities.
CREATE TABLE activities (
    id               TEXT NOT NULL PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    sport            TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    duration_seconds INTEGER NOT NULL CHECK (duration_seconds >= 0),
    distance_meters  REAL CHECK (distance_meters IS NULL OR distance_meters >= 0),
    notes            TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split
CREATE INDEX idx_activities_member_started ON activities (tenant_id, user_id, started_at, id);
