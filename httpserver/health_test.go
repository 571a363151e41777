package httpserver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

func TestHealth(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		db := e.Open(t)
		mux := http.NewServeMux()
		httpserver.MountHealth(mux, db)

		for _, tc := range []struct {
			method   string
			wantCode int
			wantBody bool
		}{
			{http.MethodGet, http.StatusOK, true},
			{http.MethodHead, http.StatusOK, false},
			{http.MethodPost, http.StatusMethodNotAllowed, false},
		} {
			t.Run(tc.method, func(t *testing.T) {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(tc.method, httpserver.HealthPath, nil))
				require.Equal(t, tc.wantCode, rec.Code)
				if !tc.wantBody {
					return
				}
				assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				var h httpserver.Health
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &h))
				assert.Equal(t, "ok", h.Status)
				assert.Equal(t, string(e.Backend), h.Backend)
				assert.NotContains(t, rec.Body.String(), db.Info().Location, "no location for anonymous callers")
			})
		}

		// A database that stopped answering makes the instance unhealthy.
		require.NoError(t, db.Close())
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, httpserver.HealthPath, nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		var h httpserver.Health
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &h))
		assert.Equal(t, "unavailable", h.Status)
	})
}
