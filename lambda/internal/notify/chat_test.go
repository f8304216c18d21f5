package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

const (
	home    = "111111111111"
	target2 = "222222222222"
	digest  = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
	other   = "sha256:1016926d84bd0c2f8f7a3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"
	td      = "arn:aws:ecs:us-east-1:111111111111:task-definition/"
)

func change(account, cluster, service string, rev int) report.Change {
	return report.Change{
		Account: account, Cluster: cluster, Service: service,
		TaskDefinition:         fmt.Sprintf("%s%s:%d", td, service, rev),
		PreviousTaskDefinition: fmt.Sprintf("%s%s:%d", td, service, rev-1),
		Containers:             []report.ContainerChange{{Name: "app", From: "123456789012.dkr.ecr.us-east-1.amazonaws.com/content-marketing-swarm-backend:latest", To: image}},
	}
}

func check(account, cluster, service, task string, running string) report.Verification {
	v := report.Verification{Account: account, Cluster: cluster, Service: service, Task: "arn:aws:ecs:us-east-1:" + account + ":task/" + cluster + "/" + task, Container: "app", Want: digest, Running: running, OK: running == digest}
	if running == "" {
		v.Why = "ECS reports no digest for this container"
	}
	return v
}

// reports are realistic reports of every outcome, in one account and in several.
func reports() map[string]report.Report {
	base := report.Report{EventID: "13cde686-6f1e-4b3c-9f0a-2b1c3d4e5f60", Kind: "push", Image: image}
	with := func(f func(*report.Report)) report.Report {
		r := base
		f(&r)
		return r
	}
	many := make([]report.Change, 150)
	for i := range many {
		many[i] = change([]string{home, target2}[i%2], "prod", fmt.Sprintf("service-with-a-long-name-%03d", i), 2)
	}
	return map[string]report.Report{
		"deployed": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Deployed, "2 services in 1 cluster now pinned to sha256:b189…"
			r.Changes = []report.Change{change(home, "prod", "api", 8), change(home, "prod", "worker", 3)}
			r.Skipped = []report.Service{{Account: home, Cluster: "prod", Service: "legacy", Why: "deployment controller is CODE_DEPLOY"}}
			r.NearMisses = []report.NearMiss{{Account: home, Cluster: "dev", Service: "api", Container: "app", Image: "…/content-marketing-swarm-dev-backend:latest", Why: "different repository"}}
		}),
		"deployed, two accounts, one failed": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Deployed, "2 services in 2 accounts now pinned to sha256:b189…; 1 failed"
			r.Changes = []report.Change{change(target2, "prod", "api", 8), change(home, "prod", "api", 5)}
			r.Failed = []report.Service{{Account: target2, Cluster: "prod", Service: "billing", Why: "the task definition has 47 tags; ECS allows 50 and pinroll adds 4"}}
		}),
		"deployed, 150 services": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Deployed, "150 services in 2 accounts now pinned to sha256:b189…"
			r.Changes = many
		}),
		"awaiting approval, two accounts": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.AwaitingApproval, "2 services registered for "+digest+", waiting for approval (see held: pinroll approve --cluster C --service S)"
			r.Held = []report.Service{{Account: home, Cluster: "prod", Service: "payments", Why: "waits for approval of payments:9 (" + digest + "): pinroll approve --cluster prod --service payments"}, {Account: target2, Cluster: "prod", Service: "payments", Why: "waits for approval of payments:9 (" + digest + "): pinroll approve --cluster prod --service payments"}}
		}),
		"deployed, one held": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Deployed, "1 service in 1 cluster now pinned to "+digest+"; 1 service wait for approval (see held)"
			r.Changes = []report.Change{change(home, "prod", "api", 8)}
			r.Held = []report.Service{{Account: home, Cluster: "prod", Service: "payments", Why: "waits for approval of payments:9 (" + digest + "): pinroll approve --cluster prod --service payments"}}
		}),
		"planned": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Planned, "dry run: 1 service would be pinned to sha256:b189…"
			r.Changes = []report.Change{change(home, "prod", "api", 8)}
		}),
		"unchanged": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Unchanged, "every matching service already pinned"
			r.Unchanged = []report.Service{{Account: home, Cluster: "prod", Service: "api", Why: "already pinned"}}
		}),
		"unchanged, one paused": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Unchanged, "1 service already pinned, 1 paused"
			r.Unchanged = []report.Service{{Account: home, Cluster: "prod", Service: "api", Why: "already pinned"}}
			r.Skipped = []report.Service{{Account: target2, Cluster: "prod", Service: "checkout", Why: "paused (pinroll:paused=alice@laptop 2026-11-28T03:12:09Z INC-42)"}}
		}),
		"skipped, stale": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Skipped, "stale event: tag latest now points to "+other
		}),
		"skipped, untagged": with(func(r *report.Report) {
			r.Outcome, r.Reason = report.Skipped, "untagged push"
		}),
		"verified": with(func(r *report.Report) {
			r.Kind, r.Outcome, r.Reason = "deployment", report.Verified, "prod/api: every running container checked (2) runs the digest it should"
			r.Verifications = []report.Verification{check(home, "prod", "api", "a1", digest), check(home, "prod", "api", "a2", digest)}
		}),
		"mismatch": with(func(r *report.Report) {
			r.Kind, r.Outcome, r.Reason = "deployment", report.Mismatch, "prod/api: 1 of 3 checks failed: running tasks do not run the digest they should"
			r.Verifications = []report.Verification{check(target2, "prod", "api", "a1", digest), check(target2, "prod", "api", "a2", other), check(target2, "prod", "api", "a3", digest)}
		}),
		"unverified": with(func(r *report.Report) {
			r.Kind, r.Outcome, r.Reason = "deployment", report.Unverified, "prod/api: 1 of 1 checks could not be made: prod/api: ECS reports no digest for this container"
			r.Verifications = []report.Verification{check(home, "prod", "api", "a1", "")}
		}),
		"unverified, nothing checked": with(func(r *report.Report) {
			r.Kind, r.Outcome, r.Reason = "deployment", report.Unverified, "prod/api: nothing was checked: no running task with a container whose digest can be known"
			r.Deployment = &report.DeploymentRef{Account: home, Cluster: "prod", Service: "api", ID: "ecs-svc/41"}
		}),
		"rolled back": with(func(r *report.Report) {
			r.Kind, r.Outcome = "deployment", report.RolledBack
			r.Reason = "deployment ecs-svc/42 of prod/api (backend:2, " + digest + ") failed and ECS rolled it back: tasks failed to start"
			r.Deployment = &report.DeploymentRef{Account: home, Cluster: "prod", Service: "api", ID: "ecs-svc/42"}
		}),
		"failed": with(func(r *report.Report) {
			r.Outcome, r.Reason = Failed, "update service prod/worker: ThrottlingException: Rate exceeded\n(after 5 attempts)"
			r.Changes = []report.Change{change(home, "prod", "api", 8)}
		}),
		"failed, invalid event": {Kind: "invalid", Outcome: Failed, Reason: "event has no detail-type"},
		"reconcile, missing images": {EventID: "sched-1", Kind: "reconcile", Outcome: report.Unchanged,
			Reason:        "1 repository tag pinned in scope, all current; 2 pinned images ECR can no longer serve (see missing_images)",
			MissingImages: missingImages()},
		"deployed, with a missing image": with(func(r *report.Report) {
			r.Kind, r.Outcome, r.Reason = "reconcile", report.Deployed, "reconciled app:latest: a push event had been missed; 1 service updated"
			r.Changes = []report.Change{change(home, "prod", "api", 8)}
			r.MissingImages = missingImages()[1:]
		}),
	}
}

func missingImages() []report.MissingImage {
	host := home + ".dkr.ecr.us-east-1.amazonaws.com"
	return []report.MissingImage{
		{Account: home, Cluster: "prod", Service: "worker", Revision: "worker:1", Image: host + "/app@" + digest,
			Why: "not in ECR (expired or deleted): an ECR lifecycle rule expired it, or someone deleted it"},
		{Account: home, Cluster: "prod", Service: "api", Revision: "api:7", Image: host + "/app:latest@" + other,
			Why: "in the previous revision, which `pinroll rollback` restores: archived since 2026-11-30T00:00:00Z (ECR archive storage class; tasks cannot pull it): restore it with …"},
	}
}

func TestMissingImagesNotify(t *testing.T) {
	reps := reports()
	rep := reps["reconcile, missing images"]
	if !Worth(rep) {
		t.Fatal("a reconciliation that found missing images is not notified")
	}
	if got, want := Subject(rep), "MISSING IMAGE prod/worker: "+digest[:19]+" (expired) and 1 more"; got != want {
		t.Errorf("Subject %q, want %q", got, want)
	}
	if got, want := Subject(reps["deployed, with a missing image"]), "MISSING IMAGE prod/api: "+other[:19]+" (archived); api → "; !strings.HasPrefix(got, want) || len(got) >= 100 {
		t.Errorf("Subject %q, want it to start %q, under 100 bytes", got, want)
	}
	topic := &Topic{}
	c := topic.Chat(rep)
	if !strings.HasPrefix(c.Content.Title, "🧨 MISSING IMAGE") {
		t.Errorf("title %q", c.Content.Title)
	}
	for _, want := range []string{"🧨 Missing from ECR", "`prod/worker` worker:1 `app@" + digest[:19] + "`", "`prod/api` api:7", "previous revision"} {
		if !strings.Contains(c.Content.Description, want) {
			t.Errorf("description lacks %q:\n%s", want, c.Content.Description)
		}
	}
	if mail := Email(rep, nil); !strings.Contains(mail, "prod/worker") || !strings.Contains(mail, "MISSING IMAGE worker:1 "+home+".dkr.ecr.us-east-1.amazonaws.com/app@"+digest) {
		t.Errorf("the e-mail does not list the missing images:\n%s", mail)
	}
	steps := strings.Join(c.Content.NextSteps, "\n")
	for _, want := range []string{
		"aws ecr update-image-storage-class --registry-id " + home + " --repository-name app --image-id imageDigest=" + other + " --target-storage-class STANDARD",
		"push the same build again",
		"pinroll verify --cluster prod --service worker,api",
	} {
		if !strings.Contains(steps, want) {
			t.Errorf("next steps lack %q:\n%s", want, steps)
		}
	}
}

var allOutcomes = []report.Outcome{report.Deployed, report.Planned, report.Unchanged, report.AwaitingApproval, report.Skipped, report.Verified, report.Mismatch, report.RolledBack, report.Unverified, Failed}

// Every report that notifies — Worth decides which — publishes a custom notification that
// the documented schema accepts (its required fields and its limits), a subject e-mail
// accepts, the report for SQS and Lambda, and a message SNS accepts.
func TestEveryNotificationFollowsTheSchema(t *testing.T) {
	notified := map[report.Outcome]int{}
	for name, rep := range reports() {
		if !Worth(rep) {
			continue
		}
		notified[rep.Outcome]++
		for _, topic := range []*Topic{{}, {Roles: TargetRoles([]string{"arn:aws:iam::" + target2 + ":role/pinroll-target"})}} {
			t.Run(name, func(t *testing.T) {
				f := &fakeSNS{}
				topic.SNS, topic.ARN = f, "arn:aws:sns:us-east-1:111111111111:pinroll"
				if sent, err := topic.Notify(context.Background(), rep); !sent || err != nil {
					t.Fatalf("Notify: %v %v", sent, err)
				}
				in := f.got[0]
				if aws.ToString(in.MessageStructure) != "json" {
					t.Errorf("MessageStructure %q, want json (a message per protocol)", aws.ToString(in.MessageStructure))
				}
				subject := aws.ToString(in.Subject)
				if subject == "" || len(subject) > MaxSubject || !utf8.ValidString(subject) || strings.ContainsAny(subject, "\n\r\t") {
					t.Errorf("subject %q (%d bytes): e-mail wants one line under 100", subject, len(subject))
				}
				msg := aws.ToString(in.Message)
				if len(msg) > MaxMessage {
					t.Errorf("message is %d bytes, over SNS's %d", len(msg), MaxMessage)
				}
				var protocols map[string]string
				if err := json.Unmarshal([]byte(msg), &protocols); err != nil {
					t.Fatalf("message is not a JSON object of strings: %v", err)
				}
				checkSchema(t, protocols["default"])
				for _, p := range []string{"sqs", "lambda"} {
					var body report.Report
					if err := json.Unmarshal([]byte(protocols[p]), &body); err != nil || body.Outcome != rep.Outcome || body.EventID != rep.EventID || len(body.Changes) != len(rep.Changes) {
						t.Errorf("%s: not the report: %v %.200s", p, err, protocols[p])
					}
				}
				if subject != ASCII(Subject(rep)) {
					t.Errorf("published subject %q, want the ASCII of %q (SNS refuses any other)", subject, Subject(rep))
				}
				subject = Subject(rep) // the e-mail and SMS texts keep its arrows
				if email := protocols["email"]; !strings.HasPrefix(email, subject+"\n") || strings.HasPrefix(email, "{") {
					t.Errorf("email text starts %.100q, want the subject and a readable table", email)
				}
				if protocols["sms"] != subject {
					t.Errorf("sms %q, want the subject", protocols["sms"])
				}
			})
		}
	}
	for _, o := range allOutcomes {
		if want := o != report.Verified; (notified[o] > 0) != want {
			t.Errorf("outcome %s: %d reports notified; want some: %v", o, notified[o], want)
		}
	}
}

// checkSchema checks a custom notification against the schema of "Custom notifications using
// Amazon Q Developer in chat applications": decoded generically, not into this package's types.
func checkSchema(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatal("not UTF-8")
	}
	var n map[string]any
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	for k := range n {
		if !strings.Contains(" version source id content metadata ", " "+k+" ") {
			t.Errorf("top-level key %q is not in the schema", k)
		}
	}
	if n["version"] != "1.0" || n["source"] != "custom" {
		t.Errorf("version %v source %v, want 1.0 and custom (required)", n["version"], n["source"])
	}
	if id, ok := n["id"]; ok {
		if _, isString := id.(string); !isString {
			t.Errorf("id %v is not a string", id)
		}
	}
	content, ok := n["content"].(map[string]any)
	if !ok {
		t.Fatalf("content is missing: %s", s)
	}
	for k := range content {
		if !strings.Contains(" textType title description nextSteps keywords ", " "+k+" ") {
			t.Errorf("content key %q is not in the schema", k)
		}
	}
	if tt, ok := content["textType"]; ok && tt != "client-markdown" {
		t.Errorf("textType %v: only client-markdown is supported", tt)
	}
	str := func(field string, v any, max int) {
		s, ok := v.(string)
		if !ok {
			t.Errorf("%s %v is not a string", field, v)
		}
		if len(s) > max || utf8.RuneCountInString(s) > max {
			t.Errorf("%s is %d bytes, over %d: %.80q…", field, len(s), max, s)
		}
	}
	if d, ok := content["description"].(string); !ok || strings.TrimSpace(d) == "" {
		t.Errorf("description %v: required", content["description"])
	}
	str("description", content["description"], MaxDescription)
	if v, ok := content["title"]; ok {
		str("title", v, MaxTitle)
	}
	for field, max := range map[string]int{"nextSteps": MaxNextStep, "keywords": MaxKeyword} {
		v, ok := content[field]
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok || len(list) > 10 {
			t.Errorf("%s %v: a list of at most 10 strings", field, v)
		}
		for _, item := range list {
			str(field+" item", item, max)
		}
	}
	if md, ok := n["metadata"]; ok {
		m, ok := md.(map[string]any)
		if !ok {
			t.Fatalf("metadata %v is not an object", md)
		}
		for k, v := range m {
			switch k {
			case "threadId", "summary", "eventType":
				str("metadata."+k, v, 1<<20)
			case "relatedResources":
				for _, r := range v.([]any) {
					str("relatedResources item", r, 1<<20)
				}
			case "additionalContext":
				for ck, cv := range v.(map[string]any) {
					str("additionalContext."+ck, cv, 1<<20)
				}
			case "enableCustomActions":
			default:
				t.Errorf("metadata key %q is not in the schema", k)
			}
		}
	}
}

func TestTitleAndDescription(t *testing.T) {
	reps := reports()
	for _, tc := range []struct {
		name, title, description string
	}{
		{"deployed",
			"✅ Deployed content-marketing-swarm-backend:latest@sha256:b18964317305",
			"2 services in 1 cluster now pinned to sha256:b189…\n" +
				"✅ Deployed (2)\n" +
				"• `prod/api` app → `sha256:b18964317305` (api:7 → api:8)\n" +
				"• `prod/worker` app → `sha256:b18964317305` (worker:2 → worker:3)\n" +
				"Left alone: 1 skipped, 1 near miss not touched."},
		{"deployed, two accounts, one failed",
			"❌ FAILED for 1 service; ✅ Deployed content-marketing-swarm-backend:latest@sha256:b18964317305",
			"2 services in 2 accounts now pinned to sha256:b189…; 1 failed\n" +
				"❌ Failed, not deployed (1)\n" +
				"account 222222222222\n" +
				"• `prod/billing`: the task definition has 47 tags; ECS allows 50 and pinroll adds 4\n" +
				"✅ Deployed (2)\n" +
				"account 111111111111\n" +
				"• `prod/api` app → `sha256:b18964317305` (api:4 → api:5)\n" +
				"account 222222222222\n" +
				"• `prod/api` app → `sha256:b18964317305` (api:7 → api:8)"},
		{"mismatch",
			"🚨 MISMATCH content-marketing-swarm-backend:latest@sha256:b18964317305",
			"prod/api: 1 of 3 checks failed: running tasks do not run the digest they should\n" +
				"🚨 Mismatch: tasks not running the pinned digest (1)\n" +
				"• `prod/api` task a2 app runs `sha256:1016926d84bd`, want `sha256:b18964317305`\n" +
				"✅ Verified (1)\n" +
				"• `prod/api` app: 2 tasks run `sha256:b18964317305`"},
		{"rolled back",
			"↩️ ROLLED BACK content-marketing-swarm-backend:latest@sha256:b18964317305",
			"deployment ecs-svc/42 of prod/api (backend:2, " + digest + ") failed and ECS rolled it back: tasks failed to start\n" +
				"↩️ Rolled back (1)\n" +
				"• `prod/api` `sha256:b18964317305`"},
		{"unchanged, one paused",
			"⏸️ PAUSED, not deployed: content-marketing-swarm-backend:latest@sha256:b18964317305",
			"1 service already pinned, 1 paused\n" +
				"⏸️ Paused, not deployed (1)\n" +
				"account 222222222222\n" +
				"• `prod/checkout`: paused (pinroll:paused=alice@laptop 2026-11-28T03:12:09Z INC-42)\n" +
				"Left alone: 1 unchanged."},
		{"awaiting approval, two accounts",
			"✋ APPROVAL NEEDED content-marketing-swarm-backend:latest@sha256:b18964317305",
			"2 services registered for " + digest + ", waiting for approval (see held: pinroll approve --cluster C --service S)\n" +
				"✋ Waiting for approval (2)\n" +
				"account 111111111111\n" +
				"• `prod/payments` → `sha256:b18964317305`: waits for approval of payments:9 (" + digest + "): pinroll approve --cluster prod --service payments\n" +
				"account 222222222222\n" +
				"• `prod/payments` → `sha256:b18964317305`: waits for approval of payments:9 (" + digest + "): pinroll approve --cluster prod --service payments"},
		{"failed, invalid event", "❌ FAILED invalid event", "event has no detail-type"},
	} {
		rep := reps[tc.name]
		if diff := cmp.Diff(tc.title, Title(rep)); diff != "" {
			t.Errorf("%s: title (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.description, Description(rep)); diff != "" {
			t.Errorf("%s: description (-want +got):\n%s", tc.name, diff)
		}
	}
}

// A long report is cut within the documented 8,000 characters, and says how many entries it
// left out: with the ones shown, every service.
func TestDescriptionIsBounded(t *testing.T) {
	rep := reports()["deployed, 150 services"]
	d := Description(rep)
	if len(d) > MaxDescription {
		t.Fatalf("description is %d bytes", len(d))
	}
	m := regexp.MustCompile(`\n… and (\d+) more \(the report has them all\)$`).FindStringSubmatch(d)
	if m == nil {
		t.Fatalf("description does not end with … and N more: %q", d[len(d)-100:])
	}
	var more int
	fmt.Sscan(m[1], &more)
	if shown := strings.Count(d, "\n• "); shown+more != 150 || shown < 20 {
		t.Errorf("%d shown + %d more, want 150 with a useful number shown", shown, more)
	}
	if !strings.Contains(d, "account 111111111111\n") || strings.Contains(d, "❌") {
		t.Errorf("description starts %q", d[:300])
	}
}

func TestNextSteps(t *testing.T) {
	reps := reports()
	roles := TargetRoles([]string{"arn:aws:iam::222222222222:role/ops/pinroll-target"})
	for _, tc := range []struct {
		name  string
		roles map[string]string
		want  []string
	}{
		{"deployed", nil, []string{
			"Verify: `pinroll verify --cluster prod --service api,worker` in account 111111111111 (from another account add `--role arn:aws:iam::111111111111:role/<target role>`)",
			"Roll back: `pinroll rollback --cluster prod --service api` in account 111111111111 (from another account add `--role arn:aws:iam::111111111111:role/<target role>`)",
			"Roll back: `pinroll rollback --cluster prod --service worker` in account 111111111111 (from another account add `--role arn:aws:iam::111111111111:role/<target role>`)",
		}},
		{"deployed, two accounts, one failed", roles, []string{
			"Verify: `pinroll verify --cluster prod --service api,billing --role arn:aws:iam::222222222222:role/ops/pinroll-target`",
			"Verify: `pinroll verify --cluster prod --service api`",
			"Roll back: `pinroll rollback --cluster prod --service api --role arn:aws:iam::222222222222:role/ops/pinroll-target`",
			"Roll back: `pinroll rollback --cluster prod --service api`",
		}},
		{"mismatch", roles, []string{
			"Verify: `pinroll verify --cluster prod --service api --role arn:aws:iam::222222222222:role/ops/pinroll-target`",
			"Roll back: `pinroll rollback --cluster prod --service api --role arn:aws:iam::222222222222:role/ops/pinroll-target`",
		}},
		{"unverified, nothing checked", roles, []string{"Verify: `pinroll verify --cluster prod --service api`"}},
		{"rolled back", roles, []string{
			"ECS already runs the previous revision; fix the image and push again.",
			"Verify: `pinroll verify --cluster prod --service api`",
		}},
		{"awaiting approval, two accounts", roles, []string{
			"Approve: `pinroll approve --cluster prod --service payments`",
			"Approve: `pinroll approve --cluster prod --service payments --role arn:aws:iam::222222222222:role/ops/pinroll-target`",
			"Or reject (it keeps what it runs): `pinroll reject --cluster prod --service payments`",
			"Or reject (it keeps what it runs): `pinroll reject --cluster prod --service payments --role arn:aws:iam::222222222222:role/ops/pinroll-target`",
		}},
		{"deployed, one held", roles, []string{
			"Approve: `pinroll approve --cluster prod --service payments`",
			"Or reject (it keeps what it runs): `pinroll reject --cluster prod --service payments`",
			"Verify: `pinroll verify --cluster prod --service api`",
			"Roll back: `pinroll rollback --cluster prod --service api`",
		}},
		{"unchanged, one paused", roles, []string{
			"Resume: `pinroll resume --cluster prod --service checkout --role arn:aws:iam::222222222222:role/ops/pinroll-target`",
		}},
		{"planned", nil, []string{
			"Show the plan again: `pinroll plan --repository content-marketing-swarm-backend --tag latest --digest " + digest + "`",
		}},
	} {
		got := (&Topic{Roles: tc.roles}).NextSteps(reps[tc.name])
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: next steps (-want +got):\n%s", tc.name, diff)
		}
	}
	many := (&Topic{Roles: roles}).NextSteps(reps["deployed, 150 services"])
	if len(many) != MaxNextSteps || !strings.HasPrefix(many[len(many)-1], "… and ") {
		t.Errorf("150 services: %d steps, last %q", len(many), many[len(many)-1])
	}
	for _, s := range many {
		if len(s) > MaxNextStep {
			t.Errorf("step of %d bytes: %s", len(s), s)
		}
	}
}

// A report too large to travel twice within SNS's 256 KiB still notifies the channel, and
// says where the report is.
func TestHugeReportStillNotifies(t *testing.T) {
	rep := reports()["deployed"]
	rep.Changes = nil
	for i := range 3000 {
		rep.Changes = append(rep.Changes, change(home, "prod", fmt.Sprintf("svc-%04d", i), 2))
	}
	msg, err := (&Topic{}).Message(rep)
	if err != nil || len(msg) > MaxMessage {
		t.Fatalf("message of %d bytes: %v", len(msg), err)
	}
	var protocols map[string]string
	if err := json.Unmarshal([]byte(msg), &protocols); err != nil {
		t.Fatal(err)
	}
	if _, ok := protocols["sqs"]; ok {
		t.Error("sqs got a report SNS cannot carry")
	}
	checkSchema(t, protocols["default"])
	var chat Chat
	if err := json.Unmarshal([]byte(protocols["default"]), &chat); err != nil || !strings.HasPrefix(chat.Metadata.AdditionalContext["report"], "omitted: ") {
		t.Errorf("the notification does not say the report was omitted: %v %v", err, chat.Metadata.AdditionalContext)
	}
	if !strings.Contains(protocols["email"], "cut to fit one SNS message") {
		t.Errorf("email %.200q…", protocols["email"])
	}
}

func TestTargetRoles(t *testing.T) {
	got := TargetRoles([]string{"arn:aws:iam::222222222222:role/pinroll-target", "arn:aws:iam::333333333333:role/ops/pinroll-target", "not-an-arn"})
	want := map[string]string{"222222222222": "arn:aws:iam::222222222222:role/pinroll-target", "333333333333": "arn:aws:iam::333333333333:role/ops/pinroll-target"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
	if TargetRoles(nil) == nil {
		t.Error("no roles must still mean known: every account is pinroll's own")
	}
}

// A staged rollout's halted wave has its own section, and the next step that goes on anyway;
// approve and reject are offered for what waits for approval only.
func TestAHaltedWaveSaysHowToGoOn(t *testing.T) {
	image := "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest@" + digest
	rep := report.Report{
		EventID: "e1", Kind: "deployment", Image: image, Outcome: report.RolledBack,
		Reason: "deployment ecs-svc/1 of prod/web (web:2, " + digest + ") failed and ECS rolled it back",
		Held: []report.Service{
			{Account: home, Cluster: "prod", Service: "edge", Why: "wave 2 waits: wave 1 halted: prod/web runs web:1, not web:2 it was deployed; edge:2 (" + digest + ") is registered and held"},
			{Account: home, Cluster: "prod", Service: "payments", Why: "waits for approval of payments:9 (" + digest + "): pinroll approve --cluster prod --service payments"},
		},
	}
	desc := Description(rep)
	waves, approval := strings.Index(desc, "⏳ Waiting for their wave"), strings.Index(desc, "✋ Waiting for approval")
	if waves < 0 || approval < 0 || !strings.Contains(desc[waves:], "prod/edge") || strings.Contains(desc[approval:waves], "prod/edge") {
		t.Errorf("description does not put prod/edge under its wave and prod/payments under approval:\n%s", desc)
	}
	steps := strings.Join((&Topic{}).NextSteps(rep), "\n")
	if !strings.Contains(steps, "pinroll release --image "+image) {
		t.Errorf("next steps lack the release of the halted wave:\n%s", steps)
	}
	if strings.Contains(steps, "--service edge") || !strings.Contains(steps, "pinroll approve --cluster prod --service payments") {
		t.Errorf("next steps offer approve/reject for the wrong services:\n%s", steps)
	}
}
