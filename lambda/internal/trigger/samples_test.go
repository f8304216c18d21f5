package trigger

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
)

const (
	eventsDir = "../../../events"
	newDigest = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
	oldDigest = "sha256:1016926d84bdc6168f49a326489db181a5990a3cc992321e0d505242ca5d9ce9"
	devDigest = "sha256:52c71d4dce65c9636341f58553a691759e5e699e58dc495e68d6c2d1710d9885"
	prodRepo  = "content-marketing-swarm-backend"
	ecrHost   = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
)

// ecrDetail is the detail of an ECR Image Action or ECR Replication Action
// event: aws-lambda-go's type plus the media types real push events carry
// and the source a replication names.
type ecrDetail struct {
	events.ECRImageActionEventDetailType
	ManifestMediaType string `json:"manifest-media-type,omitempty"`
	ArtifactMediaType string `json:"artifact-media-type,omitempty"`
	SourceAccount     string `json:"source-account,omitempty"`
	SourceRegion      string `json:"source-region,omitempty"`
}

// ecrEvent is a whole ECR event with the complete detail, typed, to check
// Decode (which validates field by field) against.
type ecrEvent struct {
	events.ECRImageActionEvent
	Detail ecrDetail `json:"detail"` // shadows the embedded event's Detail
}

// samples lists every event in events/ (fleet*.json are worlds, not events) with
// what Decode must make of it.
var samples = []struct {
	file   string
	kind   Kind
	ignore string
}{
	{"push-tagged.json", KindPush, ""},
	{"push-old-digest.json", KindPush, ""}, // stale: the ECR check downstream catches it, not the decoder
	{"push-lookalike-dev-backend.json", KindPush, ""},
	{"push-multiarch-index.json", KindPush, ""},
	{"push-other-account.json", KindPush, ""},
	{"untagged-multiarch-amd64.json", KindPush, "untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"},
	{"untagged-multiarch-arm64.json", KindPush, "untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"},
	{"untagged-empty-tag.json", KindPush, "untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"},
	{"untagged-no-tag.json", KindPush, "untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"},
	{"signature-cosign.json", KindPush, "artifact application/vnd.dev.cosign.artifact.sig.v1+json is not a container image"},
	{"delete.json", KindPush, "action DELETE is not a push"},
	{"failure.json", KindPush, "push result FAILURE"},
	{"replicate-us-west-2.json", KindPush, ""},
	{"replicate-failed.json", KindPush, "replication result FAILURE: the replica is not in 123456789012.dkr.ecr.us-west-2.amazonaws.com"},
	{"deployment-completed.json", KindDeployment, ""},
	{"deployment-failed-rollback.json", KindDeployment, ""},
	{"reconcile-scheduled.json", KindReconcile, ""},
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSamplesAreAllListed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, s := range samples {
		listed[s.file] = true
	}
	for _, f := range files {
		// fleet*.json describe local worlds (the demo's, the organisation's), not events.
		if name := filepath.Base(f); !listed[name] && !strings.HasPrefix(name, "fleet") {
			t.Errorf("%s is not in the samples table", f)
		}
	}
}

func TestSampleKindAndIgnore(t *testing.T) {
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			ev, err := Decode(readSample(t, s.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if ev.Kind != s.kind {
				t.Errorf("Kind = %q, want %q", ev.Kind, s.kind)
			}
			if got := ev.SkipReason(); got != s.ignore {
				t.Errorf("SkipReason() = %q, want %q", got, s.ignore)
			}
			if ev.ID == "" {
				t.Error("ID is empty")
			}
			set := 0
			for _, p := range []bool{ev.Push != nil, ev.Deployment != nil, ev.Reconcile != nil} {
				if p {
					set++
				}
			}
			if set != 1 {
				t.Errorf("%d of Push, Deployment, Reconcile set, want exactly 1", set)
			}
		})
	}
}

func TestSampleCosignTag(t *testing.T) {
	// The cosign sample would also be skipped for its tag alone.
	ev, err := Decode(readSample(t, "signature-cosign.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := *ev.Push
	p.ArtifactMediaType = ""
	want := "tag sha256-" + strings.TrimPrefix(newDigest, "sha256:") + ".sig is a cosign signature/attestation tag"
	if got := p.SkipReason(); got != want {
		t.Errorf("SkipReason() = %q, want %q", got, want)
	}
}

func TestSamplePushValues(t *testing.T) {
	ev, err := Decode(readSample(t, "push-tagged.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Push{
		EventID:           "5f1c8a3e-2b7d-4e9f-8a61-0c3d2e4f5a6b",
		Time:              time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC),
		Account:           "123456789012",
		Region:            "us-east-1",
		Repository:        prodRepo,
		Tag:               "latest",
		Digest:            newDigest,
		ManifestMediaType: "application/vnd.oci.image.manifest.v1+json",
		ArtifactMediaType: "application/vnd.oci.image.config.v1+json",
		ActionType:        "PUSH",
		Result:            "SUCCESS",
	}
	if diff := cmp.Diff(want, ev.Push); diff != "" {
		t.Errorf("Push (-want +got):\n%s", diff)
	}
	if got := ev.Push.Host(); got != ecrHost {
		t.Errorf("Host() = %q", got)
	}
	wantTarget := imageref.Pushed{Host: ecrHost, Path: prodRepo, Tag: "latest", Digest: newDigest}
	if diff := cmp.Diff(wantTarget, ev.Push.Pushed()); diff != "" {
		t.Errorf("Target (-want +got):\n%s", diff)
	}
	// The incident, end to end: the dev push must not match the prod task definition.
	dev, err := Decode(readSample(t, "push-lookalike-dev-backend.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := imageref.Compare(dev.Push.Pushed(), ecrHost+"/"+prodRepo+":latest")
	if err != nil || v.Match || !v.NearMiss {
		t.Errorf("dev push against prod image: %+v, %v", v, err)
	}
	other, err := Decode(readSample(t, "push-other-account.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := imageref.Compare(other.Push.Pushed(), ecrHost+"/"+prodRepo); err != nil || v.Match {
		t.Errorf("other-account push against this account's image: %+v, %v", v, err)
	}
}

// The replica of the fix in us-west-2 is the same image as push-tagged.json,
// pushed to the us-west-2 registry of the same account: it deploys the
// services there, from there, and never those of us-east-1.
func TestSampleReplicaValues(t *testing.T) {
	const westHost = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	ev, err := Decode(readSample(t, "replicate-us-west-2.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Push{
		EventID:        "7d3b9e1a-5c2f-4a8d-9e6b-3f1a7c5d9b24",
		Time:           time.Date(2026, 3, 14, 9, 27, 9, 0, time.UTC),
		Account:        "123456789012",
		Region:         "us-west-2",
		Repository:     prodRepo,
		Tag:            "latest",
		Digest:         newDigest,
		ActionType:     "REPLICATE",
		Result:         "SUCCESS",
		ReplicatedFrom: &Origin{Account: "123456789012", Region: "us-east-1"},
	}
	if diff := cmp.Diff(want, ev.Push); diff != "" {
		t.Errorf("Push (-want +got):\n%s", diff)
	}
	if got := ev.Push.Host(); got != westHost {
		t.Errorf("Host() = %q, want %q", got, westHost)
	}
	if got := ev.Push.ReplicatedFrom.Host(); got != ecrHost {
		t.Errorf("ReplicatedFrom.Host() = %q, want %q", got, ecrHost)
	}
	wantPushed := imageref.Pushed{Host: westHost, Path: prodRepo, Tag: "latest", Digest: newDigest}
	if diff := cmp.Diff(wantPushed, ev.Push.Pushed()); diff != "" {
		t.Errorf("Pushed (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		image string
		match bool
	}{
		{westHost + "/" + prodRepo + ":latest", true},
		{ecrHost + "/" + prodRepo + ":latest", false}, // the source region's services deploy from the push, not the replica
	} {
		if v, err := imageref.Compare(ev.Push.Pushed(), tt.image); err != nil || v.Match != tt.match {
			t.Errorf("Compare(replica, %s) = %+v, %v; want Match %v", tt.image, v, err, tt.match)
		}
	}
	// The replica is of the push in the sample push-tagged.json.
	push, err := Decode(readSample(t, "push-tagged.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := (Origin{Account: push.Push.Account, Region: push.Push.Region}), *ev.Push.ReplicatedFrom; got != want {
		t.Errorf("push-tagged.json is pushed to %+v, the replica comes from %+v", got, want)
	}
	if push.Push.Repository != ev.Push.Repository || push.Push.Tag != ev.Push.Tag || push.Push.Digest != ev.Push.Digest {
		t.Errorf("replica %s:%s@%s is not the push %s:%s@%s", ev.Push.Repository, ev.Push.Tag, ev.Push.Digest,
			push.Push.Repository, push.Push.Tag, push.Push.Digest)
	}
}

func TestSampleDeploymentValues(t *testing.T) {
	ev, err := Decode(readSample(t, "deployment-failed-rollback.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := ev.Deployment
	want := &Deployment{
		EventID:      "b9e2c5f8-1a4d-4b7e-8c0f-6d3a9e2b5c18",
		Time:         time.Date(2026, 3, 14, 9, 44, 5, 0, time.UTC),
		Account:      "123456789012",
		Region:       "us-east-1",
		ClusterARN:   "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
		Cluster:      "prod",
		ServiceARN:   "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
		Service:      "api",
		EventName:    DeploymentFailed,
		DeploymentID: "ecs-svc/4927510385512395827",
		Reason:       "ECS deployment circuit breaker: tasks failed to start. Rolling back to deployment ecs-svc/8601937254107734491",
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("Deployment (-want +got):\n%s", diff)
	}
	if !d.Failed() || d.Completed() || !d.RolledBack() {
		t.Errorf("Failed, Completed, RolledBack = %v, %v, %v; want true, false, true", d.Failed(), d.Completed(), d.RolledBack())
	}
	ev, err = Decode(readSample(t, "deployment-completed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d := ev.Deployment; d.Failed() || !d.Completed() || d.RolledBack() {
		t.Errorf("Failed, Completed, RolledBack = %v, %v, %v; want false, true, false", d.Failed(), d.Completed(), d.RolledBack())
	}
}

// TestSampleRoundTrip does what aws-lambda-go's events/ecr_image_action_test.go
// does: decode the sample, marshal it again, compare with the file. The
// aws-lambda-go type is decoded too, to prove ours agrees with it on every
// field it has.
func TestSampleRoundTrip(t *testing.T) {
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			input := readSample(t, s.file)
			var out []byte
			switch s.kind {
			case KindPush:
				var theirs events.ECRImageActionEvent
				if err := json.Unmarshal(input, &theirs); err != nil {
					t.Fatalf("aws-lambda-go: %v", err)
				}
				var ours ecrEvent
				if err := json.Unmarshal(input, &ours); err != nil {
					t.Fatalf("ours: %v", err)
				}
				if diff := cmp.Diff(theirs.Detail, ours.Detail.ECRImageActionEventDetailType); diff != "" {
					t.Errorf("detail differs from aws-lambda-go's (-theirs +ours):\n%s", diff)
				}
				theirs.Detail = events.ECRImageActionEventDetailType{}
				ours.ECRImageActionEvent.Detail = events.ECRImageActionEventDetailType{}
				if diff := cmp.Diff(theirs, ours.ECRImageActionEvent); diff != "" {
					t.Errorf("envelope differs from aws-lambda-go's (-theirs +ours):\n%s", diff)
				}
				// The decoded domain value agrees with the typed event.
				ev, err := Decode(input)
				if err != nil {
					t.Fatal(err)
				}
				p := ev.Push
				var from Origin
				if p.ReplicatedFrom != nil {
					from = *p.ReplicatedFrom
				}
				got := []string{p.EventID, p.Account, p.Region, p.Repository, p.Tag, p.Digest, p.ActionType, p.Result, p.ManifestMediaType, p.ArtifactMediaType, p.Time.String(), from.Account, from.Region}
				d := ours.Detail
				want := []string{ours.ID, ours.Account, ours.Region, d.RepositoryName, d.ImageTag, d.ImageDigest, d.ActionType, d.Result, d.ManifestMediaType, d.ArtifactMediaType, ours.Time.String(), d.SourceAccount, d.SourceRegion}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Decode disagrees with the typed event (-typed +Decode):\n%s", diff)
				}
				var err2 error
				if out, err2 = json.Marshal(ours); err2 != nil {
					t.Fatal(err2)
				}
			default:
				var ours events.EventBridgeEvent
				if err := json.Unmarshal(input, &ours); err != nil {
					t.Fatalf("aws-lambda-go: %v", err)
				}
				var err error
				if out, err = json.Marshal(ours); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(normalize(t, input), normalize(t, out)); diff != "" {
				t.Errorf("round trip (-file +re-marshalled):\n%s", diff)
			}
		})
	}
}

// normalize decodes JSON generically and drops empty-string values: a key
// absent from the file comes back as "" from types without omitempty.
func normalize(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if e == "" {
					delete(x, k)
					continue
				}
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return v
	}
	return walk(v)
}
