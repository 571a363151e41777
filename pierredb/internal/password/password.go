// Package password hashes and verifies user passwords for pierre's user store.
//
// New passwords are hashed with argon2id and stored as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, unpadded standard base64>$<key, unpadded standard base64>
//
// The cost never goes below m=19456 KiB, t=2, p=1 (see [DefaultPolicy]); callers
// can only raise it. Verification also accepts bcrypt hashes ($2a$, $2b$, $2y$)
// so that users imported from the reference server, which used bcrypt cost 12,
// can still log in; [Hasher.Verify] then reports that the hash should be
// replaced (needsRehash), as it does for argon2id hashes below the current
// policy. Rehashing is the caller's job, and a failed rehash should not fail
// the login.
//
// Stored hashes are parsed strictly and every cost parameter is bounded before
// any memory is allocated for hashing, so a corrupt or hostile row cannot make
// a login allocate gigabytes or spin for minutes. Each argon2id hash at the
// default policy holds about 20 MB, so a [Hasher] runs at most GOMAXPROCS
// hashes at once; callers beyond that wait, and the wait honours their context.
//
// # Timing
//
// A login must not tell an attacker whether an account exists, nor which kind
// of hash it has. Verifying costs what the stored hash costs: about 25 ms for
// argon2id at the default policy, but about 60 ms for an imported bcrypt hash
// of cost 10 and 250 ms or more at cost 12. So a Hasher keeps a floor: the
// costliest kind of stored hash (scheme and parameters) it knows of, at least
// its own policy, compared by [Cost]. The floor is raised, and never lowered,
// by [Hasher.RaiseFloor] (the caller passes the costliest hash its database
// holds, typically at start-up) and by [Hasher.Verify] whenever it verifies a
// costlier hash.
//
//   - [Hasher.DummyVerify], for unknown accounts, verifies against a random
//     dummy hash of the floor's scheme and parameters: the same real work as
//     the costliest login, never less, so unknown accounts are not cheaper to
//     probe than real ones.
//   - Every verification (Verify or DummyVerify) is then padded with a sleep
//     until it has lasted as long as the floor's estimated verification
//     time, counted from when it started hashing (time spent waiting for a
//     concurrency slot is common to all callers and is not counted). A
//     cheaper hash thus takes as long as the floor, whether the password is
//     right or wrong; a verification of the floor's kind is padded only when
//     it ran faster than usual.
//   - The estimate is the median of the last 15 timings of the floor's kind
//     (its calibration by RaiseFloor or [Hasher.Calibrate], every
//     DummyVerify, and every Verify of a hash of exactly the floor's kind),
//     capped at 4 times the fastest timing ever seen for it, so that a slow
//     outlier or a burst of load cannot make logins sleep for seconds. Until
//     the floor has been timed once, nothing is padded.
//
// Padding sleeps hold no concurrency slot and end early, with ctx.Err(), when
// the caller's context ends. Hashing new passwords ([Hasher.Hash]) is never
// padded.
//
// Passwords are hashed as the exact bytes given: no Unicode normalisation or
// trimming is applied. Error messages never contain a password, a stored hash
// or any part of one.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Length limits for passwords.
const (
	// MinLength is the minimum length of a new password, in characters
	// (Unicode code points, not bytes).
	MinLength = 8
	// MaxLength is the maximum length, in bytes, of any password given to
	// Hash, Verify or DummyVerify. Longer input is refused before hashing.
	MaxLength = 4096
)

// Sizes of the salt and derived key in hashes produced by a Hasher.
const (
	// SaltLength is the length in bytes of the random salt of a new hash.
	SaltLength = 16
	// KeyLength is the length in bytes of the argon2id output of a new hash.
	KeyLength = 32
)

// Bounds applied to stored hashes (and to policies) before any hashing.
const (
	// MaxMemoryKiB is the largest argon2id memory cost accepted (1 GiB).
	MaxMemoryKiB = 1 << 20
	// MaxIterations is the largest argon2id time cost accepted.
	MaxIterations = 10
	// MaxParallelism is the largest argon2id parallelism accepted.
	MaxParallelism = 16
	// MaxBcryptCost is the largest bcrypt cost accepted in a stored hash.
	// Each step doubles the work; the reference server used 12.
	MaxBcryptCost = 14

	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128

	// bcryptMaxInput is the number of password bytes bcrypt actually uses.
	bcryptMaxInput = 72
)

// Errors returned by this package. They are sentinel values to be tested with
// errors.Is; some are wrapped with a short, fixed description of the problem.
var (
	// ErrTooShort means a new password has fewer than MinLength characters.
	ErrTooShort = errors.New("password: too short")
	// ErrTooLong means a password is longer than MaxLength bytes. It is
	// returned before any hashing, by Hash, Verify and DummyVerify.
	ErrTooLong = errors.New("password: too long")
	// ErrMalformedHash means a stored hash cannot be parsed: unknown scheme,
	// unsupported argon2 version, bad base64, missing, duplicated, unknown or
	// reordered parameters, or non-canonical numbers.
	ErrMalformedHash = errors.New("password: malformed stored hash")
	// ErrHashParams means a stored hash parses but its cost parameters or
	// salt/key lengths are outside the accepted bounds (zero, m > 1 GiB,
	// t > 10, p > 16, m < 8*p, salt outside 8–64 bytes, key outside 16–128
	// bytes, bcrypt cost outside 4–MaxBcryptCost). It is returned before any
	// memory is allocated for hashing.
	ErrHashParams = errors.New("password: stored hash parameters out of bounds")
	// ErrMismatch means the password does not match the stored hash.
	ErrMismatch = errors.New("password: mismatch")
)

// Policy is the argon2id cost of new hashes. Zero fields mean the defaults;
// values below the floor (m=19456 KiB, t=2, p=1) are raised to the floor, so
// callers can only raise the cost. Values above the bounds accepted when
// parsing (MaxMemoryKiB, MaxIterations, MaxParallelism) are lowered to those
// bounds, so that every hash a Hasher produces can be verified.
type Policy struct {
	// MemoryKiB is the argon2id memory cost in KiB.
	MemoryKiB uint32
	// Iterations is the argon2id time cost (passes over memory).
	Iterations uint32
	// Parallelism is the argon2id number of lanes.
	Parallelism uint8
}

// DefaultPolicy returns the minimum (and default) argon2id cost: m=19456 KiB,
// t=2, p=1. New hashes also use a 16-byte salt and a 32-byte key.
func DefaultPolicy() Policy {
	return Policy{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}
}

// normalized applies the floor and the parse bounds to p.
func (p Policy) normalized() Policy {
	floor := DefaultPolicy()
	p.MemoryKiB = min(max(p.MemoryKiB, floor.MemoryKiB), MaxMemoryKiB)
	p.Iterations = min(max(p.Iterations, floor.Iterations), MaxIterations)
	p.Parallelism = min(max(p.Parallelism, floor.Parallelism), MaxParallelism)
	return p
}

// hashOp describes one expensive hash computation; it is passed to the test
// hook while the computation holds a concurrency slot.
type hashOp struct {
	scheme      string // "argon2id" or "bcrypt"
	memoryKiB   uint32
	iterations  uint32
	parallelism uint8
	bcryptCost  int
}

// Hasher hashes and verifies passwords. It is safe for concurrent use; at most
// GOMAXPROCS (as of NewHasher) hash computations run at once, and further
// callers wait for a slot, giving up when their context ends. It equalises
// verification times as described in the package documentation; its floor
// starts at its own policy.
//
// The zero value is usable and behaves like NewHasher(Policy{}).
type Hasher struct {
	once   sync.Once
	policy Policy
	prefix string        // PHC prefix of new hashes, up to and including the '$' before the salt
	sem    chan struct{} // one token per running hash
	floor  atomic.Pointer[floor]

	// hook, when set (tests only), is called for each hash computation
	// while it holds a concurrency slot, just before hashing.
	hook func(hashOp)
}

// NewHasher returns a Hasher for policy p (normalised as documented on
// Policy) that runs at most runtime.GOMAXPROCS(0) hashes at once.
func NewHasher(p Policy) *Hasher {
	return newHasher(p.normalized(), runtime.GOMAXPROCS(0))
}

// newHasher builds a Hasher with policy p taken as is (no floor), allowing
// limit concurrent hashes. Tests use it for cheap policies; p must still be
// within the parse bounds so that its hashes verify.
func newHasher(p Policy, limit int) *Hasher {
	h := new(Hasher)
	h.once.Do(func() { h.setup(p, limit) })
	return h
}

// init sets up a zero-value Hasher with the default policy.
func (h *Hasher) init() {
	h.once.Do(func() { h.setup(DefaultPolicy(), runtime.GOMAXPROCS(0)) })
}

func (h *Hasher) setup(p Policy, limit int) {
	if err := checkArgon2Params(uint64(p.MemoryKiB), uint64(p.Iterations), uint64(p.Parallelism)); err != nil {
		panic("password: policy outside the accepted bounds")
	}
	if limit < 1 {
		limit = 1
	}
	h.policy = p
	h.sem = make(chan struct{}, limit)
	h.prefix = encodePrefix(p.MemoryKiB, p.Iterations, p.Parallelism)
	h.floor.Store(newFloor(costKey{scheme: schemeArgon2id, memoryKiB: p.MemoryKiB, iterations: p.Iterations, parallelism: p.Parallelism}))
}

// Policy returns the normalised policy this Hasher hashes new passwords with.
func (h *Hasher) Policy() Policy {
	h.init()
	return h.policy
}

// ValidateNew checks the length rules for a new password: at most MaxLength
// bytes (ErrTooLong) and at least MinLength characters (ErrTooShort), counted
// as Unicode code points, so eight multi-byte characters are enough. Hash
// calls it; Verify does not, so that old passwords keep working.
func ValidateNew(password string) error {
	if len(password) > MaxLength {
		return ErrTooLong
	}
	if utf8.RuneCountInString(password) < MinLength {
		return ErrTooShort
	}
	return nil
}

// Hash validates password with ValidateNew and returns its argon2id PHC
// string at the Hasher's policy with a fresh random salt, for example
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt b64>$<key b64>
//
// It waits for a concurrency slot first and returns ctx.Err() if ctx ends
// while waiting.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	h.init()
	if err := ValidateNew(password); err != nil {
		return "", err
	}
	salt := make([]byte, SaltLength)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (it crashes the program instead).
	p := h.policy
	key, err := h.argon2id(ctx, password, salt, p.MemoryKiB, p.Iterations, p.Parallelism, KeyLength)
	if err != nil {
		return "", err
	}
	return h.prefix + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

// Verify checks password against stored, an argon2id PHC string or a bcrypt
// hash ($2a$, $2b$ or $2y$). The comparison is constant-time.
//
// On success it returns needsRehash=true when stored is bcrypt, or an
// argon2id hash with any parameter (memory, iterations, parallelism, salt or
// key length) below the Hasher's policy; the caller should then store a new
// Hash of the password. A wrong password returns ErrMismatch.
//
// Whether the password is right or wrong, Verify lasts at least the floor's
// estimated verification time once it starts hashing (see the package
// documentation). If stored is costlier than the floor (by Cost), it becomes
// the floor, as if passed to RaiseFloor, timed by this verification; if it
// has exactly the floor's scheme and parameters, this verification's time
// is added to the floor's estimate.
//
// Errors, all with needsRehash=false: ErrTooLong when password exceeds
// MaxLength bytes (checked first, without hashing or parsing);
// ErrMalformedHash or ErrHashParams for an unusable stored hash (without
// hashing or padding); ctx.Err() if ctx ends while waiting for a concurrency
// slot or while padding (then the outcome of a finished hash is dropped).
//
// bcrypt only uses the first 72 bytes of a password. A password longer than
// 72 bytes never matches a bcrypt hash (it returns ErrMismatch after the same
// amount of work as a real check), because accepting it would accept every
// password sharing those 72 bytes. Such a user has to reset the password.
func (h *Hasher) Verify(ctx context.Context, password, stored string) (needsRehash bool, err error) {
	h.init()
	if len(password) > MaxLength {
		return false, ErrTooLong
	}
	parsed, err := parse(stored)
	if err != nil {
		return false, err
	}
	fl := h.floor.Load()
	start, elapsed, match, err := h.compute(ctx, password, stored, parsed)
	if err != nil {
		return false, err
	}
	switch key := parsed.key(); {
	case key == fl.key:
		fl.est.add(elapsed)
	case key.cost() > fl.cost:
		f := newFloor(key)
		f.est.add(elapsed)
		h.raise(f)
	}
	if err := pad(ctx, start, h.floor.Load().est.target()); err != nil {
		return false, err
	}
	if !match {
		return false, ErrMismatch
	}
	if parsed.scheme == schemeBcrypt {
		return true, nil
	}
	return h.belowPolicy(parsed.argon), nil
}

// DummyVerify does the work of verifying a password against the costliest
// kind of hash the Hasher knows of (its floor: see RaiseFloor), using a
// dummy hash of that scheme and those parameters that no known password
// matches, and is padded like Verify, so that a login for an unknown account
// costs and lasts as long as one for a known account. Its time is added to
// the floor's estimate. It returns ErrMismatch; ctx.Err() if ctx ends while
// waiting for a concurrency slot or while padding; or — exactly as Verify
// would, and without hashing — ErrTooLong when password exceeds MaxLength
// bytes, so that the outcome for an unknown account is indistinguishable from
// a wrong password for a known one.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	h.init()
	if len(password) > MaxLength {
		return ErrTooLong
	}
	fl := h.floor.Load()
	start, elapsed, _, err := h.compute(ctx, password, fl.dummy, fl.hash)
	if err != nil {
		return err
	}
	fl.est.add(elapsed)
	if err := pad(ctx, start, h.floor.Load().est.target()); err != nil {
		return err
	}
	// A match cannot happen short of guessing a random 184-bit (bcrypt) or
	// 256-bit (argon2id) output.
	return ErrMismatch
}

// compute verifies password against parsed (whose text is stored) while
// holding a concurrency slot. It returns when hashing started and how long it
// took (neither counts the wait for a slot), and whether password matched.
// err is ctx.Err() from the wait, or ErrMalformedHash if bcrypt refuses a
// hash that parse accepted.
func (h *Hasher) compute(ctx context.Context, password, stored string, parsed storedHash) (start time.Time, elapsed time.Duration, match bool, err error) {
	if parsed.scheme == schemeBcrypt {
		return h.verifyBcrypt(ctx, password, stored, parsed.bcryptCost)
	}
	a := parsed.argon
	key, start, elapsed, err := h.argon2idTimed(ctx, password, a.salt, a.memoryKiB, a.iterations, a.parallelism, uint32(len(a.key)))
	if err != nil {
		return time.Time{}, 0, false, err
	}
	match = subtle.ConstantTimeCompare(key, a.key) == 1
	clear(key)
	return start, elapsed, match, nil
}

// belowPolicy reports whether a stored argon2id hash is weaker than the
// policy in any parameter.
func (h *Hasher) belowPolicy(a argon2Hash) bool {
	p := h.policy
	return a.memoryKiB < p.MemoryKiB ||
		a.iterations < p.Iterations ||
		a.parallelism < p.Parallelism ||
		len(a.salt) < SaltLength ||
		len(a.key) < KeyLength
}

// acquire takes a concurrency slot, or returns ctx.Err() if ctx is already
// done or ends while waiting.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// argon2id derives an argon2id key while holding a concurrency slot. The
// parameters must already be within bounds.
func (h *Hasher) argon2id(ctx context.Context, password string, salt []byte, memoryKiB, iterations uint32, parallelism uint8, keyLen uint32) ([]byte, error) {
	key, _, _, err := h.argon2idTimed(ctx, password, salt, memoryKiB, iterations, parallelism, keyLen)
	return key, err
}

// argon2idTimed is argon2id that also returns when hashing started and how
// long it took, not counting the wait for a slot.
func (h *Hasher) argon2idTimed(ctx context.Context, password string, salt []byte, memoryKiB, iterations uint32, parallelism uint8, keyLen uint32) ([]byte, time.Time, time.Duration, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, time.Time{}, 0, err
	}
	defer h.release()
	if h.hook != nil {
		h.hook(hashOp{scheme: schemeArgon2id, memoryKiB: memoryKiB, iterations: iterations, parallelism: parallelism})
	}
	start := time.Now()
	pw := []byte(password)
	key := argon2.IDKey(pw, salt, iterations, memoryKiB, parallelism, keyLen)
	clear(pw)
	return key, start, time.Since(start), nil
}

// verifyBcrypt checks password against a bcrypt hash already validated by
// parse, while holding a concurrency slot. It returns when hashing started,
// how long it took (not counting the wait for a slot) and whether password
// matched.
func (h *Hasher) verifyBcrypt(ctx context.Context, password, stored string, cost int) (start time.Time, elapsed time.Duration, match bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return time.Time{}, 0, false, err
	}
	defer h.release()
	if h.hook != nil {
		h.hook(hashOp{scheme: schemeBcrypt, bcryptCost: cost})
	}
	start = time.Now()
	pw := []byte(password)
	defer clear(pw)
	tooLong := len(pw) > bcryptMaxInput
	if tooLong {
		// bcrypt would silently ignore the rest; do the same work on the
		// prefix so timing does not tell, then refuse.
		pw = pw[:bcryptMaxInput]
	}
	err = bcrypt.CompareHashAndPassword([]byte(stored), pw)
	elapsed = time.Since(start)
	switch {
	case tooLong, errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return start, elapsed, false, nil
	case err != nil:
		// parse accepted it, so this should not happen; do not pass on
		// bcrypt's message, which may quote bytes of the hash.
		return time.Time{}, 0, false, ErrMalformedHash
	}
	return start, elapsed, true, nil
}
