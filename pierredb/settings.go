package pierredb

import (
	"context"
	"strconv"
	"strings"

	"github.com/uptrace/bun"
)

type settingRow struct {
	bun.BaseModel `bun:"table:system_settings"`

	Key       string `bun:"key,pk"`
	Value     string `bun:"value"`
	UpdatedAt dbTime `bun:"updated_at"`
}

// Keys of system_settings.
const (
	settingAutoApprove = "users.auto_approve"
)

// EnvAutoApproveUsers, when set to a boolean, overrides the stored auto-approval
// setting for a Database opened with OpenFromEnv.
const EnvAutoApproveUsers = "AUTO_APPROVE_USERS"

// Settings is the handle on platform settings, from Database.Settings.
type Settings struct{ db *Database }

// Settings returns the handle on platform settings.
func (db *Database) Settings() Settings { return Settings{db: db} }

// AutoApproveUsers reports whether new users are created active. It is off by
// default; WithAutoApproveUsers (or AUTO_APPROVE_USERS through OpenFromEnv)
// overrides the stored setting. Users.Create reads the stored setting in the same
// statement that inserts the user, so a change made by any instance applies to
// the very next user.
func (s Settings) AutoApproveUsers(ctx context.Context) (_ bool, err error) {
	defer s.db.wrap(&err, "read auto-approval setting")
	if s.db.autoApprove != nil {
		return *s.db.autoApprove, nil
	}
	row, err := s.db.queryRow(ctx, "SELECT value FROM system_settings WHERE key = ?", settingAutoApprove)
	if err != nil {
		return false, err
	}
	var v string
	switch err := row.Scan(&v); {
	case isNoRows(err):
		return false, nil
	case err != nil:
		return false, err
	}
	// The spellings insertUserSQL accepts, and nothing else.
	switch strings.ToLower(v) {
	case "1", "t", "true":
		return true, nil
	case "0", "f", "false":
		return false, nil
	}
	s.db.log.Warn("pierredb: stored auto-approval setting is not a boolean; treating it as off", "value", shorten(v))
	return false, nil
}

// SetAutoApproveUsers stores the auto-approval setting. While an override is in
// force (WithAutoApproveUsers, AUTO_APPROVE_USERS) it is stored but not used.
func (s Settings) SetAutoApproveUsers(ctx context.Context, on bool) (err error) {
	defer s.db.wrap(&err, "write auto-approval setting")
	row := settingRow{Key: settingAutoApprove, Value: strconv.FormatBool(on), UpdatedAt: at(s.db.now())}
	return s.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&row).
			On("CONFLICT (key) DO UPDATE").Set("value = EXCLUDED.value").Set("updated_at = EXCLUDED.updated_at").
			Exec(ctx)
		return err
	})
}
