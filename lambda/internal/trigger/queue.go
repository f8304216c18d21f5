package trigger

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/pattern"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// The continuation queue. A push whose work cannot finish inside one invocation sends the
// rest, as one Continuation, to an SQS FIFO queue that the same function consumes through an
// event source mapping: Lambda then invokes it with an SQS event (Records[], eventSource
// "aws:sqs"), which DecodeQueueBatch reads, and each record's body is decoded by
// DecodeContinuation.

// KindContinue is the kind of an SQS event of the continuation queue.
const KindContinue Kind = "continue"

// EventSourceSQS is the eventSource of the records of an SQS event.
const EventSourceSQS = "aws:sqs"

// ContinuationFormat names the body's format; a body of any other format is refused.
const ContinuationFormat = "pinroll-continuation/1"

// MaxContinuationSize is what a continuation body may take: SQS's 256 KiB limit on a message.
const MaxContinuationSize = 256 * 1024

// MaxBatch is the most records an SQS event of a FIFO queue carries.
const MaxBatch = 10

// QueueRecord is one SQS message of an SQS event, as the event source mapping delivers it.
type QueueRecord struct {
	MessageID    string // what a batch item failure names
	Body         string
	ReceiveCount int    // attributes.ApproximateReceiveCount: 1 for a first delivery
	GroupID      string // attributes.MessageGroupId
	SourceARN    string // eventSourceARN: the queue
}

// IsQueueEvent reports whether raw is an SQS event (a JSON object with a Records member)
// rather than an EventBridge event. It says nothing about the event's validity.
func IsQueueEvent(raw []byte) bool {
	var probe struct {
		Records json.RawMessage `json:"Records"`
	}
	return json.Unmarshal(raw, &probe) == nil && len(probe.Records) > 0
}

var (
	queueARNRE   = pattern.Must(`^arn:` + partitionRE + `:sqs:([a-z0-9-]+):([0-9]+):([A-Za-z0-9_.-]+)$`)
	clusterARNRE = pattern.Must(`^arn:`+partitionRE+`:ecs:([a-z0-9-]+):([0-9]+):cluster/([A-Za-z0-9_-]+)$`).Groups(0, 0, 0, 255)
	serviceRE    = pattern.Must(`^[A-Za-z0-9_-]+$`).Len(1, 255)
)

// DecodeQueueBatch decodes an SQS event: 1 to MaxBatch records, each from SQS, with a message
// id, a body and a receive count. The bodies are not decoded here (DecodeContinuation does,
// one by one, so one bad message fails only itself). Every problem is reported, in an
// *InvalidEventError.
func DecodeQueueBatch(raw []byte) ([]QueueRecord, error) {
	d := &decoder{}
	var in struct {
		Records []struct {
			MessageID      *string           `json:"messageId"`
			Body           *string           `json:"body"`
			Attributes     map[string]string `json:"attributes"`
			EventSource    string            `json:"eventSource"`
			EventSourceARN string            `json:"eventSourceARN"`
		} `json:"Records"`
	}
	if len(raw) > 6<<20 {
		d.add("event", "", "%d bytes, more than Lambda's 6 MB invocation payload", len(raw))
	} else if err := json.Unmarshal(raw, &in); err != nil {
		d.add("event", "", "not an SQS event: %v", err)
	}
	if len(d.problems) == 0 && (len(in.Records) == 0 || len(in.Records) > MaxBatch) {
		d.add("Records", "", "%d records; an SQS event of a FIFO queue carries 1 to %d", len(in.Records), MaxBatch)
	}
	var out []QueueRecord
	for i, r := range in.Records {
		field := func(f string) string { return fmt.Sprintf("Records[%d].%s", i, f) }
		rec := QueueRecord{SourceARN: r.EventSourceARN, GroupID: r.Attributes["MessageGroupId"]}
		if r.EventSource != EventSourceSQS {
			d.add(field("eventSource"), r.EventSource, "want %s", EventSourceSQS)
		}
		if r.MessageID == nil || *r.MessageID == "" {
			d.add(field("messageId"), "", "missing")
		} else {
			rec.MessageID = *r.MessageID
		}
		if r.Body == nil {
			d.add(field("body"), "", "missing")
		} else {
			rec.Body = *r.Body
		}
		if !queueARNRE.MatchString(r.EventSourceARN) {
			d.add(field("eventSourceARN"), r.EventSourceARN, "not an SQS queue ARN (arn:aws:sqs:<region>:<account>:<queue>)")
		}
		n, err := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
		if err != nil || n < 1 {
			d.add(field("attributes.ApproximateReceiveCount"), r.Attributes["ApproximateReceiveCount"], "want a count of 1 or more")
		}
		rec.ReceiveCount = n
		out = append(out, rec)
	}
	if len(d.problems) > 0 {
		return nil, &InvalidEventError{Err: errors.Join(d.problems...)}
	}
	return out, nil
}

// Continuation is the rest of one push's work in one target account: what one message of the
// continuation queue carries. It keeps the push itself (so each step checks again that it is
// current, and tags what it registers with the event's id), which services are still to move,
// what the steps before it did (so the last one reports the whole event), and how full it left
// the account's buckets.
type Continuation struct {
	Push Push
	// Target is the 12-digit account whose services are still to move.
	Target string
	// Step counts the continuations of the push in this account: 1 for the first.
	Step int
	// Services still to move: cluster ARN → service names. Empty when All is set.
	Services map[string][]string
	// All: the list would not fit in a message; every service in scope is planned again (those
	// already done are found unchanged).
	All bool
	// Totals is what the invocations before this one did, together.
	Totals report.Totals
	// Held and Failed are the first services the steps before held or failed for good (at
	// most report.MaxCarried each), for the final report.
	Held, Failed []report.Service
	// Pace is the account's buckets as the last invocation left them (see discover.Pacer.AtMost).
	Pace map[string]Bucket
	// Began is when the event's first invocation began.
	Began time.Time
	// Join counts the target accounts whose final parts the index table's join collects for
	// the event's one final report (0: no join; this account's final report is the event's
	// in this account).
	Join int
}

// Bucket is one token bucket's level at a time.
type Bucket struct {
	Tokens float64   `json:"tokens"`
	At     time.Time `json:"at"`
}

// PacedOperations are the buckets a continuation carries: the writes that pace a long push.
var PacedOperations = []string{"RegisterTaskDefinition", "UpdateService"}

// continuationJSON is the wire form of a Continuation. The push travels as the EventBridge
// event it came from (rebuilt from the decoded value: Push.Event), so it is validated by the
// same decoder as a fresh event.
type continuationJSON struct {
	Format   string              `json:"format"`
	Event    json.RawMessage     `json:"event"`
	Target   string              `json:"target"`
	Step     int                 `json:"step"`
	Services map[string][]string `json:"services,omitempty"`
	// ServicesGzip is Services, gzipped and base64-encoded, when the plain list would not fit
	// the message (service names compress well: 10,000 of them fit).
	ServicesGzip []byte            `json:"services_gzip,omitempty"`
	All          bool              `json:"all,omitempty"`
	Totals       report.Totals     `json:"totals"`
	Held         []report.Service  `json:"held,omitempty"`
	Failed       []report.Service  `json:"failed,omitempty"`
	Pace         map[string]Bucket `json:"pace,omitempty"`
	Began        time.Time         `json:"began"`
	Join         int               `json:"join,omitempty"`
}

// Encode renders c as a message body: the services listed as they are, or gzipped when the
// plain list would make the body larger than MaxContinuationSize less an envelope's room. The
// body may still be too large (a caller then sets All).
func (c Continuation) Encode() ([]byte, error) {
	in := continuationJSON{
		Format: ContinuationFormat, Event: c.Push.Event(), Target: c.Target, Step: c.Step,
		Services: c.Services, All: c.All, Totals: c.Totals, Held: c.Held, Failed: c.Failed, Pace: c.Pace, Began: c.Began,
		Join: c.Join,
	}
	body, err := json.Marshal(in)
	if err != nil || len(body) <= MaxContinuationSize-envelopeRoom {
		return body, err
	}
	plain, err := json.Marshal(c.Services)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = w.Write(plain) // a bytes.Buffer does not fail
	if err := w.Close(); err != nil {
		return nil, err
	}
	in.Services, in.ServicesGzip = nil, gz.Bytes()
	return json.Marshal(in)
}

// envelopeRoom is what a body leaves of SQS's limit for the message's own attributes.
const envelopeRoom = 8 * 1024

// maxServicesJSON bounds a gzipped service list once unzipped (10,000 names of 255
// characters take 2.6 MB): a body that inflates past it is refused, not read.
const maxServicesJSON = 4 << 20

// Remaining counts the services the continuation still has to move (-1 with All: unknown).
func (c Continuation) Remaining() int {
	if c.All {
		return -1
	}
	n := 0
	for _, names := range c.Services {
		n += len(names)
	}
	return n
}

// DecodeContinuation decodes and validates a continuation body strictly: its format, the push
// (an event pinroll would deploy), the target, the step, every cluster ARN (of the target's
// account) and service name, the totals and the buckets. Every problem is reported, in an
// *InvalidEventError; a body that fails here can never succeed.
func DecodeContinuation(body []byte) (Continuation, error) {
	d := &decoder{}
	c := d.continuation(body)
	if len(d.problems) > 0 {
		return Continuation{}, &InvalidEventError{Err: errors.Join(d.problems...)}
	}
	return c, nil
}

func (d *decoder) continuation(body []byte) Continuation {
	var c Continuation
	if len(body) > MaxContinuationSize {
		d.add("body", "", "%d bytes, more than SQS's limit of %d", len(body), MaxContinuationSize)
		return c
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var in continuationJSON
	if err := dec.Decode(&in); err != nil {
		d.add("body", "", "not a pinroll continuation: %v", err)
		return c
	}
	if dec.More() {
		d.add("body", "", "data after the continuation's JSON object")
	}
	if in.Format != ContinuationFormat {
		d.add("format", in.Format, "want %s", ContinuationFormat)
		return c
	}
	ev, err := Decode(in.Event)
	var inv *InvalidEventError
	switch {
	case errors.As(err, &inv):
		for _, p := range inv.Problems() {
			d.add("event", "", "%v", p)
		}
	case err != nil:
		d.add("event", "", "%v", err)
	case ev.Kind != KindPush:
		d.add("event", "", "a %s event; a continuation carries a push", ev.Kind)
	case ev.Push.SkipReason() != "":
		d.add("event", "", "a push pinroll does not deploy (%s)", ev.Push.SkipReason())
	default:
		c.Push = *ev.Push
	}
	c.Target = in.Target
	if !accountRE.MatchString(in.Target) {
		d.add("target", in.Target, "want exactly 12 digits")
	}
	c.Step = in.Step
	if in.Step < 1 || in.Step > maxSteps {
		d.add("step", strconv.Itoa(in.Step), "want 1 to %d", maxSteps)
	}
	if len(in.ServicesGzip) > 0 {
		if len(in.Services) > 0 {
			d.add("services_gzip", "", "given with services; a continuation sends one or the other")
		} else if err := gunzipServices(in.ServicesGzip, &in.Services); err != nil {
			d.add("services_gzip", "", "%v", err)
		}
	}
	c.All = in.All
	switch {
	case in.All && len(in.Services) > 0:
		d.add("services", "", "listed although all is set")
	case !in.All && len(in.Services) == 0:
		d.add("services", "", "missing: a continuation names the services still to move, or sets all")
	}
	c.Services = map[string][]string{}
	for cluster, names := range in.Services {
		m := queueClusterARN(cluster)
		switch {
		case m == nil:
			d.add("services", cluster, "not an ECS cluster ARN (arn:aws:ecs:<region>:<account>:cluster/<name>)")
			continue
		case m[3] != in.Target:
			d.add("services", cluster, "a cluster of account %s, not of target %s", m[3], in.Target)
		}
		if len(names) == 0 {
			d.add("services."+m[4], "", "no service listed")
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				d.add("services."+m[4], n, "listed twice")
				continue
			}
			seen[n] = true
			if !serviceRE.MatchString(n) {
				d.add("services."+m[4], n, "not an ECS service name (1 to 255 of A-Z, a-z, 0-9, - and _)")
			}
		}
		c.Services[cluster] = names
	}
	t := in.Totals
	for name, v := range map[string]int{"totals.changes": t.Changes, "totals.unchanged": t.Unchanged, "totals.held": t.Held,
		"totals.skipped": t.Skipped, "totals.failed": t.Failed, "totals.invocations": t.Invocations} {
		if v < 0 {
			d.add(name, strconv.Itoa(v), "a count cannot be negative")
		}
	}
	if t.Invocations < 1 {
		d.add("totals.invocations", strconv.Itoa(t.Invocations), "at least the invocation that sent the continuation")
	}
	c.Totals = t
	if len(in.Held) > report.MaxCarried || len(in.Failed) > report.MaxCarried {
		d.add("held", "", "%d held and %d failed services carried; at most %d of each", len(in.Held), len(in.Failed), report.MaxCarried)
	}
	c.Held, c.Failed = in.Held, in.Failed
	for op, b := range in.Pace {
		if !slices.Contains(PacedOperations, op) {
			d.add("pace."+op, "", "not a paced operation (want %s)", strings.Join(PacedOperations, " or "))
		}
		if math.IsNaN(b.Tokens) || b.Tokens < 0 || b.Tokens > 1000 || b.At.IsZero() {
			d.add("pace."+op, fmt.Sprint(b.Tokens), "want a token count of 0 to 1000 and the time it was read")
		}
	}
	c.Pace = in.Pace
	if in.Began.IsZero() {
		d.add("began", "", "missing")
	}
	c.Began = in.Began
	if in.Join < 0 || in.Join == 1 || in.Join > maxJoin {
		d.add("join", strconv.Itoa(in.Join), "want 0 (no join) or 2 to %d accounts", maxJoin)
	}
	c.Join = in.Join
	return c
}

// maxJoin bounds the accounts of one join: far more than PINROLL_TARGET_ROLES can name.
const maxJoin = 1000

// gunzipServices reads a gzipped service list, at most maxServicesJSON bytes of it.
func gunzipServices(gz []byte, into *map[string][]string) error {
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return fmt.Errorf("not gzip: %v", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxServicesJSON+1))
	if err != nil {
		return fmt.Errorf("cannot unzip: %v", err)
	}
	if len(plain) > maxServicesJSON {
		return fmt.Errorf("more than %d bytes unzipped", maxServicesJSON)
	}
	if err := json.Unmarshal(plain, into); err != nil {
		return fmt.Errorf("not a service list: %v", err)
	}
	return nil
}

// maxSteps bounds a chain of continuations: 2,000 registrations at 1 a second take 3
// invocations of 15 minutes; 1,000 steps is far past any fleet and stops a chain that makes
// no progress.
const maxSteps = 1000

// queueClusterARN matches a cluster ARN: [all, partition, region, account, name], or nil.
func queueClusterARN(s string) []string { return clusterARNRE.FindStringSubmatch(s) }

// Event renders p as the EventBridge event it was decoded from (the fields pinroll reads):
// an ECR Image Action, or, for a replica, an ECR Replication Action naming the destination
// repository in resources. Decode(p.Event()) gives p back.
func (p Push) Event() []byte {
	detail := map[string]string{
		"result": p.Result, "repository-name": p.Repository, "image-digest": p.Digest,
		"action-type": p.ActionType, "image-tag": p.Tag,
	}
	ev := map[string]any{
		"version": "0", "id": p.EventID, "source": SourceECR, "account": p.Account, "region": p.Region,
		"time": p.Time.UTC().Format(time.RFC3339), "detail-type": DetailTypeECRImage, "resources": []string{}, "detail": detail,
	}
	if p.ManifestMediaType != "" {
		detail["manifest-media-type"] = p.ManifestMediaType
	}
	if p.ArtifactMediaType != "" {
		detail["artifact-media-type"] = p.ArtifactMediaType
	}
	if o := p.ReplicatedFrom; o != nil {
		ev["detail-type"] = DetailTypeReplication
		ev["resources"] = []string{"arn:" + partitionOf(p.Region) + ":ecr:" + p.Region + ":" + p.Account + ":repository/" + p.Repository}
		detail["source-account"], detail["source-region"] = o.Account, o.Region
	}
	raw, _ := json.Marshal(ev) // strings only: cannot fail
	return raw
}
