package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hashingOps returns one call of each kind of hashing call the Hasher offers, all expected to
// succeed (or, for DummyVerify, to mismatch) against a cheap hasher.
func hashingOps(t *testing.T, h *Hasher) []func(context.Context) error {
	t.Helper()
	const pw = "correct horse battery staple"
	stored := makeArgon2id(t, pw, cheap.MemoryKiB, cheap.Iterations, cheap.Parallelism, SaltLength, KeyLength)
	return []func(context.Context) error{
		func(ctx context.Context) error { _, err := h.Hash(ctx, pw); return err },
		func(ctx context.Context) error { _, err := h.Verify(ctx, pw, stored); return err },
		func(ctx context.Context) error { _, err := h.Verify(ctx, bcrypt4Password, bcrypt4); return err },
		func(ctx context.Context) error {
			if err := h.DummyVerify(ctx, pw); !errors.Is(err, ErrMismatch) {
				return err
			}
			return nil
		},
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	tests := []struct {
		name           string
		limit, workers int
	}{
		{"limit 1", 1, 4},
		{"limit 2", 2, 8},
		{"limit 3", 3, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHasher(cheap, tc.limit)
			ops := hashingOps(t, h)
			var inFlight, maxSeen, total atomic.Int32
			release := make(chan struct{})
			h.hook = func(hashOp) {
				n := inFlight.Add(1)
				for {
					m := maxSeen.Load()
					if n <= m || maxSeen.CompareAndSwap(m, n) {
						break
					}
				}
				<-release
				total.Add(1)
				inFlight.Add(-1)
			}

			errs := make(chan error, tc.workers)
			var wg sync.WaitGroup
			for i := range tc.workers {
				op := ops[i%len(ops)]
				wg.Go(func() { errs <- op(context.Background()) })
			}
			limit := int32(tc.limit)
			require.Eventually(t, func() bool { return inFlight.Load() == limit }, 5*time.Second, time.Millisecond,
				"the limit is reached")
			assert.Never(t, func() bool { return inFlight.Load() > limit }, 50*time.Millisecond, time.Millisecond,
				"the other callers wait")
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			assert.Equal(t, limit, maxSeen.Load(), "at most limit hashes ran at once")
			assert.Equal(t, int32(tc.workers), total.Load())
			assert.Zero(t, len(h.sem), "every slot released")
		})
	}
}

func TestContextWhileWaiting(t *testing.T) {
	h := newHasher(cheap, 1)
	ops := hashingOps(t, h)

	// Occupy the only slot.
	var hooked atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	h.hook = func(hashOp) {
		if hooked.Add(1) == 1 {
			close(entered)
			<-release
		}
	}
	occupant := make(chan error, 1)
	go func() { occupant <- ops[0](context.Background()) }()
	<-entered

	const wait = 20 * time.Millisecond
	names := []string{"Hash", "Verify argon2id", "Verify bcrypt", "DummyVerify"}
	for i, op := range ops {
		t.Run(names[i]+" cancelled", func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(wait, cancel)
			err := op(ctx)
			require.ErrorIs(t, err, context.Canceled)
			assert.GreaterOrEqual(t, time.Since(start), wait, "returned only once cancelled")
		})
		t.Run(names[i]+" deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			require.ErrorIs(t, op(ctx), context.DeadlineExceeded)
		})
	}
	assert.Equal(t, int32(1), hooked.Load(), "no waiter got to hash")

	close(release)
	require.NoError(t, <-occupant)
	assert.Zero(t, len(h.sem), "cancelled waiters hold no slot")

	// With free slots, a context that is already done still stops the call.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, op := range ops {
		require.ErrorIs(t, op(ctx), context.Canceled, names[i])
	}
	assert.Equal(t, int32(1), hooked.Load(), "nothing hashed for a done context")

	for i, op := range ops {
		require.NoError(t, op(context.Background()), names[i])
	}
}
