package verify

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// fakeRegistry answers DescribeImages by id as ECR does: the whole call fails when one id is
// unknown; more than 100 ids are refused.
type fakeRegistry struct {
	images map[string]ecrtypes.ImageStatus // digest → status
	repos  map[string]bool
	calls  int
}

func (f *fakeRegistry) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	f.calls++
	if !f.repos[aws.ToString(in.RepositoryName)] {
		return nil, &ecrtypes.RepositoryNotFoundException{Message: aws.String("no repository")}
	}
	if len(in.ImageIds) > DescribeImagesBatch {
		return nil, fmt.Errorf("%d ids: InvalidParameterException", len(in.ImageIds))
	}
	out := &ecr.DescribeImagesOutput{}
	for _, id := range in.ImageIds {
		d := aws.ToString(id.ImageDigest)
		status, ok := f.images[d]
		if !ok {
			return nil, &ecrtypes.ImageNotFoundException{Message: aws.String(d)}
		}
		out.ImageDetails = append(out.ImageDetails, ecrtypes.ImageDetail{ImageDigest: aws.String(d), ImageStatus: status})
	}
	return out, nil
}

func digestN(i int) string { return fmt.Sprintf("sha256:%064x", i) }

func TestDescribeImagesBatchesByHundredAndIsolatesUnknownIDs(t *testing.T) {
	f := &fakeRegistry{images: map[string]ecrtypes.ImageStatus{}, repos: map[string]bool{"app": true}}
	var q Query
	var pins []Pin
	for i := range 250 {
		if i != 7 && i != 201 {
			f.images[digestN(i)] = ecrtypes.ImageStatusActive
		}
		pins = append(pins, Pin{Cluster: "prod", Service: fmt.Sprintf("s%d", i), Revision: "f:1", Registry: "111111111111", Repository: "app", Digest: digestN(i), Image: "host/app@" + digestN(i)})
	}
	f.images[digestN(9)] = ecrtypes.ImageStatusArchived
	pins = append(pins, Pin{Cluster: "prod", Service: "gone", Revision: "g:1", Previous: true, Registry: "111111111111", Repository: "deleted", Digest: digestN(1), Image: "host/deleted@" + digestN(1)})
	Ask(&q, pins)
	Ask(&q, pins) // each id once
	im := &Images{}
	if err := q.Describe(context.Background(), f, im); err != nil {
		t.Fatal(err)
	}
	// 3 batches; the two refused ones split down to their unknown id (2·log2(100) calls each,
	// about), and one call for the repository that does not exist.
	if f.calls < 4 || f.calls > 3+2*2*7+1 {
		t.Errorf("%d calls", f.calls)
	}
	missing := Missing(pins, im)
	got := map[string]string{}
	for _, m := range missing {
		got[m.Service] = m.Why
	}
	if len(got) != 4 || !strings.HasPrefix(got["s7"], "not in ECR") || !strings.HasPrefix(got["s201"], "not in ECR") ||
		!strings.HasPrefix(got["s9"], "archived") || !strings.Contains(got["gone"], "previous revision") || !strings.Contains(got["gone"], "repository deleted does not exist") {
		t.Errorf("missing: %v", got)
	}

	// A healthy repository: ⌈ids/100⌉ calls.
	healthy := &fakeRegistry{images: f.images, repos: f.repos}
	var h Query
	for i := 10; i < 200; i++ {
		h.Digest("111111111111", "app", digestN(i))
	}
	if err := h.Describe(context.Background(), healthy, &Images{}); err != nil || healthy.calls != 2 {
		t.Errorf("190 ids: %d calls (%v), want 2", healthy.calls, err)
	}
}
