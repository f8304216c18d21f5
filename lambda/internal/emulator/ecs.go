package emulator

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var ecsOperations = map[string]opFunc{
	"CreateCluster":              (*Emulator).opCreateCluster,
	"ListClusters":               (*Emulator).opListClusters,
	"DescribeClusters":           (*Emulator).opDescribeClusters,
	"RegisterTaskDefinition":     (*Emulator).opRegisterTaskDefinition,
	"DescribeTaskDefinition":     (*Emulator).opDescribeTaskDefinition,
	"ListTaskDefinitions":        (*Emulator).opListTaskDefinitions,
	"DeregisterTaskDefinition":   (*Emulator).opDeregisterTaskDefinition,
	"CreateService":              (*Emulator).opCreateService,
	"ListServices":               (*Emulator).opListServices,
	"DescribeServices":           (*Emulator).opDescribeServices,
	"UpdateService":              (*Emulator).opUpdateService,
	"DeleteService":              (*Emulator).opDeleteService,
	"ListTasks":                  (*Emulator).opListTasks,
	"DescribeTasks":              (*Emulator).opDescribeTasks,
	"TagResource":                (*Emulator).opTagResource,
	"UntagResource":              (*Emulator).opUntagResource,
	"ListTagsForResource":        (*Emulator).opListTagsForResource,
	"ListTaskDefinitionFamilies": (*Emulator).opListTaskDefinitionFamilies,
	"ListAccountSettings":        (*Emulator).opListAccountSettings,
	"ListServiceDeployments":     (*Emulator).opListServiceDeployments,
	"DescribeServiceDeployments": (*Emulator).opDescribeServiceDeployments,
	"StopServiceDeployment":      (*Emulator).opStopServiceDeployment,
}

// ECS limits, as documented per operation.
const (
	ecsMaxPage              = 100
	defaultClustersPage     = 100
	defaultServicesPage     = 10
	defaultTaskDefsPage     = 100
	defaultTasksPage        = 100
	maxDescribeServices     = 10
	maxDescribeTasks        = 100
	maxDescribeClusters     = 100
	maxTagsPerResource      = 50
	maxStoppedTasksKept     = 1000
	defaultClusterName      = "default"
	defaultMaximumPercent   = 200
	defaultMinHealthPercent = 100
)

var ecsNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func sortTags(tags []tag) {
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
}

// checkTags applies ECS's tag rules: at most 50 tags of the user's own (aws: keys do not count),
// keys of 1 to 128 and values of up to 256 Unicode characters, and no aws: keys from the user.
// A fleet being loaded may carry aws: tags (those AWS itself adds, e.g. CloudFormation's), so
// that a world can hold resources with them. Call with e.mu held.
func (e *Emulator) checkTags(tags []tag) error {
	if e.loading {
		return checkTagValues(tags, true)
	}
	return checkTags(tags)
}

func checkTags(tags []tag) error { return checkTagValues(tags, false) }

func checkTagValues(tags []tag, reservedAllowed bool) error {
	if err := checkTagCount(tags); err != nil {
		return err
	}
	for _, t := range tags {
		if t.Key == "" || utf8.RuneCountInString(t.Key) > 128 || utf8.RuneCountInString(t.Value) > 256 {
			return invalidParameter("Tag key %q: keys are 1 to 128 characters and values at most 256", t.Key)
		}
		if reservedTagKey(t.Key) && !reservedAllowed {
			return invalidParameter("Tag keys beginning with 'aws:' are reserved for AWS use: %q", t.Key)
		}
	}
	return nil
}

// checkTagCount applies the limit of 50 user tags per resource; keys with the reserved aws:
// prefix do not count toward it.
func checkTagCount(tags []tag) error {
	n := 0
	for _, t := range tags {
		if !reservedTagKey(t.Key) {
			n++
		}
	}
	if n > maxTagsPerResource {
		return invalidParameter("Tags: a resource can have at most %d tags (aws: tags excluded), this request would give it %d.", maxTagsPerResource, n)
	}
	return nil
}

func reservedTagKey(key string) bool { return strings.HasPrefix(strings.ToLower(key), "aws:") }

// mergeTags sets each tag of add on tags (replacing values of existing keys).
func mergeTags(tags, add []tag) []tag {
	for _, t := range add {
		i := slices.IndexFunc(tags, func(x tag) bool { return x.Key == t.Key })
		if i >= 0 {
			tags[i].Value = t.Value
		} else {
			tags = append(tags, t)
		}
	}
	return tags
}

// includesTags reports whether an include list asks for TAGS.
func includesTags(include []string) bool { return slices.Contains(include, "TAGS") }

// Clusters.

type cluster struct {
	name, arn       string
	createdAt       time.Time
	tags            []tag
	pullBehavior    string
	nodeCache       map[string]string // image reference → the digest the nodes pulled first
	settings        []clusterSetting
	capacityProv    []string
	defaultStrategy json.RawMessage
	configuration   json.RawMessage
	serviceConnect  json.RawMessage
	services        map[string]*service
	serviceOrder    []string // creation order of the services in services
	tasks           []*task  // creation order
}

func (c *cluster) cachesImages() bool {
	return c.pullBehavior == "once" || c.pullBehavior == "prefer-cached"
}

// createCluster returns the named cluster, creating it (CreateCluster is idempotent). Call with
// e.mu held.
func (e *Emulator) createCluster(w *world, name string, tags []tag) *cluster {
	if c, ok := w.clusters[name]; ok {
		return c
	}
	c := &cluster{
		name:      name,
		arn:       w.arn("cluster/" + name),
		createdAt: e.now(),
		tags:      tags,
		nodeCache: map[string]string{},
		services:  map[string]*service{},
		settings:  []clusterSetting{{Name: "containerInsights", Value: "disabled"}},
	}
	w.clusters[name] = c
	w.clusterOrder = append(w.clusterOrder, name)
	return c
}

// lookupCluster finds a cluster by name or ARN; "" is the default cluster.
func (e *Emulator) lookupCluster(w *world, ref string) (*cluster, error) {
	if ref == "" {
		ref = defaultClusterName
	}
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		name = ref[strings.LastIndex(ref, "/")+1:]
		if !strings.HasPrefix(ref, w.arn("cluster/")) {
			return nil, clientError("ClusterNotFoundException", "Cluster not found: %s is not a cluster of account %s in %s.", ref, w.account, w.region)
		}
	}
	c, ok := w.clusters[name]
	if !ok {
		return nil, clientError("ClusterNotFoundException", "Cluster not found.")
	}
	return c, nil
}

type clusterSetting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type keyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type clusterOut struct {
	ClusterArn                        string           `json:"clusterArn"`
	ClusterName                       string           `json:"clusterName"`
	Configuration                     json.RawMessage  `json:"configuration,omitempty"`
	Status                            string           `json:"status"`
	RegisteredContainerInstancesCount int              `json:"registeredContainerInstancesCount"`
	RunningTasksCount                 int              `json:"runningTasksCount"`
	PendingTasksCount                 int              `json:"pendingTasksCount"`
	ActiveServicesCount               int              `json:"activeServicesCount"`
	Statistics                        []keyValue       `json:"statistics"`
	Tags                              []tag            `json:"tags,omitempty"`
	Settings                          []clusterSetting `json:"settings,omitempty"`
	CapacityProviders                 []string         `json:"capacityProviders"`
	DefaultCapacityProviderStrategy   json.RawMessage  `json:"defaultCapacityProviderStrategy"`
	Attachments                       []any            `json:"attachments,omitempty"`
	ServiceConnectDefaults            json.RawMessage  `json:"serviceConnectDefaults,omitempty"`
}

// clusterFields are DescribeClusters' include values.
var clusterFields = []string{"ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS"}

// out is the Cluster shape; include names the optional parts (CreateCluster answers them all).
func (c *cluster) out(include []string) clusterOut {
	o := clusterOut{
		ClusterArn: c.arn, ClusterName: c.name, Status: "ACTIVE",
		Statistics: []keyValue{}, CapacityProviders: slices.Clone(c.capacityProv),
		DefaultCapacityProviderStrategy: rawOr(c.defaultStrategy, "[]"),
		ServiceConnectDefaults:          c.serviceConnect,
	}
	if o.CapacityProviders == nil {
		o.CapacityProviders = []string{}
	}
	runningEC2, runningFargate, pendingEC2, pendingFargate := 0, 0, 0, 0
	for _, t := range c.tasks {
		if t.lastStatus == "RUNNING" {
			o.RunningTasksCount++
			if t.launchType == "FARGATE" {
				runningFargate++
			} else {
				runningEC2++
			}
		}
	}
	for _, s := range c.services {
		if s.status == "ACTIVE" {
			o.ActiveServicesCount++
		}
		for _, d := range s.deployments {
			o.PendingTasksCount += int(d.pending)
			if s.launchType == "FARGATE" {
				pendingFargate += int(d.pending)
			} else {
				pendingEC2 += int(d.pending)
			}
		}
	}
	if slices.Contains(include, "TAGS") {
		o.Tags = slices.Clone(c.tags)
	}
	if slices.Contains(include, "SETTINGS") {
		o.Settings = slices.Clone(c.settings)
	}
	if slices.Contains(include, "CONFIGURATIONS") {
		o.Configuration = c.configuration
	}
	if slices.Contains(include, "ATTACHMENTS") {
		o.Attachments = []any{}
	}
	if slices.Contains(include, "STATISTICS") {
		activeEC2, activeFargate := 0, 0
		for _, s := range c.services {
			if s.status != "ACTIVE" {
				continue
			}
			if s.launchType == "FARGATE" {
				activeFargate++
			} else {
				activeEC2++
			}
		}
		for _, kv := range []struct {
			k string
			v int
		}{
			{"runningEC2TasksCount", runningEC2}, {"runningFargateTasksCount", runningFargate},
			{"pendingEC2TasksCount", pendingEC2}, {"pendingFargateTasksCount", pendingFargate},
			{"activeEC2ServiceCount", activeEC2}, {"activeFargateServiceCount", activeFargate},
			{"drainingEC2ServiceCount", 0}, {"drainingFargateServiceCount", 0},
		} {
			o.Statistics = append(o.Statistics, keyValue{Name: kv.k, Value: strconv.Itoa(kv.v)})
		}
	}
	return o
}

// createClusterInput is what CreateCluster keeps.
type createClusterInput struct {
	ClusterName                     string           `json:"clusterName"`
	Tags                            []tag            `json:"tags"`
	Settings                        []clusterSetting `json:"settings"`
	CapacityProviders               []string         `json:"capacityProviders"`
	DefaultCapacityProviderStrategy json.RawMessage  `json:"defaultCapacityProviderStrategy"`
	Configuration                   json.RawMessage  `json:"configuration"`
	ServiceConnectDefaults          json.RawMessage  `json:"serviceConnectDefaults"`
}

func (in *createClusterInput) validate() error {
	for _, st := range in.Settings {
		if st.Name != "containerInsights" {
			return invalidParameter("Cluster setting name %q: the only setting is containerInsights.", st.Name)
		}
		switch st.Value {
		case "enabled", "disabled", "enhanced":
		default:
			return invalidParameter("containerInsights value %q: want enabled, disabled or enhanced.", st.Value)
		}
	}
	if err := checkCapacityProviderStrategy(in.DefaultCapacityProviderStrategy); err != nil {
		return err
	}
	if hasItems(in.DefaultCapacityProviderStrategy) {
		var items []capacityProviderStrategyItem
		_ = json.Unmarshal(in.DefaultCapacityProviderStrategy, &items)
		for _, it := range items {
			if !slices.Contains(in.CapacityProviders, it.CapacityProvider) {
				return invalidParameter("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster (%s). Associate the capacity provider with the cluster or specify a valid capacity provider and try again.", it.CapacityProvider)
			}
		}
	}
	return nil
}

func (e *Emulator) opCreateCluster(rc *request) (any, error) {
	var in createClusterInput
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.ClusterName == "" {
		in.ClusterName = defaultClusterName
	}
	if !ecsNamePattern.MatchString(in.ClusterName) {
		return nil, invalidParameter("Cluster name %q: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.", in.ClusterName)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	_, existed := w.clusters[in.ClusterName]
	c := e.createCluster(w, in.ClusterName, in.Tags)
	if !existed {
		if in.Settings != nil {
			c.settings = in.Settings
		}
		c.capacityProv = in.CapacityProviders
		c.defaultStrategy = in.DefaultCapacityProviderStrategy
		c.configuration = in.Configuration
		c.serviceConnect = in.ServiceConnectDefaults
	}
	return map[string]any{"cluster": c.out(clusterFields)}, nil
}

// ecsPageSize checks maxResults against ECS's limit of 100.
func ecsPageSize(maxResults *int, def int) (int, error) {
	if maxResults == nil {
		return def, nil
	}
	if *maxResults < 1 || *maxResults > ecsMaxPage {
		return 0, invalidParameter("maxResults must be between 1 and %d, got %d.", ecsMaxPage, *maxResults)
	}
	return *maxResults, nil
}

type listInput struct {
	NextToken  string `json:"nextToken"`
	MaxResults *int   `json:"maxResults"`
}

func (e *Emulator) opListClusters(rc *request) (any, error) {
	var in listInput
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size, err := ecsPageSize(in.MaxResults, defaultClustersPage)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	arns := make([]string, 0, len(w.clusterOrder))
	for _, name := range w.clusterOrder {
		arns = append(arns, w.clusters[name].arn)
	}
	page, next, err := paginate(arns, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	return pageOut("clusterArns", page, next), nil
}

type failure struct {
	Arn    string `json:"arn"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

func (e *Emulator) opDescribeClusters(rc *request) (any, error) {
	var in struct {
		Clusters []string `json:"clusters"`
		Include  []string `json:"include"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Clusters) > maxDescribeClusters {
		return nil, invalidParameter("clusters can have at most %d items, got %d.", maxDescribeClusters, len(in.Clusters))
	}
	if len(in.Clusters) == 0 {
		in.Clusters = []string{defaultClusterName}
	}
	for _, f := range in.Include {
		if !slices.Contains(clusterFields, f) {
			return nil, invalidParameter("include value %q: want one of %s.", f, strings.Join(clusterFields, ", "))
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	clusters := []clusterOut{}
	failures := []failure{}
	for _, ref := range in.Clusters {
		c, err := e.lookupCluster(w, ref)
		if err != nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = w.arn("cluster/" + ref)
			}
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		clusters = append(clusters, c.out(in.Include))
	}
	return map[string]any{"clusters": clusters, "failures": failures}, nil
}

// Tags on any ECS resource.

// taggable finds the tags of the resource an ARN names. Call with e.mu held.
func (e *Emulator) taggable(w *world, arn string) (*[]tag, error) {
	prefix := w.arn("")
	notFound := clientError("ResourceNotFoundException", "The specified resource could not be found: %s", arn)
	if !strings.HasPrefix(arn, prefix) {
		if strings.HasPrefix(arn, "arn:aws:ecs:") {
			return nil, notFound
		}
		return nil, invalidParameter("resourceArn %q is not an ECS ARN", arn)
	}
	kind, path, _ := strings.Cut(strings.TrimPrefix(arn, prefix), "/")
	switch kind {
	case "cluster":
		if c, ok := w.clusters[path]; ok {
			return &c.tags, nil
		}
	case "service":
		clusterName, name, ok := strings.Cut(path, "/")
		if !ok {
			return nil, notFound
		}
		if c, ok := w.clusters[clusterName]; ok {
			if s, ok := c.services[name]; ok && s.status != "INACTIVE" {
				return &s.tags, nil
			}
		}
	case "task-definition":
		if td := e.findTaskDefinition(w, path); td != nil {
			return &td.tags, nil
		}
	case "task":
		clusterName, id, ok := strings.Cut(path, "/")
		if !ok {
			return nil, notFound
		}
		if c, ok := w.clusters[clusterName]; ok {
			if t := c.task(id); t != nil {
				return &t.tags, nil
			}
		}
	}
	return nil, notFound
}

// missingCluster reports whether a service or task ARN names a cluster that does not exist.
// Call with e.mu held.
func (e *Emulator) missingCluster(w *world, arn string) bool {
	kind, path, _ := strings.Cut(strings.TrimPrefix(arn, w.arn("")), "/")
	if kind != "service" && kind != "task" {
		return false
	}
	clusterName, _, ok := strings.Cut(path, "/")
	if !ok {
		return false
	}
	_, exists := w.clusters[clusterName]
	return !exists
}

func (e *Emulator) opTagResource(rc *request) (any, error) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
		Tags        []tag  `json:"tags"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, invalidParameter("tags must not be empty.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tags, err := e.taggable(e.world(rc), in.ResourceArn)
	if err != nil {
		return nil, err
	}
	merged := mergeTags(slices.Clone(*tags), in.Tags)
	if err := checkTagCount(merged); err != nil {
		return nil, err
	}
	*tags = merged
	return map[string]any{}, nil
}

func (e *Emulator) opUntagResource(rc *request) (any, error) {
	var in struct {
		ResourceArn string   `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		if reservedTagKey(k) {
			return nil, invalidParameter("Tag keys beginning with 'aws:' are reserved for AWS use and cannot be removed: %q", k)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tags, err := e.taggable(e.world(rc), in.ResourceArn)
	if err != nil {
		return nil, err
	}
	*tags = slices.DeleteFunc(*tags, func(t tag) bool { return slices.Contains(in.TagKeys, t.Key) })
	return map[string]any{}, nil
}

func (e *Emulator) opListTagsForResource(rc *request) (any, error) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	tags, err := e.taggable(w, in.ResourceArn)
	if err != nil {
		// ListTagsForResource documents ClientException, ClusterNotFoundException and
		// InvalidParameterException, not the ResourceNotFoundException of TagResource.
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "ResourceNotFoundException" {
			if e.missingCluster(w, in.ResourceArn) {
				return nil, clientError("ClusterNotFoundException", "Cluster not found.")
			}
			return nil, invalidParameter("The specified resource could not be found: %s", in.ResourceArn)
		}
		return nil, err
	}
	out := slices.Clone(*tags)
	if out == nil {
		out = []tag{}
	}
	return map[string]any{"tags": out}, nil
}

// rawOr returns raw, or def when raw is empty or null (so lists are [] rather than absent).
func rawOr(raw json.RawMessage, def string) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(def)
	}
	return raw
}
