package trigger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMalformedCorpus decodes every file in testdata/malformed. A file named
// "<field>__<what is wrong>.json" must be rejected with an *InvalidEventError
// whose message names <field>; a file named "skip-<why>.json" is well-formed
// but irrelevant: it must decode, and Ignore must say why it is skipped.
//
// Duplicate keys: encoding/json keeps the last value of a duplicated key
// (and matches keys case-insensitively), while other decoders — and
// EventBridge's rule matching — need not agree. Decode rejects both.
func TestMalformedCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/malformed/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("corpus has %d files, want at least 100", len(files))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Decode(raw)
			if strings.HasPrefix(name, "skip-") {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if ev.SkipReason() == "" {
					t.Fatalf("decoded %+v, want an event SkipReason() skips", ev)
				}
				t.Logf("skipped: %s", ev.SkipReason())
				return
			}
			field, _, ok := strings.Cut(strings.TrimSuffix(name, ".json"), "__")
			if !ok {
				t.Fatalf("name %q is neither <field>__<what>.json nor skip-<why>.json", name)
			}
			var inv *InvalidEventError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode = %+v, %v; want an *InvalidEventError", ev, err)
			}
			if ev != (Event{}) {
				t.Errorf("Decode returned an event with its error: %+v", ev)
			}
			msg := err.Error()
			if !strings.Contains(msg, field) {
				t.Errorf("error does not name %q: %s", field, msg)
			}
			if len(msg) > 4096 {
				t.Errorf("error is %d bytes long; values must be truncated", len(msg))
			}
			t.Log(msg)
		})
	}
}
