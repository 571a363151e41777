package sqlite

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// acceptedForms is what every URL error tells the user to write instead.
const acceptedForms = "use sqlite:./data/users.db, sqlite:///abs/path.db or sqlite::memory:"

// ParseURL returns the Config that a SQLite database URL describes. The scheme is
// sqlite: or sqlite3: (in any case), and the URL takes one of these forms:
//
//	sqlite:./data/users.db      a path relative to the working directory
//	sqlite://data/users.db      the same: what follows "//" is the path
//	sqlite:///abs/path.db       an absolute path
//	sqlite::memory:             a private in-memory database
//
// The path is taken as written (no percent-decoding) and must be valid UTF-8
// without NUL bytes. Parameters, translated into what pierre really does:
//   - mode=rwc (default) creates the file, mode=rw requires it, mode=ro opens it
//     read-only; mode=memory is the same as :memory:;
//   - cache=shared or cache=private is accepted and ignored: pierre keeps its own
//     writer and reader pools, and a shared cache would defeat WAL's concurrent
//     readers;
//   - _fk=1 (or _foreign_keys=true, ...) is accepted: foreign keys are always on;
//     turning them off is refused;
//   - busy_timeout=<milliseconds> (or _busy_timeout) between 1 and 600000 overrides
//     DefaultBusyTimeout.
//
// Any other parameter is refused. Fields the URL does not set stay zero, so that
// the caller can apply its own defaults before NewConnector. Errors wrap
// pierredb.ErrInvalidURL; every Config that ParseURL returns is accepted by
// NewConnector.
func ParseURL(raw string) (Config, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return Config{}, fmt.Errorf("%w: no scheme; %s", engine.ErrInvalidURL, acceptedForms)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
	default:
		return Config{}, fmt.Errorf("%w: scheme %q is not sqlite; %s", engine.ErrInvalidURL, shorten(scheme), acceptedForms)
	}
	path, query, _ := strings.Cut(rest, "?")
	// sqlite://relative/path and sqlite:///abs/path both follow the convention of
	// the reference server: what follows "//" is the path.
	path = strings.TrimPrefix(path, "//")
	var cfg Config
	switch path {
	case "":
		return Config{}, fmt.Errorf("%w: sqlite URL has no path; %s", engine.ErrInvalidURL, acceptedForms)
	case ":memory:":
		cfg.Memory = true
	default:
		if problem := pathProblem(path); problem != "" {
			return Config{}, fmt.Errorf("%w: %s; %s", engine.ErrInvalidURL, problem, acceptedForms)
		}
		cfg.Path = path
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return Config{}, fmt.Errorf("%w: sqlite URL parameters are malformed: %v", engine.ErrInvalidURL, err)
	}
	for key, vals := range values {
		v := vals[len(vals)-1]
		switch key {
		case "mode":
			switch Mode(v) {
			case ModeReadWriteCreate, ModeReadWrite, ModeReadOnly:
				cfg.Mode = Mode(v)
			case "memory":
				cfg.Memory = true
			default:
				return Config{}, fmt.Errorf("%w: sqlite mode=%q; use rwc, rw or ro", engine.ErrInvalidURL, shorten(v))
			}
		case "cache":
			if v != "shared" && v != "private" {
				return Config{}, fmt.Errorf("%w: sqlite cache=%q; use shared or private", engine.ErrInvalidURL, shorten(v))
			}
		case "_fk", "_foreign_keys":
			on, err := strconv.ParseBool(v)
			if err != nil || !on {
				return Config{}, fmt.Errorf("%w: sqlite %s=%q: foreign keys are always on in pierre and cannot be disabled", engine.ErrInvalidURL, key, shorten(v))
			}
		case "busy_timeout", "_busy_timeout":
			ms, err := strconv.Atoi(v)
			if err != nil || ms <= 0 || ms > 10*60*1000 {
				return Config{}, fmt.Errorf("%w: sqlite %s=%q; use milliseconds between 1 and 600000", engine.ErrInvalidURL, key, shorten(v))
			}
			cfg.BusyTimeout = time.Duration(ms) * time.Millisecond
		default:
			return Config{}, fmt.Errorf("%w: unknown sqlite parameter %q; pierre accepts mode, cache, _fk and busy_timeout", engine.ErrInvalidURL, shorten(key))
		}
	}
	if cfg.Memory {
		// mode=memory on a file path: the path names nothing (as in SQLite).
		cfg.Path = ""
		if cfg.Mode == ModeReadOnly {
			return Config{}, fmt.Errorf("%w: an in-memory sqlite database cannot be read-only", engine.ErrInvalidURL)
		}
	}
	return cfg, nil
}

// shorten keeps user-supplied fragments in messages short, cutting at a rune
// boundary.
func shorten(s string) string {
	const limit = 32
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
