// Package semver is the part of github.com/Masterminds/semver/v3 (v3.5.0) that the
// pinroll:policy=semver[:<constraint>] tag needs — loose version parsing, precedence and
// constraints — written as plain functions. That package compiles its regular expressions
// when it is initialised, about 0.4 ms and 1,266 allocations at every cold start, whether
// or not any service has a semver policy; this one computes nothing until it is called.
//
// The policy's syntax is Masterminds/semver's (README says so, a promise to users), so its
// semantics are kept exactly, quirks included: the tests hold every function to that package
// (a generated grid of versions and constraints, and differential fuzz targets), and it
// stays the judge of what a version and a constraint are and what a constraint accepts.
// Only the error messages are pinroll's own.
package semver

import (
	"fmt"
	"strconv"
	"strings"
)

// maxVersion is the longest version string Masterminds/semver parses (its MaxVersionLen).
const maxVersion = 256

// Version is a version tag read loosely: an optional leading "v", one to three numbers,
// then an optional pre-release ("-rc.1") and build metadata ("+build.5").
type Version struct {
	major, minor, patch uint64
	pre, meta           string
}

// NewVersion reads a version the way Masterminds/semver's NewVersion does by default
// (CoerceNewVersion): "v1", "1.2" and "1.2.3" are all versions, missing numbers are 0 and
// leading zeros in them are accepted ("01.2" is 1.2.0); a pre-release or metadata identifier
// is [0-9A-Za-z-]+, and a numeric pre-release identifier has no leading zero.
func NewVersion(s string) (*Version, error) {
	if len(s) > maxVersion {
		return nil, fmt.Errorf("version is %d bytes, longer than %d", len(s), maxVersion)
	}
	p, ok := scanVersion(s, 0, isDigit)
	if !ok || p.end != len(s) {
		return nil, fmt.Errorf("%q is not a version (1, 1.2 or 1.2.3, optionally with a leading v, -prerelease and +metadata)", s)
	}
	return p.version(s)
}

// versionParts are the pieces scanVersion found: each is a span of the scanned string,
// numbers without their dots, the pre-release without its "-", metadata without its "+".
type versionParts struct {
	major, minor, patch span
	pre, meta           span
	start, end          int // the whole version, its "v" included
}

// span is s[from:to]; to == -1 marks a part that is absent.
type span struct{ from, to int }

var absent = span{-1, -1}

func (p span) in(s string) string {
	if p.to < 0 {
		return ""
	}
	return s[p.from:p.to]
}

// scanVersion reads the longest version at s[i:] whose numbers are runs of bytes that
// number accepts:
//
//	version := [ "v" ] number [ "." number ] [ "." number ] [ "-" ids ] [ "+" ids ]
//	ids     := id ( "." id )*
//	id      := [0-9A-Za-z-]+
//
// With isDigit it is the grammar of a version; constraints read their versions with
// isWildcard, which also accepts x, X, * and, as Masterminds/semver's constraint expression
// does (its character class [0-9|x|X|\*] holds the bar), "|". Each part is taken whole
// when it is there, which for this grammar is also the longest match, the one a regular
// expression finds.
func scanVersion(s string, i int, number func(byte) bool) (versionParts, bool) {
	p := versionParts{minor: absent, patch: absent, pre: absent, meta: absent, start: i}
	if i < len(s) && s[i] == 'v' && i+1 < len(s) && number(s[i+1]) {
		i++
	}
	j := run(s, i, number)
	if j == i {
		return p, false
	}
	p.major, i = span{i, j}, j
	for _, part := range []*span{&p.minor, &p.patch} {
		if i < len(s) && s[i] == '.' {
			if j := run(s, i+1, number); j > i+1 {
				*part, i = span{i + 1, j}, j
				continue
			}
		}
		break
	}
	if i < len(s) && s[i] == '-' {
		if j := ids(s, i+1); j > i+1 {
			p.pre, i = span{i + 1, j}, j
		}
	}
	if i < len(s) && s[i] == '+' {
		if j := ids(s, i+1); j > i+1 {
			p.meta, i = span{i + 1, j}, j
		}
	}
	p.end = i
	return p, true
}

// version turns the parts of a version (numbers of digits only) into a Version, refusing
// what Masterminds/semver refuses past its expression: a number past uint64, a numeric
// pre-release identifier with a leading zero.
func (p versionParts) version(s string) (*Version, error) {
	v := &Version{pre: p.pre.in(s), meta: p.meta.in(s)}
	for _, n := range []struct {
		to   *uint64
		part span
	}{{&v.major, p.major}, {&v.minor, p.minor}, {&v.patch, p.patch}} {
		if n.part.to < 0 {
			continue
		}
		x, err := strconv.ParseUint(n.part.in(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %s is too large a version number", s, n.part.in(s))
		}
		*n.to = x
	}
	for id := range strings.SplitSeq(v.pre, ".") {
		if len(id) > 1 && id[0] == '0' && all(id, isDigit) {
			return nil, fmt.Errorf("%q: pre-release identifier %s has a leading zero", s, id)
		}
	}
	return v, nil
}

// ids is the end of the dot-separated identifiers [0-9A-Za-z-]+ that begin at s[i:], or i.
func ids(s string, i int) int {
	end := i
	for {
		j := run(s, i, isIdentifier)
		if j == i {
			return end
		}
		end = j
		if j >= len(s) || s[j] != '.' {
			return end
		}
		i = j + 1
	}
}

// run is the end of the bytes from s[i:] that ok accepts.
func run(s string, i int, ok func(byte) bool) int {
	for i < len(s) && ok(s[i]) {
		i++
	}
	return i
}

func all(s string, ok func(byte) bool) bool { return run(s, 0, ok) == len(s) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentifier(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-'
}

// Prerelease is the version's pre-release ("rc.1" of 1.2.3-rc.1), or "".
func (v *Version) Prerelease() string { return v.pre }

// String is the version in full: 1.2.0 for "v1.2", build metadata kept.
func (v *Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch)
	if v.pre != "" {
		s += "-" + v.pre
	}
	if v.meta != "" {
		s += "+" + v.meta
	}
	return s
}

// GreaterThan says whether v has a higher precedence than o.
func (v *Version) GreaterThan(o *Version) bool { return v.Compare(o) > 0 }

// Compare is -1, 0 or 1 as v's precedence is lower than, equal to or higher than o's:
// numbers first, then a pre-release below the release, then pre-releases identifier by
// identifier. Build metadata does not count.
func (v *Version) Compare(o *Version) int {
	for _, n := range [][2]uint64{{v.major, o.major}, {v.minor, o.minor}, {v.patch, o.patch}} {
		if n[0] != n[1] {
			return order(n[0] > n[1])
		}
	}
	switch {
	case v.pre == o.pre:
		return 0
	case v.pre == "":
		return 1
	case o.pre == "":
		return -1
	}
	return comparePrerelease(v.pre, o.pre)
}

// comparePrerelease orders two pre-releases identifier by identifier: numbers by value and
// below words, words byte by byte, and a pre-release that runs out first lower. As in
// Masterminds/semver, an identifier of digits too large for uint64 counts as a word, and
// "" (no pre-release at all, which != compares this way) is one empty identifier.
func comparePrerelease(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		x, y := "", ""
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if d := compareIdentifier(x, y); d != 0 {
			return d
		}
	}
	return 0
}

func compareIdentifier(x, y string) int {
	switch {
	case x == y:
		return 0
	case x == "":
		return -1
	case y == "":
		return 1
	}
	xn, xerr := strconv.ParseUint(x, 10, 64)
	yn, yerr := strconv.ParseUint(y, 10, 64)
	switch {
	case xerr != nil && yerr != nil:
		return order(x > y)
	case xerr != nil:
		return 1
	case yerr != nil:
		return -1
	}
	return order(xn > yn)
}

func order(greater bool) int {
	if greater {
		return 1
	}
	return -1
}
