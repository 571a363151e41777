package manage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Durations in days or years that do not fit a time.Duration are refused,
// not wrapped round to a few minutes or a negative ("never") expiry.
func TestParseDurationRefusesOverflow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"1y", 365 * 24 * time.Hour, true},
		{"0", 0, true},
		{"106751d", 106751 * 24 * time.Hour, true},
		{"106752d", 0, false},
		{"213504d", 0, false},
		{"292y", 292 * 365 * 24 * time.Hour, true},
		{"293y", 0, false},
		{"293000y", 0, false},
		{"-1d", 0, false},
	} {
		got, err := parseDuration(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}
