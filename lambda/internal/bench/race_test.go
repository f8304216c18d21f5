//go:build race

package bench

// raceEnabled: the race detector instruments allocations, so heap sizes mean nothing.
const raceEnabled = true
