package pierredb

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strconv"
)

// OAuthSecret holds an OAuth secret (a client secret, an access or refresh
// token) in memory. It redacts itself wherever it can be printed or
// serialised: every fmt verb (%v, %+v, %#v, %s, %q, %x, ...), slog, JSON and
// encoding.TextMarshaler show "[REDACTED]" (or "[EMPTY]" for no secret), never
// the value. The value leaves it only through Reveal.
//
// Make one with NewOAuthSecret; the zero OAuthSecret is the empty secret. It
// cannot be compared with ==; use Equal, which runs in constant time.
type OAuthSecret struct {
	// get returns the value. It is a func, not a string, because fmt and
	// other reflection-based printers cannot call the redacting methods of an
	// OAuthSecret kept in an unexported field, and would print a string found
	// there; a func they print only as an address.
	get func() string
}

// NewOAuthSecret wraps s.
func NewOAuthSecret(s string) OAuthSecret {
	if s == "" {
		return OAuthSecret{}
	}
	return OAuthSecret{get: func() string { return s }}
}

// Reveal returns the secret itself. It is the only way to the value: call it
// where the secret is used (an Authorization header, a token request), never
// to log or display it.
func (s OAuthSecret) Reveal() string {
	if s.get == nil {
		return ""
	}
	return s.get()
}

// IsZero reports whether the secret is empty.
func (s OAuthSecret) IsZero() bool { return s.get == nil || s.get() == "" }

// Equal reports in constant time (for secrets of equal length) whether s and
// other hold the same value.
func (s OAuthSecret) Equal(other OAuthSecret) bool {
	a, b := s.Reveal(), other.Reveal()
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// String returns "[REDACTED]", or "[EMPTY]" for the empty secret.
func (s OAuthSecret) String() string {
	if s.IsZero() {
		return "[EMPTY]"
	}
	return "[REDACTED]"
}

// GoString returns the same placeholder as String, for %#v.
func (s OAuthSecret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that every verb prints the placeholder.
func (s OAuthSecret) Format(f fmt.State, verb rune) {
	out := s.String()
	if verb == 'q' {
		out = strconv.Quote(out)
	}
	_, _ = f.Write([]byte(out))
}

// LogValue implements slog.LogValuer with the placeholder.
func (s OAuthSecret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the placeholder as a JSON string.
func (s OAuthSecret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText implements encoding.TextMarshaler with the placeholder, so YAML,
// TOML and similar encoders never see the secret.
func (s OAuthSecret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
