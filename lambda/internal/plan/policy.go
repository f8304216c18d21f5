package plan

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/semver"
)

// Policy is how a service follows new images, from its pinroll:policy tag.
type Policy struct {
	// Semver moves a container from one version tag to a newer one; otherwise (track) a
	// container follows the tag it references.
	Semver bool
	// Constraint limits the versions semver moves to; nil allows any newer release.
	Constraint *semver.Constraints
	// Glob, when set, moves a container from a tag matching it to a newer pushed tag matching
	// it (path.Match syntax: release-*, v1.?, [ab]-*), never across patterns and never to an
	// image pushed before the one it runs.
	Glob string
	raw  string
}

// ParsePolicy reads a pinroll:policy tag value: "" or "track", "semver", "semver:<constraint>"
// (Masterminds/semver syntax: "~1.4", "^2", ">= 1.2, < 2"; package semver keeps its semantics
// without its start-up cost).
func ParsePolicy(tag string) (Policy, error) {
	switch {
	case tag == "" || tag == "track":
		return Policy{raw: "track"}, nil
	case tag == "semver":
		return Policy{Semver: true, raw: tag}, nil
	case strings.HasPrefix(tag, "semver:"):
		c, err := semver.NewConstraint(strings.TrimPrefix(tag, "semver:"))
		if err != nil {
			return Policy{}, fmt.Errorf("%s=%s: %v", TagPolicy, tag, err)
		}
		return Policy{Semver: true, Constraint: c, raw: tag}, nil
	}
	if pattern, ok := strings.CutPrefix(tag, "glob:"); ok {
		if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
			return Policy{}, fmt.Errorf("%s=%s: %q is not a glob pattern (path.Match syntax: *, ?, [a-z])", TagPolicy, tag, pattern)
		}
		return Policy{Glob: pattern, raw: tag}, nil
	}
	return Policy{}, fmt.Errorf("%s=%s is not a policy (known: track, semver, semver:<constraint>, glob:<pattern>)", TagPolicy, tag)
}

func (p Policy) String() string { return p.raw }

// upgrade decides whether a semver service's container, at version tag ref.Tag of the pushed
// repository, moves to the pushed tag: only to a newer version, within the constraint, and
// never to a pre-release unless the constraint names one. ok=false with a reason is a near miss;
// ok=false without one means the pushed tag is not a version at all (ignored silently).
func (p Policy) upgrade(ref imageref.Ref, pushedTag string) (ok bool, why string) {
	next, err := semver.NewVersion(pushedTag)
	if err != nil {
		return false, ""
	}
	cur, err := semver.NewVersion(ref.Tag)
	if err != nil {
		return false, fmt.Sprintf("%s: tag %s is not a version, so pinroll cannot tell whether %s is newer", p, ref.Tag, pushedTag)
	}
	switch {
	case !next.GreaterThan(cur):
		return false, fmt.Sprintf("%s: %s is not newer than %s", p, pushedTag, ref.Tag)
	case p.Constraint == nil && next.Prerelease() != "":
		return false, fmt.Sprintf("%s: %s is a pre-release", p, pushedTag)
	case p.Constraint != nil && !p.Constraint.Check(next):
		return false, fmt.Sprintf("%s: %s is outside the constraint", p, pushedTag)
	}
	return true, ""
}

// policyChange is the container change a semver or glob policy makes for a push of another
// tag of the container's repository, or a near miss.
func policyChange(p Policy, t imageref.Pushed, v imageref.Verdict, name, image string, times map[string]time.Time) (*report.ContainerChange, string) {
	if v.Match || !t.Names(v.Ref) || v.Ref.Tag == "" {
		return nil, ""
	}
	ok, why := false, ""
	if p.Semver {
		ok, why = p.upgrade(v.Ref, t.Tag)
	} else {
		ok, why = p.newerMatch(v.Ref, t, times)
	}
	if !ok {
		return nil, why
	}
	return &report.ContainerChange{Name: name, From: image, To: t.PinnedAt(v.Ref.Host)}, ""
}

// ImageID is how PushTimes names an image: its digest, or ":"+tag when it is known by tag.
func ImageID(ref imageref.Ref) string {
	if ref.Digest != "" {
		return ref.Digest
	}
	return ":" + ref.Tag
}

// newerMatch decides whether a glob service's container, at tag ref.Tag, moves to the pushed
// tag: both tags match the pattern, and ECR pushed the pushed image after the one the
// container runs (a re-tag keeps its image's first push time, so promoting an old image is
// not newer). Unknown push times move nothing.
func (p Policy) newerMatch(ref imageref.Ref, t imageref.Pushed, times map[string]time.Time) (bool, string) {
	if ok, _ := path.Match(p.Glob, t.Tag); !ok {
		return false, fmt.Sprintf("%s: pushed tag %s does not match", p, t.Tag)
	}
	if ok, _ := path.Match(p.Glob, ref.Tag); !ok {
		return false, fmt.Sprintf("%s: the container runs tag %s, outside the pattern; pinroll never moves across patterns", p, ref.Tag)
	}
	pushed, okPushed := times[t.Digest]
	current, okCurrent := times[ImageID(ref)]
	switch {
	case !okPushed || !okCurrent:
		return false, fmt.Sprintf("%s: cannot tell whether %s is newer than %s (ECR gave no push time for one of them)", p, t.Tag, ref.Tag)
	case !pushed.After(current):
		return false, fmt.Sprintf("%s: %s was pushed %s, not after the running %s (%s)", p, t.Tag, pushed.UTC().Format(time.RFC3339), ref.Tag, current.UTC().Format(time.RFC3339))
	}
	return true, ""
}
