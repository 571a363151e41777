package pierredb

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// timeLayout is the one text form of a timestamp on both engines: UTC, six
// fractional digits, so that SQLite's TEXT columns sort and compare in time order
// and PostgreSQL parses it into TIMESTAMPTZ without loss.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// dbTime is a timestamp column. The zero value is SQL NULL, which keeps optional
// timestamps (expires_at, last_active, ...) free of pointers.
type dbTime struct{ time.Time }

// at converts t to the precision both engines store: UTC microseconds.
func at(t time.Time) dbTime {
	if t.IsZero() {
		return dbTime{}
	}
	return dbTime{t.UTC().Truncate(time.Microsecond)}
}

// Value implements driver.Valuer.
func (t dbTime) Value() (driver.Value, error) {
	if t.IsZero() {
		return nil, nil
	}
	return t.UTC().Truncate(time.Microsecond).Format(timeLayout), nil
}

// boundTime is t as a statement argument that compares with stored
// timestamps, refusing a time outside the years 1 to 9999: SQLite compares
// timestamps as text, where a five-digit year sorts before every stored one,
// so the engines would answer differently.
func boundTime(what string, t time.Time) (dbTime, error) {
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return dbTime{}, fmt.Errorf("%w: %s is outside the years 1 to 9999", ErrInvalidArgument, what)
	}
	return at(t), nil
}

// plainArgs returns args with each dbTime replaced by its driver value (its
// text, or nil), copying args only when it holds one. database/sql sends the
// same value either way, but pgx, handed the struct, first tries its binary
// encode plans for it: about 25 allocations per timestamp on every write.
func plainArgs(args []any) []any {
	for i, a := range args {
		if _, ok := a.(dbTime); !ok {
			continue
		}
		out := make([]any, len(args))
		copy(out, args)
		for j := i; j < len(out); j++ {
			if t, ok := out[j].(dbTime); ok {
				out[j], _ = t.Value()
			}
		}
		return out
	}
	return args
}

// Scan implements sql.Scanner for the forms the drivers return: time.Time from
// pgx (and from SQLite drivers for columns declared as timestamps), text otherwise.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
		return nil
	case time.Time:
		t.Time = v.UTC()
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	default:
		return fmt.Errorf("cannot scan %T into a timestamp", src)
	}
}

func (t *dbTime) parse(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05"} {
		if p, err := time.Parse(layout, s); err == nil {
			t.Time = p.UTC()
			return nil
		}
	}
	return fmt.Errorf("%q is not a timestamp", s)
}
