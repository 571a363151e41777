//go:build unix

package password

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// processCPU returns the user and system CPU time used by the process so far.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// leastCPU returns the least CPU time of runs calls of f. Sleeping (the
// padding) costs no CPU, so this measures only the real work; the process's
// other work (the garbage collector, the race detector, other tests) can only
// add to a call's figure, so the least of several is the closest to f's own.
func leastCPU(t *testing.T, runs int, f func() error) time.Duration {
	t.Helper()
	least := time.Duration(-1)
	for range runs {
		before := processCPU(t)
		require.NoError(t, f())
		if d := processCPU(t) - before; least < 0 || d < least {
			least = d
		}
	}
	return least
}

// TestDummyVerifyCPUWork: with a bcrypt floor, an unknown email costs the
// server at least the CPU work of a real bcrypt verification at that cost:
// it cannot be made cheaper to abuse than a real login by sleeping.
func TestDummyVerifyCPUWork(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	ctx := context.Background()
	cost := 10
	if raceEnabled {
		cost = 7
	}
	h := newHasher(cheap, 1)
	rec := recorded(h)
	bc, err := bcrypt.GenerateFromPassword([]byte("legacy password"), cost)
	require.NoError(t, err)

	dummy := func() error {
		if err := h.DummyVerify(ctx, "guess"); !errors.Is(err, ErrMismatch) {
			return fmt.Errorf("want ErrMismatch, got %v", err)
		}
		return nil
	}
	direct := leastCPU(t, 5, func() error {
		if err := bcrypt.CompareHashAndPassword(bc, []byte("guess")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return fmt.Errorf("want a mismatch, got %v", err)
		}
		return nil
	})
	// Control: the measurement tells a cheaper dummy apart.
	before := leastCPU(t, 3, dummy)
	rec.take()

	raised, err := h.RaiseFloor(ctx, string(bc[:7]))
	require.NoError(t, err)
	require.True(t, raised)
	after := leastCPU(t, 5, dummy)
	t.Logf("least CPU: bcrypt-%d directly %v; DummyVerify at the policy floor %v, at the bcrypt floor %v", cost, direct, before, after)

	bcryptOp := hashOp{scheme: schemeBcrypt, bcryptCost: cost}
	assert.Equal(t, slices.Repeat([]hashOp{bcryptOp}, 6), rec.take(), "calibration and five DummyVerify, each a real bcrypt")
	assert.Less(t, float64(before), 0.5*float64(direct), "control: the policy-floor dummy costs much less")
	assert.GreaterOrEqual(t, float64(after), 0.8*float64(direct), "DummyVerify does at least a real bcrypt verification's work")
}
