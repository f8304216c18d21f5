package emulator

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// ECS's deployment strategies (deploymentConfiguration.strategy, ECS deployment controller).
// ROLLING replaces the tasks and completes when the new ones run (scheduler.go). BLUE_GREEN,
// LINEAR and CANARY share one machine, as the developer guide's "How Amazon ECS blue/green
// deployments work" describes it: the new revision's (green) tasks start beside the running
// ones (blue) — SCALE_UP —, test traffic shifts to green, then production traffic does: all
// of it at once (BLUE_GREEN), canaryPercent first and the rest after canaryBakeTimeInMinutes
// (CANARY), or stepPercent at a time with stepBakeTimeInMinutes between steps and none after
// the last (LINEAR). Then, with green taking all the traffic and blue still running, the
// deployment bakes for bakeTimeInMinutes — BAKE_TIME —, after which blue's tasks stop
// (CLEAN_UP) and the deployment completes. A rollback before the end — green tasks that cannot
// start (with the circuit breaker's rollback), or StopServiceDeployment with stopType ROLLBACK,
// the operator's rollback — restores blue, which still runs: no task starts, green's stop.
//
// Inferred, not documented: SERVICE_DEPLOYMENT_COMPLETED is sent once the deployment
// completes, after the bake and the clean-up ("once a service reaches a steady state after a
// deployment"), never before; until then the PRIMARY deployment's rolloutState stays
// IN_PROGRESS and blue stays listed, ACTIVE, with its tasks. A rollback that restores blue
// sends SERVICE_DEPLOYMENT_FAILED for green, with a reason saying it rolls back to blue's
// deployment (as the circuit breaker's does), and no other event: blue is not deployed anew,
// and ECS documents no event for the end of such a rollback.
//
// The stages that only wait for lifecycle hooks (PRE_SCALE_UP, POST_SCALE_UP,
// TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT, PRE_ and POST_PRODUCTION_TRAFFIC_SHIFT) take no
// time: hooks are validated and kept, not invoked, as if each succeeded at once. There is no
// load balancer: traffic weights are reported, not applied. Options.BakeMinute is how long a
// minute of the bake times lasts.

const (
	strategyRolling   = "ROLLING"
	strategyBlueGreen = "BLUE_GREEN"
	strategyLinear    = "LINEAR"
	strategyCanary    = "CANARY"
)

// Lifecycle stages (ServiceDeployment.lifecycleStage).
const (
	stageScaleUp                    = "SCALE_UP"
	stagePostTestTrafficShift       = "POST_TEST_TRAFFIC_SHIFT"
	stageProductionTrafficShift     = "PRODUCTION_TRAFFIC_SHIFT"
	stagePostProductionTrafficShift = "POST_PRODUCTION_TRAFFIC_SHIFT"
	stageBakeTime                   = "BAKE_TIME"
	stageCleanUp                    = "CLEAN_UP"
)

// Service deployment statuses (ServiceDeployment.status).
const (
	sdInProgress         = "IN_PROGRESS"
	sdSuccessful         = "SUCCESSFUL"
	sdStopped            = "STOPPED"
	sdRollbackInProgress = "ROLLBACK_IN_PROGRESS"
	sdRollbackSuccessful = "ROLLBACK_SUCCESSFUL"
	sdRollbackFailed     = "ROLLBACK_FAILED"
)

// The documented defaults of linearConfiguration and canaryConfiguration.
const (
	defaultStepPercent   = 10.0
	defaultStepBake      = 6
	defaultCanaryPercent = 5.0
	defaultCanaryBake    = 10
	maxBakeMinutes       = 1440
	fullTraffic          = 1000 // 100%, in tenths of a percent
)

type linearConfiguration struct {
	StepPercent           *float64 `json:"stepPercent,omitempty"`
	StepBakeTimeInMinutes *int32   `json:"stepBakeTimeInMinutes,omitempty"`
}

type canaryConfiguration struct {
	CanaryPercent           *float64 `json:"canaryPercent,omitempty"`
	CanaryBakeTimeInMinutes *int32   `json:"canaryBakeTimeInMinutes,omitempty"`
}

type lifecycleHook struct {
	HookTargetArn        string          `json:"hookTargetArn,omitempty"`
	RoleArn              string          `json:"roleArn,omitempty"`
	LifecycleStages      []string        `json:"lifecycleStages"`
	TargetType           string          `json:"targetType,omitempty"`
	HookDetails          json.RawMessage `json:"hookDetails,omitempty"`
	TimeoutConfiguration *hookTimeout    `json:"timeoutConfiguration,omitempty"`
}

type hookTimeout struct {
	Action           string `json:"action,omitempty"`
	TimeoutInMinutes *int32 `json:"timeoutInMinutes,omitempty"`
}

type deploymentAlarms struct {
	AlarmNames []string `json:"alarmNames"`
	Enable     bool     `json:"enable"`
	Rollback   bool     `json:"rollback"`
}

func (s *service) strategy() string {
	if s.config.Strategy == "" {
		return strategyRolling
	}
	return s.config.Strategy
}

// checkStrategy applies the documented rules of deploymentConfiguration's strategy fields (the
// API reference's DeploymentConfiguration, LinearConfiguration, CanaryConfiguration and
// DeploymentLifecycleHook) to the configuration a request leaves the service with. The
// messages are the emulator's own: ECS's wording for these is not documented.
func checkStrategy(c deploymentConfiguration, controller string, loadBalancers json.RawMessage) error {
	strategy := c.Strategy
	switch strategy {
	case "", strategyRolling, strategyBlueGreen, strategyLinear, strategyCanary:
	default:
		return invalidParameter("deploymentConfiguration.strategy %q: want ROLLING, BLUE_GREEN, LINEAR or CANARY.", strategy)
	}
	if err := checkMinutes("bakeTimeInMinutes", c.BakeTimeInMinutes); err != nil {
		return err
	}
	if c.LinearConfiguration != nil && strategy != strategyLinear {
		return invalidParameter("linearConfiguration is only valid with the LINEAR deployment strategy.")
	}
	if c.CanaryConfiguration != nil && strategy != strategyCanary {
		return invalidParameter("canaryConfiguration is only valid with the CANARY deployment strategy.")
	}
	if err := checkHooks(c.LifecycleHooks); err != nil {
		return err
	}
	if strategy == "" || strategy == strategyRolling {
		return nil
	}
	if controller != "ECS" {
		return invalidParameter("The %s deployment strategy is only valid with the ECS deployment controller, not %s.", strategy, controller)
	}
	switch strategy {
	case strategyBlueGreen:
		if c.BakeTimeInMinutes == nil {
			return invalidParameter("bakeTimeInMinutes is required with the BLUE_GREEN deployment strategy.")
		}
	case strategyLinear:
		if l := c.LinearConfiguration; l != nil {
			if l.StepPercent != nil && !tenthsIn(*l.StepPercent, 30, fullTraffic) {
				return invalidParameter("linearConfiguration.stepPercent must be a multiple of 0.1 from 3.0 to 100.0, got %v.", *l.StepPercent)
			}
			if err := checkMinutes("linearConfiguration.stepBakeTimeInMinutes", l.StepBakeTimeInMinutes); err != nil {
				return err
			}
		}
	case strategyCanary:
		if k := c.CanaryConfiguration; k != nil {
			if k.CanaryPercent != nil && !tenthsIn(*k.CanaryPercent, 1, fullTraffic) {
				return invalidParameter("canaryConfiguration.canaryPercent must be a multiple of 0.1 from 0.1 to 100.0, got %v.", *k.CanaryPercent)
			}
			if err := checkMinutes("canaryConfiguration.canaryBakeTimeInMinutes", k.CanaryBakeTimeInMinutes); err != nil {
				return err
			}
		}
	}
	// A load balancer shifts traffic between two target groups: blue's and the alternate one
	// ("Required resources for Amazon ECS blue/green deployments"). A service without one
	// (headless) may still deploy so; nothing shifts.
	if hasItems(loadBalancers) {
		var lbs []struct {
			AdvancedConfiguration *struct {
				AlternateTargetGroupArn string `json:"alternateTargetGroupArn"`
			} `json:"advancedConfiguration"`
		}
		if err := json.Unmarshal(loadBalancers, &lbs); err != nil {
			return invalidParameter("loadBalancers: %v", err)
		}
		for _, lb := range lbs {
			if lb.AdvancedConfiguration == nil || lb.AdvancedConfiguration.AlternateTargetGroupArn == "" {
				return invalidParameter("A load balancer of a service with the %s deployment strategy needs advancedConfiguration with an alternateTargetGroupArn.", strategy)
			}
		}
	}
	return nil
}

func checkMinutes(name string, v *int32) error {
	if v != nil && (*v < 0 || *v > maxBakeMinutes) {
		return invalidParameter("%s must be between 0 and %d minutes, got %d.", name, maxBakeMinutes, *v)
	}
	return nil
}

// tenthsIn reports whether p is a multiple of 0.1 whose tenths lie in [lo, hi].
func tenthsIn(p float64, lo, hi int) bool {
	t := p * 10
	r := math.Round(t)
	return math.Abs(t-r) < 1e-6 && int(r) >= lo && int(r) <= hi
}

func tenths(p float64) int { return int(math.Round(p * 10)) }

// Hook stages (DeploymentLifecycleHookStage): every lifecycle stage but SCALE_UP, BAKE_TIME and
// CLEAN_UP.
var hookStages = map[string]bool{
	"RECONCILE_SERVICE": true, "PRE_SCALE_UP": true, "POST_SCALE_UP": true, "TEST_TRAFFIC_SHIFT": true,
	"POST_TEST_TRAFFIC_SHIFT": true, "PRE_PRODUCTION_TRAFFIC_SHIFT": true, "PRODUCTION_TRAFFIC_SHIFT": true,
	"POST_PRODUCTION_TRAFFIC_SHIFT": true,
}

// checkHooks applies DeploymentLifecycleHook's rules and the developer guide's for pause hooks:
// stages are required and are hook stages; an AWS_LAMBDA hook (the default) names its target;
// a PAUSE hook is not placed at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT; at most 10 hooks
// of each type; a timeout's action is CONTINUE or ROLLBACK, its minutes 1 to 20160 (14 days).
func checkHooks(hooks []lifecycleHook) error {
	count := map[string]int{}
	for i, h := range hooks {
		kind := h.TargetType
		if kind == "" {
			kind = "AWS_LAMBDA"
		}
		switch kind {
		case "AWS_LAMBDA":
			if h.HookTargetArn == "" {
				return invalidParameter("lifecycleHooks[%d]: hookTargetArn is required for an AWS_LAMBDA hook.", i)
			}
		case "PAUSE":
		default:
			return invalidParameter("lifecycleHooks[%d].targetType %q: want AWS_LAMBDA or PAUSE.", i, h.TargetType)
		}
		count[kind]++
		if count[kind] > 10 {
			return invalidParameter("lifecycleHooks: at most 10 %s hooks a service.", kind)
		}
		if len(h.LifecycleStages) == 0 {
			return invalidParameter("lifecycleHooks[%d]: lifecycleStages is required.", i)
		}
		for _, stage := range h.LifecycleStages {
			if !hookStages[stage] {
				return invalidParameter("lifecycleHooks[%d]: %q is not a lifecycle stage a hook can run at.", i, stage)
			}
			if kind == "PAUSE" && (stage == "TEST_TRAFFIC_SHIFT" || stage == stageProductionTrafficShift) {
				return invalidParameter("lifecycleHooks[%d]: a PAUSE hook cannot run at %s.", i, stage)
			}
		}
		if t := h.TimeoutConfiguration; t != nil {
			if t.Action != "" && t.Action != "CONTINUE" && t.Action != "ROLLBACK" {
				return invalidParameter("lifecycleHooks[%d].timeoutConfiguration.action %q: want CONTINUE or ROLLBACK.", i, t.Action)
			}
			if m := t.TimeoutInMinutes; m != nil && (*m < 1 || *m > 20160) {
				return invalidParameter("lifecycleHooks[%d].timeoutConfiguration.timeoutInMinutes must be between 1 and 20160, got %d.", i, *m)
			}
		}
	}
	return nil
}

// minutes is how long n minutes of a bake time last in the emulator.
func (e *Emulator) minutes(n int32) time.Duration { return time.Duration(n) * e.opts.BakeMinute }

// greenStarted moves a deployment whose green tasks all run to its first production traffic
// step. Call with e.mu held.
func (e *Emulator) greenStarted(w *world, s *service, d *deployment) {
	d.stage = stagePostTestTrafficShift // through POST_SCALE_UP and the test traffic shift
	d.record.touch(e.now())
	e.shiftTraffic(w, s, d)
}

// shiftTraffic moves one more step of production traffic to green, then waits for the step's
// bake time, or — once green takes it all — for the deployment's. Call with e.mu held.
func (e *Emulator) shiftTraffic(w *world, s *service, d *deployment) {
	if d.status != "PRIMARY" || d.rolloutState != "IN_PROGRESS" {
		return
	}
	cfg := d.record.config
	step, wait := fullTraffic, int32(0)
	switch d.strategy {
	case strategyLinear:
		percent, bake := defaultStepPercent, int32(defaultStepBake)
		if l := cfg.LinearConfiguration; l != nil {
			percent, bake = deref(l.StepPercent, percent), deref(l.StepBakeTimeInMinutes, bake)
		}
		step, wait = tenths(percent), bake
	case strategyCanary:
		percent, bake := defaultCanaryPercent, int32(defaultCanaryBake)
		if k := cfg.CanaryConfiguration; k != nil {
			percent, bake = deref(k.CanaryPercent, percent), deref(k.CanaryBakeTimeInMinutes, bake)
		}
		if d.weight == 0 {
			step, wait = tenths(percent), bake
		}
	}
	now := e.now()
	d.stage = stageProductionTrafficShift
	d.weight = min(d.weight+step, fullTraffic)
	d.updatedAt = now
	d.record.touch(now)
	if d.weight < fullTraffic {
		e.serviceEvent(s, "deployment %s shifted %s of production traffic to the new service revision.", d.id, percentText(d.weight))
		e.schedule(d, e.minutes(wait), func() { e.shiftTraffic(w, s, d) })
		return
	}
	// POST_PRODUCTION_TRAFFIC_SHIFT waits only for hooks; then the bake, blue still running.
	// bakeTimeInMinutes is required with BLUE_GREEN; for LINEAR and CANARY its default is not
	// documented: none.
	d.stage = stageBakeTime
	e.serviceEvent(s, "deployment %s shifted all production traffic to the new service revision; baking for %d minutes.", d.id, deref(cfg.BakeTimeInMinutes, 0))
	e.schedule(d, e.minutes(deref(cfg.BakeTimeInMinutes, 0)), func() { e.cleanUp(w, s, d) })
}

// cleanUp ends the bake: blue's tasks stop and the deployment completes. Call with e.mu held.
func (e *Emulator) cleanUp(w *world, s *service, d *deployment) {
	if d.status != "PRIMARY" || d.rolloutState != "IN_PROGRESS" {
		return
	}
	d.stage = stageCleanUp
	e.finishDeployment(w, s, d)
}

// restoreBlue rolls a deployment back to blue, the revision still running beside it: green's
// tasks stop, it is FAILED (SERVICE_DEPLOYMENT_FAILED) and dropped, and blue is PRIMARY again.
// Call with e.mu held.
func (e *Emulator) restoreBlue(w *world, s *service, green, blue *deployment, why string) {
	now := e.now()
	green.stopTimer()
	e.stopTasks(s, green, "Scaling activity initiated by (deployment "+blue.id+")")
	green.rolloutState = "FAILED"
	green.rolloutWhy = why + " Rolling back to deployment " + blue.id + "."
	green.updatedAt = now
	e.emitDeploymentEvent(w, s, green, "ERROR", "SERVICE_DEPLOYMENT_FAILED", green.rolloutWhy)
	green.record.rollingBack(now, why, blue.revision)
	s.deployments = removeDeployment(s.deployments, green)
	blue.status = "PRIMARY"
	blue.updatedAt = now
	s.taskDef = blue.taskDef
	e.serviceEvent(s, "rolled back to deployment %s: %s", blue.id, why)
	green.record.end(now, sdRollbackSuccessful, "")
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func percentText(t int) string {
	return strconv.FormatFloat(float64(t)/10, 'f', -1, 64) + "%"
}

// A serviceDeployment is what ListServiceDeployments and DescribeServiceDeployments show: one
// per deployment a request started (a circuit breaker's rollback belongs to the deployment it
// rolls back), with the configuration it was started under.
type serviceDeployment struct {
	id, arn   string
	service   *service
	target    *deployment
	sources   []*deployment // what ran when it started
	config    deploymentConfiguration
	createdAt time.Time
	updatedAt time.Time
	endedAt   time.Time // finished or stopped
	status    string
	reason    string
	rollback  *rollbackInfo
}

type rollbackInfo struct {
	reason    string
	startedAt time.Time
	revision  string
}

// newServiceDeployment records the service deployment that d starts. Call with e.mu held.
func (e *Emulator) newServiceDeployment(s *service, d *deployment) *serviceDeployment {
	id := randomID(20)
	r := &serviceDeployment{
		id: id, arn: strings.Replace(s.arn, ":service/", ":service-deployment/", 1) + "/" + id,
		service: s, target: d, config: s.config,
		createdAt: d.createdAt, updatedAt: d.createdAt, status: sdInProgress,
	}
	for _, old := range s.deployments {
		if old.running > 0 || old.status == "PRIMARY" {
			r.sources = append(r.sources, old)
		}
	}
	s.history = append([]*serviceDeployment{r}, s.history...)
	return r
}

// nextRevisionARN names a new service revision (ECS's ids are 19 digits).
func (e *Emulator) nextRevisionARN(_ *world, s *service) string {
	return strings.Replace(s.arn, ":service/", ":service-revision/", 1) + "/" + strconv.FormatInt(1e18+rand.Int64N(8e18), 10)
}

func randomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

func (r *serviceDeployment) touch(now time.Time) {
	if r != nil {
		r.updatedAt = now
	}
}

func (r *serviceDeployment) end(now time.Time, status, reason string) {
	if r == nil {
		return
	}
	r.status, r.updatedAt, r.endedAt = status, now, now
	if reason != "" {
		r.reason = reason
	}
}

func (r *serviceDeployment) rollingBack(now time.Time, reason, revision string) {
	if r == nil {
		return
	}
	r.status, r.reason, r.updatedAt = sdRollbackInProgress, reason, now
	r.rollback = &rollbackInfo{reason: reason, startedAt: now, revision: revision}
}

func (r *serviceDeployment) ended() bool {
	switch r.status {
	case sdSuccessful, sdStopped, sdRollbackSuccessful, sdRollbackFailed:
		return true
	}
	return false
}

// supersede stops the service deployment of old, an unfinished deployment that d replaces as
// PRIMARY. Whether ECS calls it STOPPED is not documented. Call with e.mu held.
func (e *Emulator) supersede(old, d *deployment) {
	if r := old.record; r != nil && r != d.record && old.rolloutState == "IN_PROGRESS" && !r.ended() {
		r.end(e.now(), sdStopped, "superseded by service deployment "+d.record.arn)
	}
}

type revisionSummaryOut struct {
	Arn                              string   `json:"arn"`
	RequestedTaskCount               int32    `json:"requestedTaskCount"`
	RunningTaskCount                 int32    `json:"runningTaskCount"`
	PendingTaskCount                 int32    `json:"pendingTaskCount"`
	RequestedTestTrafficWeight       *float64 `json:"requestedTestTrafficWeight,omitempty"`
	RequestedProductionTrafficWeight *float64 `json:"requestedProductionTrafficWeight,omitempty"`
}

type monitorsOut struct {
	Status              string   `json:"status"`
	FailureCount        *int32   `json:"failureCount,omitempty"`
	Threshold           *int32   `json:"threshold,omitempty"`
	AlarmNames          []string `json:"alarmNames,omitempty"`
	TriggeredAlarmNames []string `json:"triggeredAlarmNames,omitempty"`
}

type serviceDeploymentOut struct {
	ServiceDeploymentArn     string                  `json:"serviceDeploymentArn"`
	ServiceArn               string                  `json:"serviceArn"`
	ClusterArn               string                  `json:"clusterArn"`
	CreatedAt                epoch                   `json:"createdAt"`
	StartedAt                epoch                   `json:"startedAt"`
	UpdatedAt                epoch                   `json:"updatedAt"`
	FinishedAt               *epoch                  `json:"finishedAt,omitempty"`
	StoppedAt                *epoch                  `json:"stoppedAt,omitempty"`
	SourceServiceRevisions   []revisionSummaryOut    `json:"sourceServiceRevisions"`
	TargetServiceRevision    revisionSummaryOut      `json:"targetServiceRevision"`
	Status                   string                  `json:"status"`
	StatusReason             string                  `json:"statusReason,omitempty"`
	LifecycleStage           string                  `json:"lifecycleStage,omitempty"`
	DeploymentConfiguration  deploymentConfiguration `json:"deploymentConfiguration"`
	Rollback                 *rollbackOut            `json:"rollback,omitempty"`
	DeploymentCircuitBreaker monitorsOut             `json:"deploymentCircuitBreaker"`
	Alarms                   monitorsOut             `json:"alarms"`
}

type rollbackOut struct {
	Reason             string `json:"reason"`
	StartedAt          epoch  `json:"startedAt"`
	ServiceRevisionArn string `json:"serviceRevisionArn"`
}

type serviceDeploymentBriefOut struct {
	ServiceDeploymentArn     string `json:"serviceDeploymentArn"`
	ServiceArn               string `json:"serviceArn"`
	ClusterArn               string `json:"clusterArn"`
	CreatedAt                epoch  `json:"createdAt"`
	StartedAt                epoch  `json:"startedAt"`
	FinishedAt               *epoch `json:"finishedAt,omitempty"`
	Status                   string `json:"status"`
	StatusReason             string `json:"statusReason,omitempty"`
	TargetServiceRevisionArn string `json:"targetServiceRevisionArn"`
}

func (r *serviceDeployment) revisionOut(d *deployment, weight int, test bool) revisionSummaryOut {
	out := revisionSummaryOut{Arn: d.revision, RequestedTaskCount: d.desired, RunningTaskCount: d.running, PendingTaskCount: d.pending}
	if r.target.strategy != strategyRolling { // traffic weights are the strategy's, not the revision's
		prod, testWeight := float64(weight)/10, 0.0
		if test {
			testWeight = 100
		}
		out.RequestedProductionTrafficWeight, out.RequestedTestTrafficWeight = &prod, &testWeight
	}
	return out
}

func (r *serviceDeployment) out() serviceDeploymentOut {
	d := r.target
	o := serviceDeploymentOut{
		ServiceDeploymentArn: r.arn, ServiceArn: r.service.arn, ClusterArn: r.service.cluster.arn,
		CreatedAt: epoch(r.createdAt), StartedAt: epoch(r.createdAt), UpdatedAt: epoch(r.updatedAt),
		Status: r.status, StatusReason: r.reason, DeploymentConfiguration: r.config,
		SourceServiceRevisions: []revisionSummaryOut{},
	}
	if d.strategy != strategyRolling {
		o.LifecycleStage = d.stage
	}
	// Green takes test traffic once it runs; production traffic as far as it has shifted (all
	// of it once the deployment succeeded; none once it was rolled back). Blue takes the rest.
	weight := d.weight
	switch r.status {
	case sdSuccessful:
		weight = fullTraffic
	case sdRollbackInProgress, sdRollbackSuccessful, sdRollbackFailed, sdStopped:
		weight = 0
	}
	test := d.running > 0 && d.stage != stageScaleUp
	o.TargetServiceRevision = r.revisionOut(d, weight, test)
	for i, src := range r.sources {
		share := 0
		if i == 0 {
			share = fullTraffic - weight
		}
		o.SourceServiceRevisions = append(o.SourceServiceRevisions, r.revisionOut(src, share, !test && i == 0))
	}
	if r.ended() {
		end := epoch(r.endedAt)
		if r.status == sdStopped {
			o.StoppedAt = &end
		} else {
			o.FinishedAt = &end
		}
	}
	if rb := r.rollback; rb != nil {
		o.Rollback = &rollbackOut{Reason: rb.reason, StartedAt: epoch(rb.startedAt), ServiceRevisionArn: rb.revision}
	}
	monitoring := "MONITORING"
	if r.ended() {
		monitoring = "MONITORING_COMPLETE"
	}
	o.DeploymentCircuitBreaker.Status = "DISABLED"
	if cb := r.config.CircuitBreaker; cb != nil && cb.Enable {
		// The documented threshold: 0.5 × desired count, at least 3, at most 200.
		threshold := min(max(int32(math.Ceil(0.5*float64(d.desired))), 3), 200)
		failures := d.failed
		o.DeploymentCircuitBreaker = monitorsOut{Status: monitoring, FailureCount: &failures, Threshold: &threshold}
		if d.failed > 0 {
			o.DeploymentCircuitBreaker.Status = "TRIGGERED"
		}
	}
	o.Alarms.Status = "DISABLED"
	var alarms deploymentAlarms
	if len(r.config.Alarms) > 0 && json.Unmarshal(r.config.Alarms, &alarms) == nil && alarms.Enable {
		o.Alarms = monitorsOut{Status: monitoring, AlarmNames: alarms.AlarmNames}
	}
	return o
}

func (r *serviceDeployment) brief() serviceDeploymentBriefOut {
	o := serviceDeploymentBriefOut{
		ServiceDeploymentArn: r.arn, ServiceArn: r.service.arn, ClusterArn: r.service.cluster.arn,
		CreatedAt: epoch(r.createdAt), StartedAt: epoch(r.createdAt),
		Status: r.status, StatusReason: r.reason, TargetServiceRevisionArn: r.target.revision,
	}
	if r.ended() {
		o.FinishedAt = epochPtr(r.endedAt)
	}
	return o
}

// findServiceDeployment finds a service deployment of the world by ARN. Call with e.mu held.
func (w *world) findServiceDeployment(arn string) *serviceDeployment {
	rest, ok := strings.CutPrefix(arn, w.arn("service-deployment/"))
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 {
		return nil
	}
	c := w.clusters[parts[0]]
	if c == nil {
		return nil
	}
	s := c.services[parts[1]]
	if s == nil {
		return nil
	}
	for _, r := range s.history {
		if r.id == parts[2] {
			return r
		}
	}
	return nil
}

const (
	maxDescribeServiceDeployments = 20
	defaultServiceDeploymentsPage = 20
)

func (e *Emulator) opDescribeServiceDeployments(rc *request) (any, error) {
	var in struct {
		ServiceDeploymentArns []string `json:"serviceDeploymentArns"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.ServiceDeploymentArns) == 0 {
		return nil, invalidParameter("serviceDeploymentArns must not be empty.")
	}
	if len(in.ServiceDeploymentArns) > maxDescribeServiceDeployments {
		return nil, invalidParameter("serviceDeploymentArns can have at most %d items, got %d.", maxDescribeServiceDeployments, len(in.ServiceDeploymentArns))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	out := []serviceDeploymentOut{}
	failures := []failure{}
	for _, arn := range in.ServiceDeploymentArns {
		if r := w.findServiceDeployment(arn); r != nil {
			out = append(out, r.out())
		} else {
			failures = append(failures, failure{Arn: arn, Reason: "MISSING"})
		}
	}
	return map[string]any{"serviceDeployments": out, "failures": failures}, nil
}

func (e *Emulator) opListServiceDeployments(rc *request) (any, error) {
	var in struct {
		listInput
		Cluster   string   `json:"cluster"`
		Service   string   `json:"service"`
		Status    []string `json:"status"`
		CreatedAt *struct {
			After  *float64 `json:"after"`
			Before *float64 `json:"before"`
		} `json:"createdAt"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.Service == "" {
		return nil, invalidParameter("service is required.")
	}
	size, err := ecsPageSize(in.MaxResults, defaultServiceDeploymentsPage)
	if err != nil {
		return nil, err
	}
	for _, st := range in.Status {
		switch st {
		case "PENDING", sdInProgress, sdSuccessful, sdStopped, "STOP_REQUESTED", "ROLLBACK_REQUESTED",
			sdRollbackInProgress, sdRollbackSuccessful, sdRollbackFailed:
		default:
			return nil, invalidParameter("status %q is not a service deployment status.", st)
		}
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
	var briefs []serviceDeploymentBriefOut
	for _, r := range s.history {
		at := float64(r.createdAt.UnixMilli()) / 1000
		switch {
		case len(in.Status) > 0 && !contains(in.Status, r.status),
			in.CreatedAt != nil && in.CreatedAt.After != nil && at < *in.CreatedAt.After,
			in.CreatedAt != nil && in.CreatedAt.Before != nil && at > *in.CreatedAt.Before:
			continue
		}
		briefs = append(briefs, r.brief())
	}
	page, next, err := paginate(briefs, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	return pageOut("serviceDeployments", page, next), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// opStopServiceDeployment is the operator's rollback: stopType ROLLBACK (the only value the
// API reference documents) rolls an ongoing service deployment back to the revision that ran
// before it, "even if you didn't configure the service deployment for the rollback option".
// Only a deployment whose status is IN_PROGRESS can be stopped here; ECS's wording for the
// refusals is not documented.
func (e *Emulator) opStopServiceDeployment(rc *request) (any, error) {
	var in struct {
		ServiceDeploymentArn string `json:"serviceDeploymentArn"`
		StopType             string `json:"stopType"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.ServiceDeploymentArn == "" {
		return nil, invalidParameter("serviceDeploymentArn is required.")
	}
	switch in.StopType {
	case "", "ROLLBACK":
	case "ABORT":
		return nil, invalidParameter("stopType ABORT: the emulator supports ROLLBACK, the stop type the API reference documents.")
	default:
		return nil, invalidParameter("stopType %q: want ROLLBACK.", in.StopType)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	r := w.findServiceDeployment(in.ServiceDeploymentArn)
	if r == nil {
		return nil, clientError("ServiceDeploymentNotFoundException", "The service deployment %s does not exist.", in.ServiceDeploymentArn)
	}
	s, d := r.service, r.target
	if r.status != sdInProgress || d.status != "PRIMARY" || d.rolloutState != "IN_PROGRESS" {
		return nil, clientError("ConflictException", "The service deployment is %s and can no longer be stopped.", r.status)
	}
	previous := e.previousDeployment(s, d)
	if previous == nil {
		return nil, clientError("ConflictException", "The service deployment cannot be rolled back: the service has no earlier service revision that completed.")
	}
	stage := d.stage
	if stage == "" {
		stage = "its rollout"
	}
	e.restoreBlue(w, s, d, previous, "ECS deployment "+d.id+" stopped during "+stage+": StopServiceDeployment requested a rollback.")
	return map[string]any{"serviceDeploymentArn": r.arn}, nil
}
