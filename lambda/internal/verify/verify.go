// Package verify checks that what runs is what should run: for each container of each
// running task, the imageDigest ECS reports against the digest the task definition pins —
// or, for an image referenced by tag, the digest that tag has in ECR now. This is the check
// that would have caught the incident: ECR held the fix, the tasks ran the old image.
package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// ECS is the part of the ECS API verification uses.
type ECS interface {
	ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(context.Context, *ecs.DescribeTasksInput, ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
}

// ECR is the part of the ECR API verification uses.
type ECR interface {
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
}

var (
	_ ECS = (*ecs.Client)(nil)
	_ ECR = (*ecr.Client)(nil)
)

const describeTasksBatch = 100 // DescribeTasks maximum

// Verifier compares running tasks with their task definitions.
type Verifier struct {
	ECS ECS
	ECR ECR
}

// Service verifies every running task of one service, whose task definition is td.
// The tags cache is shared across calls of one verification run (see Run). A service whose
// deployment ECS has not finished (svc.Rollout) is not verified yet: one unverifiable note
// says so, and no task is judged.
func (v *Verifier) Service(ctx context.Context, svc discover.Service, td *types.TaskDefinition, tags *TagDigests) ([]report.Verification, error) {
	if svc.Rollout != nil {
		return []report.Verification{unfinished(svc)}, nil
	}
	want, byTag, notes, err := v.wants(ctx, td, tags)
	if err != nil {
		return nil, err
	}
	tasks, err := v.runningTasks(ctx, svc)
	if err != nil {
		return nil, err
	}
	var out []report.Verification
	for _, note := range notes {
		note.Account, note.Cluster, note.Service = svc.Account(), svc.Cluster, svc.Name
		out = append(out, note)
	}
	if len(tasks) == 0 {
		if svc.DesiredCount > 0 {
			out = append(out, report.Verification{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name, Want: "running tasks",
				Why: fmt.Sprintf("no running task (desired %d)", svc.DesiredCount)})
		}
		return out, nil
	}
	for _, task := range tasks {
		for _, c := range task.Containers {
			name := aws.ToString(c.Name)
			digest, known := want[name]
			if !known {
				continue
			}
			got := aws.ToString(c.ImageDigest)
			ver := report.Verification{Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name, Task: report.Revision(aws.ToString(task.TaskArn)),
				Container: name, Want: digest, Running: got, OK: got == digest}
			switch {
			case got == "":
				ver.Why = "ECS reports no image digest for this container"
			case !ver.OK && aws.ToString(task.TaskDefinitionArn) != aws.ToString(td.TaskDefinitionArn):
				ver.Why = "task runs an older revision: " + report.Revision(aws.ToString(task.TaskDefinitionArn))
			case !ver.OK && byTag[name] != "":
				ver.Why = "tag " + byTag[name] + " has moved on in ECR; the task still runs the image it pulled (or a node had cached) before"
			case !ver.OK:
				ver.Why = "the task runs another image than the one its task definition names"
			}
			out = append(out, ver)
		}
	}
	return out, nil
}

// wants maps each verifiable container of td to the digest it should run, and those
// referenced by tag alone to that tag. Containers whose image is neither pinned nor in an
// ECR registry cannot be verified and are left out; those whose tag ECR does not know come
// back as failed notes.
func (v *Verifier) wants(ctx context.Context, td *types.TaskDefinition, tags *TagDigests) (want, byTag map[string]string, notes []report.Verification, err error) {
	want, byTag = map[string]string{}, map[string]string{}
	for _, c := range td.ContainerDefinitions {
		name, image := aws.ToString(c.Name), aws.ToString(c.Image)
		ref, err := imageref.Parse(image)
		if err != nil {
			continue
		}
		if ref.Digest != "" {
			want[name] = ref.Digest
			continue
		}
		registry, ok := imageref.ParseECRHost(ref.Host)
		tag, tracks := ref.Tracks()
		if !ok || !tracks {
			continue
		}
		digest, err := tags.Get(ctx, v.ECR, registry.Account, ref.Path, tag)
		if err != nil {
			return nil, nil, nil, err
		}
		if digest == "" {
			notes = append(notes, report.Verification{Container: name, Want: image, Why: "tag " + tag + " is not in ECR"})
			continue
		}
		want[name], byTag[name] = digest, tag
	}
	return want, byTag, notes, nil
}

func (v *Verifier) runningTasks(ctx context.Context, svc discover.Service) ([]types.Task, error) {
	var arns []string
	p := ecs.NewListTasksPaginator(v.ECS, &ecs.ListTasksInput{
		Cluster: aws.String(svc.ClusterARN), ServiceName: aws.String(svc.Name), DesiredStatus: types.DesiredStatusRunning,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tasks of %s/%s: %w", svc.Cluster, svc.Name, err)
		}
		arns = append(arns, page.TaskArns...)
	}
	var tasks []types.Task
	for batch := range slices.Chunk(arns, describeTasksBatch) {
		out, err := v.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(svc.ClusterARN), Tasks: batch})
		if err != nil {
			return nil, fmt.Errorf("describe tasks of %s/%s: %w", svc.Cluster, svc.Name, err)
		}
		for _, t := range out.Tasks {
			if aws.ToString(t.LastStatus) == "RUNNING" {
				tasks = append(tasks, t)
			}
		}
	}
	return tasks, nil
}

// TagDigests remembers, for one verification run, which digest each ECR tag has.
type TagDigests struct {
	mu sync.Mutex
	m  map[string]string
}

// Get returns the digest repository:tag has in the registry of account, or "" when the tag
// (or the repository) does not exist.
func (t *TagDigests) Get(ctx context.Context, client ECR, account, repository, tag string) (string, error) {
	key := account + "/" + repository + ":" + tag
	t.mu.Lock()
	digest, ok := t.m[key]
	t.mu.Unlock()
	if ok {
		return digest, nil
	}
	out, err := client.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId: aws.String(account), RepositoryName: aws.String(repository),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	var notFound *ecrtypes.ImageNotFoundException
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case errors.As(err, &notFound), errors.As(err, &noRepo):
		digest = ""
	case err != nil:
		return "", fmt.Errorf("describe %s:%s: %w", repository, tag, err)
	case len(out.ImageDetails) > 0:
		digest = aws.ToString(out.ImageDetails[0].ImageDigest)
	}
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]string{}
	}
	t.m[key] = digest
	t.mu.Unlock()
	return digest, nil
}

// Outcome sums up verifications. Mismatch when a running container runs another digest than
// it should; else unverified when a check could not be made (no running task, no digest
// reported, a tag ECR does not know) or when nothing was checked at all; verified only when
// at least one container was checked and every check passed. An all-clear from zero checks
// would be the incident's own failure.
func Outcome(vs []report.Verification) (report.Outcome, string) {
	var wrong, unknown, ok int
	for _, v := range vs {
		switch {
		case v.OK:
			ok++
		case v.Running != "":
			wrong++
		default:
			unknown++
		}
	}
	switch {
	case wrong > 0:
		return report.Mismatch, fmt.Sprintf("%d of %d checks failed: running tasks do not run the digest they should", wrong+unknown, len(vs))
	case unknown > 0:
		return report.Unverified, fmt.Sprintf("%d of %d checks could not be made: %s", unknown, len(vs), firstWhy(vs))
	case ok == 0:
		return report.Unverified, "nothing was checked: no running task with a container whose digest can be known"
	}
	return report.Verified, fmt.Sprintf("every running container checked (%d) runs the digest it should", ok)
}

func firstWhy(vs []report.Verification) string {
	for _, v := range vs {
		if !v.OK && v.Running == "" {
			return v.Cluster + "/" + v.Service + ": " + v.Why
		}
	}
	return ""
}
