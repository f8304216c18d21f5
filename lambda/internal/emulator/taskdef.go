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
	PidMode                 string          `json:"pidMode"`
	IpcMode                 string          `json:"ipcMode"`
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
	DependsOn    []json.RawMessage `json:"dependsOn"`
	Essential    *bool             `json:"essential"`
	PortMappings []struct {
		ContainerPort *int32 `json:"containerPort"`
		HostPort      *int32 `json:"hostPort"`
	} `json:"portMappings"`
}

// registerTaskDefinition validates a RegisterTaskDefinition request body and stores it as the
// family's next revision. Call with e.mu held.
func (e *Emulator) registerTaskDefinition(w *world, body []byte) (*taskDefinition, error) {
	var input map[string]json.RawMessage
	if err := json.Unmarshal(body, &input); err != nil || input == nil {
		return nil, clientError("SerializationException", "cannot read task definition: %v", err)
	}
	if len(body) > maxTaskDefinitionBytes {
		return nil, clientError("ClientException", "Actual length: '%d'. Max allowed length is '%d' bytes.", len(body), maxTaskDefinitionBytes)
	}
	var spec taskSpec
	if err := json.Unmarshal(body, &spec); err != nil {
		return nil, clientError("ClientException", "Invalid task definition: %v", err)
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := e.checkTags(spec.Tags); err != nil {
		return nil, err
	}
	delete(input, "tags")
	if err := fillTaskDefinitionDefaults(input); err != nil {
		return nil, err
	}
	spec.Cpu, spec.Memory = normalizeUnits(spec.Cpu, 1024, "vcpu"), normalizeUnits(spec.Memory, 1024, "gb")
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

// RegisterTaskDefinition's documented limits.
const (
	maxTaskDefinitionBytes = 65536 // the whole task definition, as sent
	maxContainersPerTask   = 10
	minContainerMemoryMiB  = 6
)

// fargateMemory lists, for each Fargate task cpu value, the memory values (MiB) it accepts:
// from, to, step.
var fargateMemory = map[int][3]int{
	256:   {512, 2048, 0}, // 512, 1024, 2048
	512:   {1024, 4096, 1024},
	1024:  {2048, 8192, 1024},
	2048:  {4096, 16384, 1024},
	4096:  {8192, 30720, 1024},
	8192:  {16384, 61440, 4096},
	16384: {32768, 122880, 8192},
}

func fargateAccepts(cpu, memory int) bool {
	r, ok := fargateMemory[cpu]
	if !ok {
		return false
	}
	if r[2] == 0 {
		return memory == 512 || memory == 1024 || memory == 2048
	}
	return memory >= r[0] && memory <= r[1] && (memory-r[0])%r[2] == 0
}

// normalizeUnits turns ECS's accepted unit forms ("1 vCPU", "2 GB") into the number it stores
// ("1024", "2048"), as RegisterTaskDefinition does; other values are returned as they are.
func normalizeUnits(v string, factor int, unit string) string {
	num, u, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(strings.TrimSpace(u), unit) {
		return v
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return v
	}
	return strconv.Itoa(int(f * float64(factor)))
}

// validate applies the checks RegisterTaskDefinition answers ClientException for.
func (s *taskSpec) validate() error {
	if !ecsNamePattern.MatchString(s.Family) {
		return clientError("ClientException", "Family contains invalid characters or is empty: %q (up to 255 letters, numbers, hyphens and underscores).", s.Family)
	}
	if len(s.ContainerDefinitions) == 0 {
		return clientError("ClientException", "Container list cannot be empty.")
	}
	if len(s.ContainerDefinitions) > maxContainersPerTask {
		return clientError("ClientException", "Too many containers.")
	}
	switch s.NetworkMode {
	case "", "bridge", "host", "awsvpc", "none":
	default:
		return clientError("ClientException", "Invalid networkMode %q: valid values are bridge, host, awsvpc and none.", s.NetworkMode)
	}
	switch s.PidMode {
	case "", "host", "task":
	default:
		return clientError("ClientException", "Invalid pidMode %q: valid values are host and task.", s.PidMode)
	}
	switch s.IpcMode {
	case "", "host", "task", "none":
	default:
		return clientError("ClientException", "Invalid ipcMode %q: valid values are host, task and none.", s.IpcMode)
	}
	for _, c := range s.RequiresCompatibilities {
		switch c {
		case "EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES":
		default:
			return clientError("ClientException", "Invalid requiresCompatibilities value %q: valid values are EC2, FARGATE, EXTERNAL and MANAGED_INSTANCES.", c)
		}
	}
	taskMemory := normalizeUnits(s.Memory, 1024, "gb")
	taskCPU := normalizeUnits(s.Cpu, 1024, "vcpu")
	names := map[string]bool{}
	essential := false
	for _, c := range s.ContainerDefinitions {
		if c.Essential == nil || *c.Essential {
			essential = true
		}
		for _, p := range c.PortMappings {
			if (s.NetworkMode == "awsvpc" || s.NetworkMode == "host") && p.HostPort != nil && p.ContainerPort != nil && *p.HostPort != *p.ContainerPort {
				return clientError("ClientException", "When networkMode=%s, the host ports and container ports in port mappings must match.", s.NetworkMode)
			}
		}
		if c.Name == "" {
			return clientError("ClientException", "Container.name should not be null or empty.")
		}
		if !ecsNamePattern.MatchString(c.Name) {
			return clientError("ClientException", "Container.name contains invalid characters: %q (up to 255 letters, numbers, hyphens and underscores).", c.Name)
		}
		if c.Image == "" {
			return clientError("ClientException", "Container.image should not be null or empty (container %s).", c.Name)
		}
		if names[c.Name] {
			return clientError("ClientException", "Duplicate container name %q: container names must be unique within a task definition.", c.Name)
		}
		names[c.Name] = true
		if taskMemory == "" && c.Memory == nil && c.MemoryReservation == nil {
			return clientError("ClientException", "Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", c.Name)
		}
		for _, m := range []*int32{c.Memory, c.MemoryReservation} {
			if m != nil && *m < minContainerMemoryMiB {
				return clientError("ClientException", "Invalid setting for container '%s'. The memory limit must be at least %d MiB.", c.Name, minContainerMemoryMiB)
			}
		}
		if c.Memory != nil && c.MemoryReservation != nil && *c.MemoryReservation > *c.Memory {
			return clientError("ClientException", "Invalid setting for container '%s'. 'memoryReservation' must be less than or equal to 'memory'.", c.Name)
		}
	}
	if !essential {
		return clientError("ClientException", "Task definition must have at least one essential container.")
	}
	if slices.Contains(s.RequiresCompatibilities, "FARGATE") {
		if s.NetworkMode != "awsvpc" {
			return clientError("ClientException", "Fargate only supports network mode 'awsvpc'.")
		}
		if s.Cpu == "" || s.Memory == "" {
			return clientError("ClientException", "Fargate requires that 'cpu' and 'memory' be defined at the task level.")
		}
		cpu, cerr := strconv.Atoi(taskCPU)
		memory, merr := strconv.Atoi(taskMemory)
		if cerr != nil || merr != nil || !fargateAccepts(cpu, memory) {
			return clientError("ClientException", "No Fargate configuration exists for given values: %s CPU, %s memory. See the Amazon ECS documentation for the possible combinations.", taskCPU, taskMemory)
		}
		if s.PidMode == "host" {
			return clientError("ClientException", "Tasks using the Fargate launch type do not support pidMode 'host'.")
		}
	}
	return nil
}

// fillTaskDefinitionDefaults adds to a registered task definition what ECS fills in and returns
// from DescribeTaskDefinition: on each container cpu 0, essential true, empty portMappings,
// environment, mountPoints and volumesFrom, each port mapping's protocol "tcp" (and, in awsvpc
// and host network modes, hostPort = containerPort); task-level volumes and
// placementConstraints as empty lists, each EFS volume's rootDirectory "/", and cpu and memory
// in units ("1 vCPU", "2 GB") as numbers. Filling in is idempotent, so a described revision
// registered again is the same.
func fillTaskDefinitionDefaults(input map[string]json.RawMessage) error {
	var networkMode string
	if raw, ok := input["networkMode"]; ok {
		_ = json.Unmarshal(raw, &networkMode)
	}
	for _, k := range []string{"cpu", "memory"} {
		var v string
		if raw, ok := input[k]; ok && json.Unmarshal(raw, &v) == nil {
			unit := "vcpu"
			if k == "memory" {
				unit = "gb"
			}
			if n := normalizeUnits(v, 1024, unit); n != v {
				input[k] = mustJSON(n)
			}
		}
	}
	var containers []map[string]json.RawMessage
	if err := json.Unmarshal(input["containerDefinitions"], &containers); err != nil {
		return clientError("ClientException", "Invalid containerDefinitions: %v", err)
	}
	for _, c := range containers {
		setDefault(c, "cpu", "0")
		setDefault(c, "essential", "true")
		for _, k := range []string{"portMappings", "environment", "mountPoints", "volumesFrom"} {
			setDefault(c, k, "[]")
		}
		var ports []map[string]json.RawMessage
		if err := json.Unmarshal(c["portMappings"], &ports); err != nil {
			return clientError("ClientException", "Invalid portMappings: %v", err)
		}
		for _, p := range ports {
			if _, hasRange := p["containerPortRange"]; !hasRange {
				setDefault(p, "protocol", `"tcp"`)
			}
			if cp, ok := p["containerPort"]; ok && (networkMode == "awsvpc" || networkMode == "host") {
				setDefault(p, "hostPort", string(cp))
			}
		}
		c["portMappings"] = mustJSON(ports)
	}
	input["containerDefinitions"] = mustJSON(containers)
	setDefault(input, "volumes", "[]")
	setDefault(input, "placementConstraints", "[]")
	var volumes []map[string]json.RawMessage
	if err := json.Unmarshal(input["volumes"], &volumes); err != nil {
		return clientError("ClientException", "Invalid volumes: %v", err)
	}
	for _, v := range volumes {
		raw, ok := v["efsVolumeConfiguration"]
		if !ok || string(raw) == "null" {
			continue
		}
		var efs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &efs); err != nil {
			return clientError("ClientException", "Invalid efsVolumeConfiguration: %v", err)
		}
		setDefault(efs, "rootDirectory", `"/"`)
		v["efsVolumeConfiguration"] = mustJSON(efs)
	}
	input["volumes"] = mustJSON(volumes)
	return nil
}

// setDefault sets m[key] to the JSON value def when key is absent or null.
func setDefault(m map[string]json.RawMessage, key, def string) {
	if v, ok := m[key]; !ok || string(v) == "null" {
		m[key] = json.RawMessage(def)
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
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
		return nil, clientError("ClientException", "Unable to describe task definition.")
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
		// ECS reads the last ':'-separated part as the revision number.
		return nil, clientError("ClientException", "Invalid revision number. Number: %s", in.TaskDefinition)
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
