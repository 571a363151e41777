package pierredb

import (
	"context"
	"strconv"

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

// AutoApproveUsers reports whether new users are created active. It is off by
// default; WithAutoApproveUsers (or AUTO_APPROVE_USERS through OpenFromEnv)
// overrides the stored setting.
func (db *Database) AutoApproveUsers(ctx context.Context) (bool, error) {
	if db.autoApprove != nil {
		return *db.autoApprove, nil
	}
	v, ok, err := db.setting(ctx, settingAutoApprove)
	if err != nil || !ok {
		return false, err
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		db.log.Warn("pierredb: stored auto-approval setting is not a boolean; treating it as off", "value", v)
		return false, nil
	}
	return on, nil
}

// SetAutoApproveUsers stores the auto-approval setting. While an override is in
// force (WithAutoApproveUsers, AUTO_APPROVE_USERS) it is stored but not used.
func (db *Database) SetAutoApproveUsers(ctx context.Context, on bool) error {
	return db.setSetting(ctx, settingAutoApprove, strconv.FormatBool(on))
}

func (db *Database) setting(ctx context.Context, key string) (string, bool, error) {
	if err := db.checkOpen(); err != nil {
		return "", false, err
	}
	row, err := db.queryRow(ctx, "SELECT value FROM system_settings WHERE key = ?", key)
	if err != nil {
		return "", false, db.opError("read setting", err)
	}
	var v string
	switch err := row.Scan(&v); {
	case err == nil:
		return v, true, nil
	case isNoRows(err):
		return "", false, nil
	default:
		return "", false, db.opError("read setting", err)
	}
}

func (db *Database) setSetting(ctx context.Context, key, value string) error {
	row := settingRow{Key: key, Value: value, UpdatedAt: at(db.now())}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&row).
			On("CONFLICT (key) DO UPDATE").Set("value = EXCLUDED.value").Set("updated_at = EXCLUDED.updated_at").
			Exec(ctx)
		return err
	})
	return db.opError("write setting", err)
}
