// Package pattern is a regular expression with length limits on the whole string and on its
// capturing groups.
//
// Go's regexp compiles a counted repetition such as [a-z]{1,255} into that many copies of its
// operand: the dozen such patterns pinroll validates events and configuration with cost about
// 20,000 allocations and several milliseconds at every cold start. An unbounded repetition
// plus a length check accepts exactly the same strings and compiles to a few instructions.
package pattern

import "regexp"

// Pattern matches strings that the regular expression matches and that respect the limits.
type Pattern struct {
	re       *regexp.Regexp
	min, max int   // length of the whole string (0: no limit)
	groups   []int // maximum length of each capturing group, in order (0: no limit)
}

// Must compiles expr (see regexp.MustCompile); the limits are added with the methods.
func Must(expr string) Pattern { return Pattern{re: regexp.MustCompile(expr)} }

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
	m := p.re.FindStringSubmatch(s)
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
