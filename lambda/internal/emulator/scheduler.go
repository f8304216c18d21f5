package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// A deployment replaces a service's tasks with desiredCount tasks of one task definition revision.
// It completes when they all run, or fails when a task cannot start (its image cannot be pulled);
// with the circuit breaker's rollback, a failed deployment is followed by a new one on the
// revision that ran before. Under the BLUE_GREEN, LINEAR and CANARY strategies it goes on
// through traffic shifts and a bake time before it completes (strategies.go).
type deployment struct {
	id           string
	status       string // PRIMARY | ACTIVE
	taskDef      *taskDefinition
	desired      int32
	pending      int32
	running      int32
	failed       int32
	createdAt    time.Time
	updatedAt    time.Time
	rolloutState string // IN_PROGRESS | COMPLETED | FAILED
	rolloutWhy   string
	rollbackFrom string // id of the failed deployment this one rolls back, if any
	timer        *time.Timer
	next         func() // what happens when the timer fires (or Settle and Advance run it)

	strategy string             // the service's strategy when the deployment started
	stage    string             // lifecycle stage, under BLUE_GREEN, LINEAR and CANARY
	weight   int                // green's share of production traffic, in tenths of a percent
	revision string             // the service revision ARN the deployment rolls out
	record   *serviceDeployment // the service deployment it carries out (a rollback shares the failed one's)
}

func (d *deployment) stopTimer() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.next = nil
}

// schedule runs step after delay: at once when delay is 0 (or while a fleet loads), else from a
// timer, or earlier when Settle or Advance runs it. Call with e.mu held.
func (e *Emulator) schedule(d *deployment, delay time.Duration, step func()) {
	d.stopTimer()
	if delay <= 0 || e.loading {
		step()
		return
	}
	d.next = step
	var timer *time.Timer
	timer = time.AfterFunc(delay, func() {
		e.mu.Lock() // held by schedule's caller until timer is set
		// Only if this timer is still the deployment's: Settle or Advance may have run its
		// step meanwhile and scheduled the next one.
		if !e.closed && d.timer == timer {
			e.fire(d)
		}
		e.mu.Unlock()
		e.deliverEvents()
	})
	d.timer = timer
}

// fire runs the deployment's pending step now. Call with e.mu held.
func (e *Emulator) fire(d *deployment) {
	step := d.next
	d.stopTimer()
	if step != nil {
		step()
	}
}

func (d *deployment) out(s *service) deploymentOut {
	return deploymentOut{
		ID: d.id, Status: d.status, TaskDefinition: d.taskDef.arn,
		DesiredCount: d.desired, PendingCount: d.pending, RunningCount: d.running, FailedTasks: d.failed,
		CreatedAt: epoch(d.createdAt), UpdatedAt: epoch(d.updatedAt),
		LaunchType: s.launchType, PlatformVersion: s.platformVersion, NetworkConfiguration: s.networkConfiguration,
		RolloutState: d.rolloutState, RolloutStateReason: d.rolloutWhy,
	}
}

// ECSDeployDelay is an ECS-like deployment time, the default of `pinroll emulate`: short, but
// never within the call that starts the deployment, so CreateService and UpdateService answer
// the deployment IN_PROGRESS with runningCount 0 and its tasks pending, as ECS does, and the
// steady state comes later. Options.DeployDelay 0 is the instant world tests use.
const ECSDeployDelay = 2 * time.Second

// nextDeploymentID returns ids shaped like ECS's ("ecs-svc/" and 19 digits). Call with e.mu held.
func (e *Emulator) nextDeploymentID() string {
	e.ids++
	return "ecs-svc/" + strconv.FormatInt(1000000000000000000+e.ids, 10)
}

// startDeployment makes a new PRIMARY deployment of td for s; the previous PRIMARY becomes ACTIVE
// and keeps its tasks until the new one completes. The deployment completes now when DeployDelay
// is 0 (or while loading a fleet), else after DeployDelay. Call with e.mu held.
func (e *Emulator) startDeployment(w *world, s *service, td *taskDefinition) *deployment {
	id := e.nextDeploymentID()
	return e.beginDeployment(w, s, td, id, nil, "ECS deployment "+id+" in progress.")
}

// beginDeployment is startDeployment with the id chosen and, for a circuit breaker rollback, the
// failed deployment (whose service deployment the rollback carries on).
func (e *Emulator) beginDeployment(w *world, s *service, td *taskDefinition, id string, failed *deployment, reason string) *deployment {
	now := e.now()
	d := &deployment{
		id: id, status: "PRIMARY", taskDef: td, desired: s.desired,
		createdAt: now, updatedAt: now, rolloutState: "IN_PROGRESS", rolloutWhy: reason,
		strategy: s.strategy(), revision: e.nextRevisionARN(w, s),
	}
	if failed != nil {
		d.rollbackFrom, d.record, d.strategy = failed.id, failed.record, failed.strategy
	} else {
		d.record = e.newServiceDeployment(s, d)
	}
	for _, old := range s.deployments {
		if old.status == "PRIMARY" {
			old.status = "ACTIVE"
			old.updatedAt = now
			old.stopTimer()
			e.supersede(old, d)
		}
	}
	s.deployments = append([]*deployment{d}, s.deployments...)
	s.taskDef = td
	e.emitDeploymentEvent(w, s, d, "INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS", reason)
	d.pending = d.desired
	if d.strategy != strategyRolling {
		// PRE_SCALE_UP has no hook to run here (lifecycle hooks are kept, not invoked).
		d.stage = stageScaleUp
	}
	e.schedule(d, e.opts.DeployDelay, func() { e.completeDeployment(w, s, d) })
	return d
}

// completeDeployment starts the deployment's tasks and settles its outcome. Call with e.mu held.
func (e *Emulator) completeDeployment(w *world, s *service, d *deployment) {
	if d.status != "PRIMARY" || d.rolloutState != "IN_PROGRESS" || s.status != "ACTIVE" {
		return
	}
	now := e.now()
	d.pending = 0
	var pullError string
	for i := int32(0); i < d.desired; i++ {
		t := e.startTask(w, s, d)
		if t.lastStatus == "RUNNING" {
			d.running++
		} else {
			d.failed++
			pullError = t.stoppedReason
		}
	}
	d.updatedAt = now
	if d.failed == 0 {
		if d.strategy != strategyRolling {
			e.greenStarted(w, s, d) // traffic shifts and the bake come first
			return
		}
		e.finishDeployment(w, s, d)
		return
	}
	// The new tasks did not start; the previous deployment's tasks keep running.
	e.stopTasks(s, d, "")
	e.serviceEvent(s, "is unable to consistently start tasks successfully. %s", pullError)
	d.rolloutState = "FAILED"
	d.rolloutWhy = "ECS deployment circuit breaker: tasks failed to start."
	cb := s.circuitBreaker()
	if !cb.Enable {
		d.rolloutWhy = "tasks failed to start: " + pullError
	}
	previous := e.previousDeployment(s, d)
	if !cb.Rollback || previous == nil || d.rollbackFrom != "" {
		e.emitDeploymentEvent(w, s, d, "ERROR", "SERVICE_DEPLOYMENT_FAILED", d.rolloutWhy)
		d.record.end(now, failedEnd(d), d.rolloutWhy)
		return
	}
	if d.strategy != strategyRolling {
		// Blue still runs and still takes the traffic: restoring it is the rollback.
		e.restoreBlue(w, s, d, previous, d.rolloutWhy)
		return
	}
	// Circuit breaker rollback: a new PRIMARY deployment on the revision that ran before. Its id
	// is chosen first so the FAILED event can name it and precede the rollback's own events.
	rollbackID := e.nextDeploymentID()
	d.rolloutWhy += " Rolling back to deployment " + rollbackID + "."
	e.emitDeploymentEvent(w, s, d, "ERROR", "SERVICE_DEPLOYMENT_FAILED", d.rolloutWhy)
	d.record.rollingBack(now, d.rolloutWhy, previous.revision)
	s.deployments = removeDeployment(s.deployments, d)
	e.beginDeployment(w, s, previous.taskDef, rollbackID, d,
		"ECS deployment circuit breaker: rolling back to deploymentId "+rollbackID+".")
}

// finishDeployment completes a deployment whose tasks all run: the other deployments' tasks
// stop, and it alone remains. Call with e.mu held.
func (e *Emulator) finishDeployment(w *world, s *service, d *deployment) {
	now := e.now()
	d.updatedAt = now
	d.rolloutState = "COMPLETED"
	d.rolloutWhy = "ECS deployment " + d.id + " completed."
	for _, old := range s.deployments {
		if old != d {
			old.stopTimer()
			e.stopTasks(s, old, "Scaling activity initiated by (deployment "+d.id+")")
		}
	}
	s.deployments = []*deployment{d}
	e.serviceEvent(s, "has reached a steady state.")
	e.emitDeploymentEvent(w, s, d, "INFO", "SERVICE_DEPLOYMENT_COMPLETED", d.rolloutWhy)
	if d.rollbackFrom != "" {
		d.record.end(now, sdRollbackSuccessful, "")
	} else {
		d.record.end(now, sdSuccessful, "")
	}
}

// failedEnd is the status a service deployment ends in when d fails and nothing rolls it back.
func failedEnd(d *deployment) string {
	if d.rollbackFrom != "" {
		return sdRollbackFailed
	}
	return sdStopped
}

// previousDeployment is the newest deployment other than d whose rollout completed.
func (e *Emulator) previousDeployment(s *service, d *deployment) *deployment {
	for _, old := range s.deployments {
		if old != d && old.rolloutState == "COMPLETED" {
			return old
		}
	}
	return nil
}

func removeDeployment(ds []*deployment, d *deployment) []*deployment {
	out := make([]*deployment, 0, len(ds))
	for _, x := range ds {
		if x != d {
			out = append(out, x)
		}
	}
	return out
}

// scale starts or stops tasks of the PRIMARY deployment to reach the service's desired count.
// Call with e.mu held.
func (e *Emulator) scale(w *world, s *service) {
	d := s.primary()
	if d == nil {
		return
	}
	d.desired = s.desired
	started := d.rolloutState == "COMPLETED" || (d.rolloutState == "IN_PROGRESS" && d.strategy != strategyRolling && d.stage != stageScaleUp)
	if d.rolloutState == "IN_PROGRESS" && !started {
		d.pending = d.desired // the rollout starts d.desired tasks when it completes
		d.updatedAt = e.now()
		return
	}
	if !started {
		return // the failed rollout decides the count
	}
	for d.running < d.desired {
		t := e.startTask(w, s, d)
		if t.lastStatus != "RUNNING" {
			d.failed++
			break
		}
		d.running++
	}
	for _, t := range s.cluster.tasks {
		if d.running <= d.desired {
			break
		}
		if t.service == s && t.deploymentID == d.id && t.lastStatus == "RUNNING" {
			e.stopTask(t, "Scaling activity initiated by (service "+s.name+")", "ServiceSchedulerInitiated")
			d.running--
		}
	}
	d.updatedAt = e.now()
}

// startTask creates one task of the deployment; it runs when every container's image resolves,
// and is STOPPED with CannotPullContainerError otherwise. Call with e.mu held.
func (e *Emulator) startTask(w *world, s *service, d *deployment) *task {
	now := e.now()
	id := randomHex(32)
	t := &task{
		id: id, arn: w.arn("task/" + s.cluster.name + "/" + id),
		cluster: s.cluster, service: s, deploymentID: d.id, taskDef: d.taskDef,
		lastStatus: "RUNNING", desiredStatus: "RUNNING", createdAt: now, startedAt: now,
		launchType: s.launchType, version: 3,
	}
	if s.propagateTags == "SERVICE" {
		t.tags = append(t.tags, s.tags...)
	} else if s.propagateTags == "TASK_DEFINITION" {
		t.tags = append(t.tags, d.taskDef.tags...)
	}
	var pullError string
	for _, spec := range d.taskDef.spec.ContainerDefinitions {
		c := taskContainer{
			arn:  w.arn("container/" + s.cluster.name + "/" + id + "/" + newUUID()),
			name: spec.Name, image: spec.Image, lastStatus: "RUNNING",
			cpu: spec.Cpu, memory: spec.Memory, memoryReservation: spec.MemoryReservation,
		}
		digest, err := e.resolveImage(s.cluster, spec.Image)
		if err != nil {
			c.lastStatus = "STOPPED"
			c.reason = err.Error()
			if pullError == "" {
				pullError = err.Error()
			}
		} else {
			c.imageDigest = digest
			c.runtimeID = id + "-" + randomHex(10)
		}
		t.containers = append(t.containers, c)
	}
	if pullError != "" {
		t.lastStatus, t.desiredStatus = "STOPPED", "STOPPED"
		t.startedAt = time.Time{}
		t.stoppedAt = now
		t.stopCode = "TaskFailedToStart"
		t.stoppedReason = pullError
		for i := range t.containers {
			t.containers[i].lastStatus = "STOPPED"
			t.containers[i].runtimeID = ""
		}
	}
	s.cluster.addTask(t)
	return t
}

// stopTasks stops the running tasks of a deployment. Call with e.mu held.
func (e *Emulator) stopTasks(s *service, d *deployment, reason string) {
	for _, t := range s.cluster.tasks {
		if t.service == s && t.deploymentID == d.id && t.lastStatus == "RUNNING" {
			e.stopTask(t, reason, "ServiceSchedulerInitiated")
		}
	}
	d.running = 0
	d.pending = 0
}

func (e *Emulator) stopTask(t *task, reason, code string) {
	t.lastStatus, t.desiredStatus = "STOPPED", "STOPPED"
	t.stoppedAt = e.now()
	t.stoppedReason = reason
	t.stopCode = code
	t.version++
	for i := range t.containers {
		t.containers[i].lastStatus = "STOPPED"
	}
}

// pullError is how a task reports an image it could not pull.
type pullError struct{ image, why string }

func (p *pullError) Error() string {
	return "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref " + p.image + ": " + p.why
}

// resolveImage returns the digest a node of cluster c runs for an image reference:
//   - pinned (repo@sha256:… or repo:tag@sha256:…): that digest, if the repository has it;
//   - by tag (no tag = latest) on a cluster whose nodes cache images: the digest they pulled first
//     for that exact reference (recorded on first pull);
//   - by tag otherwise: what the tag points at in ECR now.
//
// Images of any account's ECR registry resolve against that registry (pulls across accounts are
// allowed, as if every repository policy allowed them). Images outside the emulator's ECR — other
// registries, and ECR hosts of an account and region the emulator holds nothing for — get a
// stable fake digest (sha256 of the reference). Call with e.mu held.
func (e *Emulator) resolveImage(c *cluster, ref string) (string, error) {
	host, repoName, tag, digest := splitImage(ref)
	account, region, isECR := ecrHost(host)
	w, known := e.worlds[worldKey{account, region}]
	if !isECR || !known {
		if digest != "" {
			return digest, nil
		}
		sum := sha256.Sum256([]byte(ref))
		return "sha256:" + hex.EncodeToString(sum[:]), nil
	}
	repo := w.repositories[repoName]
	if repo == nil {
		return "", &pullError{ref, "repository " + repoName + " does not exist or may require 'docker login': denied: requested access to the resource is denied"}
	}
	if digest != "" {
		img := repo.image(digest)
		if img == nil || !img.pullable() { // an archived image answers 404 too
			return "", &pullError{ref, ref + ": not found"}
		}
		img.pulledAt = e.now()
		return digest, nil
	}
	if c.cachesImages() {
		if cached, ok := c.nodeCache[ref]; ok {
			return cached, nil
		}
	}
	img, ok := repo.tags[tag]
	if !ok || !img.pullable() {
		return "", &pullError{ref, ref + ": not found"}
	}
	img.pulledAt = e.now()
	if c.cachesImages() {
		c.nodeCache[ref] = img.digest
	}
	return img.digest, nil
}

// ecrHost reports whether host is an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com), and
// whose, where.
func ecrHost(host string) (account, region string, ok bool) {
	account, rest, ok := strings.Cut(host, ".dkr.ecr.")
	if !ok || !accountIDPattern.MatchString(account) {
		return "", "", false
	}
	region, ok = strings.CutSuffix(rest, ".amazonaws.com")
	return account, region, ok && region != "" && !strings.Contains(region, ".")
}

// splitImage splits an image reference into registry host, repository path, tag (default latest)
// and digest. A first path component is a host when it has a dot or a colon or is localhost, as
// Docker decides.
func splitImage(ref string) (host, repo, tag, digest string) {
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		rest, digest = rest[:i], rest[i+1:]
	}
	if i := strings.Index(rest, "/"); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			host, rest = first, rest[i+1:]
		}
	}
	repo, tag = rest, "latest"
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
		repo, tag = rest[:i], rest[i+1:]
	}
	return host, repo, tag, digest
}

// Settle completes every pending deployment now — its tasks, traffic shifts and bake time,
// and the rollbacks it triggers — and waits until every deployment event produced so far has
// been delivered. Do not call it from OnDeploymentEvent.
func (e *Emulator) Settle() {
	for e.advance() > 0 || e.settleReplications() {
	}
	e.Flush()
}

// Advance runs, now, the next step of every deployment that waits for Options.DeployDelay or a
// bake time (Options.BakeMinute) — one step each: its tasks start, or traffic shifts by one
// step, or the bake ends — then waits until the events produced so far have been delivered,
// and reports how many deployments moved. Tests step through a strategy's phases with it. Do
// not call it from OnDeploymentEvent.
func (e *Emulator) Advance() int {
	n := e.advance()
	e.Flush()
	return n
}

func (e *Emulator) advance() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var waiting []*deployment
	for _, w := range e.worlds {
		for _, c := range w.clusters {
			for _, s := range c.services {
				for _, d := range s.deployments {
					if d.timer != nil {
						waiting = append(waiting, d)
					}
				}
			}
		}
	}
	for _, d := range waiting {
		if d.timer != nil { // an earlier step may have stopped it
			e.fire(d)
		}
	}
	return len(waiting)
}

// Flush waits until every event produced so far has been delivered, and advances nothing. Do
// not call it from OnDeploymentEvent.
func (e *Emulator) Flush() {
	e.deliverEvents()
	e.delivery.wait()
}
