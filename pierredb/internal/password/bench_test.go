package password

import (
	"context"
	"testing"
)

// Benchmarks at the real default policy. Compare DummyVerify with Verify:
// they should cost about the same.
//
//	go test -run '^$' -bench . -benchmem ./pierredb/internal/password/

func BenchmarkHash(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, katDefaultPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, katDefaultPassword, katDefault); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyMismatch(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, "wrong password", katDefault); err == nil {
			b.Fatal("wrong password accepted")
		}
	}
}

func BenchmarkDummyVerify(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if err := h.DummyVerify(ctx, katDefaultPassword); err == nil {
			b.Fatal("DummyVerify succeeded")
		}
	}
}

func BenchmarkVerifyBcrypt12(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, bcrypt12Password, bcrypt12); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashParallel shows throughput when more goroutines than
// GOMAXPROCS hash at once (the rest wait on the semaphore).
func BenchmarkHashParallel(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(ctx, katDefaultPassword); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(katDefault); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRejectOutOfBounds(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	stored := phcWith("m=4294967295,t=1,p=1", 16, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, katDefaultPassword, stored); err == nil {
			b.Fatal("accepted")
		}
	}
}
