package pierredb

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThrottle(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := throttle{interval: time.Minute}
	assert.True(t, th.due("a", base), "first sight")
	assert.False(t, th.due("a", base.Add(59*time.Second)), "within the interval")
	assert.True(t, th.due("b", base.Add(30*time.Second)))
	// A new generation starts; a's entry moves to the old one and still counts.
	assert.True(t, th.due("c", base.Add(61*time.Second)))
	assert.False(t, th.due("b", base.Add(89*time.Second)), "b was written 59 s ago, in the previous generation")
	assert.True(t, th.due("a", base.Add(61*time.Second)), "a was written 61 s ago")
	th.forget("a")
	assert.True(t, th.due("a", base.Add(62*time.Second)), "forgotten: due again")
	assert.True(t, th.due("z", base.Add(-time.Hour)), "a clock that goes back starts over rather than skipping for an hour")
}

// TestThrottleBounded: however many distinct ids are seen within an interval,
// the throttle holds at most two generations of max entries, and each call does
// a constant amount of work (no scan of the map: the previous version scanned
// it whole past 100k ids, and Touch went from 56 µs to 1 ms).
func TestThrottleBounded(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := throttle{interval: time.Hour, max: 1000}
	for i := range 50_000 {
		require.True(t, th.due(fmt.Sprint("user-", i), base.Add(time.Duration(i)*time.Millisecond)))
		require.LessOrEqual(t, th.size(), 2000, "after %d ids", i)
	}
	// Once past the bound, an id seen one generation back is still skipped...
	assert.False(t, th.due("user-49999", base.Add(50*time.Second)))
	// ...and at worst an older one is written once more than needed.
	assert.True(t, th.due("user-0", base.Add(50*time.Second)))
}

// BenchmarkThrottleDue: the cost of a call with many distinct ids already held
// is the cost of two map lookups and one insert, whatever the number.
func BenchmarkThrottleDue(b *testing.B) {
	for _, held := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(held), func(b *testing.B) {
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			th := throttle{interval: time.Hour}
			ids := make([]string, held)
			for i := range ids {
				ids[i] = fmt.Sprint("user-", i)
				th.due(ids[i], base)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				th.due(ids[i%held], base.Add(time.Second))
			}
		})
	}
}
