package httpserver

import (
	"context"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// HealthPath is where Handler serves the health endpoint (after Options.Prefix).
const HealthPath = "/api/health"

// The health statuses.
const (
	StatusHealthy   = "healthy"
	StatusDegraded  = "degraded"
	StatusUnhealthy = "unhealthy"
)

// Health is the health endpoint's JSON body. It holds no secret: the location
// never includes a password, and key material appears only as a version number.
type Health struct {
	// Status is healthy, degraded (the database answers, but slowly, or
	// read-only) or unhealthy (it does not answer; the answer is then 503).
	Status     string         `json:"status"`
	Database   HealthDatabase `json:"database"`
	Encryption HealthKeys     `json:"encryption"`
	Version    string         `json:"version"`
	// Uptime is how long the handler has served, in seconds.
	Uptime float64 `json:"uptime"`
}

// HealthDatabase describes the database in a Health answer.
type HealthDatabase struct {
	Backend string `json:"backend"`
	// Status is "connected" or "unavailable".
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	// SchemaVersion is the newest migration the database has.
	SchemaVersion string     `json:"schema_version"`
	Pool          HealthPool `json:"pool"`
	// Location is the SQLite file or PostgreSQL host:port/database, never with a
	// password.
	Location string `json:"location"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// HealthPool is the connection pools' figures.
type HealthPool struct {
	WriteOpen  int `json:"write_open"`
	WriteInUse int `json:"write_in_use"`
	WriteMax   int `json:"write_max"`
	ReadOpen   int `json:"read_open"`
	ReadInUse  int `json:"read_in_use"`
	ReadMax    int `json:"read_max"`
	// WaitCount is how many times a request waited for a free connection.
	WaitCount int64 `json:"wait_count"`
}

// HealthKeys reports which data key version seals new secrets.
type HealthKeys struct {
	DataKeyVersion uint32 `json:"data_key_version"`
}

// HealthHandler answers GET and HEAD with the Health of db: 200 while the
// database answers, 503 when it does not, so that load balancers stop routing
// to an instance that lost its database. It writes nothing and runs one query.
func HealthHandler(db *pierredb.Database, opts Options) http.Handler {
	opts = opts.withDefaults()
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), opts.HealthTimeout)
		defer cancel()
		begin := time.Now()
		err := db.Ping(ctx)
		latency := time.Since(begin)

		info, stats := db.Info(), db.Stats()
		h := Health{
			Status: StatusHealthy,
			Database: HealthDatabase{
				Backend: string(info.Backend), Status: "connected",
				LatencyMS:     float64(latency.Microseconds()) / 1000,
				SchemaVersion: info.SchemaVersion, Location: info.Location, ReadOnly: info.ReadOnly,
				Pool: HealthPool{
					WriteOpen: stats.Write.OpenConnections, WriteInUse: stats.Write.InUse, WriteMax: stats.Write.MaxOpenConnections,
					ReadOpen: stats.Read.OpenConnections, ReadInUse: stats.Read.InUse, ReadMax: stats.Read.MaxOpenConnections,
					WaitCount: stats.Write.WaitCount + stats.Read.WaitCount,
				},
			},
			Encryption: HealthKeys{DataKeyVersion: db.Keyring().PrimaryVersion(keyring.PurposeEncryption)},
			Version:    opts.Version,
			Uptime:     time.Since(started).Round(time.Millisecond).Seconds(),
		}
		code := http.StatusOK
		switch {
		case err != nil:
			h.Status, h.Database.Status, code = StatusUnhealthy, "unavailable", http.StatusServiceUnavailable
			opts.Logger.Warn("httpserver: health check failed", "err", err.Error())
		case latency > opts.DegradedLatency || info.ReadOnly:
			h.Status = StatusDegraded
		}
		if r.Method == http.MethodHead {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(code)
			return
		}
		writeJSON(w, code, h)
	})
}

// moduleVersion is pierre's version as the build recorded it.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if bi.Main.Path == "github.com/pierre-mcp/pierre" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/pierre-mcp/pierre" {
			return d.Version
		}
	}
	return "unknown"
}
