package pattern

import (
	"regexp"
	"strings"
	"sync"
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

// Declaring a pattern compiles nothing; the first match compiles it once, however many
// goroutines race to it and however many copies the limits made.
func TestPatternCompilesOnceOnFirstUse(t *testing.T) {
	before := Compiled()
	p := Must(`^[a-z]+$`)
	limited := p.Len(1, 3)
	if n := Compiled() - before; n != 0 {
		t.Fatalf("declaring a pattern compiled %d expressions, want none until it is used", n)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if got := limited.MatchString("abc"); !got {
				t.Errorf("goroutine %d: %q did not match", i, "abc")
			}
			if p.MatchString("ABC") {
				t.Errorf("goroutine %d: %q matched", i, "ABC")
			}
		})
	}
	wg.Wait()
	if n := Compiled() - before; n != 1 {
		t.Errorf("8 goroutines and 2 copies compiled the expression %d times, want once", n)
	}
	// A string the limits reject is rejected before the expression is needed.
	q := Must(`^x+$`).Len(2, 2)
	if q.MatchString("xxx") || Compiled()-before != 1 {
		t.Errorf("a string over the length limit compiled the expression (%d compiled)", Compiled()-before)
	}
}

// An invalid expression fails as loudly as regexp.MustCompile, at its first use.
func TestInvalidPatternPanicsOnFirstUse(t *testing.T) {
	p := Must(`^(unclosed$`)
	defer func() {
		if recover() == nil {
			t.Error("matching an invalid expression did not panic")
		}
	}()
	p.MatchString("unclosed")
}
