package httpserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// discard is a ResponseWriter that keeps nothing but its headers, reset per
// request, so that a benchmark measures the handler rather than a recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) reset()                      { clear(d.h); d.code = 0 }

// engines runs fn per available engine as sub-benchmarks named after it.
func engines(b *testing.B, fn func(b *testing.B, e storetest.Engine)) {
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend), func(b *testing.B) {
			e.Require(b)
			fn(b, e)
		})
	}
}

// BenchmarkHealth: GET /api/health through the full Handler, and its parts.
func BenchmarkHealth(b *testing.B) {
	engines(b, func(b *testing.B, e storetest.Engine) {
		db := e.Open(b)
		h := httpserver.Handler(db, httpserver.Options{})
		req := httptest.NewRequest(http.MethodGet, "/api/health", nil)
		w := &discard{h: http.Header{}}
		b.Run("handler", func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				w.reset()
				t0 := time.Now()
				h.ServeHTTP(w, req)
				took = append(took, time.Since(t0))
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
			// Per request: the median and the 99th percentile.
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
		})
		b.Run("ping", func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if err := db.Ping(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkAPIKey: a request through RequireAPIKey, through the MCP go-sdk's
// RequireBearerToken with MCPVerifier, and through both, each beside
// db.APIKeys().Verify alone on the same key; the protected handler does
// nothing. The key has a quota (2^31-1 a month), so every row counts the
// request against it with the same statement.
func BenchmarkAPIKey(b *testing.B) {
	engines(b, func(b *testing.B, e storetest.Engine) {
		ctx := context.Background()
		db := e.Open(b)
		u, err := db.Users().Create(ctx, pierredb.NewUser{Email: "bench@example.com", Password: "bench password"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("bench")); err != nil {
			b.Fatal(err)
		}
		tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Bench", Slug: "bench", OwnerUserID: u.ID})
		if err != nil {
			b.Fatal(err)
		}
		scope, err := db.Tenant(ctx, tn.ID)
		if err != nil {
			b.Fatal(err)
		}
		created, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: u.ID, Name: "bench",
			RateLimit: &pierredb.RateLimit{Requests: 1<<31 - 1, Period: pierredb.PeriodMonth}})
		if err != nil {
			b.Fatal(err)
		}
		key := created.Key.Reveal()

		ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		require := httpserver.RequireAPIKey(db, httpserver.Options{})(ok)
		mcp := auth.RequireBearerToken(httpserver.MCPVerifier(db), nil)(ok)
		both := httpserver.RequireAPIKey(db, httpserver.Options{})(mcp)
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		w := &discard{h: http.Header{}}
		verify := func(b *testing.B) {
			if _, err := db.APIKeys().Verify(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		serve := func(b *testing.B, h http.Handler) {
			w.reset()
			h.ServeHTTP(w, req)
			if w.code != http.StatusNoContent {
				b.Fatalf("status %d", w.code)
			}
		}
		rows := []struct {
			name string
			h    http.Handler
		}{{"RequireAPIKey", require}, {"MCPVerifier", mcp}, {"RequireAPIKey+MCPVerifier", both}}

		b.Run("Verify", func(b *testing.B) {
			for b.Loop() {
				verify(b)
			}
		})
		for _, row := range rows {
			b.Run(row.name, func(b *testing.B) {
				for b.Loop() {
					serve(b, row.h)
				}
			})
		}
		// Paired: Verify and the handler alternately (the order swapped every
		// other iteration), each call timed, so that both see the same load.
		// Reported: the medians of both sides, their ratio, and the median of
		// the per-iteration differences (what the HTTP layer adds).
		for _, row := range rows {
			b.Run("paired/"+row.name, func(b *testing.B) {
				var tv, th []time.Duration
				n := 0
				for b.Loop() {
					var dv, dh time.Duration
					if n%2 == 0 {
						t0 := time.Now()
						verify(b)
						t1 := time.Now()
						serve(b, row.h)
						dv, dh = t1.Sub(t0), time.Since(t1)
					} else {
						t0 := time.Now()
						serve(b, row.h)
						t1 := time.Now()
						verify(b)
						dh, dv = t1.Sub(t0), time.Since(t1)
					}
					tv, th = append(tv, dv), append(th, dh)
					n++
				}
				diff := make([]time.Duration, n)
				for i := range n {
					diff[i] = th[i] - tv[i]
				}
				mv, mh := median(tv), median(th)
				b.ReportMetric(float64(mv.Nanoseconds()), "verify-p50-ns")
				b.ReportMetric(float64(mh.Nanoseconds()), "handler-p50-ns")
				b.ReportMetric(float64(mh)/float64(mv), "ratio-p50")
				b.ReportMetric(float64(median(diff).Nanoseconds()), "added-p50-ns")
			})
		}
	})
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
