package password

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that the stored-hash parser never panics, classifies every
// refusal as ErrMalformedHash or ErrHashParams without quoting the input, and
// only accepts canonical, in-bounds hashes.
func FuzzParse(f *testing.F) {
	for _, tc := range goodHashes {
		f.Add(tc.stored)
	}
	for _, tc := range badHashes {
		f.Add(tc.stored)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrHashParams) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if len(s) >= 8 && strings.Contains(s, "$") && strings.Contains(err.Error(), s) {
				t.Fatalf("error message quotes the input: %v", err)
			}
			return
		}
		switch got.scheme {
		case schemeArgon2id:
			a := got.argon
			if err := checkArgon2Params(uint64(a.memoryKiB), uint64(a.iterations), uint64(a.parallelism)); err != nil {
				t.Fatalf("accepted out-of-bounds parameters m=%d t=%d p=%d", a.memoryKiB, a.iterations, a.parallelism)
			}
			if len(a.salt) < minSaltLen || len(a.salt) > maxSaltLen || len(a.key) < minKeyLen || len(a.key) > maxKeyLen {
				t.Fatalf("accepted salt %d / key %d bytes", len(a.salt), len(a.key))
			}
			if enc := a.encode(); enc != s {
				t.Fatalf("accepted a non-canonical form: %q re-encodes as %q", s, enc)
			}
		case schemeBcrypt:
			if len(s) != bcryptHashLen || got.bcryptCost < 4 || got.bcryptCost > MaxBcryptCost {
				t.Fatalf("accepted bcrypt hash of length %d, cost %d", len(s), got.bcryptCost)
			}
			if !strings.HasPrefix(s, "$2a$") && !strings.HasPrefix(s, "$2b$") && !strings.HasPrefix(s, "$2y$") {
				t.Fatalf("accepted bcrypt variant %q", s[:4])
			}
		default:
			t.Fatalf("unknown scheme %q", got.scheme)
		}
	})
}

// FuzzCost checks that Cost never panics, classifies every refusal as
// ErrMalformedHash or ErrHashParams without quoting the input, agrees with
// the parser on every hash it accepts, and only accepts cost headers whose
// parameters are within bounds.
func FuzzCost(f *testing.F) {
	for _, tc := range goodHashes {
		f.Add(tc.stored)
		if len(tc.stored) > 7 {
			f.Add(tc.stored[:7])
		}
	}
	for _, tc := range badHashes {
		f.Add(tc.stored)
	}
	for _, s := range []string{"$2y$12$", "$2b$99$", "$argon2id$v=19$m=19456,t=2,p=1$", "$argon2id$v=19$", "$argon2id$v=19$$", "$argon2id$v=19$m=1,t=1,p=1$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Cost(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrHashParams) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if len(s) >= 8 && strings.Contains(s, "$") && strings.Contains(err.Error(), s) {
				t.Fatalf("error message quotes the input: %v", err)
			}
			if _, perr := parse(s); perr == nil {
				t.Fatalf("Cost refuses a hash that parses: %v", err)
			}
			return
		}
		if parsed, perr := parse(s); perr == nil {
			if want := parsed.key().cost(); got != want {
				t.Fatalf("Cost %d, parsed cost %d", got, want)
			}
			return
		}
		// A cost header.
		if got == 0 || got > uint64(MaxMemoryKiB)*MaxIterations {
			t.Fatalf("cost %d out of bounds", got)
		}
		k, _ := parseCostKey(s)
		if k.scheme == schemeArgon2id {
			if err := checkArgon2Params(uint64(k.memoryKiB), uint64(k.iterations), uint64(k.parallelism)); err != nil {
				t.Fatalf("accepted out-of-bounds header parameters m=%d t=%d p=%d", k.memoryKiB, k.iterations, k.parallelism)
			}
			if want := encodePrefix(k.memoryKiB, k.iterations, k.parallelism); want != s {
				t.Fatalf("accepted a non-canonical header: %q, canonical %q", s, want)
			}
		} else if len(s) != bcryptHeaderLen || k.bcryptCost < 4 || k.bcryptCost > MaxBcryptCost {
			t.Fatalf("accepted bcrypt header %q as cost %d", s, k.bcryptCost)
		}
	})
}
