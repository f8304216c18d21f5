package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// anyEvents collects every event, whatever its detail.
type anyEvents struct {
	mu     sync.Mutex
	events []replicationEvent
	notify chan struct{}
}

type replicationEvent struct {
	DetailType string            `json:"detail-type"`
	Source     string            `json:"source"`
	Account    string            `json:"account"`
	Region     string            `json:"region"`
	Resources  []string          `json:"resources"`
	Detail     map[string]string `json:"detail"`
}

func newAnyEvents() *anyEvents { return &anyEvents{notify: make(chan struct{}, 100)} }

func (l *anyEvents) sink(_ context.Context, event []byte) {
	var ev replicationEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		panic(fmt.Sprintf("%v: %s", err, event))
	}
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	l.notify <- struct{}{}
}

// wait returns once n events have arrived in all (or fails after 5 s).
func (l *anyEvents) wait(t *testing.T, n int) []replicationEvent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		if len(l.events) >= n {
			out := append([]replicationEvent(nil), l.events...)
			l.mu.Unlock()
			return out
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline:
			t.Fatalf("only %d of %d events arrived", len(l.events), n)
		}
	}
}

func (l *anyEvents) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

const shopManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000009999","size":10},"layers":[]}`

// replicatingRegistry configures the default account's us-east-1 registry: shop/* to us-west-2 and
// to the dev account, everything to prod's us-west-2.
func replicatingRegistry(t *testing.T, c *ecr.Client) {
	t.Helper()
	_, err := c.PutReplicationConfiguration(context.Background(), &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{
			{
				Destinations: []types.ReplicationDestination{
					{Region: aws.String("us-west-2"), RegistryId: aws.String(account)},
					{Region: aws.String("us-east-1"), RegistryId: aws.String(devAccount)},
				},
				RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("shop/"), FilterType: types.RepositoryFilterTypePrefixMatch}},
			},
			{Destinations: []types.ReplicationDestination{{Region: aws.String("us-west-2"), RegistryId: aws.String(prodAccount)}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReplicationCopiesPushesAndEmitsEvents(t *testing.T) {
	ctx := context.Background()
	events := newAnyEvents()
	srv := start(t, emulator.Options{OnEvent: events.sink})
	c := ecrClient(srv.URL(), clientOptions{})
	replicatingRegistry(t, c)
	reg, err := c.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	if err != nil || aws.ToString(reg.RegistryId) != account || len(reg.ReplicationConfiguration.Rules) != 2 ||
		aws.ToString(reg.ReplicationConfiguration.Rules[0].RepositoryFilters[0].Filter) != "shop/" {
		t.Fatalf("DescribeRegistry = %+v, %v", reg, err)
	}
	for _, name := range []string{"shop/api", "tools/lint"} {
		if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	put, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	digest := aws.ToString(put.Image.ImageId.ImageDigest)

	// With ReplicationDelay 0 the copies are there as soon as PutImage has answered.
	west := ecrClient(srv.URL(), clientOptions{region: "us-west-2"})
	got, err := west.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("shop/api"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != shopManifest || aws.ToString(got.Images[0].ImageId.ImageDigest) != digest {
		t.Fatalf("replica in us-west-2: %+v, %v", got, err)
	}
	dev := ecr.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{}))
	repos, err := dev.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	if err != nil || len(repos.Repositories) != 1 || aws.ToString(repos.Repositories[0].RepositoryUri) != devAccount+".dkr.ecr.us-east-1.amazonaws.com/shop/api" {
		t.Fatalf("dev's registry: %+v, %v", repos, err)
	}
	prodWest := ecr.NewFromConfig(assumed(srv.URL(), roleARN(prodAccount), clientOptions{region: "us-west-2"}))
	if imgs, err := prodWest.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")}); err != nil || len(imgs.ImageDetails) != 1 ||
		aws.ToString(imgs.ImageDetails[0].RegistryId) != prodAccount || imgs.ImageDetails[0].ImageTags[0] != "v1" {
		t.Fatalf("prod's us-west-2 replica: %+v, %v", imgs, err)
	}

	evs := events.wait(t, 3)
	want := []replicationEvent{
		{DetailType: "ECR Replication Action", Source: "aws.ecr", Account: account, Region: "us-west-2",
			Resources: []string{"arn:aws:ecr:us-west-2:" + account + ":repository/shop/api"},
			Detail: map[string]string{"result": "SUCCESS", "repository-name": "shop/api", "image-digest": digest, "image-tag": "v1",
				"action-type": "REPLICATE", "source-account": account, "source-region": "us-east-1"}},
		{DetailType: "ECR Replication Action", Source: "aws.ecr", Account: devAccount, Region: "us-east-1",
			Resources: []string{"arn:aws:ecr:us-east-1:" + devAccount + ":repository/shop/api"},
			Detail: map[string]string{"result": "SUCCESS", "repository-name": "shop/api", "image-digest": digest, "image-tag": "v1",
				"action-type": "REPLICATE", "source-account": account, "source-region": "us-east-1"}},
		{DetailType: "ECR Replication Action", Source: "aws.ecr", Account: prodAccount, Region: "us-west-2",
			Resources: []string{"arn:aws:ecr:us-west-2:" + prodAccount + ":repository/shop/api"},
			Detail: map[string]string{"result": "SUCCESS", "repository-name": "shop/api", "image-digest": digest, "image-tag": "v1",
				"action-type": "REPLICATE", "source-account": account, "source-region": "us-east-1"}},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// A repository outside shop/ goes only where the unfiltered rule sends it; an untagged push's
	// event has no image-tag.
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("tools/lint"), ImageManifest: aws.String(shopManifest)}); err != nil {
		t.Fatal(err)
	}
	evs = events.wait(t, 4)
	if len(evs) != 4 || evs[3].Account != prodAccount || evs[3].Detail["repository-name"] != "tools/lint" {
		t.Errorf("tools/lint replicated to %+v", evs[3:])
	}
	if _, ok := evs[3].Detail["image-tag"]; ok {
		t.Errorf("untagged replica's event has an image-tag: %v", evs[3].Detail)
	}
	if _, err := west.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"tools/lint"}}); errorCode(err) != "RepositoryNotFoundException" {
		t.Errorf("tools/lint reached us-west-2 of the source account (its filter is shop/): %v", err)
	}

	// Replicas are not replicated further: dev has no replication configuration, and a push there
	// goes nowhere.
	if _, err := dev.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("dev")}); err != nil {
		t.Fatal(err)
	}
	srv.Emulator().Settle()
	if n := events.count(); n != 4 {
		t.Errorf("a push in dev produced %d events", n-4)
	}
}

func TestReplicationFailureHookAndDelay(t *testing.T) {
	ctx := context.Background()
	events := newAnyEvents()
	srv := start(t, emulator.Options{OnEvent: events.sink, ReplicationDelay: 50 * time.Millisecond})
	c := ecrClient(srv.URL(), clientOptions{})
	replicatingRegistry(t, c)
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("shop/api")}); err != nil {
		t.Fatal(err)
	}
	srv.Emulator().FailReplications(devAccount, "us-east-1", 1)
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	west := ecrClient(srv.URL(), clientOptions{region: "us-west-2"})
	if _, err := west.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")}); errorCode(err) != "RepositoryNotFoundException" {
		t.Errorf("the replica arrived before ReplicationDelay: %v", err)
	}
	evs := events.wait(t, 3)
	results := map[string]string{}
	for _, ev := range evs {
		results[ev.Account+"/"+ev.Region] = ev.Detail["result"]
	}
	if diff := cmp.Diff(map[string]string{account + "/us-west-2": "SUCCESS", devAccount + "/us-east-1": "FAILURE", prodAccount + "/us-west-2": "SUCCESS"}, results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if _, err := west.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")}); err != nil {
		t.Errorf("replica after its event: %v", err)
	}
	dev := ecr.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{}))
	if _, err := dev.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")}); errorCode(err) != "RepositoryNotFoundException" {
		t.Errorf("a failed replication copied the image: %v", err)
	}

	// The hook was for one replication; Settle completes pending ones at once.
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	srv.Emulator().Settle()
	if n := events.count(); n != 6 {
		t.Fatalf("after Settle: %d events, want 6", n)
	}
	imgs, err := dev.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v2")}}})
	if err != nil || len(imgs.ImageDetails) != 1 {
		t.Errorf("dev's replica after Settle: %+v, %v", imgs, err)
	}
}

func TestReplicationConfigurationValidation(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	dest := func(region, registry string) types.ReplicationDestination {
		return types.ReplicationDestination{Region: aws.String(region), RegistryId: aws.String(registry)}
	}
	many := make([]types.ReplicationRule, 11)
	for i := range many {
		many[i] = types.ReplicationRule{Destinations: []types.ReplicationDestination{dest("us-west-2", account)}}
	}
	var spread []types.ReplicationDestination
	for i := range 26 {
		spread = append(spread, dest("us-west-2", fmt.Sprintf("%012d", 100000000000+i)))
	}
	for _, tc := range []struct {
		name  string
		rules []types.ReplicationRule
		want  string
	}{
		{"11 rules", many, "11 rules, at most 10"},
		{"26 destinations", []types.ReplicationRule{{Destinations: spread}}, "26 distinct destinations, at most 25"},
		{"bad region", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("US East", account)}}}, "rules[0].destinations[0].region"},
		{"bad registry", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("us-west-2", "12")}}}, "registryId \"12\""},
		{"itself", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("us-east-1", account)}}}, "source registry itself"},
		{"filter type", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("us-west-2", account)},
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("shop"), FilterType: "SUFFIX_MATCH"}}}}, "filterType \"SUFFIX_MATCH\""},
		{"filter", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("us-west-2", account)},
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("Shop"), FilterType: types.RepositoryFilterTypePrefixMatch}}}}, "repositoryFilters[0].filter \"Shop\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutReplicationConfiguration(context.Background(), &ecr.PutReplicationConfigurationInput{
				ReplicationConfiguration: &types.ReplicationConfiguration{Rules: tc.rules}})
			wantCode(t, err, "InvalidParameterException")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v does not say %q", err, tc.want)
			}
		})
	}
	reg, err := c.DescribeRegistry(context.Background(), &ecr.DescribeRegistryInput{})
	if err != nil || reg.ReplicationConfiguration == nil || len(reg.ReplicationConfiguration.Rules) != 0 {
		t.Errorf("after refused configurations the registry has %+v, %v", reg.ReplicationConfiguration, err)
	}
}

// Another account may read images of a registry (as a registry policy would allow), not write.
func TestCrossAccountRegistryAccess(t *testing.T) {
	ctx := context.Background()
	srv := start(t, emulator.Options{})
	hub := ecrClient(srv.URL(), clientOptions{})
	if _, err := hub.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("shop/api")}); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	dev := ecr.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{maxAttempts: 1}))
	imgs, err := dev.DescribeImages(ctx, &ecr.DescribeImagesInput{RegistryId: aws.String(account), RepositoryName: aws.String("shop/api"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(imgs.ImageDetails) != 1 || aws.ToString(imgs.ImageDetails[0].RegistryId) != account ||
		aws.ToString(imgs.ImageDetails[0].ImageDigest) != fleet.ManifestDigest(shopManifest) {
		t.Fatalf("dev describing the hub's image: %+v, %v", imgs, err)
	}
	got, err := dev.BatchGetImage(ctx, &ecr.BatchGetImageInput{RegistryId: aws.String(account), RepositoryName: aws.String("shop/api"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != shopManifest {
		t.Fatalf("dev getting the hub's image: %+v, %v", got, err)
	}
	// Without registryId dev reads its own registry, which has no such repository.
	_, err = dev.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")})
	wantCode(t, err, "RepositoryNotFoundException")
	_, err = dev.PutImage(ctx, &ecr.PutImageInput{RegistryId: aws.String(account), RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest), ImageTag: aws.String("x")})
	wantCode(t, err, "AccessDeniedException")
	_, err = dev.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RegistryId: aws.String(account), RepositoryName: aws.String("shop/api"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	wantCode(t, err, "AccessDeniedException")
	_, err = dev.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RegistryId: aws.String(account)})
	wantCode(t, err, "AccessDeniedException")
	if imgs, err := hub.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")}); err != nil || len(imgs.ImageDetails) != 1 || len(imgs.ImageDetails[0].ImageTags) != 1 {
		t.Errorf("the hub's repository changed: %+v, %v", imgs, err)
	}
}

func replicationTo(region, registry string) *types.ReplicationConfiguration {
	return &types.ReplicationConfiguration{Rules: []types.ReplicationRule{{Destinations: []types.ReplicationDestination{
		{Region: aws.String(region), RegistryId: aws.String(registry)}}}}}
}

// With PushEvents, a push is an "ECR Image Action" in the pushing registry, followed by the
// replications it causes; without, there is none.
func TestPushEvents(t *testing.T) {
	ctx := context.Background()
	events := newAnyEvents()
	srv := start(t, emulator.Options{OnEvent: events.sink, PushEvents: true})
	c := ecrClient(srv.URL(), clientOptions{})
	if _, err := c.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: replicationTo("us-west-2", account)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("shop/api")}); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", ""} {
		in := &ecr.PutImageInput{RepositoryName: aws.String("shop/api"), ImageManifest: aws.String(shopManifest)}
		if tag != "" {
			in.ImageTag = aws.String(tag)
		}
		_, err := c.PutImage(ctx, in)
		if tag == "" {
			wantCode(t, err, "ImageAlreadyExistsException")
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// The second PutImage (same manifest, untagged) is ImageAlreadyExistsException: no event.
	evs := events.wait(t, 2)
	srv.Emulator().Settle()
	if n := events.count(); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
	want := replicationEvent{DetailType: "ECR Image Action", Source: "aws.ecr", Account: account, Region: "us-east-1", Resources: []string{},
		Detail: map[string]string{"result": "SUCCESS", "repository-name": "shop/api", "image-digest": fleet.ManifestDigest(shopManifest),
			"action-type": "PUSH", "image-tag": "v1", "manifest-media-type": "application/vnd.oci.image.manifest.v1+json",
			"artifact-media-type": "application/vnd.oci.image.config.v1+json"}}
	if diff := cmp.Diff(want, evs[0]); diff != "" {
		t.Errorf("push event (-want +got):\n%s", diff)
	}
	if evs[1].DetailType != "ECR Replication Action" || evs[1].Region != "us-west-2" {
		t.Errorf("second event: %+v", evs[1])
	}
}
