package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/trigger"
)

type planCmd struct {
	Repository string `required:"" placeholder:"NAME" help:"ECR repository name, e.g. content-marketing-swarm-backend."`
	Tag        string `default:"latest" placeholder:"TAG" help:"The pushed tag."`
	Digest     string `placeholder:"sha256:…" help:"The pushed digest (default: what the tag points to in ECR now)."`
	JSON       bool   `name:"json" help:"Print the report as one line of JSON."`
	AWSFlags
}

func (c *planCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, true, "")
	if err != nil {
		return err
	}
	push, err := describePush(s.ctx, s.ecr, c.Repository, c.Tag, c.Digest)
	if err != nil {
		return explain(c.Endpoint, err)
	}
	rep, err := s.engine.Push(s.ctx, push)
	if err != nil {
		return explain(c.Endpoint, err)
	}
	return print(e.stdout, "plan", rep, c.JSON)
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
