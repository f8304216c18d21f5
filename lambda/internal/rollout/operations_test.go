package rollout_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// Write-back, notifications and metrics, wired as the function wires them (FromAWSConfig),
// against moto's SSM, SNS and SQS.
func TestWriteBackNotificationsAndMetrics(t *testing.T) {
	onBackend(t, "moto", func(t *testing.T, cfg aws.Config) {
		ctx := context.Background()
		w := awstest.NewWorld(t, cfg)
		w.Repository("app")
		w.Cluster("prod")
		w.Service("prod", "api", w.TaskDefinition("api", awstest.Container("app", w.Image("app", "latest"))))

		topic, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("pinroll")})
		if err != nil {
			t.Fatal(err)
		}
		queue, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("inbox")})
		if err != nil {
			t.Fatal(err)
		}
		queueARN := "arn:aws:sqs:" + awstest.Region + ":" + awstest.Account + ":inbox"
		if _, err := sns.NewFromConfig(cfg).Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(queueARN)}); err != nil {
			t.Fatal(err)
		}

		var logs bytes.Buffer
		engine := atHome(rollout.FromAWSConfig(config.Config{ParameterPrefix: "/pinroll/images", NotifyTopicARN: aws.ToString(topic.TopicArn)},
			cfg, slog.New(slog.NewJSONHandler(&logs, nil))))

		param := func() string {
			out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/pinroll/images/app/latest")})
			if err != nil {
				t.Fatalf("read the written-back parameter: %v", err)
			}
			return aws.ToString(out.Parameter.Value)
		}

		d1 := w.Push("app", "latest", "v1")
		rep, err := engine.HandleRaw(ctx, awstest.PushEvent("e1", awstest.Account, "app", "latest", d1))
		if err != nil || rep.Outcome != report.Deployed {
			t.Fatalf("push 1: %v %+v", err, rep)
		}
		if got := param(); got != rep.Image {
			t.Errorf("parameter after push 1 = %q, want %q", got, rep.Image)
		}
		d2 := w.Push("app", "latest", "v2")
		rep, err = engine.HandleRaw(ctx, awstest.PushEvent("e2", awstest.Account, "app", "latest", d2))
		if err != nil || rep.Outcome != report.Deployed {
			t.Fatalf("push 2: %v %+v", err, rep)
		}
		if got := param(); got != w.Image("app", "latest")+"@"+d2 {
			t.Errorf("parameter after push 2 = %q, want it updated to %s", got, d2)
		}

		msgs, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs.Messages) != 2 {
			t.Fatalf("the topic received %d notifications, want 2 (one per deployment)", len(msgs.Messages))
		}
		for _, m := range msgs.Messages {
			var envelope struct{ Subject, Message string }
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &envelope); err != nil {
				t.Fatal(err)
			}
			// One Publish carries a text per protocol: a queue gets the report itself (Amazon Q's
			// custom notification is the default, for the chat channel; notify tests it).
			var body report.Report
			if err := json.Unmarshal([]byte(envelope.Message), &body); err != nil || body.Outcome != report.Deployed || body.EventID == "" || len(body.Changes) != 1 {
				t.Errorf("notification body is not a deployed report: %v %q", err, envelope.Message)
			}
			var chat struct{ Source string }
			if json.Unmarshal([]byte(envelope.Message), &chat); chat.Source == "custom" {
				t.Errorf("the queue got the chat notification, not the report: %q", envelope.Message)
			}
			if len(envelope.Subject) >= 100 || !strings.HasPrefix(envelope.Subject, "api -> ") {
				t.Errorf("subject %q, want the one-line summary, in the ASCII SNS takes", envelope.Subject)
			}
		}

		// Every event logs one EMF line with its API calls (and one small line per account its
		// report names, dimension Account).
		emf, perAccount := 0, 0
		sc := bufio.NewScanner(&logs)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil || line["_aws"] == nil {
				continue
			}
			if line["Account"] != nil {
				if line["Account"] != awstest.Account || line["ServicesDeployed"].(float64) != 1 {
					t.Errorf("per-account EMF line: %v", line)
				}
				perAccount++
				continue
			}
			emf++
			if line["Outcome"] != "deployed" || line["APICalls"].(float64) < 5 || line["ServicesDeployed"].(float64) != 1 || line["PushToDeploySeconds"] == nil {
				t.Errorf("EMF line: %v", line)
			}
		}
		if emf != 2 || perAccount != 2 {
			t.Errorf("%d EMF lines and %d per-account lines, want 2 and 2", emf, perAccount)
		}
	})
}
