package emulator

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
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
func checkTags(tags []tag) error {
	if err := checkTagCount(tags); err != nil {
		return err
	}
	for _, t := range tags {
		if t.Key == "" || utf8.RuneCountInString(t.Key) > 128 || utf8.RuneCountInString(t.Value) > 256 {
			return invalidParameter("Tag key %q: keys are 1 to 128 characters and values at most 256", t.Key)
		}
		if reservedTagKey(t.Key) {
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
	name, arn    string
	createdAt    time.Time
	tags         []tag
	pullBehavior string
	nodeCache    map[string]string // image reference → the digest the nodes pulled first
	services     map[string]*service
	serviceOrder []string // creation order of the services in services
	tasks        []*task  // creation order
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
		arn:       e.arn(w.region, "cluster/"+name),
		createdAt: e.now(),
		tags:      tags,
		nodeCache: map[string]string{},
		services:  map[string]*service{},
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
		if !strings.HasPrefix(ref, e.arn(w.region, "cluster/")) {
			return nil, clientError("ClusterNotFoundException", "Cluster not found: %s is not a cluster of account %s in %s.", ref, e.account, w.region)
		}
	}
	c, ok := w.clusters[name]
	if !ok {
		return nil, clientError("ClusterNotFoundException", "Cluster not found.")
	}
	return c, nil
}

type clusterOut struct {
	ClusterArn                        string `json:"clusterArn"`
	ClusterName                       string `json:"clusterName"`
	Status                            string `json:"status"`
	RegisteredContainerInstancesCount int    `json:"registeredContainerInstancesCount"`
	RunningTasksCount                 int    `json:"runningTasksCount"`
	PendingTasksCount                 int    `json:"pendingTasksCount"`
	ActiveServicesCount               int    `json:"activeServicesCount"`
	Statistics                        []any  `json:"statistics"`
	Tags                              []tag  `json:"tags,omitempty"`
	CapacityProviders                 []any  `json:"capacityProviders"`
	DefaultCapacityProviderStrategy   []any  `json:"defaultCapacityProviderStrategy"`
}

func (c *cluster) out(withTags bool) clusterOut {
	o := clusterOut{
		ClusterArn: c.arn, ClusterName: c.name, Status: "ACTIVE",
		Statistics: []any{}, CapacityProviders: []any{}, DefaultCapacityProviderStrategy: []any{},
	}
	for _, t := range c.tasks {
		if t.lastStatus == "RUNNING" {
			o.RunningTasksCount++
		}
	}
	for _, s := range c.services {
		if s.status == "ACTIVE" {
			o.ActiveServicesCount++
		}
	}
	if withTags {
		o.Tags = slices.Clone(c.tags)
	}
	return o
}

func (e *Emulator) opCreateCluster(rc *request) (any, error) {
	var in struct {
		ClusterName string `json:"clusterName"`
		Tags        []tag  `json:"tags"`
	}
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
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.createCluster(e.world(rc.region), in.ClusterName, in.Tags)
	return map[string]any{"cluster": c.out(true)}, nil
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
	w := e.world(rc.region)
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
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc.region)
	clusters := []clusterOut{}
	failures := []failure{}
	for _, ref := range in.Clusters {
		c, err := e.lookupCluster(w, ref)
		if err != nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = e.arn(w.region, "cluster/"+ref)
			}
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		clusters = append(clusters, c.out(includesTags(in.Include)))
	}
	return map[string]any{"clusters": clusters, "failures": failures}, nil
}

// Tags on any ECS resource.

// taggable finds the tags of the resource an ARN names. Call with e.mu held.
func (e *Emulator) taggable(w *world, arn string) (*[]tag, error) {
	prefix := e.arn(w.region, "")
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
	tags, err := e.taggable(e.world(rc.region), in.ResourceArn)
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
	e.mu.Lock()
	defer e.mu.Unlock()
	tags, err := e.taggable(e.world(rc.region), in.ResourceArn)
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
	tags, err := e.taggable(e.world(rc.region), in.ResourceArn)
	if err != nil {
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
