package semver

import (
	"testing"

	masterminds "github.com/Masterminds/semver/v3"
)

// Any string is read as Masterminds/semver reads it, and the version is ordered against
// others as Masterminds/semver orders it.
func FuzzVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "v1", "1.2", "01.02.03", "1.2.3-rc.1+build.5", "1.2.3-01", "1.2.3-a..b", "1.2.3.4",
		"18446744073709551616", "1.0.0-99999999999999999999", "V1", "1.2.3-", "1.2.3+"} {
		f.Add(s)
	}
	others := []string{"0.0.0", "1.2.3", "1.2.3-rc.1", "1.2.3-rc.10", "1.2.3-alpha", "2.0.0-0"}
	f.Fuzz(func(t *testing.T, s string) {
		if d := versionDisagreement(s); d != "" {
			t.Fatal(d)
		}
		v, err := NewVersion(s)
		if err != nil {
			return
		}
		mv := masterminds.MustParse(s)
		for _, o := range others {
			if got, want := v.Compare(must(t, o)), mv.Compare(masterminds.MustParse(o)); got != want {
				t.Fatalf("Compare(%s, %s) = %d; Masterminds/semver: %d", s, o, got, want)
			}
		}
	})
}

// Any constraint is accepted or refused as Masterminds/semver does, and accepts the same
// versions: the fuzzed one and a few of every kind.
func FuzzConstraint(f *testing.F) {
	for _, c := range [][2]string{{"~1.4", "1.4.3"}, {"^2", "2.9.0"}, {">= 1.2, < 2", "1.5.0"}, {">=2.0.0-0", "2.0.0-rc.1"},
		{"1.2 - 2.3.4 || 3.x", "3.1.0"}, {"!=1.2.x", "1.2.0-beta"}, {"^0.0", "0.0.5"}, {"1 - 2||2 - 3", "2.0.0"},
		{"*.||.||", "1.0.0"}, {"> 1.x, <= 1.2.x", "1.2.3"}, {"=>1 =<2", "1.5.0"}, {"~>0", "0.5.0"}, {"", "1.0.0"}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, c, v string) {
		versions := append([]string{v}, "0.0.0", "0.1.2", "1.2.3", "1.2.3-alpha", "2.0.0", "2.0.0-rc.1", "1.0.0-0")
		if d := constraintDisagreement(c, versions); d != "" {
			t.Fatal(d)
		}
	})
}
