package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sampleRow is one file of README's sample-events table and the answer it promises.
type sampleRow struct {
	file    string
	outcome string // on a fresh default world
	after   string // the file that changes the answer when replayed before, if any
	then    string // the answer after it
}

var (
	jsonFile = regexp.MustCompile("`([a-z0-9-]+[.]json)`")
	afterRe  = regexp.MustCompile("after `([a-z0-9-]+\\.json)`: ([a-z_]+)")
	wordRe   = regexp.MustCompile(`^[a-z_]+`)
)

// readmeSamples parses the sample-events table of README.md, so the table cannot rot.
func readmeSamples(t *testing.T) []sampleRow {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "| file | what it is | pinroll's answer |\n|---|---|---|\n")
	if !ok {
		t.Fatal("README.md has no sample-events table (| file | what it is | pinroll's answer |)")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	var rows []sampleRow
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 3 {
			t.Fatalf("README sample-events row %q: want 3 cells", line)
		}
		answer := cells[2]
		outcome := wordRe.FindString(answer)
		if outcome == "" {
			t.Fatalf("README sample-events row %q: the answer must start with the outcome", line)
		}
		var after, then string
		if m := afterRe.FindStringSubmatch(answer); m != nil {
			after, then = m[1], m[2]
		}
		files := jsonFile.FindAllStringSubmatch(cells[0], -1)
		if len(files) == 0 {
			t.Fatalf("README sample-events row %q names no file", line)
		}
		for _, f := range files {
			rows = append(rows, sampleRow{file: f[1], outcome: outcome, after: after, then: then})
		}
	}
	return rows
}

// replayOutcome replays one event file with `pinroll replay --json` and returns the outcome.
func replayOutcome(t *testing.T, url, file string) string {
	t.Helper()
	_, stdout, stderr := runCLI(t, "replay", "--json", "--endpoint-url", url, filepath.Join(root, "events", file))
	var rep struct{ Outcome string }
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("replay %s: no report (%v)\nstdout: %s\nstderr: %s", file, err, stdout, stderr)
	}
	return rep.Outcome
}

// Every sample event answers as README's table says: alone on a fresh default world, after
// the file the table names, and in several orders in one world.
func TestSampleEventsTable(t *testing.T) {
	localEnv(t)
	rows := readmeSamples(t)
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		// fleet*.json describe local worlds (the demo's, the organisation's), not events.
		if !strings.HasPrefix(name, "fleet") && !slices.ContainsFunc(rows, func(r sampleRow) bool { return r.file == name }) {
			t.Errorf("events/%s is not in README's sample-events table", name)
		}
	}
	for _, r := range rows {
		t.Run(r.file, func(t *testing.T) {
			url, _ := startEmulator(t, nil)
			if got := replayOutcome(t, url, r.file); got != r.outcome {
				t.Errorf("fresh world: %s, README says %s", got, r.outcome)
			}
			if r.after == "" {
				return
			}
			url, _ = startEmulator(t, nil)
			replayOutcome(t, url, r.after)
			if got := replayOutcome(t, url, r.file); got != r.then {
				t.Errorf("after %s: %s, README says %s", r.after, got, r.then)
			}
		})
	}
	reversed := slices.Clone(rows)
	slices.Reverse(reversed)
	orders := map[string][]sampleRow{"table order": rows, "reversed": reversed}
	for seed := range uint64(2) {
		shuffled := slices.Clone(rows)
		rand.New(rand.NewPCG(seed, 42)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		orders["shuffled "+string(rune('a'+seed))] = shuffled
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			url, _ := startEmulator(t, nil)
			done := map[string]bool{}
			for _, r := range order {
				want := r.outcome
				if r.after != "" && done[r.after] {
					want = r.then
				}
				if got := replayOutcome(t, url, r.file); got != want {
					t.Errorf("%s after %v: %s, README says %s", r.file, done, got, want)
				}
				done[r.file] = true
			}
		})
	}
}
