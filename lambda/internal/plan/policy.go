package plan

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// Policy is how a service follows new images, from its pinroll:policy tag.
type Policy struct {
	// Semver moves a container from one version tag to a newer one; otherwise (track) a
	// container follows the tag it references.
	Semver bool
	// Constraint limits the versions semver moves to; nil allows any newer release.
	Constraint *semver.Constraints
	raw        string
}

// ParsePolicy reads a pinroll:policy tag value: "" or "track", "semver", "semver:<constraint>"
// (Masterminds/semver syntax: "~1.4", "^2", ">= 1.2, < 2").
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
	return Policy{}, fmt.Errorf("%s=%s is not a policy (known: track, semver, semver:<constraint>)", TagPolicy, tag)
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

// semverChange is the container change for a semver upgrade, or a near miss.
func semverChange(p Policy, t imageref.Pushed, v imageref.Verdict, name, image string) (*report.ContainerChange, string) {
	if !p.Semver || v.Match || !t.Names(v.Ref) || v.Ref.Tag == "" {
		return nil, ""
	}
	ok, why := p.upgrade(v.Ref, t.Tag)
	if !ok {
		return nil, why
	}
	return &report.ContainerChange{Name: name, From: image, To: t.PinnedAt(v.Ref.Host)}, ""
}
