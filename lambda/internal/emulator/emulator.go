// Package emulator is a local AWS organisation's worth of Amazon ECS, Amazon ECR, AWS STS, SSM
// Parameter Store and Amazon SNS that speaks the services' own protocols — AWS JSON 1.1 for ECS, ECR
// and SSM, the AWS query protocol (form-encoded POST, XML answers) for STS and SNS — so the real
// AWS SDK (BaseEndpoint / AWS_ENDPOINT_URL) and the AWS CLI (--endpoint-url) talk to it unchanged.
//
// It keeps state the way the services do — repositories and images with content digests, clusters,
// task definition families and revisions, services with deployments, tasks whose containers carry
// the imageDigest they run, tags — and pages and validates like AWS, so client code that ignores a
// limit fails here rather than in production. A scheduler replaces a service's tasks on every
// deployment, resolving each container's image against ECR or against the cluster's node image
// cache (which reproduces the incident pinroll exists for), fails deployments whose image cannot be
// pulled, rolls back with the circuit breaker, and emits "ECS Deployment State Change" events.
// Under the BLUE_GREEN, LINEAR and CANARY strategies a deployment goes through ECS's lifecycle
// stages — green tasks beside blue, traffic shifts, a bake time (Options.BakeMinute) — before it
// completes, and StopServiceDeployment rolls it back to blue (strategies.go).
//
// # Accounts and regions
//
// State is per account and region, held in memory; an Emulator is safe for concurrent use. The
// region of a request is the one of its SigV4 credential scope. Its account is the one of the STS
// session that issued its access key (AssumeRole: requests then act in the role's account, as in
// AWS and moto); any other key ("test", "AKIA…", or a session key of an emulator that has since
// restarted) acts in Options.Account. ARNs, registry ids and ECR hosts follow the acting account.
// There is no IAM: any role can be assumed unless DenyAssumeRole says otherwise; DescribeImages and
// BatchGetImage may read another account's registry in the same region (registryId), as if its
// registry policy allowed every account to pull, and tasks pull from any account's registry; every
// other ECR operation on another account's registry answers AccessDeniedException.
//
// ECR registry replication (PutReplicationConfiguration) copies every push — same manifest bytes,
// digest and tag — into each matching destination, creating the repository there, and emits an
// "ECR Replication Action" event in the destination (after Options.ReplicationDelay; see
// FailReplications for failures). Replicas are not replicated further.
//
// Hooks for tests and benchmarks: per-operation latency, injected faults (any operation, including
// AssumeRole and Publish), ECS's documented token-bucket throttling (per account and region) with
// an injectable clock, call counts and a call log, DenyAssumeRole, RequireExternalID,
// FailReplications, Published, Parameter, and Settle, Advance and Flush to finish, step or
// wait for deployments and their events.
//
// # Operations
//
// ECR CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability, PutImage,
// DescribeImages, BatchGetImage, ListImages, BatchDeleteImage, Get/Set/DeleteRepositoryPolicy,
// Get/Put/DeleteRegistryPolicy, PutReplicationConfiguration, DescribeRegistry,
// Put/Get/DeleteLifecyclePolicy, UpdateImageStorageClass (and RunLifecyclePolicies, which applies
// the lifecycle policies now); ECS CreateCluster,
// ListClusters, DescribeClusters, RegisterTaskDefinition, DescribeTaskDefinition,
// ListTaskDefinitions, ListTaskDefinitionFamilies, DeregisterTaskDefinition, CreateService,
// ListServices, DescribeServices, UpdateService, DeleteService, ListTasks, DescribeTasks,
// TagResource, UntagResource, ListTagsForResource, ListAccountSettings, ListServiceDeployments,
// DescribeServiceDeployments, StopServiceDeployment (ROLLBACK); STS AssumeRole,
// GetCallerIdentity; SSM GetParameter, PutParameter, DeleteParameter; SNS CreateTopic,
// DeleteTopic, Publish. Any other is UnknownOperationException (JSON) or InvalidAction (query).
//
// It is held to the AWS API references rather than to other emulators: RegisterTaskDefinition
// fills in ECS's defaults and enforces its documented limits (64 KiB, 50 user tags, Fargate
// cpu/memory combinations, …), ECR answers per-image failures with ECR's codes, and deployments
// are answered IN_PROGRESS unless Options.DeployDelay is 0 (the instant world tests use;
// ECSDeployDelay is ECS-like, the default of `pinroll emulate`).
//
// # Known differences
//
// The README's "The local world" lists every difference. ECS: deployments start all their tasks at
// once after the delay (no rolling batches, health checks or load balancer registration); an awsvpc
// service needs no networkConfiguration; image layers, scans, capacity providers as resources and
// account settings other than the defaults are not modelled; a deployment whose tasks cannot start
// is marked FAILED even without a circuit breaker (ECS would keep retrying; its old tasks keep
// running here too); every deployment emits SERVICE_DEPLOYMENT_IN_PROGRESS when it starts;
// CODE_DEPLOY and EXTERNAL services are modelled with deployments rather than task sets; lifecycle
// hooks are kept, not invoked, and deployment alarms are not evaluated (no CloudWatch); tasks go
// straight to RUNNING or STOPPED (no PENDING); an ECR host of an account and region the emulator
// holds nothing for is treated as a registry outside ECR (a stable fake digest). ECR: registry and
// repository policies are kept, not evaluated (see above); a replication rule's destinations are
// not checked for a registry permission policy; "ECR Image Action" events only for pushes, and only
// with Options.PushEvents. STS: the signature of a request is not checked; no role's
// MaxSessionDuration (900–43200 s, an hour when chaining); Policy, PolicyArns, Tags and ExternalId
// are validated for shape only. SSM: standard tier and text data type only; versions by number, not
// labels; a SecureString's value without WithDecryption is an opaque base64 string. SNS: nothing is
// delivered to subscribers (there are none); only the topic's own account may publish (no topic
// policies); message deduplication and FIFO ordering are not modelled.
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
	// Account is the default account: requests signed with any credentials the emulator's STS did
	// not issue (e.g. "test", "AKIA…") act in it. Credentials from AssumeRole act in the role's
	// account. Default 123456789012.
	Account string
	// DeployDelay is how long a deployment takes. 0 completes it within the call that started it
	// (an instant world: deterministic, for tests); otherwise it completes in the background (see
	// also Settle) and the call answers it IN_PROGRESS, as ECS does. ECSDeployDelay is ECS-like.
	DeployDelay time.Duration
	// BakeMinute is how long one minute of a deployment's bake times lasts — bakeTimeInMinutes,
	// linearConfiguration.stepBakeTimeInMinutes and canaryConfiguration.canaryBakeTimeInMinutes
	// of the BLUE_GREEN, LINEAR and CANARY strategies (time.Minute in ECS). 0 ends every bake at
	// once, within the step that starts it (the instant world); otherwise bakes end in the
	// background, or when Advance or Settle is called.
	BakeMinute time.Duration
	// ReplicationDelay is how long ECR replication takes from a push to the copy in each
	// destination and its "ECR Replication Action" event. 0 copies within the PutImage call and
	// delivers the event right after its answer; otherwise both happen in the background (see
	// also Settle).
	ReplicationDelay time.Duration
	// PushEvents makes every successful PutImage emit an "ECR Image Action" event (action-type
	// PUSH) in the pushing account and region, before the replications it causes. Off by
	// default: the demo and the tests send their pushes themselves.
	PushEvents bool
	// OnEvent receives every EventBridge event the emulator emits — "ECS Deployment State
	// Change", "ECR Replication Action" and, with PushEvents, "ECR Image Action" — as its JSON,
	// in order, from a delivery goroutine, outside any lock, once the handler of the call that
	// caused it has written its answer. It may call the emulator's API (not Settle).
	OnEvent func(ctx context.Context, event []byte)
	// EventURL, when set, receives every such event as an HTTP POST of its JSON, e.g. the AWS
	// Lambda Runtime Interface Emulator's invoke URL.
	EventURL string
	// OnDeploymentEvent is the older name of OnEvent; it receives the same events (both may be set).
	OnDeploymentEvent func(ctx context.Context, event []byte)
	// DeploymentEventURL is the older name of EventURL; it receives the same events.
	DeploymentEventURL string
	// HTTPClient posts to EventURL and DeploymentEventURL; default: a client with a 30 s timeout.
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

	mu          sync.Mutex
	worlds      map[worldKey]*world
	ids         int64 // sequence for deployment ids
	closed      bool
	loading     bool                // within Load
	sessions    map[string]*session // access key id → the STS session that issued it
	denied      map[string]bool     // role ARNs whose AssumeRole is refused (DenyAssumeRole)
	externalIDs map[string]string   // role ARN → the ExternalId its trust policy requires
	params      map[worldKey]map[string]*parameter
	topics      map[string]*topic // topic ARN → topic
	pending     []*replication    // replications waiting for Options.ReplicationDelay
	failRepl    map[worldKey]int  // destination → replications still to fail (< 0: all)
	pubs        []Publication

	hooks    hooks
	delivery delivery
	dynamo   dynamoState // DynamoDB's tables (dynamodb.go)
	sqs      sqsState    // SQS queues (sqs.go)
}

// world is the state of one account in one region.
type world struct {
	account        string
	region         string
	replication    replicationConfiguration // the registry's replication configuration
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
	e := &Emulator{
		opts: opts, account: opts.Account, worlds: map[worldKey]*world{},
		sessions: map[string]*session{}, denied: map[string]bool{}, externalIDs: map[string]string{},
		params: map[worldKey]map[string]*parameter{}, topics: map[string]*topic{}, failRepl: map[worldKey]int{},
	}
	e.hooks.init()
	e.delivery.init()
	return e
}

// Account returns the default account: the one requests act in unless they are signed with
// credentials from the emulator's STS AssumeRole.
func (e *Emulator) Account() string { return e.account }

func (e *Emulator) now() time.Time { return e.opts.Now().UTC() }

// Close stops pending deployments' timers and event deliveries. The emulator keeps answering
// requests, but background deployments no longer complete on their own (Settle still does).
func (e *Emulator) Close() {
	e.mu.Lock()
	e.closed = true
	for _, r := range e.pending {
		r.timer.Stop()
	}
	e.pending = nil
	for _, w := range e.worlds {
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

// Load builds a fleet directly into the emulator's state: every world's registry replication
// configuration, repositories and images (pushed in order, a minute apart, and replicated as
// configured), clusters with their image pull behaviour and node caches, task definitions, and
// services whose first deployment has completed, so their tasks are RUNNING — with the digest the
// cluster's nodes resolve (for a prefer-cached cluster, the cached one). Load emits no events. A
// fleet of one world must be of the emulator's default account; one of several worlds
// (fleet.Fleet.Worlds) may name any accounts.
func (e *Emulator) Load(f *fleet.Fleet) error {
	if len(f.Worlds) == 0 && f.Account != e.account {
		return fmt.Errorf("load fleet: fleet account %s is not the emulator's account %s (set Options.Account)", f.Account, e.account)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.loading = true // deployments complete at once and emit no events
	defer func() { e.loading = false }()
	worlds := f.AllWorlds()
	var problems []error
	images := 0
	for _, fw := range worlds {
		for _, r := range fw.Repositories {
			images += len(r.Images)
		}
	}
	pushedAt := e.now().Add(-time.Duration(images+1) * time.Minute)
	// Registries first, so that replication finds the repositories a destination lists.
	for _, fw := range worlds {
		at := ""
		if len(f.Worlds) > 0 {
			at = "world " + fw.Where() + ": "
		}
		w := e.worldAt(fw.Account, fw.Region)
		if fw.Replication != nil {
			w.replication = *fw.Replication
		}
		for _, r := range fw.Repositories {
			if _, err := e.createRepository(w, r.Name, "MUTABLE"); err != nil {
				problems = append(problems, fmt.Errorf("%srepository %s: %w", at, r.Name, err))
			}
		}
	}
	for _, fw := range worlds {
		at := ""
		if len(f.Worlds) > 0 {
			at = "world " + fw.Where() + ": "
		}
		w := e.worldAt(fw.Account, fw.Region)
		for _, r := range fw.Repositories {
			repo := w.repositories[r.Name]
			if repo == nil {
				continue
			}
			for _, img := range r.Images {
				pushedAt = pushedAt.Add(time.Minute)
				tags := img.Tags
				if len(tags) == 0 {
					tags = []string{""}
				}
				for _, tag := range tags {
					pushed, err := repo.put(img.Manifest, img.MediaType, tag, "", pushedAt)
					if err != nil {
						problems = append(problems, fmt.Errorf("%srepository %s: image %s: %w", at, r.Name, img.Digest(), err))
						continue
					}
					e.replicate(w, repo, pushed, tag)
				}
			}
		}
	}
	for _, fw := range worlds {
		at := ""
		if len(f.Worlds) > 0 {
			at = "world " + fw.Where() + ": "
		}
		problems = append(problems, e.loadECS(e.worldAt(fw.Account, fw.Region), fw, at)...)
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("load fleet: %w", err)
	}
	return nil
}

// loadECS creates a world's clusters, task definitions and services. Call with e.mu held.
func (e *Emulator) loadECS(w *world, f fleet.World, at string) []error {
	var problems []error
	for _, c := range f.Clusters {
		cl := e.createCluster(w, c.Name, nil)
		cl.pullBehavior = c.ImagePullBehavior
		for image, digest := range c.NodeCache {
			cl.nodeCache[image] = digest
		}
	}
	for _, td := range f.TaskDefinitions {
		if _, err := e.registerTaskDefinition(w, td.JSON); err != nil {
			problems = append(problems, fmt.Errorf("%stask definition %s: %w", at, td.Ref(), err))
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
		in.DeploymentConfiguration = &deploymentConfiguration{}
		if cb := s.CircuitBreaker; cb != nil {
			in.DeploymentConfiguration.CircuitBreaker = &circuitBreaker{Enable: cb.Enable, Rollback: cb.Rollback}
		}
		if c := s.DeploymentConfiguration; c != nil {
			d := in.DeploymentConfiguration
			d.Strategy, d.BakeTimeInMinutes = c.Strategy, c.BakeTimeInMinutes
			if l := c.LinearConfiguration; l != nil {
				d.LinearConfiguration = &linearConfiguration{StepPercent: l.StepPercent, StepBakeTimeInMinutes: l.StepBakeTimeInMinutes}
			}
			if k := c.CanaryConfiguration; k != nil {
				d.CanaryConfiguration = &canaryConfiguration{CanaryPercent: k.CanaryPercent, CanaryBakeTimeInMinutes: k.CanaryBakeTimeInMinutes}
			}
		}
		if _, err := e.createService(w, in); err != nil {
			problems = append(problems, fmt.Errorf("%sservice %s/%s: %w", at, s.Cluster, s.Name, err))
		}
	}
	return problems
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
