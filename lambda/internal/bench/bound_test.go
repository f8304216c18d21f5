package bench

import (
	"testing"
)

// TestCallsPerPushWithinFivePercentOfTheLowerBound keeps pinroll's API calls honest: on the
// 10 × 100 fleet (750 distinct task definitions, 5 services to update), a cold push and a
// warm one may each make at most 5 % more calls than issue 7's lower bound. It runs in
// `make test`; the emulator answers at once and nothing is paced, so it takes seconds.
func TestCallsPerPushWithinFivePercentOfTheLowerBound(t *testing.T) {
	cold, warm := pinroll(t, Medium, fast)
	for _, run := range []struct {
		name string
		r    result
	}{{"cold", cold}, {"warm", warm}} {
		r := run.r
		t.Logf("%s %s: %d calls, lower bound %d (×%.3f): %v", Medium, run.name, r.total(), r.bound.Total(), r.ratio(), r.calls)
		if r.ratio() > 1.05 {
			t.Errorf("%s %s push: %d API calls, %.1f%% over the lower bound %d (at most 5%% allowed)\n  calls: %v\n  bound: %+v",
				Medium, run.name, r.total(), 100*(r.ratio()-1), r.bound.Total(), r.calls, r.bound)
		}
		for _, op := range Ops {
			if r.calls[op] < r.bound.Of(op) {
				t.Errorf("%s %s push: %d %s calls, fewer than the bound's %d: the fleet or the bound is wrong", Medium, run.name, r.calls[op], op, r.bound.Of(op))
			}
		}
	}
}

// TestPeakHeapPlanningTenThousandServices keeps planning inside issue 7's 64 MiB at 10,000
// services (the number `make bench` prints).
func TestPeakHeapPlanningTenThousandServices(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector inflates the heap several times over; measured without -race by make bench")
	}
	peak, live, base := planHeap(t, 10000)
	t.Logf("peak %d MiB: before the fleet %d MiB, fleet %d MiB, planning %d MiB", peak>>20, base>>20, (live-base)>>20, (peak-live)>>20)
	if peak > 64<<20 {
		t.Errorf("planning 10,000 services peaks at %d MiB of heap, over 64 MiB", peak>>20)
	}
}

// TestRereadsCountTenServicesOfAClusterACall: the bound's re-read term follows where the
// updated services are, ten of one cluster per DescribeServices call.
func TestRereadsCountTenServicesOfAClusterACall(t *testing.T) {
	for _, c := range []struct {
		s    Shape
		want int
	}{
		{Small, 1},  // 5 updated services, all in the one cluster
		{Medium, 5}, // 5 spread over 10 clusters: one each in 5 of them
		{Shape{Clusters: 1, PerCluster: 100, Distinct: 25, K: 25}, 3},
		{Shape{Clusters: 2, PerCluster: 50, Distinct: 40, K: 40}, 4}, // 20 in each: 2 calls each
	} {
		if got := c.s.Rereads(); got != c.want {
			t.Errorf("%v with K=%d: %d re-reads, want %d", c.s, c.s.K, got, c.want)
		}
	}
}
