package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
)

//go:embed migrations
var migrationFiles embed.FS

// hostMigrations are this host's own tables, applied by pierre's migrator
// after pierre's and recorded in example_migrations.
func hostMigrations() pierredb.HostMigrations {
	sub := func(dir string) fs.FS {
		f, err := fs.Sub(migrationFiles, "migrations/"+dir)
		if err != nil {
			panic(err) // the embedded tree is fixed at build time
		}
		return f
	}
	return pierredb.HostMigrations{Name: "example", SQLite: sub("sqlite"), Postgres: sub("postgres")}
}

// activity is a row of the host's activities table.
type activity struct {
	bun.BaseModel `bun:"table:activities"`

	ID              string    `bun:"id,pk" json:"id"`
	TenantID        string    `bun:"tenant_id" json:"-"`
	UserID          string    `bun:"user_id" json:"-"`
	Sport           string    `bun:"sport" json:"sport"`
	StartedAt       time.Time `bun:"started_at" json:"started_at"`
	DurationSeconds int64     `bun:"duration_seconds" json:"duration_seconds"`
	DistanceMeters  *float64  `bun:"distance_meters" json:"distance_meters,omitempty"`
	Notes           string    `bun:"notes,nullzero" json:"notes,omitempty"`
}

// activities is the host's store for its own table. Every query filters by the
// caller's tenant and user, as pierre's scoped queries do.
type activities struct{ db *pierredb.Database }

var errBadActivity = errors.New("invalid activity")

// record stores an activity of user in tenant.
func (a activities) record(ctx context.Context, scope *pierredb.TenantScope, userID string, in activity) (activity, error) {
	in.Sport = strings.TrimSpace(strings.ToLower(in.Sport))
	switch {
	case in.Sport == "" || len(in.Sport) > 40 || !utf8.ValidString(in.Sport):
		return activity{}, fmt.Errorf("%w: sport must be a short name such as run, ride or swim", errBadActivity)
	case in.DurationSeconds < 0 || in.DurationSeconds > 7*24*3600:
		return activity{}, fmt.Errorf("%w: duration_seconds must be between 0 and a week", errBadActivity)
	case in.DistanceMeters != nil && (*in.DistanceMeters < 0 || *in.DistanceMeters > 1e7):
		return activity{}, fmt.Errorf("%w: distance_meters must be between 0 and 10000 km", errBadActivity)
	case len(in.Notes) > 1000 || !utf8.ValidString(in.Notes):
		return activity{}, fmt.Errorf("%w: notes must be valid text of at most 1000 bytes", errBadActivity)
	}
	if in.StartedAt.IsZero() {
		in.StartedAt = time.Now()
	}
	in.StartedAt = in.StartedAt.UTC().Truncate(time.Microsecond)
	in.ID, in.TenantID, in.UserID = uuid.Must(uuid.NewV7()).String(), scope.ID(), userID
	_, err := a.db.Bun().NewInsert().Model(&in).Exec(ctx)
	return in, err
}

// recent lists a member's latest activities, newest first (the seed's
// get_user_activities(tenant_id, user_id, limit)).
func (a activities) recent(ctx context.Context, scope *pierredb.TenantScope, userID string, limit int) ([]activity, error) {
	if limit <= 0 || limit > 100 {
		limit = 10
	}
	var out []activity
	err := a.db.Bun().NewSelect().Model(&out).
		Where("tenant_id = ? AND user_id = ?", scope.ID(), userID).
		OrderExpr("started_at DESC, id DESC").Limit(int64(limit)).Scan(ctx)
	return out, err
}
