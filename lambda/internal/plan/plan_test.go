package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

const (
	account  = "123456789012" // of every service below (their ARNs say so)
	registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	// The same registry under its other documented names.
	dualStack     = "123456789012.dkr-ecr.us-east-1.on.aws"
	fips          = "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"
	dualStackFIPS = "123456789012.dkr-ecr-fips.us-east-1.on.aws"
	digest        = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
	old           = "sha256:1016926d84bdc6168f49a326489db181a5990a3cc992321e0d505242ca5d9ce9"
)

var target = imageref.Pushed{Host: registry, Path: "backend", Tag: "latest", Digest: digest}

// fleet builds a discovered fleet: each service runs a task definition of the given images
// (container name → image).
type fleet struct{ discover.Fleet }

func newFleet() *fleet {
	return &fleet{discover.Fleet{TaskDefinitions: map[string]*discover.TaskDefinition{}}}
}

func (f *fleet) taskDef(family string, containers ...[2]string) string {
	arn := "arn:aws:ecs:us-east-1:123456789012:task-definition/" + family + ":1"
	td := &types.TaskDefinition{TaskDefinitionArn: aws.String(arn), Family: aws.String(family)}
	for _, c := range containers {
		td.ContainerDefinitions = append(td.ContainerDefinitions, types.ContainerDefinition{Name: aws.String(c[0]), Image: aws.String(c[1])})
	}
	f.TaskDefinitions[arn] = &discover.TaskDefinition{Definition: td}
	return arn
}

func (f *fleet) service(cluster, name, td string, mods ...func(*discover.Service)) {
	s := discover.Service{Cluster: cluster, ClusterARN: "arn:aws:ecs:us-east-1:123456789012:cluster/" + cluster, Name: name,
		Status: "ACTIVE", TaskDefinition: td, Controller: "ECS", Tags: map[string]string{}}
	for _, m := range mods {
		m(&s)
	}
	f.Services = append(f.Services, s)
}

func tag(k, v string) func(*discover.Service) { return func(s *discover.Service) { s.Tags[k] = v } }

// summary is the part of a plan the tests compare: for each registration, the task
// definition it copies, its container changes and the services it moves.
type summary struct {
	Registrations []string
	Unchanged     []report.Service
	Skipped       []report.Service
	NearMisses    []string
	Omitted       int
}

func summarize(p Plan) summary {
	var s summary
	for _, r := range p.Registrations {
		line := r.FromARN()[len("arn:aws:ecs:us-east-1:123456789012:task-definition/"):]
		for _, c := range r.Containers {
			line += fmt.Sprintf(" %s:%s→%s", c.Name, c.From, c.To)
		}
		for _, svc := range r.Services {
			line += " " + svc.Cluster + "/" + svc.Name
		}
		s.Registrations = append(s.Registrations, line)
	}
	s.Unchanged, s.Skipped = p.Unchanged, p.Skipped
	for _, n := range p.NearMisses {
		s.NearMisses = append(s.NearMisses, n.Cluster+"/"+n.Service+"/"+n.Container+": "+n.Why)
	}
	s.Omitted = p.NearMissesOmitted
	return s
}

func TestMake(t *testing.T) {
	latest := registry + "/backend:latest"
	pinned := registry + "/backend:latest@" + digest
	for _, tc := range []struct {
		name         string
		build        func(f *fleet)
		requireOptIn bool
		want         summary
	}{
		{
			name: "the incident: only the exact repository changes, the look-alike is a near miss",
			build: func(f *fleet) {
				f.service("prod", "api", f.taskDef("backend", [2]string{"app", latest}))
				f.service("dev", "api", f.taskDef("backend-dev", [2]string{"app", registry + "/backend-dev:latest"}))
			},
			want: summary{
				Registrations: []string{"backend:1 app:" + latest + "→" + pinned + " prod/api"},
				NearMisses:    []string{"dev/api/app: different repository: backend-dev is not backend"},
			},
		},
		{
			name: "an image without a tag tracks latest; one pinned to an older digest moves on",
			build: func(f *fleet) {
				f.service("prod", "bare", f.taskDef("bare", [2]string{"app", registry + "/backend"}))
				f.service("prod", "old", f.taskDef("old", [2]string{"app", registry + "/backend:latest@" + old}))
			},
			want: summary{Registrations: []string{
				"bare:1 app:" + registry + "/backend→" + pinned + " prod/bare",
				"old:1 app:" + registry + "/backend:latest@" + old + "→" + pinned + " prod/old",
			}},
		},
		{
			name: "a shared task definition is registered once for all its services",
			build: func(f *fleet) {
				td := f.taskDef("shared", [2]string{"app", latest})
				f.service("prod", "c", td)
				f.service("prod", "a", td)
				f.service("prod", "b", td)
			},
			want: summary{Registrations: []string{"shared:1 app:" + latest + "→" + pinned + " prod/a prod/b prod/c"}},
		},
		{
			name: "only the matching container of a task definition changes",
			build: func(f *fleet) {
				f.service("prod", "api", f.taskDef("api",
					[2]string{"app", latest},
					[2]string{"migrate", registry + "/backend:stable"},
					[2]string{"envoy", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29"},
					[2]string{"nginx", "nginx:1.27"}))
			},
			want: summary{
				Registrations: []string{"api:1 app:" + latest + "→" + pinned + " prod/api"},
				NearMisses:    []string{"prod/api/migrate: tracks tag stable, not latest"},
			},
		},
		{
			name: "already pinned is unchanged",
			build: func(f *fleet) {
				f.service("prod", "api", f.taskDef("api", [2]string{"app", pinned}))
			},
			want: summary{Unchanged: []report.Service{{Account: account, Cluster: "prod", Service: "api", Why: "already pinned to " + digest}}},
		},
		{
			name: "another account's registry is a near miss, never a match",
			build: func(f *fleet) {
				f.service("prod", "api", f.taskDef("api", [2]string{"app", "210987654321.dkr.ecr.us-east-1.amazonaws.com/backend:latest"}))
			},
			want: summary{NearMisses: []string{"prod/api/app: same repository name in another registry: 210987654321.dkr.ecr.us-east-1.amazonaws.com"}},
		},
		{
			name: "services pinroll may not touch are skipped with the reason",
			build: func(f *fleet) {
				td := f.taskDef("api", [2]string{"app", latest})
				f.service("prod", "draining", td, func(s *discover.Service) { s.Status = "DRAINING" })
				f.service("prod", "codedeploy", td, func(s *discover.Service) { s.Controller = "CODE_DEPLOY" })
				f.service("prod", "external", td, func(s *discover.Service) { s.Controller = "EXTERNAL" })
				f.service("prod", "opted-out", td, tag(TagEnabled, "false"))
				f.service("prod", "paused", td, tag(TagPaused, "alice 2026-11-28 incident 42"))
				f.service("prod", "bogus", td, tag(TagPolicy, "newest"))
				f.service("prod", "ok", td, tag(TagPolicy, "track"))
			},
			want: summary{
				Registrations: []string{"api:1 app:" + latest + "→" + pinned + " prod/ok"},
				Skipped: []report.Service{
					{Account: account, Cluster: "prod", Service: "bogus", Why: "pinroll:policy=newest is not a policy (known: track, semver, semver:<constraint>, glob:<pattern>)"},
					{Account: account, Cluster: "prod", Service: "codedeploy", Why: "deployment controller is CODE_DEPLOY; pinroll deploys only services that ECS itself deploys"},
					{Account: account, Cluster: "prod", Service: "draining", Why: "service is DRAINING"},
					{Account: account, Cluster: "prod", Service: "external", Why: "deployment controller is EXTERNAL; pinroll deploys only services that ECS itself deploys"},
					{Account: account, Cluster: "prod", Service: "opted-out", Why: "pinroll:enabled=false"},
					{Account: account, Cluster: "prod", Service: "paused", Why: "paused (pinroll:paused=alice 2026-11-28 incident 42)"},
				},
			},
		},
		{
			name:         "opt-in required: only services tagged pinroll:enabled=true",
			requireOptIn: true,
			build: func(f *fleet) {
				td := f.taskDef("api", [2]string{"app", latest})
				f.service("prod", "in", td, tag(TagEnabled, "true"))
				f.service("prod", "untagged", td)
			},
			want: summary{
				Registrations: []string{"api:1 app:" + latest + "→" + pinned + " prod/in"},
				Skipped:       []report.Service{{Account: account, Cluster: "prod", Service: "untagged", Why: "not opted in: PINROLL_REQUIRE_OPT_IN=true and the service is not tagged pinroll:enabled=true"}},
			},
		},
		{
			name: "a container pulling through another name of the registry keeps it: dual-stack, FIPS, dual-stack FIPS",
			build: func(f *fleet) {
				f.service("v6", "api", f.taskDef("v6", [2]string{"app", dualStack + "/backend:latest"}))
				f.service("fips", "api", f.taskDef("fips", [2]string{"app", fips + "/backend:latest@" + old}))
				f.service("v6fips", "api", f.taskDef("v6fips", [2]string{"app", dualStackFIPS + "/backend"}))
			},
			want: summary{Registrations: []string{
				"fips:1 app:" + fips + "/backend:latest@" + old + "→" + fips + "/backend:latest@" + digest + " fips/api",
				"v6:1 app:" + dualStack + "/backend:latest→" + dualStack + "/backend:latest@" + digest + " v6/api",
				"v6fips:1 app:" + dualStackFIPS + "/backend→" + dualStackFIPS + "/backend:latest@" + digest + " v6fips/api",
			}},
		},
		{
			name: "one task definition naming the registry two ways: each container keeps its own host",
			build: func(f *fleet) {
				f.service("prod", "api", f.taskDef("api", [2]string{"app", latest}, [2]string{"worker", dualStack + "/backend:latest"}))
			},
			want: summary{Registrations: []string{
				"api:1 app:" + latest + "→" + pinned + " worker:" + dualStack + "/backend:latest→" + dualStack + "/backend:latest@" + digest + " prod/api",
			}},
		},
		{
			name: "a dual-stack container already on the digest is unchanged, not rewritten to the IPv4 host",
			build: func(f *fleet) {
				f.service("v6", "api", f.taskDef("v6", [2]string{"app", dualStack + "/backend:latest@" + digest}))
			},
			want: summary{Unchanged: []report.Service{{Account: account, Cluster: "v6", Service: "api", Why: "already pinned to " + digest}}},
		},
		{
			name: "look-alikes of the dual-stack name are near misses, never changed",
			build: func(f *fleet) {
				f.service("a", "other-account", f.taskDef("a", [2]string{"app", "210987654321.dkr-ecr.us-east-1.on.aws/backend:latest"}))
				f.service("b", "extended", f.taskDef("b", [2]string{"app", dualStack + ".evil.com/backend:latest"}))
				f.service("c", "mixed", f.taskDef("c", [2]string{"app", "123456789012.dkr-ecr.us-east-1.amazonaws.com/backend:latest"}))
				f.service("d", "dev", f.taskDef("d", [2]string{"app", dualStack + "/backend-dev:latest"}))
			},
			want: summary{NearMisses: []string{
				"a/other-account/app: same repository name in another registry: 210987654321.dkr-ecr.us-east-1.on.aws",
				"b/extended/app: same repository name in another registry: " + dualStack + ".evil.com",
				"c/mixed/app: same repository name in another registry: 123456789012.dkr-ecr.us-east-1.amazonaws.com",
				"d/dev/app: different repository: backend-dev is not backend",
			}},
		},
		{
			name: "unrelated images are neither changes nor near misses",
			build: func(f *fleet) {
				f.service("prod", "web", f.taskDef("web", [2]string{"nginx", "nginx:latest"}, [2]string{"other", registry + "/payments:latest"}))
			},
			want: summary{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet()
			tc.build(f)
			got := summarize(Make(Input{Pushed: target, Fleet: &f.Fleet, RequireOptIn: tc.requireOptIn}))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNearMissesAreCapped(t *testing.T) {
	f := newFleet()
	for i := range 30 {
		f.service("dev", fmt.Sprintf("svc-%02d", i), f.taskDef(fmt.Sprintf("td-%02d", i), [2]string{"app", registry + "/backend-dev:latest"}))
	}
	p := Make(Input{Pushed: target, Fleet: &f.Fleet})
	if len(p.NearMisses) != DefaultNearMissLimit || p.NearMissesOmitted != 30-DefaultNearMissLimit {
		t.Errorf("near misses: %d listed, %d omitted; want %d and %d", len(p.NearMisses), p.NearMissesOmitted, DefaultNearMissLimit, 30-DefaultNearMissLimit)
	}
}

func TestMakeDoesNotModifyItsInput(t *testing.T) {
	f := newFleet()
	f.service("prod", "b", f.taskDef("api", [2]string{"app", registry + "/backend:latest"}))
	f.service("prod", "a", f.taskDef("api", [2]string{"app", registry + "/backend:latest"}))
	before := fmt.Sprint(f.Services)
	Make(Input{Pushed: target, Fleet: &f.Fleet})
	if after := fmt.Sprint(f.Services); after != before {
		t.Errorf("Make reordered or changed the fleet's services:\n%s\n%s", before, after)
	}
}

func TestSemverPolicy(t *testing.T) {
	at := func(v string) string { return registry + "/backend:" + v + "@" + old }
	for _, tc := range []struct {
		policy, current, pushed string
		want                    string // the new image, or the near miss's reason, or "" for neither
	}{
		{"semver:~1.4", "1.4.2", "1.4.3", registry + "/backend:1.4.3@" + digest},
		{"semver:^1", "1.4.2", "1.5.0", registry + "/backend:1.5.0@" + digest},
		{"semver:~1.4", "1.4.2", "1.5.0", "near miss: semver:~1.4: 1.5.0 is outside the constraint"},
		{"semver:~1.4", "1.4.2", "1.4.1", "near miss: semver:~1.4: 1.4.1 is not newer than 1.4.2"},
		{"semver:~1.4", "1.4.2", "1.4.2", registry + "/backend:1.4.2@" + digest}, // the same tag re-pushed: track
		{"semver:~1.4", "1.4.2", "1.4.3-rc.1", "near miss: semver:~1.4: 1.4.3-rc.1 is outside the constraint"},
		{"semver", "1.4.2", "2.0.0", registry + "/backend:2.0.0@" + digest},
		{"semver", "1.4.2", "2.0.0-beta.1", "near miss: semver: 2.0.0-beta.1 is a pre-release"},
		{"semver:>=2.0.0-0", "1.4.2", "2.0.0-beta.1", registry + "/backend:2.0.0-beta.1@" + digest},
		{"semver", "1.4.2", "v1.4.3", registry + "/backend:v1.4.3@" + digest},
		{"semver", "stable", "1.4.3", "near miss: semver: tag stable is not a version, so pinroll cannot tell whether 1.4.3 is newer"},
		{"semver", "1.4.2", "latest", "near miss: tracks tag 1.4.2, not latest"},
		{"track", "1.4.2", "1.4.3", "near miss: tracks tag 1.4.2, not 1.4.3"},
	} {
		t.Run(tc.policy+" "+tc.current+"→"+tc.pushed, func(t *testing.T) {
			f := newFleet()
			f.service("prod", "api", f.taskDef("api", [2]string{"app", at(tc.current)}), tag(TagPolicy, tc.policy))
			pushed := imageref.Pushed{Host: registry, Path: "backend", Tag: tc.pushed, Digest: digest}
			p := Make(Input{Pushed: pushed, Fleet: &f.Fleet})
			got := ""
			switch {
			case len(p.Registrations) == 1:
				got = p.Registrations[0].Images["app"]
			case len(p.NearMisses) == 1:
				got = "near miss: " + p.NearMisses[0].Why
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSemverThroughTheDualStackNameKeepsIt(t *testing.T) {
	f := newFleet()
	f.service("v6", "api", f.taskDef("api", [2]string{"app", dualStack + "/backend:1.4.2@" + old}), tag(TagPolicy, "semver"))
	p := Make(Input{Pushed: imageref.Pushed{Host: registry, Path: "backend", Tag: "1.4.3", Digest: digest}, Fleet: &f.Fleet})
	got := summarize(p)
	want := summary{Registrations: []string{"api:1 app:" + dualStack + "/backend:1.4.2@" + old + "→" + dualStack + "/backend:1.4.3@" + digest + " v6/api"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestSemverAndTrackServicesSharingATaskDefinitionGetTheirOwnRevisions(t *testing.T) {
	f := newFleet()
	td := f.taskDef("api", [2]string{"app", registry + "/backend:1.4.2"})
	f.service("prod", "follows-version", td, tag(TagPolicy, "semver"))
	f.service("prod", "pinned-to-1.4.2", td)
	p := Make(Input{Pushed: imageref.Pushed{Host: registry, Path: "backend", Tag: "1.4.3", Digest: digest}, Fleet: &f.Fleet})
	if len(p.Registrations) != 1 || len(p.Registrations[0].Services) != 1 || p.Registrations[0].Services[0].Name != "follows-version" {
		t.Errorf("want only the semver service moved, got %+v", summarize(p))
	}
}

func TestGlobPolicy(t *testing.T) {
	at := func(v string) string { return registry + "/backend:" + v + "@" + old }
	earlier, later := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	newer := map[string]time.Time{old: earlier, digest: later}
	older := map[string]time.Time{old: later, digest: earlier}
	for _, tc := range []struct {
		name, policy, current, pushed string
		times                         map[string]time.Time
		want                          string // the new image, or the near miss's reason
	}{
		{"a newer push of a matching tag moves the container", "glob:release-*", "release-1", "release-2", newer, registry + "/backend:release-2@" + digest},
		{"a re-tag of an older image is not newer", "glob:release-*", "release-1", "release-0", older, "near miss: glob:release-*: release-0 was pushed 2026-11-01T00:00:00Z, not after the running release-1 (2026-11-02T00:00:00Z)"},
		{"a pushed tag outside the pattern moves nothing", "glob:release-*", "release-1", "hotfix-1", newer, "near miss: glob:release-*: pushed tag hotfix-1 does not match"},
		{"never across patterns", "glob:release-*", "stable", "release-2", newer, "near miss: glob:release-*: the container runs tag stable, outside the pattern; pinroll never moves across patterns"},
		{"unknown push times move nothing", "glob:release-*", "release-1", "release-2", nil, "near miss: glob:release-*: cannot tell whether release-2 is newer than release-1 (ECR gave no push time for one of them)"},
		{"the same tag re-pushed is tracked", "glob:release-*", "release-2", "release-2", nil, registry + "/backend:release-2@" + digest},
		{"? and [] are glob syntax", "glob:v1.?", "v1.1", "v1.2", newer, registry + "/backend:v1.2@" + digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet()
			f.service("prod", "api", f.taskDef("api", [2]string{"app", at(tc.current)}), tag(TagPolicy, tc.policy))
			pushed := imageref.Pushed{Host: registry, Path: "backend", Tag: tc.pushed, Digest: digest}
			p := Make(Input{Pushed: pushed, Fleet: &f.Fleet, PushTimes: tc.times})
			got := ""
			switch {
			case len(p.Registrations) == 1:
				got = p.Registrations[0].Images["app"]
			case len(p.NearMisses) == 1:
				got = "near miss: " + p.NearMisses[0].Why
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGlobPolicyParsing(t *testing.T) {
	if p, err := ParsePolicy("glob:release-*"); err != nil || p.Glob != "release-*" || p.Semver {
		t.Errorf("glob:release-*: %+v, %v", p, err)
	}
	for _, bad := range []string{"glob:", "glob:[a-"} {
		if _, err := ParsePolicy(bad); err == nil || !strings.Contains(err.Error(), "is not a glob pattern") {
			t.Errorf("ParsePolicy(%q) = %v; want an error naming the pattern", bad, err)
		}
	}
}

// A bad constraint is refused with the tag and what is wrong with it.
func TestSemverPolicyParsing(t *testing.T) {
	if p, err := ParsePolicy("semver:>= 1.2, < 2 || 3.x"); err != nil || !p.Semver || p.Constraint == nil {
		t.Errorf("semver:>= 1.2, < 2 || 3.x: %+v, %v", p, err)
	}
	for bad, why := range map[string]string{
		"semver:":         "pinroll:policy=semver:: empty constraint",
		"semver:~1.4.0.1": `pinroll:policy=semver:~1.4.0.1: "1.4.0.1" is not a version`,
		"semver:=> 1,":    "pinroll:policy=semver:=> 1,: a comma with no constraint after it",
		"semver:>>1":      `pinroll:policy=semver:>>1: ">>" is not an operator`,
	} {
		if _, err := ParsePolicy(bad); err == nil || !strings.HasPrefix(err.Error(), why) {
			t.Errorf("ParsePolicy(%q) = %v; want an error starting %q", bad, err, why)
		}
	}
}
