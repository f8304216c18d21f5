// Package trigger decodes and validates the events the pinroll function
// accepts — an ECR image push, an ECR replication (a push of the replica),
// an ECS deployment state change, and the reconcile rule's scheduled
// event — into domain values.
//
// Every field is checked; every problem is reported (joined with errors.Join)
// inside an *InvalidEventError that names the field and quotes the value.
// A well-formed event that pinroll must not act on (a delete, a failed push,
// an untagged manifest, a signature) decodes without error; its SkipReason
// method says why it is skipped.
package trigger

import (
	"fmt"
	"strings"
	"time"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
)

// Kind is what an event asks pinroll to do.
type Kind string

const (
	KindPush       Kind = "push"       // ECR Image Action or ECR Replication Action: pin and deploy
	KindDeployment Kind = "deployment" // ECS Deployment State Change: verify
	KindReconcile  Kind = "reconcile"  // Scheduled Event of the reconcile rule
)

// The (source, detail-type) pairs Decode accepts.
const (
	SourceECR             = contract.SourceECR
	DetailTypeECRImage    = contract.DetailTypeECRImage
	DetailTypeReplication = contract.DetailTypeReplication
	SourceECS             = contract.SourceECS
	DetailTypeDeployment  = contract.DetailTypeDeployment
	SourceEvents          = contract.SourceEvents
	DetailTypeScheduled   = contract.DetailTypeScheduled
)

// MaxEventSize is EventBridge's own limit on an event (256 KiB).
const MaxEventSize = 256 * 1024

// Push is a validated ECR Image Action event, or an ECR Replication Action
// event: a push of the replica into the event's own account and region.
type Push struct {
	EventID           string
	Time              time.Time
	Account, Region   string // the registry that holds the image (for a replica: the destination)
	Repository        string
	Tag               string // "" for an untagged push
	Digest            string // "sha256:<64 hex>"; "" only in events real ones send without it (FAILURE)
	ManifestMediaType string
	ArtifactMediaType string
	ActionType        string // PUSH, DELETE or UPDATE_STORAGE_CLASS; REPLICATE for a replica
	Result            string // SUCCESS or FAILURE; for a replica SUCCESS or whatever else ECR said
	// ReplicatedFrom is the registry ECR copied a replica from; nil for
	// anything but an ECR Replication Action. Deploying never uses it: the
	// replica is pulled from Host, in Account and Region.
	ReplicatedFrom *Origin
}

// Origin is the registry, account and region, an ECR replica was copied from.
type Origin struct {
	Account, Region string
}

// Host is the ECR registry host of the origin.
func (o Origin) Host() string { return imageref.ECRHost(o.Account, o.Region) }

// Host is the ECR registry host the image was pushed (or replicated) to.
func (p Push) Host() string { return imageref.ECRHost(p.Account, p.Region) }

// Pushed is the image that was pushed, for imageref.Compare.
func (p Push) Pushed() imageref.Pushed {
	return imageref.Pushed{Host: p.Host(), Path: p.Repository, Tag: p.Tag, Digest: p.Digest}
}

// Image config media types that mean "this is a container image".
var imageConfigTypes = map[string]bool{
	"": true,
	"application/vnd.oci.image.config.v1+json":       true,
	"application/vnd.docker.container.image.v1+json": true,
}

// Manifest media types that can be deployed.
var imageManifestTypes = map[string]bool{
	"": true,
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.docker.distribution.manifest.v1+json":      true,
	"application/vnd.docker.distribution.manifest.v1+prettyjws": true,
}

// SkipReason returns "" when p is a deployable image push, otherwise why it is
// skipped. (The report calls such an event skipped; so does this package.)
func (p Push) SkipReason() string {
	switch {
	case p.ActionType != "PUSH" && p.ActionType != "REPLICATE":
		return fmt.Sprintf("action %s is not a push", p.ActionType)
	case p.Result != "SUCCESS" && p.ReplicatedFrom != nil:
		return fmt.Sprintf("replication result %s: the replica is not in %s", shown(p.Result), p.Host())
	case p.Result != "SUCCESS":
		return fmt.Sprintf("push result %s", p.Result)
	case p.Tag == "":
		return "untagged push (a platform manifest of a multi-arch image, or an untagged image): nothing tracks it"
	case !imageConfigTypes[strings.ToLower(p.ArtifactMediaType)]:
		return fmt.Sprintf("artifact %s is not a container image", p.ArtifactMediaType)
	case !imageManifestTypes[strings.ToLower(p.ManifestMediaType)]:
		return fmt.Sprintf("manifest %s is not a container image", p.ManifestMediaType)
	case cosignTagRE.MatchString(p.Tag):
		return fmt.Sprintf("tag %s is a cosign signature/attestation tag", p.Tag)
	case referrersRE.MatchString(p.Tag):
		return fmt.Sprintf("tag %s is an OCI referrers tag (signatures, attestations)", p.Tag)
	}
	return ""
}

// shown is a value as a reason quotes it: a plain word as it is, anything
// else quoted and truncated.
func shown(s string) string {
	if wordRE.MatchString(s) {
		return s
	}
	return quote(s)
}

// Ignore is SkipReason's former name, kept for existing callers.
func (p Push) Ignore() string { return p.SkipReason() }

// ECS deployment event names.
const (
	DeploymentInProgress = "SERVICE_DEPLOYMENT_IN_PROGRESS"
	DeploymentCompleted  = "SERVICE_DEPLOYMENT_COMPLETED"
	DeploymentFailed     = "SERVICE_DEPLOYMENT_FAILED"
)

// Deployment is a validated ECS Deployment State Change event.
type Deployment struct {
	EventID         string
	Time            time.Time
	Account, Region string
	ClusterARN      string // arn:<partition>:ecs:<region>:<account>:cluster/<cluster>
	Cluster         string
	ServiceARN      string // resources[0]: arn:<partition>:ecs:<region>:<account>:service/<cluster>/<service>
	Service         string
	EventName       string // SERVICE_DEPLOYMENT_IN_PROGRESS, _COMPLETED or _FAILED
	DeploymentID    string // "ecs-svc/…"
	Reason          string
}

// Failed reports whether the deployment failed (a circuit-breaker rollback included).
func (d Deployment) Failed() bool { return d.EventName == DeploymentFailed }

// Completed reports whether the deployment completed.
func (d Deployment) Completed() bool { return d.EventName == DeploymentCompleted }

// RolledBack reports whether ECS says it is rolling back (the deployment
// circuit breaker): "… Rolling back to deployment ecs-svc/…".
func (d Deployment) RolledBack() bool {
	r := strings.ToLower(d.Reason)
	return strings.Contains(r, "rolling back") || strings.Contains(r, "rolled back")
}

// SkipReason returns "" when the deployment has finished (completed or
// failed) and can be verified, otherwise why it is skipped.
func (d Deployment) SkipReason() string {
	if d.Completed() || d.Failed() {
		return ""
	}
	return fmt.Sprintf("deployment %s: nothing to verify until it completes or fails", d.EventName)
}

// Ignore is SkipReason's former name, kept for existing callers.
func (d Deployment) Ignore() string { return d.SkipReason() }

// Reconcile is a validated scheduled event of the reconcile rule.
type Reconcile struct {
	EventID         string
	Time            time.Time
	Account, Region string
}

// Event is one decoded event; exactly one of Push, Deployment, Reconcile is set, as Kind says.
type Event struct {
	Kind       Kind
	ID         string
	Push       *Push
	Deployment *Deployment
	Reconcile  *Reconcile
}

// SkipReason returns "" when the event calls for work, otherwise why it is skipped.
func (e Event) SkipReason() string {
	switch {
	case e.Push != nil:
		return e.Push.SkipReason()
	case e.Deployment != nil:
		return e.Deployment.SkipReason()
	case e.Reconcile != nil:
		return ""
	}
	return "empty event"
}

// Ignore is SkipReason's former name, kept for existing callers.
func (e Event) Ignore() string { return e.SkipReason() }
