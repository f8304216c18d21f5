package trigger

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode, seeded with the sample events
// and the malformed corpus. Decode must never panic; a failure is always an
// *InvalidEventError with a zero Event; a replica names a valid origin other
// than its own registry; and a push it calls deployable (SkipReason() == "")
// carries a valid repository, digest and tag.
func FuzzDecode(f *testing.F) {
	for _, glob := range []string{eventsDir + "/*.json", "testdata/malformed/*.json"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, path := range files {
			raw, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			if len(raw) <= 8<<10 { // the 300 KiB files only slow the mutator down
				f.Add(raw)
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil {
			var inv *InvalidEventError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v (%T) is not an *InvalidEventError", err, err)
			}
			if len(inv.Problems()) == 0 {
				t.Fatalf("InvalidEventError without problems")
			}
			if ev != (Event{}) {
				t.Fatalf("event returned with an error: %+v", ev)
			}
			return
		}
		set := 0
		for _, ok := range []bool{ev.Push != nil, ev.Deployment != nil, ev.Reconcile != nil} {
			if ok {
				set++
			}
		}
		if set != 1 || ev.ID == "" || ev.Kind == "" {
			t.Fatalf("decoded event is not well formed: %+v", ev)
		}
		if !accountRE.MatchString(accountOf(ev)) {
			t.Fatalf("decoded event has account %q", accountOf(ev))
		}
		if ev.Push == nil {
			return
		}
		p := ev.Push
		if (p.ActionType == "REPLICATE") != (p.ReplicatedFrom != nil) {
			t.Fatalf("push with action %s and origin %+v", p.ActionType, p.ReplicatedFrom)
		}
		if o := p.ReplicatedFrom; o != nil {
			if !accountRE.MatchString(o.Account) || !regionRE.MatchString(o.Region) || (o.Account == p.Account && o.Region == p.Region) {
				t.Fatalf("replica in %s/%s from %+v", p.Account, p.Region, *o)
			}
		}
		if ev.SkipReason() != "" {
			return
		}
		if !repositoryRE.MatchString(p.Repository) || len(p.Repository) < 2 || len(p.Repository) > 256 {
			t.Fatalf("deployable push with repository %q", p.Repository)
		}
		if len(p.Digest) != 71 || !digestRE.MatchString(p.Digest) {
			t.Fatalf("deployable push with digest %q", p.Digest)
		}
		if !tagRE.MatchString(p.Tag) {
			t.Fatalf("deployable push with tag %q", p.Tag)
		}
		if (p.ActionType != "PUSH" && p.ActionType != "REPLICATE") || p.Result != "SUCCESS" || !regionRE.MatchString(p.Region) {
			t.Fatalf("deployable push %+v", p)
		}
	})
}

func accountOf(ev Event) string {
	switch {
	case ev.Push != nil:
		return ev.Push.Account
	case ev.Deployment != nil:
		return ev.Deployment.Account
	case ev.Reconcile != nil:
		return ev.Reconcile.Account
	}
	return ""
}
