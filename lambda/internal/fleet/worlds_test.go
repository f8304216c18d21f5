package fleet_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

const orgFleet = "../../../events/fleet-org.json"

func TestOrgFleet(t *testing.T) {
	f, err := fleet.Load(orgFleet)
	if err != nil {
		t.Fatal(err)
	}
	var where []string
	for _, w := range f.AllWorlds() {
		where = append(where, w.Where())
	}
	if got := strings.Join(where, ", "); got != "registry 111111111111/us-east-1, dev 222222222222/us-east-1, dev 222222222222/us-west-2, prod 333333333333/us-east-1, prod 333333333333/us-west-2" {
		t.Errorf("worlds = %s", got)
	}
	hub, _ := f.World("111111111111", "us-east-1")
	if d := hub.Replication.Destinations("shop/api"); len(d) != 1 || d[0] != (fleet.ReplicationDestination{Region: "us-west-2", RegistryID: "111111111111"}) {
		t.Errorf("shop/api replicates to %+v", d)
	}
	if d := hub.Replication.Destinations("tools/lint"); len(d) != 0 {
		t.Errorf("the shop/ filter lets tools/lint through to %+v", d)
	}
	for _, tc := range []struct{ account, region, family, image string }{
		{"222222222222", "us-east-1", "shop-api", "111111111111.dkr.ecr.us-east-1.amazonaws.com/shop/api:latest"},
		{"222222222222", "us-west-2", "shop-api", "111111111111.dkr.ecr.us-west-2.amazonaws.com/shop/api:latest"},
		{"333333333333", "us-west-2", "shop-api", "111111111111.dkr.ecr.us-west-2.amazonaws.com/shop/api:latest"},
		{"222222222222", "us-east-1", "shop-api-lookalike", "222222222222.dkr.ecr.us-east-1.amazonaws.com/shop/api:latest"},
	} {
		w, ok := f.World(tc.account, tc.region)
		td, found := w.TaskDefinition(tc.family + ":1")
		if !ok || !found || aws.ToString(td.Input.ContainerDefinitions[0].Image) != tc.image {
			t.Errorf("%s/%s %s: %v %v %+v, want image %s", tc.account, tc.region, tc.family, ok, found, td.Input, tc.image)
		}
	}
	if err := f.Seed(context.Background(), nil, nil); err == nil || !strings.Contains(err.Error(), "World.Seed") {
		t.Errorf("Seed of a fleet of worlds: %v", err)
	}
}

func TestPlaceholders(t *testing.T) {
	w := fleet.World{Account: "222222222222", Region: "eu-west-1"}
	for in, want := range map[string]string{
		"{{registry}}/a":                           "222222222222.dkr.ecr.eu-west-1.amazonaws.com/a",
		"{{registry:111111111111}}/a":              "111111111111.dkr.ecr.eu-west-1.amazonaws.com/a",
		"{{registry:111111111111:us-west-2}}/a":    "111111111111.dkr.ecr.us-west-2.amazonaws.com/a",
		"{{registry:1111}}/a":                      "{{registry:1111}}/a",
		"{{registry:111111111111:Mars}}/a":         "{{registry:111111111111:Mars}}/a",
		"x {{registry}} {{registry:333333333333}}": "x 222222222222.dkr.ecr.eu-west-1.amazonaws.com 333333333333.dkr.ecr.eu-west-1.amazonaws.com",
	} {
		if got := w.ExpandRegistry(in); got != want {
			t.Errorf("ExpandRegistry(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseWorldsReportsEveryProblem(t *testing.T) {
	_, err := fleet.Parse([]byte(`{
	  "account": "123456789012",
	  "worlds": [
	    {"name": "registry", "account": "111111111111", "region": "us-east-1",
	     "repositories": [{"name": "shop/api", "images": []}],
	     "replication": {"rules": [{"destinations": [{"region": "us-east-1", "registryId": "111111111111"}, {"region": "us-west-2", "registryId": "42"}],
	                                "repositoryFilters": [{"filter": "shop/", "filterType": "REGEX"}]}]}},
	    {"name": "dev", "account": "222222222222",
	     "clusters": [{"name": "dev"}],
	     "taskDefinitions": [{"family": "api", "containerDefinitions": [{"name": "app", "image": "{{registry:nope}}/shop/api:latest"}]}],
	     "services": [{"cluster": "dev", "name": "api", "taskDefinition": "api:2", "desiredCount": 1}]},
	    {"name": "again", "account": "222222222222", "region": "us-east-1"},
	    {"name": "nobody", "region": "us-east-1"}
	  ]}`))
	if err == nil {
		t.Fatal("invalid fleet accepted")
	}
	for _, want := range []string{
		"worlds: give either worlds or the top-level",
		"worlds[0] (registry 111111111111/us-east-1): replication.rules[0].destinations[0]: 111111111111 in us-east-1 is the source registry itself",
		`worlds[0] (registry 111111111111/us-east-1): replication.rules[0].destinations[1].registryId "42"`,
		`worlds[0] (registry 111111111111/us-east-1): replication.rules[0].repositoryFilters[0].filterType "REGEX"`,
		"worlds[1] (dev 222222222222/us-east-1): taskDefinitions[0] (api): bad placeholder {{registry:nope}}",
		`worlds[1] (dev 222222222222/us-east-1): services[0] (dev/api): task definition "api:2" is not in taskDefinitions`,
		"worlds[2] (again 222222222222/us-east-1): 222222222222/us-east-1 is already worlds[1]",
		`worlds[3] (nobody /us-east-1): account "": want 12 digits`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	// The single-world form takes replication too, and reports its problems without a prefix.
	_, err = fleet.Parse([]byte(`{"replication": {"rules": [{"destinations": [{"region": "us-west-2", "registryId": "123456789012"}], "repositoryFilters": []}]}}`))
	if err == nil || !strings.HasPrefix(err.Error(), "replication.rules[0].repositoryFilters: empty") {
		t.Errorf("single-world replication problem: %v", err)
	}
}

// World.Seed builds one world through the SDK, starting with its replication configuration, with
// clients of the world's account (here from AssumeRole).
func TestSeedWorldsThroughTheSDK(t *testing.T) {
	f, err := fleet.Load(orgFleet)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx := context.Background()
	for _, w := range f.AllWorlds() {
		cfg := aws.Config{Region: w.Region, Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), BaseEndpoint: aws.String(srv.URL())}
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), "arn:aws:iam::"+w.Account+":role/seed"))
		if err := w.Seed(ctx, ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)); err != nil {
			t.Fatalf("seed %s: %v", w.Where(), err)
		}
	}
	// The registry's push of shop/api was replicated to its us-west-2 registry.
	west := aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(srv.URL())}
	west.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}), "arn:aws:iam::111111111111:role/seed"))
	imgs, err := ecr.NewFromConfig(west).DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("shop/api")})
	hub, _ := f.World("111111111111", "us-east-1")
	if err != nil || len(imgs.ImageDetails) != 2 || aws.ToString(imgs.ImageDetails[1].ImageDigest) != hub.Repositories[0].Images[1].Digest() {
		t.Errorf("replica of shop/api in us-west-2: %+v, %v", imgs, err)
	}
}
