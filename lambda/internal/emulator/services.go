package emulator

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

type service struct {
	name, arn  string
	cluster    *cluster
	status     string // ACTIVE | DRAINING | INACTIVE
	desired    int32
	taskDef    *taskDefinition // of the PRIMARY deployment
	controller string
	config     deploymentConfiguration
	createdAt  time.Time
	tags       []tag

	launchType           string
	platformVersion      string
	schedulingStrategy   string
	propagateTags        string
	enableECSManagedTags bool
	enableExecuteCommand bool
	healthCheckGrace     *int32
	networkConfiguration json.RawMessage
	loadBalancers        json.RawMessage
	serviceRegistries    json.RawMessage
	capacityProviders    json.RawMessage
	placementConstraints json.RawMessage
	placementStrategy    json.RawMessage
	roleArn              string

	deployments []*deployment        // PRIMARY first, like ECS
	history     []*serviceDeployment // newest first
	events      []serviceEvent
}

type deploymentController struct {
	Type string `json:"type"`
}

type circuitBreaker struct {
	Enable   bool `json:"enable"`
	Rollback bool `json:"rollback"`
}

type deploymentConfiguration struct {
	CircuitBreaker        *circuitBreaker      `json:"deploymentCircuitBreaker,omitempty"`
	MaximumPercent        *int32               `json:"maximumPercent,omitempty"`
	MinimumHealthyPercent *int32               `json:"minimumHealthyPercent,omitempty"`
	Alarms                json.RawMessage      `json:"alarms,omitempty"`
	Strategy              string               `json:"strategy,omitempty"`
	BakeTimeInMinutes     *int32               `json:"bakeTimeInMinutes,omitempty"`
	LinearConfiguration   *linearConfiguration `json:"linearConfiguration,omitempty"`
	CanaryConfiguration   *canaryConfiguration `json:"canaryConfiguration,omitempty"`
	LifecycleHooks        []lifecycleHook      `json:"lifecycleHooks,omitempty"`
}

// merge applies the fields an UpdateService request sets.
func (c *deploymentConfiguration) merge(u *deploymentConfiguration) {
	if u == nil {
		return
	}
	if u.CircuitBreaker != nil {
		c.CircuitBreaker = u.CircuitBreaker
	}
	if u.MaximumPercent != nil {
		c.MaximumPercent = u.MaximumPercent
	}
	if u.MinimumHealthyPercent != nil {
		c.MinimumHealthyPercent = u.MinimumHealthyPercent
	}
	if len(u.Alarms) > 0 {
		c.Alarms = u.Alarms
	}
	if u.Strategy != "" {
		c.Strategy = u.Strategy
	}
	if u.BakeTimeInMinutes != nil {
		c.BakeTimeInMinutes = u.BakeTimeInMinutes
	}
	if u.LinearConfiguration != nil {
		c.LinearConfiguration = u.LinearConfiguration
	}
	if u.CanaryConfiguration != nil {
		c.CanaryConfiguration = u.CanaryConfiguration
	}
	if u.LifecycleHooks != nil { // an empty list clears them
		c.LifecycleHooks = u.LifecycleHooks
	}
	// A strategy's own configuration goes when another strategy is chosen.
	if u.Strategy != "" && u.Strategy != strategyLinear && u.LinearConfiguration == nil {
		c.LinearConfiguration = nil
	}
	if u.Strategy != "" && u.Strategy != strategyCanary && u.CanaryConfiguration == nil {
		c.CanaryConfiguration = nil
	}
}

type serviceEvent struct {
	ID        string `json:"id"`
	CreatedAt epoch  `json:"createdAt"`
	Message   string `json:"message"`
}

const maxServiceEvents = 100

// event records a service event (newest first, as DescribeServices shows them).
func (e *Emulator) serviceEvent(s *service, format string, args ...any) {
	ev := serviceEvent{ID: newUUID(), CreatedAt: epoch(e.now()), Message: "(service " + s.name + ") " + fmt.Sprintf(format, args...)}
	s.events = append([]serviceEvent{ev}, s.events...)
	if len(s.events) > maxServiceEvents {
		s.events = s.events[:maxServiceEvents]
	}
}

func (s *service) primary() *deployment {
	for _, d := range s.deployments {
		if d.status == "PRIMARY" {
			return d
		}
	}
	return nil
}

func (s *service) circuitBreaker() circuitBreaker {
	if s.config.CircuitBreaker == nil {
		return circuitBreaker{}
	}
	return *s.config.CircuitBreaker
}

type createServiceInput struct {
	Cluster                       string                   `json:"cluster"`
	ServiceName                   string                   `json:"serviceName"`
	TaskDefinition                string                   `json:"taskDefinition"`
	DesiredCount                  *int32                   `json:"desiredCount"`
	LaunchType                    string                   `json:"launchType"`
	PlatformVersion               string                   `json:"platformVersion"`
	SchedulingStrategy            string                   `json:"schedulingStrategy"`
	PropagateTags                 string                   `json:"propagateTags"`
	EnableECSManagedTags          bool                     `json:"enableECSManagedTags"`
	EnableExecuteCommand          bool                     `json:"enableExecuteCommand"`
	HealthCheckGracePeriodSeconds *int32                   `json:"healthCheckGracePeriodSeconds"`
	DeploymentController          *deploymentController    `json:"deploymentController"`
	DeploymentConfiguration       *deploymentConfiguration `json:"deploymentConfiguration"`
	NetworkConfiguration          json.RawMessage          `json:"networkConfiguration"`
	LoadBalancers                 json.RawMessage          `json:"loadBalancers"`
	ServiceRegistries             json.RawMessage          `json:"serviceRegistries"`
	CapacityProviderStrategy      json.RawMessage          `json:"capacityProviderStrategy"`
	PlacementConstraints          json.RawMessage          `json:"placementConstraints"`
	PlacementStrategy             json.RawMessage          `json:"placementStrategy"`
	Role                          string                   `json:"role"`
	Tags                          []tag                    `json:"tags"`
}

// createService validates and creates a service and starts its first deployment. Call with e.mu
// held.
func (e *Emulator) createService(w *world, in createServiceInput) (*service, error) {
	if !ecsNamePattern.MatchString(in.ServiceName) {
		return nil, invalidParameter("serviceName %q: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.", in.ServiceName)
	}
	c, err := e.lookupCluster(w, in.Cluster)
	if err != nil {
		return nil, err
	}
	if old, ok := c.services[in.ServiceName]; ok && old.status != "INACTIVE" {
		return nil, invalidParameter("Creation of service was not idempotent.")
	}
	controller := "ECS"
	if in.DeploymentController != nil && in.DeploymentController.Type != "" {
		controller = in.DeploymentController.Type
	}
	switch controller {
	case "ECS", "CODE_DEPLOY", "EXTERNAL":
	default:
		return nil, invalidParameter("deploymentController.type %q: want ECS, CODE_DEPLOY or EXTERNAL.", controller)
	}
	var td *taskDefinition
	if in.TaskDefinition != "" {
		td = e.findTaskDefinition(w, in.TaskDefinition)
		if td == nil {
			return nil, clientError("ClientException", "TaskDefinition not found.")
		}
		if td.status != "ACTIVE" {
			return nil, clientError("ClientException", "TaskDefinition is inactive: %s.", td.arn)
		}
	} else if controller != "EXTERNAL" {
		return nil, invalidParameter("taskDefinition is required with the %s deployment controller.", controller)
	}
	desired := int32(0)
	if in.DesiredCount != nil {
		desired = *in.DesiredCount
	}
	if desired < 0 {
		return nil, invalidParameter("desiredCount must be 0 or more, got %d.", desired)
	}
	if err := e.checkTags(in.Tags); err != nil {
		return nil, err
	}
	switch in.LaunchType {
	case "", "EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES":
	default:
		return nil, invalidParameter("launchType %q: want EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES.", in.LaunchType)
	}
	if in.LaunchType != "" && hasItems(in.CapacityProviderStrategy) {
		return nil, invalidParameter("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
	}
	// Neither a launch type nor a strategy: the cluster's default strategy, else EC2.
	if in.LaunchType == "" && !hasItems(in.CapacityProviderStrategy) {
		if hasItems(c.defaultStrategy) {
			in.CapacityProviderStrategy = c.defaultStrategy
		} else {
			in.LaunchType = "EC2"
		}
	}
	if err := checkCapacityProviderStrategy(in.CapacityProviderStrategy); err != nil {
		return nil, err
	}
	if td != nil && in.LaunchType == "FARGATE" && !slices.Contains(td.spec.compatibilities(), "FARGATE") {
		return nil, invalidParameter("Task definition does not support launch_type FARGATE.")
	}
	if err := checkPlacement(in.LaunchType, in.PlacementConstraints, in.PlacementStrategy); err != nil {
		return nil, err
	}
	if in.HealthCheckGracePeriodSeconds != nil && !hasItems(in.LoadBalancers) {
		return nil, invalidParameter("Health check grace period is only valid for services configured to use load balancers")
	}
	if in.SchedulingStrategy != "" && in.SchedulingStrategy != "REPLICA" && in.SchedulingStrategy != "DAEMON" {
		return nil, invalidParameter("schedulingStrategy %q: want REPLICA or DAEMON.", in.SchedulingStrategy)
	}
	var config deploymentConfiguration
	config.merge(in.DeploymentConfiguration)
	if err := checkStrategy(config, controller, in.LoadBalancers); err != nil {
		return nil, err
	}
	s := &service{
		name: in.ServiceName, arn: w.arn("service/" + c.name + "/" + in.ServiceName),
		cluster: c, status: "ACTIVE", desired: desired, taskDef: td, controller: controller,
		createdAt: e.now(), tags: in.Tags,
		launchType: in.LaunchType, platformVersion: in.PlatformVersion,
		schedulingStrategy: in.SchedulingStrategy, propagateTags: in.PropagateTags,
		enableECSManagedTags: in.EnableECSManagedTags, enableExecuteCommand: in.EnableExecuteCommand,
		healthCheckGrace:     in.HealthCheckGracePeriodSeconds,
		networkConfiguration: in.NetworkConfiguration, loadBalancers: in.LoadBalancers,
		serviceRegistries: in.ServiceRegistries, capacityProviders: in.CapacityProviderStrategy,
		placementConstraints: in.PlacementConstraints, placementStrategy: in.PlacementStrategy,
		roleArn: e.roleArn(w.account, in.Role),
	}
	if s.schedulingStrategy == "" {
		s.schedulingStrategy = "REPLICA"
	}
	if s.propagateTags == "" {
		s.propagateTags = "NONE"
	}
	if s.launchType == "FARGATE" && s.platformVersion == "" {
		s.platformVersion = "LATEST"
	}
	s.config = config
	if s.config.MaximumPercent == nil {
		s.config.MaximumPercent = ptr(int32(defaultMaximumPercent))
	}
	if s.config.MinimumHealthyPercent == nil {
		s.config.MinimumHealthyPercent = ptr(int32(defaultMinHealthPercent))
	}
	if s.config.CircuitBreaker == nil {
		s.config.CircuitBreaker = &circuitBreaker{}
	}
	if !slices.Contains(c.serviceOrder, s.name) {
		c.serviceOrder = append(c.serviceOrder, s.name)
	}
	c.services[s.name] = s
	if td != nil {
		e.startDeployment(w, s, td)
	}
	return s, nil
}

func ptr[T any](v T) *T { return &v }

// roleArn is the ARN ECS reports for CreateService's role: a name (with its path, if any)
// becomes the account's role ARN.
func (e *Emulator) roleArn(account, role string) string {
	if role == "" || strings.HasPrefix(role, "arn:") {
		return role
	}
	return "arn:aws:iam::" + account + ":role/" + strings.TrimPrefix(role, "/")
}

// hasItems reports whether a raw JSON list has at least one item.
func hasItems(raw json.RawMessage) bool {
	var items []json.RawMessage
	return json.Unmarshal(raw, &items) == nil && len(items) > 0
}

type capacityProviderStrategyItem struct {
	CapacityProvider string `json:"capacityProvider"`
	Weight           *int   `json:"weight"`
	Base             *int   `json:"base"`
}

// checkCapacityProviderStrategy applies the documented ranges: weight 0–1000, base 0–100000,
// a base on at most one provider, at most 20 providers.
func checkCapacityProviderStrategy(raw json.RawMessage) error {
	if !hasItems(raw) {
		return nil
	}
	var items []capacityProviderStrategyItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return invalidParameter("capacityProviderStrategy: %v", err)
	}
	if len(items) > 20 {
		return invalidParameter("capacityProviderStrategy can have at most 20 items, got %d.", len(items))
	}
	bases := 0
	for _, it := range items {
		if it.CapacityProvider == "" {
			return invalidParameter("capacityProviderStrategy: capacityProvider is required.")
		}
		if it.Weight != nil && (*it.Weight < 0 || *it.Weight > 1000) {
			return invalidParameter("capacityProviderStrategy: weight must be between 0 and 1000, got %d.", *it.Weight)
		}
		if it.Base != nil {
			if *it.Base < 0 || *it.Base > 100000 {
				return invalidParameter("capacityProviderStrategy: base must be between 0 and 100000, got %d.", *it.Base)
			}
			if *it.Base > 0 {
				bases++
			}
		}
	}
	if bases > 1 {
		return invalidParameter("capacityProviderStrategy: only one capacity provider in a strategy can have a base defined.")
	}
	return nil
}

// checkPlacement applies the documented rules of placementConstraints (at most 10; distinctInstance
// or memberOf) and placementStrategy (at most 5; random, spread or binpack), which Fargate does
// not support.
func checkPlacement(launchType string, constraints, strategy json.RawMessage) error {
	var cs []struct {
		Type       string `json:"type"`
		Expression string `json:"expression"`
	}
	if hasItems(constraints) {
		if err := json.Unmarshal(constraints, &cs); err != nil {
			return invalidParameter("placementConstraints: %v", err)
		}
	}
	var ss []struct {
		Type  string `json:"type"`
		Field string `json:"field"`
	}
	if hasItems(strategy) {
		if err := json.Unmarshal(strategy, &ss); err != nil {
			return invalidParameter("placementStrategy: %v", err)
		}
	}
	if len(cs) > 10 {
		return invalidParameter("placementConstraints can have at most 10 items, got %d.", len(cs))
	}
	if len(ss) > 5 {
		return invalidParameter("placementStrategy can have at most 5 items, got %d.", len(ss))
	}
	for _, c := range cs {
		if c.Type != "distinctInstance" && c.Type != "memberOf" {
			return invalidParameter("placementConstraints type %q: want distinctInstance or memberOf.", c.Type)
		}
		if c.Type == "memberOf" && c.Expression == "" {
			return invalidParameter("placementConstraints: a memberOf constraint needs an expression.")
		}
	}
	for _, st := range ss {
		switch st.Type {
		case "random", "spread", "binpack":
		default:
			return invalidParameter("placementStrategy type %q: want random, spread or binpack.", st.Type)
		}
		if st.Type == "binpack" && st.Field != "cpu" && st.Field != "memory" {
			return invalidParameter("placementStrategy: binpack needs field cpu or memory, got %q.", st.Field)
		}
	}
	if launchType == "FARGATE" && (len(cs) > 0 || len(ss) > 0) {
		return invalidParameter("Placement constraints and strategies are not supported with the FARGATE launch type.")
	}
	return nil
}

// lookupService finds an ACTIVE or DRAINING service by name or ARN.
func (c *cluster) lookupService(ref string) *service {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		name = ref[strings.LastIndex(ref, "/")+1:]
	}
	s, ok := c.services[name]
	if !ok || s.status == "INACTIVE" {
		return nil
	}
	return s
}

func serviceNotFound() error {
	return clientError("ServiceNotFoundException", "Service not found.")
}

type deploymentOut struct {
	ID                   string          `json:"id"`
	Status               string          `json:"status"`
	TaskDefinition       string          `json:"taskDefinition"`
	DesiredCount         int32           `json:"desiredCount"`
	PendingCount         int32           `json:"pendingCount"`
	RunningCount         int32           `json:"runningCount"`
	FailedTasks          int32           `json:"failedTasks"`
	CreatedAt            epoch           `json:"createdAt"`
	UpdatedAt            epoch           `json:"updatedAt"`
	LaunchType           string          `json:"launchType,omitempty"`
	PlatformVersion      string          `json:"platformVersion,omitempty"`
	NetworkConfiguration json.RawMessage `json:"networkConfiguration,omitempty"`
	RolloutState         string          `json:"rolloutState,omitempty"`
	RolloutStateReason   string          `json:"rolloutStateReason,omitempty"`
}

type serviceOut struct {
	ServiceArn                    string                  `json:"serviceArn"`
	ServiceName                   string                  `json:"serviceName"`
	ClusterArn                    string                  `json:"clusterArn"`
	LoadBalancers                 json.RawMessage         `json:"loadBalancers"`
	ServiceRegistries             json.RawMessage         `json:"serviceRegistries"`
	Status                        string                  `json:"status"`
	DesiredCount                  int32                   `json:"desiredCount"`
	RunningCount                  int32                   `json:"runningCount"`
	PendingCount                  int32                   `json:"pendingCount"`
	LaunchType                    string                  `json:"launchType,omitempty"`
	CapacityProviderStrategy      json.RawMessage         `json:"capacityProviderStrategy,omitempty"`
	PlatformVersion               string                  `json:"platformVersion,omitempty"`
	TaskDefinition                string                  `json:"taskDefinition,omitempty"`
	DeploymentConfiguration       deploymentConfiguration `json:"deploymentConfiguration"`
	Deployments                   []deploymentOut         `json:"deployments"`
	Events                        []serviceEvent          `json:"events"`
	CreatedAt                     epoch                   `json:"createdAt"`
	PlacementConstraints          json.RawMessage         `json:"placementConstraints"`
	PlacementStrategy             json.RawMessage         `json:"placementStrategy"`
	NetworkConfiguration          json.RawMessage         `json:"networkConfiguration,omitempty"`
	HealthCheckGracePeriodSeconds *int32                  `json:"healthCheckGracePeriodSeconds,omitempty"`
	SchedulingStrategy            string                  `json:"schedulingStrategy"`
	DeploymentController          deploymentController    `json:"deploymentController"`
	Tags                          []tag                   `json:"tags,omitempty"`
	CreatedBy                     string                  `json:"createdBy"`
	EnableECSManagedTags          bool                    `json:"enableECSManagedTags"`
	PropagateTags                 string                  `json:"propagateTags"`
	EnableExecuteCommand          bool                    `json:"enableExecuteCommand"`
	RoleArn                       string                  `json:"roleArn,omitempty"`
	CurrentServiceDeployment      string                  `json:"currentServiceDeployment,omitempty"`
	CurrentServiceRevisions       []currentRevisionOut    `json:"currentServiceRevisions,omitempty"`
}

type currentRevisionOut struct {
	Arn                string `json:"arn"`
	RequestedTaskCount int32  `json:"requestedTaskCount"`
	RunningTaskCount   int32  `json:"runningTaskCount"`
	PendingTaskCount   int32  `json:"pendingTaskCount"`
}

func (e *Emulator) serviceOut(s *service, withTags bool) serviceOut {
	o := serviceOut{
		ServiceArn: s.arn, ServiceName: s.name, ClusterArn: s.cluster.arn,
		LoadBalancers: rawOr(s.loadBalancers, "[]"), ServiceRegistries: rawOr(s.serviceRegistries, "[]"),
		Status: s.status, DesiredCount: s.desired,
		LaunchType: s.launchType, CapacityProviderStrategy: s.capacityProviders, PlatformVersion: s.platformVersion,
		DeploymentConfiguration: s.config, Deployments: []deploymentOut{}, Events: slices.Clone(s.events),
		CreatedAt:            epoch(s.createdAt),
		PlacementConstraints: rawOr(s.placementConstraints, "[]"), PlacementStrategy: rawOr(s.placementStrategy, "[]"),
		NetworkConfiguration: s.networkConfiguration, HealthCheckGracePeriodSeconds: s.healthCheckGrace,
		SchedulingStrategy: s.schedulingStrategy, DeploymentController: deploymentController{Type: s.controller},
		CreatedBy:            "arn:aws:iam::" + arnAccount(s.arn) + ":root",
		EnableECSManagedTags: s.enableECSManagedTags, PropagateTags: s.propagateTags, EnableExecuteCommand: s.enableExecuteCommand,
		RoleArn: s.roleArn,
	}
	if o.Events == nil {
		o.Events = []serviceEvent{}
	}
	if s.taskDef != nil {
		o.TaskDefinition = s.taskDef.arn
	}
	for _, d := range s.deployments {
		o.Deployments = append(o.Deployments, d.out(s))
		o.RunningCount += d.running
		o.PendingCount += d.pending
		o.CurrentServiceRevisions = append(o.CurrentServiceRevisions, currentRevisionOut{
			Arn: d.revision, RequestedTaskCount: d.desired, RunningTaskCount: d.running, PendingTaskCount: d.pending,
		})
	}
	if len(s.history) > 0 {
		o.CurrentServiceDeployment = s.history[0].arn
	}
	if withTags {
		o.Tags = slices.Clone(s.tags)
		if o.Tags == nil {
			o.Tags = []tag{}
		}
	}
	return o
}

func (e *Emulator) opCreateService(rc *request) (any, error) {
	var in createServiceInput
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.createService(e.world(rc), in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"service": e.serviceOut(s, true)}, nil
}

func (e *Emulator) opListServices(rc *request) (any, error) {
	var in struct {
		listInput
		Cluster            string `json:"cluster"`
		LaunchType         string `json:"launchType"`
		SchedulingStrategy string `json:"schedulingStrategy"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size, err := ecsPageSize(in.MaxResults, defaultServicesPage)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookupCluster(e.world(rc), in.Cluster)
	if err != nil {
		return nil, err
	}
	var arns []string
	for _, name := range c.serviceOrder {
		s := c.services[name]
		if s.status == "INACTIVE" ||
			(in.LaunchType != "" && s.launchType != in.LaunchType) ||
			(in.SchedulingStrategy != "" && s.schedulingStrategy != in.SchedulingStrategy) {
			continue
		}
		arns = append(arns, s.arn)
	}
	page, next, err := paginate(arns, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	return pageOut("serviceArns", page, next), nil
}

func (e *Emulator) opDescribeServices(rc *request) (any, error) {
	var in struct {
		Cluster  string   `json:"cluster"`
		Services []string `json:"services"`
		Include  []string `json:"include"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Services) == 0 {
		return nil, invalidParameter("services must not be empty.")
	}
	if len(in.Services) > maxDescribeServices {
		return nil, invalidParameter("services can have at most %d items, got %d.", maxDescribeServices, len(in.Services))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	c, err := e.lookupCluster(w, in.Cluster)
	if err != nil {
		return nil, err
	}
	services := []serviceOut{}
	failures := []failure{}
	for _, ref := range in.Services {
		name := ref
		if strings.HasPrefix(ref, "arn:") {
			name = ref[strings.LastIndex(ref, "/")+1:]
		}
		s, ok := c.services[name]
		if !ok {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = w.arn("service/" + c.name + "/" + ref)
			}
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		services = append(services, e.serviceOut(s, includesTags(in.Include)))
	}
	return map[string]any{"services": services, "failures": failures}, nil
}

func (e *Emulator) opUpdateService(rc *request) (any, error) {
	var in struct {
		Cluster                 string                   `json:"cluster"`
		Service                 string                   `json:"service"`
		TaskDefinition          string                   `json:"taskDefinition"`
		DesiredCount            *int32                   `json:"desiredCount"`
		ForceNewDeployment      bool                     `json:"forceNewDeployment"`
		DeploymentConfiguration *deploymentConfiguration `json:"deploymentConfiguration"`
		NetworkConfiguration    json.RawMessage          `json:"networkConfiguration"`
		PlatformVersion         string                   `json:"platformVersion"`
		PropagateTags           string                   `json:"propagateTags"`
		EnableExecuteCommand    *bool                    `json:"enableExecuteCommand"`
		EnableECSManagedTags    *bool                    `json:"enableECSManagedTags"`
		LoadBalancers           json.RawMessage          `json:"loadBalancers"`
		ServiceRegistries       json.RawMessage          `json:"serviceRegistries"`
		CapacityProviders       json.RawMessage          `json:"capacityProviderStrategy"`
		PlacementConstraints    json.RawMessage          `json:"placementConstraints"`
		PlacementStrategy       json.RawMessage          `json:"placementStrategy"`
		HealthCheckGrace        *int32                   `json:"healthCheckGracePeriodSeconds"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	c, err := e.lookupCluster(w, in.Cluster)
	if err != nil {
		return nil, err
	}
	s := c.lookupService(in.Service)
	if s == nil {
		return nil, serviceNotFound()
	}
	if s.status != "ACTIVE" {
		return nil, clientError("ServiceNotActiveException", "Service was not ACTIVE.")
	}
	var td *taskDefinition
	if in.TaskDefinition != "" {
		if s.controller == "CODE_DEPLOY" {
			return nil, invalidParameter("Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.")
		}
		td = e.findTaskDefinition(w, in.TaskDefinition)
		if td == nil {
			return nil, clientError("ClientException", "TaskDefinition not found.")
		}
		if td.status != "ACTIVE" {
			return nil, clientError("ClientException", "TaskDefinition is inactive: %s.", td.arn)
		}
	}
	if in.DesiredCount != nil && *in.DesiredCount < 0 {
		return nil, invalidParameter("desiredCount must be 0 or more, got %d.", *in.DesiredCount)
	}
	// UpdateService replaces a list it is given (an empty list clears it) and keeps one it is not.
	set := func(raw json.RawMessage, keep json.RawMessage) json.RawMessage {
		if len(raw) == 0 || string(raw) == "null" {
			return keep
		}
		return raw
	}
	loadBalancers := set(in.LoadBalancers, s.loadBalancers)
	constraints, strategy := set(in.PlacementConstraints, s.placementConstraints), set(in.PlacementStrategy, s.placementStrategy)
	if err := checkPlacement(s.launchType, constraints, strategy); err != nil {
		return nil, err
	}
	if hasItems(in.CapacityProviders) {
		if s.launchType != "" && !in.ForceNewDeployment {
			return nil, invalidParameter("Moving a service from a launch type to a capacity provider strategy requires forceNewDeployment.")
		}
		if err := checkCapacityProviderStrategy(in.CapacityProviders); err != nil {
			return nil, err
		}
	}
	if in.HealthCheckGrace != nil && !hasItems(loadBalancers) {
		return nil, invalidParameter("Health check grace period is only valid for services configured to use load balancers")
	}
	config := s.config
	config.merge(in.DeploymentConfiguration)
	if err := checkStrategy(config, s.controller, loadBalancers); err != nil {
		return nil, err
	}
	// Every check has passed: nothing above changed the service.
	if hasItems(in.CapacityProviders) {
		s.launchType = ""
	}
	s.loadBalancers, s.placementConstraints, s.placementStrategy = loadBalancers, constraints, strategy
	s.serviceRegistries = set(in.ServiceRegistries, s.serviceRegistries)
	s.capacityProviders = set(in.CapacityProviders, s.capacityProviders)
	if in.HealthCheckGrace != nil {
		s.healthCheckGrace = in.HealthCheckGrace
	}
	s.config = config
	if len(in.NetworkConfiguration) > 0 {
		s.networkConfiguration = in.NetworkConfiguration
	}
	if in.PlatformVersion != "" {
		s.platformVersion = in.PlatformVersion
	}
	if in.PropagateTags != "" {
		s.propagateTags = in.PropagateTags
	}
	if in.EnableExecuteCommand != nil {
		s.enableExecuteCommand = *in.EnableExecuteCommand
	}
	if in.EnableECSManagedTags != nil {
		s.enableECSManagedTags = *in.EnableECSManagedTags
	}
	if in.DesiredCount != nil {
		s.desired = *in.DesiredCount
	}
	switch {
	case td != nil || in.ForceNewDeployment:
		if td == nil {
			td = s.taskDef
		}
		if td != nil {
			e.startDeployment(w, s, td)
		}
	case in.DesiredCount != nil:
		e.scale(w, s)
	}
	return map[string]any{"service": e.serviceOut(s, false)}, nil
}

func (e *Emulator) opDeleteService(rc *request) (any, error) {
	var in struct {
		Cluster string `json:"cluster"`
		Service string `json:"service"`
		Force   bool   `json:"force"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookupCluster(e.world(rc), in.Cluster)
	if err != nil {
		return nil, err
	}
	s := c.lookupService(in.Service)
	if s == nil {
		return nil, serviceNotFound()
	}
	if s.desired > 0 && !in.Force && s.schedulingStrategy != "DAEMON" {
		return nil, invalidParameter("The service cannot be stopped while it is scaled above 0.")
	}
	s.status = "DRAINING"
	out := e.serviceOut(s, false)
	for _, d := range s.deployments {
		d.stopTimer()
		e.stopTasks(s, d, "Service deleted")
	}
	s.deployments = nil
	s.desired = 0
	s.status = "INACTIVE"
	c.serviceOrder = slices.DeleteFunc(c.serviceOrder, func(n string) bool { return n == s.name })
	return map[string]any{"service": out}, nil
}
