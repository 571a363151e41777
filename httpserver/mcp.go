package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/pierre-mcp/pierre/pierredb"
)

// tokenInfoPrincipal is the TokenInfo.Extra key that holds pierre's principal.
const tokenInfoPrincipal = "pierre.principal"

// noExpiryValidity is the Expiration MCPVerifier reports for a key that never
// expires: the go-sdk refuses a TokenInfo without one, and every request is
// verified again anyway.
const noExpiryValidity = 24 * time.Hour

// MCPVerifier returns a token verifier for the MCP go-sdk, so that a host
// protects its MCP endpoint with the SDK's own middleware:
//
//	verifier := httpserver.MCPVerifier(db)
//	mux.Handle("/mcp", httpserver.RequireAPIKey(db, opts)(
//		auth.RequireBearerToken(verifier, nil)(mcpHandler)))
//
// The API key is the bearer token. When RequireAPIKey runs first (as above) the
// verifier reuses its answer, so a request is verified and counted once, and a
// used-up quota is a 429 with Retry-After; on its own, the verifier counts the
// request itself and a used-up quota is a 401 (the SDK's middleware knows no
// other failure). TokenInfo.UserID is the key's user (the SDK uses it to keep a
// session to one user), and PrincipalFromTokenInfo gives pierre's principal.
func MCPVerifier(db *pierredb.Database) auth.TokenVerifier {
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		if e, ok := ctx.Value(principalKey{}).(*principalEntry); ok && e.key == token {
			return tokenInfo(e.principal, time.Now()), nil
		}
		p, err := db.APIKeys().Verify(ctx, token)
		switch {
		case err == nil:
			return tokenInfo(p, time.Now()), nil
		case errors.Is(err, pierredb.ErrInvalidCredential), errors.Is(err, pierredb.ErrExpired),
			errors.Is(err, pierredb.ErrRevoked), errors.Is(err, pierredb.ErrRateLimited),
			errors.Is(err, pierredb.ErrUserPending), errors.Is(err, pierredb.ErrUserSuspended), errors.Is(err, pierredb.ErrTenantInactive):
			return nil, fmt.Errorf("%w: %w", auth.ErrInvalidToken, err)
		default:
			return nil, err
		}
	}
}

func tokenInfo(p pierredb.APIKeyPrincipal, now time.Time) *auth.TokenInfo {
	exp := p.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(noExpiryValidity)
	}
	return &auth.TokenInfo{
		UserID:     p.UserID,
		Expiration: exp,
		Scopes:     []string{string(p.Tier)},
		Extra:      map[string]any{tokenInfoPrincipal: p},
	}
}

// PrincipalFromTokenInfo returns the principal MCPVerifier put in a TokenInfo
// (the SDK's auth.TokenInfoFromContext gives the TokenInfo of a request).
func PrincipalFromTokenInfo(ti *auth.TokenInfo) (pierredb.APIKeyPrincipal, bool) {
	if ti == nil {
		return pierredb.APIKeyPrincipal{}, false
	}
	p, ok := ti.Extra[tokenInfoPrincipal].(pierredb.APIKeyPrincipal)
	return p, ok
}

// ProtectedResourceMetadata serves the OAuth 2.0 protected resource metadata
// (RFC 9728) of an MCP endpoint at resource, with the SDK's handler: it tells a
// client that the endpoint takes a bearer token in the Authorization header.
// pierre's API keys are issued by the admin API, not by an authorization
// server, so no authorization server is listed.
func ProtectedResourceMetadata(resource, name string) http.Handler {
	return auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource:               resource,
		ResourceName:           name,
		BearerMethodsSupported: []string{"header"},
	})
}
