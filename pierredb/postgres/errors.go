package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// classify maps a PostgreSQL error onto pierredb's sentinels, keeping it in the
// chain. PgError.Error() carries the message and SQLSTATE, never the Detail, which
// repeats the offending values; for data exceptions (class 22), whose message
// quotes the rejected input, only the part before the quote is printed.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Classify(engine.ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	var sentinel error
	switch pgErr.Code {
	case "23505": // unique_violation
		return &engine.Classified{Sentinel: engine.ErrAlreadyExists, Cause: err, Columns: uniqueColumns(pgErr.Detail)}
	case "23503", "40001", "40P01": // foreign_key_violation, serialization_failure, deadlock_detected
		sentinel = engine.ErrConflict
	case "23514", "23502": // check_violation, not_null_violation
		sentinel = engine.ErrInvalidArgument
	case "22001", "22P02", // string_data_right_truncation, invalid_text_representation
		"22021",          // character_not_in_repertoire (a NUL byte, invalid UTF-8)
		"22008", "22009": // datetime_field_overflow, invalid_time_zone_displacement_value
		sentinel = engine.ErrInvalidArgument
	case "55P03": // lock_not_available
		sentinel = engine.ErrBusy
	case "25006": // read_only_sql_transaction
		sentinel = engine.ErrReadOnly
	}
	if strings.HasPrefix(pgErr.Code, "22") {
		msg, _, _ := strings.Cut(pgErr.Message, ": ")
		err = redactedError{err, fmt.Sprintf("%s: %s (SQLSTATE %s)", pgErr.Severity, msg, pgErr.Code)}
	}
	return engine.Classify(sentinel, err)
}

// uniqueColumns returns the column names of a unique_violation's Detail,
// `Key (a, b)=(...) already exists.`, and nothing of the values. It returns nil
// when the key is an expression or the Detail is in another form (another
// lc_messages language).
func uniqueColumns(detail string) []string {
	s, ok := strings.CutPrefix(detail, "Key (")
	if !ok {
		return nil
	}
	var cols []string
	for {
		var name string
		if strings.HasPrefix(s, `"`) {
			// A quoted identifier, as quote_identifier writes it.
			var b strings.Builder
			i := 1
			for {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					return nil
				}
				b.WriteString(s[i : i+j])
				i += j + 1
				if i < len(s) && s[i] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			name, s = b.String(), s[i:]
		} else {
			// quote_identifier leaves only [a-z0-9_] names unquoted.
			j := 0
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_') {
				j++
			}
			if j == 0 {
				return nil
			}
			name, s = s[:j], s[j:]
		}
		cols = append(cols, name)
		switch {
		case strings.HasPrefix(s, ", "):
			s = s[2:]
		case strings.HasPrefix(s, ")=("):
			return cols
		default:
			return nil // an expression such as lower(email), not a column list
		}
	}
}

// redactedError keeps a driver error in the chain for errors.As while printing a
// message of ours that cannot contain a secret.
type redactedError struct {
	err error
	msg string
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// target names the server in connection error messages.
type target struct {
	where    string // "PostgreSQL server at host:port" or a description of a lent pool
	user     string // "" when unknown
	database string
	sslmode  string // "" when unknown (a lent pool)
}

// connectError turns a failed connection into ErrTLS (the TLS handshake or its
// certificate check failed), ErrConnectionRejected (the server answered and
// refused), or ErrUnreachable (network), naming host:port and never the password.
// Errors that already carry a sentinel of ours (ErrUnsafeSession) pass through.
func connectError(t target, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, engine.ErrUnsafeSession) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		who := ""
		if t.user != "" {
			who = fmt.Sprintf(" user %q on database %q", t.user, t.database)
		}
		msg := pgErr.Message
		switch pgErr.Code {
		case "42704", "22023": // undefined_object, invalid_parameter_value
			// "unrecognized configuration parameter" and "invalid value for
			// parameter" quote the URL's parameters, which may be a piece of a
			// password that held an unescaped '&'.
			msg = "a parameter of the URL is not a PostgreSQL setting or has an invalid value"
		}
		return &engine.Classified{
			Sentinel: engine.ErrConnectionRejected,
			Cause: redactedError{err, fmt.Sprintf("%s refused%s: %s (SQLSTATE %s); check DATABASE_URL",
				t.where, who, msg, pgErr.Code)},
		}
	}
	if reason, refused := tlsReason(err); reason != "" {
		mode := ""
		if t.sslmode != "" {
			mode = " with sslmode=" + t.sslmode
		}
		advice := "trust the server's certificate authority with sslrootcert=/path/to/ca.pem, give the server a certificate for the host name in the URL, " +
			"or set sslmode=require to encrypt without verifying (sslmode=disable only on a private network, such as a docker-compose service name)"
		if refused {
			advice = "enable ssl on the server, or set sslmode=disable if the connection stays on a private network (such as a docker-compose service name)"
		}
		return &engine.Classified{
			Sentinel: engine.ErrTLS,
			Cause:    redactedError{err, fmt.Sprintf("%s%s: %s; %s", t.where, mode, reason, advice)},
		}
	}
	reason := "connection failed"
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		reason = "connection timed out"
	case errors.As(err, &dnsErr):
		reason = "cannot resolve the host name: " + dnsErr.Err
	case errors.As(err, &opErr) && opErr.Err != nil:
		reason = opErr.Err.Error()
	}
	return &engine.Classified{
		Sentinel: engine.ErrUnreachable,
		Cause: redactedError{err, fmt.Sprintf("%s is not reachable (%s); check DATABASE_URL and that the server is running",
			t.where, reason)},
	}
}

// tlsReason returns the TLS or certificate failure in err's chain, or "".
// refused reports that the server declined TLS altogether.
func tlsReason(err error) (reason string, refused bool) {
	var (
		verify    *tls.CertificateVerificationError
		hostname  x509.HostnameError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		roots     x509.SystemRootsError
		header    tls.RecordHeaderError
		alert     tls.AlertError
	)
	switch {
	case errors.As(err, &verify):
		return "its certificate was not accepted: " + verify.Err.Error(), false
	case errors.As(err, &hostname):
		return "its certificate was not accepted: " + hostname.Error(), false
	case errors.As(err, &authority):
		return "its certificate was not accepted: " + authority.Error(), false
	case errors.As(err, &invalid):
		return "its certificate was not accepted: " + invalid.Error(), false
	case errors.As(err, &roots):
		return roots.Error(), false
	case errors.As(err, &header):
		return "the server does not speak TLS: " + header.Error(), false
	case errors.As(err, &alert):
		return "the server ended the handshake: " + alert.Error(), false
	}
	// pgx reports a server that answers 'N' to the SSLRequest with a plain error.
	if strings.Contains(err.Error(), "server refused TLS connection") {
		return "the server does not accept TLS connections", true
	}
	// Anything else from crypto/tls or crypto/x509 (their errors start with
	// "tls: " or "x509: ").
	return findTLSMessage(err), false
}

func findTLSMessage(err error) string {
	if err == nil {
		return ""
	}
	if msg := err.Error(); strings.HasPrefix(msg, "tls: ") || strings.HasPrefix(msg, "x509: ") {
		return msg
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return findTLSMessage(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if msg := findTLSMessage(e); msg != "" {
				return msg
			}
		}
	}
	return ""
}
