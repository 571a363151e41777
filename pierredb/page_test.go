package pierredb

import (
	"errors"
	"testing"
	"time"
)

// FuzzDecodeCursor: page cursors come back from clients. Any input either decodes
// to a position that re-encodes to itself or fails with ErrInvalidArgument.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC), "01940000-0000-7000-8000-000000000000"))
	f.Add("")
	f.Add("djF8MTJ8aWQ")
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := decodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error is not ErrInvalidArgument: %v", err)
			}
			return
		}
		if !ok {
			if s != "" {
				t.Fatalf("non-empty cursor %q decoded to nothing", s)
			}
			return
		}
		again, ok, err := decodeCursor(encodeCursor(c.at.Time, c.id))
		if err != nil || !ok || again != c {
			t.Fatalf("cursor %q does not round-trip: %+v vs %+v (%v)", s, c, again, err)
		}
	})
}
