package password

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// bcryptRoundUnits is the nominal work of one of bcrypt's 2^cost
	// expensive key-schedule rounds, in cost units (one argon2 block pass).
	// Measured on the reference machine: a round takes about 60 µs, an
	// argon2 block pass about 650 ns.
	bcryptRoundUnits = 90

	// estimateWindow is how many recent floor timings the estimate keeps
	// (odd, so that the median is one of them).
	estimateWindow = 15
	// maxPadFactor bounds the padding target to this many times the fastest
	// floor computation ever measured for the floor.
	maxPadFactor = 4

	bcryptHeaderLen = 7 // "$2b$12$"
)

// bcryptB64 is bcrypt's own base64 alphabet, unpadded.
var bcryptB64 = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)

// Cost returns the nominal work of verifying a password against stored, so
// that two stored hashes, of the same or of different schemes, can be
// compared: the larger Cost is the costlier verification. The unit is about
// one argon2 block pass (1 KiB of memory filled once):
//
//   - argon2id: m*t (m in KiB). Parallelism spreads the same work over lanes,
//     so it does not change the cost. The default policy is 19456*2 = 38912.
//   - bcrypt cost c: 90 * 2^c, as one of bcrypt's 2^c rounds takes about as
//     long as 90 argon2 block passes. Cost 10 is 92160, cost 12 is 368640.
//
// The conversion between schemes is nominal (measured once on a reference
// machine); within a scheme the order is exact. stored is either a full
// stored hash, strictly parsed as by [Hasher.Verify], or just its cost
// header: "$2a$NN$", "$2b$NN$" or "$2y$NN$" for bcrypt (the first seven
// characters of the hash), or "$argon2id$v=19$m=M,t=T,p=P$" for argon2id.
// It returns ErrMalformedHash or ErrHashParams (never quoting stored) for
// anything else, with the same bounds as Verify.
func Cost(stored string) (uint64, error) {
	k, err := parseCostKey(stored)
	if err != nil {
		return 0, err
	}
	return k.cost(), nil
}

// costKey identifies the work of one verification: two stored hashes with
// equal keys cost exactly the same to verify.
type costKey struct {
	scheme      string
	memoryKiB   uint32 // argon2id
	iterations  uint32 // argon2id
	parallelism uint8  // argon2id
	bcryptCost  int    // bcrypt
}

// cost returns the nominal work of k; see Cost.
func (k costKey) cost() uint64 {
	if k.scheme == schemeBcrypt {
		return bcryptRoundUnits << uint(k.bcryptCost)
	}
	return uint64(k.memoryKiB) * uint64(k.iterations)
}

// key returns the cost key of a parsed stored hash.
func (s storedHash) key() costKey {
	if s.scheme == schemeBcrypt {
		return costKey{scheme: schemeBcrypt, bcryptCost: s.bcryptCost}
	}
	return costKey{scheme: schemeArgon2id, memoryKiB: s.argon.memoryKiB, iterations: s.argon.iterations, parallelism: s.argon.parallelism}
}

// parseCostKey accepts a full stored hash or a cost header (see Cost).
func parseCostKey(s string) (costKey, error) {
	if len(s) > maxStoredLen {
		return costKey{}, malformed("too long")
	}
	if len(s) == bcryptHeaderLen && isBcryptVersion(s) {
		if s[6] != '$' || !isDigit(s[4]) || !isDigit(s[5]) {
			return costKey{}, malformed("bcrypt cost")
		}
		cost := int(s[4]-'0')*10 + int(s[5]-'0')
		if cost < 4 || cost > MaxBcryptCost {
			return costKey{}, badParams("bcrypt cost")
		}
		return costKey{scheme: schemeBcrypt, bcryptCost: cost}, nil
	}
	if rest, ok := strings.CutPrefix(s, argon2idPrefix); ok && rest != "" && strings.IndexByte(rest, '$') == len(rest)-1 {
		m, t, p, err := parseArgon2Params(rest[:len(rest)-1])
		if err != nil {
			return costKey{}, err
		}
		if err := checkArgon2Params(m, t, p); err != nil {
			return costKey{}, err
		}
		return costKey{scheme: schemeArgon2id, memoryKiB: uint32(m), iterations: uint32(t), parallelism: uint8(p)}, nil
	}
	parsed, err := parse(s)
	if err != nil {
		return costKey{}, err
	}
	return parsed.key(), nil
}

// floor is the costliest kind of stored hash the Hasher knows of: what
// DummyVerify verifies against, and what every verification is padded to.
// key, cost and dummy never change; est is safe for concurrent use.
type floor struct {
	key   costKey
	cost  uint64
	dummy string     // a stored hash of kind key that no known password matches
	hash  storedHash // dummy, parsed
	est   estimator  // how long verifying a hash of kind key takes here
}

// newFloor builds a floor for k with a fresh random dummy. k must be within
// the parse bounds.
func newFloor(k costKey) *floor {
	f := &floor{key: k, cost: k.cost()}
	salt := make([]byte, SaltLength)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (it crashes the program instead).
	if k.scheme == schemeBcrypt {
		// A real bcrypt hash's shape and cost, with a random output: no
		// password is known to match it, and none had to be hashed.
		sum := make([]byte, 23)
		_, _ = rand.Read(sum)
		f.dummy = "$2b$" + string([]byte{'0' + byte(k.bcryptCost/10), '0' + byte(k.bcryptCost%10)}) + "$" +
			bcryptB64.EncodeToString(salt) + bcryptB64.EncodeToString(sum)
	} else {
		key := make([]byte, KeyLength)
		_, _ = rand.Read(key)
		f.dummy = argon2Hash{memoryKiB: k.memoryKiB, iterations: k.iterations, parallelism: k.parallelism, salt: salt, key: key}.encode()
	}
	parsed, err := parse(f.dummy)
	if err != nil {
		panic("password: dummy hash does not parse")
	}
	f.hash = parsed
	return f
}

// estimator keeps the recent timings of one floor's verifications and
// derives the padding target from them.
type estimator struct {
	mu      sync.Mutex
	samples [estimateWindow]time.Duration // ring buffer
	n       int                           // samples ever added
	fastest time.Duration                 // smallest sample ever added
}

// add records how long one verification of the floor's kind took.
func (e *estimator) add(d time.Duration) {
	if d <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.samples[e.n%estimateWindow] = d
	e.n++
	if e.fastest == 0 || d < e.fastest {
		e.fastest = d
	}
}

// target returns the median of the recent samples, at most maxPadFactor
// times the fastest sample, or 0 when there is no sample yet. The median
// ignores a few slow outliers; the cap bounds the padding even when all the
// recent samples are slow.
func (e *estimator) target() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := min(e.n, estimateWindow)
	if k == 0 {
		return 0
	}
	s := e.samples // a copy
	sorted := s[:k]
	slices.Sort(sorted)
	med := sorted[k/2]
	if k%2 == 0 {
		med = (sorted[k/2-1] + sorted[k/2]) / 2
	}
	return min(med, maxPadFactor*e.fastest)
}

// count returns the number of samples ever added.
func (e *estimator) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// RaiseFloor tells the Hasher about a stored hash the database holds, so
// that unknown accounts and cheaper hashes cost as much as it does. stored
// is a full stored hash or a cost header, as accepted by [Cost] (for
// example "$2y$12$" for the costliest bcrypt hash found).
//
// If stored is costlier (by Cost) than the current floor, RaiseFloor first
// times one verification against a new dummy hash of the same scheme and
// parameters (waiting for a concurrency slot, like Verify) and then makes
// that the floor: from then on DummyVerify verifies against that dummy, and
// every verification is padded to the floor's measured time. It then
// returns raised=true. Otherwise it does nothing and returns false: the
// floor is never lowered.
//
// Errors, with the floor unchanged: ErrMalformedHash or ErrHashParams for an
// unusable stored; ctx.Err() if ctx ends while waiting for a slot.
//
// Verify raises the floor by itself when it verifies a costlier hash, so
// callers need RaiseFloor only for hashes not yet verified by this Hasher:
// typically once at start-up, with the costliest hash in the database. To
// find the costliest bcrypt hash, compare the two cost digits (characters 5
// and 6), not the whole header: as strings, "$2y$10$" sorts after "$2a$12$".
// RaiseFloor is cheap (a parse) when it does not raise the floor.
func (h *Hasher) RaiseFloor(ctx context.Context, stored string) (raised bool, err error) {
	h.init()
	k, err := parseCostKey(stored)
	if err != nil {
		return false, err
	}
	if k.cost() <= h.floor.Load().cost {
		return false, nil
	}
	f := newFloor(k)
	if err := h.calibrate(ctx, f); err != nil {
		return false, err
	}
	return h.raise(f), nil
}

// Calibrate times one verification against the current floor's dummy hash
// (waiting for a concurrency slot, like Verify) and adds it to the floor's
// time estimate. Until the floor has been timed once, by Calibrate,
// RaiseFloor, DummyVerify or a Verify of a hash of the floor's kind,
// verifications are not padded; callers that do not call RaiseFloor at
// start-up can call Calibrate instead. It returns ctx.Err() if ctx ends while
// waiting.
func (h *Hasher) Calibrate(ctx context.Context) error {
	h.init()
	return h.calibrate(ctx, h.floor.Load())
}

// FloorCost returns the Cost of the current floor: the costliest kind of
// hash the Hasher knows of, at least its policy.
func (h *Hasher) FloorCost() uint64 {
	h.init()
	return h.floor.Load().cost
}

// calibrate verifies a password against f's dummy and records the time.
func (h *Hasher) calibrate(ctx context.Context, f *floor) error {
	_, elapsed, _, err := h.compute(ctx, "", f.dummy, f.hash)
	if err != nil {
		return err
	}
	f.est.add(elapsed)
	return nil
}

// raise makes f the floor if it is costlier than the current one.
func (h *Hasher) raise(f *floor) bool {
	for {
		cur := h.floor.Load()
		if f.cost <= cur.cost {
			return false
		}
		if h.floor.CompareAndSwap(cur, f) {
			return true
		}
	}
}

// pad waits until target has passed since start, or until ctx ends.
func pad(ctx context.Context, start time.Time, target time.Duration) error {
	d := time.Until(start.Add(target))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
