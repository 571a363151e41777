package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode"
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

// Limits of an activity. started_at stays in a range both engines store alike
// (SQLite took year 0 where PostgreSQL refused it), and no activity a member
// records predates 1970 or lies days ahead.
const (
	maxSportBytes = 40
	maxNotesBytes = 1000
	maxDuration   = 7 * 24 * 3600
	maxDistance   = 1e7
	maxAhead      = 24 * time.Hour
)

var (
	minStartedAt = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	errBadStart  = fmt.Errorf("%w: started_at must be an RFC 3339 time from 1970-01-01 to at most a day from now (leave it out for now)", errBadActivity)
)

// record stores an activity of user in tenant. A zero StartedAt means now.
// Everything is checked before the insert, so a client's mistake is an
// errBadActivity that says what to send, never a database error.
func (a activities) record(ctx context.Context, scope *pierredb.TenantScope, userID string, in activity) (activity, error) {
	now := time.Now()
	if in.StartedAt.IsZero() {
		in.StartedAt = now
	}
	in.Sport = strings.TrimSpace(strings.ToLower(in.Sport))
	switch {
	case in.Sport == "" || len(in.Sport) > maxSportBytes || !plainText(in.Sport, false):
		return activity{}, fmt.Errorf("%w: sport must be a short name such as run, ride or swim (at most %d bytes of text on one line)", errBadActivity, maxSportBytes)
	case in.DurationSeconds < 0 || in.DurationSeconds > maxDuration:
		return activity{}, fmt.Errorf("%w: duration_seconds must be between 0 and a week (%d)", errBadActivity, maxDuration)
	case in.DistanceMeters != nil && !(*in.DistanceMeters >= 0 && *in.DistanceMeters <= maxDistance): // also refuses NaN
		return activity{}, fmt.Errorf("%w: distance_meters must be between 0 and 10000 km", errBadActivity)
	case len(in.Notes) > maxNotesBytes || !plainText(in.Notes, true):
		return activity{}, fmt.Errorf("%w: notes must be text of at most %d bytes, without control characters other than newlines and tabs", errBadActivity, maxNotesBytes)
	case in.StartedAt.Before(minStartedAt) || in.StartedAt.After(now.Add(maxAhead)):
		return activity{}, errBadStart
	}
	in.StartedAt = in.StartedAt.UTC().Truncate(time.Microsecond)
	in.ID, in.TenantID, in.UserID = uuid.Must(uuid.NewV7()).String(), scope.ID(), userID
	if _, err := a.db.Bun().NewInsert().Model(&in).Exec(ctx); err != nil {
		return activity{}, err
	}
	return in, nil
}

// plainText reports whether s is valid UTF-8 without control or format
// characters (Unicode Cc and Cf: NUL, escapes, bidi overrides, zero-width
// marks), which no sport or note needs and which break SQL text and
// terminals; multiline allows newlines and tabs.
func plainText(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.In(r, unicode.Cc, unicode.Cf) {
			return false
		}
	}
	return true
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
