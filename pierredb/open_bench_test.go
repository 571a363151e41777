package pierredb_test

import (
	"testing"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkOpen measures Open end to end: connect, pragmas and their read-back (or
// the PostgreSQL handshake), migrations, keyring. "fresh" is an empty database that
// gets every migration and a new keyring; "migrated" is a reopen that applies
// nothing and unlocks the stored keyring.
func BenchmarkOpen(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend)+"/fresh", func(b *testing.B) {
			e.Require(b)
			for b.Loop() {
				b.StopTimer()
				url := e.NewURL(b)
				b.StartTimer()
				db, err := pierredb.OpenContext(b.Context(), url, e.Key)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = db.Close()
				b.StartTimer()
			}
		})
		b.Run(string(e.Backend)+"/migrated", func(b *testing.B) {
			e.Require(b)
			url := e.NewURL(b)
			db, err := pierredb.OpenContext(b.Context(), url, e.Key)
			if err != nil {
				b.Fatal(err)
			}
			_ = db.Close()
			for b.Loop() {
				db, err := pierredb.OpenContext(b.Context(), url, e.Key)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = db.Close()
				b.StartTimer()
			}
		})
	}
}
