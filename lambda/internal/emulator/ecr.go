package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"
)

var ecrOperations = map[string]opFunc{
	"CreateRepository":       (*Emulator).opCreateRepository,
	"DescribeRepositories":   (*Emulator).opDescribeRepositories,
	"PutImage":               (*Emulator).opPutImage,
	"DescribeImages":         (*Emulator).opDescribeImages,
	"BatchGetImage":          (*Emulator).opBatchGetImage,
	"ListImages":             (*Emulator).opListImages,
	"BatchDeleteImage":       (*Emulator).opBatchDeleteImage,
	"DeleteRepository":       (*Emulator).opDeleteRepository,
	"PutImageTagMutability":  (*Emulator).opPutImageTagMutability,
	"GetRepositoryPolicy":    (*Emulator).opGetRepositoryPolicy,
	"SetRepositoryPolicy":    (*Emulator).opSetRepositoryPolicy,
	"DeleteRepositoryPolicy": (*Emulator).opDeleteRepositoryPolicy,
	"GetRegistryPolicy":      (*Emulator).opGetRegistryPolicy,
	"PutRegistryPolicy":      (*Emulator).opPutRegistryPolicy,
	"DeleteRegistryPolicy":   (*Emulator).opDeleteRegistryPolicy,
}

// ECR limits.
const (
	ecrDefaultPage = 100
	ecrMaxPage     = 1000
	ecrMaxImageIDs = 100
)

type repository struct {
	name, arn, uri, registryID string
	createdAt                  time.Time
	tagMutability              string
	mutabilityExclusions       []exclusionFilter
	scanOnPush                 bool
	encryptionType, kmsKey     string
	policy                     string
	lifecyclePolicy            string            // "" for none (lifecycle.go)
	lifecycleEvaluatedAt       time.Time         // when RunLifecyclePolicies last applied it
	images                     []*image          // push order
	tags                       map[string]*image // tag → image
}

type image struct {
	digest, manifest, mediaType, artifactMediaType string
	size                                           int64
	children                                       []string // a manifest list's manifests
	pushedAt                                       time.Time
	tags                                           []string
	// The storage class (lifecycle.go): status "" is ACTIVE; archivedAt, activatedAt and
	// pulledAt are zero until the image is archived, restored or pulled by a task.
	status                            string
	archivedAt, activatedAt, pulledAt time.Time
}

var (
	repositoryNamePattern = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	imageTagPattern       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,299}$`)
	imageDigestPattern    = regexp.MustCompile(`^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$`)
	exclusionPattern      = regexp.MustCompile(`^[0-9a-zA-Z._*-]{1,128}$`)
	registryIDPattern     = regexp.MustCompile(`^[0-9]{12}$`)
)

// exclusionFilter is one of a repository's imageTagMutabilityExclusionFilters.
type exclusionFilter struct {
	FilterType string `json:"filterType"`
	Filter     string `json:"filter"`
}

// checkMutability validates imageTagMutability and its exclusion filters, which the
// *_WITH_EXCLUSION settings need (1 to 5 WILDCARD filters) and the others refuse.
func checkMutability(mutability string, filters []exclusionFilter) (string, error) {
	switch mutability {
	case "":
		mutability = "MUTABLE"
	case "MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION":
	default:
		return "", invalidParameter("Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]'")
	}
	withExclusion := strings.HasSuffix(mutability, "_WITH_EXCLUSION")
	switch {
	case withExclusion && len(filters) == 0:
		return "", invalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters': %s requires at least one exclusion filter", mutability)
	case !withExclusion && len(filters) > 0:
		return "", invalidParameter("Invalid parameter at 'imageTagMutabilityExclusionFilters': exclusion filters are only allowed with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION")
	case len(filters) > 5:
		return "", invalidParameter("1 validation error detected: Value at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: Member must have length less than or equal to 5")
	}
	for _, f := range filters {
		if f.FilterType != "WILDCARD" {
			return "", invalidParameter("Invalid parameter at 'filterType' failed to satisfy constraint: 'Member must satisfy enum value set: [WILDCARD]'")
		}
		if !exclusionPattern.MatchString(f.Filter) {
			return "", invalidParameter("Invalid parameter at 'filter' failed to satisfy constraint: 'must satisfy regular expression '%s''", exclusionPattern)
		}
	}
	return mutability, nil
}

// immutable reports whether a tag of the repository may not be moved to another image.
func (r *repository) immutable(tag string) bool {
	excluded := slices.ContainsFunc(r.mutabilityExclusions, func(f exclusionFilter) bool { return wildcardMatch(f.Filter, tag) })
	switch r.tagMutability {
	case "IMMUTABLE":
		return true
	case "IMMUTABLE_WITH_EXCLUSION":
		return !excluded
	case "MUTABLE_WITH_EXCLUSION":
		return excluded
	}
	return false
}

// wildcardMatch matches s against a pattern in which * stands for any run of characters.
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

func digestOf(manifest string) string {
	sum := sha256.Sum256([]byte(manifest))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// createRepository adds a repository. Call with e.mu held.
func (e *Emulator) createRepository(w *world, name, mutability string) (*repository, error) {
	if len(name) < 2 || len(name) > 256 || !repositoryNamePattern.MatchString(name) {
		return nil, invalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '%s''", repositoryNamePattern)
	}
	if _, exists := w.repositories[name]; exists {
		return nil, clientError("RepositoryAlreadyExistsException", "The repository with name '%s' already exists in the registry with id '%s'", name, w.account)
	}
	if mutability == "" {
		mutability = "MUTABLE"
	}
	r := &repository{
		name:           name,
		arn:            "arn:aws:ecr:" + w.region + ":" + w.account + ":repository/" + name,
		uri:            w.registryHost() + "/" + name,
		registryID:     w.account,
		createdAt:      e.now(),
		tagMutability:  mutability,
		encryptionType: "AES256",
		tags:           map[string]*image{},
	}
	w.repositories[name] = r
	w.repoOrder = append(w.repoOrder, name)
	return r, nil
}

// put stores a manifest (once per digest) and points tag at it, moving the tag off the image that
// had it. wantDigest, when not empty, must be the manifest's digest.
func (r *repository) put(manifest, mediaType, tag, wantDigest string, now time.Time) (*image, error) {
	if manifest == "" {
		return nil, invalidParameter("imageManifest must not be empty")
	}
	var doc struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
		Config struct {
			MediaType string `json:"mediaType"`
			Size      int64  `json:"size"`
		} `json:"config"`
		Layers []struct {
			Size int64 `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(manifest), &doc); err != nil {
		return nil, invalidParameter("Invalid parameter at 'imageManifest': not a JSON manifest: %v", err)
	}
	digest := digestOf(manifest)
	if wantDigest != "" && !imageDigestPattern.MatchString(wantDigest) {
		return nil, invalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'must satisfy regular expression '%s''", imageDigestPattern)
	}
	if wantDigest != "" && wantDigest != digest {
		return nil, clientError("ImageDigestDoesNotMatchException", "The specified image digest '%s' does not match the digest '%s' of the image manifest", wantDigest, digest)
	}
	if tag != "" && !imageTagPattern.MatchString(tag) {
		return nil, invalidParameter("Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '%s''", imageTagPattern)
	}
	switch {
	case mediaType == "" && doc.MediaType == "":
		return nil, invalidParameter("Invalid parameter at 'imageManifestMediaType': the manifest has no mediaType, so imageManifestMediaType is required")
	case mediaType == "":
		mediaType = doc.MediaType
	case doc.MediaType != "" && doc.MediaType != mediaType:
		return nil, invalidParameter("Invalid parameter at 'imageManifestMediaType': %s does not match the manifest's mediaType %s", mediaType, doc.MediaType)
	}
	img := r.image(digest)
	if img != nil && !img.pullable() {
		img.restore(now) // a push of an archived image restores it
		if tag == "" || slices.Contains(img.tags, tag) {
			return img, nil
		}
	} else if img != nil {
		if tag == "" || slices.Contains(img.tags, tag) {
			return nil, clientError("ImageAlreadyExistsException", "Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", digest, tag, r.name, r.registryID)
		}
	} else {
		size := doc.Config.Size
		for _, l := range doc.Layers {
			size += l.Size
		}
		img = &image{digest: digest, manifest: manifest, mediaType: mediaType, artifactMediaType: doc.Config.MediaType, size: size, pushedAt: now}
		for _, m := range doc.Manifests {
			img.children = append(img.children, m.Digest)
		}
		r.images = append(r.images, img)
	}
	if tag != "" {
		if old, ok := r.tags[tag]; ok && old != img {
			if r.immutable(tag) {
				return nil, clientError("ImageTagAlreadyExistsException", "The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.", tag, r.name)
			}
			old.tags = slices.DeleteFunc(old.tags, func(t string) bool { return t == tag })
		}
		r.tags[tag] = img
		img.tags = append(img.tags, tag)
	}
	return img, nil
}

func (r *repository) image(digest string) *image {
	for _, img := range r.images {
		if img.digest == digest {
			return img
		}
	}
	return nil
}

// find resolves an image id (tag and/or digest) to an image, nil if there is none.
func (r *repository) find(id imageID) *image {
	var img *image
	switch {
	case id.ImageDigest != "":
		img = r.image(id.ImageDigest)
		if img != nil && id.ImageTag != "" && !slices.Contains(img.tags, id.ImageTag) {
			return nil
		}
	case id.ImageTag != "":
		img = r.tags[id.ImageTag]
	}
	return img
}

func (r *repository) remove(img *image) {
	for _, t := range img.tags {
		delete(r.tags, t)
	}
	r.images = slices.DeleteFunc(r.images, func(i *image) bool { return i == img })
}

// Wire shapes.

type imageID struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

type repositoryOut struct {
	RepositoryArn                      string            `json:"repositoryArn"`
	RegistryID                         string            `json:"registryId"`
	RepositoryName                     string            `json:"repositoryName"`
	RepositoryURI                      string            `json:"repositoryUri"`
	CreatedAt                          epoch             `json:"createdAt"`
	ImageTagMutability                 string            `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []exclusionFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	ImageScanningConfiguration         struct {
		ScanOnPush bool `json:"scanOnPush"`
	} `json:"imageScanningConfiguration"`
	EncryptionConfiguration encryptionConfiguration `json:"encryptionConfiguration"`
}

type encryptionConfiguration struct {
	EncryptionType string `json:"encryptionType"`
	KmsKey         string `json:"kmsKey,omitempty"`
}

func (r *repository) out() repositoryOut {
	o := repositoryOut{
		RepositoryArn: r.arn, RegistryID: r.registryID, RepositoryName: r.name, RepositoryURI: r.uri,
		CreatedAt: epoch(r.createdAt), ImageTagMutability: r.tagMutability,
		ImageTagMutabilityExclusionFilters: slices.Clone(r.mutabilityExclusions),
		EncryptionConfiguration:            encryptionConfiguration{EncryptionType: r.encryptionType, KmsKey: r.kmsKey},
	}
	o.ImageScanningConfiguration.ScanOnPush = r.scanOnPush
	return o
}

type imageOut struct {
	RegistryID             string  `json:"registryId"`
	RepositoryName         string  `json:"repositoryName"`
	ImageID                imageID `json:"imageId"`
	ImageManifest          string  `json:"imageManifest"`
	ImageManifestMediaType string  `json:"imageManifestMediaType"`
}

type imageDetail struct {
	RegistryID             string   `json:"registryId"`
	RepositoryName         string   `json:"repositoryName"`
	ImageDigest            string   `json:"imageDigest"`
	ImageTags              []string `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
	ImagePushedAt          epoch    `json:"imagePushedAt"`
	ImageManifestMediaType string   `json:"imageManifestMediaType"`
	ArtifactMediaType      string   `json:"artifactMediaType,omitempty"`
	ImageStatus            string   `json:"imageStatus"`
	LastArchivedAt         *epoch   `json:"lastArchivedAt,omitempty"`
	LastActivatedAt        *epoch   `json:"lastActivatedAt,omitempty"`
	LastRecordedPullTime   *epoch   `json:"lastRecordedPullTime,omitempty"`
}

// sizeOf is an image's imageSizeInBytes: its config and layers, or for a manifest list the
// largest of its manifests (as ECR documents it).
func (r *repository) sizeOf(img *image) int64 {
	if len(img.children) == 0 {
		return img.size
	}
	var largest int64
	for _, d := range img.children {
		if child := r.image(d); child != nil && child != img {
			largest = max(largest, child.size)
		}
	}
	return largest
}

func (r *repository) detail(img *image) imageDetail {
	return imageDetail{
		RegistryID: r.registryID, RepositoryName: r.name, ImageDigest: img.digest,
		ImageTags: slices.Clone(img.tags), ImageSizeInBytes: r.sizeOf(img), ImagePushedAt: epoch(img.pushedAt),
		ImageManifestMediaType: img.mediaType, ArtifactMediaType: img.artifactMediaType,
		ImageStatus: img.statusOf(), LastArchivedAt: epochIfSet(img.archivedAt),
		LastActivatedAt: epochIfSet(img.activatedAt), LastRecordedPullTime: epochIfSet(img.pulledAt),
	}
}

func epochIfSet(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	return epochPtr(t)
}

type imageFailure struct {
	ImageID       imageID `json:"imageId"`
	FailureCode   string  `json:"failureCode"`
	FailureReason string  `json:"failureReason"`
}

// repositoryRequest is the part every image operation shares.
type repositoryRequest struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
}

// lookupRepository finds the named repository of the acting account's registry (w); a registryId
// of another account is refused (see lookupReadableRepository). Call with e.mu held.
func (e *Emulator) lookupRepository(w *world, in repositoryRequest) (*repository, error) {
	if in.RegistryID != "" && in.RegistryID != w.account {
		return nil, crossAccountDenied(w, in)
	}
	r, ok := w.repositories[in.RepositoryName]
	if !ok {
		return nil, clientError("RepositoryNotFoundException", "The repository with name '%s' does not exist in the registry with id '%s'", in.RepositoryName, w.account)
	}
	return r, nil
}

// resolve finds the image an id of BatchGetImage or BatchDeleteImage names, or the failure ECR
// reports for it: MissingDigestAndTag, InvalidImageDigest, InvalidImageTag,
// ImageTagDoesNotMatchDigest or ImageNotFound.
func (r *repository) resolve(id imageID) (*image, *imageFailure) {
	fail := func(code, reason string) (*image, *imageFailure) {
		return nil, &imageFailure{ImageID: id, FailureCode: code, FailureReason: reason}
	}
	switch {
	case id.ImageDigest == "" && id.ImageTag == "":
		return fail("MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null")
	case id.ImageDigest != "" && !imageDigestPattern.MatchString(id.ImageDigest):
		return fail("InvalidImageDigest", "Invalid request parameters: image digest should satisfy the regex '"+imageDigestPattern.String()+"'")
	case id.ImageTag != "" && !imageTagPattern.MatchString(id.ImageTag):
		return fail("InvalidImageTag", "Invalid request parameters: image tag should satisfy the regex '"+imageTagPattern.String()+"'")
	}
	if id.ImageDigest != "" && id.ImageTag != "" {
		img := r.image(id.ImageDigest)
		if img != nil && !slices.Contains(img.tags, id.ImageTag) {
			if _, tagged := r.tags[id.ImageTag]; tagged {
				return fail("ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag does not match the digest")
			}
		}
	}
	img := r.find(id)
	if img == nil {
		return fail("ImageNotFound", "Requested image not found")
	}
	return img, nil
}

// checkBatchImageIDs applies the list limits of BatchGetImage and BatchDeleteImage (1 to 100
// ids); each id's own problems are per-image failures, not errors.
func checkBatchImageIDs(ids []imageID) error {
	if len(ids) == 0 {
		return invalidParameter("1 validation error detected: Value at 'imageIds' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(ids) > ecrMaxImageIDs {
		return invalidParameter("1 validation error detected: Value at 'imageIds' failed to satisfy constraint: Member must have length less than or equal to %d (got %d)", ecrMaxImageIDs, len(ids))
	}
	return nil
}

func checkImageIDs(ids []imageID) error {
	if len(ids) > ecrMaxImageIDs {
		return invalidParameter("1 validation error detected: Value at 'imageIds' failed to satisfy constraint: Member must have length less than or equal to %d (got %d)", ecrMaxImageIDs, len(ids))
	}
	for _, id := range ids {
		if id.ImageDigest == "" && id.ImageTag == "" {
			return invalidParameter("Invalid parameter at 'imageIds': an image id needs imageDigest or imageTag")
		}
	}
	return nil
}

func ecrPageSize(maxResults *int) (int, error) {
	if maxResults == nil {
		return ecrDefaultPage, nil
	}
	if *maxResults < 1 || *maxResults > ecrMaxPage {
		return 0, invalidParameter("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", *maxResults, ecrMaxPage)
	}
	return *maxResults, nil
}

// Operations.

func (e *Emulator) opCreateRepository(rc *request) (any, error) {
	var in struct {
		RepositoryName                     string            `json:"repositoryName"`
		ImageTagMutability                 string            `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []exclusionFilter `json:"imageTagMutabilityExclusionFilters"`
		RegistryID                         string            `json:"registryId"`
		ImageScanningConfiguration         *struct {
			ScanOnPush bool `json:"scanOnPush"`
		} `json:"imageScanningConfiguration"`
		EncryptionConfiguration *encryptionConfiguration `json:"encryptionConfiguration"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := e.checkRegistryID(rc, in.RegistryID); err != nil {
		return nil, err
	}
	mutability, err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	encryption := encryptionConfiguration{EncryptionType: "AES256"}
	if in.EncryptionConfiguration != nil {
		encryption = *in.EncryptionConfiguration
		switch encryption.EncryptionType {
		case "AES256":
			if encryption.KmsKey != "" {
				return nil, invalidParameter("Invalid parameter at 'encryptionConfiguration': kmsKey can only be given with the KMS or KMS_DSSE encryption type")
			}
		case "KMS", "KMS_DSSE":
			if encryption.KmsKey == "" {
				// The AWS managed key of ECR in this account and region.
				encryption.KmsKey = "arn:aws:kms:" + rc.region + ":" + rc.account + ":key/" + awsManagedECRKey
			}
		default:
			return nil, invalidParameter("Invalid parameter at 'encryptionConfiguration.encryptionType' failed to satisfy constraint: 'Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]'")
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.createRepository(e.world(rc), in.RepositoryName, mutability)
	if err != nil {
		return nil, err
	}
	r.mutabilityExclusions = in.ImageTagMutabilityExclusionFilters
	r.encryptionType, r.kmsKey = encryption.EncryptionType, encryption.KmsKey
	if in.ImageScanningConfiguration != nil {
		r.scanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	return map[string]any{"repository": r.out()}, nil
}

// awsManagedECRKey stands for the id of the account's AWS managed key aws/ecr.
const awsManagedECRKey = "00000000-0000-4000-8000-000000000ec2"

// checkRegistryID refuses a registryId that is malformed or not the acting account's registry.
func (e *Emulator) checkRegistryID(rc *request, id string) error {
	if id == "" {
		return nil
	}
	if !registryIDPattern.MatchString(id) {
		return invalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''")
	}
	if id != rc.account {
		return invalidParameter("Invalid parameter at 'registryId': registry %s is not the caller's registry (%s)", id, rc.account)
	}
	return nil
}

func (e *Emulator) opDescribeRepositories(rc *request) (any, error) {
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       string   `json:"nextToken"`
		MaxResults      *int     `json:"maxResults"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size, err := ecrPageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	if len(in.RepositoryNames) > 0 && (in.MaxResults != nil || in.NextToken != "") {
		return nil, invalidParameter("Cannot specify maxResults or nextToken with repositoryNames")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	var repos []*repository
	if len(in.RepositoryNames) > 0 {
		for _, name := range in.RepositoryNames {
			r, err := e.lookupRepository(w, repositoryRequest{RegistryID: in.RegistryID, RepositoryName: name})
			if err != nil {
				return nil, err
			}
			repos = append(repos, r)
		}
	} else {
		if in.RegistryID != "" && in.RegistryID != w.account {
			return nil, crossAccountDenied(w, repositoryRequest{RegistryID: in.RegistryID})
		}
		for _, name := range w.repoOrder {
			repos = append(repos, w.repositories[name])
		}
	}
	page, next, err := paginate(repos, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	out := make([]repositoryOut, 0, len(page))
	for _, r := range page {
		out = append(out, r.out())
	}
	return pageOut("repositories", out, next), nil
}

func (e *Emulator) opPutImage(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		ImageManifest          string `json:"imageManifest"`
		ImageManifestMediaType string `json:"imageManifestMediaType"`
		ImageTag               string `json:"imageTag"`
		ImageDigest            string `json:"imageDigest"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.lookupRepository(e.world(rc), in.repositoryRequest)
	if err != nil {
		return nil, err
	}
	img, err := r.put(in.ImageManifest, in.ImageManifestMediaType, in.ImageTag, in.ImageDigest, e.now())
	if err != nil {
		return nil, err
	}
	e.pushed(e.world(rc), r, img, in.ImageTag)
	return map[string]any{"image": imageOut{
		RegistryID: r.registryID, RepositoryName: r.name,
		ImageID:       imageID{ImageDigest: img.digest, ImageTag: in.ImageTag},
		ImageManifest: img.manifest, ImageManifestMediaType: img.mediaType,
	}}, nil
}

type tagStatusFilter struct {
	TagStatus   string `json:"tagStatus"`
	ImageStatus string `json:"imageStatus"` // default: ACTIVE images only, as documented
}

func (f *tagStatusFilter) keep(img *image) (bool, error) {
	if f == nil {
		f = &tagStatusFilter{}
	}
	switch f.ImageStatus {
	case "":
		if img.statusOf() != statusActive {
			return false, nil
		}
	case "ANY":
	case statusActive, statusArchived, statusActivating:
		if img.statusOf() != f.ImageStatus {
			return false, nil
		}
	default:
		return false, invalidParameter("Invalid parameter at 'filter.imageStatus': %q is not one of ACTIVE, ARCHIVED, ACTIVATING, ANY", f.ImageStatus)
	}
	switch f.TagStatus {
	case "", "ANY":
		return true, nil
	case "TAGGED":
		return len(img.tags) > 0, nil
	case "UNTAGGED":
		return len(img.tags) == 0, nil
	}
	return false, invalidParameter("Invalid parameter at 'filter.tagStatus': %q is not one of TAGGED, UNTAGGED, ANY", f.TagStatus)
}

func (e *Emulator) opDescribeImages(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		ImageIDs   []imageID        `json:"imageIds"`
		NextToken  string           `json:"nextToken"`
		MaxResults *int             `json:"maxResults"`
		Filter     *tagStatusFilter `json:"filter"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := checkImageIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	size, err := ecrPageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	if len(in.ImageIDs) > 0 && (in.MaxResults != nil || in.NextToken != "") {
		return nil, invalidParameter("Cannot specify maxResults or nextToken with imageIds")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.lookupReadableRepository(e.world(rc), in.repositoryRequest)
	if err != nil {
		return nil, err
	}
	if len(in.ImageIDs) > 0 {
		var details []imageDetail
		seen := map[*image]bool{}
		for _, id := range in.ImageIDs {
			img := r.find(id)
			if img == nil {
				return nil, clientError("ImageNotFoundException", "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'", orNull(id.ImageDigest), orNull(id.ImageTag), r.name, r.registryID)
			}
			if !seen[img] {
				seen[img] = true
				details = append(details, r.detail(img))
			}
		}
		return map[string]any{"imageDetails": details}, nil
	}
	var matching []*image
	for _, img := range r.images {
		keep, err := in.Filter.keep(img)
		if err != nil {
			return nil, err
		}
		if keep {
			matching = append(matching, img)
		}
	}
	page, next, err := paginate(matching, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	details := make([]imageDetail, 0, len(page))
	for _, img := range page {
		details = append(details, r.detail(img))
	}
	return pageOut("imageDetails", details, next), nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

func (e *Emulator) opBatchGetImage(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		ImageIDs           []imageID `json:"imageIds"`
		AcceptedMediaTypes []string  `json:"acceptedMediaTypes"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := checkBatchImageIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.lookupReadableRepository(e.world(rc), in.repositoryRequest)
	if err != nil {
		return nil, err
	}
	images := []imageOut{}
	failures := []imageFailure{}
	for _, id := range in.ImageIDs {
		img, failure := r.resolve(id)
		if failure != nil {
			failures = append(failures, *failure)
			continue
		}
		if !img.pullable() {
			failures = append(failures, imageFailure{ImageID: id, FailureCode: "ImageNotFound", FailureReason: "Requested image not found: it is " + img.statusOf() + " (restore it with UpdateImageStorageClass)"})
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, img.mediaType) {
			failures = append(failures, imageFailure{ImageID: id, FailureCode: "UnsupportedImageType", FailureReason: "The image's manifest media type " + img.mediaType + " is not among acceptedMediaTypes"})
			continue
		}
		images = append(images, imageOut{
			RegistryID: r.registryID, RepositoryName: r.name,
			ImageID:       imageID{ImageDigest: img.digest, ImageTag: id.ImageTag},
			ImageManifest: img.manifest, ImageManifestMediaType: img.mediaType,
		})
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func (e *Emulator) opListImages(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		NextToken  string           `json:"nextToken"`
		MaxResults *int             `json:"maxResults"`
		Filter     *tagStatusFilter `json:"filter"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size, err := ecrPageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.lookupRepository(e.world(rc), in.repositoryRequest)
	if err != nil {
		return nil, err
	}
	var ids []imageID
	for _, img := range r.images {
		keep, err := in.Filter.keep(img)
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		if len(img.tags) == 0 {
			ids = append(ids, imageID{ImageDigest: img.digest})
		}
		for _, t := range img.tags {
			ids = append(ids, imageID{ImageDigest: img.digest, ImageTag: t})
		}
	}
	page, next, err := paginate(ids, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	if page == nil {
		page = []imageID{}
	}
	return pageOut("imageIds", page, next), nil
}

func (e *Emulator) opBatchDeleteImage(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		ImageIDs []imageID `json:"imageIds"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := checkBatchImageIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.lookupRepository(e.world(rc), in.repositoryRequest)
	if err != nil {
		return nil, err
	}
	deleted := []imageID{}
	failures := []imageFailure{}
	for _, id := range in.ImageIDs {
		img, failure := r.resolve(id)
		if failure != nil {
			failures = append(failures, *failure)
			continue
		}
		if lists := r.listsReferencing(img); len(lists) > 0 && (id.ImageDigest != "" || len(img.tags) == 1) {
			failures = append(failures, imageFailure{ImageID: id, FailureCode: "ImageReferencedByManifestList",
				FailureReason: "Requested image referenced by manifest list: [" + strings.Join(lists, ", ") + "]"})
			continue
		}
		if id.ImageDigest == "" {
			// By tag: the tag goes; the image goes with its last tag.
			delete(r.tags, id.ImageTag)
			img.tags = slices.DeleteFunc(img.tags, func(t string) bool { return t == id.ImageTag })
			if len(img.tags) == 0 {
				r.remove(img)
			}
			deleted = append(deleted, imageID{ImageDigest: img.digest, ImageTag: id.ImageTag})
			continue
		}
		r.remove(img)
		if len(img.tags) == 0 {
			deleted = append(deleted, imageID{ImageDigest: img.digest})
		}
		for _, t := range img.tags {
			deleted = append(deleted, imageID{ImageDigest: img.digest, ImageTag: t})
		}
	}
	return map[string]any{"imageIds": deleted, "failures": failures}, nil
}

// listsReferencing returns the digests of the repository's manifest lists that refer to img.
func (r *repository) listsReferencing(img *image) []string {
	var out []string
	for _, x := range r.images {
		if x != img && slices.Contains(x.children, img.digest) {
			out = append(out, x.digest)
		}
	}
	return out
}
