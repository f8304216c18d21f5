package trigger

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
)

// event builds an ECR push event from the tagged sample, with edits applied
// to the envelope (keys without a dot) or the detail ("detail.<key>").
// A nil value deletes the key.
func event(t *testing.T, edits map[string]any) []byte {
	t.Helper()
	return edited(t, "push-tagged.json", edits)
}

// replication builds an ECR Replication Action from the us-west-2 replica
// sample, with edits as event applies them.
func replication(t *testing.T, edits map[string]any) []byte {
	t.Helper()
	return edited(t, "replicate-us-west-2.json", edits)
}

// edited is the sample file with edits as event applies them.
func edited(t *testing.T, file string, edits map[string]any) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readSample(t, file), &ev); err != nil {
		t.Fatal(err)
	}
	for k, v := range edits {
		obj := ev
		if rest, ok := strings.CutPrefix(k, "detail."); ok {
			obj, k = ev["detail"].(map[string]any), rest
		}
		if v == nil {
			delete(obj, k)
		} else {
			obj[k] = v
		}
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func fields(t *testing.T, err error) []string {
	t.Helper()
	var inv *InvalidEventError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v (%T) is not an *InvalidEventError", err, err)
	}
	var out []string
	for _, p := range inv.Problems() {
		var fe *FieldError
		if !errors.As(p, &fe) {
			t.Fatalf("problem %v (%T) is not a *FieldError", p, p)
		}
		out = append(out, fe.Field)
	}
	return out
}

func TestDecodeCollectsEveryProblem(t *testing.T) {
	raw := event(t, map[string]any{
		"version":                "1",
		"id":                     "",
		"account":                "12345678901",
		"region":                 "us-east-1.evil",
		"time":                   "yesterday",
		"detail.repository-name": "App",
		"detail.image-digest":    "sha512:abc",
		"detail.image-tag":       ".hidden",
		"detail.action-type":     "push",
		"detail.result":          "OK",
	})
	_, err := Decode(raw)
	got := fields(t, err)
	want := []string{"version", "id", "account", "region", "time", "detail.result", "detail.action-type",
		"detail.repository-name", "detail.image-digest", "detail.image-tag"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields at fault (-want +got):\n%s\nerror: %v", diff, err)
	}
	msg := err.Error()
	for _, s := range []string{`"App"`, `"sha512:abc"`, `"12345678901"`, `"us-east-1.evil"`, "invalid event: "} {
		if !strings.Contains(msg, s) {
			t.Errorf("message does not contain %s: %s", s, msg)
		}
	}
}

func TestDecodeProblems(t *testing.T) {
	hex := strings.TrimPrefix(newDigest, "sha256:")
	tests := []struct {
		name  string
		edits map[string]any
		want  string // the problem, as FieldError.Error() prints it
	}{
		{"version missing", map[string]any{"version": nil}, "version: missing"},
		{"version number", map[string]any{"version": 0}, `version "0": want a JSON string, got number`},
		{"id too long", map[string]any{"id": strings.Repeat("a", 129)}, `id "` + strings.Repeat("a", 64) + `"… (129 bytes): want 1 to 128 characters of [A-Za-z0-9._:/=+@-], starting with a letter or digit`},
		{"id with newline", map[string]any{"id": "a\nb"}, `id "a\nb": want 1 to 128 characters of [A-Za-z0-9._:/=+@-], starting with a letter or digit`},
		{"account 13 digits", map[string]any{"account": "1234567890123"}, `account "1234567890123": want exactly 12 digits`},
		{"account number", map[string]any{"account": 123456789012}, `account "123456789012": want a JSON string, got number`},
		{"region upper", map[string]any{"region": "US-EAST-1"}, `region "US-EAST-1": not an AWS region name (like us-east-1)`},
		{"time not RFC 3339", map[string]any{"time": "2026-03-14 09:26:53"}, `time "2026-03-14 09:26:53": want an RFC 3339 time like 2019-11-16T01:54:34Z`},
		{"resources string", map[string]any{"resources": "x"}, `resources "\"x\"": want a JSON array of strings, got string`},
		{"resources of numbers", map[string]any{"resources": []any{1}}, `resources[0] "1": want a JSON string, got number`},
		{"detail string", map[string]any{"detail": "{}"}, `detail "\"{}\"": want a JSON object, got string`},
		{"detail missing", map[string]any{"detail": nil}, `detail: missing`},
		{"source unknown", map[string]any{"source": "aws.s3"}, `source "aws.s3": with detail-type "ECR Image Action" is not an event pinroll accepts (want aws.ecr/ECR Image Action, aws.ecr/ECR Replication Action, aws.ecs/ECS Deployment State Change or aws.events/Scheduled Event)`},
		{"detail-type unknown", map[string]any{"detail-type": "ECR Image Scan"}, `detail-type "ECR Image Scan": is not an event pinroll accepts from source "aws.ecr"`},
		{"repository upper", map[string]any{"detail.repository-name": "Backend"}, `detail.repository-name "Backend": contains upper-case letters; ECR repository names are lower case`},
		{"repository cyrillic", map[string]any{"detail.repository-name": "b\u0430ckend"}, `detail.repository-name "bаckend": contains non-ASCII characters (look-alikes of ASCII letters are not the same repository)`},
		{"repository dot-dot", map[string]any{"detail.repository-name": "app/../app-dev"}, `detail.repository-name "app/../app-dev": has a '.' or '..' path segment`},
		{"repository double slash", map[string]any{"detail.repository-name": "app//x"}, `detail.repository-name "app//x": has an empty path segment (leading, trailing or doubled '/')`},
		{"repository with host", map[string]any{"detail.repository-name": ecrHost + "/app"}, `detail.repository-name "` + ecrHost + `/app": starts with the registry host ` + ecrHost + `; repository-name is the path only`},
		{"repository one char", map[string]any{"detail.repository-name": "a"}, `detail.repository-name "a": 1 characters, want 2 to 256`},
		{"repository double dash", map[string]any{"detail.repository-name": "a--b"}, `detail.repository-name "a--b": does not match ECR's repository grammar (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`},
		{"digest missing on SUCCESS PUSH", map[string]any{"detail.image-digest": nil}, `detail.image-digest: missing`},
		{"digest empty on SUCCESS PUSH", map[string]any{"detail.image-digest": ""}, `detail.image-digest: empty`},
		{"digest sha512", map[string]any{"detail.image-digest": "sha512:" + hex + hex}, `detail.image-digest "sha512:` + hex[:57] + `"… (135 bytes): algorithm "sha512", want sha256`},
		{"digest SHA256", map[string]any{"detail.image-digest": "SHA256:" + hex}, `detail.image-digest "SHA256:` + hex[:57] + `"… (71 bytes): algorithm "SHA256", want sha256`},
		{"digest short", map[string]any{"detail.image-digest": "sha256:" + hex[:63]}, `detail.image-digest "sha256:` + hex[:57] + `"… (70 bytes): 63 hex digits, want 64`},
		{"digest upper hex", map[string]any{"detail.image-digest": "sha256:" + strings.ToUpper(hex)}, `detail.image-digest "sha256:` + strings.ToUpper(hex)[:57] + `"… (71 bytes): upper-case hex digits; want lower case`},
		{"digest no algorithm", map[string]any{"detail.image-digest": hex}, `detail.image-digest "` + hex + `": want sha256:<64 lowercase hex digits>`},
		{"tag 129", map[string]any{"detail.image-tag": strings.Repeat("t", 129)}, `detail.image-tag "` + strings.Repeat("t", 64) + `"… (129 bytes): 129 characters, want at most 128`},
		{"tag leading dash", map[string]any{"detail.image-tag": "-x"}, `detail.image-tag "-x": must not start with '.' or '-'`},
		{"tag with colon", map[string]any{"detail.image-tag": "a:b"}, `detail.image-tag "a:b": does not match the OCI tag grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`},
		{"tag number", map[string]any{"detail.image-tag": 1}, `detail.image-tag "1": want a JSON string, got number`},
		{"action lower case", map[string]any{"detail.action-type": "push"}, `detail.action-type "push": want PUSH, DELETE or UPDATE_STORAGE_CLASS`},
		{"result missing", map[string]any{"detail.result": nil}, `detail.result: missing`},
		{"media type garbage", map[string]any{"detail.manifest-media-type": "not a type"}, `detail.manifest-media-type "not a type": not a media type (type/subtype)`},
		{"key in other case", map[string]any{"detail.Repository-Name": "x"}, `detail.Repository-Name: unexpected key; did you mean "repository-name"? (keys are case-sensitive)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(event(t, tt.edits))
			var inv *InvalidEventError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode error = %v, want an *InvalidEventError", err)
			}
			var msgs []string
			for _, p := range inv.Problems() {
				msgs = append(msgs, p.Error())
			}
			if diff := cmp.Diff([]string{tt.want}, msgs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeWholeInput(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"empty", ``, `event: empty input`},
		{"blank", " \n", `event: empty input`},
		{"array", `[{}]`, `event: want a JSON object, got array`},
		{"string", `"x"`, `event: want a JSON object, got string`},
		{"null", `null`, `event: want a JSON object, got null`},
		{"truncated", `{"version": "0", "id"`, `event: not valid JSON: unexpected end of JSON input (at byte 21 of 21)`},
		{"trailing garbage", `{} x`, `event: not valid JSON: invalid character 'x' after top-level value (at byte 4 of 4)`},
		{"invalid UTF-8", "{\"id\": \"\xff\"}", `event: not valid UTF-8 (at byte 8)`},
		{"too big", `{"x": "` + strings.Repeat("a", MaxEventSize) + `"}`, `event: 262153 bytes, more than EventBridge's limit of 262144`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.raw))
			var inv *InvalidEventError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode error = %v, want an *InvalidEventError", err)
			}
			if got := inv.Problems(); len(got) != 1 || got[0].Error() != tt.want {
				t.Errorf("problems = %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestDecodeDuplicateKeys(t *testing.T) {
	raw := strings.Replace(string(readSample(t, "push-tagged.json")),
		`"repository-name": "content-marketing-swarm-backend",`,
		`"repository-name": "content-marketing-swarm-backend", "repository-name": "content-marketing-swarm-dev-backend",`, 1)
	raw = strings.Replace(raw, `"version": "0",`, `"version": "0", "version": "0",`, 1)
	_, err := Decode([]byte(raw))
	if diff := cmp.Diff([]string{"version", "detail.repository-name"}, fields(t, err)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	// For the record: encoding/json alone keeps the last value.
	var ev ecrEvent
	if err := json.Unmarshal([]byte(raw), &ev); err != nil || ev.Detail.RepositoryName != "content-marketing-swarm-dev-backend" {
		t.Errorf("encoding/json: %q, %v", ev.Detail.RepositoryName, err)
	}
}

func TestDecodeRealFailureAndDeleteShapes(t *testing.T) {
	// A FAILURE push carries neither digest nor, sometimes, tag; it is valid and ignored.
	ev, err := Decode(event(t, map[string]any{"detail.result": "FAILURE", "detail.image-digest": nil, "detail.image-tag": nil,
		"detail.manifest-media-type": nil, "detail.artifact-media-type": nil}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.SkipReason(), "push result FAILURE"; got != want {
		t.Errorf("SkipReason() = %q, want %q", got, want)
	}
	// An archived image (UPDATE_STORAGE_CLASS) is valid and ignored.
	ev, err = Decode(event(t, map[string]any{"detail.action-type": "UPDATE_STORAGE_CLASS"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.SkipReason(), "action UPDATE_STORAGE_CLASS is not a push"; got != want {
		t.Errorf("SkipReason() = %q, want %q", got, want)
	}
}

func TestPushIgnore(t *testing.T) {
	ok := Push{ActionType: "PUSH", Result: "SUCCESS", Tag: "latest", Digest: newDigest}
	hex := strings.TrimPrefix(newDigest, "sha256:")
	tests := []struct {
		name string
		edit func(*Push)
		want string
	}{
		{"deployable", func(*Push) {}, ""},
		{"docker media types", func(p *Push) {
			p.ManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json"
			p.ArtifactMediaType = "application/vnd.docker.container.image.v1+json"
		}, ""},
		{"docker manifest list", func(p *Push) { p.ManifestMediaType = "application/vnd.docker.distribution.manifest.list.v2+json" }, ""},
		{"delete", func(p *Push) { p.ActionType = "DELETE" }, "action DELETE is not a push"},
		{"failure", func(p *Push) { p.Result = "FAILURE" }, "push result FAILURE"},
		{"untagged", func(p *Push) { p.Tag = "" }, "untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"},
		{"sbom", func(p *Push) { p.ArtifactMediaType = "application/spdx+json" }, "artifact application/spdx+json is not a container image"},
		{"helm chart", func(p *Push) { p.ArtifactMediaType = "application/vnd.cncf.helm.config.v1+json" }, "artifact application/vnd.cncf.helm.config.v1+json is not a container image"},
		{"in-toto attestation", func(p *Push) { p.ArtifactMediaType = "application/vnd.in-toto+json" }, "artifact application/vnd.in-toto+json is not a container image"},
		{"OCI artifact manifest", func(p *Push) { p.ManifestMediaType = "application/vnd.oci.artifact.manifest.v1+json" }, "manifest application/vnd.oci.artifact.manifest.v1+json is not a container image"},
		{"cosign sig tag", func(p *Push) { p.Tag = "sha256-" + hex + ".sig" }, "tag sha256-" + hex + ".sig is a cosign signature/attestation tag"},
		{"cosign att tag", func(p *Push) { p.Tag = "sha256-" + hex + ".att" }, "tag sha256-" + hex + ".att is a cosign signature/attestation tag"},
		{"cosign sbom tag", func(p *Push) { p.Tag = "sha256-" + hex + ".sbom" }, "tag sha256-" + hex + ".sbom is a cosign signature/attestation tag"},
		{"referrers tag", func(p *Push) { p.Tag = "sha256-" + hex }, "tag sha256-" + hex + " is an OCI referrers tag (signatures, attestations)"},
		{"tag that merely starts like one", func(p *Push) { p.Tag = "sha256-release" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			if got := p.SkipReason(); got != tt.want {
				t.Errorf("SkipReason() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDeployment(t *testing.T) {
	base := func(edits map[string]any) []byte { return edited(t, "deployment-completed.json", edits) }
	problems := []struct {
		name  string
		edits map[string]any
		want  []string
	}{
		{"no resources", map[string]any{"resources": nil}, []string{"resources: missing; an ECS deployment event names its service ARN in resources[0]"}},
		{"empty resources", map[string]any{"resources": []any{}}, []string{"resources: empty; an ECS deployment event names its service ARN in resources[0]"}},
		{"old ARN format", map[string]any{"resources": []any{"arn:aws:ecs:us-east-1:123456789012:service/api"}},
			[]string{`resources[0] "arn:aws:ecs:us-east-1:123456789012:service/api": want an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>)`}},
		{"other region", map[string]any{"resources": []any{"arn:aws:ecs:us-west-2:123456789012:service/prod/api"}},
			[]string{`resources[0] "arn:aws:ecs:us-west-2:123456789012:service/prod/api": region "us-west-2" is not the event's region "us-east-1"`}},
		{"other account", map[string]any{"resources": []any{"arn:aws:ecs:us-east-1:210987654321:service/prod/api"}},
			[]string{`resources[0] "arn:aws:ecs:us-east-1:210987654321:service/prod/api": account "210987654321" is not the event's account "123456789012"`}},
		{"China partition, commercial region", map[string]any{"resources": []any{"arn:aws-cn:ecs:us-east-1:123456789012:service/prod/api"}},
			[]string{`resources[0] "arn:aws-cn:ecs:us-east-1:123456789012:service/prod/api": partition "aws-cn" does not hold region "us-east-1" (want "aws")`}},
		{"task ARN", map[string]any{"resources": []any{"arn:aws:ecs:us-east-1:123456789012:task/prod/0123"}},
			[]string{`resources[0] "arn:aws:ecs:us-east-1:123456789012:task/prod/0123": want an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>)`}},
		{"event name", map[string]any{"detail.eventName": "SERVICE_STEADY_STATE"},
			[]string{`detail.eventName "SERVICE_STEADY_STATE": want SERVICE_DEPLOYMENT_IN_PROGRESS, SERVICE_DEPLOYMENT_COMPLETED or SERVICE_DEPLOYMENT_FAILED`}},
		{"event type", map[string]any{"detail.eventType": "info"}, []string{`detail.eventType "info": want INFO, WARN or ERROR`}},
		{"deployment id", map[string]any{"detail.deploymentId": "1234"}, []string{`detail.deploymentId "1234": want ecs-svc/<id>`}},
		{"updatedAt", map[string]any{"detail.updatedAt": "now"}, []string{`detail.updatedAt "now": want an RFC 3339 time like 2019-11-16T01:54:34Z`}},
		{"reason number", map[string]any{"detail.reason": 3}, []string{`detail.reason "3": want a JSON string, got number`}},
	}
	for _, tt := range problems {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(base(tt.edits))
			var inv *InvalidEventError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode error = %v, want an *InvalidEventError", err)
			}
			var msgs []string
			for _, p := range inv.Problems() {
				msgs = append(msgs, p.Error())
			}
			if diff := cmp.Diff(tt.want, msgs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
	ev, err := Decode(base(map[string]any{"detail.eventName": DeploymentInProgress, "detail.reason": nil}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.SkipReason(), "deployment SERVICE_DEPLOYMENT_IN_PROGRESS: nothing to verify until it completes or fails"; got != want {
		t.Errorf("SkipReason() = %q, want %q", got, want)
	}
	ev, err = Decode(base(map[string]any{"region": "cn-north-1", "resources": []any{"arn:aws-cn:ecs:cn-north-1:123456789012:service/prod/api"}}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Deployment.ClusterARN, "arn:aws-cn:ecs:cn-north-1:123456789012:cluster/prod"; got != want {
		t.Errorf("ClusterARN = %q, want %q", got, want)
	}
}

func TestReconcile(t *testing.T) {
	ev, err := Decode(readSample(t, "reconcile-scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reconcile == nil || ev.Reconcile.Account != "123456789012" || ev.Reconcile.Region != "us-east-1" || ev.Reconcile.Time.IsZero() {
		t.Errorf("Reconcile = %+v", ev.Reconcile)
	}
	raw := strings.Replace(string(readSample(t, "reconcile-scheduled.json")), "rule/pinroll-reconcile", "function/pinroll", 1)
	_, err = Decode([]byte(raw))
	if diff := cmp.Diff([]string{"resources[0]"}, fields(t, err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestInvalidEventErrorUnwraps(t *testing.T) {
	_, err := Decode([]byte(`{}`))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(%v, *FieldError) failed", err)
	}
	var inv *InvalidEventError
	if !errors.As(err, &inv) || len(inv.Problems()) != 8 {
		t.Fatalf("want 8 problems for an empty object, got %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("message spans lines: %q", err)
	}
}

func TestReplicationProblems(t *testing.T) {
	const (
		west = "arn:aws:ecr:us-west-2:123456789012:repository/"
		hold = "an ECR Replication Action names the destination repository's ARN, and only it, in resources"
	)
	tests := []struct {
		name  string
		edits map[string]any
		want  []string // the problems, as FieldError.Error() prints them
	}{
		{"a replication must say REPLICATE", map[string]any{"detail.action-type": "PUSH"},
			[]string{`detail.action-type "PUSH": want REPLICATE in an ECR Replication Action`}},
		{"a replication without an action type is rejected", map[string]any{"detail.action-type": nil},
			[]string{`detail.action-type: missing`}},
		{"a replication without a result is rejected", map[string]any{"detail.result": nil},
			[]string{`detail.result: missing`}},
		{"a successful replication names its digest", map[string]any{"detail.image-digest": nil},
			[]string{`detail.image-digest: missing`}},
		{"a replica's tag is checked as a push's", map[string]any{"detail.image-tag": "a:b"},
			[]string{`detail.image-tag "a:b": does not match the OCI tag grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`}},
		{"a bad repository name is reported once, not again against resources", map[string]any{"detail.repository-name": "Backend"},
			[]string{`detail.repository-name "Backend": contains upper-case letters; ECR repository names are lower case`}},
		{"the source account is required", map[string]any{"detail.source-account": nil},
			[]string{`detail.source-account: missing`}},
		{"the source account is 12 digits", map[string]any{"detail.source-account": "12345678901"},
			[]string{`detail.source-account "12345678901": want exactly 12 digits`}},
		{"the source account is a string", map[string]any{"detail.source-account": 123456789012},
			[]string{`detail.source-account "123456789012": want a JSON string, got number`}},
		{"the source region is required", map[string]any{"detail.source-region": nil},
			[]string{`detail.source-region: missing`}},
		{"the source region is a region", map[string]any{"detail.source-region": "us-east-1a"},
			[]string{`detail.source-region "us-east-1a": not an AWS region name (like us-east-1)`}},
		{"the source region is in the event's partition", map[string]any{"detail.source-region": "cn-north-1"},
			[]string{`detail.source-region "cn-north-1": partition "aws-cn", but the event's region "us-west-2" is in "aws"; ECR replicates only within a partition`}},
		{"a replica of the event's own registry is rejected", map[string]any{"detail.source-region": "us-west-2"},
			[]string{`detail.source-region "us-west-2": with detail.source-account "123456789012" names the event's own registry; ECR does not replicate a repository onto itself`}},
		{"a source key in other case is rejected", map[string]any{"detail.source-region": nil, "detail.Source-Region": "us-east-1"},
			[]string{`detail.Source-Region: unexpected key; did you mean "source-region"? (keys are case-sensitive)`, `detail.source-region: missing`}},
		{"resources are required", map[string]any{"resources": nil},
			[]string{`resources: missing; ` + hold}},
		{"resources must not be empty", map[string]any{"resources": []any{}},
			[]string{`resources: empty; ` + hold}},
		{"resources hold only the destination", map[string]any{"resources": []any{west + prodRepo, west + prodRepo + "-dev"}},
			[]string{`resources: 2 ARNs; ` + hold}},
		{"the destination is a repository ARN", map[string]any{"resources": []any{"arn:aws:s3:::" + prodRepo}},
			[]string{`resources[0] "arn:aws:s3:::content-marketing-swarm-backend": want an ECR repository ARN (arn:aws:ecr:<region>:<account>:repository/<repository-name>)`}},
		{"the destination is not the source repository", map[string]any{"resources": []any{"arn:aws:ecr:us-east-1:123456789012:repository/" + prodRepo}},
			[]string{`resources[0] "arn:aws:ecr:us-east-1:123456789012:repository/content-marketing-"… (77 bytes): region "us-east-1" is not the event's region "us-west-2"`}},
		{"the destination is in the event's account", map[string]any{"resources": []any{"arn:aws:ecr:us-west-2:210987654321:repository/" + prodRepo}},
			[]string{`resources[0] "arn:aws:ecr:us-west-2:210987654321:repository/content-marketing-"… (77 bytes): account "210987654321" is not the event's account "123456789012"`}},
		{"the destination is in the event's partition", map[string]any{"resources": []any{"arn:aws-cn:ecr:us-west-2:123456789012:repository/" + prodRepo}},
			[]string{`resources[0] "arn:aws-cn:ecr:us-west-2:123456789012:repository/content-marketi"… (80 bytes): partition "aws-cn" does not hold region "us-west-2" (want "aws")`}},
		{"the destination is the detail's repository, not a look-alike", map[string]any{"resources": []any{west + "content-marketing-swarm-dev-backend"}},
			[]string{`resources[0] "arn:aws:ecr:us-west-2:123456789012:repository/content-marketing-"… (81 bytes): names repository "content-marketing-swarm-dev-backend", not detail.repository-name "content-marketing-swarm-backend"`}},
		{"an Image Action cannot claim to be a replication", map[string]any{"detail-type": DetailTypeECRImage},
			[]string{`detail.action-type "REPLICATE": want PUSH, DELETE or UPDATE_STORAGE_CLASS`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(replication(t, tt.edits))
			var inv *InvalidEventError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode error = %v, want an *InvalidEventError", err)
			}
			var msgs []string
			for _, p := range inv.Problems() {
				msgs = append(msgs, p.Error())
			}
			if diff := cmp.Diff(tt.want, msgs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplicationSkips(t *testing.T) {
	hex := strings.TrimPrefix(newDigest, "sha256:")
	tests := []struct {
		name  string
		edits map[string]any
		want  string
	}{
		{"a FAILURE is skipped", map[string]any{"detail.result": "FAILURE"},
			"replication result FAILURE: the replica is not in 123456789012.dkr.ecr.us-west-2.amazonaws.com"},
		{"a FAILED, ECR's other spelling, is skipped", map[string]any{"detail.result": "FAILED"},
			"replication result FAILED: the replica is not in 123456789012.dkr.ecr.us-west-2.amazonaws.com"},
		{"a failure without digest or tag is skipped", map[string]any{"detail.result": "FAILURE", "detail.image-digest": nil, "detail.image-tag": nil},
			"replication result FAILURE: the replica is not in 123456789012.dkr.ecr.us-west-2.amazonaws.com"},
		{"any other result is skipped, quoted when it is not a word", map[string]any{"detail.result": "partly done " + strings.Repeat("x", 100)},
			`replication result "partly done ` + strings.Repeat("x", 52) + `"… (112 bytes): the replica is not in 123456789012.dkr.ecr.us-west-2.amazonaws.com`},
		{"a lower-case success is not SUCCESS", map[string]any{"detail.result": "success"},
			"replication result success: the replica is not in 123456789012.dkr.ecr.us-west-2.amazonaws.com"},
		{"an untagged replica is skipped as an untagged push", map[string]any{"detail.image-tag": ""},
			"untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"},
		{"a replica without a tag is skipped as an untagged push", map[string]any{"detail.image-tag": nil},
			"untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"},
		{"a replicated cosign signature is skipped", map[string]any{"detail.image-tag": "sha256-" + hex + ".sig"},
			"tag sha256-" + hex + ".sig is a cosign signature/attestation tag"},
		{"a replicated SBOM is skipped", map[string]any{"detail.artifact-media-type": "application/spdx+json"},
			"artifact application/spdx+json is not a container image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode(replication(t, tt.edits))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if ev.Kind != KindPush || ev.Push == nil || ev.Push.ReplicatedFrom == nil {
				t.Fatalf("Decode = %+v, want a replica", ev)
			}
			if got := ev.SkipReason(); got != tt.want {
				t.Errorf("SkipReason() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReplicationDeployable(t *testing.T) {
	tests := []struct {
		name       string
		edits      map[string]any
		host       string
		from       Origin
		sourceHost string
	}{
		{"a replica from another region of the same account", nil,
			"123456789012.dkr.ecr.us-west-2.amazonaws.com", Origin{Account: "123456789012", Region: "us-east-1"}, ecrHost},
		{"a replica from another account in the same region", map[string]any{"detail.source-account": "210987654321", "detail.source-region": "us-west-2"},
			"123456789012.dkr.ecr.us-west-2.amazonaws.com", Origin{Account: "210987654321", Region: "us-west-2"}, "210987654321.dkr.ecr.us-west-2.amazonaws.com"},
		{"a replica within the China partition", map[string]any{"region": "cn-northwest-1", "detail.source-region": "cn-north-1",
			"resources": []any{"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/" + prodRepo}},
			"123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", Origin{Account: "123456789012", Region: "cn-north-1"}, "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"},
		{"a replica that carries a push's media types", map[string]any{"detail.manifest-media-type": "application/vnd.oci.image.index.v1+json",
			"detail.artifact-media-type": "application/vnd.oci.image.config.v1+json"},
			"123456789012.dkr.ecr.us-west-2.amazonaws.com", Origin{Account: "123456789012", Region: "us-east-1"}, ecrHost},
		{"a replica with unknown extra fields", map[string]any{"detail.replication-rule": "all"},
			"123456789012.dkr.ecr.us-west-2.amazonaws.com", Origin{Account: "123456789012", Region: "us-east-1"}, ecrHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode(replication(t, tt.edits))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if why := ev.SkipReason(); why != "" {
				t.Fatalf("SkipReason() = %q, want a deployable replica", why)
			}
			p := ev.Push
			if diff := cmp.Diff(&tt.from, p.ReplicatedFrom); diff != "" {
				t.Errorf("ReplicatedFrom (-want +got):\n%s", diff)
			}
			want := imageref.Pushed{Host: tt.host, Path: prodRepo, Tag: "latest", Digest: newDigest}
			if diff := cmp.Diff(want, p.Pushed()); diff != "" {
				t.Errorf("Pushed (-want +got):\n%s", diff)
			}
			if got := p.ReplicatedFrom.Host(); got != tt.sourceHost {
				t.Errorf("ReplicatedFrom.Host() = %q, want %q", got, tt.sourceHost)
			}
		})
	}
}

// A push is never a replica, and what makes a replica deployable makes a
// push so: the same Push value, told apart only by ReplicatedFrom.
func TestPushAndReplicaDecodeAlike(t *testing.T) {
	push, err := Decode(readSample(t, "push-tagged.json"))
	if err != nil {
		t.Fatal(err)
	}
	if push.Push.ReplicatedFrom != nil {
		t.Errorf("a push has ReplicatedFrom %+v", *push.Push.ReplicatedFrom)
	}
	replica, err := Decode(replication(t, map[string]any{"region": "us-east-1", "detail.source-region": "us-west-2",
		"resources":                  []any{"arn:aws:ecr:us-east-1:123456789012:repository/" + prodRepo},
		"detail.manifest-media-type": "application/vnd.oci.image.manifest.v1+json", "detail.artifact-media-type": "application/vnd.oci.image.config.v1+json"}))
	if err != nil {
		t.Fatal(err)
	}
	want := *push.Push
	want.EventID, want.Time = replica.Push.EventID, replica.Push.Time
	want.ActionType, want.ReplicatedFrom = "REPLICATE", &Origin{Account: "123456789012", Region: "us-west-2"}
	if diff := cmp.Diff(want, *replica.Push); diff != "" {
		t.Errorf("replica (-push as a replica +replica):\n%s", diff)
	}
	if replica.Kind != push.Kind {
		t.Errorf("Kind = %q, a push's is %q", replica.Kind, push.Kind)
	}
}

// Ignore is SkipReason's former name: the same answer for every kind of event.
func TestIgnoreIsSkipReason(t *testing.T) {
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			ev, err := Decode(readSample(t, s.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Ignore() != ev.SkipReason() {
				t.Errorf("Event: Ignore() = %q, SkipReason() = %q", ev.Ignore(), ev.SkipReason())
			}
			if p := ev.Push; p != nil && p.Ignore() != p.SkipReason() {
				t.Errorf("Push: Ignore() = %q, SkipReason() = %q", p.Ignore(), p.SkipReason())
			}
			if d := ev.Deployment; d != nil && d.Ignore() != d.SkipReason() {
				t.Errorf("Deployment: Ignore() = %q, SkipReason() = %q", d.Ignore(), d.SkipReason())
			}
		})
	}
}
