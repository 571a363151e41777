package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"golang.org/x/text/unicode/norm"
)

// AdminAction is one admin action done with an admin token, as the admin routes
// record it (RecordUsage).
type AdminAction struct {
	// Action names what was done ("provision_key", "revoke_admin_token", ...):
	// 1 to 100 bytes of letters, digits and _ . : / -.
	Action string
	// TargetResource names what it was done to (an id, a path), optional.
	TargetResource string
	// IPAddress is the client's address, "192.0.2.1" or "[2001:db8::1]:443"
	// (a port is dropped), or "" when unknown. The caller decides which
	// address to trust (r.RemoteAddr, or a proxy header it has checked).
	IPAddress string
	// UserAgent is the client's User-Agent header, optional.
	UserAgent string
	// RequestSizeBytes is the size of the request body (at least 0).
	RequestSizeBytes int64
	// Success reports whether the action succeeded.
	Success bool
	// ErrorMessage says why it failed, optional.
	ErrorMessage string
	// ResponseTime is how long the action took (at least 0).
	ResponseTime time.Duration
}

// AdminTokenUsage is one recorded admin action.
type AdminTokenUsage struct {
	ID      string
	TokenID string
	At      time.Time
	AdminAction
}

// AdminUsageFilter selects admin actions for ListUsage.
type AdminUsageFilter struct {
	// Since keeps the actions recorded at or after it, when set.
	Since time.Time
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor continues a listing where the previous page ended (Page.Next).
	Cursor string
}

// Bounds of the free text an admin action records.
const (
	maxAdminAction       = 100
	maxAdminTarget       = 500
	maxAdminUserAgent    = 500
	maxAdminErrorMessage = 1000
)

// adminUsageRow is the admin_token_usage table.
type adminUsageRow struct {
	bun.BaseModel `bun:"table:admin_token_usage"`

	ID               string         `bun:"id,pk"`
	AdminTokenID     string         `bun:"admin_token_id"`
	Timestamp        dbTime         `bun:"timestamp"`
	Action           string         `bun:"action"`
	TargetResource   sql.NullString `bun:"target_resource"`
	IPAddress        sql.NullString `bun:"ip_address"`
	UserAgent        sql.NullString `bun:"user_agent"`
	RequestSizeBytes sql.NullInt64  `bun:"request_size_bytes"`
	Success          bool           `bun:"success"`
	ErrorMessage     sql.NullString `bun:"error_message"`
	ResponseTimeMS   sql.NullInt64  `bun:"response_time_ms"`
}

var (
	adminUsageMap     = mapRow[adminUsageRow]()
	adminUsageColumns = adminUsageMap.columns("u")
)

func (r *adminUsageRow) usage() AdminTokenUsage {
	return AdminTokenUsage{ID: r.ID, TokenID: r.AdminTokenID, At: r.Timestamp.Time, AdminAction: AdminAction{
		Action: r.Action, TargetResource: r.TargetResource.String, IPAddress: r.IPAddress.String,
		UserAgent: r.UserAgent.String, RequestSizeBytes: r.RequestSizeBytes.Int64, Success: r.Success,
		ErrorMessage: r.ErrorMessage.String, ResponseTime: time.Duration(r.ResponseTimeMS.Int64) * time.Millisecond,
	}}
}

type adminUsageScanner struct {
	row  adminUsageRow
	dest []any
}

func newAdminUsageScanner() *adminUsageScanner {
	s := &adminUsageScanner{}
	s.dest = adminUsageMap.dest(&s.row)
	return s
}

func (s *adminUsageScanner) scan(r rowScanner) (AdminTokenUsage, error) {
	s.row = adminUsageRow{}
	if err := r.Scan(s.dest...); err != nil {
		return AdminTokenUsage{}, err
	}
	return s.row.usage(), nil
}

// secretLike finds what may be a credential in free text: a JWT, an
// Authorization header's value, a secret in a query string, a pierre token
// ("pk_live_…") and long runs of base62 (keys, hex digests). The last two are
// kept only when they mix letters and digits (see isSecret), so that a name
// such as "svc_ProvisioningServiceAccount" is not taken for a key.
var secretLike = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?` +
	`|(?i:\b(?:bearer|basic)\s+[^\s,;]+)` +
	`|(?i:\b(?:access_token|refresh_token|id_token|token|api_key|apikey|key|secret|client_secret|password|passwd)=[^&\s]+)` +
	`|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*_[0-9A-Za-z]{20,}` +
	`|[0-9A-Za-z]{40,}`)

// isSecret tells a credential among secretLike's matches.
func isSecret(m string) bool {
	if strings.HasPrefix(m, "eyJ") || strings.ContainsRune(m, '=') || strings.ContainsFunc(m, unicode.IsSpace) {
		return true
	}
	tail := m[strings.LastIndexByte(m, '_')+1:]
	return strings.ContainsAny(tail, "0123456789") && strings.ContainsFunc(tail, func(r rune) bool { return r > '9' })
}

// looksSecret reports free text that seems to hold a credential.
func looksSecret(s string) bool {
	for _, m := range secretLike.FindAllString(s, -1) {
		if isSecret(m) {
			return true
		}
	}
	return false
}

// redactSecrets replaces whatever looks like a credential with [REDACTED].
func redactSecrets(s string) string {
	return secretLike.ReplaceAllStringFunc(s, func(m string) string {
		if isSecret(m) {
			return "[REDACTED]"
		}
		return m
	})
}

// auditText makes free text from a request safe to store, without ever
// refusing it (a hostile User-Agent must not keep an action out of the audit
// trail): invalid UTF-8 and hidden characters become U+FFFD, what looks like a
// credential becomes [REDACTED], and the result is NFC, at most max bytes.
func auditText(s string, max int) string {
	if len(s) > 4*max {
		s = s[:4*max] // bound the work; the cut is repaired below
	}
	s = strings.Map(func(r rune) rune {
		if hiddenRune(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	s = redactSecrets(norm.NFC.String(s))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// cleanAction checks an action name: code writes it, so it is refused, not
// rewritten, when malformed.
func cleanAction(a string) (string, error) {
	if a == "" {
		return "", fmt.Errorf("%w: the action is required", ErrInvalidArgument)
	}
	if len(a) > maxAdminAction {
		return "", fmt.Errorf("%w: the action is longer than %d bytes", ErrInvalidArgument, maxAdminAction)
	}
	for _, c := range []byte(a) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.:/-", c) >= 0) {
			return "", fmt.Errorf("%w: the action may hold only letters, digits and _ . : / -", ErrInvalidArgument)
		}
	}
	return a, nil
}

// cleanIP returns the address of ip ("" stays ""), without port or zone.
func cleanIP(ip string) (string, error) {
	if ip == "" {
		return "", nil
	}
	if len(ip) <= 64 {
		if a, err := netip.ParseAddr(ip); err == nil {
			return a.WithZone("").Unmap().String(), nil
		}
		if ap, err := netip.ParseAddrPort(ip); err == nil {
			return ap.Addr().WithZone("").Unmap().String(), nil
		}
	}
	return "", fmt.Errorf("%w: %q is not an IP address; pass the client's address (for example from r.RemoteAddr)", ErrInvalidArgument, shorten(auditText(ip, 64)))
}

// int32Of bounds a count for an INTEGER column (32 bits on PostgreSQL).
func int32Of(n int64) int64 { return min(n, math.MaxInt32) }

// RecordUsage records one admin action done with the token tokenID: it writes
// one admin_token_usage row and, in the same transaction, the token's
// last_used_at, last_used_ip (unless IPAddress is empty) and usage_count. Every
// admin action is recorded, so these are exact (admin traffic is low: nothing
// is throttled). The admin routes call it once per request, successful or not;
// it records revoked and expired tokens too. A token that does not exist is
// ErrNotFound.
//
// The free text (TargetResource, UserAgent, ErrorMessage) comes from requests
// and is never refused: invalid UTF-8 and hidden characters are replaced with
// U+FFFD, what looks like a credential (a JWT, a bearer token, a pierre key, a
// secret in a query string, long base62 runs) with [REDACTED], and each is cut
// to its bound (500, 500 and 1000 bytes). Action and IPAddress come from code
// and are refused when malformed (ErrInvalidArgument). Sizes and times are
// capped at 2^31-1 (bytes, milliseconds).
func (a AdminTokens) RecordUsage(ctx context.Context, tokenID string, act AdminAction) (err error) {
	db := a.db
	defer db.wrap(&err, "record admin token usage")
	if err := requireID("admin token", tokenID); err != nil {
		return err
	}
	action, err := cleanAction(act.Action)
	if err != nil {
		return err
	}
	ip, err := cleanIP(act.IPAddress)
	if err != nil {
		return err
	}
	if act.RequestSizeBytes < 0 || act.ResponseTime < 0 {
		return fmt.Errorf("%w: request size and response time cannot be negative", ErrInvalidArgument)
	}
	text := func(s string, max int) sql.NullString {
		s = auditText(s, max)
		return sql.NullString{String: s, Valid: s != ""}
	}
	now := at(db.now())
	row := adminUsageRow{
		ID: newID(), AdminTokenID: tokenID, Timestamp: now, Action: action,
		TargetResource: text(act.TargetResource, maxAdminTarget), IPAddress: sql.NullString{String: ip, Valid: ip != ""},
		UserAgent:        text(act.UserAgent, maxAdminUserAgent),
		RequestSizeBytes: sql.NullInt64{Int64: int32Of(act.RequestSizeBytes), Valid: true}, Success: act.Success,
		ErrorMessage:   text(act.ErrorMessage, maxAdminErrorMessage),
		ResponseTimeMS: sql.NullInt64{Int64: int32Of(act.ResponseTime.Milliseconds()), Valid: true},
	}
	return db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, "UPDATE admin_tokens SET last_used_at = ?, last_used_ip = COALESCE(?, last_used_ip),"+
			" usage_count = usage_count + 1 WHERE id = ?", now, row.IPAddress, tokenID))
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("admin token")
		}
		_, err = tx.NewInsert().Model(&row).Exec(ctx)
		return err
	})
}

// ListUsage lists the admin actions recorded for token tokenID, oldest first,
// one page at a time (f.Since keeps the recent ones). A token that does not
// exist is ErrNotFound.
func (a AdminTokens) ListUsage(ctx context.Context, tokenID string, f AdminUsageFilter) (_ Page[AdminTokenUsage], err error) {
	db := a.db
	defer db.wrap(&err, "list admin token usage")
	if err := requireID("admin token", tokenID); err != nil {
		return Page[AdminTokenUsage]{}, err
	}
	conds, args := []string{"u.admin_token_id = ?"}, []any{tokenID}
	if !f.Since.IsZero() {
		since, err := boundTime("since", f.Since)
		if err != nil {
			return Page[AdminTokenUsage]{}, err
		}
		conds, args = append(conds, "u.timestamp >= ?"), append(args, since)
	}
	scanner := newAdminUsageScanner()
	page, err := readPage(ctx, db,
		listing{selectFrom: "SELECT " + adminUsageColumns + " FROM admin_token_usage u", conds: conds, args: args, keyset: [2]string{"u.timestamp", "u.id"}},
		ListOptions{Limit: f.Limit, Cursor: f.Cursor}, scanner.scan,
		func(u AdminTokenUsage) (time.Time, string) { return u.At, u.ID })
	if err != nil || len(page.Items) > 0 || f.Cursor != "" {
		return page, err
	}
	n, err := scanCount(ctx, db, "SELECT count(*) FROM admin_tokens WHERE id = ?", tokenID)
	if err == nil && n == 0 {
		err = notFound("admin token")
	}
	return page, err
}
