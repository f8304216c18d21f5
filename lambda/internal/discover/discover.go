// Package discover finds the ECS services in scope and the task definitions they run.
//
// It makes as few calls as the problem allows: clusters and services are listed 100 to a
// page, services described 10 to a call (the API's maximum) with their tags, and each task
// definition described once — ever, per process: a task definition ARN with a revision is
// immutable, so the Cache never needs invalidating and survives warm Lambda invocations.
package discover

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/sync/errgroup"
)

// ECS is the part of the ECS API discovery uses, with the SDK's exact signatures.
type ECS interface {
	ListClusters(context.Context, *ecs.ListClustersInput, ...func(*ecs.Options)) (*ecs.ListClustersOutput, error)
	ListServices(context.Context, *ecs.ListServicesInput, ...func(*ecs.Options)) (*ecs.ListServicesOutput, error)
	DescribeServices(context.Context, *ecs.DescribeServicesInput, ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// API limits that shape the calls (README, "Performance": ECS's documented per-account rates).
const (
	pageSize          = 100 // ListClusters and ListServices maximum page
	describeBatchSize = 10  // DescribeServices maximum names per call
)

// Service is what pinroll needs to know about one ECS service.
type Service struct {
	Cluster        string // cluster name
	ClusterARN     string
	Name           string
	ARN            string
	Status         string // ACTIVE, DRAINING, INACTIVE
	TaskDefinition string // task definition ARN with revision
	Controller     string // deployment controller: ECS, CODE_DEPLOY, EXTERNAL
	DesiredCount   int32
	Tags           map[string]string
	// Rollout is the deployment ECS has not finished yet, nil when there is none.
	Rollout *Rollout
	// RolloutState is the rolloutState of the service's PRIMARY deployment (IN_PROGRESS,
	// COMPLETED, FAILED; "" when ECS gives none), and RolloutReason ECS's words for it: a
	// staged rollout (plan.Stage) reads from them whether a wave's deployment failed.
	RolloutState, RolloutReason string
}

// Rollout is a service's PRIMARY deployment while ECS is still carrying it out: under ROLLING
// until the new tasks run, under BLUE_GREEN, LINEAR and CANARY through the traffic shifts and the
// bake time, while the previous revision's tasks still run beside the new ones. What its
// tasks run proves nothing yet.
type Rollout struct {
	ID                string // "ecs-svc/…"
	TaskDefinition    string // the revision it rolls out
	Strategy          string // ROLLING, BLUE_GREEN, LINEAR or CANARY
	BakeTimeInMinutes int32
	StartedAt         time.Time
	// ServiceDeployment is the ARN of the service's current service deployment (for
	// DescribeServiceDeployments), "" when ECS did not say.
	ServiceDeployment string
}

// rolloutOf finds the deployment ECS has not finished: the PRIMARY one whose rolloutState is
// IN_PROGRESS — or, since the API reference returns rolloutState only for rolling updates, a
// PRIMARY one without it while others are still listed (blue beside green).
func rolloutOf(s types.Service) *Rollout {
	for _, d := range s.Deployments {
		if aws.ToString(d.Status) != "PRIMARY" {
			continue
		}
		unfinished := d.RolloutState == types.DeploymentRolloutStateInProgress || (d.RolloutState == "" && len(s.Deployments) > 1)
		if !unfinished {
			return nil
		}
		r := &Rollout{
			ID: aws.ToString(d.Id), TaskDefinition: aws.ToString(d.TaskDefinition), Strategy: string(types.DeploymentStrategyRolling),
			StartedAt: aws.ToTime(d.CreatedAt), ServiceDeployment: aws.ToString(s.CurrentServiceDeployment),
		}
		if c := s.DeploymentConfiguration; c != nil {
			if c.Strategy != "" {
				r.Strategy = string(c.Strategy)
			}
			r.BakeTimeInMinutes = aws.ToInt32(c.BakeTimeInMinutes)
		}
		return r
	}
	return nil
}

// ServiceID identifies one service across clusters, accounts and regions: its ARN.
type ServiceID string

// ID is the service's identity (its ARN; cluster/name when ECS did not say).
func (s Service) ID() ServiceID {
	if s.ARN != "" {
		return ServiceID(s.ARN)
	}
	return ServiceID(s.ClusterARN + "/" + s.Name)
}

// Account is the 12-digit account the service lives in, from its ARN ("" when unknown).
func (s Service) Account() string {
	for _, a := range []string{s.ARN, s.ClusterARN} {
		if parsed, err := arn.Parse(a); err == nil {
			return parsed.AccountID
		}
	}
	return ""
}

// TaskDefinition is a described task definition and its tags.
type TaskDefinition struct {
	Definition *types.TaskDefinition
	Tags       []types.Tag
}

// Fleet is the discovered world: services in scope and the task definitions they run.
type Fleet struct {
	Services        []Service
	TaskDefinitions map[string]*TaskDefinition // by task definition ARN
	// Latest holds, by family, the latest ACTIVE revision ECS named during this discovery —
	// for the families discovery had to describe (not those it found in the cache). Apply
	// uses it to know, without another call, whether an earlier attempt already registered
	// the revision it is about to register.
	Latest map[string]*TaskDefinition
}

// Cache holds task definitions by ARN. ARNs with a revision never change, so entries never
// go stale. Safe for concurrent use; the zero value is ready.
type Cache struct {
	mu sync.RWMutex
	m  map[string]*TaskDefinition
}

// Get returns the cached task definition for arn.
func (c *Cache) Get(arn string) (*TaskDefinition, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	td, ok := c.m[arn]
	return td, ok
}

// Put remembers td under arn.
func (c *Cache) Put(arn string, td *TaskDefinition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*TaskDefinition)
	}
	c.m[arn] = td
}

// Len is the number of cached task definitions.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Discoverer lists and describes. Create it once per process and reuse it: its cache is
// what makes warm invocations cheap, and its pacer remembers what earlier invocations spent.
type Discoverer struct {
	ECS   ECS
	Cache *Cache
	// Concurrency bounds the calls in flight per operation. Zero means DefaultConcurrency.
	Concurrency int
	// Pace spaces the calls to stay inside ECS's token buckets; nil calls as fast as
	// Concurrency allows (for tests and for an API that does not throttle).
	Pace *Pacer
	// Index, when set, is asked for the revisions not in Cache before ECS is, and receives
	// those ECS had to describe (see index.go). nil: ECS only.
	Index Index
	// Log receives the index's warnings (once per Discover); nil: slog.Default().
	Log *slog.Logger
}

// DefaultConcurrency is enough calls in flight per operation to keep ECS's buckets busy at
// real API latencies (20 calls/s × ~100 ms ≈ 2 in flight); the Pacer, not this, keeps the
// rate inside the buckets.
const DefaultConcurrency = 8

// New returns a Discoverer with an empty cache, paced to ECS's documented buckets.
func New(client ECS) *Discoverer {
	return &Discoverer{ECS: client, Cache: &Cache{}, Concurrency: DefaultConcurrency, Pace: NewPacer(ECSLimits, nil)}
}

func (d *Discoverer) limit() int {
	if d.Concurrency > 0 {
		return d.Concurrency
	}
	return DefaultConcurrency
}

// Discover returns every service of the given clusters (names or ARNs; empty means every
// cluster of the account and region) and the task definition each one runs.
//
// The stages overlap: each page of services is described as soon as it is listed, and each
// task definition as soon as a described service names one not seen before, so the slowest
// bucket (DescribeTaskDefinition, on a cold start) starts draining within the first calls.
func (d *Discoverer) Discover(ctx context.Context, clusters []string) (*Fleet, error) {
	if len(clusters) == 0 {
		var err error
		if clusters, err = d.clusters(ctx); err != nil {
			return nil, err
		}
	}
	r := &run{d: d, tds: make(map[string]*TaskDefinition), latest: make(map[string]*TaskDefinition), families: make(map[string]*sync.Mutex), indexOn: d.Index != nil}
	parent := ctx
	r.g, ctx = errgroup.WithContext(ctx)
	r.producers = len(clusters)
	for op := range r.gates {
		r.gates[op] = make(chan struct{}, d.limit())
	}
	perCluster := make([][][]Service, len(clusters)) // cluster → batch → services
	for i, cluster := range clusters {
		r.g.Go(func() error {
			defer r.produced(ctx)
			arns, err := r.listServices(ctx, cluster)
			if err != nil {
				return err
			}
			batches := slices.Collect(slices.Chunk(arns, describeBatchSize))
			perCluster[i] = make([][]Service, len(batches))
			r.producing(len(batches))
			for j, batch := range batches {
				r.g.Go(func() (err error) {
					defer r.produced(ctx)
					perCluster[i][j], err = r.describeServices(ctx, cluster, batch)
					return err
				})
			}
			return nil
		})
	}
	if err := r.g.Wait(); err != nil {
		return nil, err
	}
	r.writeBack(parent, true)
	var services []Service
	for _, batches := range perCluster {
		for _, batch := range batches {
			services = append(services, batch...)
		}
	}
	return &Fleet{Services: services, TaskDefinitions: r.tds, Latest: r.latest}, nil
}

// DiscoverServices is Discover for known services only: for each cluster (name or ARN) the
// named services (names or ARNs), described ten a call, and the task definitions they run. It
// lists nothing, so a continuation re-reads only the services it still has to move. A service
// that no longer exists is absent from the fleet (DescribeServices reports it MISSING).
func (d *Discoverer) DiscoverServices(ctx context.Context, services map[string][]string) (*Fleet, error) {
	r := &run{d: d, tds: make(map[string]*TaskDefinition), latest: make(map[string]*TaskDefinition), families: make(map[string]*sync.Mutex), indexOn: d.Index != nil}
	parent := ctx
	r.g, ctx = errgroup.WithContext(ctx)
	for op := range r.gates {
		r.gates[op] = make(chan struct{}, d.limit())
	}
	clusters := slices.Sorted(maps.Keys(services))
	perCluster := make([][][]Service, len(clusters))
	batches := make([][][]string, len(clusters))
	total := 0
	for i, cluster := range clusters {
		batches[i] = slices.Collect(slices.Chunk(services[cluster], describeBatchSize))
		perCluster[i] = make([][]Service, len(batches[i]))
		total += len(batches[i])
	}
	r.producing(total) // all at once: the index is asked when the last one is done
	for i, cluster := range clusters {
		for j, batch := range batches[i] {
			r.g.Go(func() (err error) {
				defer r.produced(ctx)
				perCluster[i][j], err = r.describeServices(ctx, cluster, batch)
				return err
			})
		}
	}
	if err := r.g.Wait(); err != nil {
		return nil, err
	}
	r.writeBack(parent, true)
	var found []Service
	for _, batches := range perCluster {
		for _, batch := range batches {
			found = append(found, batch...)
		}
	}
	return &Fleet{Services: found, TaskDefinitions: r.tds, Latest: r.latest}, nil
}

// run is one Discover: its goroutines, the calls in flight and the task definitions found.
type run struct {
	d     *Discoverer
	g     *errgroup.Group
	gates [numGated]chan struct{} // per gated operation: one slot per call in flight

	mu       sync.Mutex
	tds      map[string]*TaskDefinition // by ARN; nil while being described
	latest   map[string]*TaskDefinition // by family: its latest revision, as ECS named it
	families map[string]*sync.Mutex     // by family: one description of a family at a time

	// The index (index.go), all under mu.
	indexOn   bool              // Index set and not failed in this run
	producers int               // stages still running that may name task definitions
	lookups   []string          // ARNs waiting for the index
	described []*TaskDefinition // described by ECS, waiting to be written to the index
	warned    [numWarnings]bool // each index warning once per run
}

// gated is an ECS operation that a run calls concurrently, each with its own gate (bounded
// calls in flight) and its own pacer bucket. A typed index rather than the operation's name:
// there is no name that could fall through to another operation's gate.
type gated int

const (
	gatedListServices gated = iota
	gatedDescribeServices
	gatedDescribeTaskDefinition
	numGated
)

// opListClusters is paced but not gated: its pages are listed one after the other.
const opListClusters = "ListClusters"

// gatedOps names each gated operation as ECS (and ECSLimits, and the Pacer) does.
var gatedOps = [numGated]string{
	gatedListServices:           "ListServices",
	gatedDescribeServices:       "DescribeServices",
	gatedDescribeTaskDefinition: "DescribeTaskDefinition",
}

func (op gated) String() string { return gatedOps[op] }

// call runs f as one op call: when a slot is free and the pacer allows it.
func (r *run) call(ctx context.Context, op gated, f func() error) error {
	gate := r.gates[op]
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-gate }()
	if err := r.d.Pace.Wait(ctx, op.String()); err != nil {
		return err
	}
	return f()
}

func (d *Discoverer) clusters(ctx context.Context) ([]string, error) {
	var arns []string
	p := ecs.NewListClustersPaginator(d.ECS, &ecs.ListClustersInput{MaxResults: aws.Int32(pageSize)})
	for p.HasMorePages() {
		if err := d.Pace.Wait(ctx, opListClusters); err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		arns = append(arns, page.ClusterArns...)
	}
	return arns, nil
}

func (r *run) listServices(ctx context.Context, cluster string) ([]string, error) {
	var arns []string
	p := ecs.NewListServicesPaginator(r.d.ECS, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(pageSize)})
	for p.HasMorePages() {
		err := r.call(ctx, gatedListServices, func() error {
			page, err := p.NextPage(ctx)
			if err == nil {
				arns = append(arns, page.ServiceArns...)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list services of cluster %s: %w", cluster, err)
		}
	}
	return arns, nil
}

func (r *run) describeServices(ctx context.Context, cluster string, arns []string) ([]Service, error) {
	var out *ecs.DescribeServicesOutput
	err := r.call(ctx, gatedDescribeServices, func() (err error) {
		out, err = r.d.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{
			Cluster:  aws.String(cluster),
			Services: arns,
			Include:  []types.ServiceField{types.ServiceFieldTags},
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("describe services of cluster %s: %w", cluster, err)
	}
	// A service deleted between ListServices and DescribeServices comes back as a
	// failure (MISSING): it no longer exists, so there is nothing to deploy to it.
	services := make([]Service, 0, len(out.Services))
	for _, s := range out.Services {
		svc := FromSDK(s)
		services = append(services, svc)
		r.taskDefinition(ctx, svc.TaskDefinition)
	}
	return services, nil
}

// taskDefinition makes sure arn ends up in the run's task definitions: from the cache, or
// described (once per run, however many services name it) alongside the other stages.
func (r *run) taskDefinition(ctx context.Context, arn string) {
	if arn == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.tds[arn]; seen {
		return
	}
	if td, ok := r.d.Cache.Get(arn); ok {
		r.tds[arn] = td
		return
	}
	r.tds[arn] = nil // being described
	if r.indexOn {
		r.lookup(ctx, arn)
		return
	}
	r.describeLater(ctx, arn)
}

// describeLater describes arn alongside the other stages. Call with r.mu held.
func (r *run) describeLater(ctx context.Context, arn string) {
	family := Family(arn)
	if r.families[family] == nil {
		r.families[family] = &sync.Mutex{}
	}
	lock := r.families[family]
	r.g.Go(func() error {
		lock.Lock() // the family's first description may bring this one
		defer lock.Unlock()
		td, err := r.describeOf(ctx, family, arn)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.tds[arn] = td
		r.mu.Unlock()
		r.remember(ctx, td)
		return nil
	})
}

// describeOf describes arn, a revision of family. The first revision of a family a run
// needs is asked for by family name: ECS answers with the family's latest revision, which
// is usually the very one needed — and then the run also knows that no later revision
// exists, which spares apply a call. Otherwise the answer is cached (and remembered as the
// family's latest) and arn is described by itself.
func (r *run) describeOf(ctx context.Context, family, arn string) (*TaskDefinition, error) {
	if td, ok := r.d.Cache.Get(arn); ok {
		return td, nil // a sibling's family description brought it
	}
	r.mu.Lock()
	_, known := r.latest[family]
	r.mu.Unlock()
	if !known && family != "" {
		var latest *TaskDefinition
		err := r.call(ctx, gatedDescribeTaskDefinition, func() (err error) {
			latest, err = r.d.describe(ctx, family)
			return err
		})
		if err == nil {
			r.mu.Lock()
			r.latest[family] = latest
			r.mu.Unlock()
			if aws.ToString(latest.Definition.TaskDefinitionArn) == arn {
				return latest, nil
			}
		}
		// A family without an ACTIVE revision cannot be described by name; by ARN it can.
	}
	var td *TaskDefinition
	err := r.call(ctx, gatedDescribeTaskDefinition, func() (err error) {
		td, err = r.d.describe(ctx, arn)
		return err
	})
	return td, err
}

// Family is the family of a task definition ARN (…:task-definition/<family>:<revision>).
func Family(arn string) string {
	i := strings.LastIndex(arn, "/")
	j := strings.LastIndex(arn, ":")
	if i < 0 || j <= i {
		return ""
	}
	return arn[i+1 : j]
}

// FromSDK keeps what pinroll needs of a described service.
func FromSDK(s types.Service) Service {
	svc := Service{
		ClusterARN:     aws.ToString(s.ClusterArn),
		Name:           aws.ToString(s.ServiceName),
		ARN:            aws.ToString(s.ServiceArn),
		Status:         aws.ToString(s.Status),
		TaskDefinition: aws.ToString(s.TaskDefinition),
		Controller:     string(types.DeploymentControllerTypeEcs),
		DesiredCount:   s.DesiredCount,
		Tags:           make(map[string]string, len(s.Tags)),
		Rollout:        rolloutOf(s),
	}
	svc.Cluster = ClusterName(svc.ClusterARN)
	if s.DeploymentController != nil && s.DeploymentController.Type != "" {
		svc.Controller = string(s.DeploymentController.Type)
	}
	for _, t := range s.Tags {
		svc.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, d := range s.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			svc.RolloutState, svc.RolloutReason = string(d.RolloutState), aws.ToString(d.RolloutStateReason)
		}
	}
	return svc
}

// ClusterName returns the name in a cluster ARN (or the argument, when it is a name).
func ClusterName(cluster string) string {
	if i := strings.LastIndex(cluster, ":cluster/"); i >= 0 {
		return cluster[i+len(":cluster/"):]
	}
	return cluster
}

// Describe returns one task definition with its tags: from the cache when ref is an ARN
// seen before, else from ECS (paced). A family name (latest revision) is always asked of ECS.
func (d *Discoverer) Describe(ctx context.Context, ref string) (*TaskDefinition, error) {
	if td, ok := d.Cache.Get(ref); ok {
		return td, nil
	}
	if err := d.Pace.Wait(ctx, gatedDescribeTaskDefinition.String()); err != nil {
		return nil, fmt.Errorf("describe task definition %s: %w", ref, err)
	}
	return d.describe(ctx, ref)
}

// describe asks ECS for one task definition and caches it.
func (d *Discoverer) describe(ctx context.Context, ref string) (*TaskDefinition, error) {
	out, err := d.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(ref),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		return nil, fmt.Errorf("describe task definition %s: %w", ref, err)
	}
	if out.TaskDefinition == nil {
		return nil, fmt.Errorf("describe task definition %s: the answer holds no task definition", ref)
	}
	td := &TaskDefinition{Definition: out.TaskDefinition, Tags: out.Tags}
	// Cached by the ARN ECS returned, which carries the revision: immutable, even when ref
	// was a family name (whose latest revision may change).
	if arn := aws.ToString(out.TaskDefinition.TaskDefinitionArn); arn != "" {
		d.Cache.Put(arn, td)
	}
	return td, nil
}
