package httpserver

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/pierredb"
)

// Router is what a host's router offers to register a handler: net/http's
// ServeMux has it. Mount registers ServeMux patterns on it; a router with
// another pattern syntax (chi, echo, gin) mounts Handler at its catch-all.
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Options shape the handlers. The zero value is the documented default of each
// field.
type Options struct {
	// Prefix is put before every path: "" serves /api/health and /admin/...,
	// "/pierre" serves /pierre/api/health and /pierre/admin/....
	Prefix string
	// Logger receives one line per failed request (never a secret); by default
	// nothing is logged.
	Logger *slog.Logger
	// Version is reported by the health endpoint; by default the pierre module's
	// version from the build information.
	Version string
	// HealthTimeout bounds the health endpoint's database query (default 2 s).
	HealthTimeout time.Duration
	// DegradedLatency is the database latency above which health reports
	// "degraded" (default 500 ms).
	DegradedLatency time.Duration
	// TrustProxyHeaders makes the admin audit trail record the client address
	// from X-Forwarded-For / X-Real-IP; leave it off unless a trusted proxy sets
	// them, or a client could write any address into the audit trail.
	TrustProxyHeaders bool
}

func (o Options) withDefaults() Options {
	o.Prefix = cleanPrefix(o.Prefix)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = moduleVersion()
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 2 * time.Second
	}
	if o.DegradedLatency <= 0 {
		o.DegradedLatency = 500 * time.Millisecond
	}
	return o
}

// Handler returns one handler that serves the health endpoint at
// Prefix+"/api/health" and the admin API under Prefix+"/admin/", answering 404
// (JSON) for anything else. Mount it at the root of any router, or at the
// router's catch-all for Prefix (chi: r.Mount("/", h); echo: e.Any("/*",
// echo.WrapHandler(h)); gin: r.Any("/*path", gin.WrapH(h))).
func Handler(db *pierredb.Database, opts Options) http.Handler {
	opts = opts.withDefaults()
	mux := http.NewServeMux()
	p := opts.Prefix
	health := HealthHandler(db, opts)
	mux.Handle("GET "+p+"/api/health", health) // GET also matches HEAD
	mux.Handle(p+"/api/health", methodNotAllowed("GET, HEAD"))
	newAdmin(db, opts).register(mux, p+"/admin")
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such route")
	}))
	return mux
}

// mountMethods are the methods Mount registers: the admin API's and health's,
// and PATCH so that a wrong method still gets the JSON 405.
var mountMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Mount registers Handler on r at Prefix+"/api/health" and the subtree
// Prefix+"/admin/", in net/http ServeMux pattern syntax (Go 1.22 and later):
// one pattern per method (GET, which also matches HEAD, POST, PUT, PATCH and
// DELETE), so that the patterns sit beside a host's own method patterns such
// as "GET /" (a method-less "/admin/" would conflict with it, and ServeMux
// panics on conflicting patterns). Routers with another pattern syntax take
// Handler at their catch-all instead.
func Mount(r Router, db *pierredb.Database, opts Options) {
	h := Handler(db, opts)
	p := cleanPrefix(opts.Prefix)
	for _, m := range mountMethods {
		r.Handle(m+" "+p+"/api/health", h)
		r.Handle(m+" "+p+"/admin/", h)
	}
}

// cleanPrefix makes a prefix a rooted path without a trailing slash ("" stays
// ""): "pierre/" becomes "/pierre". Without the leading slash, ServeMux would
// read the prefix as a host name and no request would match.
func cleanPrefix(p string) string {
	p = strings.TrimRight(p, "/")
	if p != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed; use "+allow)
	})
}
