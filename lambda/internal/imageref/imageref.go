// Package imageref parses container image references as they are written in
// ECS task definitions and decides, without any I/O, whether a reference
// tracks a repository and tag that were just pushed to Amazon ECR.
//
// Matching is deliberately exact: the registry host and the full repository
// path must be byte-equal to the pushed ones. Substring, prefix, suffix or
// case-insensitive matching is how two look-alike repositories
// (content-marketing-swarm-backend and content-marketing-swarm-dev-backend)
// got confused in the incident pinroll exists to prevent. References that
// merely look related are reported as near misses and never changed.
package imageref

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// Ref is a parsed container image reference, as written in a task definition.
type Ref struct {
	Host   string // registry host, e.g. "123456789012.dkr.ecr.us-east-1.amazonaws.com"; "docker.io" for Docker Hub
	Path   string // repository path on that host, e.g. "team/app" ("library/nginx" for "nginx")
	Tag    string // "" when the reference has no tag
	Digest string // "" when not pinned; else "sha256:<64 hex>"
}

// maxQuoted bounds how much of an input an error message repeats.
const maxQuoted = 128

// Parse parses an image reference with the Docker/OCI reference grammar
// (github.com/distribution/reference), normalising Docker Hub short names
// ("nginx" is docker.io/library/nginx). A reference may carry both a tag and
// a digest ("repo:tag@sha256:…"), as ECS writes it. Only sha256 digests are
// accepted: that is the only algorithm ECR produces.
func Parse(s string) (Ref, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, &parseError{input: s, err: err}
	}
	r := Ref{Host: reference.Domain(named), Path: reference.Path(named)}
	if r.Host == "" {
		// distribution/reference takes a first component with a dot but also an underscore
		// ("a.b_c/d") as neither a host nor docker.io: there is no registry to match.
		return Ref{}, &parseError{input: s, err: errors.New("no registry host (the first component is not a valid host name)")}
	}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		dg := d.Digest()
		if dg.Algorithm() != "sha256" {
			return Ref{}, &parseError{input: s, err: fmt.Errorf("digest algorithm %q is not supported (only sha256)", string(dg.Algorithm()))}
		}
		r.Digest = dg.String()
	}
	return r, nil
}

// Tracks returns the tag the container follows: its tag when it has one,
// "latest" when it has neither tag nor digest, and ok=false when it is pinned
// by digest only (nothing tells which tag it came from).
func (r Ref) Tracks() (tag string, ok bool) {
	switch {
	case r.Tag != "":
		return r.Tag, true
	case r.Digest == "":
		return "latest", true
	default:
		return "", false
	}
}

// Repository returns Host + "/" + Path.
func (r Ref) Repository() string { return r.Host + "/" + r.Path }

// String returns the canonical form host/path[:tag][@digest].
func (r Ref) String() string {
	var b strings.Builder
	b.WriteString(r.Repository())
	if r.Tag != "" {
		b.WriteString(":" + r.Tag)
	}
	if r.Digest != "" {
		b.WriteString("@" + r.Digest)
	}
	return b.String()
}

// Pinned returns the image reference pinroll writes: "<repository>:<tag>@<digest>".
// The tag records which tag the container tracks; the digest is what ECS
// pulls. With an empty tag it returns "<repository>@<digest>".
func Pinned(repository, tag, digest string) string {
	if tag == "" {
		return repository + "@" + digest
	}
	return repository + ":" + tag + "@" + digest
}

// Registry is an ECR private registry host, parsed.
type Registry struct {
	Account, Region string
	FIPS            bool
	China           bool
}

var ecrHostRE = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr(-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})\.amazonaws\.com(\.cn)?$`)

// ParseECRHost recognises an ECR private registry host:
// "<12 digits>.dkr.ecr.<region>.amazonaws.com", its China form
// ".amazonaws.com.cn" (regions cn-*) and the FIPS form
// "<account>.dkr.ecr-fips.<region>.amazonaws.com". Anything else — Amazon ECR
// Public, Docker Hub, look-alike hosts, upper case, a port, a wrong account
// length — is not one.
func ParseECRHost(host string) (Registry, bool) {
	m := ecrHostRE.FindStringSubmatch(host)
	if m == nil {
		return Registry{}, false
	}
	reg := Registry{Account: m[1], Region: m[3], FIPS: m[2] != "", China: m[4] != ""}
	if reg.China != strings.HasPrefix(reg.Region, "cn-") {
		return Registry{}, false // China regions live only under .amazonaws.com.cn, and only they do
	}
	if reg.China && reg.FIPS {
		return Registry{}, false // there are no FIPS endpoints in the China partition
	}
	return reg, true
}

// ECRHost returns the ECR private registry host of an account in a region:
// the commercial form, or the .amazonaws.com.cn form when region starts with "cn-".
func ECRHost(account, region string) string {
	h := account + ".dkr.ecr." + region + ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		h += ".cn"
	}
	return h
}

// Pushed is the image that was pushed: its registry host, repository path, tag and digest.
type Pushed struct {
	Host, Path, Tag, Digest string
}

// Repository is the pushed repository as an image reference names it: host/path.
func (p Pushed) Repository() string { return p.Host + "/" + p.Path }

// Pinned is the pushed image pinned by digest: host/path:tag@digest.
func (p Pushed) Pinned() string { return Pinned(p.Repository(), p.Tag, p.Digest) }

// Verdict is how one image reference relates to a Pushed image.
type Verdict struct {
	Match         bool   // same host, same full path, tracks Pushed.Tag
	AlreadyPinned bool   // Match and the reference is already pinned to Pushed.Digest
	NearMiss      bool   // looks related but must NOT change
	Why           string // for a near miss: a short human reason
	Ref           Ref
}

// Compare decides how the image reference relates to the pushed target. It
// returns an error only when image does not parse.
//
// A Match requires the registry host and the full repository path to be
// byte-equal to the target's and the reference to track Pushed.Tag. Near
// misses are: the same path (or the same last path segment) on another
// host; a look-alike path on the same host (one contains the other, the
// same last segment, the same words plus some, or a small edit distance);
// the same repository with another tag; the same repository pinned by
// digest without a tag. Everything else is unrelated (the zero Verdict
// apart from Ref).
func Compare(t Pushed, image string) (Verdict, error) {
	ref, err := Parse(image)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Ref: ref}
	near := func(why string) (Verdict, error) {
		v.NearMiss, v.Why = true, why
		return v, nil
	}
	sameHost, samePath := ref.Host == t.Host, ref.Path == t.Path
	switch {
	case sameHost && samePath:
		tag, ok := ref.Tracks()
		if !ok {
			return near("pinned by digest without a tag")
		}
		if tag != t.Tag {
			return near(fmt.Sprintf("tracks tag %s, not %s", tag, t.Tag))
		}
		v.Match = true
		v.AlreadyPinned = t.Digest != "" && ref.Digest == t.Digest
		return v, nil
	case sameHost:
		if looksAlike(ref.Path, t.Path) {
			return near(fmt.Sprintf("different repository: %s is not %s", ref.Path, t.Path))
		}
	case samePath && strings.EqualFold(ref.Host, t.Host):
		// Registry hosts are case-insensitive in DNS, but pinroll compares bytes:
		// an odd spelling is reported for a human to fix, never rewritten.
		return near(fmt.Sprintf("registry host %s differs from %s in letter case", ref.Host, t.Host))
	case samePath:
		return near("same repository name in another registry: " + ref.Host)
	case lastSegment(ref.Path) == lastSegment(t.Path):
		return near("same repository name in another registry: " + ref.Repository())
	}
	return v, nil
}

// looksAlike reports whether two different repository paths on one registry
// are close enough that a human could confuse them.
func looksAlike(a, b string) bool {
	if a == b {
		return true
	}
	short, long := a, b
	if len(short) > len(long) {
		short, long = long, short
	}
	if len(short) >= 3 && strings.Contains(long, short) {
		return true // app vs app-dev, backend vs content-marketing-swarm-backend
	}
	if lastSegment(a) == lastSegment(b) {
		return true // team/app vs other/app
	}
	if isSubsequence(words(short), words(long)) {
		return true // content-marketing-swarm-backend vs content-marketing-swarm-dev-backend
	}
	return editDistance(a, b, 2) <= 2 // app vs api, backend vs backends
}

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// words splits a path at its separators (/ . _ -).
func words(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '.' || r == '_' || r == '-' })
}

// isSubsequence reports whether every word of short appears, in order, in long.
func isSubsequence(short, long []string) bool {
	if len(short) == 0 {
		return false
	}
	i := 0
	for _, w := range long {
		if i < len(short) && short[i] == w {
			i++
		}
	}
	return i == len(short)
}

// editDistance is the Levenshtein distance between a and b in bytes, or
// limit+1 when it is certainly greater than limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parseError keeps the grammar's error for errors.Is (reference.ErrNameContainsUppercase, …)
// while bounding its message: the grammar's messages repeat the whole input.
type parseError struct {
	input string
	err   error
}

func (e *parseError) Error() string {
	msg := e.err.Error()
	if len(msg) > 2*maxQuoted {
		msg = msg[:2*maxQuoted] + "…"
	}
	return "image reference " + quote(e.input) + ": " + msg
}

func (e *parseError) Unwrap() error { return e.err }

// quote returns s quoted with %q, truncated to a readable length.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:maxQuoted], len(s))
}
