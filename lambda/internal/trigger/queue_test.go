package trigger

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

// Push.Event rebuilds the event a push was decoded from: decoding it again gives the same push,
// for an ECR push and for a replica.
func TestPushEventRoundTrips(t *testing.T) {
	for _, name := range []string{"push-tagged.json", "push-multiarch-index.json", "replicate-us-west-2.json"} {
		raw, err := os.ReadFile(filepath.Join(eventsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, err := Decode(ev.Push.Event())
		if err != nil {
			t.Fatalf("%s: the rebuilt event does not decode: %v\n%s", name, err, ev.Push.Event())
		}
		if diff := cmp.Diff(ev, again); diff != "" {
			t.Errorf("%s: rebuilt event decodes differently (-first +again):\n%s", name, diff)
		}
	}
}

func sampleContinuation(t *testing.T) Continuation {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(eventsDir, "push-tagged.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	return Continuation{
		Push: *ev.Push, Target: "123456789012", Step: 2,
		Services: map[string][]string{"arn:aws:ecs:us-east-1:123456789012:cluster/prod": {"api", "worker"}},
		Totals:   report.Totals{Changes: 900, Unchanged: 3, Held: 1, Invocations: 2},
		Held:     []report.Service{{Account: "123456789012", Cluster: "prod", Service: "pay", Why: "waits for approval"}},
		Pace:     map[string]Bucket{"RegisterTaskDefinition": {Tokens: 0.25, At: at}},
		Began:    at.Add(-30 * time.Minute),
		Join:     3,
	}
}

func TestContinuationRoundTrips(t *testing.T) {
	c := sampleContinuation(t)
	body, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeContinuation(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("continuation (-sent +decoded):\n%s", diff)
	}
	if n := got.Remaining(); n != 2 {
		t.Errorf("Remaining = %d, want 2", n)
	}
}

// Every way a body can be wrong is named, all at once, and none decodes.
func TestDecodeContinuationRejects(t *testing.T) {
	good, err := sampleContinuation(t).Encode()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		raw, _ := json.Marshal(m)
		return string(raw)
	}
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"not JSON", "{", []string{"not a pinroll continuation"}},
		{"another format", edit(func(m map[string]any) { m["format"] = "pinroll-continuation/9" }), []string{`format "pinroll-continuation/9": want pinroll-continuation/1`}},
		{"an unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), []string{`unknown field "extra"`}},
		{"no push", edit(func(m map[string]any) { m["event"] = map[string]any{"source": "aws.events"} }), []string{"event: "}},
		{"a push pinroll skips", edit(func(m map[string]any) {
			m["event"].(map[string]any)["detail"].(map[string]any)["image-tag"] = ""
		}), []string{"a push pinroll does not deploy (untagged push"}},
		{"bad target, step, services, totals, pace", edit(func(m map[string]any) {
			m["target"] = "1234"
			m["step"] = 0
			m["services"] = map[string]any{"prod": []string{"api"}, "arn:aws:ecs:us-east-1:210987654321:cluster/x": []string{"a b", "a b"}}
			m["totals"] = map[string]any{"changes": -1, "invocations": 0}
			m["pace"] = map[string]any{"ListServices": map[string]any{"tokens": -2, "at": "2026-12-02T00:00:00Z"}}
		}), []string{`target "1234": want exactly 12 digits`, `step "0": want 1 to 1000`, `services "prod": not an ECS cluster ARN`,
			"a cluster of account 210987654321, not of target 1234", `services.x "a b": not an ECS service name`, `"a b": listed twice`,
			`totals.changes "-1": a count cannot be negative`, "totals.invocations", "pace.ListServices: not a paced operation", `pace.ListServices "-2"`}},
		{"a join of one account", edit(func(m map[string]any) { m["join"] = 1 }), []string{`join "1": want 0 (no join) or 2 to 1000 accounts`}},
		{"a join of a negative count", edit(func(m map[string]any) { m["join"] = -2 }), []string{`join "-2"`}},
		{"neither services nor all", edit(func(m map[string]any) { delete(m, "services") }), []string{"services: missing"}},
		{"services and all", edit(func(m map[string]any) { m["all"] = true }), []string{"listed although all is set"}},
		{"too large", strings.Repeat(" ", MaxContinuationSize+1), []string{"more than SQS's limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeContinuation([]byte(tc.body))
			if err == nil {
				t.Fatal("decoded")
			}
			if _, ok := err.(*InvalidEventError); !ok {
				t.Errorf("error is %T, want *InvalidEventError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// An SQS event as aws-lambda-go writes it decodes into its records.
func TestDecodeQueueBatch(t *testing.T) {
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: "m-1", Body: `{"x":1}`, EventSource: "aws:sqs", AWSRegion: "us-east-1",
		EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:pinroll-continue.fifo",
		Attributes:     map[string]string{"ApproximateReceiveCount": "2", "MessageGroupId": "123456789012"},
	}}}
	raw, _ := json.Marshal(ev)
	if !IsQueueEvent(raw) {
		t.Fatal("IsQueueEvent = false")
	}
	got, err := DecodeQueueBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []QueueRecord{{MessageID: "m-1", Body: `{"x":1}`, ReceiveCount: 2, GroupID: "123456789012", SourceARN: ev.Records[0].EventSourceARN}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	push, _ := os.ReadFile(filepath.Join(eventsDir, "push-tagged.json"))
	if IsQueueEvent(push) {
		t.Error("an EventBridge push is taken for an SQS event")
	}
	for _, tc := range []struct{ raw, want string }{
		{`{"Records":[]}`, "0 records"},
		{`{"Records":[{"messageId":"m","body":"b","eventSource":"aws:sns","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:q.fifo","attributes":{"ApproximateReceiveCount":"1"}}]}`, "want aws:sqs"},
		{`{"Records":[{"body":"b","eventSource":"aws:sqs","eventSourceARN":"x","attributes":{}}]}`, "Records[0].messageId: missing"},
		{`{"Records":[{"messageId":"m","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:q.fifo","attributes":{"ApproximateReceiveCount":"0"}}]}`, "Records[0].body: missing"},
		{fmt.Sprintf(`{"Records":[%s]}`, strings.TrimSuffix(strings.Repeat(`{"messageId":"m","body":"b","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:q.fifo","attributes":{"ApproximateReceiveCount":"1"}},`, 11), ",")), "11 records"},
	} {
		if _, err := DecodeQueueBatch([]byte(tc.raw)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeQueueBatch(%.60s…) = %v, want %q", tc.raw, err, tc.want)
		}
	}
}

// A continuation for 10,000 services fits SQS's 256 KiB: listed plainly when the names are
// short, gzipped when they are not, and decoded back to the same list either way. The sizes
// are logged (go test -v -run TestContinuationSizeAtTenThousandServices).
func TestContinuationSizeAtTenThousandServices(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  func(c, i int) string
	}{
		{"short names (svc-000)", func(c, i int) string { return fmt.Sprintf("svc-%03d", i) }},
		{"realistic names (payments-ledger-api-worker-0042)", func(c, i int) string {
			teams := []string{"payments", "checkout", "search", "identity", "catalog"}
			return fmt.Sprintf("%s-%s-api-worker-%04d", teams[(c+i)%len(teams)], []string{"ledger", "gateway", "indexer", "sessions"}[i%4], c*100+i)
		}},
		{"random 32-character names", func(c, i int) string {
			sum := fmt.Sprintf("%x", [16]byte{byte(c), byte(i), byte(i >> 8), byte(c * 7), byte(i * 13), byte(i * 31), byte(c * i), 1, 2, byte(i * 97), byte(c + i), byte(i ^ 0x5a), byte(i * 3), byte(c ^ i), byte(i * 251), byte(c * 17)})
			return sum
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleContinuation(t)
			c.Services = map[string][]string{}
			for cl := range 100 {
				arn := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:cluster/workload-cluster-%03d", cl)
				for i := range 100 {
					c.Services[arn] = append(c.Services[arn], tc.svc(cl, i))
				}
			}
			plain, _ := json.Marshal(c.Services)
			body, err := c.Encode()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("10,000 services: list %d bytes, message %d bytes (limit %d; gzipped: %v)", len(plain), len(body), MaxContinuationSize, strings.Contains(string(body), "services_gzip"))
			if len(body) > MaxContinuationSize-envelopeRoom {
				t.Fatalf("message of %d bytes does not fit", len(body))
			}
			got, err := DecodeContinuation(body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.Services, got.Services); diff != "" {
				t.Errorf("services differ after the round trip:\n%.2000s", diff)
			}
			if got.Remaining() != 10000 {
				t.Errorf("Remaining = %d", got.Remaining())
			}
		})
	}
	// A gzipped list that inflates past the bound is refused.
	var gz strings.Builder
	w := gzipWriter(&gz)
	_, _ = w.Write([]byte(`{"arn:aws:ecs:us-east-1:123456789012:cluster/x":["` + strings.Repeat("a", maxServicesJSON) + `"]}`))
	_ = w.Close()
	var m map[string]any
	body, _ := sampleContinuation(t).Encode()
	_ = json.Unmarshal(body, &m)
	delete(m, "services")
	m["services_gzip"] = []byte(gz.String())
	raw, _ := json.Marshal(m)
	if _, err := DecodeContinuation(raw); err == nil || !strings.Contains(err.Error(), "bytes unzipped") {
		t.Errorf("a gzip bomb: %v", err)
	}
}

func gzipWriter(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }
