package notify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

const image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend:latest@sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"

func deployed(services ...string) report.Report {
	rep := report.Report{EventID: "e1", Kind: "push", Image: image, Outcome: report.Deployed, Reason: "…"}
	for _, s := range services {
		rep.Changes = append(rep.Changes, report.Change{Cluster: "prod", Service: s})
	}
	return rep
}

func TestSubject(t *testing.T) {
	long := strings.Repeat("very-long-service-name-", 5)
	for _, tc := range []struct {
		rep  report.Report
		want string
	}{
		{deployed("api", "worker"), "api, worker → content-marketing-swarm-backend:latest@sha256:b18964317305 in prod"},
		{deployed("a", "b", "c", "d", "e"), "a, b, c +2 → content-marketing-swarm-backend:latest@sha256:b18964317305 in prod"},
		{deployed(long), long[:99-len("…")] + "…"},
		{func() report.Report {
			r := deployed("s98", "s99")
			r.Totals, r.Accounts = &report.Totals{Changes: 190, Invocations: 5}, []report.AccountTotals{{Account: "1"}, {Account: "2"}, {Account: "3"}}
			return r
		}(), "190 services → content-marketing-swarm-backend:latest@sha256:b18964317305 in 3 accounts"},
		{report.Report{Outcome: report.Mismatch, Verifications: []report.Verification{{Cluster: "prod", Service: "api"}, {Cluster: "prod", Service: "api"}, {Cluster: "prod", Service: "web", OK: true}}},
			"MISMATCH prod/api: tasks do not run what they should"},
		{report.Report{Outcome: report.RolledBack, Image: image, Reason: "deployment ecs-svc/1 of prod/api (backend:2, sha256:…) failed and ECS rolled it back"},
			"ROLLED BACK deployment ecs-svc/1 of prod/api (backend:2, sha256:…) failed and ECS rolled it back"},
		{report.Report{Outcome: Failed, Kind: "push", EventID: "e9", Reason: "update service prod/api: throttled\nretry"},
			"FAILED push event e9: update service prod/api: throttled retry"},
		{report.Report{Outcome: report.Skipped, Image: image, Reason: "stale event: tag latest …"}, "stale push ignored: content-marketing-swarm-backend:latest@sha256:b18964317305"},
		{report.Report{Outcome: report.Skipped, Image: image, Reason: "1 service …", Skipped: []report.Service{{Service: "api", Why: "paused (pinroll:paused=alice)"}}},
			"PAUSED api: not deployed content-marketing-swarm-backend:latest@sha256:b18964317305"},
	} {
		got := Subject(tc.rep)
		if got != tc.want {
			t.Errorf("Subject:\n got %q\nwant %q", got, tc.want)
		}
		if len(got) >= 100 || !utf8.ValidString(got) {
			t.Errorf("Subject %q is %d bytes or not UTF-8; SNS wants under 100", got, len(got))
		}
	}
}

func TestWorth(t *testing.T) {
	for outcome, want := range map[report.Outcome]bool{
		report.Deployed: true, report.Planned: true, report.Mismatch: true, report.RolledBack: true, Failed: true,
		report.Unchanged: false, report.Verified: false, report.Skipped: false,
	} {
		if got := Worth(report.Report{Outcome: outcome, Reason: "untagged push"}); got != want {
			t.Errorf("Worth(%s) = %v, want %v", outcome, got, want)
		}
	}
	if !Worth(report.Report{Outcome: report.Verified, Changes: []report.Change{{Cluster: "prod", Service: "web"}}}) {
		t.Error("a verification that deployed the next wave is not worth a notification")
	}
	if !Worth(report.Report{Outcome: report.Skipped, Reason: "stale event: …"}) {
		t.Error("a stale push is worth a notification")
	}
	held := []report.Service{{Cluster: "prod", Service: "api", Why: "paused (pinroll:paused=alice)"}}
	if !Worth(report.Report{Outcome: report.Unchanged, Skipped: held}) || Subject(report.Report{Outcome: report.Unchanged, Skipped: held, Image: image}) != "PAUSED api: not deployed content-marketing-swarm-backend:latest@sha256:b18964317305" {
		t.Error("a push that a pause held back is worth a notification, even when the other services were current")
	}
}

type fakeSNS struct{ got []*sns.PublishInput }

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.got = append(f.got, in)
	return &sns.PublishOutput{MessageId: aws.String("m1")}, nil
}

// SQS and Lambda subscribers get the report as the body, as before; Amazon Q (the default)
// gets the custom notification; e-mail gets text.
func TestNotifyBodyIsTheReport(t *testing.T) {
	f := &fakeSNS{}
	topic := &Topic{SNS: f, ARN: "arn:aws:sns:us-east-1:123456789012:pinroll"}
	rep := deployed("api")
	rep.Normalize()
	if sent, err := topic.Notify(context.Background(), rep); !sent || err != nil {
		t.Fatalf("Notify: %v %v", sent, err)
	}
	if sent, _ := topic.Notify(context.Background(), report.Report{Outcome: report.Unchanged}); sent || len(f.got) != 1 {
		t.Error("an unchanged report was published")
	}
	var protocols map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(f.got[0].Message)), &protocols); err != nil || aws.ToString(f.got[0].MessageStructure) != "json" {
		t.Fatalf("message is not a message per protocol: %v", err)
	}
	for _, p := range []string{"sqs", "lambda"} {
		var body report.Report
		if err := json.Unmarshal([]byte(protocols[p]), &body); err != nil {
			t.Fatalf("%s body is not report JSON: %v", p, err)
		}
		if diff := cmp.Diff(rep, body); diff != "" {
			t.Errorf("%s body (-want +got):\n%s", p, diff)
		}
	}
	var chat Chat
	if err := json.Unmarshal([]byte(protocols["default"]), &chat); err != nil || chat.Source != "custom" || chat.Content.Title != Title(rep) {
		t.Errorf("default is not the custom notification: %v %+v", err, chat)
	}
	if aws.ToString(f.got[0].TopicArn) != topic.ARN || aws.ToString(f.got[0].Subject) != ASCII(Subject(rep)) {
		t.Errorf("published %+v", f.got[0])
	}
}

// SNS refuses a subject that is not ASCII (its Publish reference; the emulator does too).
func TestASCIISubjectIsWhatSNSTakes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"api, worker → app:latest@sha256:b18964317305 in prod", "api, worker -> app:latest@sha256:b18964317305 in prod"},
		{"ROLLED BACK deployment… café\n", "ROLLED BACK deployment... caf? "},
		{strings.Repeat("→", 60), strings.Repeat("->", 48) + "..."},
	} {
		got := ASCII(tc.in)
		if got != tc.want || len(got) > MaxSubject {
			t.Errorf("ASCII(%q) = %q (%d bytes), want %q", tc.in, got, len(got), tc.want)
		}
		for _, r := range got {
			if r > 0x7e || r < 0x20 {
				t.Errorf("ASCII(%q) keeps %q", tc.in, r)
			}
		}
	}
}
