package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/pattern"
)

// InvalidEventError reports an event that is malformed or not one pinroll
// accepts. Err joins every problem found (each a *FieldError), so one error
// lists all of them. Retrying cannot fix it.
type InvalidEventError struct {
	Err error
}

func (e *InvalidEventError) Error() string {
	var msgs []string
	for _, p := range e.Problems() {
		msgs = append(msgs, p.Error())
	}
	return "invalid event: " + strings.Join(msgs, "; ")
}

func (e *InvalidEventError) Unwrap() error { return e.Err }

// Problems returns the individual problems.
func (e *InvalidEventError) Problems() []error {
	if j, ok := e.Err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if e.Err == nil {
		return nil
	}
	return []error{e.Err}
}

// FieldError is one problem with one field of an event.
type FieldError struct {
	Field   string // JSON path: "account", "detail.image-tag", "resources[0]"; "event" for the whole input
	Value   string // the value received (JSON text for a value of the wrong type); "" when absent
	Problem string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return e.Field + ": " + e.Problem
	}
	return e.Field + " " + quote(e.Value) + ": " + e.Problem
}

const maxQuoted = 64

// quote renders a value with %q, truncated so a 300 KiB field cannot flood a log line.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}

// The field grammars. Lengths are limits on the string or its groups, not counted
// repetitions, which Go's regexp would unroll (see package pattern).
var (
	accountRE    = pattern.Must(`^[0-9]+$`).Len(12, 12)
	regionRE     = pattern.Must(`^[a-z][a-z](?:-[a-z]+)+-[0-9][0-9]?$`)
	idRE         = pattern.Must(`^[A-Za-z0-9][A-Za-z0-9._:/=+@-]*$`).Len(1, 128) // also a valid ECS tag value (pinroll:event)
	repositoryRE = pattern.Must(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	tagRE        = pattern.Must(`^[a-zA-Z0-9_][a-zA-Z0-9._-]*$`).Len(1, 128)
	digestRE     = pattern.Must(`^sha256:[a-f0-9]+$`).Len(71, 71)
	mediaTypeRE  = pattern.Must(`^([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*)/([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*)$`).Groups(127, 127)
	cosignTagRE  = pattern.Must(`^sha256-[a-f0-9]{64}\.[a-z0-9]+$`)
	referrersRE  = pattern.Must(`^sha256-[a-f0-9]+$`).Len(len("sha256-")+64, len("sha256-")+64)
	wordRE       = pattern.Must(`^[A-Za-z0-9_]+$`).Len(1, 32)
	partitionRE  = `(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f)`
	serviceARNRE = pattern.Must(`^arn:`+partitionRE+`:ecs:([^:]*):([^:]*):service/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)$`).Groups(0, 0, 0, 255, 255)
	repoARNRE    = pattern.Must(`^arn:` + partitionRE + `:ecr:([^:]*):([^:]*):repository/(.*)$`)
	ruleARNRE    = pattern.Must(`^arn:`+partitionRE+`:events:([^:]*):([^:]*):rule/(?:([A-Za-z0-9._-]+)/)?([A-Za-z0-9._-]+)$`).Groups(0, 0, 0, 256, 64)
	deployIDRE   = pattern.Must(`^ecs-svc/([A-Za-z0-9_-]+)$`).Groups(64)
)

// Keys each object may carry. Unknown keys are tolerated (AWS adds fields),
// but a key that differs from a known one only in letter case is rejected:
// encoding/json would silently accept it, and EventBridge's rule would not.
var (
	envelopeKeys    = []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
	pushKeys        = []string{"result", "repository-name", "image-digest", "action-type", "image-tag", "manifest-media-type", "artifact-media-type"}
	replicationKeys = []string{"result", "repository-name", "image-digest", "action-type", "image-tag", "manifest-media-type", "artifact-media-type", "source-account", "source-region"}
	deploymentKeys  = []string{"eventType", "eventName", "deploymentId", "updatedAt", "reason"}
)

// Decode decodes and validates one event. It returns an *InvalidEventError
// listing every problem when the event is malformed or not one pinroll accepts.
func Decode(raw []byte) (Event, error) {
	d := &decoder{}
	ev := d.decode(raw)
	if len(d.problems) > 0 {
		return Event{}, &InvalidEventError{Err: errors.Join(d.problems...)}
	}
	return ev, nil
}

type decoder struct {
	problems []error
}

func (d *decoder) add(field, value, format string, args ...any) {
	d.problems = append(d.problems, &FieldError{Field: field, Value: value, Problem: fmt.Sprintf(format, args...)})
}

// envelope is what every EventBridge event carries around its detail.
type envelope struct {
	id              string
	time            time.Time
	account, region string
	resources       []string // nil when absent
}

func (d *decoder) decode(raw []byte) Event {
	if len(raw) > MaxEventSize {
		d.add("event", "", "%d bytes, more than EventBridge's limit of %d", len(raw), MaxEventSize)
		return Event{}
	}
	if !utf8.Valid(raw) {
		d.add("event", "", "not valid UTF-8 (at byte %d)", invalidUTF8At(raw))
		return Event{}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		d.add("event", "", "empty input")
		return Event{}
	}
	if kind := jsonKind(raw); kind != "object" {
		if err := json.Unmarshal(raw, new(any)); err != nil {
			d.add("event", "", "not valid JSON: %s", describeJSONError(raw, err))
		} else {
			d.add("event", "", "want a JSON object, got %s", kind)
		}
		return Event{}
	}
	var top object
	if err := json.Unmarshal(raw, &top); err != nil {
		d.add("event", "", "not valid JSON: %s", describeJSONError(raw, err))
		return Event{}
	}
	for _, dup := range duplicateKeys(raw) {
		d.add(dup, "", "duplicate key (JSON decoders disagree on which value wins; Go keeps the last)")
	}
	r := d.reader(top, "", envelopeKeys)
	env := d.envelope(r)
	source := r.required("source")
	detailType := r.required("detail-type")
	detail := r.object("detail")

	switch {
	case source == SourceECR && detailType == DetailTypeECRImage:
		p := d.push(env, detail)
		return Event{Kind: KindPush, ID: env.id, Push: &p}
	case source == SourceECR && detailType == DetailTypeReplication:
		p := d.replica(env, detail)
		return Event{Kind: KindPush, ID: env.id, Push: &p}
	case source == SourceECS && detailType == DetailTypeDeployment:
		dep := d.deployment(env, detail)
		return Event{Kind: KindDeployment, ID: env.id, Deployment: &dep}
	case source == SourceEvents && detailType == DetailTypeScheduled:
		rec := d.reconcile(env)
		return Event{Kind: KindReconcile, ID: env.id, Reconcile: &rec}
	case source == "" || detailType == "":
		// already reported as missing
	case source != SourceECR && source != SourceECS && source != SourceEvents:
		d.add("source", source, "with detail-type %q is not an event pinroll accepts (want %s/%s, %s/%s, %s/%s or %s/%s)", detailType,
			SourceECR, DetailTypeECRImage, SourceECR, DetailTypeReplication, SourceECS, DetailTypeDeployment, SourceEvents, DetailTypeScheduled)
	default:
		d.add("detail-type", detailType, "is not an event pinroll accepts from source %q", source)
	}
	return Event{ID: env.id}
}

// envelope reads and checks the envelope's fields other than source,
// detail-type and detail.
func (d *decoder) envelope(r reader) envelope {
	var env envelope
	if version := r.required("version"); version != "" && version != "0" {
		d.add("version", version, `want "0"`)
	}
	env.id = r.required("id")
	if env.id != "" && !idRE.MatchString(env.id) {
		d.add("id", env.id, "want 1 to 128 characters of [A-Za-z0-9._:/=+@-], starting with a letter or digit")
	}
	env.account = r.required("account")
	if env.account != "" && !accountRE.MatchString(env.account) {
		d.add("account", env.account, "want exactly 12 digits")
	}
	env.region = r.required("region")
	if env.region != "" && !regionRE.MatchString(env.region) {
		d.add("region", env.region, "not an AWS region name (like us-east-1)")
	}
	if ts := r.required("time"); ts != "" {
		env.time = d.timestamp("time", ts)
	}
	env.resources = r.strings("resources")
	return env
}

// push is a Push of the event's account and region, its detail yet to be read.
func (e envelope) push() Push {
	return Push{EventID: e.id, Time: e.time, Account: e.account, Region: e.region}
}

func (d *decoder) push(env envelope, detail object) Push {
	p := env.push()
	if detail == nil {
		return p
	}
	r := d.reader(detail, "detail.", pushKeys)
	p.Result = r.required("result")
	if p.Result != "" && p.Result != "SUCCESS" && p.Result != "FAILURE" {
		d.add("detail.result", p.Result, "want SUCCESS or FAILURE")
	}
	p.ActionType = r.required("action-type")
	switch p.ActionType {
	case "", "PUSH", "DELETE", "UPDATE_STORAGE_CLASS":
	default:
		d.add("detail.action-type", p.ActionType, "want PUSH, DELETE or UPDATE_STORAGE_CLASS")
	}
	// A successful push always names its digest; failed pushes and some
	// other actions come without one.
	d.image(r, &p, p.Result == "SUCCESS" && p.ActionType == "PUSH")
	return p
}

// replica decodes an ECR Replication Action: with result SUCCESS, a push of
// the replica into the event's own account and region. It is validated as a
// push is, plus where it came from and the destination repository's ARN in
// resources.
func (d *decoder) replica(env envelope, detail object) Push {
	p := env.push()
	if detail == nil {
		return p
	}
	r := d.reader(detail, "detail.", replicationKeys)
	// Only SUCCESS means the replica is there. Any other result (ECR's
	// documentation spells failure both FAILURE and FAILED) is a skip, so
	// it is not checked against a list.
	p.Result = r.required("result")
	p.ActionType = r.required("action-type")
	if p.ActionType != "" && p.ActionType != "REPLICATE" {
		r.add("action-type", p.ActionType, "want REPLICATE in an %s", DetailTypeReplication)
	}
	d.image(r, &p, p.Result == "SUCCESS")
	var from Origin
	if from.Account = r.required("source-account"); from.Account != "" && !accountRE.MatchString(from.Account) {
		r.add("source-account", from.Account, "want exactly 12 digits")
		from.Account = ""
	}
	if from.Region = r.required("source-region"); from.Region != "" {
		switch {
		case !regionRE.MatchString(from.Region):
			r.add("source-region", from.Region, "not an AWS region name (like us-east-1)")
			from.Region = ""
		case regionRE.MatchString(env.region) && partitionOf(from.Region) != partitionOf(env.region):
			r.add("source-region", from.Region, "partition %q, but the event's region %q is in %q; ECR replicates only within a partition",
				partitionOf(from.Region), env.region, partitionOf(env.region))
		case from.Region == env.region && from.Account == env.account:
			r.add("source-region", from.Region, "with detail.source-account %q names the event's own registry; ECR does not replicate a repository onto itself", from.Account)
		}
	}
	p.ReplicatedFrom = &from
	d.destination(env, p.Repository)
	return p
}

// destination checks that resources holds exactly the ARN of the
// replication's destination repository: in the event's account and region,
// named as detail.repository-name (repo; "" when that is itself at fault).
func (d *decoder) destination(env envelope, repo string) {
	const holds = "an ECR Replication Action names the destination repository's ARN, and only it, in resources"
	switch {
	case env.resources == nil:
		d.add("resources", "", "missing; %s", holds)
		return
	case len(env.resources) == 0:
		d.add("resources", "", "empty; %s", holds)
		return
	case len(env.resources) > 1:
		d.add("resources", "", "%d ARNs; %s", len(env.resources), holds)
		return
	}
	arn := env.resources[0]
	m := d.arn("resources[0]", arn, repoARNRE, "an ECR repository ARN (arn:aws:ecr:<region>:<account>:repository/<repository-name>)", env)
	if m != nil && repo != "" && m[4] != repo {
		d.add("resources[0]", arn, "names repository %s, not detail.repository-name %s", quote(m[4]), quote(repo))
	}
}

// image reads the fields that describe the image itself: repository, digest
// (required when needDigest), tag and media types.
func (d *decoder) image(r reader, p *Push, needDigest bool) {
	if repo := r.required("repository-name"); repo != "" {
		if why := checkRepository(repo); why != "" {
			r.add("repository-name", repo, "%s", why)
		} else {
			p.Repository = repo
		}
	}
	var dg string
	if needDigest {
		dg = r.required("image-digest")
	} else {
		dg, _ = r.optional("image-digest")
	}
	if why := checkDigest(dg); why != "" {
		r.add("image-digest", dg, "%s", why)
	} else {
		p.Digest = dg
	}
	if tag, _ := r.optional("image-tag"); tag != "" {
		if why := checkTag(tag); why != "" {
			r.add("image-tag", tag, "%s", why)
		} else {
			p.Tag = tag
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"manifest-media-type", &p.ManifestMediaType}, {"artifact-media-type", &p.ArtifactMediaType}} {
		if mt, _ := r.optional(f.key); mt != "" {
			if !mediaTypeRE.MatchString(mt) {
				r.add(f.key, mt, "not a media type (type/subtype)")
			} else {
				*f.dst = mt
			}
		}
	}
}

func (d *decoder) deployment(env envelope, detail object) Deployment {
	dep := Deployment{EventID: env.id, Time: env.time, Account: env.account, Region: env.region}
	switch {
	case env.resources == nil:
		d.add("resources", "", "missing; an ECS deployment event names its service ARN in resources[0]")
	case len(env.resources) == 0:
		d.add("resources", "", "empty; an ECS deployment event names its service ARN in resources[0]")
	default:
		arn := env.resources[0]
		if m := d.arn("resources[0]", arn, serviceARNRE, "an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>)", env); m != nil {
			dep.ServiceARN, dep.Cluster, dep.Service = arn, m[4], m[5]
			dep.ClusterARN = fmt.Sprintf("arn:%s:ecs:%s:%s:cluster/%s", m[1], m[2], m[3], m[4])
		}
	}
	if detail == nil {
		return dep
	}
	r := d.reader(detail, "detail.", deploymentKeys)
	if t := r.required("eventType"); t != "" && t != "INFO" && t != "WARN" && t != "ERROR" {
		r.add("eventType", t, "want INFO, WARN or ERROR")
	}
	switch n := r.required("eventName"); n {
	case "":
	case DeploymentInProgress, DeploymentCompleted, DeploymentFailed:
		dep.EventName = n
	default:
		r.add("eventName", n, "want %s, %s or %s", DeploymentInProgress, DeploymentCompleted, DeploymentFailed)
	}
	if id := r.required("deploymentId"); id != "" {
		if !deployIDRE.MatchString(id) {
			r.add("deploymentId", id, "want ecs-svc/<id>")
		} else {
			dep.DeploymentID = id
		}
	}
	if ts, ok := r.optional("updatedAt"); ok {
		d.timestamp("detail.updatedAt", ts)
	}
	dep.Reason, _ = r.optional("reason")
	return dep
}

func (d *decoder) reconcile(env envelope) Reconcile {
	for i, r := range env.resources {
		d.arn(fmt.Sprintf("resources[%d]", i), r, ruleARNRE, "an EventBridge rule ARN (arn:aws:events:<region>:<account>:rule/<name>)", env)
	}
	return Reconcile{EventID: env.id, Time: env.time, Account: env.account, Region: env.region}
}

// arn checks an ARN against re (whose first three groups are partition,
// region and account) and against the event's own account and region and
// their partition. It returns the submatches when all is well.
func (d *decoder) arn(field, arn string, re pattern.Pattern, want string, env envelope) []string {
	m := re.FindStringSubmatch(arn)
	if m == nil {
		d.add(field, arn, "want %s", want)
		return nil
	}
	ok := true
	if m[2] != env.region {
		d.add(field, arn, "region %q is not the event's region %q", m[2], env.region)
		ok = false
	}
	if m[3] != env.account {
		d.add(field, arn, "account %q is not the event's account %q", m[3], env.account)
		ok = false
	}
	if p := partitionOf(env.region); m[1] != p {
		d.add(field, arn, "partition %q does not hold region %q (want %q)", m[1], env.region, p)
		ok = false
	}
	if !ok {
		return nil
	}
	return m
}

// partitionOf names the AWS partition a region belongs to.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-isof-"):
		return "aws-iso-f"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "aws-iso-e"
	}
	return "aws"
}

func (d *decoder) timestamp(field, s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d.add(field, s, "want an RFC 3339 time like 2019-11-16T01:54:34Z")
	}
	return t
}

func checkRepository(s string) string {
	if n := len(s); n < 2 || n > 256 {
		return fmt.Sprintf("%d characters, want 2 to 256", n)
	}
	if !repositoryRE.MatchString(s) {
		switch {
		case !isASCII(s):
			return "contains non-ASCII characters (look-alikes of ASCII letters are not the same repository)"
		case strings.ToLower(s) != s:
			return "contains upper-case letters; ECR repository names are lower case"
		case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//"):
			return "has an empty path segment (leading, trailing or doubled '/')"
		case hasDotSegment(s):
			return "has a '.' or '..' path segment"
		}
		return "does not match ECR's repository grammar (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
	}
	if first, _, ok := strings.Cut(s, "/"); ok && looksLikeRegistryHost(first) {
		return fmt.Sprintf("starts with the registry host %s; repository-name is the path only", first)
	}
	return ""
}

func looksLikeRegistryHost(s string) bool {
	if _, ok := imageref.ParseECRHost(s); ok {
		return true
	}
	return strings.Contains(s, ".dkr.ecr") || strings.HasSuffix(s, ".amazonaws.com") || strings.HasSuffix(s, ".amazonaws.com.cn")
}

func hasDotSegment(s string) bool {
	for _, seg := range strings.Split(s, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func checkDigest(s string) string {
	if s == "" || digestRE.MatchString(s) {
		return ""
	}
	alg, hex, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return "want sha256:<64 lowercase hex digits>"
	case alg != "sha256":
		return fmt.Sprintf("algorithm %q, want sha256", alg)
	case strings.Trim(strings.ToLower(hex), "0123456789abcdef") != "":
		return "not hexadecimal; want sha256:<64 lowercase hex digits>"
	case strings.ToLower(hex) != hex:
		return "upper-case hex digits; want lower case"
	}
	return fmt.Sprintf("%d hex digits, want 64", len(hex))
}

func checkTag(s string) string {
	if tagRE.MatchString(s) {
		return ""
	}
	switch {
	case len(s) > 128:
		return fmt.Sprintf("%d characters, want at most 128", len(s))
	case !isASCII(s):
		return "contains non-ASCII characters"
	case s[0] == '.' || s[0] == '-':
		return "must not start with '.' or '-'"
	}
	return "does not match the OCI tag grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// jsonKind names the kind of the JSON value that raw starts with.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func describeJSONError(raw []byte, err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%v (at byte %d of %d)", syn, syn.Offset, len(raw))
	}
	return err.Error()
}

func invalidUTF8At(raw []byte) int {
	for i := 0; i < len(raw); {
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
