package awstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// EventSourceMapping drives an SQS queue the way Lambda's event source mapping does, through
// the SQS API (so it works against pinroll's emulator and moto alike): it receives a batch,
// invokes the function with the SQS event (aws-lambda-go's events.SQSEvent), deletes the
// records the function handled and leaves the others — those its answer lists in
// batchItemFailures, or the whole batch when the invocation failed — to come back after their
// visibility timeout (ReportBatchItemFailures).
type EventSourceMapping struct {
	SQS      *sqs.Client
	QueueURL string
	// BatchSize is how many messages one invocation gets (1 when 0), as the mapping's BatchSize.
	BatchSize int32
	// Invoke runs the function once with event and returns its answer; an error is a failed
	// invocation (a function error or timeout).
	Invoke func(ctx context.Context, event []byte) ([]byte, error)

	arn string
}

// Delivery is one invocation the mapping made.
type Delivery struct {
	Messages []string // the message ids delivered
	Failed   []string // the ids left on the queue (listed as failures, or all of them when Err is set)
	Err      error    // the invocation failed
	Answer   []byte
}

// Poll receives one batch (without waiting) and invokes the function with it. ok is false when
// the queue had no visible message.
func (m *EventSourceMapping) Poll(ctx context.Context) (d Delivery, ok bool, err error) {
	if m.arn == "" {
		out, err := m.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(m.QueueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
		if err != nil {
			return d, false, fmt.Errorf("event source mapping: queue ARN: %w", err)
		}
		m.arn = out.Attributes[string(types.QueueAttributeNameQueueArn)]
	}
	batch := max(m.BatchSize, 1)
	out, err := m.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(m.QueueURL), MaxNumberOfMessages: batch,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return d, false, fmt.Errorf("event source mapping: receive: %w", err)
	}
	if len(out.Messages) == 0 {
		return d, false, nil
	}
	ev := events.SQSEvent{}
	handles := map[string]string{}
	for _, msg := range out.Messages {
		id := aws.ToString(msg.MessageId)
		handles[id] = aws.ToString(msg.ReceiptHandle)
		d.Messages = append(d.Messages, id)
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: id, ReceiptHandle: aws.ToString(msg.ReceiptHandle), Body: aws.ToString(msg.Body),
			Md5OfBody: aws.ToString(msg.MD5OfBody), Attributes: msg.Attributes,
			EventSource: "aws:sqs", EventSourceARN: m.arn, AWSRegion: m.SQS.Options().Region,
		})
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return d, true, err
	}
	d.Answer, d.Err = m.Invoke(ctx, raw)
	failed := map[string]bool{}
	if d.Err != nil {
		for _, id := range d.Messages {
			failed[id] = true
		}
	} else {
		var resp struct {
			BatchItemFailures []struct {
				ItemIdentifier string `json:"itemIdentifier"`
			} `json:"batchItemFailures"`
		}
		if err := json.Unmarshal(d.Answer, &resp); err != nil {
			// Lambda treats an answer it cannot read as the whole batch failing.
			d.Err = fmt.Errorf("event source mapping: the function's answer is not a batch response: %w", err)
			for _, id := range d.Messages {
				failed[id] = true
			}
		}
		for _, f := range resp.BatchItemFailures {
			if _, ok := handles[f.ItemIdentifier]; !ok {
				// An unknown id fails the whole batch (Lambda's documented behaviour).
				d.Err = fmt.Errorf("event source mapping: batchItemFailures names %q, not a message of the batch", f.ItemIdentifier)
				for _, id := range d.Messages {
					failed[id] = true
				}
				break
			}
			failed[f.ItemIdentifier] = true
		}
	}
	var errs []error
	for _, id := range d.Messages {
		if failed[id] {
			d.Failed = append(d.Failed, id)
			continue
		}
		if _, err := m.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(m.QueueURL), ReceiptHandle: aws.String(handles[id])}); err != nil {
			errs = append(errs, fmt.Errorf("event source mapping: delete %s: %w", id, err))
		}
	}
	return d, true, errors.Join(errs...)
}

// Drain polls until no message is visible, at most max invocations, and returns them.
func (m *EventSourceMapping) Drain(ctx context.Context, max int) ([]Delivery, error) {
	var all []Delivery
	for range max {
		d, ok, err := m.Poll(ctx)
		if err != nil {
			return all, err
		}
		if !ok {
			return all, nil
		}
		all = append(all, d)
	}
	return all, fmt.Errorf("event source mapping: still messages after %d invocations", max)
}

// InvokeURL is an EventSourceMapping.Invoke that posts each event to a Lambda invoke URL — the
// Runtime Interface Emulator's (/2015-03-31/functions/function/invocations) — and returns the
// function's answer; an answer with an errorType (a function error) is an error.
func InvokeURL(url string) func(ctx context.Context, event []byte) ([]byte, error) {
	return func(ctx context.Context, event []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("invoke %s: %w", url, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("invoke %s: %w", url, err)
		}
		var failure struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		if json.Unmarshal(body, &failure) == nil && failure.ErrorType != "" {
			return body, fmt.Errorf("function error %s: %s", failure.ErrorType, failure.ErrorMessage)
		}
		if resp.StatusCode != http.StatusOK {
			return body, fmt.Errorf("invoke %s: HTTP %d", url, resp.StatusCode)
		}
		return body, nil
	}
}
