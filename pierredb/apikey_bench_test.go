package pierredb_test

import (
	"crypto/subtle"
	"database/sql"
	"fmt"
	"hash/crc32"
	neturl "net/url"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkAPIKeyVerify compares API key verification with a hand-written
// database/sql baseline doing the same work on the same database, in the same
// run (figures in .bench/apikeys.md):
//
//	<engine>/check/{pierre,raw}        verify without counting
//	<engine>/verify/{pierre,raw}       verify and count one request (pierre as
//	                                   its engine counts by default: in memory on
//	                                   SQLite, in the database on PostgreSQL)
//	<engine>/verify/per-request        pierre with WithUsageFlushInterval(0):
//	                                   one counter statement per request, the
//	                                   work raw does
//	<engine>/refused/{unknown,wrong}   a well-formed unknown key; a key with a
//	                                   known lookup prefix and a wrong tail
//	<engine>/parallel8/{pierre,raw}    8 goroutines verifying (and counting) 8
//	                                   different keys; reports verifies/s
//	<engine>/{check,verify}/paired     pierre and raw alternately in one loop, each
//	                                   call timed: reports the median of each and
//	                                   their ratio, which a busy machine disturbs
//	                                   far less than it does separate runs; for
//	                                   verify, pierre counts per request (the same
//	                                   work as raw)
//	<engine>/verify/paired-vs-lookup   verify/pierre (the default) paired with
//	                                   check/raw (the lookup and HMAC compare
//	                                   alone): the counting target
//
// raw is a prepared *sql.Stmt running pierre's own lookup (the key by lookup
// prefix joined with its user and tenant), scanning into plain values, then the
// keyring's HMAC compare; for verify it also runs pierre's counter statement,
// prepared, or on PostgreSQL pierre's one lookup-and-count statement instead of
// both (with the keyed hash computed first, as pierre does). On SQLite the baseline is its own *sql.DB on the same file (same
// driver); on PostgreSQL it is sql.Open("pgx", url), pgx's stdlib driver with
// its defaults (and pierre's TLS setting).
//
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  go test -run '^$' -bench BenchmarkAPIKeyVerify -benchmem -count 5 ./pierredb/
func BenchmarkAPIKeyVerify(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend), func(b *testing.B) {
			e.Require(b)
			f := newKeyBench(b, e)
			lookup := f.prepare(b, pierredb.VerifyAPIKeySQL)
			count := f.prepare(b, pierredb.CountAPIKeyUsageSQL(f.perRequest))
			if both := pierredb.VerifyCountAPIKeySQL(f.perRequest); both != "" {
				// pierre looks up and counts in one statement here: so does raw.
				f.oneTrip = f.prepare(b, both)
			}
			ctx := b.Context()

			b.Run("check", func(b *testing.B) {
				b.Run("pierre", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, err := f.db.APIKeys().Check(ctx, f.keys[i%len(f.keys)]); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
				b.Run("raw", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						f.rawVerify(b, lookup, nil, f.keys[i%len(f.keys)])
						i++
					}
				})
				b.Run("paired", func(b *testing.B) {
					f.paired(b, func(key string) {
						if _, err := f.db.APIKeys().Check(ctx, key); err != nil {
							b.Fatal(err)
						}
					}, func(key string) { f.rawVerify(b, lookup, nil, key) })
				})
			})
			b.Run("verify", func(b *testing.B) {
				b.Run("pierre", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, err := f.db.APIKeys().Verify(ctx, f.keys[i%len(f.keys)]); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
				b.Run("per-request", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, err := f.perRequest.APIKeys().Verify(ctx, f.keys[i%len(f.keys)]); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
				b.Run("raw", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						f.rawVerify(b, lookup, count, f.keys[i%len(f.keys)])
						i++
					}
				})
				b.Run("paired", func(b *testing.B) {
					f.paired(b, func(key string) {
						if _, err := f.perRequest.APIKeys().Verify(ctx, key); err != nil {
							b.Fatal(err)
						}
					}, func(key string) { f.rawVerify(b, lookup, count, key) })
				})
				// The baseline of the SQLite target: verify/pierre against the raw
				// lookup and HMAC compare alone.
				b.Run("paired-vs-lookup", func(b *testing.B) {
					f.paired(b, func(key string) {
						if _, err := f.db.APIKeys().Verify(ctx, key); err != nil {
							b.Fatal(err)
						}
					}, func(key string) { f.rawVerify(b, lookup, nil, key) })
				})
			})
			b.Run("refused", func(b *testing.B) {
				unknown, _ := credential.New("pk_live")
				wrong := wrongTail(f.keys[0])
				for _, bc := range []struct{ name, key string }{{"unknown", unknown}, {"wrong", wrong}} {
					b.Run(bc.name, func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							if _, err := f.db.APIKeys().Verify(ctx, bc.key); err == nil {
								b.Fatal("accepted")
							}
						}
					})
				}
			})
			b.Run("parallel8", func(b *testing.B) {
				parallel := func(b *testing.B, verify func(key string) error) {
					var next atomic.Int64
					b.SetParallelism(max(1, 8/maxProcs()))
					b.ReportAllocs()
					start := time.Now()
					b.RunParallel(func(pb *testing.PB) {
						key := f.keys[int(next.Add(1)-1)%len(f.keys)] // a key per goroutine
						for pb.Next() {
							if err := verify(key); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "verifies/s")
				}
				b.Run("pierre", func(b *testing.B) {
					parallel(b, func(key string) error { _, err := f.db.APIKeys().Verify(ctx, key); return err })
				})
				b.Run("per-request", func(b *testing.B) {
					parallel(b, func(key string) error { _, err := f.perRequest.APIKeys().Verify(ctx, key); return err })
				})
				b.Run("raw", func(b *testing.B) {
					parallel(b, func(key string) error { f.rawVerify(b, lookup, count, key); return nil })
				})
			})
		})
	}
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }

// keyBench is a database with 8 keys of 8 members of one tenant, and a
// baseline pool on the same database.
type keyBench struct {
	backend    pierredb.Backend
	db         *pierredb.Database // counting as its engine does by default
	perRequest *pierredb.Database // the same database, counting per request
	raw        *sql.DB
	oneTrip    *sql.Stmt // pierre's lookup-and-count statement, where the engine has one
	keys       []string
}

func newKeyBench(b *testing.B, e storetest.Engine) *keyBench {
	b.Helper()
	ctx := b.Context()
	url := e.NewURL(b)
	db := e.OpenURL(b, url, pierredb.WithAutoApproveUsers(true))
	f := &keyBench{backend: e.Backend, db: db, perRequest: e.OpenURL(b, url, pierredb.WithUsageFlushInterval(0))}
	owner, err := pierredb.InsertUserWithHash(ctx, db, pierredb.NewUser{Email: "bench-owner@example.com"}, "$argon2id$bench")
	if err != nil {
		b.Fatal(err)
	}
	tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Bench", Slug: "bench", OwnerUserID: owner.ID})
	if err != nil {
		b.Fatal(err)
	}
	scope, err := db.Tenant(ctx, tn.ID)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 8 {
		u, err := pierredb.InsertUserWithHash(ctx, db, pierredb.NewUser{Email: fmt.Sprintf("bench-%d@example.com", i)}, "$argon2id$bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := scope.Members().Add(ctx, u.ID, pierredb.RoleMember); err != nil {
			b.Fatal(err)
		}
		// A limit no benchmark reaches: the counter's WHERE is evaluated as in
		// production.
		k, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: u.ID, Name: "bench", RateLimit: &pierredb.RateLimit{Requests: 1<<31 - 1}})
		if err != nil {
			b.Fatal(err)
		}
		f.keys = append(f.keys, k.Key.Reveal())
	}
	if _, err := pierredb.EngineOf(db).Writer.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	switch e.Backend {
	case pierredb.SQLite:
		path := strings.TrimPrefix(url, "sqlite:")
		// pierre's connection settings: modernc reads _pragma, mattn reads
		// _busy_timeout and friends; each ignores the other's.
		f.raw, err = sql.Open(sqliteshim.ShimName, "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"+
			"&_busy_timeout=5000&_foreign_keys=1&_synchronous=NORMAL")
		if err != nil {
			b.Fatal(err)
		}
		f.raw.SetMaxIdleConns(3) // as many as pierre's pools keep: a writer and GOMAXPROCS readers
		f.raw.SetMaxOpenConns(3)
		var sync, fk int
		if err := f.raw.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
			b.Fatalf("baseline synchronous = %d, %v; want 1 (NORMAL)", sync, err)
		}
		if err := f.raw.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			b.Fatalf("baseline foreign_keys = %d, %v; want 1", fk, err)
		}
	default:
		u, err := neturl.Parse(url)
		if err != nil {
			b.Fatal(err)
		}
		if q := u.Query(); q.Get("sslmode") == "" && db.Info().Settings["ssl"] == "false" {
			q.Set("sslmode", "disable")
			u.RawQuery = q.Encode()
		}
		if f.raw, err = sql.Open("pgx", u.String()); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { _ = f.raw.Close() })
	return f
}

// paired runs pierre and raw alternately (each first every other time) on the
// same keys, times every call, and reports the medians and their ratio.
func (f *keyBench) paired(b *testing.B, pierre, raw func(key string)) {
	var dp, dr []time.Duration
	i := 0
	for b.Loop() {
		key := f.keys[i%len(f.keys)]
		first, second, d1, d2 := pierre, raw, &dp, &dr
		if i%2 == 1 {
			first, second, d1, d2 = raw, pierre, &dr, &dp
		}
		t0 := time.Now()
		first(key)
		t1 := time.Now()
		second(key)
		*d1, *d2 = append(*d1, t1.Sub(t0)), append(*d2, time.Since(t1))
		i++
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	mp, mr := median(dp), median(dr)
	b.ReportMetric(mp, "pierre-ns/op")
	b.ReportMetric(mr, "raw-ns/op")
	b.ReportMetric(mp/mr, "ratio")
}

func (f *keyBench) prepare(b *testing.B, query string) *sql.Stmt {
	b.Helper()
	if f.backend == pierredb.Postgres {
		var sb strings.Builder
		n := 0
		for _, r := range query {
			if r == '?' {
				n++
				fmt.Fprintf(&sb, "$%d", n)
				continue
			}
			sb.WriteRune(r)
		}
		query = sb.String()
	}
	s, err := f.raw.PrepareContext(b.Context(), query)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// rawVerify is the baseline: the lookup, the HMAC compare, the status checks,
// and (count not nil) the counter statement; where the engine looks up and
// counts in one statement (f.oneTrip), that statement instead of both.
func (f *keyBench) rawVerify(b *testing.B, lookup, count *sql.Stmt, key string) {
	var id, tenantID, userID, name, hash, tier, period, email, status string
	var limit, counted sql.NullInt64
	var active, userActive, tenantActive bool
	var expires, revoked any
	var one int
	// The benchmark's context, as pierre's calls get: a cancellable context
	// costs database/sql and the drivers a watcher per statement.
	ctx := b.Context()
	now := time.Now().UTC()
	const stamp = "2006-01-02T15:04:05.000000Z"
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(stamp)
	dest := []any{&id, &tenantID, &userID, &name, &hash, &tier, &limit, &period,
		&active, &expires, &revoked, &email, &status, &userActive, &tenantActive}
	var err error
	var expected string
	if count != nil && f.oneTrip != nil {
		expected = f.db.Keyring().HashCredential(pierredb.APIKeyHashDomain, []byte(key))
		// The keys' period is a month: the other windows are passed, not used.
		hour, day := now.Truncate(time.Hour).Format(stamp), now.Truncate(24*time.Hour).Format(stamp)
		err = f.oneTrip.QueryRowContext(ctx, key[:len("pk_live_")+12], hour, day, day, month, now.Format(stamp), expected, now.Format(stamp)).
			Scan(append(dest, &counted, &one)...)
	} else {
		err = lookup.QueryRowContext(ctx, key[:len("pk_live_")+12]).Scan(dest...)
	}
	if err != nil {
		b.Fatal(err)
	}
	var ok bool
	if expected != "" {
		ok = subtle.ConstantTimeCompare([]byte(hash), []byte(expected)) == 1
	} else {
		ok, err = f.db.Keyring().VerifyCredential(pierredb.APIKeyHashDomain, []byte(key), hash)
	}
	if err != nil || !ok || !active || revoked != nil || expires != nil || status != "active" || !userActive || !tenantActive {
		b.Fatalf("baseline refused the key: %v", err)
	}
	if count == nil || expected != "" {
		if expected != "" && !counted.Valid {
			b.Fatal("baseline: the statement did not count")
		}
		return
	}
	window := month
	var n int64
	if err := count.QueryRowContext(ctx, tenantID, id, window, now.Format(stamp), limit.Int64).Scan(&n); err != nil {
		b.Fatal(err)
	}
}

// wrongTail keeps key's lookup prefix and replaces the rest with a well-formed
// tail: the row is found and the hash does not match.
func wrongTail(key string) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	other, _ := credential.New("pk_live")
	body := key[:len("pk_live_")+12] + other[len("pk_live_")+12:len(other)-credential.ChecksumLength]
	v := uint64(crc32.ChecksumIEEE([]byte(body)))
	sum := make([]byte, credential.ChecksumLength)
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = base62[v%62]
		v /= 62
	}
	wrong := body + string(sum)
	if _, _, err := credential.Parse(wrong, "pk_live"); err != nil || wrong == key {
		panic("wrongTail: not a well-formed other key")
	}
	return wrong
}
