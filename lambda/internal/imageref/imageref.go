// Package imageref parses container image references as they are written in
// ECS task definitions and decides, without any I/O, whether a reference
// tracks a repository and tag that were just pushed to Amazon ECR.
//
// Matching is deliberately exact: the registry must be the pushed one (its host
// byte-equal, or another documented name of the same ECR registry: same account,
// region and partition) and the full repository path byte-equal to the pushed one. Substring, prefix, suffix or
// case-insensitive matching is how two look-alike repositories
// (content-marketing-swarm-backend and content-marketing-swarm-dev-backend)
// got confused in the incident pinroll exists to prevent. References that
// merely look related are reported as near misses and never changed.
package imageref

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pinroll/pinroll/lambda/internal/pattern"
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

// Parse parses an image reference with the Docker/OCI reference grammar (that of
// github.com/distribution/reference, see grammar.go), normalising Docker Hub short names
// ("nginx" is docker.io/library/nginx). A reference may carry both a tag and a digest
// ("repo:tag@sha256:…"), as ECS writes it. Only sha256 digests are accepted: that is the only
// algorithm ECR produces.
func Parse(s string) (Ref, error) {
	host, path, tag, digest, err := parseNormalized(s)
	if err != nil {
		return Ref{}, &parseError{input: s, err: err}
	}
	if host == "" {
		// The grammar takes a first component with a dot but also an underscore ("a.b_c/d")
		// as neither a host nor docker.io: there is no registry to match.
		return Ref{}, &parseError{input: s, err: errors.New("no registry host (the first component is not a valid host name)")}
	}
	if alg, _, _ := strings.Cut(digest, ":"); digest != "" && alg != "sha256" {
		return Ref{}, &parseError{input: s, err: fmt.Errorf("digest algorithm %q is not supported (only sha256)", alg)}
	}
	return Ref{Host: host, Path: path, Tag: tag, Digest: digest}, nil
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

// Form is which of the names of an ECR private registry a host is. One registry (one
// account in one region) answers under every form its partition offers; pulling through any
// of them pulls the same images.
type Form int

// The documented forms of an ECR private registry host (see ParseECRHost for the sources).
const (
	FormIPv4          Form = iota // <account>.dkr.ecr.<region>.amazonaws.com (.amazonaws.com.cn in China)
	FormFIPS                      // <account>.dkr.ecr-fips.<region>.amazonaws.com
	FormDualStack                 // <account>.dkr-ecr.<region>.on.aws (IPv4 and IPv6)
	FormDualStackFIPS             // <account>.dkr-ecr-fips.<region>.on.aws
)

func (f Form) String() string {
	switch f {
	case FormIPv4:
		return "ipv4"
	case FormFIPS:
		return "fips"
	case FormDualStack:
		return "dual-stack"
	case FormDualStackFIPS:
		return "dual-stack-fips"
	}
	return fmt.Sprintf("Form(%d)", int(f))
}

// FIPS reports whether the form is one of the FIPS endpoints.
func (f Form) FIPS() bool { return f == FormFIPS || f == FormDualStackFIPS }

// DualStack reports whether the form is one of the dual-stack (IPv6) endpoints.
func (f Form) DualStack() bool { return f == FormDualStack || f == FormDualStackFIPS }

// AWS partitions an ECR registry host can name.
const (
	PartitionAWS   = "aws"        // commercial regions
	PartitionChina = "aws-cn"     // cn-north-1, cn-northwest-1
	PartitionGov   = "aws-us-gov" // us-gov-west-1, us-gov-east-1
)

// Registry is an ECR private registry host, parsed: the registry's identity (Account, Region,
// Partition) and the name it was reached by (Form).
type Registry struct {
	Account, Region, Partition string
	Form                       Form
}

// Same reports whether r and o name the same registry, whatever forms they were reached by.
func (r Registry) Same(o Registry) bool {
	return r.Account == o.Account && r.Region == o.Region && r.Partition == o.Partition
}

// Host returns the registry's host in its form; ParseECRHost(r.Host()) gives r back.
func (r Registry) Host() string {
	switch r.Form {
	case FormFIPS:
		return r.Account + ".dkr.ecr-fips." + r.Region + ".amazonaws.com"
	case FormDualStack:
		return r.Account + ".dkr-ecr." + r.Region + ".on.aws"
	case FormDualStackFIPS:
		return r.Account + ".dkr-ecr-fips." + r.Region + ".on.aws"
	}
	return ECRHost(r.Account, r.Region)
}

// ecrHostRE is the shape of every form: 12-digit account, service label, region, DNS suffix.
// A region is two letters, one or more words and a number without a leading zero (us-east-1,
// ap-southeast-5, us-gov-west-1, cn-northwest-1); which suffixes a region may use is checked
// after the match, by its partition.
var ecrHostRE = pattern.Must(`^([0-9]{12})\.(dkr\.ecr|dkr\.ecr-fips|dkr-ecr|dkr-ecr-fips)\.([a-z]{2}(?:-[a-z]+)+-[1-9][0-9]?)\.(amazonaws\.com|amazonaws\.com\.cn|on\.aws)$`)

// ecrForms maps a service label and DNS suffix to the form they make and the partitions that
// serve it. A pair not listed (FIPS in China, dual-stack FIPS under amazonaws.com, …) is no
// ECR host.
var ecrForms = map[[2]string]struct {
	form       Form
	partitions []string
}{
	{"dkr.ecr", "amazonaws.com"}:      {FormIPv4, []string{PartitionAWS, PartitionGov}},
	{"dkr.ecr", "amazonaws.com.cn"}:   {FormIPv4, []string{PartitionChina}},
	{"dkr.ecr-fips", "amazonaws.com"}: {FormFIPS, []string{PartitionAWS, PartitionGov}},
	{"dkr-ecr", "on.aws"}:             {FormDualStack, []string{PartitionAWS, PartitionGov}},
	{"dkr-ecr-fips", "on.aws"}:        {FormDualStackFIPS, []string{PartitionAWS, PartitionGov}},
}

// regionPartition returns the partition of a region-shaped name, or "" for the isolated
// partitions (us-iso-*, us-isob-*, eu-isoe-*, …), whose registries live under other DNS
// suffixes than the ones ParseECRHost knows.
func regionPartition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return PartitionChina
	case strings.HasPrefix(region, "us-gov-"):
		return PartitionGov
	case strings.Contains(region, "-iso"):
		return ""
	}
	return PartitionAWS
}

// ParseECRHost recognises an ECR private registry host in each of its documented forms and
// returns the registry it names:
//
//   - IPv4: "<account>.dkr.ecr.<region>.amazonaws.com" — "Amazon ECR private registry"
//     (Amazon ECR User Guide: the registry URL https://aws_account_id.dkr.ecr.region.amazonaws.com);
//   - China: "<account>.dkr.ecr.<region>.amazonaws.com.cn" for cn-north-1 and cn-northwest-1 —
//     "Endpoints and ARNs for Amazon Web Services in China" and "Beijing Region Endpoints"
//     (the endpoint domain of both China Regions is amazonaws.com.cn);
//   - dual-stack: "<account>.dkr-ecr.<region>.on.aws" — "Making requests to Amazon ECR
//     registries" (OCI and Docker client requests over IPv6: <registry-id>.dkr-ecr.<aws-region>.on.aws);
//   - FIPS "<account>.dkr.ecr-fips.<region>.amazonaws.com" and dual-stack FIPS
//     "<account>.dkr-ecr-fips.<region>.on.aws" — "Amazon ECR endpoints and quotas" (AWS
//     General Reference: dkr.ecr-fips.<region>.amazonaws.com and dkr-ecr-fips.<region>.on.aws
//     beside dkr.ecr.<region>.amazonaws.com and dkr-ecr.<region>.on.aws).
//
// The dual-stack page documents its form for any <aws-region>; it is accepted in the partitions
// whose IPv4 registries live under amazonaws.com (commercial and GovCloud). China has no FIPS
// endpoints, and no dual-stack registry host is documented for it, so those combinations are
// not registries; neither are the isolated partitions' regions (us-iso-*, …), whose registries
// have other DNS suffixes; neither is a China region outside .amazonaws.com.cn or
// another region inside it. Anything else — Amazon ECR Public, Docker Hub, a host that
// contains or extends a form (an extra label, another suffix, a trailing dot), upper case (DNS
// ignores it; pinroll reports it rather than guess), a port, a wrong account length, a name
// that is not region-shaped — is not a registry either.
func ParseECRHost(host string) (Registry, bool) {
	m := ecrHostRE.FindStringSubmatch(host)
	if m == nil {
		return Registry{}, false
	}
	f, ok := ecrForms[[2]string{m[2], m[4]}]
	partition := regionPartition(m[3])
	if !ok || partition == "" || !slices.Contains(f.partitions, partition) {
		return Registry{}, false
	}
	return Registry{Account: m[1], Region: m[3], Partition: partition, Form: f.form}, true
}

// SameRegistry reports whether two hosts name the same registry: byte-equal, or both ECR
// private registry hosts (in any of their forms) of one account, region and partition.
func SameRegistry(a, b string) bool {
	if a == b {
		return true
	}
	ra, ok := ParseECRHost(a)
	if !ok {
		return false
	}
	rb, ok := ParseECRHost(b)
	return ok && ra.Same(rb)
}

// ECRHost returns the ECR private registry host of an account in a region in its IPv4 form:
// the commercial one, or the .amazonaws.com.cn one when region starts with "cn-".
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

// PinnedAt is the pushed image pinned by digest and named through host:
// host/path:tag@digest. Pinning a container keeps the registry name it pulls through (a
// dual-stack name on an IPv6-only network) when that names the pushed registry too.
func (p Pushed) PinnedAt(host string) string { return Pinned(host+"/"+p.Path, p.Tag, p.Digest) }

// Names reports whether ref names the pushed repository: the same registry (see
// SameRegistry) and a byte-equal path. Tags and digests are not looked at.
func (p Pushed) Names(ref Ref) bool { return ref.Path == p.Path && SameRegistry(ref.Host, p.Host) }

// Verdict is how one image reference relates to a Pushed image.
type Verdict struct {
	Match         bool   // same registry, same full path, tracks Pushed.Tag
	AlreadyPinned bool   // Match and the reference is already pinned to Pushed.Digest
	NearMiss      bool   // looks related but must NOT change
	Why           string // for a near miss: a short human reason
	Ref           Ref
}

// Compare decides how the image reference relates to the pushed target. It
// returns an error only when image does not parse.
//
// A Match requires the same registry (the byte-equal host, or another documented
// form of the same ECR registry: see SameRegistry), the byte-equal full repository
// path and the reference to track Pushed.Tag. Near
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
	sameHost, samePath := SameRegistry(ref.Host, t.Host), ref.Path == t.Path
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
	case samePath && SameRegistry(strings.ToLower(ref.Host), t.Host):
		// Another name of the pushed registry, oddly spelled: reported the same way.
		return near(fmt.Sprintf("registry host %s differs from %s (a name of the same registry) in letter case", ref.Host, strings.ToLower(ref.Host)))
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

// parseError keeps the grammar's error for errors.Is while bounding its message: the
// grammar's messages may repeat the whole input.
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
