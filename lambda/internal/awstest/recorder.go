package awstest

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Recorder counts the AWS operations a client sends, by the X-Amz-Target header that the
// JSON protocol puts on every request (e.g. "AmazonEC2ContainerServiceV20141113.ListServices").
type Recorder struct {
	mu    sync.Mutex
	calls []string
}

// Wrap returns cfg with its HTTP client recording into r.
func (r *Recorder) Wrap(cfg aws.Config) aws.Config {
	base := cfg.HTTPClient
	if base == nil {
		base = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = recordingClient{base: base, r: r}
	return cfg
}

type recordingClient struct {
	base aws.HTTPClient
	r    *Recorder
}

func (c recordingClient) Do(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	if _, op, ok := strings.Cut(target, "."); ok {
		c.r.mu.Lock()
		c.r.calls = append(c.r.calls, op)
		c.r.mu.Unlock()
	}
	return c.base.Do(req)
}

// Calls returns every operation sent so far, in order.
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Count returns how many times op was sent.
func (r *Recorder) Count(op string) int {
	n := 0
	for _, c := range r.Calls() {
		if c == op {
			n++
		}
	}
	return n
}

// Mutations returns the operations sent so far that change state.
func (r *Recorder) Mutations() []string {
	var out []string
	for _, c := range r.Calls() {
		if Mutating(c) {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets the calls recorded so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

// Mutating reports whether an AWS operation changes state, judged by its verb.
func Mutating(op string) bool {
	for _, verb := range []string{"Register", "Deregister", "Update", "Create", "Delete", "BatchDelete", "Put", "Tag", "Untag", "Run", "Start", "Stop", "Publish", "Send"} {
		if strings.HasPrefix(op, verb) {
			return true
		}
	}
	return false
}
