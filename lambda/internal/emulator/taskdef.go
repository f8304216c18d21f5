package emulator

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// taskDefinition is one registered revision. input is the RegisterTaskDefinition request as sent
// (minus tags), field for field, so every field — including ones this emulator knows nothing
// about — comes back from DescribeTaskDefinition exactly as registered.
type taskDefinition struct {
	family         string
	revision       int
	arn            string
	input          map[string]json.RawMessage
	spec           taskSpec
	status         string // ACTIVE | INACTIVE
	registeredAt   time.Time
	deregisteredAt time.Time
	tags           []tag
}

// taskSpec is what the emulator itself reads from a task definition.
type taskSpec struct {
	Family                  string          `json:"family"`
	Cpu                     string          `json:"cpu"`
	Memory                  string          `json:"memory"`
	NetworkMode             string          `json:"networkMode"`
	RequiresCompatibilities []string        `json:"requiresCompatibilities"`
	TaskRoleArn             string          `json:"taskRoleArn"`
	ExecutionRoleArn        string          `json:"executionRoleArn"`
	ContainerDefinitions    []containerSpec `json:"containerDefinitions"`
	Tags                    []tag           `json:"tags"`
}

type containerSpec struct {
	Name              string `json:"name"`
	Image             string `json:"image"`
	Cpu               int32  `json:"cpu"`
	Memory            *int32 `json:"memory"`
	MemoryReservation *int32 `json:"memoryReservation"`
	LogConfiguration  *struct {
		LogDriver string `json:"logDriver"`
	} `json:"logConfiguration"`
	FirelensConfiguration *struct {
		Type string `json:"type"`
	} `json:"firelensConfiguration"`
	DependsOn []json.RawMessage `json:"dependsOn"`
}

// registerTaskDefinition validates a RegisterTaskDefinition request body and stores it as the
// family's next revision. Call with e.mu held.
func (e *Emulator) registerTaskDefinition(w *world, body []byte) (*taskDefinition, error) {
	var input map[string]json.RawMessage
	if err := json.Unmarshal(body, &input); err != nil || input == nil {
		return nil, clientError("SerializationException", "cannot read task definition: %v", err)
	}
	var spec taskSpec
	if err := json.Unmarshal(body, &spec); err != nil {
		return nil, clientError("ClientException", "Invalid task definition: %v", err)
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := checkTags(spec.Tags); err != nil {
		return nil, err
	}
	delete(input, "tags")
	revisions := w.families[spec.Family]
	td := &taskDefinition{
		family:       spec.Family,
		revision:     len(revisions) + 1,
		input:        input,
		spec:         spec,
		status:       "ACTIVE",
		registeredAt: e.now(),
		tags:         spec.Tags,
	}
	td.arn = w.arn("task-definition/" + td.ref())
	w.families[spec.Family] = append(revisions, td)
	return td, nil
}

func (td *taskDefinition) ref() string { return td.family + ":" + strconv.Itoa(td.revision) }

// validate applies the checks RegisterTaskDefinition answers ClientException for.
func (s *taskSpec) validate() error {
	if !ecsNamePattern.MatchString(s.Family) {
		return clientError("ClientException", "Family contains invalid characters or is empty: %q (up to 255 letters, numbers, hyphens and underscores).", s.Family)
	}
	if len(s.ContainerDefinitions) == 0 {
		return clientError("ClientException", "Container list cannot be empty.")
	}
	names := map[string]bool{}
	for _, c := range s.ContainerDefinitions {
		if c.Name == "" {
			return clientError("ClientException", "Container.name should not be null or empty.")
		}
		if c.Image == "" {
			return clientError("ClientException", "Container.image should not be null or empty (container %s).", c.Name)
		}
		if names[c.Name] {
			return clientError("ClientException", "Duplicate container name %q: container names must be unique within a task definition.", c.Name)
		}
		names[c.Name] = true
	}
	if slices.Contains(s.RequiresCompatibilities, "FARGATE") {
		if s.NetworkMode != "awsvpc" {
			return clientError("ClientException", "Fargate only supports network mode 'awsvpc'.")
		}
		if s.Cpu == "" || s.Memory == "" {
			return clientError("ClientException", "Fargate requires that 'cpu' and 'memory' be defined at the task level.")
		}
	}
	return nil
}

// compatibilities are the launch types the task definition can run on.
func (s *taskSpec) compatibilities() []string {
	c := []string{"EC2"}
	if s.NetworkMode == "awsvpc" && s.Cpu != "" && s.Memory != "" {
		c = append(c, "FARGATE")
	}
	return c
}

// requiresAttributes derives the container-instance attributes ECS would require.
func (s *taskSpec) requiresAttributes() []map[string]string {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, c := range s.ContainerDefinitions {
		if strings.Contains(c.Image, ".dkr.ecr.") {
			add("com.amazonaws.ecs.capability.ecr-auth")
			if s.ExecutionRoleArn != "" {
				add("ecs.capability.execution-role-ecr-pull")
			}
		}
		if c.LogConfiguration != nil && c.LogConfiguration.LogDriver == "awslogs" {
			add("com.amazonaws.ecs.capability.logging-driver.awslogs")
			if s.ExecutionRoleArn != "" {
				add("ecs.capability.execution-role-awslogs")
			}
			add("com.amazonaws.ecs.capability.docker-remote-api.1.19")
		}
		if c.FirelensConfiguration != nil {
			add("ecs.capability.firelens." + c.FirelensConfiguration.Type)
		}
		if len(c.DependsOn) > 0 {
			add("ecs.capability.container-ordering")
		}
	}
	if s.TaskRoleArn != "" {
		add("com.amazonaws.ecs.capability.task-iam-role")
	}
	if s.NetworkMode == "awsvpc" {
		add("ecs.capability.task-eni")
	}
	out := make([]map[string]string, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]string{"name": n})
	}
	return out
}

// out is the TaskDefinition shape: the stored input plus what ECS adds.
func (e *Emulator) taskDefinitionOut(td *taskDefinition) map[string]any {
	out := make(map[string]any, len(td.input)+8)
	for k, v := range td.input {
		out[k] = v
	}
	out["taskDefinitionArn"] = td.arn
	out["family"] = td.family
	out["revision"] = td.revision
	out["status"] = td.status
	out["registeredAt"] = epoch(td.registeredAt)
	out["registeredBy"] = "arn:aws:iam::" + arnAccount(td.arn) + ":root"
	out["compatibilities"] = td.spec.compatibilities()
	out["requiresAttributes"] = td.spec.requiresAttributes()
	if td.status == "INACTIVE" {
		out["deregisteredAt"] = epoch(td.deregisteredAt)
	}
	return out
}

// findTaskDefinition resolves "family" (latest ACTIVE revision), "family:revision" or a task
// definition ARN; nil when there is no such revision. Call with e.mu held.
func (e *Emulator) findTaskDefinition(w *world, ref string) *taskDefinition {
	if strings.HasPrefix(ref, "arn:") {
		prefix := w.arn("task-definition/")
		if !strings.HasPrefix(ref, prefix) {
			return nil
		}
		ref = strings.TrimPrefix(ref, prefix)
	}
	family, rev, hasRev := strings.Cut(ref, ":")
	revisions := w.families[family]
	if !hasRev {
		for i := len(revisions) - 1; i >= 0; i-- {
			if revisions[i].status == "ACTIVE" {
				return revisions[i]
			}
		}
		return nil
	}
	n, err := strconv.Atoi(rev)
	if err != nil || n < 1 || n > len(revisions) {
		return nil
	}
	return revisions[n-1]
}

func (e *Emulator) opRegisterTaskDefinition(rc *request) (any, error) {
	if !json.Valid(bytes.TrimSpace(rc.body)) {
		return nil, clientError("SerializationException", "request body is not JSON")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	td, err := e.registerTaskDefinition(e.world(rc), rc.body)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"taskDefinition": e.taskDefinitionOut(td)}
	if len(td.tags) > 0 {
		out["tags"] = td.tags
	}
	return out, nil
}

func (e *Emulator) opDescribeTaskDefinition(rc *request) (any, error) {
	var in struct {
		TaskDefinition string   `json:"taskDefinition"`
		Include        []string `json:"include"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	td := e.findTaskDefinition(e.world(rc), in.TaskDefinition)
	if td == nil {
		return nil, clientError("ClientException", "Unable to describe task definition %q.", in.TaskDefinition)
	}
	out := map[string]any{"taskDefinition": e.taskDefinitionOut(td)}
	if includesTags(in.Include) {
		tags := slices.Clone(td.tags)
		if tags == nil {
			tags = []tag{}
		}
		out["tags"] = tags
	}
	return out, nil
}

func (e *Emulator) opDeregisterTaskDefinition(rc *request) (any, error) {
	var in struct {
		TaskDefinition string `json:"taskDefinition"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(in.TaskDefinition, "arn:") && !strings.Contains(in.TaskDefinition, ":") {
		return nil, clientError("ClientException", "A revision is required: give family:revision or the full ARN, not %q.", in.TaskDefinition)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	td := e.findTaskDefinition(e.world(rc), in.TaskDefinition)
	if td == nil {
		return nil, clientError("ClientException", "The specified task definition does not exist: %q.", in.TaskDefinition)
	}
	if td.status == "ACTIVE" {
		td.status = "INACTIVE"
		td.deregisteredAt = e.now()
	}
	return map[string]any{"taskDefinition": e.taskDefinitionOut(td)}, nil
}

func (e *Emulator) opListTaskDefinitions(rc *request) (any, error) {
	var in struct {
		listInput
		FamilyPrefix string `json:"familyPrefix"`
		Status       string `json:"status"`
		Sort         string `json:"sort"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size, err := ecsPageSize(in.MaxResults, defaultTaskDefsPage)
	if err != nil {
		return nil, err
	}
	switch in.Status {
	case "":
		in.Status = "ACTIVE"
	case "ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS":
	default:
		return nil, invalidParameter("status %q: want ACTIVE, INACTIVE or DELETE_IN_PROGRESS.", in.Status)
	}
	switch in.Sort {
	case "", "ASC", "DESC":
	default:
		return nil, invalidParameter("sort %q: want ASC or DESC.", in.Sort)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	families := make([]string, 0, len(w.families))
	for f := range w.families {
		if in.FamilyPrefix == "" || f == in.FamilyPrefix {
			families = append(families, f)
		}
	}
	sort.Strings(families)
	var arns []string
	for _, f := range families {
		for _, td := range w.families[f] {
			if td.status == in.Status {
				arns = append(arns, td.arn)
			}
		}
	}
	if in.Sort == "DESC" {
		slices.Reverse(arns)
	}
	page, next, err := paginate(arns, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	return pageOut("taskDefinitionArns", page, next), nil
}

func (e *Emulator) opListTaskDefinitionFamilies(rc *request) (any, error) {
	var in struct {
		listInput
		FamilyPrefix string `json:"familyPrefix"`
		Status       string `json:"status"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size, err := ecsPageSize(in.MaxResults, defaultTaskDefsPage)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	var families []string
	for f, revisions := range w.families {
		if !strings.HasPrefix(f, in.FamilyPrefix) {
			continue
		}
		active := slices.ContainsFunc(revisions, func(td *taskDefinition) bool { return td.status == "ACTIVE" })
		if in.Status == "ALL" || (in.Status == "INACTIVE") == !active {
			families = append(families, f)
		}
	}
	sort.Strings(families)
	page, next, err := paginate(families, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	return pageOut("families", page, next), nil
}
