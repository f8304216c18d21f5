package pinroll

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// The event patterns are checked by an EventBridge implementation that is not ours: moto's rule
// routing (PutRule with the synthesized pattern, an SQS queue as target, PutEvents, read the queue).
// moto does not implement TestEventPattern and ignores `wildcard`; the patterns use neither.

const motoAccount, motoRegion = "123456789012", "us-east-1"

// startMoto runs moto_server on a free loopback port for the duration of the test.
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatal("moto_server is not installed (pip install 'moto[server]==5.2.1'): the EventBridge pattern cannot be checked")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not start on %s:\n%s", url, log.String())
		}
	}
}

type sampleEvent struct {
	name       string
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// loadEvents reads EventBridge events: the project's samples in events/ and the edge cases in
// testdata/events (other source, storage-class change, …). Files that are not events (the demo
// fleet) are skipped.
func loadEvents(t *testing.T) []sampleEvent {
	t.Helper()
	var files []string
	for _, g := range []string{"../../events/*.json", "testdata/events/*.json"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	var out []sampleEvent
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e sampleEvent
		if json.Unmarshal(b, &e) != nil || e.Source == "" || e.DetailType == "" || len(e.Detail) == 0 {
			continue
		}
		e.name = strings.TrimPrefix(f, "../../")
		out = append(out, e)
	}
	return out
}

// shouldMatchPush is the contract of the push rule, read from the event's content, not its name.
func shouldMatchPush(e sampleEvent) bool {
	var d struct {
		ActionType string  `json:"action-type"`
		Result     string  `json:"result"`
		Tag        *string `json:"image-tag"`
	}
	_ = json.Unmarshal(e.Detail, &d)
	return e.Source == "aws.ecr" && e.DetailType == "ECR Image Action" && d.ActionType == "PUSH" &&
		d.Result == "SUCCESS" && d.Tag != nil && *d.Tag != ""
}

// shouldMatchReplication is the contract of the replication rule: a replica of a tagged image,
// whatever ECR's result (the function skips all but SUCCESS, with the reason).
func shouldMatchReplication(e sampleEvent) bool {
	var d struct {
		ActionType string  `json:"action-type"`
		Tag        *string `json:"image-tag"`
	}
	_ = json.Unmarshal(e.Detail, &d)
	return e.Source == "aws.ecr" && e.DetailType == "ECR Replication Action" && d.ActionType == "REPLICATE" &&
		d.Tag != nil && *d.Tag != ""
}

// router is a rule in moto whose matches land in an SQS queue.
type router struct {
	eb    *eventbridge.Client
	sqs   *sqs.Client
	queue string
}

func newRouter(t *testing.T, ctx context.Context, url, name, pattern string) *router {
	t.Helper()
	cfg := aws.Config{
		Region:      motoRegion,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	r := &router{
		eb:  eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = &url }),
		sqs: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = &url }),
	}
	q, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	r.queue = *q.QueueUrl
	if _, err := r.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(pattern)}); err != nil {
		t.Fatalf("put rule %s: %v", pattern, err)
	}
	queueArn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", motoRegion, motoAccount, name)
	if _, err := r.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(queueArn)}}}); err != nil {
		t.Fatalf("put targets: %v", err)
	}
	return r
}

// route sends every event and returns the names of those the rule delivered. Each event's detail
// carries its name in an extra field, which patterns ignore.
func (r *router) route(t *testing.T, ctx context.Context, events []sampleEvent) []string {
	t.Helper()
	for _, e := range events {
		var detail map[string]any
		if err := json.Unmarshal(e.Detail, &detail); err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		detail["x-pinroll-test-event"] = e.name
		b, _ := json.Marshal(detail)
		out, err := r.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			Source: aws.String(e.Source), DetailType: aws.String(e.DetailType), Detail: aws.String(string(b)), Resources: e.Resources,
		}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("put %s: %v %+v", e.name, err, out)
		}
	}
	var got []string
	for empty := 0; empty < 2; {
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &r.queue, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++
			continue
		}
		for _, m := range out.Messages {
			var ev struct {
				Detail map[string]any `json:"detail"`
			}
			if err := json.Unmarshal([]byte(*m.Body), &ev); err != nil {
				t.Fatalf("message %s: %v", *m.Body, err)
			}
			got = append(got, fmt.Sprint(ev.Detail["x-pinroll-test-event"]))
			r.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &r.queue, ReceiptHandle: m.ReceiptHandle})
		}
	}
	sort.Strings(got)
	return got
}

// patternJSON is a rule's pattern from the synthesized template, with the pseudo parameters given
// moto's values.
func patternJSON(t *testing.T, s *synthesized, rule string) string {
	t.Helper()
	b, err := json.Marshal(s.props(rule)["EventPattern"])
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(P, "aws", R, motoRegion, A, motoAccount).Replace(string(b))
}

// GIVEN the synthesized push rule, WHEN every sample event is put on moto's bus, THEN exactly the
// tagged successful pushes are delivered.
func TestPushPatternRoutesOnlyTaggedPushes(t *testing.T) {
	full, min := fixtures(t)
	url := startMoto(t)
	ctx := context.Background()
	events := loadEvents(t)

	var want []string
	for _, e := range events {
		if shouldMatchPush(e) {
			want = append(want, e.name)
		}
	}
	sort.Strings(want)
	if len(want) == 0 || len(want) == len(events) {
		t.Fatalf("the samples must hold events that match and events that do not: %d of %d match", len(want), len(events))
	}
	got := newRouter(t, ctx, url, "push-all", patternJSON(t, min, "PushRule")).route(t, ctx, events)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events delivered by the push rule (-want +got):\n%s", diff)
	}

	// The repository filter (full stack: "app" and prefix "team-a/") is exact for names: the
	// incident's look-alike repositories must not get through.
	var tagged sampleEvent
	for _, e := range events {
		if shouldMatchPush(e) {
			tagged = e
			break
		}
	}
	var repoEvents []sampleEvent
	for _, repo := range []string{"app", "app-dev", "my-app", "team-a/api", "team-a", "team-ab/api"} {
		var d map[string]any
		_ = json.Unmarshal(tagged.Detail, &d)
		d["repository-name"] = repo
		b, _ := json.Marshal(d)
		repoEvents = append(repoEvents, sampleEvent{name: repo, Source: tagged.Source, DetailType: tagged.DetailType, Detail: b})
	}
	got = newRouter(t, ctx, url, "push-filtered", patternJSON(t, full, "PushRule")).route(t, ctx, repoEvents)
	if diff := cmp.Diff([]string{"app", "team-a/api"}, got); diff != "" {
		t.Errorf("repositories delivered by the filtered push rule (-want +got):\n%s", diff)
	}

	// The deployment rule (full stack: cluster prod, and the cluster ARN shared in another account)
	// takes finished deployments of services in those clusters only.
	deploy := func(name, resource, eventName string) sampleEvent {
		return sampleEvent{name: name, Source: "aws.ecs", DetailType: "ECS Deployment State Change", Resources: []string{resource},
			Detail: json.RawMessage(`{"eventType":"INFO","eventName":"` + eventName + `","deploymentId":"ecs-svc/1"}`)}
	}
	svc := "arn:aws:ecs:" + motoRegion + ":" + motoAccount + ":service/"
	got = newRouter(t, ctx, url, "deployments", patternJSON(t, full, "DeploymentRule")).route(t, ctx, []sampleEvent{
		deploy("prod-completed", svc+"prod/api", "SERVICE_DEPLOYMENT_COMPLETED"),
		deploy("prod-failed", svc+"prod/api", "SERVICE_DEPLOYMENT_FAILED"),
		deploy("prod-in-progress", svc+"prod/api", "SERVICE_DEPLOYMENT_IN_PROGRESS"),
		deploy("production-completed", svc+"production/api", "SERVICE_DEPLOYMENT_COMPLETED"),
		deploy("staging-completed", svc+"staging/api", "SERVICE_DEPLOYMENT_COMPLETED"),
		deploy("shared-completed", "arn:aws:ecs:eu-west-1:111122223333:service/shared/web", "SERVICE_DEPLOYMENT_COMPLETED"),
	})
	if diff := cmp.Diff([]string{"prod-completed", "prod-failed", "shared-completed"}, got); diff != "" {
		t.Errorf("deployments delivered by the deployment rule (-want +got):\n%s", diff)
	}

	// Forwarded from a target: moto's account plays the target account 777788889999 of a hub in
	// another account. Its prod deployments get through, by the event's account and the cluster
	// name in that account; a hub that does not list the account takes none of them.
	hub := patternJSON(t, full, "DeploymentRule") // the hub's account is moto's here: move it
	asTarget := strings.NewReplacer(motoAccount, "000011112222", "777788889999", motoAccount).Replace(hub)
	notListed := strings.NewReplacer(motoAccount, "000011112222").Replace(hub)
	forwarded := []sampleEvent{
		deploy("target-prod-completed", svc+"prod/api", "SERVICE_DEPLOYMENT_COMPLETED"),
		deploy("target-staging-completed", svc+"staging/api", "SERVICE_DEPLOYMENT_COMPLETED"),
	}
	got = newRouter(t, ctx, url, "deployments-target", asTarget).route(t, ctx, forwarded)
	if diff := cmp.Diff([]string{"target-prod-completed"}, got); diff != "" {
		t.Errorf("deployments of a target account (-want +got):\n%s", diff)
	}
	got = newRouter(t, ctx, url, "deployments-other", notListed).route(t, ctx, forwarded)
	if len(got) != 0 {
		t.Errorf("deployments of an account that is no target were delivered: %v", got)
	}
}

// GIVEN the synthesized replication rule, WHEN every sample event is put on moto's bus, THEN
// exactly the replicas of tagged images are delivered (SUCCESS and failed results alike), with the
// push rule's repository filter; no push or other event.
func TestReplicationPatternRoutesReplicas(t *testing.T) {
	full, min := fixtures(t)
	url := startMoto(t)
	ctx := context.Background()
	events := loadEvents(t)

	var want []string
	var replica sampleEvent
	for _, e := range events {
		if shouldMatchReplication(e) {
			want = append(want, e.name)
			replica = e
		}
	}
	sort.Strings(want)
	for _, name := range []string{"events/replicate-us-west-2.json", "events/replicate-failed.json"} {
		if !slices.Contains(want, name) {
			t.Errorf("%s is not among the replicas the rule must deliver: %v", name, want)
		}
	}
	got := newRouter(t, ctx, url, "replication-all", patternJSON(t, min, "ReplicationRule")).route(t, ctx, events)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events delivered by the replication rule (-want +got):\n%s", diff)
	}
	// The push rule takes no replica: the function sees each image once per region.
	got = newRouter(t, ctx, url, "push-replicas", patternJSON(t, min, "PushRule")).route(t, ctx, events)
	for _, name := range got {
		if slices.Contains(want, name) {
			t.Errorf("the push rule delivered the replica %s", name)
		}
	}

	var repoEvents []sampleEvent
	for _, repo := range []string{"app", "app-dev", "team-a/api", "team-ab/api"} {
		var d map[string]any
		_ = json.Unmarshal(replica.Detail, &d)
		d["repository-name"] = repo
		b, _ := json.Marshal(d)
		repoEvents = append(repoEvents, sampleEvent{name: repo, Source: replica.Source, DetailType: replica.DetailType, Detail: b})
	}
	got = newRouter(t, ctx, url, "replication-filtered", patternJSON(t, full, "ReplicationRule")).route(t, ctx, repoEvents)
	if diff := cmp.Diff([]string{"app", "team-a/api"}, got); diff != "" {
		t.Errorf("repositories delivered by the filtered replication rule (-want +got):\n%s", diff)
	}
}
