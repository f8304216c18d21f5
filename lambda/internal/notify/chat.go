package notify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

// The custom-notification format of Amazon Q Developer in chat applications (formerly AWS
// Chatbot), as its Administrator Guide documents it on the page "Custom notifications using
// Amazon Q Developer in chat applications" (chatbot/latest/adminguide/custom-notifs.html),
// sections "Event schema" and "Parameter details":
//
//	version             required  must be "1.0"
//	source              required  must be "custom"
//	id                  optional  unique event identifier
//	content.textType    optional  only "client-markdown" is supported: rendered in the chat
//	                              platform's own markdown (Slack's, Teams')
//	content.title       optional  markdown, emojis; at most 250 characters
//	content.description required  markdown, emojis; at most 8,000 characters
//	content.nextSteps   optional  rendered as a bulleted list; at most 350 characters each
//	content.keywords    optional  rendered as inline tags; at most 75 characters each
//	metadata            optional  threadId, summary, eventType, relatedResources (strings),
//	                              additionalContext (a string-to-string map),
//	                              enableCustomActions
//
// The schema, and that version and source are required and id, textType and title are not,
// were read on that page; the four lengths, and that description is required, come from its
// parameter table as a client library quotes it: check the live page before relying on more.
// A message that does not follow the schema is shown poorly or not at all. No limit on the
// number of next steps or keywords was found; pinroll sends at most MaxNextSteps and
// MaxKeywords, which keeps a notification readable. Lengths are bounded here in bytes of
// UTF-8, which is never fewer than the characters (or UTF-16 units) a reader may count, so
// every field is within the limit whichever way it is counted.
const (
	ChatVersion    = "1.0"
	ChatSource     = "custom"
	ChatTextType   = "client-markdown"
	MaxTitle       = 250
	MaxDescription = 8000
	MaxNextStep    = 350
	MaxKeyword     = 75
	MaxNextSteps   = 10
	MaxKeywords    = 10
	// maxResources bounds metadata.relatedResources (no documented limit).
	maxResources = 10
)

// Chat is one custom notification.
type Chat struct {
	Version  string       `json:"version"`
	Source   string       `json:"source"`
	ID       string       `json:"id,omitempty"`
	Content  ChatContent  `json:"content"`
	Metadata ChatMetadata `json:"metadata"`
}

// ChatContent is what the channel shows.
type ChatContent struct {
	TextType    string   `json:"textType"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
}

// ChatMetadata is not shown; eventType and additionalContext are what Amazon Q's custom
// actions can match and use. No threadId: a mismatch or rollback threaded under the deploy
// that caused it would be easy to miss.
type ChatMetadata struct {
	EventType         string            `json:"eventType,omitempty"`
	RelatedResources  []string          `json:"relatedResources,omitempty"`
	AdditionalContext map[string]string `json:"additionalContext,omitempty"`
}

// Chat renders rep as a custom notification: a title (the outcome and the image), a
// description (the reason, then the services and digests, failures first, per account when
// there are several), and next steps (the exact pinroll commands to verify, roll back or
// resume).
func (t *Topic) Chat(rep report.Report) Chat {
	ctx := map[string]string{"outcome": string(rep.Outcome), "kind": rep.Kind}
	if rep.EventID != "" {
		ctx["event_id"] = rep.EventID
	}
	if rep.Image != "" {
		ctx["image"] = rep.Image
	}
	if accounts := accountsOf(rep); len(accounts) > 0 {
		ctx["accounts"] = strings.Join(accounts, ",")
	}
	c := Chat{
		Version: ChatVersion,
		Source:  ChatSource,
		Content: ChatContent{
			TextType:    ChatTextType,
			Title:       Title(rep),
			Description: Description(rep),
			NextSteps:   t.NextSteps(rep),
			Keywords:    Keywords(rep),
		},
		Metadata: ChatMetadata{
			EventType:         "pinroll-" + strings.ReplaceAll(string(rep.Outcome), "_", "-"),
			RelatedResources:  resources(rep),
			AdditionalContext: ctx,
		},
	}
	if rep.EventID != "" {
		// A failed event is notified on each attempt; each is its own notification.
		c.ID = rep.EventID + "/" + string(rep.Outcome)
	}
	return c
}

// Title is the outcome and the image's short form (repository:tag@sha256:<12 hex>):
//
//	✅ Deployed content-marketing-swarm-backend:latest@sha256:b18964317305
//	🚨 MISMATCH content-marketing-swarm-backend:latest@sha256:b18964317305
func Title(rep report.Report) string {
	image := shortImage(rep.Image)
	if image == "" {
		image = strings.TrimSpace(rep.Kind + " event " + rep.EventID)
	}
	var s string
	switch rep.Outcome {
	case report.Mismatch:
		s = "🚨 MISMATCH " + image
	case report.RolledBack:
		s = "↩️ ROLLED BACK " + image
	case report.Unverified:
		s = "❓ UNVERIFIED " + image
	case report.AwaitingApproval:
		s = "✋ APPROVAL NEEDED " + image
	case Failed:
		s = "❌ FAILED " + image
	case report.Skipped, report.Unchanged:
		if len(paused(rep)) > 0 {
			s = "⏸️ PAUSED, not deployed: " + image
		} else {
			s = "💤 Stale push ignored: " + image
		}
	case report.Planned:
		s = "📝 Dry run: would deploy " + image
	default:
		s = "✅ Deployed " + image
	}
	if n := len(rep.Failed); n > 0 && rep.Outcome != Failed {
		s = fmt.Sprintf("❌ FAILED for %d service%s; %s", n, plural(n), s)
	}
	if n := len(rep.MissingImages); n > 0 {
		s = fmt.Sprintf("🧨 MISSING IMAGE (%d pinned digest%s ECR cannot serve); %s", n, plural(n), s)
		if rep.Outcome == report.Unchanged || rep.Outcome == report.Skipped && len(paused(rep)) == 0 {
			s = fmt.Sprintf("🧨 MISSING IMAGE: %d pinned digest%s ECR cannot serve", n, plural(n))
		}
	}
	return truncate(s, MaxTitle)
}

// A line of the description: a heading, or an entry (one service, task or container) that
// "… and N more" counts when the description is cut.
type line struct {
	text  string
	entry bool
}

type section struct {
	heading string
	entries []entry
}

type entry struct{ account, text string }

// Description is the reason, then one section per kind of entry, failures first — failed,
// mismatch, rolled back, unverified — then held for approval, waiting for their wave, deployed,
// verified, paused, and a count of what was left alone. With services in several accounts,
// each section lists them per account.
// It is at most MaxDescription bytes: past that, it ends "… and N more".
func Description(rep report.Report) string {
	sections := sectionsOf(rep)
	multi := len(accountsOf(rep)) > 1
	lines := []line{{text: truncate(rep.Reason, 1000)}}
	for _, s := range sections {
		if len(s.entries) == 0 {
			continue
		}
		lines = append(lines, line{text: fmt.Sprintf("%s (%d)", s.heading, len(s.entries))})
		if !multi {
			for _, e := range s.entries {
				lines = append(lines, line{text: "• " + e.text, entry: true})
			}
			continue
		}
		byAccount := slices.Clone(s.entries)
		slices.SortStableFunc(byAccount, func(a, b entry) int { return cmp.Compare(a.account, b.account) })
		for i, e := range byAccount {
			if i == 0 || e.account != byAccount[i-1].account {
				lines = append(lines, line{text: "account " + cmp.Or(e.account, "unknown")})
			}
			lines = append(lines, line{text: "• " + e.text, entry: true})
		}
	}
	if tail := leftAlone(rep); tail != "" {
		lines = append(lines, line{text: tail})
	}
	return fit(lines, MaxDescription)
}

// fit joins lines with newlines within max bytes; when they do not fit, it keeps the first
// ones and ends "… and N more", N the entries left out.
func fit(lines []line, max int) string {
	texts := make([]string, len(lines))
	entries := 0
	for i, l := range lines {
		texts[i] = truncate(l.text, 1000)
		if l.entry {
			entries++
		}
	}
	if s := strings.Join(texts, "\n"); len(s) <= max {
		return s
	}
	trailer := func(n int) string { return fmt.Sprintf("… and %d more (the report has them all)", n) }
	reserve := len("\n") + len(trailer(entries))
	var b strings.Builder
	kept := 0
	for i, t := range texts {
		if b.Len()+len("\n")+len(t) > max-reserve {
			break
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(t)
		if lines[i].entry {
			kept++
		}
	}
	b.WriteString("\n" + trailer(entries-kept))
	return b.String()
}

func sectionsOf(rep report.Report) []section {
	failed := section{heading: "❌ Failed, not deployed"}
	for _, s := range rep.Failed {
		failed.entries = append(failed.entries, entry{s.Account, code(s.Cluster+"/"+s.Service) + ": " + s.Why})
	}
	missing := section{heading: "🧨 Missing from ECR: pinned digests tasks cannot pull (a lifecycle rule expired or archived them)"}
	for _, m := range rep.MissingImages {
		missing.entries = append(missing.entries, entry{m.Account, fmt.Sprintf("%s %s %s: %s", code(m.Cluster+"/"+m.Service), m.Revision, code(shortImage(m.Image)), m.Why)})
	}
	mismatch := section{heading: "🚨 Mismatch: tasks not running the pinned digest"}
	unverified := section{heading: "❓ Unverified"}
	verified := section{heading: "✅ Verified"}
	type key struct{ account, service, container, running string }
	ok := map[key]int{}
	var okOrder []key
	for _, v := range rep.Verifications {
		where := code(v.Cluster + "/" + v.Service)
		switch {
		case v.OK:
			k := key{v.Account, where, v.Container, v.Running}
			if ok[k] == 0 {
				okOrder = append(okOrder, k)
			}
			ok[k]++
		case v.Running == "":
			unverified.entries = append(unverified.entries, entry{v.Account, where + " " + v.Container + ": " + cmp.Or(v.Why, "nothing could be checked")})
		default:
			task := ""
			if v.Task != "" {
				task = " task " + report.Revision(v.Task)
			}
			e := fmt.Sprintf("%s%s %s runs %s, want %s", where, task, v.Container, code(shortDigest(v.Running)), code(shortDigest(v.Want)))
			if v.Why != "" {
				e += " (" + v.Why + ")"
			}
			mismatch.entries = append(mismatch.entries, entry{v.Account, e})
		}
	}
	for _, k := range okOrder {
		verified.entries = append(verified.entries, entry{k.account, fmt.Sprintf("%s %s: %d task%s run %s", k.service, k.container, ok[k], plural(ok[k]), code(shortDigest(k.running)))})
	}
	rolledBack := section{heading: "↩️ Rolled back"}
	if d := rep.Deployment; rep.Outcome == report.RolledBack && d != nil {
		rolledBack.entries = append(rolledBack.entries, entry{d.Account, code(d.Cluster+"/"+d.Service) + " " + code(shortDigest(digestOf(rep.Image)))})
	}
	deployed := section{heading: "✅ Deployed"}
	if rep.Outcome == report.Planned {
		deployed.heading = "📝 Would deploy (dry run)"
	}
	for _, c := range rep.Changes {
		var names []string
		digest := ""
		for _, cc := range c.Containers {
			names = append(names, cc.Name)
			digest = cmp.Or(digestOf(cc.To), digest)
		}
		text := code(c.Cluster + "/" + c.Service)
		if len(names) > 0 {
			text += " " + strings.Join(names, ", ")
		}
		text += " → " + code(shortDigest(cmp.Or(digest, digestOf(rep.Image))))
		if prev, next := report.Revision(c.PreviousTaskDefinition), report.Revision(c.TaskDefinition); prev != "" || next != "" {
			text += fmt.Sprintf(" (%s → %s)", cmp.Or(prev, "?"), cmp.Or(next, "a new revision"))
		}
		deployed.entries = append(deployed.entries, entry{c.Account, text})
	}
	approval := section{heading: "✋ Waiting for approval"}
	if rep.Outcome == report.Planned {
		approval.heading = "✋ Would wait for approval (dry run)"
	}
	waves := section{heading: "⏳ Waiting for their wave"}
	for _, s := range rep.Held {
		e := entry{s.Account, code(s.Cluster+"/"+s.Service) + " → " + code(shortDigest(digestOf(rep.Image))) + ": " + s.Why}
		if s.ForApproval() {
			approval.entries = append(approval.entries, e)
		} else {
			waves.entries = append(waves.entries, e)
		}
	}
	pausedSection := section{heading: "⏸️ Paused, not deployed"}
	for _, s := range rep.Skipped {
		if strings.HasPrefix(s.Why, "paused") {
			pausedSection.entries = append(pausedSection.entries, entry{s.Account, code(s.Cluster+"/"+s.Service) + ": " + s.Why})
		}
	}
	return []section{failed, missing, mismatch, rolledBack, unverified, approval, waves, deployed, verified, pausedSection}
}

// leftAlone counts what the description does not list: unchanged and skipped services
// (paused ones are listed), near misses.
func leftAlone(rep report.Report) string {
	var parts []string
	if n := len(rep.Unchanged); n > 0 {
		parts = append(parts, fmt.Sprintf("%d unchanged", n))
	}
	if n := len(rep.Skipped) - len(paused(rep)); n > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", n))
	}
	if n := len(rep.NearMisses) + rep.NearMissesOmitted; n > 0 {
		parts = append(parts, fmt.Sprintf("%d near miss%s not touched", n, map[bool]string{true: "es"}[n != 1]))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Left alone: " + strings.Join(parts, ", ") + "."
}

// target is one service a command acts on.
type target struct{ account, cluster, service string }

// NextSteps are the exact pinroll commands to run: approve (or reject) what waits for
// approval, release a halted staged rollout, verify what runs, roll back what was deployed or does not run what it should,
// resume what is paused. A service in an account
// with a known target role gets its --role; with no roles known (Topic.Roles nil), a
// command for a service whose account is known says how to add one.
func (t *Topic) NextSteps(rep report.Report) []string {
	var verifyTargets, rollbackTargets, resumeTargets, approveTargets []target
	add := func(list *[]target, x target) {
		if x.service != "" && !slices.Contains(*list, x) {
			*list = append(*list, x)
		}
	}
	var steps []string
	switch rep.Outcome {
	case Failed:
		steps = append(steps, "Lambda retries the event; if it ends in the dead-letter queue, fix the cause and redrive it (README, \"When an alarm fires\").")
		for _, c := range rep.Changes {
			add(&verifyTargets, target{c.Account, c.Cluster, c.Service})
		}
	case report.Planned:
		if repo, tag, digest := imageParts(rep.Image); repo != "" {
			steps = append(steps, "Show the plan again: "+code(fmt.Sprintf("pinroll plan --repository %s --tag %s --digest %s", repo, tag, digest)))
		}
	case report.RolledBack:
		if d := rep.Deployment; d != nil {
			add(&verifyTargets, target{d.Account, d.Cluster, d.Service})
		}
		steps = append(steps, "ECS already runs the previous revision; fix the image and push again.")
	case report.Skipped, report.Unchanged:
	default: // deployed, mismatch, unverified
		for _, c := range rep.Changes {
			add(&verifyTargets, target{c.Account, c.Cluster, c.Service})
			add(&rollbackTargets, target{c.Account, c.Cluster, c.Service})
		}
		for _, v := range rep.Verifications {
			x := target{v.Account, v.Cluster, v.Service}
			add(&verifyTargets, x)
			if !v.OK && v.Running != "" {
				add(&rollbackTargets, x)
			}
		}
		if d := rep.Deployment; len(verifyTargets) == 0 && d != nil {
			add(&verifyTargets, target{d.Account, d.Cluster, d.Service}) // "nothing was checked": no verification to name it
		}
	}
	for _, s := range rep.Skipped {
		if strings.HasPrefix(s.Why, "paused") {
			add(&resumeTargets, target{s.Account, s.Cluster, s.Service})
		}
	}
	for _, s := range rep.Failed {
		add(&verifyTargets, target{s.Account, s.Cluster, s.Service})
	}
	steps = append(steps, restoreSteps(rep.MissingImages)...)
	for _, m := range rep.MissingImages {
		add(&verifyTargets, target{m.Account, m.Cluster, m.Service})
	}
	halted := false
	if rep.Outcome != report.Planned {
		for _, s := range rep.Held {
			if s.ForApproval() {
				add(&approveTargets, target{s.Account, s.Cluster, s.Service})
			}
			halted = halted || strings.Contains(s.Why, " halted: ")
		}
	}

	var cmds []string
	for _, x := range approveTargets {
		cmds = append(cmds, "Approve: "+t.command("pinroll approve --cluster "+x.cluster+" --service "+x.service, x.account))
	}
	for _, x := range approveTargets {
		cmds = append(cmds, "Or reject (it keeps what it runs): "+t.command("pinroll reject --cluster "+x.cluster+" --service "+x.service, x.account))
	}
	if halted && rep.Image != "" {
		// Every target's held services at once, so no --role: it runs with PINROLL_TARGET_ROLES.
		cmds = append(cmds, "Go on past the halted wave anyway: "+code("pinroll release --image "+rep.Image))
	}
	cmds = append(cmds, t.verifyCommands(verifyTargets)...)
	for _, x := range rollbackTargets {
		cmds = append(cmds, "Roll back: "+t.command("pinroll rollback --cluster "+x.cluster+" --service "+x.service, x.account))
	}
	for _, x := range resumeTargets {
		cmds = append(cmds, "Resume: "+t.command("pinroll resume --cluster "+x.cluster+" --service "+x.service, x.account))
	}
	steps = append(steps, cmds...)
	for i := range steps {
		steps[i] = truncate(steps[i], MaxNextStep)
	}
	if len(steps) > MaxNextSteps {
		n := len(steps) - (MaxNextSteps - 1)
		steps = append(steps[:MaxNextSteps-1], fmt.Sprintf("… and %d more steps: the report lists every service (%s checks a whole cluster)", n, code("pinroll verify --cluster C")))
	}
	return steps
}

// restoreSteps say how to make missing images pullable again: restore each archived digest
// (once), and, for expired ones, push the image again or deploy a digest ECR holds — an
// expired image cannot be restored — then fix the lifecycle rule.
func restoreSteps(missing []report.MissingImage) []string {
	var steps, done []string
	expired := false
	for _, m := range missing {
		repo, _, digest := imageParts(m.Image)
		switch missingKind(m.Why) {
		case "archived":
			cmd := "aws ecr update-image-storage-class --repository-name " + repo + " --image-id imageDigest=" + digest + " --target-storage-class STANDARD"
			if account, _, ok := strings.Cut(m.Image, ".dkr.ecr"); ok && !strings.Contains(account, "/") {
				cmd = "aws ecr update-image-storage-class --registry-id " + account + " --repository-name " + repo + " --image-id imageDigest=" + digest + " --target-storage-class STANDARD"
			}
			if !slices.Contains(done, cmd) {
				done = append(done, cmd)
				steps = append(steps, "Restore the archived image: "+code(cmd))
			}
		case "expired":
			expired = true
		}
	}
	if expired {
		steps = append(steps, "An expired image cannot be restored: push the same build again (same digest), or redeploy the service on a digest ECR holds; then change the lifecycle rule that expired it (README, \"Keeping pinned images\").")
	}
	return steps
}

// verifyCommands verifies the services of one cluster in one account with one command
// (--service takes a comma-separated list), split where a step would pass MaxNextStep.
func (t *Topic) verifyCommands(targets []target) []string {
	type group struct{ account, cluster string }
	var order []group
	services := map[group][]string{}
	for _, x := range targets {
		g := group{x.account, x.cluster}
		if _, ok := services[g]; !ok {
			order = append(order, g)
		}
		services[g] = append(services[g], x.service)
	}
	var out []string
	for _, g := range order {
		step := func(names []string) string { return "Verify: " + t.command(verifyCommand(g.cluster, names), g.account) }
		names := services[g]
		for start := 0; start < len(names); {
			end := start + 1 // one service always makes a step; truncate bounds it
			for end < len(names) && len(step(names[start:end+1])) <= MaxNextStep {
				end++
			}
			out = append(out, step(names[start:end]))
			start = end
		}
	}
	return out
}

func verifyCommand(cluster string, services []string) string {
	return "pinroll verify --cluster " + cluster + " --service " + strings.Join(services, ",")
}

// command is cmd as a code span, with --role for a service in a target account.
func (t *Topic) command(cmd, account string) string {
	if t.Roles != nil {
		if role, ok := t.Roles[account]; ok {
			return code(cmd + " --role " + role)
		}
		return code(cmd) // pinroll's own account
	}
	if account == "" {
		return code(cmd)
	}
	return code(cmd) + " in account " + account + " (from another account add " + code("--role arn:aws:iam::"+account+":role/<target role>") + ")"
}

// Keywords tag the notification: pinroll, the outcome, the repository, the clusters and the
// accounts.
func Keywords(rep report.Report) []string {
	words := []string{"pinroll", string(rep.Outcome)}
	if repo, _, _ := imageParts(rep.Image); repo != "" {
		words = append(words, repo)
	}
	words = append(words, accountsOf(rep)...)
	var out []string
	for _, w := range words {
		if w = truncate(w, MaxKeyword); w != "" && !slices.Contains(out, w) && len(out) < MaxKeywords {
			out = append(out, w)
		}
	}
	return out
}

// resources are the task-definition revisions the report deployed.
func resources(rep report.Report) []string {
	var out []string
	for _, c := range rep.Changes {
		if c.TaskDefinition != "" && len(out) < maxResources {
			out = append(out, c.TaskDefinition)
		}
	}
	return out
}

// accountsOf lists, sorted, the accounts the report's entries name.
func accountsOf(rep report.Report) []string {
	var accounts []string
	add := func(a string) {
		if a != "" && !slices.Contains(accounts, a) {
			accounts = append(accounts, a)
		}
	}
	for _, c := range rep.Changes {
		add(c.Account)
	}
	for _, l := range [][]report.Service{rep.Failed, rep.Held, rep.Skipped, rep.Unchanged} {
		for _, s := range l {
			add(s.Account)
		}
	}
	for _, v := range rep.Verifications {
		add(v.Account)
	}
	for _, m := range rep.MissingImages {
		add(m.Account)
	}
	slices.Sort(accounts)
	return accounts
}

// imageParts splits registry/repository:tag@digest into the repository, tag and digest.
func imageParts(image string) (repo, tag, digest string) {
	if i := strings.Index(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.Index(image, "@"); i >= 0 {
		image, digest = image[:i], image[i+1:]
	}
	repo = image
	if i := strings.LastIndex(image, ":"); i >= 0 {
		repo, tag = image[:i], image[i+1:]
	}
	return repo, tag, digest
}

func digestOf(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		return image[i+1:]
	}
	return ""
}

// shortDigest is sha256: and 12 hex digits.
func shortDigest(d string) string {
	if strings.HasPrefix(d, "sha256:") && len(d) > 19 {
		return d[:19]
	}
	return cmp.Or(d, "?")
}

// code is s as a markdown code span, which Slack and Teams both render; a backtick inside
// would end it.
func code(s string) string { return "`" + strings.ReplaceAll(s, "`", "'") + "`" }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
