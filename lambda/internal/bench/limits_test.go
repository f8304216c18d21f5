package bench

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// The pacer's copy of ECS's buckets and the emulator's are two tables of the same figures: the
// benchmarks' "throttle errors 0" proves the pacer only against buckets equal to its own, so a
// figure corrected in one table must be corrected in the other.
func TestPacerAndEmulatorHoldTheSameECSLimits(t *testing.T) {
	pacer := map[string][2]float64{}
	for op, l := range discover.ECSLimits {
		pacer[op] = [2]float64{l.Burst, l.PerSecond}
	}
	emulated := map[string][2]float64{}
	for op, l := range emulator.ECSLimits {
		emulated[op] = [2]float64{l.Burst, l.PerSecond}
	}
	if d := cmp.Diff(emulated, pacer); d != "" {
		t.Errorf("discover.ECSLimits and emulator.ECSLimits differ (-emulator +pacer, as {burst, per second}):\n%s", d)
	}
}
