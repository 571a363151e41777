package pierredb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
)

// A2A (agent-to-agent) client credentials: a public client id, "a2a_" and 22
// base62 characters, and a secret, "a2a_secret_" and 22 random base62
// characters (131 bits) with a 6-character checksum, so a mistyped secret is
// refused before any query. Only a keyed hash of the secret is stored
// (HMAC-SHA256 under the keyring's hashing key).
const (
	A2AClientIDPrefix     = "a2a_"
	A2AClientSecretPrefix = "a2a_secret_"
)

const (
	a2aSecretKind    = "a2a_secret"
	a2aClientIDChars = 22
)

// A2ACapability is something an A2A client may ask the server to do.
type A2ACapability string

// The A2A capabilities, the set a client registers from.
const (
	// A2AFitnessDataAnalysis: read and analyse the user's fitness data.
	A2AFitnessDataAnalysis A2ACapability = "fitness-data-analysis"
	// A2AActivityIntelligence: insights on single activities.
	A2AActivityIntelligence A2ACapability = "activity-intelligence"
	// A2AGoalManagement: set and track goals.
	A2AGoalManagement A2ACapability = "goal-management"
	// A2APerformancePrediction: predict race times and performance.
	A2APerformancePrediction A2ACapability = "performance-prediction"
	// A2ATrainingAnalytics: training load, trends and recovery.
	A2ATrainingAnalytics A2ACapability = "training-analytics"
	// A2AProviderIntegration: connect and sync fitness providers.
	A2AProviderIntegration A2ACapability = "provider-integration"
)

// A2ACapabilities lists every capability, in a stable order.
func A2ACapabilities() []A2ACapability {
	return []A2ACapability{A2AFitnessDataAnalysis, A2AActivityIntelligence, A2AGoalManagement,
		A2APerformancePrediction, A2ATrainingAnalytics, A2AProviderIntegration}
}

func (c A2ACapability) valid() bool {
	for _, k := range A2ACapabilities() {
		if c == k {
			return true
		}
	}
	return false
}

// A2ARateLimit is an A2A client's quota: Requests per Window. Windows are
// aligned to the Unix epoch in UTC, so a one-hour window starts on the hour and
// a one-day window at 00:00.
type A2ARateLimit struct {
	// Requests is how many requests a window allows: 1 to 2^31-1.
	Requests int64
	// Window is the window's length, in whole seconds, from one second to 366
	// days.
	Window time.Duration
}

// DefaultA2ARateLimit is the quota of a client registered without one: 1 000
// requests per hour.
var DefaultA2ARateLimit = A2ARateLimit{Requests: 1000, Window: time.Hour}

// A2AClient is a registered A2A client, without its secret, which only
// RegisteredA2AClient holds, once.
type A2AClient struct {
	// ClientID is the client's public identifier ("a2a_…").
	ClientID string
	TenantID string
	// UserID is the member of the tenant the client acts for.
	UserID       string
	Name         string
	Description  string
	Capabilities []A2ACapability
	RedirectURIs []string
	ContactEmail string
	AgentVersion string
	// DocumentationURL is where the agent is described; "" when none.
	DocumentationURL string
	RateLimit        A2ARateLimit
	// IsActive is false once the client is deactivated.
	IsActive bool
	// LastUsedAt is when the client was last verified, to within the last-use
	// interval (WithLastActiveInterval, default one minute); zero if never.
	LastUsedAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// NewA2AClient is what A2AClients.Register needs.
type NewA2AClient struct {
	// UserID is the member of the tenant the client acts for.
	UserID string
	// Name is required, at most 200 bytes.
	Name string
	// Description is optional, at most 1000 bytes.
	Description string
	// Capabilities are taken from A2ACapabilities; duplicates are dropped.
	Capabilities []A2ACapability
	// RedirectURIs are absolute https URLs (http only on a loopback address:
	// localhost, 127.0.0.0/8, [::1]), without user information or fragment; at
	// most 20.
	RedirectURIs []string
	// ContactEmail is optional; it is normalised like a user's email.
	ContactEmail string
	// AgentVersion is optional, at most 64 bytes.
	AgentVersion string
	// DocumentationURL is optional: an URL as RedirectURIs are.
	DocumentationURL string
	// RateLimit overrides DefaultA2ARateLimit when set.
	RateLimit *A2ARateLimit
}

// A2AClientFilter selects clients for A2AClients.List; zero fields do not
// filter.
type A2AClientFilter struct {
	// UserID keeps the clients of that user.
	UserID string
	// Active keeps active clients (true) or deactivated ones (false).
	Active *bool
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor continues a listing where the previous page ended (Page.Next).
	Cursor string
}

// RegisteredA2AClient is a client with its secret, as Register and
// RotateSecret return it. The secret is not stored and cannot be shown again:
// hand it to the client now.
type RegisteredA2AClient struct {
	A2AClient
	// Secret is the client secret ("a2a_secret_…"); Secret.Reveal() returns it.
	Secret CredentialSecret
}

// a2aClientRow is the a2a_clients table.
type a2aClientRow struct {
	bun.BaseModel `bun:"table:a2a_clients"`

	ClientID               string         `bun:"client_id,pk"`
	TenantID               string         `bun:"tenant_id"`
	UserID                 string         `bun:"user_id"`
	Name                   string         `bun:"name"`
	Description            sql.NullString `bun:"description"`
	PublicKey              sql.NullString `bun:"public_key"`
	ClientSecretHash       string         `bun:"client_secret_hash"`
	Permissions            string         `bun:"permissions"`
	Capabilities           string         `bun:"capabilities"`
	RedirectURIs           string         `bun:"redirect_uris"`
	ContactEmail           sql.NullString `bun:"contact_email"`
	AgentVersion           sql.NullString `bun:"agent_version"`
	DocumentationURL       sql.NullString `bun:"documentation_url"`
	RateLimitRequests      int64          `bun:"rate_limit_requests"`
	RateLimitWindowSeconds int64          `bun:"rate_limit_window_seconds"`
	IsActive               bool           `bun:"is_active"`
	LastUsedAt             dbTime         `bun:"last_used_at"`
	CreatedAt              dbTime         `bun:"created_at"`
	UpdatedAt              dbTime         `bun:"updated_at"`
}

// a2aClientMap reads every column but the secret's hash and the two that
// pierre does not use (public_key, permissions).
var (
	a2aClientMap      = mapRow[a2aClientRow]("client_secret_hash", "public_key", "permissions")
	a2aClientColumns  = a2aClientMap.columns("c")
	a2aClientReturned = a2aClientMap.columns("")
)

func (r *a2aClientRow) client() (A2AClient, error) {
	c := A2AClient{
		ClientID: r.ClientID, TenantID: r.TenantID, UserID: r.UserID, Name: r.Name, Description: r.Description.String,
		ContactEmail: r.ContactEmail.String, AgentVersion: r.AgentVersion.String, DocumentationURL: r.DocumentationURL.String,
		RateLimit: A2ARateLimit{Requests: r.RateLimitRequests, Window: time.Duration(r.RateLimitWindowSeconds) * time.Second},
		IsActive:  r.IsActive, LastUsedAt: r.LastUsedAt.Time, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}
	var err error
	if c.Capabilities, err = decodeCapabilities(r.Capabilities); err != nil {
		return A2AClient{}, err
	}
	if err := json.Unmarshal([]byte(r.RedirectURIs), &c.RedirectURIs); err != nil {
		return A2AClient{}, fmt.Errorf("%w: the stored redirect URIs of A2A client %s are not a JSON list", ErrConflict, r.ClientID)
	}
	return c, nil
}

func decodeCapabilities(s string) ([]A2ACapability, error) {
	var caps []A2ACapability
	if err := json.Unmarshal([]byte(s), &caps); err != nil {
		return nil, fmt.Errorf("%w: the stored capabilities of an A2A client are not a JSON list", ErrConflict)
	}
	return caps, nil
}

type a2aClientScanner struct {
	row  a2aClientRow
	dest []any
}

func newA2AClientScanner() *a2aClientScanner {
	s := &a2aClientScanner{}
	s.dest = a2aClientMap.dest(&s.row)
	return s
}

func (s *a2aClientScanner) scan(r rowScanner) (A2AClient, error) {
	s.row = a2aClientRow{}
	if err := r.Scan(s.dest...); err != nil {
		return A2AClient{}, err
	}
	return s.row.client()
}

func scanA2AClient(r rowScanner) (A2AClient, error) { return newA2AClientScanner().scan(r) }

// maxRedirectURIs bounds a client's redirect URIs.
const maxRedirectURIs = 20

// cleanClientURL checks an URL a client gives: absolute, https (or http on a
// loopback address), no user information, no fragment, nothing hidden.
func cleanClientURL(what, raw string) (string, error) {
	s, err := cleanText(what, strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if len(s) > 2000 {
		return "", fmt.Errorf("%w: %s is longer than 2000 bytes", ErrInvalidArgument, what)
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" || strings.ContainsFunc(s, unicode.IsSpace) {
		return "", fmt.Errorf("%w: %s %q is not an absolute URL", ErrInvalidArgument, what, shorten(s))
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: %s must not hold a user name or password", ErrInvalidArgument, what)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%w: %s must not hold a fragment (#…)", ErrInvalidArgument, what)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return "", fmt.Errorf("%w: %s must use https (http only on a loopback address such as 127.0.0.1)", ErrInvalidArgument, what)
		}
	default:
		return "", fmt.Errorf("%w: %s must use https (http only on a loopback address such as 127.0.0.1)", ErrInvalidArgument, what)
	}
	return s, nil
}

func cleanRedirectURIs(uris []string) ([]string, error) {
	if len(uris) > maxRedirectURIs {
		return nil, fmt.Errorf("%w: at most %d redirect URIs", ErrInvalidArgument, maxRedirectURIs)
	}
	out := make([]string, 0, len(uris))
	seen := map[string]bool{}
	for _, raw := range uris {
		u, err := cleanClientURL("redirect URI", raw)
		if err != nil {
			return nil, err
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out, nil
}

func cleanCapabilities(caps []A2ACapability) ([]A2ACapability, error) {
	out := make([]A2ACapability, 0, len(caps))
	for _, c := range caps {
		if !c.valid() {
			names := make([]string, 0, 6)
			for _, k := range A2ACapabilities() {
				names = append(names, string(k))
			}
			return nil, fmt.Errorf("%w: capability %q is not one of %s", ErrInvalidArgument, shorten(string(c)), strings.Join(names, ", "))
		}
		dup := false
		for _, o := range out {
			dup = dup || o == c
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out, nil
}

func cleanA2ARateLimit(rl A2ARateLimit) (A2ARateLimit, error) {
	if rl.Requests < 1 || rl.Requests > maxRateLimit {
		return rl, fmt.Errorf("%w: rate limit of %d requests is not between 1 and %d", ErrInvalidArgument, rl.Requests, int64(maxRateLimit))
	}
	if rl.Window < time.Second || rl.Window > 366*24*time.Hour || rl.Window%time.Second != 0 {
		return rl, fmt.Errorf("%w: rate limit window %s is not a whole number of seconds between 1s and 366 days", ErrInvalidArgument, rl.Window)
	}
	return rl, nil
}

// A2AClients is the handle on one tenant's A2A clients, from
// TenantScope.A2AClients. Every query it runs filters by the scope's tenant.
// Clients are verified through Database.A2AClients.
type A2AClients struct{ s *TenantScope }

// A2AClients returns the handle on this tenant's A2A clients.
func (s *TenantScope) A2AClients() A2AClients { return A2AClients{s: s} }

const insertA2AClientSQL = `INSERT INTO a2a_clients (client_id, tenant_id, user_id, name, description, client_secret_hash,
  capabilities, redirect_uris, contact_email, agent_version, documentation_url, rate_limit_requests, rate_limit_window_seconds,
  is_active, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// newA2ASecret returns a new client secret and its keyed hash.
func (db *Database) newA2ASecret(ctx context.Context) (secret, hash string) {
	secret, _ = credential.New(a2aSecretKind)
	return secret, db.hashCredential(ctx, hashDomainA2ASecret, []byte(secret))
}

// Register registers an A2A client for a member of this tenant and returns it
// with its secret, which is shown this once. A user who is not a member (or a
// tenant that does not exist) is ErrNotFound.
func (c A2AClients) Register(ctx context.Context, nc NewA2AClient) (_ RegisteredA2AClient, err error) {
	db := c.s.db
	defer db.wrap(&err, "register A2A client")
	if err := requireID("user", nc.UserID); err != nil {
		return RegisteredA2AClient{}, err
	}
	row := a2aClientRow{ClientID: A2AClientIDPrefix + credential.Random(a2aClientIDChars), TenantID: c.s.id, UserID: nc.UserID,
		IsActive: true, Permissions: "[]"}
	name, err := cleanName("client name", strings.TrimSpace(nc.Name), 200)
	if err == nil && name == "" {
		err = fmt.Errorf("%w: client name is required", ErrInvalidArgument)
	}
	if err != nil {
		return RegisteredA2AClient{}, err
	}
	row.Name = name
	if row.Description, err = cleanDescription(nc.Description); err != nil {
		return RegisteredA2AClient{}, err
	}
	caps, err := cleanCapabilities(nc.Capabilities)
	if err != nil {
		return RegisteredA2AClient{}, err
	}
	uris, err := cleanRedirectURIs(nc.RedirectURIs)
	if err != nil {
		return RegisteredA2AClient{}, err
	}
	if nc.ContactEmail != "" {
		e, err := normalizeEmail(nc.ContactEmail)
		if err != nil {
			return RegisteredA2AClient{}, err
		}
		row.ContactEmail = sql.NullString{String: e, Valid: true}
	}
	version, err := cleanName("agent version", strings.TrimSpace(nc.AgentVersion), 64)
	if err != nil {
		return RegisteredA2AClient{}, err
	}
	row.AgentVersion = sql.NullString{String: version, Valid: version != ""}
	if strings.TrimSpace(nc.DocumentationURL) != "" {
		u, err := cleanClientURL("documentation URL", nc.DocumentationURL)
		if err != nil {
			return RegisteredA2AClient{}, err
		}
		row.DocumentationURL = sql.NullString{String: u, Valid: true}
	}
	rl := DefaultA2ARateLimit
	if nc.RateLimit != nil {
		if rl, err = cleanA2ARateLimit(*nc.RateLimit); err != nil {
			return RegisteredA2AClient{}, err
		}
	}
	row.RateLimitRequests, row.RateLimitWindowSeconds = rl.Requests, int64(rl.Window/time.Second)
	capsJSON, _ := json.Marshal(caps)
	urisJSON, _ := json.Marshal(uris)
	row.Capabilities, row.RedirectURIs = string(capsJSON), string(urisJSON)
	secret, hash := db.newA2ASecret(ctx)
	row.ClientSecretHash = hash
	now := at(db.now())
	row.CreatedAt, row.UpdatedAt = now, now
	_, err = db.exec(ctx, insertA2AClientSQL, row.ClientID, row.TenantID, row.UserID, row.Name, row.Description, row.ClientSecretHash,
		row.Capabilities, row.RedirectURIs, row.ContactEmail, row.AgentVersion, row.DocumentationURL, row.RateLimitRequests,
		row.RateLimitWindowSeconds, row.IsActive, row.CreatedAt, row.UpdatedAt)
	if err != nil {
		return RegisteredA2AClient{}, db.memberRowError(ctx, err, c.s.id, "")
	}
	client, err := row.client()
	if err != nil {
		return RegisteredA2AClient{}, err
	}
	return RegisteredA2AClient{A2AClient: client, Secret: newCredentialSecret(secret)}, nil
}

// Get returns the client with clientID, or ErrNotFound (also for a client of
// another tenant).
func (c A2AClients) Get(ctx context.Context, clientID string) (_ A2AClient, err error) {
	defer c.s.db.wrap(&err, "get A2A client")
	if err := requireID("A2A client", clientID); err != nil {
		return A2AClient{}, err
	}
	return c.get(ctx, clientID)
}

func (c A2AClients) get(ctx context.Context, clientID string) (A2AClient, error) {
	return readOne(ctx, c.s.db, "A2A client", "SELECT "+a2aClientColumns+" FROM a2a_clients c WHERE c.tenant_id = ? AND c.client_id = ?",
		[]any{c.s.id, clientID}, scanA2AClient)
}

// List lists this tenant's clients, oldest first, one page at a time.
func (c A2AClients) List(ctx context.Context, f A2AClientFilter) (_ Page[A2AClient], err error) {
	db := c.s.db
	defer db.wrap(&err, "list A2A clients")
	conds, args := []string{"c.tenant_id = ?"}, []any{c.s.id}
	if f.UserID != "" {
		if err := requireID("user", f.UserID); err != nil {
			return Page[A2AClient]{}, err
		}
		conds, args = append(conds, "c.user_id = ?"), append(args, f.UserID)
	}
	if f.Active != nil {
		conds, args = append(conds, "c.is_active = ?"), append(args, *f.Active)
	}
	scanner := newA2AClientScanner()
	page, err := readPage(ctx, db,
		listing{selectFrom: "SELECT " + a2aClientColumns + " FROM a2a_clients c", conds: conds, args: args,
			keyset: [2]string{"c.created_at", "c.client_id"}},
		ListOptions{Limit: f.Limit, Cursor: f.Cursor}, scanner.scan,
		func(cl A2AClient) (time.Time, string) { return cl.CreatedAt, cl.ClientID })
	if err == nil && len(page.Items) == 0 && f.Cursor == "" {
		err = tenantExists(ctx, db, c.s.id)
	}
	return page, err
}

// change runs one UPDATE … RETURNING on client clientID of this tenant where
// cond holds; when no row changes, miss explains the current row (or it is
// ErrNotFound).
func (c A2AClients) change(ctx context.Context, clientID string, sets []string, args []any, cond string, condArgs []any,
	miss func(cur A2AClient) error) (A2AClient, error) {
	db := c.s.db
	q := "UPDATE a2a_clients SET " + strings.Join(sets, ", ") + ", updated_at = ? WHERE tenant_id = ? AND client_id = ?"
	if cond != "" {
		q += " AND " + cond
	}
	row, err := db.writeRow(ctx, q+" RETURNING "+a2aClientReturned, append(append(args, at(db.now()), c.s.id, clientID), condArgs...)...)
	if err != nil {
		return A2AClient{}, err
	}
	client, err := scanA2AClient(row)
	if !isNoRows(err) {
		return client, err
	}
	var cur a2aClientRow
	// Not the secret's hash: it never leaves this function, and need not be read.
	err = db.writer(ctx).NewSelect().Model(&cur).ExcludeColumn("client_secret_hash").
		Where("tenant_id = ? AND client_id = ?", c.s.id, clientID).Scan(ctx)
	if isNoRows(err) {
		return A2AClient{}, notFound("A2A client")
	}
	if err != nil {
		return A2AClient{}, err
	}
	curClient, err := cur.client()
	if err != nil {
		return A2AClient{}, err
	}
	return A2AClient{}, errOr(miss(curClient), fmt.Errorf("%w: the client changed meanwhile; try again", ErrConflict))
}

// Deactivate stops a client until Reactivate: Verify answers ErrRevoked from the
// very next call, in every process. Deactivating an inactive client is
// ErrConflict.
func (c A2AClients) Deactivate(ctx context.Context, clientID string) (_ A2AClient, err error) {
	defer c.s.db.wrap(&err, "deactivate A2A client")
	if err := requireID("A2A client", clientID); err != nil {
		return A2AClient{}, err
	}
	return c.change(ctx, clientID, []string{"is_active = ?"}, []any{false}, "is_active = ?", []any{true},
		func(A2AClient) error { return fmt.Errorf("%w: the client is deactivated already", ErrConflict) })
}

// Reactivate lets a deactivated client work again; an active one is
// ErrConflict.
func (c A2AClients) Reactivate(ctx context.Context, clientID string) (_ A2AClient, err error) {
	defer c.s.db.wrap(&err, "reactivate A2A client")
	if err := requireID("A2A client", clientID); err != nil {
		return A2AClient{}, err
	}
	return c.change(ctx, clientID, []string{"is_active = ?"}, []any{true}, "is_active = ?", []any{false},
		func(A2AClient) error { return fmt.Errorf("%w: the client is active already", ErrConflict) })
}

// RotateSecret gives a client a new secret and returns it, shown this once; the
// old secret stops working from the very next Verify. A deactivated client stays
// deactivated.
func (c A2AClients) RotateSecret(ctx context.Context, clientID string) (_ RegisteredA2AClient, err error) {
	db := c.s.db
	defer db.wrap(&err, "rotate A2A client secret")
	if err := requireID("A2A client", clientID); err != nil {
		return RegisteredA2AClient{}, err
	}
	secret, hash := db.newA2ASecret(ctx)
	client, err := c.change(ctx, clientID, []string{"client_secret_hash = ?"}, []any{hash}, "", nil, func(A2AClient) error { return nil })
	if err != nil {
		return RegisteredA2AClient{}, err
	}
	return RegisteredA2AClient{A2AClient: client, Secret: newCredentialSecret(secret)}, nil
}

// Delete deletes a client and its usage counts.
func (c A2AClients) Delete(ctx context.Context, clientID string) (err error) {
	db := c.s.db
	defer db.wrap(&err, "delete A2A client")
	if err := requireID("A2A client", clientID); err != nil {
		return err
	}
	n, err := rowsAffected(db.exec(ctx, "DELETE FROM a2a_clients WHERE tenant_id = ? AND client_id = ?", c.s.id, clientID))
	if err == nil && n == 0 {
		err = notFound("A2A client")
	}
	if err == nil {
		a2aUsage.forget(db, clientID)
	}
	return err
}

// Usage lists the requests counted for a client in each of its rate-limit
// windows, oldest first.
func (c A2AClients) Usage(ctx context.Context, clientID string, o UsageOptions) (_ Page[UsageWindow], err error) {
	defer c.s.db.wrap(&err, "read A2A client usage")
	if err := requireID("A2A client", clientID); err != nil {
		return Page[UsageWindow]{}, err
	}
	return a2aUsage.list(ctx, c.s.db, c.s.id, clientID, o)
}
