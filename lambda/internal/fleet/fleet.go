// Package fleet describes a small AWS world — ECR repositories with their images, ECS clusters,
// task definitions and services — in one JSON file, and builds it either through the real AWS SDK
// (Seed: moto, the local emulator, or a sandbox account) or directly inside the local emulator
// (emulator.Load, which also sets up what no API can: node image caches and running tasks).
//
// # Format
//
// A fleet file is one JSON object (events/fleet.json is the default one):
//
//	{
//	  "account": "123456789012",          // optional, default 123456789012 (12 digits)
//	  "region": "us-east-1",              // optional, default us-east-1
//	  "repositories": [
//	    {"name": "app",                   // ECR repository name
//	     "images": [                      // pushed in this order
//	       {"tags": ["latest"],           // optional; none = untagged (e.g. an image whose tag moved on)
//	        "manifest": "{\"schemaVersion\":2,…}",  // the exact manifest bytes, as a JSON string
//	        "mediaType": "application/vnd.oci.image.manifest.v1+json"}]}  // optional, else the manifest's own
//	  ],
//	  "clusters": [
//	    {"name": "prod",
//	     "imagePullBehavior": "prefer-cached", // optional: default | once | prefer-cached (ECS_IMAGE_PULL_BEHAVIOR)
//	     "nodeCache": {"{{registry}}/app:latest": "sha256:…"}} // optional: what the nodes already pulled
//	  ],
//	  "taskDefinitions": [
//	    { …RegisterTaskDefinition input, exactly as the ECS API accepts it (camelCase), incl. "tags"… }
//	  ],
//	  "services": [
//	    {"cluster": "prod", "name": "api",
//	     "taskDefinition": "app:1",        // family:revision; revisions count from 1 per family, in file order
//	     "desiredCount": 2,
//	     "launchType": "FARGATE",          // optional
//	     "deploymentController": "ECS",    // optional: ECS (default) | CODE_DEPLOY | EXTERNAL
//	     "circuitBreaker": {"enable": true, "rollback": true}, // optional
//	     "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}, // optional, see below
//	     "tags": {"team": "content"}}      // optional
//	  ]
//	}
//
// In any string of a task definition and in node cache keys, "{{registry}}" stands for the world's
// own ECR host, "<account>.dkr.ecr.<region>.amazonaws.com"; "{{registry:ACCOUNT}}" for another
// account's host in the same region, and "{{registry:ACCOUNT:REGION}}" for any registry. An
// image's digest is "sha256:" + the hex SHA-256 of its manifest bytes, as ECR computes it.
//
// A service's deploymentConfiguration takes ECS's strategy fields as CreateService does:
// "strategy" ROLLING (default) | BLUE_GREEN | LINEAR | CANARY, "bakeTimeInMinutes" (required with
// BLUE_GREEN), "linearConfiguration" {"stepPercent", "stepBakeTimeInMinutes"} and
// "canaryConfiguration" {"canaryPercent", "canaryBakeTimeInMinutes"}; ECS (or the emulator)
// judges their values when the service is created.
//
// A registry may replicate what is pushed to it (and what the fleet loads into it) to other
// regions and accounts, as ECR's registry replication does:
//
//	"replication": {"rules": [                      // ECR's ReplicationConfiguration, as the API takes it
//	  {"destinations": [{"region": "us-west-2", "registryId": "111111111111"}],
//	   "repositoryFilters": [{"filter": "shop/", "filterType": "PREFIX_MATCH"}]}]}  // optional: all repositories
//
// # Several accounts and regions
//
// An organisation is a list of worlds, each one account in one region with the fields above; the
// top-level ones (account, region, repositories, …) are then left out:
//
//	{"worlds": [
//	  {"name": "registry", "account": "111111111111", "region": "us-east-1",   // name: optional label
//	   "repositories": […], "replication": {…}},
//	  {"name": "dev", "account": "222222222222", "region": "us-east-1",
//	   "clusters": […], "taskDefinitions": [… "{{registry:111111111111}}/shop/api:latest" …], "services": […]}
//	]}
//
// An account and region appear at most once; a world needs no entry to be a replication
// destination (its repositories are created by replication). events/fleet-org.json is an example.
//
// Load reads and validates a file and reports every problem it finds at once, each naming where it
// is (for example `services[2] (prod/api): task definition "backend:3" is not in taskDefinitions`,
// or in a world `worlds[1] (dev 222222222222/us-east-1): services[0] (dev/api): …`).
package fleet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// RegistryPlaceholder in a fleet file stands for the world's own ECR registry host;
// "{{registry:ACCOUNT}}" and "{{registry:ACCOUNT:REGION}}" name another registry.
const RegistryPlaceholder = "{{registry}}"

var placeholderPattern = regexp.MustCompile(`\{\{registry(?::([^:}]*))?(?::([^:}]*))?\}\}`)

// Defaults for a fleet that names no account or region.
const (
	DefaultAccount = "123456789012"
	DefaultRegion  = "us-east-1"
)

// Fleet is what ECR holds and what ECS runs: one world (the top-level fields) or, with Worlds,
// several accounts and regions.
type Fleet struct {
	Account         string                    `json:"account,omitempty"`
	Region          string                    `json:"region,omitempty"`
	Repositories    []Repository              `json:"repositories,omitempty"`
	Clusters        []Cluster                 `json:"clusters,omitempty"`
	TaskDefinitions []TaskDefinition          `json:"taskDefinitions,omitempty"`
	Services        []Service                 `json:"services,omitempty"`
	Replication     *ReplicationConfiguration `json:"replication,omitempty"`
	Worlds          []World                   `json:"worlds,omitempty"`
}

// World is one account in one region: its registry (repositories, replication) and its ECS.
type World struct {
	Name            string                    `json:"name,omitempty"` // a label for messages, e.g. "dev"
	Account         string                    `json:"account"`
	Region          string                    `json:"region,omitempty"`
	Repositories    []Repository              `json:"repositories,omitempty"`
	Clusters        []Cluster                 `json:"clusters,omitempty"`
	TaskDefinitions []TaskDefinition          `json:"taskDefinitions,omitempty"`
	Services        []Service                 `json:"services,omitempty"`
	Replication     *ReplicationConfiguration `json:"replication,omitempty"`
}

// single is the top-level world of a fleet without Worlds.
func (f *Fleet) single() World {
	return World{
		Account: f.Account, Region: f.Region, Repositories: f.Repositories, Clusters: f.Clusters,
		TaskDefinitions: f.TaskDefinitions, Services: f.Services, Replication: f.Replication,
	}
}

// AllWorlds returns the fleet's worlds: Worlds, or the one the top-level fields describe.
func (f *Fleet) AllWorlds() []World {
	if len(f.Worlds) > 0 {
		return f.Worlds
	}
	return []World{f.single()}
}

// World returns the fleet's world of account in region.
func (f *Fleet) World(account, region string) (World, bool) {
	for _, w := range f.AllWorlds() {
		if w.Account == account && w.Region == region {
			return w, true
		}
	}
	return World{}, false
}

// Repository is an ECR repository and the images pushed to it, oldest first.
type Repository struct {
	Name   string  `json:"name"`
	Images []Image `json:"images"`
}

// Image is one pushed manifest and the tags that point at it now.
type Image struct {
	Tags      []string `json:"tags,omitempty"`
	Manifest  string   `json:"manifest"`
	MediaType string   `json:"mediaType,omitempty"`
}

// Digest is the image's content digest as ECR computes it: sha256 of the manifest bytes.
func (i Image) Digest() string { return ManifestDigest(i.Manifest) }

// ManifestDigest returns "sha256:" + the hex SHA-256 of manifest.
func ManifestDigest(manifest string) string {
	sum := sha256.Sum256([]byte(manifest))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Image pull behaviours of a cluster's nodes (the ECS agent's ECS_IMAGE_PULL_BEHAVIOR).
const (
	PullDefault      = "default"
	PullOnce         = "once"
	PullPreferCached = "prefer-cached"
)

// Cluster is an ECS cluster; its nodes may keep an image cache that wins over ECR for tags.
type Cluster struct {
	Name              string            `json:"name"`
	ImagePullBehavior string            `json:"imagePullBehavior,omitempty"`
	NodeCache         map[string]string `json:"nodeCache,omitempty"`
}

// CachesImages reports whether the cluster's nodes reuse an image they pulled before instead of
// resolving its tag again (once and prefer-cached both do).
func (c Cluster) CachesImages() bool {
	return c.ImagePullBehavior == PullOnce || c.ImagePullBehavior == PullPreferCached
}

// TaskDefinition is one RegisterTaskDefinition input. JSON holds it verbatim (with {{registry}}
// expanded once the fleet is loaded); Input is the same decoded into the SDK's type.
type TaskDefinition struct {
	JSON     json.RawMessage
	Input    *ecs.RegisterTaskDefinitionInput
	Revision int32 // assigned by Load: position among the file's task definitions of the same family
}

// MarshalJSON writes the task definition's input JSON.
func (t TaskDefinition) MarshalJSON() ([]byte, error) {
	if len(t.JSON) == 0 {
		return []byte("null"), nil
	}
	return t.JSON, nil
}

// UnmarshalJSON keeps the input JSON verbatim; Load decodes it.
func (t *TaskDefinition) UnmarshalJSON(b []byte) error {
	t.JSON = append(json.RawMessage(nil), b...)
	return nil
}

// Family returns the task definition's family ("" before Load).
func (t TaskDefinition) Family() string {
	if t.Input == nil || t.Input.Family == nil {
		return ""
	}
	return *t.Input.Family
}

// Ref returns "family:revision".
func (t TaskDefinition) Ref() string { return t.Family() + ":" + strconv.Itoa(int(t.Revision)) }

// CircuitBreaker is an ECS deployment circuit breaker.
type CircuitBreaker struct {
	Enable   bool `json:"enable"`
	Rollback bool `json:"rollback"`
}

// DeploymentConfiguration is the strategy part of an ECS service's deployment configuration.
type DeploymentConfiguration struct {
	Strategy            string               `json:"strategy,omitempty"`
	BakeTimeInMinutes   *int32               `json:"bakeTimeInMinutes,omitempty"`
	LinearConfiguration *LinearConfiguration `json:"linearConfiguration,omitempty"`
	CanaryConfiguration *CanaryConfiguration `json:"canaryConfiguration,omitempty"`
}

// LinearConfiguration is ECS's, for the LINEAR strategy.
type LinearConfiguration struct {
	StepPercent           *float64 `json:"stepPercent,omitempty"`
	StepBakeTimeInMinutes *int32   `json:"stepBakeTimeInMinutes,omitempty"`
}

// CanaryConfiguration is ECS's, for the CANARY strategy.
type CanaryConfiguration struct {
	CanaryPercent           *float64 `json:"canaryPercent,omitempty"`
	CanaryBakeTimeInMinutes *int32   `json:"canaryBakeTimeInMinutes,omitempty"`
}

// Service is an ECS service running desiredCount tasks of one task definition revision.
type Service struct {
	Cluster              string          `json:"cluster"`
	Name                 string          `json:"name"`
	TaskDefinition       string          `json:"taskDefinition"`
	DesiredCount         int32           `json:"desiredCount"`
	LaunchType           string          `json:"launchType,omitempty"`
	DeploymentController string          `json:"deploymentController,omitempty"`
	CircuitBreaker       *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// DeploymentConfiguration chooses the deployment strategy (nil: ROLLING).
	DeploymentConfiguration *DeploymentConfiguration `json:"deploymentConfiguration,omitempty"`
	Tags                    map[string]string        `json:"tags,omitempty"`
}

// Controller returns the deployment controller type, ECS when none is given.
func (s Service) Controller() string {
	if s.DeploymentController == "" {
		return "ECS"
	}
	return s.DeploymentController
}

// RegistryHost returns the ECR registry host of account in region.
func RegistryHost(account, region string) string {
	return account + ".dkr.ecr." + region + ".amazonaws.com"
}

// Registry returns the fleet's ECR registry host, <account>.dkr.ecr.<region>.amazonaws.com (of
// the top-level world).
func (f *Fleet) Registry() string { return RegistryHost(f.Account, f.Region) }

// ExpandRegistry replaces the registry placeholders in s as the top-level world sees them.
func (f *Fleet) ExpandRegistry(s string) string {
	w := f.single()
	return w.ExpandRegistry(s)
}

// TaskDefinition returns the task definition a service refers to ("family:revision").
func (f *Fleet) TaskDefinition(ref string) (TaskDefinition, bool) {
	w := f.single()
	return w.TaskDefinition(ref)
}

// Registry returns the world's ECR registry host.
func (w *World) Registry() string { return RegistryHost(w.Account, w.Region) }

// ExpandRegistry replaces {{registry}} in s with the world's registry host,
// {{registry:ACCOUNT}} with that account's host in the world's region and
// {{registry:ACCOUNT:REGION}} with that registry's host. Malformed placeholders stay (prepare
// reports them).
func (w *World) ExpandRegistry(s string) string {
	return placeholderPattern.ReplaceAllStringFunc(s, func(p string) string {
		m := placeholderPattern.FindStringSubmatch(p)
		account, region := w.Account, w.Region
		if strings.Contains(p, ":") {
			account = m[1]
			if strings.Count(p, ":") == 2 {
				region = m[2]
			}
			if !accountPattern.MatchString(account) || !regionPattern.MatchString(region) {
				return p
			}
		}
		return RegistryHost(account, region)
	})
}

// Where names the world in messages: "dev 222222222222/us-east-1".
func (w *World) Where() string {
	if w.Name == "" {
		return w.Account + "/" + w.Region
	}
	return w.Name + " " + w.Account + "/" + w.Region
}

// TaskDefinition returns the task definition a service of the world refers to ("family:revision").
func (w *World) TaskDefinition(ref string) (TaskDefinition, bool) {
	for _, td := range w.TaskDefinitions {
		if td.Ref() == ref {
			return td, true
		}
	}
	return TaskDefinition{}, false
}

// Load reads a fleet file, fills in defaults, expands {{registry}}, and validates it.
func Load(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("fleet %s: %w", path, err)
	}
	return f, nil
}

// Parse is Load for bytes already read.
func Parse(data []byte) (*Fleet, error) {
	var f Fleet
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(f.Worlds) == 0 {
		if f.Account == "" {
			f.Account = DefaultAccount
		}
		if f.Region == "" {
			f.Region = DefaultRegion
		}
		w := f.single()
		err := errors.Join(w.prepare("")...)
		f.Account, f.Region, f.Repositories, f.Clusters, f.TaskDefinitions, f.Services, f.Replication =
			w.Account, w.Region, w.Repositories, w.Clusters, w.TaskDefinitions, w.Services, w.Replication
		if err != nil {
			return nil, err
		}
		return &f, nil
	}
	if err := f.prepareWorlds(); err != nil {
		return nil, err
	}
	return &f, nil
}

// prepareWorlds checks a fleet of several worlds, each as a single fleet is checked.
func (f *Fleet) prepareWorlds() error {
	var problems []error
	if f.Account != "" || f.Region != "" || len(f.Repositories)+len(f.Clusters)+len(f.TaskDefinitions)+len(f.Services) > 0 || f.Replication != nil {
		problems = append(problems, errors.New("worlds: give either worlds or the top-level account, region, repositories, clusters, taskDefinitions, services and replication, not both"))
	}
	seen := map[string]int{}
	for i := range f.Worlds {
		w := &f.Worlds[i]
		if w.Region == "" {
			w.Region = DefaultRegion
		}
		where := fmt.Sprintf("worlds[%d] (%s)", i, w.Where())
		key := w.Account + "/" + w.Region
		if j, dup := seen[key]; dup {
			problems = append(problems, fmt.Errorf("%s: %s is already worlds[%d]; an account and region appear once", where, key, j))
		}
		seen[key] = i
		problems = append(problems, w.prepare(where+": ")...)
	}
	return errors.Join(problems...)
}

var (
	accountPattern    = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	repositoryPattern = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)
	tagPattern        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	namePattern       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	digestPattern     = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// prepare decodes the task definitions, numbers their revisions and checks everything, returning
// every problem, each prefixed with at.
func (f *World) prepare(at string) []error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(at+format, args...)) }

	if !accountPattern.MatchString(f.Account) {
		bad("account %q: want 12 digits", f.Account)
	}
	if !regionPattern.MatchString(f.Region) {
		bad("region %q: not a region name such as us-east-1", f.Region)
	}

	repos := map[string]bool{}
	for i, r := range f.Repositories {
		where := fmt.Sprintf("repositories[%d] (%s)", i, r.Name)
		if !repositoryPattern.MatchString(r.Name) || len(r.Name) < 2 || len(r.Name) > 256 {
			bad("%s: invalid repository name %q", where, r.Name)
		}
		if repos[r.Name] {
			bad("%s: repository listed twice", where)
		}
		repos[r.Name] = true
		tags := map[string]int{}
		digests := map[string]int{}
		for j, img := range r.Images {
			iw := fmt.Sprintf("%s.images[%d]", where, j)
			if !json.Valid([]byte(img.Manifest)) {
				bad("%s: manifest is not a JSON document (it must be the exact manifest bytes as a string)", iw)
			}
			if k, dup := digests[img.Digest()]; dup {
				bad("%s: same manifest as images[%d]; list its tags once", iw, k)
			}
			digests[img.Digest()] = j
			for _, t := range img.Tags {
				if !tagPattern.MatchString(t) {
					bad("%s: invalid tag %q", iw, t)
				}
				if k, dup := tags[t]; dup {
					bad("%s: tag %q already on images[%d]; a tag points at one image", iw, t, k)
				}
				tags[t] = j
			}
		}
	}

	clusters := map[string]bool{}
	for i, c := range f.Clusters {
		where := fmt.Sprintf("clusters[%d] (%s)", i, c.Name)
		if !namePattern.MatchString(c.Name) {
			bad("%s: invalid cluster name %q (letters, digits, - and _; up to 255)", where, c.Name)
		}
		if clusters[c.Name] {
			bad("%s: cluster listed twice", where)
		}
		clusters[c.Name] = true
		switch c.ImagePullBehavior {
		case "", PullDefault, PullOnce, PullPreferCached:
		default:
			bad("%s: imagePullBehavior %q: want default, once or prefer-cached", where, c.ImagePullBehavior)
		}
		if len(c.NodeCache) > 0 && !c.CachesImages() {
			bad("%s: nodeCache given but imagePullBehavior %q never uses a cache", where, c.ImagePullBehavior)
		}
		expanded := make(map[string]string, len(c.NodeCache))
		for image, digest := range c.NodeCache {
			if !digestPattern.MatchString(digest) {
				bad("%s: nodeCache[%q] = %q: want sha256:<64 hex>", where, image, digest)
			}
			key := f.ExpandRegistry(image)
			if p := badPlaceholder(key); p != "" {
				bad("%s: nodeCache key %q: bad placeholder %s (want {{registry}}, {{registry:ACCOUNT}} or {{registry:ACCOUNT:REGION}})", where, image, p)
			}
			expanded[key] = digest
		}
		if c.NodeCache != nil {
			f.Clusters[i].NodeCache = expanded
		}
	}

	revisions := map[string]int32{}
	for i := range f.TaskDefinitions {
		td := &f.TaskDefinitions[i]
		where := fmt.Sprintf("taskDefinitions[%d]", i)
		if len(td.JSON) == 0 || string(td.JSON) == "null" {
			bad("%s: empty", where)
			continue
		}
		td.JSON = json.RawMessage(f.ExpandRegistry(string(td.JSON)))
		var in ecs.RegisterTaskDefinitionInput
		dec := json.NewDecoder(bytes.NewReader(td.JSON))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			bad("%s: not a RegisterTaskDefinition input: %v", where, err)
			continue
		}
		td.Input = &in
		family := td.Family()
		where = fmt.Sprintf("%s (%s)", where, family)
		if p := badPlaceholder(string(td.JSON)); p != "" {
			bad("%s: bad placeholder %s (want {{registry}}, {{registry:ACCOUNT}} or {{registry:ACCOUNT:REGION}})", where, p)
		}
		if !namePattern.MatchString(family) {
			bad("%s: family %q: letters, digits, - and _; up to 255", where, family)
		}
		if len(in.ContainerDefinitions) == 0 {
			bad("%s: no containerDefinitions", where)
		}
		for j, c := range in.ContainerDefinitions {
			if c.Name == nil || *c.Name == "" {
				bad("%s: containerDefinitions[%d]: no name", where, j)
			}
			if c.Image == nil || *c.Image == "" {
				bad("%s: containerDefinitions[%d]: no image", where, j)
			}
		}
		revisions[family]++
		td.Revision = revisions[family]
	}

	services := map[string]bool{}
	for i, s := range f.Services {
		where := fmt.Sprintf("services[%d] (%s/%s)", i, s.Cluster, s.Name)
		if !clusters[s.Cluster] {
			bad("%s: cluster %q is not in clusters", where, s.Cluster)
		}
		if !namePattern.MatchString(s.Name) {
			bad("%s: invalid service name %q", where, s.Name)
		}
		if services[s.Cluster+"/"+s.Name] {
			bad("%s: service listed twice in its cluster", where)
		}
		services[s.Cluster+"/"+s.Name] = true
		if _, ok := f.TaskDefinition(s.TaskDefinition); !ok {
			bad("%s: task definition %q is not in taskDefinitions (want family:revision)", where, s.TaskDefinition)
		}
		if s.DesiredCount < 0 {
			bad("%s: desiredCount %d is negative", where, s.DesiredCount)
		}
		switch s.Controller() {
		case "ECS", "CODE_DEPLOY", "EXTERNAL":
		default:
			bad("%s: deploymentController %q: want ECS, CODE_DEPLOY or EXTERNAL", where, s.DeploymentController)
		}
		switch s.LaunchType {
		case "", "EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES":
		default:
			bad("%s: launchType %q: want EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES", where, s.LaunchType)
		}
		if s.CircuitBreaker != nil && s.CircuitBreaker.Rollback && !s.CircuitBreaker.Enable {
			bad("%s: circuitBreaker.rollback needs enable", where)
		}
		if c := s.DeploymentConfiguration; c != nil {
			switch c.Strategy {
			case "", "ROLLING", "BLUE_GREEN", "LINEAR", "CANARY":
			default:
				bad("%s: deploymentConfiguration.strategy %q: want ROLLING, BLUE_GREEN, LINEAR or CANARY", where, c.Strategy)
			}
		}
	}
	if f.Replication != nil {
		for _, p := range f.Replication.Problems(f.Account, f.Region) {
			bad("replication.%s", p)
		}
	}
	return problems
}

// badPlaceholder returns the first registry placeholder left unexpanded in s, "" if none.
func badPlaceholder(s string) string {
	i := strings.Index(s, "{{registry")
	if i < 0 {
		return ""
	}
	j := strings.Index(s[i:], "}}")
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j+2]
}
