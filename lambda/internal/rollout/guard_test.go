package rollout_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// keepNewest is the lifecycle rule that breaks pinned services: count-based expiry of every
// image, tagged or not, but the newest.
const keepNewest = `{"rules":[{"rulePriority":1,"description":"keep only the newest image","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"%s"%s}}]}`

// guardBackend is a backend with, for the emulator, its Go handle (lifecycle rules run on it).
type guardBackend struct {
	name  string
	start func(t *testing.T) (aws.Config, *emulator.Emulator)
}

func guardBackends() []guardBackend {
	return []guardBackend{
		{"moto", func(t *testing.T) (aws.Config, *emulator.Emulator) {
			if err := moto.Reset(); err != nil {
				t.Fatal(err)
			}
			return awstest.Config(t, moto.URL), nil
		}},
		{"emulator", func(t *testing.T) (aws.Config, *emulator.Emulator) {
			srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			return awstest.Config(t, srv.URL()), srv.Emulator()
		}},
	}
}

// guardedWorld: prod/api pinned by two handled pushes of app:latest, d1 then d2 (so its
// revision's pinroll:previous pins d1), and prod/worker pinned by digest alone to d1.
func guardedWorld(h *harness) (d1, d2 string) {
	h.Repository("app")
	h.Cluster("prod")
	h.Service("prod", "api", h.TaskDefinition("api", awstest.Container("app", h.Image("app", "latest"))))
	h.Push("app", "1.0.0", "v1") // a version tag keeps d1 when latest moves (moto drops untagged images)
	d1 = h.Push("app", "latest", "v1")
	h.Service("prod", "worker", h.TaskDefinition("worker", awstest.Container("app", h.Registry()+"/app@"+d1)))
	if rep := h.mustHandle(awstest.PushEvent("push-1", awstest.Account, "app", "latest", d1)); rep.Outcome != report.Deployed {
		h.T.Fatalf("push 1: %s (%s)", rep.Outcome, rep.Reason)
	}
	d2 = h.Push("app", "latest", "v2")
	if rep := h.mustHandle(awstest.PushEvent("push-2", awstest.Account, "app", "latest", d2)); rep.Outcome != report.Deployed {
		h.T.Fatalf("push 2: %s (%s)", rep.Outcome, rep.Reason)
	}
	return d1, d2
}

// applyRule puts keepNewest with the action and applies it on the emulator; on moto, which
// keeps lifecycle policies but never applies them, an expiry is modelled by deleting the image
// (BatchDeleteImage), as the rule would.
func applyRule(t *testing.T, h *harness, emu *emulator.Emulator, action, digest string) {
	t.Helper()
	ctx := context.Background()
	if emu == nil {
		if action != "expire" {
			t.Fatal("moto has no archive")
		}
		out, err := h.ECR.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
		if err != nil || len(out.Failures) > 0 {
			t.Fatalf("delete %s: %+v, %v", digest, out, err)
		}
		return
	}
	extra := ""
	if action == "transition" {
		extra = `,"targetStorageClass":"archive"`
	}
	policy := strings.Replace(strings.Replace(keepNewest, "%s", action, 1), "%s", extra, 1)
	if _, err := h.ECR.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("app"), LifecyclePolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	done := emu.RunLifecyclePolicies()
	if len(done) != 1 || done[0].Digest != digest || done[0].Action != action {
		t.Fatalf("lifecycle run: %+v, want %s of %s", done, action, digest)
	}
}

// missingBy indexes missing images by cluster/service revision.
func missingBy(rep report.Report) map[string]report.MissingImage {
	out := map[string]report.MissingImage{}
	for _, m := range rep.MissingImages {
		out[m.Cluster+"/"+m.Service+" "+m.Revision] = m
	}
	return out
}

func TestReconcileReportsAPinnedDigestALifecycleRuleExpired(t *testing.T) {
	for _, b := range guardBackends() {
		t.Run(b.name, func(t *testing.T) {
			cfg, emu := b.start(t)
			h := newHarness(t, cfg, config.Config{})
			d1, _ := guardedWorld(h)
			api := h.ServiceTaskDefinition("prod", "api")
			if rep := h.mustHandle(reconcileEvent("healthy")); len(rep.MissingImages) != 0 || rep.IsFailure() {
				t.Fatalf("healthy fleet: missing %+v (%s)", rep.MissingImages, rep.Reason)
			}

			applyRule(t, h, emu, "expire", d1)
			rep := h.mustHandle(reconcileEvent("after-expiry"))
			if rep.Outcome != report.Unchanged {
				t.Errorf("outcome %s (%s), want unchanged: the tags are current", rep.Outcome, rep.Reason)
			}
			if !rep.IsFailure() || !strings.Contains(rep.Reason, "missing_images") {
				t.Errorf("a report with missing images is not a failure to look at: %s", rep.Reason)
			}
			got := missingBy(rep)
			if len(got) != 2 {
				t.Fatalf("missing images %+v, want prod/worker's current and prod/api's previous revision", rep.MissingImages)
			}
			worker := got["prod/worker worker:1"]
			if worker.Image != h.Registry()+"/app@"+d1 || worker.Account != awstest.Account || !strings.Contains(worker.Why, "lifecycle rule expired it") {
				t.Errorf("prod/worker: %+v", worker)
			}
			prev := ""
			for key, m := range got {
				if strings.HasPrefix(key, "prod/api ") {
					prev = key
					if !strings.Contains(m.Why, "previous revision") || !strings.HasSuffix(m.Image, "@"+d1) || !strings.Contains(m.Why, "get-lifecycle-policy") {
						t.Errorf("prod/api: %+v", m)
					}
				}
			}
			if prev == "" || prev == "prod/api "+report.Revision(api.ARN) {
				t.Errorf("prod/api's entry %q should name its previous revision, not the current %s", prev, report.Revision(api.ARN))
			}
		})
	}
}

func TestReconcileReportsAnArchivedPinnedDigest(t *testing.T) {
	for _, b := range guardBackends() {
		if b.name != "emulator" { // moto has no archive storage class
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			cfg, emu := b.start(t)
			h := newHarness(t, cfg, config.Config{})
			d1, _ := guardedWorld(h)
			applyRule(t, h, emu, "transition", d1)
			rep := h.mustHandle(reconcileEvent("after-archive"))
			got := missingBy(rep)
			worker, ok := got["prod/worker worker:1"]
			if len(got) != 2 || !ok {
				t.Fatalf("missing images %+v, want prod/worker and prod/api's previous revision", rep.MissingImages)
			}
			if !strings.HasPrefix(worker.Why, "archived") || !strings.Contains(worker.Why, "update-image-storage-class --registry-id "+awstest.Account+" --repository-name app --image-id imageDigest="+d1+" --target-storage-class STANDARD") {
				t.Errorf("prod/worker: %s", worker.Why)
			}
			// Restored, it is reported no more.
			if _, err := h.ECR.UpdateImageStorageClass(context.Background(), &ecr.UpdateImageStorageClassInput{
				RepositoryName: aws.String("app"), ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(d1)}, TargetStorageClass: ecrtypes.TargetStorageClassStandard,
			}); err != nil {
				t.Fatal(err)
			}
			if rep := h.mustHandle(reconcileEvent("restored")); len(rep.MissingImages) != 0 {
				t.Errorf("after the restore: %+v", rep.MissingImages)
			}
		})
	}
}

// The guard costs no call on a healthy fleet beyond the digests it must describe: one
// repository, three pinned digests (d1 twice, d2), one DescribeImages call.
func TestReconcileGuardsDigestsInOneCallPerHundred(t *testing.T) {
	onBackend(t, "emulator", func(t *testing.T, cfg aws.Config) {
		h := newHarness(t, cfg, config.Config{})
		guardedWorld(h)
		h.calls.Reset()
		rep := h.mustHandle(reconcileEvent("count"))
		if len(rep.MissingImages) != 0 {
			t.Fatalf("missing: %+v", rep.MissingImages)
		}
		if n := h.calls.Count("DescribeImages"); n != 1 {
			t.Errorf("%d DescribeImages calls, want 1 (two distinct digests of one repository)", n)
		}
	})
}
