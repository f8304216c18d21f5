package emulator_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

const (
	hubAccount  = "111111111111"
	devAccount  = "222222222222"
	prodAccount = "333333333333"
)

func roleARN(account string) string { return "arn:aws:iam::" + account + ":role/pinroll-target" }

func stsClient(url string, o clientOptions) *sts.Client { return sts.NewFromConfig(sdkConfig(url, o)) }

// assumed returns an SDK config whose credentials come from AssumeRole of role, through the SDK's
// own provider and cache, as the hub will use them.
func assumed(url, role string, o clientOptions) aws.Config {
	cfg := sdkConfig(url, o)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role, func(ao *stscreds.AssumeRoleOptions) {
		ao.RoleSessionName = "pinroll-hub"
	}))
	return cfg
}

func clusterNames(t *testing.T, c *ecs.Client) []string {
	t.Helper()
	out, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.ClusterArns
}

func TestAssumedRoleActsInTheRolesAccount(t *testing.T) {
	ctx := context.Background()
	srv := start(t, emulator.Options{})
	home := ecsClient(srv.URL(), clientOptions{})
	target := ecs.NewFromConfig(assumed(srv.URL(), roleARN(hubAccount), clientOptions{}))
	if _, err := home.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("home")}); err != nil {
		t.Fatal(err)
	}
	out, err := target.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("target")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.Cluster.ClusterArn), "arn:aws:ecs:us-east-1:"+hubAccount+":cluster/target"; got != want {
		t.Errorf("cluster ARN in the assumed account = %s, want %s", got, want)
	}
	if got := clusterNames(t, home); len(got) != 1 || got[0] != "arn:aws:ecs:us-east-1:"+account+":cluster/home" {
		t.Errorf("default account's clusters = %v", got)
	}
	if got := clusterNames(t, target); len(got) != 1 || got[0] != "arn:aws:ecs:us-east-1:"+hubAccount+":cluster/target" {
		t.Errorf("assumed account's clusters = %v", got)
	}
	// The same account in another region is another world.
	west := ecs.NewFromConfig(assumed(srv.URL(), roleARN(hubAccount), clientOptions{region: "us-west-2"}))
	if got := clusterNames(t, west); len(got) != 0 {
		t.Errorf("us-west-2 of %s has clusters %v", hubAccount, got)
	}

	who, err := sts.NewFromConfig(assumed(srv.URL(), roleARN(hubAccount), clientOptions{})).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(who.Account) != hubAccount || aws.ToString(who.Arn) != "arn:aws:sts::"+hubAccount+":assumed-role/pinroll-target/pinroll-hub" ||
		!strings.HasPrefix(aws.ToString(who.UserId), "AROA") || !strings.HasSuffix(aws.ToString(who.UserId), ":pinroll-hub") {
		t.Errorf("caller identity with assumed credentials = %+v", who)
	}
	me, err := stsClient(srv.URL(), clientOptions{}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(me.Account) != account || aws.ToString(me.Arn) != "arn:aws:iam::"+account+":root" {
		t.Errorf("caller identity with default credentials = %+v, %v", me, err)
	}
}

func TestAssumeRoleAnswer(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	srv := start(t, emulator.Options{Now: func() time.Time { return now }})
	out, err := stsClient(srv.URL(), clientOptions{}).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + devAccount + ":role/teams/pinroll-target"), RoleSessionName: aws.String("s1"),
		DurationSeconds: aws.Int32(900), SourceIdentity: aws.String("hub"),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || len(aws.ToString(c.AccessKeyId)) != 20 ||
		aws.ToString(c.SecretAccessKey) == "" || aws.ToString(c.SessionToken) == "" {
		t.Errorf("credentials = %+v", c)
	}
	if c.Expiration == nil || !c.Expiration.Equal(now.Add(900*time.Second)) {
		t.Errorf("expiration = %v, want %v", c.Expiration, now.Add(900*time.Second))
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::"+devAccount+":assumed-role/pinroll-target/s1" {
		t.Errorf("assumed role ARN = %s (the path is not part of it)", got)
	}
	if aws.ToString(out.SourceIdentity) != "hub" {
		t.Errorf("source identity = %q", aws.ToString(out.SourceIdentity))
	}

	// The XML as AWS's API reference shows it.
	form := url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {roleARN(devAccount)}, "RoleSessionName": {"raw"}}
	resp, err := http.Post(srv.URL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
		Result  struct {
			User struct {
				Arn, AssumedRoleId string
			} `xml:"AssumedRoleUser"`
			Credentials struct {
				AccessKeyId, SecretAccessKey, SessionToken, Expiration string
			}
		} `xml:"AssumeRoleResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	if doc.Result.Credentials.Expiration != "2026-12-01T13:00:00Z" || doc.RequestID != resp.Header.Get("X-Amzn-RequestId") || doc.Result.User.AssumedRoleId == "" {
		t.Errorf("AssumeRole XML (default duration one hour):\n%s", body)
	}

	// The credentials expire.
	now = now.Add(901 * time.Second)
	cfg := sdkConfig(srv.URL(), clientOptions{maxAttempts: 1})
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken}, nil
	})
	_, err = ecs.NewFromConfig(cfg).ListClusters(context.Background(), &ecs.ListClustersInput{})
	wantCode(t, err, "ExpiredTokenException")
	_, err = sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken")
}

func TestAssumeRoleValidation(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := stsClient(srv.URL(), clientOptions{maxAttempts: 1})
	for _, tc := range []struct {
		name string
		in   sts.AssumeRoleInput
		want string // in the message
	}{
		{"not a role ARN", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::1234:role/x-long-enough"), RoleSessionName: aws.String("s1")}, "not a valid role ARN"},
		{"user ARN", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + devAccount + ":user/alice"), RoleSessionName: aws.String("s1")}, "not a valid role ARN"},
		{"short ARN", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::1:r"), RoleSessionName: aws.String("s1")}, "'roleArn'"},
		{"session name too short", sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s")}, "'roleSessionName'"},
		{"session name with a space", sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("my session")}, "regular expression"},
		{"duration under 900", sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(899)}, "'durationSeconds'"},
		{"duration over 43200", sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(43201)}, "between 900 and 43200"},
		{"external id too short", sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s1"), ExternalId: aws.String("x")}, "'externalId'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AssumeRole(context.Background(), &tc.in)
			wantCode(t, err, "ValidationError")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q does not name %q", err, tc.want)
			}
		})
	}
	ok, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(43200)})
	if err != nil {
		t.Fatalf("43200 s is allowed: %v", err)
	}
	// Role chaining: at most an hour.
	chained := sdkConfig(srv.URL(), clientOptions{maxAttempts: 1})
	chained.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: *ok.Credentials.AccessKeyId, SecretAccessKey: *ok.Credentials.SecretAccessKey, SessionToken: *ok.Credentials.SessionToken}, nil
	})
	_, err = sts.NewFromConfig(chained).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN(prodAccount)), RoleSessionName: aws.String("s2"), DurationSeconds: aws.Int32(3601)})
	wantCode(t, err, "ValidationError")
	if _, err = sts.NewFromConfig(chained).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN(prodAccount)), RoleSessionName: aws.String("s2")}); err != nil {
		t.Errorf("chained AssumeRole of an hour: %v", err)
	}
}

func TestAssumeRoleCanBeDeniedAndFaulted(t *testing.T) {
	ctx := context.Background()
	srv := start(t, emulator.Options{})
	srv.Emulator().DenyAssumeRole(roleARN(prodAccount))
	prod := ecs.NewFromConfig(assumed(srv.URL(), roleARN(prodAccount), clientOptions{maxAttempts: 1}))
	_, err := prod.ListClusters(ctx, &ecs.ListClustersInput{})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "is not authorized to perform: sts:AssumeRole on resource: "+roleARN(prodAccount)) {
		t.Fatalf("ECS call with a denied role's provider: %v", err)
	}
	// Other roles are unaffected.
	if _, err := ecs.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{})).ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Errorf("another role: %v", err)
	}
	srv.Emulator().AllowAssumeRole(roleARN(prodAccount))
	if _, err := prod.ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Errorf("after AllowAssumeRole: %v", err)
	}

	// A trust policy's sts:ExternalId condition.
	srv.Emulator().RequireExternalID(roleARN(devAccount), "pinroll-hub-1")
	c := stsClient(srv.URL(), clientOptions{maxAttempts: 1})
	for _, tc := range [][2]string{{"", "AccessDenied"}, {"wrong-id", "AccessDenied"}, {"pinroll-hub-1", ""}} {
		ext, want := tc[0], tc[1]
		in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s1")}
		if ext != "" {
			in.ExternalId = aws.String(ext)
		}
		if _, err := c.AssumeRole(ctx, in); errorCode(err) != want {
			t.Errorf("ExternalId %q: %v, want %q", ext, err, want)
		}
	}
	srv.Emulator().RequireExternalID(roleARN(devAccount), "")

	srv.Emulator().InjectFault("AssumeRole", emulator.Fault{Kind: emulator.ServerError}, 1)
	_, err = stsClient(srv.URL(), clientOptions{maxAttempts: 1}).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s1")})
	wantCode(t, err, "InternalFailure")
	srv.Emulator().InjectFault("AssumeRole", emulator.Fault{Kind: emulator.Throttle}, 1)
	if _, err := stsClient(srv.URL(), clientOptions{}).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN(devAccount)), RoleSessionName: aws.String("s1")}); err != nil {
		t.Errorf("a throttled AssumeRole is retried by the SDK: %v", err)
	}
	calls := srv.Emulator().CallLog()
	var codes []string
	for _, c := range calls {
		if c.Op == "AssumeRole" {
			codes = append(codes, c.Service+":"+c.Error)
		}
	}
	if strings.Join(codes, " ") != "sts:AccessDenied sts: sts: sts:AccessDenied sts:AccessDenied sts: sts:InternalFailure sts:Throttling sts:" {
		t.Errorf("AssumeRole calls = %v", codes)
	}
}

// Many goroutines assuming roles and calling ECS in their accounts at once see only their own
// account.
func TestAccountsAreIsolatedUnderConcurrency(t *testing.T) {
	srv := start(t, emulator.Options{})
	var wg sync.WaitGroup
	for _, acct := range []string{hubAccount, devAccount, prodAccount} {
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := ecs.NewFromConfig(assumed(srv.URL(), roleARN(acct), clientOptions{}))
				name := "c" + string(rune('0'+i))
				if _, err := c.CreateCluster(context.Background(), &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for _, acct := range []string{hubAccount, devAccount, prodAccount} {
		arns := clusterNames(t, ecs.NewFromConfig(assumed(srv.URL(), roleARN(acct), clientOptions{})))
		if len(arns) != 3 {
			t.Errorf("%s has %d clusters: %v", acct, len(arns), arns)
		}
		for _, a := range arns {
			if !strings.Contains(a, ":"+acct+":") {
				t.Errorf("%s lists %s", acct, a)
			}
		}
	}
	if got := clusterNames(t, ecsClient(srv.URL(), clientOptions{})); len(got) != 0 {
		t.Errorf("the default account got clusters: %v", got)
	}
}
