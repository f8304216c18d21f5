package semver

import (
	"fmt"
	"strings"
	"testing"

	masterminds "github.com/Masterminds/semver/v3"
)

// The judge: Masterminds/semver v3 (go.mod pins the version README promises), as a test
// dependency only.

// versionDisagreement says how NewVersion and Masterminds/semver's differ on s, or "".
func versionDisagreement(s string) string {
	got, err := NewVersion(s)
	want, wantErr := masterminds.NewVersion(s)
	switch {
	case (err == nil) != (wantErr == nil):
		return fmt.Sprintf("NewVersion(%q): error %v; Masterminds/semver: error %v", s, err, wantErr)
	case err == nil && (got.String() != want.String() || got.Prerelease() != want.Prerelease()):
		return fmt.Sprintf("NewVersion(%q) = %s (pre-release %q); Masterminds/semver: %s (%q)", s, got, got.Prerelease(), want, want.Prerelease())
	}
	return ""
}

// constraintDisagreement says how NewConstraint and Masterminds/semver's differ on c, and
// Check on each version, or "".
func constraintDisagreement(c string, versions []string) string {
	got, err := NewConstraint(c)
	want, wantErr := masterminds.NewConstraint(c)
	if (err == nil) != (wantErr == nil) {
		return fmt.Sprintf("NewConstraint(%q): error %v; Masterminds/semver: error %v", c, err, wantErr)
	}
	if err != nil {
		return ""
	}
	for _, s := range versions {
		v, err := NewVersion(s)
		w, wErr := masterminds.NewVersion(s)
		if err != nil || wErr != nil {
			continue
		}
		if g, m := got.Check(v), want.Check(w); g != m {
			return fmt.Sprintf("NewConstraint(%q).Check(%s) = %t; Masterminds/semver: %t", c, s, g, m)
		}
	}
	return ""
}

// agreement counts the cases of a grid and stops it after a few disagreements.
type agreement struct {
	t               *testing.T
	cases, failures int
}

func (a *agreement) check(d string) {
	a.cases++
	if d == "" {
		return
	}
	a.t.Error(d)
	if a.failures++; a.failures == 20 {
		a.t.FailNow()
	}
}

// strings of up to depth bytes over alphabet, the empty one included.
func each(alphabet string, depth int, f func(string)) {
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		f(prefix)
		if depth == 0 {
			return
		}
		for i := range len(alphabet) {
			walk(prefix+alphabet[i:i+1], depth-1)
		}
	}
	walk("", depth)
}

var (
	numbers = []string{"0", "1", "2", "00", "01", "10", "007", "x", "X", "*", "|", "1|", "1x", "a",
		"18446744073709551615", "18446744073709551616", "99999999999999999999"}
	prereleases = []string{"", "-", "-0", "-00", "-01", "-1", "-10", "-alpha", "-alpha.1", "-alpha.beta", "-beta.2", "-beta.11",
		"-rc.1", "-a..b", "-a.", "--", "-a-b", "-0a", "-x.7.z.92", "-18446744073709551616", "-99999999999999999999", "-é", "-a_b"}
	metadata = []string{"", "+", "+build", "+b.1", "+b..1", "+-", "+01", "+001.a", "+a+b"}
)

// The versions constraints are checked with: releases around the numbers constraints name,
// and pre-releases of several of them.
var checked = func() []string {
	var vs []string
	for _, major := range []string{"0", "1", "2", "3"} {
		for _, minor := range []string{"0", "1", "2", "3"} {
			for _, patch := range []string{"0", "1", "3", "4"} {
				vs = append(vs, major+"."+minor+"."+patch)
			}
		}
	}
	for _, base := range []string{"0.0.0", "0.0.1", "0.1.0", "0.2.3", "1.0.0", "1.2.0", "1.2.3", "1.2.4", "1.3.0", "2.0.0", "3.0.0"} {
		for _, pre := range []string{"-0", "-alpha", "-alpha.1", "-beta", "-rc.1", "-1"} {
			vs = append(vs, base+pre)
		}
	}
	return append(vs, "1.2.3+build", "10.0.0", "18446744073709551615.0.0", "0.0.0-0+m")
}()

// NewVersion accepts what Masterminds/semver's NewVersion accepts and reads it the same:
// every prefix before one to three numbers of every kind (then a fourth, a pre-release or
// metadata), every pre-release beside all metadata, the length limit, and every string of up to five bytes over the bytes the
// grammar treats differently.
func TestNewVersionAgreesWithMasterminds(t *testing.T) {
	a := &agreement{t: t}
	for _, prefix := range []string{"", "v", "V", "vv", " "} {
		for n := 1; n <= 3; n++ {
			each := [][]string{nil}
			for range n {
				var next [][]string
				for _, parts := range each {
					for _, num := range numbers {
						next = append(next, append(append([]string(nil), parts...), num))
					}
				}
				each = next
			}
			for _, parts := range each {
				for _, tail := range []string{"", "-alpha.1", "-01", "--", "-a.", "+build", "-0+", ".1"} {
					a.check(versionDisagreement(prefix + strings.Join(parts, ".") + tail))
				}
			}
		}
	}
	for _, pre := range prereleases {
		for _, meta := range metadata {
			a.check(versionDisagreement("1.2.3" + pre + meta))
			a.check(versionDisagreement("v1" + pre + meta))
		}
	}
	long := "1.2.3-" + strings.Repeat("a", 251)
	for _, s := range []string{long, long[:256], long[:257], "", "v", "1.", ".1", "1..2", "1.2.3 ", " 1.2.3", "1.2.3\n", "1.2.3.4"} {
		a.check(versionDisagreement(s))
	}
	each("0v.-+aX", 5, func(s string) { a.check(versionDisagreement(s)) })
	t.Logf("%d versions parsed alike", a.cases)
}

// Versions are ordered as Masterminds/semver orders them: numbers, then a pre-release
// below its release, identifiers numerically or byte by byte, a longer pre-release above
// its prefix, metadata ignored, digits past uint64 ordered as words.
func TestCompareAgreesWithMasterminds(t *testing.T) {
	vs := append([]string{"1.2.3-alpha.beta", "1.2.3-alpha.1.1", "1.2.3-alpha.-1", "1.2.3-a-b", "1.2.3-B", "1.2.3-b",
		"1.2.3-99999999999999999999", "1.2.3-18446744073709551615", "1.2.3-10", "1.2.3-9", "1.2.3-x.10", "1.2.3-x.9",
		"1.2.3+other", "v1.2", "1"}, checked...)
	a := &agreement{t: t}
	for _, x := range vs {
		for _, y := range vs {
			v, w := must(t, x), must(t, y)
			mv, mw := masterminds.MustParse(x), masterminds.MustParse(y)
			a.cases++
			if got, want := v.Compare(w), mv.Compare(mw); got != want {
				a.check(fmt.Sprintf("Compare(%s, %s) = %d; Masterminds/semver: %d", x, y, got, want))
			}
			if got, want := v.GreaterThan(w), mv.GreaterThan(mw); got != want {
				a.check(fmt.Sprintf("%s.GreaterThan(%s) = %t; Masterminds/semver: %t", x, y, got, want))
			}
		}
	}
	t.Logf("%d pairs ordered alike", a.cases)
}

func must(t *testing.T, s string) *Version {
	t.Helper()
	v, err := NewVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// NewConstraint accepts what Masterminds/semver's NewConstraint accepts, and each
// constraint accepts the same versions: every operator with versions of every shape
// (wildcards in each place, fewer numbers, pre-releases, metadata, leading v, bad numbers),
// spaced and not; pairs of them joined by space, comma and ||; hyphen ranges; the limits;
// and every string of up to four bytes over the bytes the syntax treats differently.
func TestConstraintsAgreeWithMasterminds(t *testing.T) {
	ops := []string{"", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^", "==", "!", "=~", "<>", "~=", "^^"}
	nums := []string{"0", "1", "2", "x", "X", "*", "01", "|", "1x", "18446744073709551616"}
	var vers []string
	for _, major := range nums {
		vers = append(vers, major)
		for _, minor := range nums {
			vers = append(vers, major+"."+minor)
			for _, patch := range []string{"0", "3", "x", "*", "|"} {
				vers = append(vers, major+"."+minor+"."+patch)
			}
		}
	}
	a := &agreement{t: t}
	for _, op := range ops {
		for _, v := range vers {
			for _, sp := range []string{"", " "} {
				a.check(constraintDisagreement(op+sp+v, checked))
			}
		}
		for _, v := range []string{"1.2.3", "1.2", "1", "x", "0.0", "0", "0.0.0", "1.2.x", "0.x", "0.0.x", "2.x.x", "0.2.3", "0.0.3", "v1.2.3", "v1.x", "v"} {
			for _, pre := range []string{"", "-0", "-alpha", "-beta.2", "-01", "-a..b"} {
				for _, meta := range []string{"", "+build", "+"} {
					a.check(constraintDisagreement(op+v+pre+meta, checked))
				}
			}
		}
	}
	items := []string{"1.2.3", ">=1.2", "<2", "~1.2", "^0.2", "!=1.2.4", "1.x", ">1.2.3-alpha", "<=1.3.0-beta", "=2", "*", "^1.2.3-0", "~0"}
	seps := []string{" ", ",", ", ", " , ", "  ", "\t", "||", " || ", " ||", "| |", "|", ",,", " - ", "-", "\n", "\v", ";", " && "}
	for _, x := range items {
		for _, sep := range seps {
			for _, y := range items {
				a.check(constraintDisagreement(x+sep+y, checked))
			}
		}
	}
	for _, c := range []string{
		"1.2 - 2.3.4", "1.2.3 - 2", "1 - 2", "x - 2", "1.2.3-alpha - 2.0.0-beta", "1.2 - 2.3.4 || 3", "1 - 2 - 3",
		"1 - 2 3 - 4", "1 - 2, 3 - 4", "1 - 2||2 - 3", "1 - 2 || 2 - 3", ">1.2 - 3", "1.2-3", "1.2 -3", "1.2- 3", " 1 - 2 ",
		"v1 - v2", "1.2.3.4 - 5", "a1 - 2", "1 - 2 - 3 a2 - 3", "1 - 2 1 - 2", "~1 - 2", "1 - ~2", "1 - 2.x || x - 1",
		"", " ", "||", "1 ||", "|| 1", "1 || || 2", ",1", "1,", "1 ,", ">=", ">= ,1", "> =1", ">=1,<2", ">= 1 < 2",
		"1.2.3 2.3.4", "v1.2.3", "V1.2.3", "=v1", "1.2.3+build", ">1.2.3+build", "*.||.||", "1.x.||", "x.1|2",
		strings.Repeat("1 || ", 31) + "1", strings.Repeat("1 || ", 32) + "1", strings.Repeat("1", 512), strings.Repeat("1", 513),
		"1.2.3-" + strings.Repeat("a", 250), "1.x-" + strings.Repeat("a", 252), "1.x-" + strings.Repeat("a", 251),
	} {
		a.check(constraintDisagreement(c, checked))
	}
	short := []string{"0.0.0", "1.0.0", "1.2.0", "1.2.3", "2.0.0", "1.0.0-0", "1.2.3-a", "0.1.0"}
	each("12x.-|, >=~^!v", 4, func(c string) { a.check(constraintDisagreement(c, short)) })
	t.Logf("%d constraints read and checked alike", a.cases)
}

// A bad constraint's error names what is wrong.
func TestConstraintErrorsNameTheProblem(t *testing.T) {
	for c, want := range map[string]string{
		"":                        "empty constraint",
		"1 || ":                   "empty constraint",
		">> 1":                    `">>" is not an operator`,
		">=":                      "operator >= has no version",
		"1,":                      "a comma with no constraint",
		"1.2.3.4":                 `"1.2.3.4" is not a version`,
		"~1.2 || 1.0.0-01":        `alternative " 1.0.0-01": "1.0.0-01" is not a version: "1.0.0-01": pre-release identifier 01 has a leading zero`,
		"1x":                      `"1x" is not a version`,
		strings.Repeat("1", 513):  "constraint is 513 bytes, longer than 512",
		strings.Repeat("1||", 32): "constraint has 33 alternatives (||), more than 32",
	} {
		_, err := NewConstraint(c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewConstraint(%q) = %v, want an error saying %q", c, err, want)
		}
	}
}
