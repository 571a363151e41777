package pierredb

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

// acceptedForms is what every URL error tells the user to write instead.
const acceptedForms = "use sqlite:./data/users.db, sqlite:///abs/path.db, sqlite::memory: or postgres://user:password@host:5432/database"

// target is a parsed database URL.
type target struct {
	backend  Backend
	sqlite   sqlite.Config // when backend == SQLite
	postgres string        // when backend == Postgres: the URL as given
}

// parseURL picks the engine and its settings from a database URL. Errors wrap
// ErrInvalidURL and never repeat the URL, which may hold a password.
//
// SQLite parameters, translated into what the driver really does:
//   - mode=rwc (default) creates the file, mode=rw requires it, mode=ro opens it read-only;
//   - cache=shared is accepted and ignored: pierre keeps its own writer and reader
//     pools, and a shared cache would defeat WAL's concurrent readers;
//   - _fk=1 (or true) is accepted: foreign keys are always on; _fk=0 is refused;
//   - busy_timeout=<milliseconds> overrides the 5 s default.
func parseURL(raw string) (target, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return target{}, fmt.Errorf("%w: no scheme; %s", ErrInvalidURL, acceptedForms)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		cfg, err := parseSQLite(rest)
		if err != nil {
			return target{}, err
		}
		return target{backend: SQLite, sqlite: cfg}, nil
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil || !strings.HasPrefix(rest, "//") {
			return target{}, fmt.Errorf("%w: malformed PostgreSQL URL; %s", ErrInvalidURL, acceptedForms)
		}
		if u.Opaque != "" || u.Fragment != "" {
			return target{}, fmt.Errorf("%w: malformed PostgreSQL URL; %s", ErrInvalidURL, acceptedForms)
		}
		return target{backend: Postgres, postgres: raw}, nil
	default:
		return target{}, fmt.Errorf("%w: unsupported scheme %q; %s", ErrInvalidURL, shorten(scheme), acceptedForms)
	}
}

func parseSQLite(rest string) (sqlite.Config, error) {
	path, query, _ := strings.Cut(rest, "?")
	// sqlite://relative/path and sqlite:///abs/path both follow the convention of
	// the reference server: what follows "//" is the path.
	path = strings.TrimPrefix(path, "//")
	var cfg sqlite.Config
	switch path {
	case "":
		return cfg, fmt.Errorf("%w: sqlite URL has no path; %s", ErrInvalidURL, acceptedForms)
	case ":memory:":
		cfg.Memory = true
	default:
		if strings.ContainsRune(path, 0) {
			return cfg, fmt.Errorf("%w: sqlite path contains a NUL byte", ErrInvalidURL)
		}
		cfg.Path = path
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return cfg, fmt.Errorf("%w: sqlite URL parameters are malformed: %v", ErrInvalidURL, err)
	}
	for key, vals := range values {
		v := vals[len(vals)-1]
		switch key {
		case "mode":
			switch sqlite.Mode(v) {
			case sqlite.ModeReadWriteCreate, sqlite.ModeReadWrite, sqlite.ModeReadOnly:
				cfg.Mode = sqlite.Mode(v)
			case "memory":
				cfg.Memory = true
			default:
				return cfg, fmt.Errorf("%w: sqlite mode=%q; use rwc, rw or ro", ErrInvalidURL, shorten(v))
			}
		case "cache":
			if v != "shared" && v != "private" {
				return cfg, fmt.Errorf("%w: sqlite cache=%q; use shared or private", ErrInvalidURL, shorten(v))
			}
		case "_fk", "_foreign_keys":
			on, err := strconv.ParseBool(v)
			if err != nil || !on {
				return cfg, fmt.Errorf("%w: sqlite %s=%q: foreign keys are always on in pierre and cannot be disabled", ErrInvalidURL, key, shorten(v))
			}
		case "busy_timeout", "_busy_timeout":
			ms, err := strconv.Atoi(v)
			if err != nil || ms <= 0 || ms > 10*60*1000 {
				return cfg, fmt.Errorf("%w: sqlite %s=%q; use milliseconds between 1 and 600000", ErrInvalidURL, key, shorten(v))
			}
			cfg.BusyTimeout = time.Duration(ms) * time.Millisecond
		default:
			return cfg, fmt.Errorf("%w: unknown sqlite parameter %q; pierre accepts mode, cache, _fk and busy_timeout", ErrInvalidURL, shorten(key))
		}
	}
	if cfg.Memory && cfg.Mode == sqlite.ModeReadOnly {
		return cfg, fmt.Errorf("%w: an in-memory sqlite database cannot be read-only", ErrInvalidURL)
	}
	return cfg, nil
}

// shorten keeps user-supplied fragments in messages short.
func shorten(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
