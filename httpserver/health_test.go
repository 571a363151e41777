package httpserver_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// statements is a slog handler for pierredb.WithQueryLog that keeps every
// statement the database runs.
type statements struct {
	mu      sync.Mutex
	queries []string
}

func (s *statements) Enabled(context.Context, slog.Level) bool { return true }
func (s *statements) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *statements) WithGroup(string) slog.Handler            { return s }
func (s *statements) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "query" {
			s.mu.Lock()
			s.queries = append(s.queries, a.Value.String())
			s.mu.Unlock()
		}
		return true
	})
	return nil
}

// take returns the statements run since the last take.
func (s *statements) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queries
	s.queries = nil
	return q
}

// pgPassword is put into the PostgreSQL URL (the test server trusts every
// connection, so any password opens it): it must never come out.
const pgPassword = "pg-s3cret-Pa55word"

func TestHealth(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		u := e.NewURL(t)
		if e.Backend == pierredb.Postgres {
			pu, err := url.Parse(u)
			require.NoError(t, err)
			pu.User = url.UserPassword(pu.User.Username(), pgPassword)
			u = pu.String()
		}
		stmts := &statements{}
		h := newHarnessAt(t, e, u, httpserver.Options{Version: "v1.2.3-test"}, pierredb.WithQueryLog(slog.New(stmts)))
		h.secret("database password", pgPassword)
		// Some data, so that a health check that wrote or counted would show.
		adminID, _ := h.setup()
		_ = adminID
		stmts.take()

		t.Run("GET", func(t *testing.T) {
			defer h.use(t)()
			for range 3 {
				res := h.do(request{method: "GET", path: "/api/health"}).expect(http.StatusOK)
				m := res.json()
				hasFields(t, m, "status", "database", "encryption", "version", "uptime")
				assert.Equal(t, "healthy", m["status"])
				assert.Equal(t, "v1.2.3-test", m["version"])
				assert.GreaterOrEqual(t, m["uptime"], float64(0))
				d := obj(t, m["database"])
				hasFields(t, d, "backend", "status", "latency_ms", "schema_version", "pool", "location")
				assert.Equal(t, string(e.Backend), d["backend"])
				assert.Equal(t, "connected", d["status"])
				assert.GreaterOrEqual(t, d["latency_ms"], float64(0))
				assert.Equal(t, h.db.Info().SchemaVersion, d["schema_version"])
				assert.NotEmpty(t, d["schema_version"])
				hasFields(t, obj(t, d["pool"]), "write_open", "write_in_use", "write_max", "read_open", "read_in_use", "read_max", "wait_count")
				assert.Positive(t, obj(t, d["pool"])["write_max"])
				loc := str(t, d["location"])
				assert.NotEmpty(t, loc)
				assert.NotContains(t, loc, "@")
				assert.NotContains(t, loc, pgPassword)
				assert.NotContains(t, loc, "postgres:")
				assert.Equal(t, float64(h.db.Keyring().PrimaryVersion(keyring.PurposeEncryption)), obj(t, m["encryption"])["data_key_version"])
				assert.Positive(t, obj(t, m["encryption"])["data_key_version"])

				// At most one statement, and no write.
				q := stmts.take()
				assert.LessOrEqual(t, len(q), 1, "statements of one health check: %q", q)
				for _, s := range q {
					up := strings.ToUpper(strings.TrimSpace(s))
					for _, w := range []string{"INSERT", "UPDATE", "DELETE", "BEGIN", "CREATE", "ALTER"} {
						assert.False(t, strings.HasPrefix(up, w), "the health check wrote: %s", s)
					}
				}
			}
		})

		t.Run("HEAD and other methods", func(t *testing.T) {
			defer h.use(t)()
			res := h.do(request{method: "HEAD", path: "/api/health"})
			assert.Equal(t, http.StatusOK, res.Code)
			assert.Empty(t, res.Body)
			for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
				res := h.do(request{method: m, path: "/api/health", body: "{}"})
				res.expectError(http.StatusMethodNotAllowed, httpserver.CodeMethodNotAllowed)
				assert.Equal(t, "GET, HEAD", res.Header.Get("Allow"))
			}
			assert.Empty(t, stmts.take())
		})

		t.Run("degraded", func(t *testing.T) {
			defer h.use(t)()
			slow := httpserver.HealthHandler(h.db, httpserver.Options{DegradedLatency: 1})
			m := h.serve(slow, request{method: "GET", path: "/api/health"}).expect(http.StatusOK).json()
			assert.Equal(t, "degraded", m["status"])
			stmts.take()
		})

		t.Run("prefix and Mount", func(t *testing.T) {
			defer h.use(t)()
			for _, prefix := range []string{"/pierre", "/pierre/", "pierre"} {
				hh := httpserver.Handler(h.db, httpserver.Options{Prefix: prefix})
				h.serve(hh, request{method: "GET", path: "/pierre/api/health"}).expect(http.StatusOK)
				h.serve(hh, request{method: "GET", path: "/pierre/admin/setup/status"}).expect(http.StatusOK)
				h.serve(hh, request{method: "GET", path: "/api/health"}).expectError(http.StatusNotFound, httpserver.CodeNotFound)
				h.serve(hh, request{method: "GET", path: "/admin/setup/status"}).expectError(http.StatusNotFound, httpserver.CodeNotFound)
			}
			// Mounted into a host's ServeMux, over a real connection.
			mux := http.NewServeMux()
			mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("host")) })
			httpserver.Mount(mux, h.db, httpserver.Options{Prefix: "/ops"})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			for path, want := range map[string]int{"/ops/api/health": 200, "/ops/admin/setup/status": 200, "/ops/admin/nope": 404, "/": 200} {
				resp, err := srv.Client().Get(srv.URL + path)
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, want, resp.StatusCode, path)
			}
			resp, err := srv.Client().Head(srv.URL + "/ops/api/health")
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			stmts.take()
		})

		// Last: the database goes away.
		t.Run("unavailable", func(t *testing.T) {
			defer h.use(t)()
			h.storedSecrets()
			require.NoError(t, h.db.Close())
			res := h.do(request{method: "GET", path: "/api/health"}).expect(http.StatusServiceUnavailable)
			m := res.json()
			assert.Equal(t, "unhealthy", m["status"])
			assert.Equal(t, "unavailable", obj(t, m["database"])["status"])
			res = h.do(request{method: "HEAD", path: "/api/health"})
			assert.Equal(t, http.StatusServiceUnavailable, res.Code)
			assert.Contains(t, h.logs.String(), "health check failed")
			// The admin API answers 503 too, not 500.
			h.do(request{method: "GET", path: "/admin/setup/status"}).expectError(http.StatusServiceUnavailable, httpserver.CodeUnavailable)
		})
	})
}

// TestHealthReadOnly: a SQLite database opened read-only is degraded, and the
// admin API's writes on it are 503, not 500.
func TestHealthReadOnly(t *testing.T) {
	t.Parallel()
	storetest.RunOn(t, pierredb.SQLite, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		u := e.NewURL(t)
		rw := e.OpenURL(t, u)
		require.NoError(t, rw.Close())
		h := newHarnessAt(t, e, u+"?mode=ro", httpserver.Options{})
		m := h.do(request{method: "GET", path: "/api/health"}).expect(http.StatusOK).json()
		assert.Equal(t, "degraded", m["status"])
		assert.Equal(t, true, obj(t, m["database"])["read_only"])
		h.do(request{method: "GET", path: "/admin/setup/status"}).expect(http.StatusOK)
		h.do(request{method: "POST", path: "/admin/setup", body: map[string]any{"email": "a@example.com", "password": "long enough password"}}).
			expectError(http.StatusServiceUnavailable, httpserver.CodeUnavailable)
	})
}
