package awstest

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// TaskDefinitionFixture decodes a DescribeTaskDefinition response kept as a file (the wire
// shape, as `aws ecs describe-task-definition --include TAGS` prints it) with the SDK's own
// deserializer, so a fixture decodes exactly as a real answer does.
func TaskDefinitionFixture(t testing.TB, path string) *ecs.DescribeTaskDefinitionOutput {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	client := ecs.New(ecs.Options{
		Region:      Region,
		Credentials: aws.AnonymousCredentials{},
		HTTPClient:  cannedResponse(body),
		Retryer:     aws.NopRetryer{},
	})
	out, err := client.DescribeTaskDefinition(t.Context(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("fixture")})
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return out
}

// cannedResponse answers every request with the same JSON body.
type cannedResponse []byte

func (c cannedResponse) Do(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": []string{"application/x-amz-json-1.1"}},
		Body:       io.NopCloser(bytes.NewReader(c)),
	}, nil
}
