// Package plan decides, without any I/O, what a push changes: which containers of which
// task definitions move to the pushed digest, which services then update, and which
// services are left alone and why.
package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// Service tags that owners set on their services (README, "Policies"; lambda/contract).
const (
	TagEnabled  = contract.TagEnabled
	TagPolicy   = contract.TagPolicy
	TagPaused   = contract.TagPaused
	TagApproval = contract.TagApproval
	TagHeld     = contract.TagHeld
)

// DefaultNearMissLimit caps the near misses a plan lists, so a report stays small.
const DefaultNearMissLimit = 20

// Input is everything the planner looks at.
type Input struct {
	Pushed       imageref.Pushed // the pushed repository, tag and digest
	Fleet        *discover.Fleet
	RequireOptIn bool // only services tagged pinroll:enabled=true
	// PushTimes are ECR's push times of images of the pushed repository, by ImageID (a digest,
	// or ":"+tag): the pushed digest and what glob-policy containers run now. A glob policy
	// moves a container only to an image pushed after the one it runs.
	PushTimes map[string]time.Time
	// NearMissLimit caps Plan.NearMisses; zero means DefaultNearMissLimit.
	NearMissLimit int
}

// Plan is what a push changes.
type Plan struct {
	// Registrations holds one entry per task definition to re-register, in a stable order.
	Registrations     []Registration
	Unchanged         []report.Service // already pinned to the digest
	Skipped           []report.Service // would match, but pinroll may not touch them
	NearMisses        []report.NearMiss
	NearMissesOmitted int
}

// Registration is one task definition to copy with some container images replaced, and
// the services to move to the copy.
type Registration struct {
	From *discover.TaskDefinition
	// Latest is the family's latest revision as discovery saw it (nil: not known), so apply
	// can tell without a call whether an earlier attempt registered this change already.
	Latest     *discover.TaskDefinition
	Images     map[string]string // container name → new image
	Containers []report.ContainerChange
	Services   []discover.Service // to move to the new revision
	// Held are services that get the new revision only when someone approves it or their
	// wave opens (Gate puts them here): it is registered, and the service records it in its
	// pinroll:held tag.
	Held []HeldService
}

// FromARN is the ARN of the revision the registration copies.
func (r Registration) FromARN() string { return aws.ToString(r.From.Definition.TaskDefinitionArn) }

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Registrations) == 0 }

// Services counts the services the plan updates.
func (p Plan) Services() int {
	n := 0
	for _, r := range p.Registrations {
		n += len(r.Services)
	}
	return n
}

// HeldServices counts the services the plan holds for an approval or a wave.
func (p Plan) HeldServices() int {
	n := 0
	for _, r := range p.Registrations {
		n += len(r.Held)
	}
	return n
}

// Make plans a push. It is a pure function of its input.
func Make(in Input) Plan {
	limit := cmp.Or(in.NearMissLimit, DefaultNearMissLimit)
	services := slices.Clone(in.Fleet.Services)
	slices.SortFunc(services, func(a, b discover.Service) int {
		return cmp.Or(strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.Name, b.Name))
	})

	var p Plan
	byChange := map[string]*Registration{}
	var order []string
	for _, svc := range services {
		td := in.Fleet.TaskDefinitions[svc.TaskDefinition]
		if td == nil || td.Definition == nil {
			// Discovery always describes what a service runs; a hole here is a bug to see.
			p.Skipped = append(p.Skipped, entry(svc, "its task definition "+svc.TaskDefinition+" was not described"))
			continue
		}
		policy, policyErr := ParsePolicy(svc.Tags[TagPolicy])
		changes, pinned, misses := containers(in.Pushed, svc, td, policy, in.PushTimes)
		p.addNearMisses(misses, limit)
		if len(changes) == 0 && pinned == 0 {
			continue // the service does not use the pushed repository and tag
		}
		why := Excluded(svc, in.RequireOptIn)
		if why == "" && policyErr != nil {
			why = policyErr.Error()
		}
		if why != "" {
			p.Skipped = append(p.Skipped, entry(svc, why))
			continue
		}
		if len(changes) == 0 {
			p.Unchanged = append(p.Unchanged, entry(svc, "already pinned to "+in.Pushed.Digest))
			continue
		}
		// Services sharing a task definition share one registration — unless their policies
		// make different changes to it.
		key := svc.TaskDefinition + fmt.Sprint(changes)
		reg := byChange[key]
		if reg == nil {
			reg = &Registration{From: td, Latest: in.Fleet.Latest[aws.ToString(td.Definition.Family)], Images: map[string]string{}, Containers: changes}
			for _, c := range changes {
				reg.Images[c.Name] = c.To
			}
			byChange[key] = reg
			order = append(order, key)
		}
		reg.Services = append(reg.Services, svc)
	}
	for _, key := range order {
		p.Registrations = append(p.Registrations, *byChange[key])
	}
	return p
}

// containers compares each container of td with the target: the changes to make, how many
// containers already run the digest, and the near misses. A changed container is pinned as
// <its own registry host>/<path>:<tag>@<digest>: an IPv6-only cluster that pulls through the
// registry's dual-stack name must keep pulling through it.
func containers(t imageref.Pushed, svc discover.Service, td *discover.TaskDefinition, policy Policy, times map[string]time.Time) (changes []report.ContainerChange, pinned int, misses []report.NearMiss) {
	for _, c := range td.Definition.ContainerDefinitions {
		name, image := aws.ToString(c.Name), aws.ToString(c.Image)
		v, err := imageref.Compare(t, image)
		switch {
		case err != nil:
			continue // an image reference ECS would not pull either; nothing of ours
		case v.AlreadyPinned:
			pinned++
		case v.Match:
			// The container keeps the registry name it pulls through (a dual-stack or FIPS
			// name of the pushed registry), only the tag and digest change.
			changes = append(changes, report.ContainerChange{Name: name, From: image, To: t.PinnedAt(v.Ref.Host)})
		case policy.Semver || policy.Glob != "":
			change, why := policyChange(policy, t, v, name, image, times)
			switch {
			case change != nil:
				changes = append(changes, *change)
			case why != "":
				misses = append(misses, report.NearMiss{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name, Container: name, Image: image, Why: why})
			case v.NearMiss:
				misses = append(misses, report.NearMiss{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name, Container: name, Image: image, Why: v.Why})
			}
		case v.NearMiss:
			misses = append(misses, report.NearMiss{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name, Container: name, Image: image, Why: v.Why})
		}
	}
	return changes, pinned, misses
}

// entry is the report line of a service left alone, and why.
func entry(svc discover.Service, why string) report.Service {
	return report.Service{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name, Why: why}
}

func (p *Plan) addNearMisses(misses []report.NearMiss, limit int) {
	room := max(limit-len(p.NearMisses), 0)
	n := min(room, len(misses))
	p.NearMisses = append(p.NearMisses, misses[:n]...)
	p.NearMissesOmitted += len(misses) - n
}

// Excluded says why pinroll may not deploy to svc, or "" when it may.
func Excluded(svc discover.Service, requireOptIn bool) string {
	switch {
	case svc.Status != "ACTIVE":
		return fmt.Sprintf("service is %s", svc.Status)
	case svc.Controller != "ECS":
		return fmt.Sprintf("deployment controller is %s; pinroll deploys only services that ECS itself deploys", svc.Controller)
	}
	enabled, tagged := svc.Tags[TagEnabled]
	switch {
	case tagged && strings.EqualFold(enabled, "false"):
		return TagEnabled + "=false"
	case requireOptIn && !strings.EqualFold(enabled, "true"):
		return "not opted in: PINROLL_REQUIRE_OPT_IN=true and the service is not tagged " + TagEnabled + "=true"
	}
	if who, paused := svc.Tags[TagPaused]; paused {
		return "paused (" + TagPaused + "=" + who + ")"
	}
	if a, ok := svc.Tags[TagApproval]; ok && a != ApprovalRequired {
		// Not deployed automatically: an owner who wrote the tag wanted a say.
		return fmt.Sprintf("%s=%s is not known (known: %s)", TagApproval, a, ApprovalRequired)
	}
	if _, err := ParseWave(svc.Tags[TagWave]); err != nil {
		// Not deployed at all: guessing its wave could deploy it before what it waits for.
		return err.Error()
	}
	return ""
}
