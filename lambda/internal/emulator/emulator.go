// Package emulator is a local Amazon ECS + Amazon ECR that speaks the AWS JSON 1.1 protocol, so the
// real AWS SDK (BaseEndpoint / AWS_ENDPOINT_URL) and the AWS CLI (--endpoint-url) talk to it
// unchanged.
//
// It keeps state the way the services do — repositories and images with content digests, clusters,
// task definition families and revisions, services with deployments, tasks whose containers carry
// the imageDigest they run, tags — and pages and validates like AWS, so client code that ignores a
// limit fails here rather than in production. A scheduler replaces a service's tasks on every
// deployment, resolving each container's image against ECR or against the cluster's node image
// cache (which reproduces the incident pinroll exists for), fails deployments whose image cannot be
// pulled, rolls back with the circuit breaker, and emits "ECS Deployment State Change" events.
//
// Hooks for tests and benchmarks: per-operation latency, injected faults, ECS's documented
// token-bucket throttling with an injectable clock, call counts and a call log.
//
// State is per region (taken from the request's SigV4 credential scope) and held in memory; an
// Emulator is safe for concurrent use.
//
// Operations: ECR CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability,
// PutImage, DescribeImages, BatchGetImage, ListImages, BatchDeleteImage, Get/Set/
// DeleteRepositoryPolicy, Get/Put/DeleteRegistryPolicy; ECS CreateCluster, ListClusters,
// DescribeClusters, RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
// ListTaskDefinitionFamilies, DeregisterTaskDefinition, CreateService, ListServices,
// DescribeServices, UpdateService, DeleteService, ListTasks, DescribeTasks, TagResource,
// UntagResource, ListTagsForResource, ListAccountSettings. Any other is
// UnknownOperationException.
//
// It is held to the AWS API references rather than to other emulators: RegisterTaskDefinition
// fills in ECS's defaults and enforces its documented limits (64 KiB, 50 user tags, Fargate
// cpu/memory combinations, …), ECR answers per-image failures with ECR's codes, and deployments
// are answered IN_PROGRESS unless Options.DeployDelay is 0 (the instant world tests use;
// ECSDeployDelay is ECS-like, the default of `pinroll emulate`).
//
// Where it knowingly differs from AWS (the README's "The local world" lists every difference):
// deployments start all their tasks at once after the delay (no rolling batches, health checks
// or load balancer registration); a deployment whose tasks cannot start is marked FAILED even
// without a circuit breaker (ECS would keep retrying; its old tasks keep running here too);
// every deployment emits SERVICE_DEPLOYMENT_IN_PROGRESS when it starts; CODE_DEPLOY and
// EXTERNAL services are modelled with deployments rather than task sets; tasks go straight to
// RUNNING or STOPPED (no PENDING); an awsvpc service needs no networkConfiguration; request
// signatures and IAM are not checked; image layers, scans, capacity providers as resources and
// account settings other than the defaults are not modelled.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// Defaults used when Options leave them empty.
const (
	DefaultAccount = "123456789012"
	DefaultRegion  = "us-east-1"
)

// Options configure an Emulator. The zero value is a usable emulator for account 123456789012
// whose deployments complete within the UpdateService call.
type Options struct {
	// Account is the AWS account id in every ARN and the only ECR registry served.
	Account string
	// DeployDelay is how long a deployment takes. 0 completes it within the call that started it
	// (an instant world: deterministic, for tests); otherwise it completes in the background (see
	// also Settle) and the call answers it IN_PROGRESS, as ECS does. ECSDeployDelay is ECS-like.
	DeployDelay time.Duration
	// OnDeploymentEvent receives every "ECS Deployment State Change" event (the EventBridge JSON),
	// in order, from a delivery goroutine, outside any lock, once the handler of the call that
	// caused it has written its answer. It may call the emulator's API (not Settle).
	OnDeploymentEvent func(ctx context.Context, event []byte)
	// DeploymentEventURL, when set, receives every such event as an HTTP POST of its JSON, e.g. the
	// AWS Lambda Runtime Interface Emulator's invoke URL.
	DeploymentEventURL string
	// HTTPClient posts to DeploymentEventURL; default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives delivery failures; default: discard.
	Logger *slog.Logger
	// Now is the clock of timestamps (registeredAt, imagePushedAt, …); default time.Now.
	Now func() time.Time
}

// Emulator is the ECS + ECR state and the HTTP handler that serves it.
type Emulator struct {
	opts    Options
	account string

	mu      sync.Mutex
	regions map[string]*world
	ids     int64 // sequence for deployment ids
	closed  bool
	loading bool // within Load

	hooks    hooks
	delivery delivery
}

// world is the state of one region.
type world struct {
	region         string
	repositories   map[string]*repository
	repoOrder      []string
	clusters       map[string]*cluster
	clusterOrder   []string
	families       map[string][]*taskDefinition // revisions, index revision-1
	registryPolicy string                       // ECR's registry policy, "" for none
}

// New returns an empty emulator.
func New(opts Options) *Emulator {
	if opts.Account == "" {
		opts.Account = DefaultAccount
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{opts: opts, account: opts.Account, regions: map[string]*world{}}
	e.hooks.init()
	e.delivery.init()
	return e
}

// Account returns the account id the emulator serves.
func (e *Emulator) Account() string { return e.account }

func (e *Emulator) now() time.Time { return e.opts.Now().UTC() }

// world returns a region's state, creating it empty. Call with e.mu held.
func (e *Emulator) world(region string) *world {
	w, ok := e.regions[region]
	if !ok {
		w = &world{
			region:       region,
			repositories: map[string]*repository{},
			clusters:     map[string]*cluster{},
			families:     map[string][]*taskDefinition{},
		}
		e.regions[region] = w
	}
	return w
}

func (e *Emulator) arn(region, resource string) string {
	return "arn:aws:ecs:" + region + ":" + e.account + ":" + resource
}

// Close stops pending deployments' timers and event deliveries. The emulator keeps answering
// requests, but background deployments no longer complete on their own (Settle still does).
func (e *Emulator) Close() {
	e.mu.Lock()
	e.closed = true
	for _, w := range e.regions {
		for _, c := range w.clusters {
			for _, s := range c.services {
				for _, d := range s.deployments {
					d.stopTimer()
				}
			}
		}
	}
	e.mu.Unlock()
	e.delivery.close()
}

// Load builds a fleet directly into the emulator's state: repositories and images (pushed in
// order, a minute apart), clusters with their image pull behaviour and node caches, task
// definitions, and services whose first deployment has completed, so their tasks are RUNNING —
// with the digest the cluster's nodes resolve (for a prefer-cached cluster, the cached one). Load
// emits no events. The fleet's account must be the emulator's.
func (e *Emulator) Load(f *fleet.Fleet) error {
	if f.Account != e.account {
		return fmt.Errorf("load fleet: fleet account %s is not the emulator's account %s (set Options.Account)", f.Account, e.account)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.loading = true // deployments complete at once and emit no events
	defer func() { e.loading = false }()
	w := e.world(f.Region)
	var problems []error
	images := 0
	for _, r := range f.Repositories {
		images += len(r.Images)
	}
	pushedAt := e.now().Add(-time.Duration(images+1) * time.Minute)
	for _, r := range f.Repositories {
		repo, err := e.createRepository(w, r.Name, "MUTABLE")
		if err != nil {
			problems = append(problems, fmt.Errorf("repository %s: %w", r.Name, err))
			continue
		}
		for _, img := range r.Images {
			pushedAt = pushedAt.Add(time.Minute)
			tags := img.Tags
			if len(tags) == 0 {
				tags = []string{""}
			}
			for _, tag := range tags {
				if _, err := repo.put(img.Manifest, img.MediaType, tag, "", pushedAt); err != nil {
					problems = append(problems, fmt.Errorf("repository %s: image %s: %w", r.Name, img.Digest(), err))
				}
			}
		}
	}
	for _, c := range f.Clusters {
		cl := e.createCluster(w, c.Name, nil)
		cl.pullBehavior = c.ImagePullBehavior
		for image, digest := range c.NodeCache {
			cl.nodeCache[image] = digest
		}
	}
	for _, td := range f.TaskDefinitions {
		if _, err := e.registerTaskDefinition(w, td.JSON); err != nil {
			problems = append(problems, fmt.Errorf("task definition %s: %w", td.Ref(), err))
		}
	}
	for _, s := range f.Services {
		in := createServiceInput{
			Cluster:              s.Cluster,
			ServiceName:          s.Name,
			TaskDefinition:       s.TaskDefinition,
			DesiredCount:         &s.DesiredCount,
			LaunchType:           s.LaunchType,
			DeploymentController: &deploymentController{Type: s.Controller()},
		}
		for k, v := range s.Tags {
			in.Tags = append(in.Tags, tag{Key: k, Value: v})
		}
		sortTags(in.Tags)
		if cb := s.CircuitBreaker; cb != nil {
			in.DeploymentConfiguration = &deploymentConfiguration{CircuitBreaker: &circuitBreaker{Enable: cb.Enable, Rollback: cb.Rollback}}
		}
		if _, err := e.createService(w, in); err != nil {
			problems = append(problems, fmt.Errorf("service %s/%s: %w", s.Cluster, s.Name, err))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("load fleet: %w", err)
	}
	return nil
}

// Server is an Emulator listening on a TCP address.
type Server struct {
	emulator *Emulator
	listener net.Listener
	http     *http.Server
	done     chan struct{}
}

// Start serves a new emulator on addr (tests use "127.0.0.1:0"); nothing else is listened on.
func Start(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen on %s: %w", addr, err)
	}
	s := &Server{
		emulator: New(opts),
		listener: ln,
		done:     make(chan struct{}),
	}
	s.http = &http.Server{Handler: s.emulator, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.http.Serve(ln)
	}()
	return s, nil
}

// URL is the endpoint to give the SDK (BaseEndpoint) or the CLI (--endpoint-url).
func (s *Server) URL() string { return "http://" + s.listener.Addr().String() }

// Emulator returns the served emulator, for Load and the test hooks.
func (s *Server) Emulator() *Emulator { return s.emulator }

// Close stops listening, closes open connections and stops background work.
func (s *Server) Close() error {
	err := s.http.Close()
	<-s.done
	s.emulator.Close()
	return err
}
