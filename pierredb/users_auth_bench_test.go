package pierredb_test

import (
	"errors"
	"testing"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkAuthenticate compares a login with a known email and a wrong password
// to one with an unknown email: the dummy verify makes them cost about the same,
// so response time does not tell which emails exist.
//
//	go test -run '^$' -bench Authenticate ./pierredb/
func BenchmarkAuthenticate(b *testing.B) {
	const wrong = "Wr0ng-Passw0rd-attempt"
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend), func(b *testing.B) {
			e.Require(b)
			ctx := b.Context()
			db := e.Open(b)
			u, err := db.Users().Create(ctx, pierredb.NewUser{Email: "bench@example.com", Password: storetest.Password})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("bench")); err != nil {
				b.Fatal(err)
			}

			for _, bc := range []struct{ name, email, pw string }{
				{"known-email-wrong-password", u.Email, wrong},
				{"unknown-email", "nobody@example.com", wrong},
				{"right-password", u.Email, storetest.Password},
			} {
				b.Run(bc.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						_, err := db.Authenticate(ctx, bc.email, bc.pw)
						if bc.pw == storetest.Password {
							if err != nil {
								b.Fatal(err)
							}
						} else if !errors.Is(err, pierredb.ErrInvalidCredentials) {
							b.Fatalf("got %v", err)
						}
					}
				})
			}
		})
	}
}
