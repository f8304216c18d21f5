package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func sqsClient(srv *emulator.Server, region string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL()),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
}

// fifoQueue creates name.fifo with a FIFO dead-letter queue after maxReceive receives.
func fifoQueue(t *testing.T, c *sqs.Client, name string, maxReceive int, visibility int) string {
	t.Helper()
	ctx := context.Background()
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq.fifo"), Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + ".fifo"), Attributes: map[string]string{
		"FifoQueue": "true", "VisibilityTimeout": fmt.Sprint(visibility),
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, attrs.Attributes["QueueArn"], maxReceive),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func send(t *testing.T, c *sqs.Client, url, group, dedup, body string) *sqs.SendMessageOutput {
	t.Helper()
	out, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body), MessageGroupId: aws.String(group), MessageDeduplicationId: aws.String(dedup)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func receive(t *testing.T, c *sqs.Client, url string, max int32) []types.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: max,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func bodies(msgs []types.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, aws.ToString(m.Body))
	}
	return out
}

func TestSQSFIFOOrderDeduplicationAndGroups(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	clock := emulator.NewManualClock(now)
	srv := start(t, emulator.Options{Now: clock.Now})
	c := sqsClient(srv, "us-east-1")
	url := fifoQueue(t, c, "continue", 3, 60)
	if want := "https://sqs.us-east-1.amazonaws.com/123456789012/continue.fifo"; url != want {
		t.Errorf("QueueUrl = %s, want %s", url, want)
	}

	first := send(t, c, url, "a", "a-1", "a1")
	send(t, c, url, "a", "a-2", "a2")
	send(t, c, url, "b", "b-1", "b1")
	// The same deduplication id within 5 minutes: accepted, answered as the first, not queued.
	dup := send(t, c, url, "a", "a-1", "a1 again")
	if aws.ToString(dup.MessageId) != aws.ToString(first.MessageId) || aws.ToString(dup.SequenceNumber) != aws.ToString(first.SequenceNumber) {
		t.Errorf("duplicate answered %s/%s, want the first message's %s/%s", aws.ToString(dup.MessageId), aws.ToString(dup.SequenceNumber), aws.ToString(first.MessageId), aws.ToString(first.SequenceNumber))
	}
	if n := len(srv.Emulator().QueueMessages("123456789012", "us-east-1", "continue.fifo")); n != 3 {
		t.Fatalf("queue holds %d messages, want 3 (the duplicate dropped)", n)
	}

	// One receive of 1: group a's first message; group a is then locked, group b is not.
	got := receive(t, c, url, 1)
	if strings.Join(bodies(got), ",") != "a1" {
		t.Fatalf("first receive = %v, want [a1]", bodies(got))
	}
	if rc := got[0].Attributes["ApproximateReceiveCount"]; rc != "1" {
		t.Errorf("ApproximateReceiveCount = %q, want 1", rc)
	}
	if g := got[0].Attributes["MessageGroupId"]; g != "a" {
		t.Errorf("MessageGroupId = %q, want a", g)
	}
	if next := receive(t, c, url, 10); strings.Join(bodies(next), ",") != "b1" {
		t.Fatalf("while a1 is in flight, receive = %v, want only [b1]", bodies(next))
	}
	if none := receive(t, c, url, 10); len(none) != 0 {
		t.Fatalf("both groups in flight, receive = %v, want nothing", bodies(none))
	}
	if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: got[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if next := receive(t, c, url, 10); strings.Join(bodies(next), ",") != "a2" {
		t.Fatalf("after deleting a1, receive = %v, want [a2]", bodies(next))
	}

	// After the window, the same id is a new message.
	clock.Advance(5*time.Minute + time.Second)
	again := send(t, c, url, "c", "a-1", "a1 later")
	if aws.ToString(again.MessageId) == aws.ToString(first.MessageId) {
		t.Error("a deduplication id reused after 5 minutes was dropped")
	}
}

func TestSQSVisibilityRedeliveryAndDeadLetterQueue(t *testing.T) {
	clock := emulator.NewManualClock(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	srv := start(t, emulator.Options{Now: clock.Now})
	c := sqsClient(srv, "us-east-1")
	url := fifoQueue(t, c, "work", 2, 30)
	send(t, c, url, "g", "1", "step-1")
	send(t, c, url, "g", "2", "step-2")
	ctx := context.Background()

	m := receive(t, c, url, 1)
	if len(m) != 1 {
		t.Fatalf("receive = %v", bodies(m))
	}
	// Not deleted: visible again once its visibility timeout passes, with a higher count.
	clock.Advance(31 * time.Second)
	m2 := receive(t, c, url, 1)
	if len(m2) != 1 || aws.ToString(m2[0].Body) != "step-1" || m2[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("redelivery = %v %v, want step-1 with count 2", bodies(m2), m2)
	}
	// The old receipt handle no longer changes anything.
	_, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m[0].ReceiptHandle, VisibilityTimeout: 0})
	var notInflight *types.MessageNotInflight
	if !errors.As(err, &notInflight) {
		t.Errorf("ChangeMessageVisibility with a stale handle = %v, want MessageNotInflight", err)
	}
	// ChangeMessageVisibility 0 makes it visible at once; received maxReceiveCount (2) times,
	// it moves to the dead-letter queue, and the group's next message follows.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m2[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	m3 := receive(t, c, url, 1)
	if len(m3) != 1 || aws.ToString(m3[0].Body) != "step-2" {
		t.Fatalf("after the redrive, receive = %v, want step-2", bodies(m3))
	}
	dlq := srv.Emulator().QueueMessages("123456789012", "us-east-1", "work-dlq.fifo")
	if len(dlq) != 1 || dlq[0].Body != "step-1" || dlq[0].Group != "g" {
		t.Fatalf("dead-letter queue = %+v, want step-1 of group g", dlq)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "1" || attrs.Attributes["FifoQueue"] != "true" {
		t.Errorf("attributes = %v", attrs.Attributes)
	}
	// Deleting with the current handle removes it; deleting again succeeds.
	for range 2 {
		if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m3[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	if left := srv.Emulator().QueueMessages("123456789012", "us-east-1", "work.fifo"); len(left) != 0 {
		t.Errorf("queue still holds %+v", left)
	}
}

func TestSQSErrors(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := sqsClient(srv, "us-east-1")
	ctx := context.Background()
	url := fifoQueue(t, c, "q", 3, 30)
	std, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("standard")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"unknown queue", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/123456789012/nope.fifo"), MessageBody: aws.String("x")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
		{"another region's queue", func() error {
			_, err := sqsClient(srv, "eu-west-1").GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
		{"FIFO without a group", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")})
			return err
		}, "MissingParameter"},
		{"FIFO without a deduplication id", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), MessageGroupId: aws.String("g")})
			return err
		}, "InvalidParameterValue"},
		{"FIFO with a per-message delay", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d"), DelaySeconds: 5})
			return err
		}, "InvalidParameterValue"},
		{"a body too large", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: std.QueueUrl, MessageBody: aws.String(strings.Repeat("x", 262145))})
			return err
		}, "InvalidParameterValue"},
		{"a body with a character SQS refuses", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: std.QueueUrl, MessageBody: aws.String("a\x01b")})
			return err
		}, "InvalidMessageContents"},
		{"a deduplication id on a standard queue", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: std.QueueUrl, MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")})
			return err
		}, "InvalidParameterValue"},
		{"a FIFO name without FifoQueue", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("x.fifo")})
			return err
		}, "InvalidParameterValue"},
		{"the same name, other attributes", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("standard"), Attributes: map[string]string{"VisibilityTimeout": "99"}})
			return err
		}, "QueueAlreadyExists"},
		{"a dead-letter queue that does not exist", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("r"), Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:none","maxReceiveCount":3}`}})
			return err
		}, "InvalidParameterValue"},
		{"a standard dead-letter queue for a FIFO queue", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("r.fifo"), Attributes: map[string]string{"FifoQueue": "true", "RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:standard","maxReceiveCount":3}`}})
			return err
		}, "InvalidParameterValue"},
		{"an unknown attribute", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("u"), Attributes: map[string]string{"Colour": "blue"}})
			return err
		}, "InvalidAttributeName"},
		{"too many messages asked", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
			return err
		}, "InvalidParameterValue"},
		{"a receipt handle that is none", func() error {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("garbage")})
			return err
		}, "ReceiptHandleIsInvalid"},
		{"GetQueueUrl of an unknown name", func() error {
			_, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if code, msg := apiCode(err); code != tc.code {
				t.Errorf("error = %v (code %q, %q), want code %s", err, code, msg, tc.code)
			}
		})
	}
	// The typed error too: the SDK maps QueueDoesNotExist.
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	var noQueue *types.QueueDoesNotExist
	if !errors.As(err, &noQueue) {
		t.Errorf("GetQueueUrl error %T %v, want *types.QueueDoesNotExist", err, err)
	}
	// CreateQueue with the same attributes is idempotent, and GetQueueUrl finds it.
	again, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("standard")})
	if err != nil || aws.ToString(again.QueueUrl) != aws.ToString(std.QueueUrl) {
		t.Errorf("CreateQueue again = %v, %v", again, err)
	}
	got, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("q.fifo")})
	if err != nil || aws.ToString(got.QueueUrl) != url {
		t.Errorf("GetQueueUrl = %v, %v", got, err)
	}
}

func TestSQSQueuesArePerAccountAndRegion(t *testing.T) {
	srv := start(t, emulator.Options{})
	e := srv.Emulator()
	url, err := e.CreateQueue("123456789012", "eu-west-1", "c.fifo", "c-dlq.fifo", 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqsClient(srv, "us-east-1").GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String("c.fifo")}); err == nil {
		t.Error("a queue of eu-west-1 is visible in us-east-1")
	}
	eu := sqsClient(srv, "eu-west-1")
	send(t, eu, url, "g", "d", "x")
	if got := receive(t, eu, url, 1); len(got) != 1 {
		t.Errorf("receive in eu-west-1 = %v", bodies(got))
	}
}
