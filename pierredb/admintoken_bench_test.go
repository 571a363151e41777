package pierredb_test

import (
	"database/sql"
	"fmt"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkAdminTokenVerify measures admin token verification and its parts,
// side by side with a hand-written database/sql baseline doing the same work
// on the same database, in the same run, over 64 tokens used in turn:
//
//	pierre       AdminTokens.Verify(token, list_keys): everything
//	parse        its first step alone: shape, HS256, kid, HMAC signature, claims (no query)
//	lookup       its query alone: the token's row and the current secret's hash (prepared, reader pool)
//	hash         the keyed hash of the whole token checked against the stored one
//	raw-lookup   the same SELECT through a *sql.Stmt prepared once on a plain *sql.DB
//	raw-verify   the same work written by hand: jwt.Parse (HS256, strict, iss, aud) with the key
//	             in a variable, raw-lookup, the hash check, the secret-hash and flag checks
//
// On SQLite the baseline is its own *sql.DB (same driver, same file, mode=ro);
// on PostgreSQL, sql.Open("pgx", url) with pierre's TLS setting.
//
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  go test -run '^$' -bench BenchmarkAdminTokenVerify -benchmem -count 5 ./pierredb/
func BenchmarkAdminTokenVerify(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend), func(b *testing.B) {
			e.Require(b)
			ctx := b.Context()
			url := e.NewURL(b)
			db := e.OpenURL(b, url)
			admin := db.AdminTokens()
			root, err := admin.CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "bench root"})
			if err != nil {
				b.Fatal(err)
			}
			rootP, err := admin.Verify(ctx, root.Token.Reveal(), "")
			if err != nil {
				b.Fatal(err)
			}
			var tokens, ids, hashes []string
			for i := range 64 {
				c, err := admin.Create(ctx, rootP, pierredb.NewAdminToken{ServiceName: fmt.Sprintf("bench %d", i),
					Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys, pierredb.AdminRevokeKeys}})
				if err != nil {
					b.Fatal(err)
				}
				tokens, ids = append(tokens, c.Token.Reveal()), append(ids, c.ID)
				h, err := pierredb.LookupAdminToken(ctx, db, c.ID)
				if err != nil {
					b.Fatal(err)
				}
				hashes = append(hashes, h)
			}
			if _, err := pierredb.EngineOf(db).Writer.ExecContext(ctx, "ANALYZE"); err != nil {
				b.Fatal(err)
			}
			var env []byte
			if err := db.Bun().QueryRowContext(ctx, "SELECT secret_encrypted FROM admin_jwt_secret WHERE id = 1").Scan(&env); err != nil {
				b.Fatal(err)
			}
			secret, err := db.Keyring().Decrypt(env, keyring.Context{Table: "admin_jwt_secret", Column: "secret_encrypted", RowID: "1"})
			if err != nil {
				b.Fatal(err)
			}
			raw := openAdminBaseline(b, e, db, url)

			b.Run("pierre", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := admin.Verify(ctx, tokens[i%len(tokens)], pierredb.AdminListKeys); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("parse", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := pierredb.ParseAdminToken(ctx, db, tokens[i%len(tokens)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("lookup", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := pierredb.LookupAdminToken(ctx, db, ids[i%len(ids)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("hash", func(b *testing.B) {
				b.ReportAllocs()
				keys := db.Keyring()
				i := 0
				for b.Loop() {
					ok, err := keys.VerifyCredential(pierredb.AdminTokenHashDomain, []byte(tokens[i%len(tokens)]), hashes[i%len(hashes)])
					if err != nil || !ok {
						b.Fatal("hash mismatch", err)
					}
					i++
				}
			})
			stmt, err := raw.PrepareContext(ctx, pierredb.Rebind(db, pierredb.AdminVerifySQL))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = stmt.Close() })
			type rawRow struct {
				service, perms        string
				super, active         bool
				tokenHash, secretHash string
				current               sql.NullString
			}
			lookup := func(id string) (rawRow, error) {
				var r rawRow
				var expires any
				err := stmt.QueryRowContext(ctx, id).Scan(&r.service, &r.perms, &r.super, &r.active, &expires, &r.tokenHash, &r.secretHash, &r.current)
				return r, err
			}
			b.Run("raw-lookup", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := lookup(ids[i%len(ids)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithStrictDecoding(),
				jwt.WithIssuer("pierre"), jwt.WithAudience("pierre-admin"))
			keyfunc := func(*jwt.Token) (any, error) { return secret, nil }
			keys := db.Keyring()
			rawVerify := func(b *testing.B, token string) {
				var claims jwt.RegisteredClaims
				if _, err := parser.ParseWithClaims(token, &claims, keyfunc); err != nil {
					b.Fatal(err)
				}
				r, err := lookup(claims.Subject)
				if err != nil {
					b.Fatal(err)
				}
				ok, err := keys.VerifyCredential(pierredb.AdminTokenHashDomain, []byte(token), r.tokenHash)
				if err != nil || !ok || !r.active || r.secretHash != r.current.String || !strings.Contains(r.perms, `"list_keys"`) {
					b.Fatal("refused", err)
				}
			}
			b.Run("raw-verify", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					rawVerify(b, tokens[i%len(tokens)])
					i++
				}
			})
			// paired runs pierre's Verify and the hand-written one alternately on
			// the same token and times each call, so that both see the same load
			// (the machine is shared): its metrics are each side's mean and their
			// ratio.
			b.Run("paired", func(b *testing.B) {
				var pierreNS, rawNS time.Duration
				i := 0
				for b.Loop() {
					token := tokens[i%len(tokens)]
					t0 := time.Now()
					if _, err := admin.Verify(ctx, token, pierredb.AdminListKeys); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					rawVerify(b, token)
					t2 := time.Now()
					if i%2 == 1 { // the other order every second time
						rawVerify(b, token)
						t3 := time.Now()
						if _, err := admin.Verify(ctx, token, pierredb.AdminListKeys); err != nil {
							b.Fatal(err)
						}
						t4 := time.Now()
						rawNS += t3.Sub(t2)
						pierreNS += t4.Sub(t3)
					}
					pierreNS += t1.Sub(t0)
					rawNS += t2.Sub(t1)
					i++
				}
				b.ReportMetric(float64(pierreNS.Nanoseconds())/float64(b.N+b.N/2), "pierre-ns/verify")
				b.ReportMetric(float64(rawNS.Nanoseconds())/float64(b.N+b.N/2), "raw-ns/verify")
				b.ReportMetric(float64(pierreNS)/float64(rawNS), "ratio")
			})
		})
	}
}

// openAdminBaseline opens the hand-written baseline's connection to the
// database at url: SQLite read-only on the same file, PostgreSQL through pgx
// with pierre's TLS setting.
func openAdminBaseline(b *testing.B, e storetest.Engine, db *pierredb.Database, url string) *sql.DB {
	b.Helper()
	var raw *sql.DB
	var err error
	switch e.Backend {
	case pierredb.SQLite:
		path, _ := strings.CutPrefix(url, "sqlite:")
		raw, err = sql.Open(sqliteshim.ShimName, "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)&_busy_timeout=5000")
		if err == nil {
			raw.SetMaxIdleConns(2)
		}
	default:
		u, perr := neturl.Parse(url)
		if perr != nil {
			b.Fatal(perr)
		}
		if q := u.Query(); q.Get("sslmode") == "" && db.Info().Settings["ssl"] == "false" {
			q.Set("sslmode", "disable")
			u.RawQuery = q.Encode()
		}
		raw, err = sql.Open("pgx", u.String())
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = raw.Close() })
	return raw
}
