package emulator

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

type task struct {
	id, arn       string
	cluster       *cluster
	service       *service
	deploymentID  string
	taskDef       *taskDefinition
	containers    []taskContainer
	lastStatus    string // RUNNING | STOPPED
	desiredStatus string
	createdAt     time.Time
	startedAt     time.Time
	stoppedAt     time.Time
	stoppedReason string
	stopCode      string
	launchType    string
	tags          []tag
	version       int64
}

type taskContainer struct {
	arn, name, image, imageDigest string
	lastStatus, reason            string
	runtimeID                     string
	cpu                           int32
	memory, memoryReservation     *int32
}

func (c *cluster) task(id string) *task {
	for _, t := range c.tasks {
		if t.id == id {
			return t
		}
	}
	return nil
}

// addTask keeps the cluster's task list bounded: the oldest STOPPED tasks are forgotten first,
// as ECS forgets stopped tasks after a while.
func (c *cluster) addTask(t *task) {
	c.tasks = append(c.tasks, t)
	stopped := 0
	for _, x := range c.tasks {
		if x.lastStatus == "STOPPED" {
			stopped++
		}
	}
	if stopped <= maxStoppedTasksKept {
		return
	}
	c.tasks = slices.DeleteFunc(c.tasks, func(x *task) bool {
		if stopped > maxStoppedTasksKept && x.lastStatus == "STOPPED" {
			stopped--
			return true
		}
		return false
	})
}

type containerOut struct {
	ContainerArn      string `json:"containerArn"`
	TaskArn           string `json:"taskArn"`
	Name              string `json:"name"`
	Image             string `json:"image"`
	ImageDigest       string `json:"imageDigest,omitempty"`
	RuntimeID         string `json:"runtimeId,omitempty"`
	LastStatus        string `json:"lastStatus"`
	Reason            string `json:"reason,omitempty"`
	NetworkBindings   []any  `json:"networkBindings"`
	NetworkInterfaces []any  `json:"networkInterfaces"`
	HealthStatus      string `json:"healthStatus"`
	Cpu               string `json:"cpu"`
	Memory            string `json:"memory,omitempty"`
	MemoryReservation string `json:"memoryReservation,omitempty"`
}

type taskOut struct {
	TaskArn              string         `json:"taskArn"`
	ClusterArn           string         `json:"clusterArn"`
	TaskDefinitionArn    string         `json:"taskDefinitionArn"`
	Containers           []containerOut `json:"containers"`
	Cpu                  string         `json:"cpu,omitempty"`
	Memory               string         `json:"memory,omitempty"`
	LastStatus           string         `json:"lastStatus"`
	DesiredStatus        string         `json:"desiredStatus"`
	CreatedAt            epoch          `json:"createdAt"`
	PullStartedAt        *epoch         `json:"pullStartedAt,omitempty"`
	PullStoppedAt        *epoch         `json:"pullStoppedAt,omitempty"`
	StartedAt            *epoch         `json:"startedAt,omitempty"`
	StoppingAt           *epoch         `json:"stoppingAt,omitempty"`
	StoppedAt            *epoch         `json:"stoppedAt,omitempty"`
	StoppedReason        string         `json:"stoppedReason,omitempty"`
	StopCode             string         `json:"stopCode,omitempty"`
	Group                string         `json:"group,omitempty"`
	StartedBy            string         `json:"startedBy,omitempty"`
	LaunchType           string         `json:"launchType,omitempty"`
	PlatformVersion      string         `json:"platformVersion,omitempty"`
	AvailabilityZone     string         `json:"availabilityZone"`
	Connectivity         string         `json:"connectivity,omitempty"`
	HealthStatus         string         `json:"healthStatus"`
	Version              int64          `json:"version"`
	EnableExecuteCommand bool           `json:"enableExecuteCommand"`
	Attachments          []any          `json:"attachments"`
	Tags                 []tag          `json:"tags,omitempty"`
}

func int32String(p *int32) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(int(*p))
}

func (t *task) out(region string, withTags bool) taskOut {
	o := taskOut{
		TaskArn: t.arn, ClusterArn: t.cluster.arn, TaskDefinitionArn: t.taskDef.arn,
		Containers: []containerOut{}, Cpu: t.taskDef.spec.Cpu, Memory: t.taskDef.spec.Memory,
		LastStatus: t.lastStatus, DesiredStatus: t.desiredStatus, CreatedAt: epoch(t.createdAt),
		StartedAt: epochPtr(t.startedAt), StoppedAt: epochPtr(t.stoppedAt), StoppingAt: epochPtr(t.stoppedAt),
		StoppedReason: t.stoppedReason, StopCode: t.stopCode, StartedBy: t.deploymentID,
		LaunchType: t.launchType, AvailabilityZone: region + "a", HealthStatus: "UNKNOWN",
		Version: t.version, Attachments: []any{},
	}
	if t.service != nil {
		o.Group = "service:" + t.service.name
	}
	if t.launchType == "FARGATE" {
		o.PlatformVersion = "1.4.0"
	}
	if !t.startedAt.IsZero() || t.stopCode == "TaskFailedToStart" {
		o.PullStartedAt = epochPtr(t.createdAt)
		o.PullStoppedAt = epochPtr(t.createdAt)
		o.Connectivity = "CONNECTED"
	}
	for _, c := range t.containers {
		o.Containers = append(o.Containers, containerOut{
			ContainerArn: c.arn, TaskArn: t.arn, Name: c.name, Image: c.image, ImageDigest: c.imageDigest,
			RuntimeID: c.runtimeID, LastStatus: c.lastStatus, Reason: c.reason,
			NetworkBindings: []any{}, NetworkInterfaces: []any{}, HealthStatus: "UNKNOWN",
			Cpu: strconv.Itoa(int(c.cpu)), Memory: int32String(c.memory), MemoryReservation: int32String(c.memoryReservation),
		})
	}
	if withTags {
		o.Tags = slices.Clone(t.tags)
		if o.Tags == nil {
			o.Tags = []tag{}
		}
	}
	return o
}

func (e *Emulator) opListTasks(rc *request) (any, error) {
	var in struct {
		listInput
		Cluster       string `json:"cluster"`
		ServiceName   string `json:"serviceName"`
		Family        string `json:"family"`
		StartedBy     string `json:"startedBy"`
		DesiredStatus string `json:"desiredStatus"`
		LaunchType    string `json:"launchType"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size, err := ecsPageSize(in.MaxResults, defaultTasksPage)
	if err != nil {
		return nil, err
	}
	switch in.DesiredStatus {
	case "":
		in.DesiredStatus = "RUNNING"
	case "RUNNING", "PENDING", "STOPPED":
	default:
		return nil, invalidParameter("desiredStatus %q: want RUNNING, PENDING or STOPPED.", in.DesiredStatus)
	}
	if in.ServiceName != "" && in.Family != "" {
		return nil, invalidParameter("serviceName and family cannot both be given.")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookupCluster(e.world(rc), in.Cluster)
	if err != nil {
		return nil, err
	}
	var svc *service
	if in.ServiceName != "" {
		if svc = c.lookupService(in.ServiceName); svc == nil {
			return nil, serviceNotFound()
		}
	}
	var arns []string
	for _, t := range c.tasks {
		if t.desiredStatus != in.DesiredStatus ||
			(svc != nil && t.service != svc) ||
			(in.Family != "" && t.taskDef.family != in.Family) ||
			(in.StartedBy != "" && t.deploymentID != in.StartedBy) ||
			(in.LaunchType != "" && t.launchType != in.LaunchType) {
			continue
		}
		arns = append(arns, t.arn)
	}
	page, next, err := paginate(arns, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	return pageOut("taskArns", page, next), nil
}

func (e *Emulator) opDescribeTasks(rc *request) (any, error) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
		Include []string `json:"include"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Tasks) == 0 {
		return nil, invalidParameter("tasks must not be empty.")
	}
	if len(in.Tasks) > maxDescribeTasks {
		return nil, invalidParameter("tasks can have at most %d items, got %d.", maxDescribeTasks, len(in.Tasks))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	c, err := e.lookupCluster(w, in.Cluster)
	if err != nil {
		return nil, err
	}
	tasks := []taskOut{}
	failures := []failure{}
	for _, ref := range in.Tasks {
		id := ref[strings.LastIndex(ref, "/")+1:]
		t := c.task(id)
		if t == nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = w.arn("task/" + c.name + "/" + ref)
			}
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		tasks = append(tasks, t.out(w.region, includesTags(in.Include)))
	}
	return map[string]any{"tasks": tasks, "failures": failures}, nil
}
