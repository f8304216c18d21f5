package semver

import (
	"fmt"
	"strings"
)

// Limits Masterminds/semver puts on a constraint (MaxConstraintLen, MaxConstraintGroups).
const (
	maxConstraint    = 512
	maxAlternatives  = 32
	knownOperators   = "= != > < >= => <= =< ~ ~> ^"
	alternativeBreak = "||"
)

// Constraints is a constraint on versions, Masterminds/semver's syntax:
//
//	constraints := alternative ( "||" alternative )*
//	alternative := item ( ( space+ | space* "," space* ) item )*    (all must hold)
//	item        := space* operator space* version space*
//	operator    := "" | "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^"
//	range       := version space+ "-" space+ version                (>= first, <= second)
//
// A version in a constraint may leave numbers out or write them as x, X or *: "1", "1.x",
// "~1.2", "2.*.*". An alternative that names no pre-release matches no pre-release
// version; one that does (">= 1.2.0-0") matches pre-releases of any version it allows.
type Constraints struct {
	alternatives []alternative
}

// alternative is one side of "||": every constraint must hold. pre records whether one of
// them names a pre-release, which lets the alternative match pre-release versions.
type alternative struct {
	all []constraint
	pre bool
}

// constraint is one operator and its version, with where the version had a wildcard.
type constraint struct {
	op   string
	v    *Version
	wild wildcard
}

// wildcard is the first number a constraint's version leaves out or writes as x, X or *:
// the ones after it do not count.
type wildcard int

const (
	exact    wildcard = iota // 1.2.3
	anyPatch                 // 1.2, 1.2.x
	anyMinor                 // 1, 1.x, 1.x.3
	anyMajor                 // x, *, x.1.2
)

// NewConstraint reads a constraint. Its errors say what is wrong and where; they are
// pinroll's words, while what it accepts and refuses is Masterminds/semver's.
func NewConstraint(s string) (*Constraints, error) {
	if len(s) > maxConstraint {
		return nil, fmt.Errorf("constraint is %d bytes, longer than %d", len(s), maxConstraint)
	}
	parts := strings.Split(rewriteRanges(s), alternativeBreak)
	if len(parts) > maxAlternatives {
		return nil, fmt.Errorf("constraint has %d alternatives (||), more than %d", len(parts), maxAlternatives)
	}
	cs := &Constraints{}
	for _, part := range parts {
		a, err := parseAlternative(part)
		if err != nil {
			if len(parts) > 1 {
				return nil, fmt.Errorf("alternative %q: %w", part, err)
			}
			return nil, err
		}
		cs.alternatives = append(cs.alternatives, a)
	}
	return cs, nil
}

// Check says whether v meets the constraint: every constraint of one of its alternatives.
func (cs *Constraints) Check(v *Version) bool {
	for _, a := range cs.alternatives {
		ok := true
		for _, c := range a.all {
			if ok = c.check(v, a.pre); !ok {
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// parseAlternative reads the constraints between two "||", each an operator and a version,
// separated by spaces or a comma.
func parseAlternative(s string) (alternative, error) {
	var a alternative
	if strings.TrimLeft(s, spaces) == "" {
		return a, fmt.Errorf("empty constraint (want an operator and a version, such as >= 1.2 or ~1.4)")
	}
	i := skipSpace(s, 0)
	for {
		j := run(s, i, isOperator)
		op := s[i:j]
		if !isKnownOperator(op) {
			return a, fmt.Errorf("%q is not an operator (known: %s)", op, knownOperators)
		}
		k := skipSpace(s, j)
		e := run(s, k, func(c byte) bool { return !isSpace(c) && c != ',' })
		if e == k {
			if op != "" {
				return a, fmt.Errorf("operator %s has no version after it", op)
			}
			return a, fmt.Errorf("a comma with no constraint after it")
		}
		p, ok := scanVersion(s, k, isWildcard)
		if !ok || p.end != e {
			return a, fmt.Errorf("%q is not a version (1.2.3, 1.2 or 1, each number possibly x, X or *, then -prerelease, +metadata; constraints are separated by spaces, commas or ||)", s[k:e])
		}
		c, err := newConstraint(op, s, p)
		if err != nil {
			return a, err
		}
		a.all = append(a.all, c)
		a.pre = a.pre || c.v.pre != ""
		if i = skipSpace(s, e); i == len(s) {
			return a, nil
		}
		if s[i] == ',' {
			i = skipSpace(s, i+1)
		}
	}
}

// newConstraint makes the constraint of an operator and the version p found in s: a
// wildcard and the numbers after it become 0, a pre-release is kept, metadata counts only
// when the version has no wildcard (where it never matters).
func newConstraint(op, s string, p versionParts) (constraint, error) {
	pre := ""
	if p.pre.to >= 0 {
		pre = "-" + p.pre.in(s)
	}
	major, minor, patch := p.major.in(s), p.minor.in(s), p.patch.in(s)
	c := constraint{op: op}
	var v string
	switch {
	case isX(major):
		c.wild, v = anyMajor, "0.0.0"+pre
	case p.minor.to < 0 || isX(minor):
		c.wild, v = anyMinor, major+".0.0"+pre
	case p.patch.to < 0 || isX(patch):
		c.wild, v = anyPatch, major+"."+minor+".0"+pre
	default:
		v = s[p.start:p.end]
	}
	parsed, err := NewVersion(v)
	if err != nil {
		return c, fmt.Errorf("%q is not a version: %w", s[p.start:p.end], err)
	}
	c.v = parsed
	return c, nil
}

func isX(s string) bool { return s == "x" || s == "X" || s == "*" }

// check says whether v meets the constraint; pre is whether its alternative names a
// pre-release, without which no pre-release version meets it.
func (c constraint) check(v *Version, pre bool) bool {
	if v.pre != "" && !pre {
		return false
	}
	switch c.op {
	case "", "=":
		if c.wild != exact {
			return c.tilde(v)
		}
		return v.Compare(c.v) == 0
	case "!=":
		return c.notEqual(v)
	case ">":
		return c.greater(v)
	case "<":
		return v.Compare(c.v) < 0
	case ">=", "=>":
		return v.Compare(c.v) >= 0
	case "<=", "=<":
		return c.lessOrEqual(v)
	case "~", "~>":
		return c.tilde(v)
	case "^":
		return c.caret(v)
	}
	return false
}

// notEqual is !=. With a wildcard it compares the numbers before the wildcard, as
// Masterminds/semver does: != 1.x refuses all of 1; != 1.2.x refuses 1.2 but pre-releases
// other than the constraint's; != x refuses only 0.0.0 (x counts as 0.0.0 there).
func (c constraint) notEqual(v *Version) bool {
	if c.wild != exact {
		switch {
		case c.v.major != v.major:
			return true
		case c.v.minor != v.minor && c.wild != anyMinor:
			return true
		case c.wild == anyMinor:
			return false
		case c.v.patch != v.patch && c.wild != anyPatch:
			return true
		case c.wild == anyPatch:
			if v.pre != "" || c.v.pre != "" {
				return comparePrerelease(v.pre, c.v.pre) != 0
			}
			return false
		}
	}
	return v.Compare(c.v) != 0
}

// greater is >. With a wildcard, a version must be past every version the wildcard covers:
// > 1.x wants 2.0.0 or more, > 1.2.x wants 1.3.0 or more.
func (c constraint) greater(v *Version) bool {
	if c.wild != exact {
		switch {
		case v.major > c.v.major:
			return true
		case v.major < c.v.major, c.wild == anyMinor:
			return false
		case c.wild == anyPatch:
			return v.minor > c.v.minor
		}
	}
	return v.Compare(c.v) > 0
}

// lessOrEqual is <=. With a wildcard it allows every version the wildcard covers: <= 1.x
// takes all of 1, <= 1.2.x all of 1.2.
func (c constraint) lessOrEqual(v *Version) bool {
	if c.wild == exact {
		return v.Compare(c.v) <= 0
	}
	return v.major < c.v.major || v.major == c.v.major && (v.minor <= c.v.minor || c.wild == anyMinor)
}

// tilde is ~ (and = with a wildcard): from the version, within its minor version, or its
// major version when it names no minor (~1 is >= 1.0.0, < 2.0.0). ~0.0.0 and ~x take any
// version.
func (c constraint) tilde(v *Version) bool {
	switch {
	case v.Compare(c.v) < 0:
		return false
	case c.v.major == 0 && c.v.minor == 0 && c.v.patch == 0 && c.wild != anyMinor && c.wild != anyPatch:
		return true
	case v.major != c.v.major:
		return false
	}
	return v.minor == c.v.minor || c.wild == anyMinor
}

// caret is ^: from the version, within its first non-zero number (^1.2 is < 2.0.0,
// ^0.2.3 < 0.3.0, ^0.0.3 < 0.0.4); ^0 and ^1.x stay in their major version, ^0.0 and
// ^0.0.x in 0.0.
func (c constraint) caret(v *Version) bool {
	switch {
	case v.Compare(c.v) < 0:
		return false
	case c.v.major > 0 || c.wild == anyMinor:
		return v.major == c.v.major
	case v.major > 0:
		return false
	case c.v.minor > 0 || c.wild == anyPatch:
		return v.minor == c.v.minor
	case v.minor > 0:
		return false
	}
	return v.patch == c.v.patch
}

// rewriteRanges turns each hyphen range "A - B" into ">= A, <= B ", as Masterminds/semver
// does before it reads anything else: over the whole string (so before "||" splits it),
// the leftmost range first, each then replacing the first occurrence of its text. Spaces
// around the range are part of it, and A is whatever version-like word precedes the
// spaces, so "1.2 - 2" inside "> 1.2 - 2" is a range too (and the result no constraint).
func rewriteRanges(s string) string {
	type hyphen struct{ text, from, to string }
	var found []hyphen
	for pos := 0; pos < len(s); {
		matched := false
		for p := pos; p < len(s); p++ {
			if end, from, to, ok := rangeAt(s, p); ok {
				found = append(found, hyphen{s[p:end], from, to})
				pos, matched = end, true
				break
			}
		}
		if !matched {
			break
		}
	}
	for _, h := range found {
		s = strings.Replace(s, h.text, ">= "+h.from+", <= "+h.to+" ", 1)
	}
	return s
}

// rangeAt finds a hyphen range that begins at s[p:]: spaces, a version word ending where
// the spaces before "-" begin, spaces, "-", spaces, the longest version after them, and
// the spaces after it.
func rangeAt(s string, p int) (end int, from, to string, ok bool) {
	q := skipSpace(s, p)
	e := run(s, q, func(c byte) bool { return !isSpace(c) })
	a, ok := scanVersion(s, q, isWildcard)
	if !ok || a.end != e || e == len(s) {
		return 0, "", "", false
	}
	r := skipSpace(s, e)
	if r == len(s) || s[r] != '-' {
		return 0, "", "", false
	}
	t := skipSpace(s, r+1)
	if t == r+1 {
		return 0, "", "", false
	}
	b, ok := scanVersion(s, t, isWildcard)
	if !ok {
		return 0, "", "", false
	}
	return skipSpace(s, b.end), s[q:e], s[t:b.end], true
}

// spaces are the bytes Masterminds/semver's expressions take for space (RE2's \s).
const spaces = "\t\n\f\r "

func isSpace(c byte) bool { return strings.IndexByte(spaces, c) >= 0 }

func skipSpace(s string, i int) int { return run(s, i, isSpace) }

func isOperator(c byte) bool { return strings.IndexByte("=!<>~^", c) >= 0 }

func isKnownOperator(op string) bool {
	switch op {
	case "", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^":
		return true
	}
	return false
}

// isWildcard is a byte of a number in a constraint's version: a digit, x, X or *, and
// "|", which Masterminds/semver's expression lets through (a version holding one is then
// refused, unless the wildcard before it makes the rest not count: "1.x.|" is 1.x).
func isWildcard(c byte) bool { return isDigit(c) || c == 'x' || c == 'X' || c == '*' || c == '|' }
