// Package httpserver mounts pierre's HTTP routes into a host application's
// http.ServeMux. Today that is the health endpoint; admin routes build on it.
//
//	mux := http.NewServeMux()
//	httpserver.MountHealth(mux, db)
//	http.ListenAndServe(":8080", mux)
package httpserver

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/pierre-mcp/pierre/pierredb"
)

// HealthPath is where MountHealth serves the health endpoint.
const HealthPath = "/health"

// Health is the health endpoint's JSON body. It says whether the database answers
// and nothing an anonymous caller should not see: no location, no key material.
type Health struct {
	// Status is "ok" or "unavailable".
	Status string `json:"status"`
	// Backend is "sqlite" or "postgres".
	Backend string `json:"backend"`
	// LatencyMS is how long the database ping took, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
}

// HealthHandler answers GET and HEAD with 200 and a Health body when the database
// answers a ping within timeout, and 503 otherwise, so that load balancers stop
// routing to an instance that lost its database.
func HealthHandler(db *pierredb.Database, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		start := time.Now()
		err := db.Ping(ctx)
		h := Health{Status: "ok", Backend: string(db.Backend()), LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
		code := http.StatusOK
		if err != nil {
			h.Status, code = "unavailable", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			_ = json.NewEncoder(w).Encode(h)
		}
	})
}

// MountHealth registers the health endpoint at HealthPath on mux, with a 2 s
// ping timeout.
func MountHealth(mux *http.ServeMux, db *pierredb.Database) {
	h := HealthHandler(db, 2*time.Second)
	mux.Handle("GET "+HealthPath, h) // the GET pattern also matches HEAD
}
