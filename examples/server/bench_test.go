package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkWhoami is an MCP tools/call of whoami end to end: the go-sdk's
// client, over loopback HTTP, to the example's routes (RequireAPIKey, the
// go-sdk's bearer check with pierre's verifier, the streamable transport, the
// tool). Each iteration also runs what pierre does for that request, the API
// key's Verify (the only database work whoami's request makes), called
// directly; the order alternates every other iteration so both sides see the
// same load. Reported per call: p50-µs and p99-µs of the tools/call,
// verify-p50-µs, and pierre-share, the ratio of the two medians
// (BENCHMARKS.md, "An MCP tools/call").
//
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  go test -run '^$' -bench BenchmarkWhoami -benchtime 2000x -count 5 ./examples/server/
//
// Each engine runs with its default counting; PostgreSQL runs again counting in
// memory (postgres/in-memory, WithUsageFlushInterval(time.Second): what a
// single instance may choose; SQLite's default).
func BenchmarkWhoami(b *testing.B) {
	type variant struct {
		name string
		e    storetest.Engine
		opts []pierredb.Option
	}
	var variants []variant
	for _, e := range storetest.Engines() {
		variants = append(variants, variant{string(e.Backend), e, nil})
		if e.Backend == pierredb.Postgres {
			variants = append(variants, variant{string(e.Backend) + "/in-memory", e, []pierredb.Option{pierredb.WithUsageFlushInterval(time.Second)}})
		}
	}
	for _, v := range variants {
		e := v.e
		b.Run(v.name, func(b *testing.B) {
			e.Require(b)
			ctx := b.Context()
			db := e.Open(b, append([]pierredb.Option{pierredb.WithHostMigrations(hostMigrations())}, v.opts...)...)
			u, err := db.Users().Create(ctx, pierredb.NewUser{Email: "bench@example.com", Password: storetest.Password})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("bench")); err != nil {
				b.Fatal(err)
			}
			tenant, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Bench", Slug: "bench", OwnerUserID: u.ID})
			if err != nil {
				b.Fatal(err)
			}
			scope, err := db.Tenant(ctx, tenant.ID)
			if err != nil {
				b.Fatal(err)
			}
			// A quota that is counted (as a real key's is) but never reached.
			key, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: u.ID, Name: "bench",
				RateLimit: &pierredb.RateLimit{Requests: 1<<31 - 1}})
			if err != nil {
				b.Fatal(err)
			}
			plaintext := key.Key.Reveal()

			mux, _, _ := routes(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
			srv := httptest.NewServer(mux)
			b.Cleanup(srv.Close)
			client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
			session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp",
				HTTPClient: &http.Client{Transport: bearerTransport{key: plaintext}}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = session.Close() })

			call := func() time.Duration {
				start := time.Now()
				res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
				d := time.Since(start)
				if err != nil || res.IsError {
					b.Fatalf("whoami: %v %v", err, res)
				}
				return d
			}
			verify := func() time.Duration {
				start := time.Now()
				_, err := db.APIKeys().Verify(ctx, plaintext)
				d := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				return d
			}
			var calls, verifies []time.Duration
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					calls = append(calls, call())
					verifies = append(verifies, verify())
				} else {
					verifies = append(verifies, verify())
					calls = append(calls, call())
				}
				i++
			}
			slices.Sort(calls)
			slices.Sort(verifies)
			p50, p99, v50 := calls[len(calls)/2], calls[len(calls)*99/100], verifies[len(verifies)/2]
			b.ReportMetric(float64(p50.Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(float64(v50.Nanoseconds())/1e3, "verify-p50-µs")
			b.ReportMetric(float64(v50)/float64(p50), "pierre-share")
		})
	}
}
