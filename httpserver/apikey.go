package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/pierre-mcp/pierre/pierredb"
)

type principalKey struct{}

// principalEntry is what RequireAPIKey leaves in the request context: the key it
// verified, so that a later verifier of the same request (MCPVerifier) reuses
// the answer instead of verifying, and counting, a second time.
type principalEntry struct {
	key       string
	principal pierredb.APIKeyPrincipal
}

// PrincipalFromContext returns the API key principal that RequireAPIKey (or
// MCPVerifier) verified for this request.
func PrincipalFromContext(ctx context.Context) (pierredb.APIKeyPrincipal, bool) {
	e, ok := ctx.Value(principalKey{}).(*principalEntry)
	if !ok {
		return pierredb.APIKeyPrincipal{}, false
	}
	return e.principal, true
}

func withPrincipal(ctx context.Context, key string, p pierredb.APIKeyPrincipal) context.Context {
	return context.WithValue(ctx, principalKey{}, &principalEntry{key: key, principal: p})
}

// apiKeyFrom returns the API key of a request: "Authorization: Bearer <key>"
// or "X-API-Key: <key>".
func apiKeyFrom(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	return bearer(r)
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// RequireAPIKey returns middleware that lets a request through only with a valid
// API key ("Authorization: Bearer pk_…" or "X-API-Key: pk_…"), counting it
// against the key's quota. Every answer to a key with a limit carries
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (Unix
// seconds); a used-up quota is 429 with Retry-After. The principal is in the
// request context (PrincipalFromContext).
func RequireAPIKey(db *pierredb.Database, opts Options) func(http.Handler) http.Handler {
	opts = opts.withDefaults()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := apiKeyFrom(r)
			if key == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="pierre"`)
				writeError(w, http.StatusUnauthorized, CodeUnauthorized, "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>")
				return
			}
			p, err := db.APIKeys().Verify(r.Context(), key)
			if err != nil {
				writeAPIKeyError(w, r, opts.Logger, err)
				return
			}
			setRateLimitHeaders(w, p)
			next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), key, p)))
		})
	}
}

// writeAPIKeyError answers a failed verification.
func writeAPIKeyError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var rl *pierredb.RateLimitError
	switch {
	case errors.As(err, &rl):
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.FormatInt(rl.Limit, 10))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.Reset.Unix(), 10))
		writeStoreError(w, log, r, err)
	case errors.Is(err, pierredb.ErrUserPending), errors.Is(err, pierredb.ErrUserSuspended), errors.Is(err, pierredb.ErrTenantInactive):
		writeError(w, http.StatusForbidden, CodeForbidden, err.Error())
	case errors.Is(err, pierredb.ErrInvalidCredential), errors.Is(err, pierredb.ErrExpired), errors.Is(err, pierredb.ErrRevoked):
		w.Header().Set("WWW-Authenticate", `Bearer realm="pierre", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, err.Error())
	default:
		writeStoreError(w, log, r, err)
	}
}

func setRateLimitHeaders(w http.ResponseWriter, p pierredb.APIKeyPrincipal) {
	if p.RateLimit.Unlimited {
		return
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.FormatInt(p.RateLimit.Requests, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(p.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(p.Reset.Unix(), 10))
}
