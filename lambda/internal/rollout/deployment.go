package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/apply"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

// Deployment handles an ECS Deployment State Change for a service pinroll deployed — in its
// own account or, forwarded to its event bus, in a target account, verified there with that
// target's credentials: a completed deployment is verified (every running task on the
// pinned digest), a failed one — the circuit breaker's rollback included — is reported as
// rolled back, a failure. For a service of a staged rollout, either moves the rollout on
// (releaseAfter): the next wave opens, or the halted ones are listed in held.
func (e *Engine) Deployment(ctx context.Context, d trigger.Deployment) (report.Report, error) {
	where := d.Cluster + "/" + d.Service
	account := AccountOf(d.ServiceARN)
	ref := &report.DeploymentRef{Account: account, Cluster: d.Cluster, Service: d.Service, ID: d.DeploymentID}
	rep := report.Report{EventID: d.EventID, Kind: string(trigger.KindDeployment), Deployment: ref}
	t := e.target(account)
	switch {
	case t == nil:
		return skipped(rep, fmt.Sprintf("service %s is in account %s, which is neither pinroll's own nor one of its targets", where, account)), nil
	case !e.inScope(d.Cluster, d.ClusterARN):
		return skipped(rep, fmt.Sprintf("cluster %s is not in scope (%s)", d.Cluster, strings.Join(e.Config.Clusters, ", "))), nil
	}
	out, err := t.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster: aws.String(d.ClusterARN), Services: []string{d.ServiceARN},
		Include: []types.ServiceField{types.ServiceFieldTags},
	})
	if err != nil {
		return report.Report{}, fmt.Errorf("describe service %s: %w", where, err)
	}
	if len(out.Services) == 0 {
		return skipped(rep, fmt.Sprintf("service %s no longer exists", where)), nil
	}
	svc := out.Services[0]

	deployed, td, err := deployedRevision(ctx, t, svc, d)
	if err != nil {
		return report.Report{}, err
	}
	ref.TaskDefinition = deployed
	digest := tagValue(td.Tags, apply.TagDigest)
	if digest == "" {
		return skipped(rep, fmt.Sprintf("deployment %s of %s rolled out %s, which pinroll did not register", d.DeploymentID, where, report.Revision(deployed))), nil
	}
	rep.Image = pinnedImage(td.Definition, digest)

	if d.Failed() {
		rep.Outcome = report.RolledBack
		rep.Reason = fmt.Sprintf("deployment %s of %s (%s, %s) failed", d.DeploymentID, where, report.Revision(deployed), digest)
		if d.RolledBack() {
			rep.Reason += " and ECS rolled it back"
		}
		if d.Reason != "" {
			rep.Reason += ": " + d.Reason
		}
		if now := aws.ToString(svc.TaskDefinition); now != deployed {
			rep.Reason += "; the service now runs " + report.Revision(now)
		}
		return rep, e.releaseAfter(ctx, discover.FromSDK(svc).Tags, td, true, &rep)
	}

	current, err := t.Discoverer.Describe(ctx, aws.ToString(svc.TaskDefinition))
	if err != nil {
		return report.Report{}, err
	}
	rep.Verifications, err = t.Verifier.Service(ctx, discover.FromSDK(svc), current.Definition, &verify.TagDigests{})
	if err != nil {
		return report.Report{}, fmt.Errorf("verify %s: %w", where, err)
	}
	rep.Outcome, rep.Reason = verify.Outcome(rep.Verifications)
	rep.Reason = where + ": " + rep.Reason
	if d.Completed() {
		// A staged rollout moves on (or, after a mismatch, lists its halted waves).
		return rep, e.releaseAfter(ctx, discover.FromSDK(svc).Tags, current, rep.Outcome != report.Verified, &rep)
	}
	return rep, nil
}

// deployedRevision finds the task definition a deployment rolled out. While ECS still lists
// the deployment on the service, it says; once a failed deployment has been rolled back ECS
// drops it, and the service runs the revision pinroll replaced — so the family's latest
// revision, if pinroll registered it to replace exactly that one, is the one that failed.
func deployedRevision(ctx context.Context, t *Target, svc types.Service, d trigger.Deployment) (string, *discover.TaskDefinition, error) {
	current := aws.ToString(svc.TaskDefinition)
	if i := slices.IndexFunc(svc.Deployments, func(dep types.Deployment) bool { return aws.ToString(dep.Id) == d.DeploymentID }); i >= 0 {
		arn := aws.ToString(svc.Deployments[i].TaskDefinition)
		td, err := t.Discoverer.Describe(ctx, arn)
		return arn, td, err
	}
	td, err := t.Discoverer.Describe(ctx, current)
	if err != nil || !d.Failed() {
		return current, td, err
	}
	latest, err := t.Discoverer.Describe(ctx, aws.ToString(td.Definition.Family))
	if err != nil {
		return "", nil, err
	}
	if arn := aws.ToString(latest.Definition.TaskDefinitionArn); tagValue(latest.Tags, apply.TagPrevious) == current {
		return arn, latest, nil
	}
	return current, td, nil
}

// inScope reports whether a cluster (name and ARN) is among the configured clusters.
func (e *Engine) inScope(name, arn string) bool {
	return len(e.Config.Clusters) == 0 || slices.Contains(e.Config.Clusters, name) || slices.Contains(e.Config.Clusters, arn)
}

// pinnedImage is the image of td's container pinned to digest.
func pinnedImage(td *types.TaskDefinition, digest string) string {
	for _, c := range td.ContainerDefinitions {
		if strings.HasSuffix(aws.ToString(c.Image), "@"+digest) {
			return aws.ToString(c.Image)
		}
	}
	return ""
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
