package sleep_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/sleep"
)

func TestForWaitsTheWholeDuration(t *testing.T) {
	const d = 30 * time.Millisecond
	start := time.Now()
	if err := sleep.For(context.Background(), d); err != nil {
		t.Fatalf("a wait on a live context failed: %v", err)
	}
	if took := time.Since(start); took < d {
		t.Errorf("returned after %v, before the %v it was asked to wait", took, d)
	}
}

func TestForStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	err := sleep.For(ctx, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a wait cancelled midway returned %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a cancelled wait took %v: it did not stop with its context", took)
	}
}

func TestForOnAnExpiredContextReturnsItsError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if err := sleep.For(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a wait on an expired context returned %v, want context.DeadlineExceeded", err)
	}
}
