// Package notify publishes the reports a person should see — deployments, verification
// failures, rollbacks, failures, stale and paused pushes — to an SNS topic: a one-line human
// subject, and the report JSON as the body.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

// SNS is the part of the SNS API notifications use.
type SNS interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ SNS = (*sns.Client)(nil)

// MaxSubject is SNS's limit: a subject must be under 100 characters.
const MaxSubject = 99

// Failed is the outcome of a notification for an event that ended in an error.
const Failed = report.EventFailed

// Topic publishes to one SNS topic.
type Topic struct {
	SNS SNS
	ARN string
}

// Notify publishes rep when it is worth a person's attention, and says whether it did.
func (t *Topic) Notify(ctx context.Context, rep report.Report) (bool, error) {
	if !Worth(rep) {
		return false, nil
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return false, err
	}
	_, err = t.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(t.ARN),
		Subject:  aws.String(Subject(rep)),
		Message:  aws.String(string(body)),
	})
	if err != nil {
		return false, fmt.Errorf("notify %s: %w", t.ARN, err)
	}
	return true, nil
}

// Worth reports whether a report deserves a notification: anything that changed, failed, or
// was held back — not redeliveries, verifications that passed, or irrelevant events.
func Worth(rep report.Report) bool {
	switch rep.Outcome {
	case report.Deployed, report.Planned, report.Mismatch, report.RolledBack, report.Unverified, report.AwaitingApproval, Failed:
		return true
	case report.Skipped:
		return stale(rep) || len(paused(rep)) > 0
	case report.Unchanged:
		return len(paused(rep)) > 0 // a paused service held back while others were current
	}
	return false
}

// Subject is a one-line summary under SNS's 100-character limit, failures first:
//
//	api, worker → app:latest@sha256:ab12cd34ef56 in prod
//	ROLLED BACK deployment ecs-svc/42 of prod/api (backend:2, sha256:ab12…) failed and …
func Subject(rep report.Report) string {
	image := shortImage(rep.Image)
	var s string
	switch rep.Outcome {
	case report.Mismatch:
		s = "MISMATCH " + strings.Join(serviceNames(rep.Verifications), ", ") + ": tasks do not run what they should"
	case report.Unverified:
		s = "UNVERIFIED " + rep.Reason
	case report.AwaitingApproval:
		s = "APPROVAL NEEDED " + list(heldNames(rep.Held)) + " → " + image
	case report.RolledBack:
		s = "ROLLED BACK " + rep.Reason // "deployment ecs-svc/… of prod/api (backend:2, sha256:…) failed …"
	case Failed:
		s = "FAILED " + rep.Kind + " event " + rep.EventID + ": " + rep.Reason
	case report.Skipped, report.Unchanged:
		if names := paused(rep); len(names) > 0 {
			s = "PAUSED " + list(names) + ": not deployed " + image
		} else {
			s = "stale push ignored: " + image
		}
	default:
		names, clusters := changed(rep.Changes)
		s = list(names) + " → " + image + " in " + strings.Join(clusters, ", ")
		if rep.Outcome == report.Planned {
			s = "dry run: " + s
		}
		if n := len(rep.Failed); n > 0 {
			s = fmt.Sprintf("FAILED %s (no retry helps); ", list(failedNames(rep.Failed))) + s
		}
	}
	return truncate(s, MaxSubject)
}

// shortImage is repository:tag@sha256:<12 hex> without the registry host.
func shortImage(image string) string {
	if i := strings.Index(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.Index(image, "@sha256:"); i >= 0 && len(image) > i+8+12 {
		image = image[:i+8+12]
	}
	return image
}

func heldNames(held []report.Service) []string { return failedNames(held) }

func failedNames(failed []report.Service) []string {
	names := make([]string, len(failed))
	for i, f := range failed {
		names[i] = f.Service
	}
	return names
}

func changed(changes []report.Change) (services, clusters []string) {
	for _, c := range changes {
		services = append(services, c.Service)
		if !slices.Contains(clusters, c.Cluster) {
			clusters = append(clusters, c.Cluster)
		}
	}
	return services, clusters
}

func serviceNames(vs []report.Verification) []string {
	var names []string
	for _, v := range vs {
		if name := v.Cluster + "/" + v.Service; !v.OK && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

func paused(rep report.Report) []string {
	var names []string
	for _, s := range rep.Skipped {
		if strings.HasPrefix(s.Why, "paused") {
			names = append(names, s.Service)
		}
	}
	return names
}

func stale(rep report.Report) bool { return strings.HasPrefix(rep.Reason, "stale event") }

// list joins names, shortening long lists to the first three and a count.
func list(names []string) string {
	if len(names) > 3 {
		return fmt.Sprintf("%s +%d", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

// truncate cuts s to at most max bytes of whole UTF-8 characters, ending with "…", and
// removes line breaks and control characters, which SNS refuses in a subject.
func truncate(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
