package emulator

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// ECR registry replication: PutReplicationConfiguration and DescribeRegistry, and the copy of every
// pushed image into the destinations whose rules match, each followed by an "ECR Replication
// Action" event in the destination.

type replicationConfiguration = fleet.ReplicationConfiguration

func init() {
	ecrOperations["PutReplicationConfiguration"] = (*Emulator).opPutReplicationConfiguration
	ecrOperations["DescribeRegistry"] = (*Emulator).opDescribeRegistry
}

// replication is one image on its way to one destination.
type replication struct {
	source, destination      worldKey
	repository               string
	manifest, mediaType, tag string
	digest                   string
	timer                    *time.Timer
}

// FailReplications makes the next `times` replications into the registry of account in region
// fail (times < 0: all of them; 0 removes the hook): the image is not copied and the
// destination's event says "result": "FAILURE".
func (e *Emulator) FailReplications(account, region string, times int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := worldKey{account, region}
	if times == 0 {
		delete(e.failRepl, key)
		return
	}
	e.failRepl[key] = times
}

func (e *Emulator) opPutReplicationConfiguration(rc *request) (any, error) {
	var in struct {
		ReplicationConfiguration *replicationConfiguration `json:"replicationConfiguration"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.ReplicationConfiguration == nil {
		return nil, invalidParameter("1 validation error detected: Value null at 'replicationConfiguration' failed to satisfy constraint: Member must not be null")
	}
	cfg := *in.ReplicationConfiguration
	if cfg.Rules == nil {
		cfg.Rules = []fleet.ReplicationRule{}
	}
	if problems := cfg.Problems(rc.account, rc.region); len(problems) > 0 {
		return nil, invalidParameter("Invalid parameter at 'replicationConfiguration': %s", strings.Join(problems, "; "))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.world(rc).replication = cfg
	return map[string]any{"replicationConfiguration": cfg}, nil
}

func (e *Emulator) opDescribeRegistry(rc *request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	cfg := w.replication
	if cfg.Rules == nil {
		cfg.Rules = []fleet.ReplicationRule{}
	}
	return map[string]any{"registryId": w.account, "replicationConfiguration": cfg}, nil
}

// pushEventDetail is the detail of an "ECR Image Action" event of a push.
type pushEventDetail struct {
	Result            string `json:"result"`
	RepositoryName    string `json:"repository-name"`
	ImageDigest       string `json:"image-digest"`
	ActionType        string `json:"action-type"`
	ImageTag          string `json:"image-tag,omitempty"`
	ManifestMediaType string `json:"manifest-media-type,omitempty"`
	ArtifactMediaType string `json:"artifact-media-type,omitempty"`
}

// pushed follows a successful PutImage: its "ECR Image Action" event (with Options.PushEvents),
// then replication. Call with e.mu held.
func (e *Emulator) pushed(w *world, r *repository, img *image, tag string) {
	if e.opts.PushEvents {
		e.emitEventResources(w, "aws.ecr", "ECR Image Action", []string{}, pushEventDetail{
			Result: "SUCCESS", RepositoryName: r.name, ImageDigest: img.digest, ActionType: "PUSH", ImageTag: tag,
			ManifestMediaType: img.mediaType, ArtifactMediaType: img.artifactMediaType,
		})
	}
	e.replicate(w, r, img, tag)
}

// replicate sends an image just pushed to repository r of world w (with tag, "" = untagged) to
// every destination of w's replication configuration that matches r: at once while a fleet
// loads (without events) or when Options.ReplicationDelay is 0 (the event is delivered after the
// push's answer), else once the delay has passed (or at Settle). Replicas are not replicated
// again. Call with e.mu held.
func (e *Emulator) replicate(w *world, r *repository, img *image, tag string) {
	for _, d := range w.replication.Destinations(r.name) {
		job := &replication{
			source: w.key(), destination: worldKey{d.RegistryID, d.Region},
			repository: r.name, manifest: img.manifest, mediaType: img.mediaType, tag: tag, digest: img.digest,
		}
		if e.loading || e.opts.ReplicationDelay <= 0 {
			e.completeReplication(job)
			continue
		}
		e.pending = append(e.pending, job)
		job.timer = time.AfterFunc(e.opts.ReplicationDelay, func() {
			e.mu.Lock()
			done := e.takePending(job)
			if done {
				e.completeReplication(job)
			}
			e.mu.Unlock()
			if done {
				e.deliverEvents()
			}
		})
	}
}

// takePending removes job from the pending replications; false if it was no longer there (Close
// or Settle took it). Call with e.mu held.
func (e *Emulator) takePending(job *replication) bool {
	for i, p := range e.pending {
		if p == job {
			e.pending = append(e.pending[:i], e.pending[i+1:]...)
			return true
		}
	}
	return false
}

// settleReplications completes every pending replication now and reports whether there was any.
func (e *Emulator) settleReplications() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	jobs := e.pending
	e.pending = nil
	for _, job := range jobs {
		job.timer.Stop()
		e.completeReplication(job)
	}
	return len(jobs) > 0
}

// completeReplication copies the image into the destination — creating the repository there if
// needed, as ECR does — unless FailReplications says otherwise, and emits the destination's event.
// Call with e.mu held.
func (e *Emulator) completeReplication(job *replication) {
	dst := e.worldAt(job.destination.account, job.destination.region)
	result := "SUCCESS"
	if n := e.failRepl[job.destination]; n != 0 {
		result = "FAILURE"
		if n > 0 {
			if n == 1 {
				delete(e.failRepl, job.destination)
			} else {
				e.failRepl[job.destination] = n - 1
			}
		}
	}
	repo := dst.repositories[job.repository]
	if result == "SUCCESS" && repo == nil {
		var err error
		if repo, err = e.createRepository(dst, job.repository, "MUTABLE"); err != nil {
			result = "FAILURE"
		}
	}
	if result == "SUCCESS" {
		if _, err := repo.put(job.manifest, job.mediaType, job.tag, job.digest, e.now()); err != nil && !isCode(err, "ImageAlreadyExistsException") {
			result = "FAILURE" // e.g. an immutable tag that points elsewhere in the destination
		}
	}
	resource := "arn:aws:ecr:" + dst.region + ":" + dst.account + ":repository/" + job.repository
	e.emitEvent(dst, "aws.ecr", "ECR Replication Action", resource, replicationEventDetail{
		Result: result, RepositoryName: job.repository, ImageDigest: job.digest, ImageTag: job.tag,
		ActionType: "REPLICATE", SourceAccount: job.source.account, SourceRegion: job.source.region,
	})
}

func isCode(err error, code string) bool {
	ae, ok := err.(*apiError)
	return ok && ae.Code == code
}

// replicationEventDetail is the detail of an "ECR Replication Action" event.
type replicationEventDetail struct {
	Result         string `json:"result"`
	RepositoryName string `json:"repository-name"`
	ImageDigest    string `json:"image-digest"`
	ImageTag       string `json:"image-tag,omitempty"`
	ActionType     string `json:"action-type"`
	SourceAccount  string `json:"source-account"`
	SourceRegion   string `json:"source-region"`
}

// eventEnvelope is an EventBridge event with any detail.
type eventEnvelope struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     any      `json:"detail"`
}

// emitEvent queues an EventBridge event of world w for delivery; nothing is delivered while a
// fleet loads. Call with e.mu held.
func (e *Emulator) emitEvent(w *world, source, detailType, resource string, detail any) {
	e.emitEventResources(w, source, detailType, []string{resource}, detail)
}

func (e *Emulator) emitEventResources(w *world, source, detailType string, resources []string, detail any) {
	if e.loading || !e.hasEventSinks() {
		return
	}
	data, err := json.Marshal(eventEnvelope{
		Version: "0", ID: newUUID(), DetailType: detailType, Source: source, Account: w.account,
		Time: e.now().Format("2006-01-02T15:04:05Z"), Region: w.region, Resources: resources, Detail: detail,
	})
	if err != nil {
		return // cannot happen: plain strings
	}
	e.delivery.enqueue(data)
}
