package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

func planCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plan", stderr)
	repository := fs.String("repository", "", "ECR repository name, e.g. content-marketing-swarm-backend (required)")
	tag := fs.String("tag", "latest", "the pushed tag")
	digest := fs.String("digest", "", "the pushed digest (default: what the tag points to in ECR now)")
	endpoint := fs.String("endpoint-url", "", "send AWS calls to this endpoint (the local emulator or moto)")
	asJSON := fs.Bool("json", false, "print the report as one line of JSON")
	verbose := fs.Bool("v", false, "also print the engine's JSON logs on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *repository == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitError{2}
	}
	engine, aws, err := newEngine(ctx, *endpoint, true, *verbose, stderr)
	if err != nil {
		return err
	}
	push, err := describePush(ctx, aws.ecr, *repository, *tag, *digest)
	if err != nil {
		return err
	}
	rep, err := engine.Push(ctx, push)
	if err != nil {
		return err
	}
	return print(stdout, "plan", rep, *asJSON)
}

// describePush builds the push event a push of repository:tag would have produced, asking
// ECR for the registry (account, region) and, unless given, the tag's current digest.
func describePush(ctx context.Context, client *ecr.Client, repository, tag, digest string) (trigger.Push, error) {
	repos, err := client.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repository}})
	if err != nil {
		return trigger.Push{}, fmt.Errorf("describe repository %s: %w", repository, err)
	}
	if len(repos.Repositories) != 1 {
		return trigger.Push{}, fmt.Errorf("describe repository %s: ECR returned %d repositories", repository, len(repos.Repositories))
	}
	uri := aws.ToString(repos.Repositories[0].RepositoryUri)
	host, _, _ := strings.Cut(uri, "/")
	registry, ok := imageref.ParseECRHost(host)
	if !ok {
		return trigger.Push{}, fmt.Errorf("repository %s: %q is not an ECR registry host", repository, host)
	}
	if digest == "" {
		images, err := client.DescribeImages(ctx, &ecr.DescribeImagesInput{
			RepositoryName: aws.String(repository),
			ImageIds:       []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
		})
		if err != nil {
			return trigger.Push{}, fmt.Errorf("describe %s:%s: %w", repository, tag, err)
		}
		if len(images.ImageDetails) == 0 {
			return trigger.Push{}, errors.New("no image has tag " + tag)
		}
		digest = aws.ToString(images.ImageDetails[0].ImageDigest)
	}
	return trigger.Push{
		EventID: "plan-" + time.Now().UTC().Format("20060102T150405Z"), Time: time.Now().UTC(),
		Account: registry.Account, Region: registry.Region,
		Repository: repository, Tag: tag, Digest: digest,
		ActionType: "PUSH", Result: "SUCCESS",
	}, nil
}
