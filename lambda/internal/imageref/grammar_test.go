package imageref

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// referenceParse is Parse as distribution/reference implements the grammar: the judge the
// hand-written grammar is held to.
func referenceParse(s string) (Ref, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, err
	}
	r := Ref{Host: reference.Domain(named), Path: reference.Path(named)}
	if r.Host == "" {
		return Ref{}, errors.New("no registry host")
	}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		if d.Digest().Algorithm() != "sha256" {
			return Ref{}, fmt.Errorf("digest algorithm %s", d.Digest().Algorithm())
		}
		r.Digest = d.Digest().String()
	}
	return r, nil
}

// disagreement says how Parse and distribution/reference differ on s, or "" when both reject
// it or both accept it as the same reference.
func disagreement(s string) string {
	got, err := Parse(s)
	want, wantErr := referenceParse(s)
	if (err == nil) != (wantErr == nil) || got != want {
		return fmt.Sprintf("Parse(%q) = %+v, %v; distribution/reference: %+v, %v", s, got, err, want, wantErr)
	}
	return ""
}

// The grammar accepts what distribution/reference accepts, and parses it the same way, for
// every host beside every path, every tag beside every digest, at the grammar's edges, and for
// every string of up to four bytes over the bytes the grammar treats differently.
func TestGrammarAgreesWithDistributionReference(t *testing.T) {
	hex := strings.Repeat("a", 64)
	hosts := []string{"", "a", "A", "a.b", "a-b.c", "-a.b", "a-.b", "a..b", ".a", "a.", "a_b.c", "a.b_c", "localhost", "LocalHost",
		"localhost:5000", "a:5000", "a:", "a:x", ":5000", "a.b:0", "[::1]", "[::1]:5000", "[]", "[::1", "[g::1]", "[::1]x", "[::1]:",
		"index.docker.io", "docker.io", "Docker.io", "ecr.AWS", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "x" + strings.Repeat(".y", 40)}
	paths := []string{"", "a", "app", "a/b", "library/nginx", "a.b", "a..b", "a_b", "a__b", "a___b", "a-b", "a--b", "a-_b", "a._b",
		"_a", "a_", "-a", "a-", ".a", "a.", "a//b", "a/", "/a", "A", "aB", "a/B", "a b", "a\u0430", "\u00e9", hex, hex[:63],
		strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("a/", 127) + "a", strings.Repeat("a/", 128) + "a"}
	tags := []string{"", ":", ":latest", ":v1.2.3", ":_x", ":.x", ":-x", ":a" + strings.Repeat("b", 127), ":a" + strings.Repeat("b", 128),
		":a:b", ":A", ":a/b", ":lat est"}
	digests := []string{"", "@", "@sha256:" + hex, "@sha256:" + strings.ToUpper(hex), "@sha256:" + hex[:63], "@sha256:" + hex + "a",
		"@sha512:" + strings.Repeat("a", 128), "@sha384:" + strings.Repeat("a", 96), "@sha512:" + hex, "@md5:" + strings.Repeat("a", 32),
		"@a+b.c-d_e:" + strings.Repeat("f", 32), "@1a:" + strings.Repeat("f", 32), "@a:" + strings.Repeat("f", 31), "@sha256:g" + hex[1:],
		"@sha256@" + hex, "@:" + hex, "@a-:" + strings.Repeat("f", 32), "@sha256:" + hex + "@x"}
	n, failed := 0, 0
	agree := func(t *testing.T, s string) {
		n++
		if d := disagreement(s); d != "" {
			t.Error(d)
			if failed++; failed == 20 {
				t.FailNow()
			}
		}
	}
	join := func(h, p, tag, d string) string {
		if h == "" {
			return p + tag + d
		}
		return h + "/" + p + tag + d
	}
	for _, h := range hosts {
		for _, p := range paths {
			for _, td := range [][2]string{{"", ""}, {":latest", ""}, {"", digests[2]}, {":v1", digests[2]}, {":A", digests[3]}} {
				agree(t, join(h, p, td[0], td[1]))
			}
		}
	}
	for _, h := range []string{"", "a", "a.b", "a.b:5000"} {
		for _, tag := range tags {
			for _, d := range digests {
				agree(t, join(h, "a/b", tag, d))
			}
		}
	}
	alphabet := []byte("aA0._-/:@[]")
	var each func(prefix []byte, depth int)
	each = func(prefix []byte, depth int) {
		agree(t, string(prefix))
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			each(append(prefix, c), depth-1)
		}
	}
	each(nil, 4)
	t.Logf("%d references parsed alike", n)
}
