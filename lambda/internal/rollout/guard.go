package rollout

import (
	"context"
	"fmt"
	"strings"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/plan"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

// pins lists the digests the target's services in scope pin, in their current revision and in
// the pinroll:previous revision a rollback restores (described once each, through the target's
// cached Discoverer), in the registries pinroll may deploy from and can ask: those of its
// region. Every ACTIVE service counts, paused and CodeDeploy ones too — they start tasks as
// well — but not those opted out, or not opted in when opt-in is required.
func (e *Engine) pins(ctx context.Context, t *Target, fleet *discover.Fleet, home string) ([]verify.Pin, error) {
	var pins []verify.Pin
	for _, svc := range fleet.Services {
		if !e.guarded(svc) {
			continue
		}
		region := regionOf(svc.ClusterARN)
		checkable := func(account, r string) bool {
			return e.Config.RegistryAllowed(account, home) && (region == "" || r == region)
		}
		p, err := verify.Pins(ctx, t.Discoverer, svc, fleet.TaskDefinitions[svc.TaskDefinition], checkable)
		if err != nil {
			return nil, fmt.Errorf("guard the digests of %s/%s: %w", svc.Cluster, svc.Name, err)
		}
		pins = append(pins, p...)
	}
	return pins, nil
}

// guarded reports whether the digests a service pins are checked.
func (e *Engine) guarded(svc discover.Service) bool {
	if svc.Status != "ACTIVE" {
		return false
	}
	enabled, tagged := svc.Tags[plan.TagEnabled]
	switch {
	case tagged && strings.EqualFold(enabled, "false"):
		return false
	case e.Config.RequireOptIn && !strings.EqualFold(enabled, "true"):
		return false
	}
	return true
}

// regionOf returns the region field of an ARN.
func regionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}
