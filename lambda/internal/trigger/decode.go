package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pinroll/pinroll/lambda/internal/imageref"
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

var (
	accountRE    = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE     = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$`)
	idRE         = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/=+@-]{0,127}$`) // also a valid ECS tag value (pinroll:event)
	repositoryRE = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	tagRE        = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE     = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	mediaTypeRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`)
	cosignTagRE  = regexp.MustCompile(`^sha256-[a-f0-9]{64}\.[a-z0-9]+$`)
	referrersRE  = regexp.MustCompile(`^sha256-[a-f0-9]{64}$`)
	partitionRE  = `(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f)`
	serviceARNRE = regexp.MustCompile(`^arn:` + partitionRE + `:ecs:([^:]*):([^:]*):service/([A-Za-z0-9_-]{1,255})/([A-Za-z0-9_-]{1,255})$`)
	ruleARNRE    = regexp.MustCompile(`^arn:` + partitionRE + `:events:([^:]*):([^:]*):rule/(?:[A-Za-z0-9._-]{1,256}/)?[A-Za-z0-9._-]{1,64}$`)
	deployIDRE   = regexp.MustCompile(`^ecs-svc/[A-Za-z0-9_-]{1,64}$`)
)

// Keys each object may carry. Unknown keys are tolerated (AWS adds fields),
// but a key that differs from a known one only in letter case is rejected:
// encoding/json would silently accept it, and EventBridge's rule would not.
var (
	envelopeKeys   = []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
	pushKeys       = []string{"result", "repository-name", "image-digest", "action-type", "image-tag", "manifest-media-type", "artifact-media-type"}
	deploymentKeys = []string{"eventType", "eventName", "deploymentId", "updatedAt", "reason"}
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

type object map[string]json.RawMessage

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
	d.caseVariants(top, "", envelopeKeys)

	version, _ := d.str(top, "", "version", true)
	if version != "" && version != "0" {
		d.add("version", version, `want "0"`)
	}
	id, _ := d.str(top, "", "id", true)
	if id != "" && !idRE.MatchString(id) {
		d.add("id", id, "want 1 to 128 characters of [A-Za-z0-9._:/=+@-], starting with a letter or digit")
	}
	account, _ := d.str(top, "", "account", true)
	if account != "" && !accountRE.MatchString(account) {
		d.add("account", account, "want exactly 12 digits")
	}
	region, _ := d.str(top, "", "region", true)
	if region != "" && !regionRE.MatchString(region) {
		d.add("region", region, "not an AWS region name (like us-east-1)")
	}
	var when time.Time
	if ts, ok := d.str(top, "", "time", true); ok {
		when = d.timestamp("time", ts)
	}
	resources := d.strings(top, "resources")
	source, _ := d.str(top, "", "source", true)
	detailType, _ := d.str(top, "", "detail-type", true)
	detail := d.object(top, "", "detail", true)

	kind := Kind("")
	switch {
	case source == SourceECR && detailType == DetailTypeECRImage:
		kind = KindPush
	case source == SourceECS && detailType == DetailTypeDeployment:
		kind = KindDeployment
	case source == SourceEvents && detailType == DetailTypeScheduled:
		kind = KindReconcile
	case source == "" || detailType == "":
		// already reported as missing
	case source != SourceECR && source != SourceECS && source != SourceEvents:
		d.add("source", source, "with detail-type %q is not an event pinroll accepts (want %s/%s, %s/%s or %s/%s)", detailType,
			SourceECR, DetailTypeECRImage, SourceECS, DetailTypeDeployment, SourceEvents, DetailTypeScheduled)
	default:
		d.add("detail-type", detailType, "is not an event pinroll accepts from source %q", source)
	}

	ev := Event{Kind: kind, ID: id}
	switch kind {
	case KindPush:
		p := d.push(detail)
		p.EventID, p.Time, p.Account, p.Region = id, when, account, region
		ev.Push = &p
	case KindDeployment:
		dep := d.deployment(detail, resources, account, region)
		dep.EventID, dep.Time, dep.Account, dep.Region = id, when, account, region
		ev.Deployment = &dep
	case KindReconcile:
		for i, r := range resources {
			d.arn(fmt.Sprintf("resources[%d]", i), r, ruleARNRE, "an EventBridge rule ARN (arn:aws:events:<region>:<account>:rule/<name>)", account, region)
		}
		ev.Reconcile = &Reconcile{EventID: id, Time: when, Account: account, Region: region}
	}
	return ev
}

func (d *decoder) push(detail object) Push {
	if detail == nil {
		return Push{}
	}
	d.caseVariants(detail, "detail.", pushKeys)
	var p Push
	p.Result, _ = d.str(detail, "detail.", "result", true)
	if p.Result != "" && p.Result != "SUCCESS" && p.Result != "FAILURE" {
		d.add("detail.result", p.Result, "want SUCCESS or FAILURE")
	}
	p.ActionType, _ = d.str(detail, "detail.", "action-type", true)
	switch p.ActionType {
	case "", "PUSH", "DELETE", "UPDATE_STORAGE_CLASS":
	default:
		d.add("detail.action-type", p.ActionType, "want PUSH, DELETE or UPDATE_STORAGE_CLASS")
	}
	if repo, ok := d.str(detail, "detail.", "repository-name", true); ok {
		if why := checkRepository(repo); why != "" {
			d.add("detail.repository-name", repo, "%s", why)
		} else {
			p.Repository = repo
		}
	}
	// A successful push always names its digest; failed pushes and some
	// other actions come without one.
	needDigest := p.Result == "SUCCESS" && p.ActionType == "PUSH"
	if dg, ok := d.str(detail, "detail.", "image-digest", needDigest); ok {
		if why := checkDigest(dg); why != "" {
			d.add("detail.image-digest", dg, "%s", why)
		} else {
			p.Digest = dg
		}
	}
	if tag, ok := d.str(detail, "detail.", "image-tag", false); ok && tag != "" {
		if why := checkTag(tag); why != "" {
			d.add("detail.image-tag", tag, "%s", why)
		} else {
			p.Tag = tag
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"manifest-media-type", &p.ManifestMediaType}, {"artifact-media-type", &p.ArtifactMediaType}} {
		if mt, ok := d.str(detail, "detail.", f.key, false); ok && mt != "" {
			if !mediaTypeRE.MatchString(mt) {
				d.add("detail."+f.key, mt, "not a media type (type/subtype)")
			} else {
				*f.dst = mt
			}
		}
	}
	return p
}

func (d *decoder) deployment(detail object, resources []string, account, region string) Deployment {
	var dep Deployment
	switch {
	case resources == nil:
		d.add("resources", "", "missing; an ECS deployment event names its service ARN in resources[0]")
	case len(resources) == 0:
		d.add("resources", "", "empty; an ECS deployment event names its service ARN in resources[0]")
	default:
		arn := resources[0]
		if m := d.arn("resources[0]", arn, serviceARNRE, "an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>)", account, region); m != nil {
			dep.ServiceARN, dep.Cluster, dep.Service = arn, m[4], m[5]
			dep.ClusterARN = fmt.Sprintf("arn:%s:ecs:%s:%s:cluster/%s", m[1], m[2], m[3], m[4])
		}
	}
	if detail == nil {
		return dep
	}
	d.caseVariants(detail, "detail.", deploymentKeys)
	if t, ok := d.str(detail, "detail.", "eventType", true); ok && t != "INFO" && t != "WARN" && t != "ERROR" {
		d.add("detail.eventType", t, "want INFO, WARN or ERROR")
	}
	if n, ok := d.str(detail, "detail.", "eventName", true); ok {
		switch n {
		case DeploymentInProgress, DeploymentCompleted, DeploymentFailed:
			dep.EventName = n
		default:
			d.add("detail.eventName", n, "want %s, %s or %s", DeploymentInProgress, DeploymentCompleted, DeploymentFailed)
		}
	}
	if id, ok := d.str(detail, "detail.", "deploymentId", true); ok {
		if !deployIDRE.MatchString(id) {
			d.add("detail.deploymentId", id, "want ecs-svc/<id>")
		} else {
			dep.DeploymentID = id
		}
	}
	if ts, ok := d.str(detail, "detail.", "updatedAt", false); ok {
		d.timestamp("detail.updatedAt", ts)
	}
	dep.Reason, _ = d.str(detail, "detail.", "reason", false)
	return dep
}

// arn checks an ARN against re (whose first three groups are partition,
// region and account) and against the event's own account and region and
// their partition. It returns the submatches when all is well.
func (d *decoder) arn(field, arn string, re *regexp.Regexp, want, account, region string) []string {
	m := re.FindStringSubmatch(arn)
	if m == nil {
		d.add(field, arn, "want %s", want)
		return nil
	}
	ok := true
	if m[2] != region {
		d.add(field, arn, "region %q is not the event's region %q", m[2], region)
		ok = false
	}
	if m[3] != account {
		d.add(field, arn, "account %q is not the event's account %q", m[3], account)
		ok = false
	}
	if p := partitionOf(region); m[1] != p {
		d.add(field, arn, "partition %q does not hold region %q (want %q)", m[1], region, p)
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

// str reads a string field. A missing key and JSON null are both "absent";
// ok is true when a string was read (possibly "").
func (d *decoder) str(obj object, prefix, key string, required bool) (s string, ok bool) {
	raw, present := obj[key]
	if !present || string(raw) == "null" {
		if required {
			d.add(prefix+key, "", "missing")
		}
		return "", false
	}
	if raw[0] != '"' {
		d.add(prefix+key, string(raw), "want a JSON string, got %s", jsonKind(raw))
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		d.add(prefix+key, string(raw), "not a valid JSON string")
		return "", false
	}
	if required && s == "" {
		d.add(prefix+key, "", "empty")
		return "", false
	}
	return s, true
}

// strings reads an optional array of strings; nil when absent.
func (d *decoder) strings(obj object, key string) []string {
	raw, present := obj[key]
	if !present || string(raw) == "null" {
		return nil
	}
	if raw[0] != '[' {
		d.add(key, string(raw), "want a JSON array of strings, got %s", jsonKind(raw))
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		d.add(key, string(raw), "not a valid JSON array")
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		var s string
		if it[0] != '"' || json.Unmarshal(it, &s) != nil {
			d.add(fmt.Sprintf("%s[%d]", key, i), string(it), "want a JSON string, got %s", jsonKind(it))
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) object(obj object, prefix, key string, required bool) object {
	raw, present := obj[key]
	if !present || string(raw) == "null" {
		if required {
			d.add(prefix+key, "", "missing")
		}
		return nil
	}
	if raw[0] != '{' {
		d.add(prefix+key, string(raw), "want a JSON object, got %s", jsonKind(raw))
		return nil
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		d.add(prefix+key, "", "not a valid JSON object")
		return nil
	}
	return o
}

// caseVariants reports keys that differ from a known key only in letter case.
func (d *decoder) caseVariants(obj object, prefix string, known []string) {
	for key := range obj {
		for _, k := range known {
			if key != k && strings.EqualFold(key, k) {
				d.add(prefix+key, "", "unexpected key; did you mean %q? (keys are case-sensitive)", k)
			}
		}
	}
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

// duplicateKeys returns the paths of keys that occur twice in one object
// (at most 10). raw must be valid JSON.
func duplicateKeys(raw []byte) []string {
	type frame struct {
		object  bool
		path    string
		keys    map[string]bool
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
	var dups []string
	dec := json.NewDecoder(bytes.NewReader(raw))
	childPath := func(f *frame) string {
		if f.object {
			if f.path == "" {
				return f.key
			}
			return f.path + "." + f.key
		}
		return fmt.Sprintf("%s[%d]", f.path, f.index)
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	for len(dups) < 10 {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if delim, ok := tok.(json.Delim); ok && delim == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			key, _ := tok.(string)
			if top.keys[key] {
				top.key = key
				dups = append(dups, childPath(top))
			}
			top.keys[key] = true
			top.key = key
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			path := ""
			if top != nil {
				path = childPath(top)
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), path: path, keys: map[string]bool{}, wantKey: true})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	return dups
}
