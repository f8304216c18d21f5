package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// ServiceDeployments is the part of the ECS API that tells how far a deployment has got.
type ServiceDeployments interface {
	DescribeServiceDeployments(context.Context, *ecs.DescribeServiceDeploymentsInput, ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error)
}

var _ ServiceDeployments = (*ecs.Client)(nil)

// unfinished is the verifier's note for a service whose deployment ECS has not finished: its
// tasks are not judged — under BLUE_GREEN, LINEAR and CANARY the previous revision's tasks
// run beside the new ones until the bake time ends, and they are no mismatch.
func unfinished(svc discover.Service) report.Verification {
	r := svc.Rollout
	return report.Verification{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name,
		Want: "a completed deployment", Why: fmt.Sprintf("deployment %s (%s) has not completed", r.ID, r.Strategy)}
}

// InProgress says, for a service whose deployment ECS has not finished (svc.Rollout), how far
// it has got and when to verify again: for BLUE_GREEN, LINEAR and CANARY it asks ECS for the
// service deployment's lifecycle stage (DescribeServiceDeployments); when that cannot be had —
// no client, no permission, an endpoint without the API — it says what DescribeServices said.
// The end of a bake is estimated from the service deployment's updatedAt, the time it entered
// BAKE_TIME (inferred: AWS does not document which update updatedAt records). It returns "" for
// a service with no unfinished deployment.
func InProgress(ctx context.Context, client ServiceDeployments, svc discover.Service) string {
	r := svc.Rollout
	if r == nil {
		return ""
	}
	where := svc.Cluster + "/" + svc.Name
	head := fmt.Sprintf("deployment %s of %s (%s, %s, started %s)", r.ID, where, r.Strategy,
		report.Revision(r.TaskDefinition), r.StartedAt.UTC().Format(time.TimeOnly+" UTC"))
	if r.Strategy == string(types.DeploymentStrategyRolling) || client == nil || r.ServiceDeployment == "" {
		return head + " has not completed; verify again once it has"
	}
	out, err := client.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{r.ServiceDeployment}})
	if err != nil || len(out.ServiceDeployments) == 0 {
		return head + " has not completed; verify again once it has"
	}
	sd := out.ServiceDeployments[0]
	bake := fmt.Sprintf("a bake of %s", plural(r.BakeTimeInMinutes, "minute"))
	switch sd.LifecycleStage {
	case types.ServiceDeploymentLifecycleStageBakeTime:
		end := aws.ToTime(sd.UpdatedAt).Add(time.Duration(r.BakeTimeInMinutes) * time.Minute)
		return fmt.Sprintf("%s is in BAKE_TIME: the previous revision still runs beside it until %s ends; verify again after %s",
			head, bake, end.UTC().Format(time.TimeOnly+" UTC"))
	case types.ServiceDeploymentLifecycleStageProductionTrafficShift:
		if t := sd.TargetServiceRevision; t != nil && t.RequestedProductionTrafficWeight != nil {
			return fmt.Sprintf("%s is in PRODUCTION_TRAFFIC_SHIFT (%v%% of production traffic on the new revision); verify again once it has shifted it all and completed %s",
				head, aws.ToFloat64(t.RequestedProductionTrafficWeight), bake)
		}
	case "":
		return head + " has not completed; verify again once it has"
	}
	return fmt.Sprintf("%s is in %s; verify again once it has completed %s", head, sd.LifecycleStage, bake)
}

func plural(n int32, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
