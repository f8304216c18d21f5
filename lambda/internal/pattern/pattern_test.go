package pattern

import (
	"regexp"
	"strings"
	"testing"
)

// A Pattern with limits accepts exactly what the counted repetition it replaces accepts.
func TestPatternAcceptsWhatTheCountedRepetitionDoes(t *testing.T) {
	counted := regexp.MustCompile(`^svc/([a-z]{1,5})/([a-z]{1,3})$`)
	bounded := Must(`^svc/([a-z]+)/([a-z]+)$`).Groups(5, 3)
	exact := regexp.MustCompile(`^sha:[a-f]{4}$`)
	exactLen := Must(`^sha:[a-f]+$`).Len(8, 8)
	var inputs []string
	for a := 0; a <= 7; a++ {
		for b := 0; b <= 5; b++ {
			inputs = append(inputs, "svc/"+strings.Repeat("x", a)+"/"+strings.Repeat("y", b))
		}
		inputs = append(inputs, "sha:"+strings.Repeat("a", a))
	}
	inputs = append(inputs, "svc/ab/c/d", "SVC/a/b", "sha:abcg")
	for _, in := range inputs {
		if got, want := bounded.MatchString(in), counted.MatchString(in); got != want {
			t.Errorf("%q: bounded %v, counted %v", in, got, want)
		}
		if got, want := exactLen.MatchString(in), exact.MatchString(in); got != want {
			t.Errorf("%q: exact length %v, {4} %v", in, got, want)
		}
	}
	if m := bounded.FindStringSubmatch("svc/abc/de"); len(m) != 3 || m[1] != "abc" || m[2] != "de" {
		t.Errorf("submatches %q", m)
	}
}
