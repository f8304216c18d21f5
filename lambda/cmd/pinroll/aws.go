package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// The CLI's AWS clients behave as the function's do (lambda/main.go): a timeout per HTTP
// attempt, and the SDK's standard retryer for throttling, 5xx, timeouts and resets
// (RegisterTaskDefinition is retried by the apply package itself, never blindly).
const (
	attemptTimeout = 10 * time.Second
	maxAttempts    = 5
	maxBackoff     = 5 * time.Second
)

// localRegion is the region the CLI uses against a loopback --endpoint-url when AWS_REGION
// (or AWS_DEFAULT_REGION) is not set: the default fleet's region, the emulator's default.
const localRegion = fleet.DefaultRegion

// Dummy credentials for a loopback endpoint: the emulator and moto do not check them.
const localAccessKey, localSecretKey = "test", "test"

// endpoint is an --endpoint-url value, checked when the command line is parsed.
type endpoint struct {
	URL string
}

// parseEndpoint accepts an http(s) URL with a host; anything else is refused with what to
// type instead.
func parseEndpoint(raw string) (endpoint, error) {
	if raw == "" {
		return endpoint{}, nil
	}
	if !strings.Contains(raw, "://") {
		return endpoint{}, fmt.Errorf("%s has no scheme: add http:// (--endpoint-url http://%s)", raw, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("%s: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, fmt.Errorf("%s: the scheme must be http:// or https://", raw)
	}
	if u.Host == "" {
		return endpoint{}, fmt.Errorf("%s has no host, e.g. http://127.0.0.1:4566", raw)
	}
	return endpoint{URL: raw}, nil
}

// hostPort is the endpoint's host:port, with the scheme's default port.
func (e endpoint) hostPort() string {
	u, _ := url.Parse(e.URL)
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// loopback reports whether the endpoint is on this machine: the emulator or moto.
func (e endpoint) loopback() bool {
	if e.URL == "" {
		return false
	}
	u, _ := url.Parse(e.URL)
	return isLoopbackHost(u.Hostname())
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// regionFromEnv is the region the shell asks for explicitly, if any.
func regionFromEnv() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return os.Getenv("AWS_DEFAULT_REGION")
}

// awsConfig loads the SDK configuration.
//
// Without an endpoint it is the SDK's default chain (environment, profile, SSO, …), as the
// function's. With a loopback endpoint (`pinroll emulate`, moto) it needs no AWS account: the
// region is AWS_REGION if the shell sets it, else us-east-1 (the default fleet's); the
// credentials are AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY if set, else dummy ones — a profile
// (AWS_PROFILE) is not consulted, so a shell set up for real AWS still works locally. With
// another endpoint the default chain applies, with dummy credentials only when none are set.
func awsConfig(ctx context.Context, ep endpoint) (aws.Config, error) {
	httpClient := awshttp.NewBuildableClient().WithTimeout(attemptTimeout)
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts, o.MaxBackoff = maxAttempts, maxBackoff })
	}
	dummy := credentials.NewStaticCredentialsProvider(localAccessKey, localSecretKey, "")
	if ep.loopback() {
		// Built by hand, not by LoadDefaultConfig: the SDK fails on an AWS_PROFILE that does
		// not exist, and a profile for real AWS has nothing to say about the emulator.
		region := regionFromEnv()
		if region == "" {
			region = localRegion
		}
		creds := aws.CredentialsProvider(dummy)
		if key := os.Getenv("AWS_ACCESS_KEY_ID"); key != "" {
			creds = credentials.NewStaticCredentialsProvider(key, os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
		}
		return aws.Config{
			Region: region, BaseEndpoint: aws.String(ep.URL), Credentials: aws.NewCredentialsCache(creds),
			HTTPClient: httpClient, Retryer: retryer, RetryMaxAttempts: maxAttempts,
		}, nil
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithHTTPClient(httpClient), awsconfig.WithRetryer(retryer)}
	if ep.URL != "" {
		opts = append(opts, awsconfig.WithBaseEndpoint(ep.URL))
		if regionFromEnv() == "" {
			opts = append(opts, awsconfig.WithRegion(localRegion))
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			opts = append(opts, awsconfig.WithCredentialsProvider(dummy))
		}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION (or give --endpoint-url for a local emulator)")
	}
	return cfg, nil
}

// reachable fails fast, with what to do, when nothing listens at a loopback endpoint —
// instead of the SDK's five attempts ending in "connection refused".
func reachable(ep endpoint) error {
	if !ep.loopback() {
		return nil
	}
	conn, err := net.DialTimeout("tcp", ep.hostPort(), 2*time.Second)
	if err != nil {
		return notRunning(ep, err)
	}
	return conn.Close()
}

func notRunning(ep endpoint, err error) error {
	return fmt.Errorf("nothing answers at %s (%v): is `pinroll emulate` running on %s? Start it with: pinroll emulate --addr %s",
		ep.URL, errors.Unwrap(err), ep.hostPort(), ep.hostPort())
}

// explain adds what to do to an error whose cause is a refused connection.
func explain(ep endpoint, err error) error {
	if err != nil && ep.URL != "" && errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w\n  is `pinroll emulate` running on %s? Start it with: pinroll emulate --addr %s", err, ep.hostPort(), ep.hostPort())
	}
	return err
}

// homeAccount is the account the CLI acts in, as the function acts in its own: STS
// GetCallerIdentity's answer; against a loopback endpoint that does not serve STS, the
// default fleet's account; otherwise "" (the engine then takes the event's account).
func homeAccount(ctx context.Context, cfg aws.Config, ep endpoint) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 1 }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err == nil && aws.ToString(out.Account) != "" {
		return aws.ToString(out.Account)
	}
	if ep.loopback() {
		return fleet.DefaultAccount
	}
	return ""
}
