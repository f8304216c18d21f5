package pinroll

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"
)

// GIVEN the default stack (a 5-minute function) and the full one (10 minutes), THEN the
// continuation queue is FIFO, SSE-SQS, with content-based deduplication off, a visibility timeout
// six times the function's timeout (so it moves with the timeout: 1,800 s and 3,600 s), 4 days'
// retention, and a redrive policy to its FIFO dead-letter queue after 5 receives; the dead-letter
// queue is encrypted the same way, keeps 14 days and carries a redrive allow policy
// (CT.SQS.PR.1). No KMS key is added for them (the stacks' keys stay the log key and the topic's).
func TestContinueQueues(t *testing.T) {
	full, min := fixtures(t)
	for s, timeout := range map[*synthesized]float64{full: 600, min: 300} {
		name := *s.stack.StackName()
		if diff := cmp.Diff(map[string]any{
			"FifoQueue": true, "ContentBasedDeduplication": false, "SqsManagedSseEnabled": true,
			"MessageRetentionPeriod": 4 * 86400.0,
			"VisibilityTimeout":      6 * timeout,
			"RedrivePolicy": map[string]any{
				"deadLetterTargetArn": "${" + s.id("ContinueDeadLetterQueue") + ".Arn}",
				"maxReceiveCount":     5.0,
			},
		}, s.props("ContinueQueue")); diff != "" {
			t.Errorf("%s: continuation queue (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(map[string]any{
			"FifoQueue": true, "ContentBasedDeduplication": false, "SqsManagedSseEnabled": true,
			"MessageRetentionPeriod": 14 * 86400.0,
			"RedriveAllowPolicy":     map[string]any{"redrivePermission": "allowAll"},
		}, s.props("ContinueDeadLetterQueue")); diff != "" {
			t.Errorf("%s: continuation dead-letter queue (-want +got):\n%s", name, diff)
		}
		// The style guide's way, for what a reader checks first: FIFO, encrypted, redriven.
		s.template.HasResourceProperties(jsii.String("AWS::SQS::Queue"), assertions.Match_ObjectLike(&map[string]any{
			"FifoQueue":            true,
			"SqsManagedSseEnabled": true,
			"KmsMasterKeyId":       assertions.Match_Absent(),
			"RedrivePolicy":        assertions.Match_ObjectLike(&map[string]any{"maxReceiveCount": 5}),
		}))
		// Lambda refuses a mapping whose queue's visibility timeout is below the function's.
		fn := s.props("Function")
		if vis := s.props("ContinueQueue")["VisibilityTimeout"]; fn["Timeout"] != timeout || vis != 6*fn["Timeout"].(float64) {
			t.Errorf("%s: visibility %v for a function timeout of %v, want 6 times it", name, vis, fn["Timeout"])
		}
	}
}

// GIVEN the default stack, THEN the function consumes the continuation queue through one event
// source mapping: one message a batch, partial batch responses, maximum concurrency 2, enabled;
// and the function's reserved concurrency is not below the mapping's maximum concurrency.
func TestContinueMapping(t *testing.T) {
	full, min := fixtures(t)
	for _, s := range []*synthesized{full, min} {
		s.template.ResourceCountIs(jsii.String("AWS::Lambda::EventSourceMapping"), jsii.Number(1))
		if diff := cmp.Diff(map[string]any{
			"FunctionName":          "${" + s.id("Function") + "}",
			"EventSourceArn":        "${" + s.id("ContinueQueue") + ".Arn}",
			"BatchSize":             1.0,
			"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
			"ScalingConfig":         map[string]any{"MaximumConcurrency": 2.0},
			"Enabled":               true,
		}, s.props("ContinueMapping")); diff != "" {
			t.Errorf("%s: event source mapping (-want +got):\n%s", *s.stack.StackName(), diff)
		}
		s.template.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), assertions.Match_ObjectLike(&map[string]any{
			"FunctionResponseTypes": []string{"ReportBatchItemFailures"},
			"ScalingConfig":         map[string]any{"MaximumConcurrency": 2},
		}))
		if conc := s.props("Function")["ReservedConcurrentExecutions"].(float64); conc < 2 {
			t.Errorf("%s: reserved concurrency %v is below the mapping's maximum concurrency 2", *s.stack.StackName(), conc)
		}
	}
}
