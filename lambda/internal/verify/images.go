package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/report"
)

// Guarded digests: a digest a service pins must stay in ECR, and active. An ECR lifecycle rule
// that expires or archives it breaks the service the next time it starts a task
// (amazon-ecs-agent#4226), and a rollback to the revision that pinned it. Reconciliation and
// `pinroll verify` describe every pinned digest — 100 image ids a DescribeImages call, per
// repository — and report those ECR can no longer serve.

// DescribeImagesBatch is DescribeImages' maximum number of image ids.
const DescribeImagesBatch = 100

// ImageState is what ECR says about one image.
type ImageState struct {
	Digest   string
	PushedAt time.Time
	// Status is ACTIVE, ARCHIVED or ACTIVATING; ACTIVE when ECR says nothing (an older API).
	Status     ecrtypes.ImageStatus
	ArchivedAt time.Time
	Tags       []string
}

// Images holds what DescribeImages answered, by digest and by tag.
type Images struct {
	byKey   map[string]ImageState
	noRepos map[string]bool // registry/repository keys ECR said do not exist
}

func repoKey(account, repository string) string { return account + "/" + repository }

// Digest returns what ECR said about repository@digest in the registry of account.
func (im *Images) Digest(account, repository, digest string) (ImageState, bool) {
	st, ok := im.byKey[repoKey(account, repository)+"@"+digest]
	return st, ok
}

// Tag returns the image repository:tag points at in the registry of account.
func (im *Images) Tag(account, repository, tag string) (ImageState, bool) {
	st, ok := im.byKey[repoKey(account, repository)+":"+tag]
	return st, ok
}

func (im *Images) add(account, repository string, d ecrtypes.ImageDetail) {
	if im.byKey == nil {
		im.byKey = map[string]ImageState{}
	}
	st := ImageState{
		Digest: aws.ToString(d.ImageDigest), PushedAt: aws.ToTime(d.ImagePushedAt),
		Status: d.ImageStatus, ArchivedAt: aws.ToTime(d.LastArchivedAt), Tags: d.ImageTags,
	}
	if st.Status == "" {
		st.Status = ecrtypes.ImageStatusActive
	}
	key := repoKey(account, repository)
	im.byKey[key+"@"+st.Digest] = st
	for _, tag := range d.ImageTags {
		im.byKey[key+":"+tag] = st
	}
}

// Query collects image ids to describe, per registry repository, each id once.
type Query struct {
	ids   map[string][]ecrtypes.ImageIdentifier
	repos map[string][2]string // key → account, repository
	order []string
	seen  map[string]bool
}

func (q *Query) add(account, repository, id string, ident ecrtypes.ImageIdentifier) {
	if q.ids == nil {
		q.ids, q.repos, q.seen = map[string][]ecrtypes.ImageIdentifier{}, map[string][2]string{}, map[string]bool{}
	}
	key := repoKey(account, repository)
	if q.seen[key+id] {
		return
	}
	q.seen[key+id] = true
	if _, ok := q.ids[key]; !ok {
		q.order = append(q.order, key)
		q.repos[key] = [2]string{account, repository}
	}
	q.ids[key] = append(q.ids[key], ident)
}

// Digest asks for repository@digest in the registry of account.
func (q *Query) Digest(account, repository, digest string) {
	q.add(account, repository, "@"+digest, ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)})
}

// Tag asks for repository:tag in the registry of account.
func (q *Query) Tag(account, repository, tag string) {
	q.add(account, repository, ":"+tag, ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)})
}

// Describe asks ECR for every id, DescribeImagesBatch a call, per repository, and adds the
// answers to im: ⌈ids/100⌉ calls per repository when every id exists. ECR fails a whole call
// when one id is unknown (a tag deleted, a digest expired by a lifecycle rule); such a batch is
// split until the unknown ids are isolated and left out. A repository that does not exist
// holds nothing.
func (q *Query) Describe(ctx context.Context, client ECR, im *Images) error {
	for _, key := range q.order {
		account, repository := q.repos[key][0], q.repos[key][1]
		details, err := DescribeImages(ctx, client, account, repository, q.ids[key])
		var noRepo *ecrtypes.RepositoryNotFoundException
		if errors.As(err, &noRepo) {
			if im.noRepos == nil {
				im.noRepos = map[string]bool{}
			}
			im.noRepos[key] = true
			continue
		}
		if err != nil {
			return err
		}
		for _, d := range details {
			im.add(account, repository, d)
		}
	}
	return nil
}

// DescribeImages describes ids of one repository of the registry of account,
// DescribeImagesBatch a call: ⌈ids/100⌉ calls when every id exists. ECR fails a whole call
// when one id is unknown; such a batch is split until the unknown ids are isolated and left
// out. A repository that does not exist is an error (a RepositoryNotFoundException).
func DescribeImages(ctx context.Context, client ECR, account, repository string, ids []ecrtypes.ImageIdentifier) ([]ecrtypes.ImageDetail, error) {
	var out []ecrtypes.ImageDetail
	for batch := range slices.Chunk(ids, DescribeImagesBatch) {
		details, err := describeImages(ctx, client, account, repository, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, details...)
	}
	return out, nil
}

// describeImages describes one batch, splitting it when ECR refuses it for an unknown id.
func describeImages(ctx context.Context, client ECR, account, repository string, batch []ecrtypes.ImageIdentifier) ([]ecrtypes.ImageDetail, error) {
	out, err := client.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId: aws.String(account), RepositoryName: aws.String(repository), ImageIds: batch,
	})
	var notFound *ecrtypes.ImageNotFoundException
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case err == nil:
		return out.ImageDetails, nil
	case errors.As(err, &noRepo):
		return nil, fmt.Errorf("describe images of %s: %w", repository, err)
	case !errors.As(err, &notFound):
		return nil, fmt.Errorf("describe images of %s: %w", repository, err)
	case len(batch) == 1:
		return nil, nil
	}
	half := len(batch) / 2
	first, err := describeImages(ctx, client, account, repository, batch[:half])
	if err != nil {
		return nil, err
	}
	second, err := describeImages(ctx, client, account, repository, batch[half:])
	return append(first, second...), err
}

// Pin is one digest a revision of a service pins.
type Pin struct {
	Account, Cluster, Service string // the service
	Revision                  string // family:revision
	Previous                  bool   // the revision a rollback restores (pinroll:previous)
	Image                     string // the reference as the container names it
	Registry, Repository      string // the ECR registry's account and the repository
	Digest                    string
}

// Describer describes a task definition revision (discover.Discoverer, which caches).
type Describer interface {
	Describe(ctx context.Context, ref string) (*discover.TaskDefinition, error)
}

var _ Describer = (*discover.Discoverer)(nil)

// Pins lists the ECR digests svc pins in td, its current revision, and in the revision td's
// pinroll:previous tag names — the one a rollback restores — described through d. checkable
// says which registries (account, region) may be asked; images of others are left out. A
// previous revision ECS no longer knows is left out too: no rollback can restore it.
func Pins(ctx context.Context, d Describer, svc discover.Service, td *discover.TaskDefinition, checkable func(account, region string) bool) ([]Pin, error) {
	if td == nil || td.Definition == nil {
		return nil, nil
	}
	pins := pinsOf(svc, td.Definition, false, checkable)
	previous := ""
	for _, t := range td.Tags {
		if aws.ToString(t.Key) == contract.TagPrevious {
			previous = aws.ToString(t.Value)
		}
	}
	if previous == "" || previous == aws.ToString(td.Definition.TaskDefinitionArn) {
		return pins, nil
	}
	prev, err := d.Describe(ctx, previous)
	var gone *ecstypes.ClientException
	switch {
	case errors.As(err, &gone):
		return pins, nil
	case err != nil:
		return nil, err
	}
	return append(pins, pinsOf(svc, prev.Definition, true, checkable)...), nil
}

func pinsOf(svc discover.Service, td *ecstypes.TaskDefinition, previous bool, checkable func(account, region string) bool) []Pin {
	if td == nil {
		return nil
	}
	var pins []Pin
	for _, c := range td.ContainerDefinitions {
		image := aws.ToString(c.Image)
		ref, err := imageref.Parse(image)
		if err != nil || ref.Digest == "" {
			continue
		}
		registry, ok := imageref.ParseECRHost(ref.Host)
		if !ok || (checkable != nil && !checkable(registry.Account, registry.Region)) {
			continue
		}
		pins = append(pins, Pin{
			Account: svc.Account(), Cluster: svc.Cluster, Service: svc.Name,
			Revision: report.Revision(aws.ToString(td.TaskDefinitionArn)), Previous: previous, Image: image,
			Registry: registry.Account, Repository: ref.Path, Digest: ref.Digest,
		})
	}
	return pins
}

// Ask adds every pin's digest to q.
func Ask(q *Query, pins []Pin) {
	for _, p := range pins {
		q.Digest(p.Registry, p.Repository, p.Digest)
	}
}

// Missing returns, for every pin whose digest ECR does not hold, or holds but not ACTIVE, the
// report entry: the service, the revision, the image, why, and the lifecycle action to look at.
// Each service, revision and image once.
func Missing(pins []Pin, im *Images) []report.MissingImage {
	var out []report.MissingImage
	seen := map[string]bool{}
	for _, p := range pins {
		why := im.why(p)
		key := p.Account + "/" + p.Cluster + "/" + p.Service + "/" + p.Revision + "/" + p.Image
		if why == "" || seen[key] {
			continue
		}
		seen[key] = true
		if p.Previous {
			why = "in the previous revision, which `pinroll rollback` restores: " + why
		}
		out = append(out, report.MissingImage{Account: p.Account, Cluster: p.Cluster, Service: p.Service, Revision: p.Revision, Image: p.Image, Why: why})
	}
	return out
}

// why says why ECR cannot serve the pin's digest, "" when it can.
func (im *Images) why(p Pin) string {
	registry := ""
	if p.Registry != "" {
		registry = " --registry-id " + p.Registry
	}
	if im.noRepos[repoKey(p.Registry, p.Repository)] {
		return fmt.Sprintf("not in ECR (expired or deleted): repository %s does not exist in registry %s; tasks cannot pull it (CannotPullContainerError) — recreate it and push the image, or deploy an image that exists", p.Repository, p.Registry)
	}
	st, ok := im.Digest(p.Registry, p.Repository, p.Digest)
	switch {
	case !ok:
		return fmt.Sprintf("not in ECR (expired or deleted): an ECR lifecycle rule expired it, or someone deleted it — see `aws ecr get-lifecycle-policy%s --repository-name %s`; tasks cannot pull it (CannotPullContainerError): push the image again, or deploy a digest that exists", registry, p.Repository)
	case st.Status == ecrtypes.ImageStatusArchived:
		since := ""
		if !st.ArchivedAt.IsZero() {
			since = " since " + st.ArchivedAt.UTC().Format(time.RFC3339)
		}
		return fmt.Sprintf("archived%s (ECR archive storage class; tasks cannot pull it): restore it with `aws ecr update-image-storage-class%s --repository-name %s --image-id imageDigest=%s --target-storage-class STANDARD`, and keep pinned images out of the lifecycle policy's transition rule", since, registry, p.Repository, p.Digest)
	case st.Status != ecrtypes.ImageStatusActive:
		return fmt.Sprintf("%s: being restored from the ECR archive; tasks cannot pull it until it is ACTIVE", strings.ToLower(string(st.Status)))
	}
	return ""
}
