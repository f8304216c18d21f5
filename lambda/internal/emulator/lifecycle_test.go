package emulator_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

const backendRepo = "content-marketing-swarm-backend"

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const expireUntagged = `{"rules":[{"rulePriority":1,"description":"untagged images older than 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`

func TestLifecyclePolicyIsValidatedKeptAndDeleted(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	repo := aws.String(backendRepo)

	_, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
	wantCode(t, err, "LifecyclePolicyNotFoundException")
	_, err = c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: repo})
	wantCode(t, err, "LifecyclePolicyNotFoundException")

	rule := func(selection, action string) string {
		return `{"rules":[{"rulePriority":1,"description":"a rule long enough for the minimum length","selection":` + selection + `,"action":` + action + `}]}`
	}
	for name, text := range map[string]string{
		"not JSON":                    strings.Repeat("x", 120),
		"no rules":                    `{"rules":[]}` + strings.Repeat(" ", 100),
		"tagged without patterns":     rule(`{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":5}`, `{"type":"expire"}`),
		"untagged with a prefix":      rule(`{"tagStatus":"untagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":5}`, `{"type":"expire"}`),
		"unknown tag status":          rule(`{"tagStatus":"some","countType":"imageCountMoreThan","countNumber":5}`, `{"type":"expire"}`),
		"age without a unit":          rule(`{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":5}`, `{"type":"expire"}`),
		"count with a unit":           rule(`{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":5}`, `{"type":"expire"}`),
		"zero count":                  rule(`{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0}`, `{"type":"expire"}`),
		"unknown action":              rule(`{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5}`, `{"type":"delete"}`),
		"transition without a target": rule(`{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5}`, `{"type":"transition"}`),
		"five wildcards":              rule(`{"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],"countType":"imageCountMoreThan","countNumber":5}`, `{"type":"expire"}`),
		"archive expired too soon":    rule(`{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":30}`, `{"type":"expire"}`),
		"unknown property":            rule(`{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5,"keep":true}`, `{"type":"expire"}`),
		"any before another rule": `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}},` +
			`{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`,
		"the same priority twice": `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}},` +
			`{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`,
	} {
		_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(text)})
		if errorCode(err) != "InvalidParameterException" {
			t.Errorf("%s: PutLifecyclePolicy answered %v, want InvalidParameterException", name, err)
		}
	}

	put, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(expireUntagged)})
	if err != nil || aws.ToString(put.LifecyclePolicyText) != expireUntagged || aws.ToString(put.RegistryId) != account {
		t.Fatalf("PutLifecyclePolicy = %+v, %v", put, err)
	}
	got, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(got.LifecyclePolicyText) != expireUntagged || got.LastEvaluatedAt != nil {
		t.Fatalf("GetLifecyclePolicy = %+v, %v (not evaluated yet)", got, err)
	}
	srv.Emulator().RunLifecyclePolicies()
	got, err = c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || got.LastEvaluatedAt == nil {
		t.Errorf("after a run: lastEvaluatedAt = %v (%v)", got.LastEvaluatedAt, err)
	}
	del, err := c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(del.LifecyclePolicyText) != expireUntagged {
		t.Fatalf("DeleteLifecyclePolicy = %+v, %v", del, err)
	}
	_, err = c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
	wantCode(t, err, "LifecyclePolicyNotFoundException")
}

func TestLifecycleRuleExpiresAnOldUntaggedImageAndKeepsTheRest(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := startIncident(t, emulator.Options{Now: clk.now})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	repo := aws.String(backendRepo)
	if _, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(expireUntagged)}); err != nil {
		t.Fatal(err)
	}
	if done := srv.Emulator().RunLifecyclePolicies(); len(done) != 0 {
		t.Fatalf("a fresh image was expired: %+v", done)
	}
	clk.add(15 * 24 * time.Hour)
	done := srv.Emulator().RunLifecyclePolicies()
	if len(done) != 1 || done[0].Digest != oldImage || done[0].Action != "expire" || done[0].Rule != 1 || done[0].Repository != backendRepo {
		t.Fatalf("actions = %+v, want the untagged old image expired", done)
	}
	_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(oldImage)}}})
	wantCode(t, err, "ImageNotFoundException")
	if _, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}}); err != nil {
		t.Errorf("the tagged image went too: %v", err)
	}
}

func TestLifecycleRulesByCountAndPriorityAndArchive(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := start(t, emulator.Options{Now: clk.now})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	repo := aws.String("team/app")
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: repo}); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for i, tag := range []string{"v1", "v2", "v3", "prod-1", "v4"} {
		out, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(manifest(i + 10)), ImageTag: aws.String(tag)})
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = aws.ToString(out.Image.ImageId.ImageDigest)
		clk.add(time.Hour)
	}
	// prod* images are archived after a day; of the other v* images the two newest stay.
	policy := `{"rules":[` +
		`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}},` +
		`{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`
	if _, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	clk.add(48 * time.Hour)
	done := srv.Emulator().RunLifecyclePolicies()
	var got []string
	for _, a := range done {
		got = append(got, a.Tags[0]+"="+a.Action)
	}
	if strings.Join(got, " ") != "v1=expire v2=expire prod-1=transition" {
		t.Fatalf("actions %v, want v1 and v2 expired (v3, v4 are the newest two) and prod-1 archived", got)
	}

	// DescribeImages by id still describes the archived image, with its status and time.
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(digests["prod-1"])}}})
	if err != nil || len(out.ImageDetails) != 1 {
		t.Fatalf("describe the archived image: %+v, %v", out, err)
	}
	if d := out.ImageDetails[0]; d.ImageStatus != types.ImageStatusArchived || d.LastArchivedAt == nil {
		t.Errorf("archived image: status %s, lastArchivedAt %v", d.ImageStatus, d.LastArchivedAt)
	}
	// A listing shows ACTIVE images unless the filter asks for others, as documented.
	if list := tagsOf(t, c, "team/app"); len(list) != 2 {
		t.Errorf("default listing %v, want the two active images", list)
	}
	all, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, Filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterAny}})
	if err != nil || len(all.ImageDetails) != 3 {
		t.Errorf("listing with ANY: %d images (%v), want 3", len(all.ImageDetails), err)
	}
	// BatchGetImage cannot pull it.
	got2, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("prod-1")}}})
	if err != nil || len(got2.Images) != 0 || len(got2.Failures) != 1 || got2.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound {
		t.Errorf("BatchGetImage of an archived image: %+v, %v", got2, err)
	}
	// Restoring it makes it active again; restoring twice is refused.
	restored, err := c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("prod-1")}, TargetStorageClass: types.TargetStorageClassStandard})
	if err != nil || restored.ImageStatus != types.ImageStatusActive || aws.ToString(restored.ImageId.ImageDigest) != digests["prod-1"] {
		t.Fatalf("restore = %+v, %v", restored, err)
	}
	_, err = c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("prod-1")}, TargetStorageClass: types.TargetStorageClassStandard})
	wantCode(t, err, "ImageStorageClassUpdateNotSupportedException")
	_, err = c.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: repo, ImageId: &types.ImageIdentifier{ImageTag: aws.String("v1")}, TargetStorageClass: types.TargetStorageClassArchive})
	wantCode(t, err, "ImageNotFoundException")
}

func TestArchivedPinnedImageCannotBePulledUntilRestoredOrPushed(t *testing.T) {
	srv := startIncident(t, emulator.Options{})
	ctx := context.Background()
	c := ecsClient(srv.URL(), clientOptions{})
	r := ecrClient(srv.URL(), clientOptions{})
	pinned := registerPinned(t, c, registry+"/"+backendRepo+":latest@"+newImage)
	archived, err := r.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: aws.String(backendRepo), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(newImage)}, TargetStorageClass: types.TargetStorageClassArchive})
	if err != nil || archived.ImageStatus != types.ImageStatusArchived {
		t.Fatalf("archive: %+v, %v", archived, err)
	}
	before := describeService(t, c, "prod", "api")
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(pinned)}); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(describeService(t, c, "prod", "api").TaskDefinition); got != aws.ToString(before.TaskDefinition) {
		t.Fatalf("the deployment of an archived digest did not fail back: the service runs %s", got)
	}
	stopped, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("api"), DesiredStatus: ecstypes.DesiredStatusStopped})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: stopped.TaskArns})
	if err != nil || len(desc.Tasks) == 0 {
		t.Fatalf("no stopped task (%v)", err)
	}
	failed := 0
	for _, task := range desc.Tasks {
		if aws.ToString(task.TaskDefinitionArn) != pinned {
			continue
		}
		failed++
		if !strings.HasPrefix(aws.ToString(task.StoppedReason), "CannotPullContainerError") {
			t.Errorf("task stopped with %q, want CannotPullContainerError", aws.ToString(task.StoppedReason))
		}
	}
	if failed == 0 {
		t.Error("no task of the pinned revision failed to start")
	}

	// Pushing the manifest again restores it, as ECR documents; the deployment then works.
	listed, err := r.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(backendRepo), Filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterArchived}})
	if err != nil || len(listed.ImageDetails) != 1 {
		t.Fatalf("archived listing: %+v, %v", listed, err)
	}
	if _, err := r.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(backendRepo), ImageManifest: aws.String(fleetManifest(t, newImage)), ImageTag: aws.String("latest")}); err != nil {
		t.Fatalf("push of the archived image: %v", err)
	}
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("api"), TaskDefinition: aws.String(pinned)}); err != nil {
		t.Fatal(err)
	}
	if got := runningDigests(t, c, "prod", "api", "app"); !allEqual(got, newImage, 2) {
		t.Errorf("after the push restored it, prod/api runs %v, want %s", got, newImage)
	}
}

// fleetManifest returns the manifest bytes of an image of the default fleet.
func fleetManifest(t *testing.T, digest string) string {
	t.Helper()
	f, err := fleet.Load("../../../events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Repositories {
		for _, img := range r.Images {
			if fleet.ManifestDigest(img.Manifest) == digest {
				return img.Manifest
			}
		}
	}
	t.Fatalf("no image %s in the default fleet", digest)
	return ""
}
