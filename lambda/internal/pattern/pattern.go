// Package pattern is a regular expression with length limits on the whole string and on its
// capturing groups, compiled the first time it is used.
//
// Go's regexp compiles a counted repetition such as [a-z]{1,255} into that many copies of its
// operand: the dozen such patterns pinroll validates events and configuration with cost about
// 20,000 allocations and several milliseconds at every cold start. An unbounded repetition
// plus a length check accepts exactly the same strings and compiles to a few instructions.
//
// Compiling on first use keeps the rest out of start-up too: a package-level Pattern costs
// nothing until an event needs it, and then once per process (Compiled counts them, so a test
// can hold start-up to none).
package pattern

import (
	"regexp"
	"sync"
	"sync/atomic"
)

// Pattern matches strings that the regular expression matches and that respect the limits.
type Pattern struct {
	re       func() *regexp.Regexp // compiles once, on the first call; shared by copies
	min, max int                   // length of the whole string (0: no limit)
	groups   []int                 // maximum length of each capturing group, in order (0: no limit)
}

var compiled atomic.Int64

// Compiled is how many patterns this process has compiled so far.
func Compiled() int64 { return compiled.Load() }

// Must is expr, compiled on first use (see regexp.MustCompile: an invalid expression panics
// then, so every package that declares patterns has tests that use each one); the limits are
// added with the methods.
func Must(expr string) Pattern {
	return Pattern{re: sync.OnceValue(func() *regexp.Regexp {
		compiled.Add(1)
		return regexp.MustCompile(expr)
	})}
}

// Len limits the whole string to min..max bytes (0: no limit).
func (p Pattern) Len(min, max int) Pattern {
	p.min, p.max = min, max
	return p
}

// Groups limits each capturing group, in order, to at most that many bytes (0: no limit).
func (p Pattern) Groups(max ...int) Pattern {
	p.groups = max
	return p
}

// MatchString reports whether s matches.
func (p Pattern) MatchString(s string) bool { return p.FindStringSubmatch(s) != nil }

// FindStringSubmatch is regexp's, or nil when s does not match or breaks a limit.
func (p Pattern) FindStringSubmatch(s string) []string {
	if len(s) < p.min || (p.max > 0 && len(s) > p.max) {
		return nil
	}
	m := p.re().FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	for i, n := range p.groups {
		if n > 0 && i+1 < len(m) && len(m[i+1]) > n {
			return nil
		}
	}
	return m
}
