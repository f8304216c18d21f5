package emulator_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

func ssmClient(url string, o clientOptions) *ssm.Client { return ssm.NewFromConfig(sdkConfig(url, o)) }
func snsClient(url string, o clientOptions) *sns.Client { return sns.NewFromConfig(sdkConfig(url, o)) }

// The calls pinroll's write-back makes: GetParameter (ParameterNotFound the first time), then
// PutParameter with Overwrite.
func TestParameterStoreAsWriteBackUsesIt(t *testing.T) {
	ctx := context.Background()
	srv := start(t, emulator.Options{})
	c := ssmClient(srv.URL(), clientOptions{maxAttempts: 1})
	const name = "/pinroll/images/shop/api/latest"
	_, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var notFound *ssmtypes.ParameterNotFound
	if !errors.As(err, &notFound) {
		t.Fatalf("missing parameter: %v, want ParameterNotFound", err)
	}
	for i, v := range []string{"img@sha256:1", "img@sha256:2"} {
		out, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(v), Type: ssmtypes.ParameterTypeString,
			Overwrite: aws.Bool(true), Description: aws.String("the image pinroll deployed")})
		if err != nil || out.Version != int64(i+1) || out.Tier != ssmtypes.ParameterTierStandard {
			t.Fatalf("put %d: %+v, %v", i, out, err)
		}
	}
	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Parameter
	if aws.ToString(p.Value) != "img@sha256:2" || p.Version != 2 || p.Type != ssmtypes.ParameterTypeString ||
		aws.ToString(p.ARN) != "arn:aws:ssm:us-east-1:"+account+":parameter"+name || p.LastModifiedDate == nil {
		t.Errorf("parameter = %+v", p)
	}
	if old, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name + ":1")}); err != nil || aws.ToString(old.Parameter.Value) != "img@sha256:1" {
		t.Errorf("version 1: %+v, %v", old, err)
	}
	_, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString})
	wantCode(t, err, "ParameterAlreadyExists")
	if v, version, ok := srv.Emulator().Parameter(account, "us-east-1", name); !ok || v != "img@sha256:2" || version != 2 {
		t.Errorf("Parameter accessor = %q, %d, %v", v, version, ok)
	}
	if _, _, ok := srv.Emulator().Parameter(devAccount, "us-east-1", name); ok {
		t.Error("Parameter accessor finds the parameter in another account")
	}

	// Parameters are per account: the dev account does not see the default account's.
	dev := ssm.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{maxAttempts: 1}))
	_, err = dev.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	wantCode(t, err, "ParameterNotFound")

	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	wantCode(t, err, "ParameterNotFound")
}

func TestParameterValidation(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ssmClient(srv.URL(), clientOptions{maxAttempts: 1})
	for _, tc := range []struct {
		name      string
		in        ssm.PutParameterInput
		code, msg string
	}{
		{"aws prefix", ssm.PutParameterInput{Name: aws.String("/aws/x"), Value: aws.String("v"), Type: "String"}, "ValidationException", `can't be prefixed with "aws" or "ssm"`},
		{"ssm prefix", ssm.PutParameterInput{Name: aws.String("SSM-thing"), Value: aws.String("v"), Type: "String"}, "ValidationException", `"ssm"`},
		{"space", ssm.PutParameterInput{Name: aws.String("/pinroll/my image"), Value: aws.String("v"), Type: "String"}, "ValidationException", "sub-path"},
		{"not fully qualified", ssm.PutParameterInput{Name: aws.String("pinroll/x"), Value: aws.String("v"), Type: "String"}, "ValidationException", "fully qualified"},
		{"too deep", ssm.PutParameterInput{Name: aws.String("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"), Value: aws.String("v"), Type: "String"}, "HierarchyLevelLimitExceededException", "at most 15 levels"},
		{"no type on create", ssm.PutParameterInput{Name: aws.String("/pinroll/x"), Value: aws.String("v")}, "ValidationException", "type is required"},
		{"bad type", ssm.PutParameterInput{Name: aws.String("/pinroll/x"), Value: aws.String("v"), Type: "Integer"}, "ValidationException", "enum value set"},
		{"value too long", ssm.PutParameterInput{Name: aws.String("/pinroll/x"), Value: aws.String(strings.Repeat("v", 4097)), Type: "String"}, "ValidationException", "4096"},
		{"tags with overwrite", ssm.PutParameterInput{Name: aws.String("/pinroll/x"), Value: aws.String("v"), Type: "String", Overwrite: aws.Bool(true),
			Tags: []ssmtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, "ValidationException", "tags and overwrite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutParameter(context.Background(), &tc.in)
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%v does not say %q", err, tc.msg)
			}
		})
	}
	_, err := c.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/pinroll/x:label")})
	wantCode(t, err, "ValidationException")
}

func TestSNSPublishIsRecorded(t *testing.T) {
	ctx := context.Background()
	srv := start(t, emulator.Options{})
	c := snsClient(srv.URL(), clientOptions{maxAttempts: 1})
	topic, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("pinroll-notify")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(topic.TopicArn)
	if arn != "arn:aws:sns:us-east-1:"+account+":pinroll-notify" {
		t.Errorf("topic ARN = %s", arn)
	}
	if again, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("pinroll-notify")}); err != nil || aws.ToString(again.TopicArn) != arn {
		t.Errorf("CreateTopic is idempotent: %+v, %v", again, err)
	}
	out, err := c.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(arn), Subject: aws.String("pinroll: deployed shop/api:latest to 2 services"),
		Message: aws.String(`{"outcome":"deployed"}`),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"outcome": {DataType: aws.String("String"), StringValue: aws.String("deployed")},
			"blob":    {DataType: aws.String("Binary"), BinaryValue: []byte{1, 2, 3}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pubs := srv.Emulator().Published()
	if len(pubs) != 1 {
		t.Fatalf("published %d messages", len(pubs))
	}
	p := pubs[0]
	if p.MessageID != aws.ToString(out.MessageId) || p.TopicARN != arn || p.Subject != "pinroll: deployed shop/api:latest to 2 services" ||
		p.Message != `{"outcome":"deployed"}` || p.Account != account || p.Region != "us-east-1" || p.Time.IsZero() {
		t.Errorf("publication = %+v (answered %s)", p, aws.ToString(out.MessageId))
	}
	if diff := cmp.Diff(map[string]emulator.MessageAttribute{
		"outcome": {DataType: "String", StringValue: "deployed"},
		"blob":    {DataType: "Binary", BinaryValue: []byte{1, 2, 3}},
	}, p.Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		in   sns.PublishInput
		code string
	}{
		{"no such topic", sns.PublishInput{TopicArn: aws.String(arn + "-nope"), Message: aws.String("m")}, "NotFound"},
		{"subject of 100", sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 100))}, "InvalidParameter"},
		{"subject with a line break", sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m"), Subject: aws.String("a\nb")}, "InvalidParameter"},
		{"empty message", sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("")}, "InvalidParameter"},
		{"topic in another region", sns.PublishInput{TopicArn: aws.String("arn:aws:sns:eu-west-1:" + account + ":pinroll-notify"), Message: aws.String("m")}, "InvalidParameter"},
		{"bad attribute type", sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m"),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"a": {DataType: aws.String("Date"), StringValue: aws.String("x")}}}, "InvalidParameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Publish(ctx, &tc.in)
			wantCode(t, err, tc.code)
		})
	}
	// Another account may not publish to the topic (there are no topic policies).
	_, err = sns.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{maxAttempts: 1})).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m")})
	wantCode(t, err, "AuthorizationError")
	if n := len(srv.Emulator().Published()); n != 1 {
		t.Errorf("refused publications were recorded: %d", n)
	}
	_, err = c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("bad name")})
	wantCode(t, err, "InvalidParameter")

	for i := range 2 { // deleting a topic that is gone is no error
		if _, err := c.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arn)}); err != nil {
			t.Fatalf("DeleteTopic %d: %v", i, err)
		}
	}
	_, err = c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m")})
	wantCode(t, err, "NotFound")
}
