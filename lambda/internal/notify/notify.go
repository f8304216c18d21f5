// Package notify publishes the reports a person should see — deployments, verification
// failures, rollbacks, failures, stale and paused pushes — to an SNS topic, one message per
// report with a text for each kind of subscriber (Publish with MessageStructure "json"):
//
//   - default — Amazon Q Developer in chat applications, and every protocol not named below
//     (http, https, email-json, firehose, application): the custom-notification JSON Amazon Q
//     renders in Slack and Microsoft Teams (see Chat);
//   - sqs and lambda: the report JSON, as before, so scripts and queues read the report;
//   - email: the subject line, the report as a readable table (report.Summary) and the next
//     steps — not JSON;
//   - sms: the subject line.
//
// The subject (under SNS's 100 characters) is what e-mail shows as its subject; Amazon Q
// ignores it.
//
// Why per-protocol messages rather than the report in a message attribute, a field of the
// notification's metadata, or a second topic: SNS sends message attributes only when the
// message structure is a string, not JSON (SNS Developer Guide, "Amazon SNS message
// attributes"), so one body would go to every protocol and e-mail would show the chat JSON; every consumer of the report would have to move from the body to an
// attribute; and an attribute counts against the same 256 KiB as the body. Metadata's
// additionalContext is a string map Amazon Q reads for custom actions, documented without
// sizes: no place for a document of many kilobytes. A second topic needs a second
// configuration variable and subscription for what one Publish does. The cost of
// per-protocol messages: the report travels twice (sqs, lambda) within the 256 KiB; a report
// too large for that goes to SQS and Lambda as the custom notification instead, which says so
// in metadata.additionalContext.report (see Message) — the function's log always has it.
// An HTTP(S) subscriber receives the custom notification; a machine that wants the report
// subscribes a queue or a function.
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

// MaxMessage is SNS's limit on one published message, every protocol's text together: 256 KiB.
const MaxMessage = 256 * 1024

// Failed is the outcome of a notification for an event that ended in an error.
const Failed = report.EventFailed

// Topic publishes to one SNS topic.
type Topic struct {
	SNS SNS
	ARN string
	// Roles maps a target account to the role pinroll assumes there (TargetRoles does it
	// from PINROLL_TARGET_ROLES), so next steps for a service in that account carry
	// --role; an account not in it is pinroll's own. Nil: not known, and a command for a
	// service whose account is known says to add --role.
	Roles map[string]string
}

// TargetRoles maps each role's account to the role (arn:aws:iam::<account>:role/<name>).
// It is never nil, so every account it does not name counts as pinroll's own.
func TargetRoles(roles []string) map[string]string {
	m := make(map[string]string, len(roles))
	for _, r := range roles {
		if parts := strings.SplitN(r, ":", 6); len(parts) == 6 && parts[4] != "" {
			m[parts[4]] = r
		}
	}
	return m
}

// Notify publishes rep when it is worth a person's attention, and says whether it did.
func (t *Topic) Notify(ctx context.Context, rep report.Report) (bool, error) {
	if !Worth(rep) {
		return false, nil
	}
	msg, err := t.Message(rep)
	if err != nil {
		return false, err
	}
	_, err = t.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn:         aws.String(t.ARN),
		Subject:          aws.String(ASCII(Subject(rep))),
		Message:          aws.String(msg),
		MessageStructure: aws.String("json"),
	})
	if err != nil {
		return false, fmt.Errorf("notify %s: %w", t.ARN, err)
	}
	return true, nil
}

// Message is the per-protocol message for rep (package doc), at most MaxMessage bytes: when
// the whole does not fit, the e-mail text is shortened first, then SQS and Lambda get the
// custom notification instead of a report too large to send.
func (t *Topic) Message(rep report.Report) (string, error) {
	chat := t.Chat(rep)
	body, err := marshal(rep)
	if err != nil {
		return "", err
	}
	subject := Subject(rep)
	email := Email(rep, t.NextSteps(rep))
	for _, emailMax := range []int{len(email), 16 * 1024, 0} {
		chatJSON, err := marshal(chat)
		if err != nil {
			return "", err
		}
		m := map[string]string{"default": chatJSON, "sqs": body, "lambda": body, "email": truncateText(email, emailMax, subject), "sms": subject}
		if s, err := marshal(m); err != nil || len(s) <= MaxMessage {
			return s, err
		}
	}
	chat.Metadata.AdditionalContext["report"] = fmt.Sprintf("omitted: %d bytes, too large for one SNS message with the notification; the function's log has it (\"msg\":\"report\", event_id %s)", len(body), rep.EventID)
	chatJSON, err := marshal(chat)
	if err != nil {
		return "", err
	}
	return marshal(map[string]string{"default": chatJSON, "email": truncateText(email, 16*1024, subject), "sms": subject})
}

// Email is what an e-mail subscriber reads: the subject, the report as a table, the next
// steps.
func Email(rep report.Report, steps []string) string {
	var b strings.Builder
	b.WriteString(Subject(rep) + "\n\n" + rep.Summary() + "\n")
	for _, m := range rep.MissingImages {
		b.WriteString(fmt.Sprintf("  %-28s MISSING IMAGE %s %s: %s\n", m.Cluster+"/"+m.Service, m.Revision, m.Image, strings.ReplaceAll(m.Why, "`", "")))
	}
	if len(steps) > 0 {
		b.WriteString("\nNext steps:\n")
		for _, s := range steps {
			b.WriteString("  - " + strings.ReplaceAll(s, "`", "") + "\n")
		}
	}
	b.WriteString("\nThe report JSON goes to the topic's SQS and Lambda subscribers (when it fits in one SNS message) and to the function's log.\n")
	return b.String()
}

// truncateText keeps at most max bytes of whole characters of text, and at least its first
// line (the subject), ending with a note when it cut.
func truncateText(text string, max int, first string) string {
	if len(text) <= max {
		return text
	}
	note := "\n… cut to fit one SNS message; the function's log has the whole report.\n"
	cut := max - len(note)
	if cut < len(first) {
		return first + note
	}
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + note
}

// marshal is JSON without HTML escaping (<, >, & stay as they are: smaller, and readable).
func marshal(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// Worth reports whether a report deserves a notification: anything that changed, failed, or
// was held back — not redeliveries, verifications that passed, or irrelevant events.
func Worth(rep report.Report) bool {
	if len(rep.MissingImages) > 0 {
		return true // a pinned digest ECR can no longer serve: the next task start fails
	}
	switch rep.Outcome {
	case report.Deployed, report.Planned, report.Mismatch, report.RolledBack, report.Unverified, report.AwaitingApproval, Failed:
		return true
	case report.Verified:
		return len(rep.Changes) > 0 // a staged rollout's next wave, deployed by this verification
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
	if missing := missingSubject(rep.MissingImages); missing != "" {
		// Failures first: a missing image, then what else happened (if anything did).
		if rep.Outcome == report.Unchanged || (rep.Outcome == report.Skipped && len(paused(rep)) == 0 && !stale(rep)) {
			return truncate(missing, MaxSubject)
		}
		rep.MissingImages = nil
		return truncate(missing+"; "+Subject(rep), MaxSubject)
	}
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
		if t := rep.Totals; t != nil && rep.Outcome == report.Deployed {
			// The final report of a rollout that continued: its lists are the last step's.
			where := strings.Join(clusters, ", ")
			if len(rep.Accounts) > 0 {
				where = fmt.Sprintf("%d accounts", len(rep.Accounts))
			}
			s = fmt.Sprintf("%d services → %s in %s", t.Changes, image, where)
		}
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
// ASCII is subject as SNS takes it: its Publish reference says a subject "must be ASCII
// text that begins with a letter, number, or punctuation mark; must not include line breaks or
// control characters", and SNS refuses the whole message otherwise. The arrows and ellipses
// of Subject (kept where Unicode is welcome: chat titles, the e-mail body) become -> and ...,
// anything else outside ASCII ?, and the result still fits MaxSubject.
func ASCII(subject string) string {
	var b strings.Builder
	for _, r := range subject {
		switch {
		case r == '→':
			b.WriteString("->")
		case r == '…':
			b.WriteString("...")
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		case r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimLeft(b.String(), " ")
	if len(s) > MaxSubject {
		s = s[:MaxSubject-len("...")] + "..."
	}
	return s
}

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

// missingSubject names the first missing image: "MISSING IMAGE prod/api: sha256:ab12cd34ef56
// (expired)", and how many more there are; "" when none is missing.
func missingSubject(missing []report.MissingImage) string {
	if len(missing) == 0 {
		return ""
	}
	m := missing[0]
	s := fmt.Sprintf("MISSING IMAGE %s/%s: %s (%s)", m.Cluster, m.Service, shortDigest(digestOf(m.Image)), missingKind(m.Why))
	if n := len(missing) - 1; n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}

// missingKind is why ECR cannot serve a pinned image, in one word.
func missingKind(why string) string {
	switch {
	case strings.Contains(why, "archived"):
		return "archived"
	case strings.Contains(why, "being restored"):
		return "restoring"
	}
	return "expired"
}
