package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ECR lifecycle policies and the archive storage class: PutLifecyclePolicy, GetLifecyclePolicy,
// DeleteLifecyclePolicy and UpdateImageStorageClass, and RunLifecyclePolicies, which applies every
// repository's policy now (ECR evaluates them within 24 hours of a change; a test cannot wait).
//
// An archived image (storage class ARCHIVE, imageStatus ARCHIVED) can still be described and
// listed, but not pulled: a task whose image is archived stops with CannotPullContainerError, as
// for a missing digest. A push of its manifest, or UpdateImageStorageClass to STANDARD, restores it.

func init() {
	ecrOperations["PutLifecyclePolicy"] = (*Emulator).opPutLifecyclePolicy
	ecrOperations["GetLifecyclePolicy"] = (*Emulator).opGetLifecyclePolicy
	ecrOperations["DeleteLifecyclePolicy"] = (*Emulator).opDeleteLifecyclePolicy
	ecrOperations["UpdateImageStorageClass"] = (*Emulator).opUpdateImageStorageClass
}

// The lifecyclePolicyText length limits of the API reference, and the minimum time an image
// stays archived before a lifecycle rule may expire it.
const (
	minLifecyclePolicyText = 100
	maxLifecyclePolicyText = 30720
	minArchiveDays         = 90
	maxTagPatternWildcards = 4
)

// Image statuses (imageStatus) and storage classes.
const (
	statusActive     = "ACTIVE"
	statusArchived   = "ARCHIVED"
	statusActivating = "ACTIVATING"
)

// lifecyclePolicy is a parsed, validated lifecycle policy document.
type lifecyclePolicy struct {
	Rules []lifecycleRule `json:"rules"`
}

type lifecycleRule struct {
	RulePriority *int             `json:"rulePriority"`
	Description  string           `json:"description,omitempty"`
	Selection    *lifecycleSelect `json:"selection"`
	Action       *lifecycleAction `json:"action"`
	priority     int              // RulePriority, once checked
	selection    lifecycleSelect  // Selection, once checked (storageClass defaulted)
	action       lifecycleAction  // Action, once checked
}

type lifecycleSelect struct {
	TagStatus      string   `json:"tagStatus"`
	TagPatternList []string `json:"tagPatternList,omitempty"`
	TagPrefixList  []string `json:"tagPrefixList,omitempty"`
	StorageClass   string   `json:"storageClass,omitempty"`
	CountType      string   `json:"countType"`
	CountUnit      string   `json:"countUnit,omitempty"`
	CountNumber    *int     `json:"countNumber"`
}

type lifecycleAction struct {
	Type               string `json:"type"`
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
}

// lifecycleInvalid is ECR's answer to a policy that does not validate.
func lifecycleInvalid(format string, args ...any) error {
	return clientError("InvalidParameterException", "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: %s'", fmt.Sprintf(format, args...))
}

// parseLifecyclePolicy validates a policy document as the ECR user guide's "Lifecycle policy
// properties" describe it.
func parseLifecyclePolicy(text string) (*lifecyclePolicy, error) {
	if text == "" {
		return nil, invalidParameter("1 validation error detected: Value null at 'lifecyclePolicyText' failed to satisfy constraint: Member must not be null")
	}
	if len(text) < minLifecyclePolicyText || len(text) > maxLifecyclePolicyText {
		return nil, invalidParameter("1 validation error detected: Value at 'lifecyclePolicyText' failed to satisfy constraint: Member must have length between %d and %d", minLifecyclePolicyText, maxLifecyclePolicyText)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	var p lifecyclePolicy
	if err := dec.Decode(&p); err != nil {
		return nil, lifecycleInvalid("%v", err)
	}
	if len(p.Rules) == 0 {
		return nil, lifecycleInvalid("object has missing required properties ([\"rules\"]) or no rule")
	}
	priorities := map[int]bool{}
	untagged := 0
	anyPriority, highest := -1, -1
	for i := range p.Rules {
		r := &p.Rules[i]
		if err := r.check(); err != nil {
			return nil, err
		}
		if priorities[r.priority] {
			return nil, lifecycleInvalid("rulePriority %d is used by more than one rule; each rule needs its own", r.priority)
		}
		priorities[r.priority] = true
		highest = max(highest, r.priority)
		switch r.selection.TagStatus {
		case "untagged":
			untagged++
		case "any":
			anyPriority = r.priority
		}
	}
	if untagged > 1 {
		return nil, lifecycleInvalid("only one rule may select untagged images")
	}
	if anyPriority >= 0 && anyPriority != highest {
		return nil, lifecycleInvalid("a rule with tagStatus any must have the highest rulePriority (%d is not %d)", anyPriority, highest)
	}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].priority < p.Rules[j].priority })
	return &p, nil
}

func (r *lifecycleRule) check() error {
	if r.RulePriority == nil {
		return lifecycleInvalid("a rule has no rulePriority")
	}
	if *r.RulePriority < 1 {
		return lifecycleInvalid("rulePriority must be a positive integer, not %d", *r.RulePriority)
	}
	r.priority = *r.RulePriority
	if r.Selection == nil {
		return lifecycleInvalid("rule %d has no selection", r.priority)
	}
	if r.Action == nil {
		return lifecycleInvalid("rule %d has no action", r.priority)
	}
	s, a := *r.Selection, *r.Action
	switch s.TagStatus {
	case "tagged":
		switch {
		case len(s.TagPatternList) == 0 && len(s.TagPrefixList) == 0:
			return lifecycleInvalid("rule %d: tagStatus tagged needs a tagPatternList or a tagPrefixList", r.priority)
		case len(s.TagPatternList) > 0 && len(s.TagPrefixList) > 0:
			return lifecycleInvalid("rule %d: give tagPatternList or tagPrefixList, not both", r.priority)
		}
	case "untagged", "any":
		if len(s.TagPatternList) > 0 || len(s.TagPrefixList) > 0 {
			return lifecycleInvalid("rule %d: tagPatternList and tagPrefixList are only allowed with tagStatus tagged", r.priority)
		}
	default:
		return lifecycleInvalid("rule %d: tagStatus %q is not one of tagged, untagged, any", r.priority, s.TagStatus)
	}
	for _, p := range s.TagPatternList {
		if p == "" || strings.Count(p, "*") > maxTagPatternWildcards {
			return lifecycleInvalid("rule %d: tag pattern %q: a pattern is not empty and has at most %d wildcards", r.priority, p, maxTagPatternWildcards)
		}
	}
	if slices.Contains(s.TagPrefixList, "") {
		return lifecycleInvalid("rule %d: an empty tag prefix", r.priority)
	}
	if s.StorageClass == "" {
		s.StorageClass = "standard"
	}
	switch s.CountType {
	case "imageCountMoreThan":
		if s.CountUnit != "" {
			return lifecycleInvalid("rule %d: countUnit is not allowed with countType imageCountMoreThan", r.priority)
		}
	case "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned":
		if s.CountUnit != "days" {
			return lifecycleInvalid("rule %d: countType %s needs countUnit days", r.priority, s.CountType)
		}
	default:
		return lifecycleInvalid("rule %d: countType %q is not one of imageCountMoreThan, sinceImagePushed, sinceImagePulled, sinceImageTransitioned", r.priority, s.CountType)
	}
	if s.CountNumber == nil || *s.CountNumber < 1 {
		return lifecycleInvalid("rule %d: countNumber must be a positive integer", r.priority)
	}
	switch {
	case s.StorageClass != "standard" && s.StorageClass != "archive":
		return lifecycleInvalid("rule %d: storageClass %q is not one of standard, archive", r.priority, s.StorageClass)
	case s.CountType == "sinceImageTransitioned" && s.StorageClass != "archive":
		return lifecycleInvalid("rule %d: countType sinceImageTransitioned selects archived images: storageClass must be archive", r.priority)
	case s.CountType != "sinceImageTransitioned" && s.StorageClass != "standard":
		return lifecycleInvalid("rule %d: countType %s selects images in the standard storage class only", r.priority, s.CountType)
	}
	switch a.Type {
	case "expire":
		if a.TargetStorageClass != "" {
			return lifecycleInvalid("rule %d: targetStorageClass is only allowed with action type transition", r.priority)
		}
		if s.StorageClass == "archive" && *s.CountNumber < minArchiveDays {
			return lifecycleInvalid("rule %d: archived images stay in the archive at least %d days; countNumber %d is less", r.priority, minArchiveDays, *s.CountNumber)
		}
	case "transition":
		if a.TargetStorageClass != "archive" {
			return lifecycleInvalid("rule %d: action type transition needs targetStorageClass archive", r.priority)
		}
		if s.StorageClass == "archive" {
			return lifecycleInvalid("rule %d: archived images cannot be transitioned again", r.priority)
		}
	default:
		return lifecycleInvalid("rule %d: action type %q is not one of expire, transition", r.priority, a.Type)
	}
	r.selection, r.action = s, a
	return nil
}

// tagsMatch reports whether an image's tags satisfy the rule's tag requirements: with several
// patterns or prefixes, every one must match one of the image's tags.
func (s *lifecycleSelect) tagsMatch(img *image) bool {
	switch s.TagStatus {
	case "untagged":
		return len(img.tags) == 0
	case "any":
		return true
	}
	if len(img.tags) == 0 {
		return false
	}
	for _, p := range s.TagPatternList {
		if !slices.ContainsFunc(img.tags, func(t string) bool { return wildcardMatch(p, t) }) {
			return false
		}
	}
	for _, p := range s.TagPrefixList {
		if !slices.ContainsFunc(img.tags, func(t string) bool { return strings.HasPrefix(t, p) }) {
			return false
		}
	}
	return true
}

// LifecycleAction is one thing RunLifecyclePolicies did to an image.
type LifecycleAction struct {
	Account, Region, Repository string
	Digest                      string
	Tags                        []string // the image's tags when the rule acted
	Rule                        int      // the rulePriority of the rule that acted
	Action                      string   // "expire" (deleted) or "transition" (archived)
}

// RunLifecyclePolicies applies every repository's lifecycle policy now, in every account and
// region, as ECR does within 24 hours of a change: rules in rulePriority order; each image is
// acted on by at most one rule, and an image whose tags match a rule of higher priority is left
// to that rule; counts and ages are by imagePushedAt (sinceImagePulled: the last pull, else the
// push; sinceImageTransitioned: the archiving). An image that a manifest list which stays
// refers to is kept. It returns what it did, in order.
func (e *Emulator) RunLifecyclePolicies() []LifecycleAction {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var done []LifecycleAction
	keys := make([]worldKey, 0, len(e.worlds))
	for k := range e.worlds {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b worldKey) int { return strings.Compare(a.account+a.region, b.account+b.region) })
	for _, k := range keys {
		w := e.worlds[k]
		for _, name := range w.repoOrder {
			r := w.repositories[name]
			if r.lifecyclePolicy == "" {
				continue
			}
			p, err := parseLifecyclePolicy(r.lifecyclePolicy)
			if err != nil {
				continue // validated when put
			}
			for _, a := range r.applyLifecycle(p, now) {
				a.Account, a.Region = w.account, w.region
				done = append(done, a)
			}
			r.lifecycleEvaluatedAt = now
		}
	}
	return done
}

// applyLifecycle evaluates p against the repository's images and applies its actions.
func (r *repository) applyLifecycle(p *lifecyclePolicy, now time.Time) []LifecycleAction {
	type mark struct {
		rule   int
		action string
	}
	marked := map[*image]mark{}
	claimed := map[*image]bool{} // matched the tags of a rule of higher priority
	for _, rule := range p.Rules {
		s := rule.selection
		var selected []*image
		for _, img := range r.images {
			if (s.StorageClass == "archive") != (img.status == statusArchived) || img.status == statusActivating {
				continue
			}
			if s.tagsMatch(img) {
				selected = append(selected, img)
			}
		}
		// Newest first, so that a count keeps the newest images.
		slices.SortStableFunc(selected, func(a, b *image) int { return b.pushedAt.Compare(a.pushedAt) })
		age := time.Duration(*s.CountNumber) * 24 * time.Hour
		for i, img := range selected {
			var acts bool
			switch s.CountType {
			case "imageCountMoreThan":
				acts = i >= *s.CountNumber
			case "sinceImagePushed":
				acts = now.Sub(img.pushedAt) > age
			case "sinceImagePulled":
				last := img.pushedAt
				if !img.pulledAt.IsZero() {
					last = img.pulledAt
				}
				acts = now.Sub(last) > age
			case "sinceImageTransitioned":
				acts = now.Sub(img.archivedAt) > age
			}
			if _, done := marked[img]; acts && !done && !claimed[img] {
				marked[img] = mark{rule.priority, rule.action.Type}
			}
		}
		for _, img := range selected {
			claimed[img] = true
		}
	}
	var out []LifecycleAction
	for _, img := range slices.Clone(r.images) {
		m, ok := marked[img]
		if !ok {
			continue
		}
		if slices.ContainsFunc(r.listsReferencing(img), func(list string) bool {
			l := r.image(list)
			_, goes := marked[l]
			return l != nil && (!goes || marked[l].action != "expire")
		}) {
			continue // a manifest list that stays needs it
		}
		out = append(out, LifecycleAction{Repository: r.name, Digest: img.digest, Tags: slices.Clone(img.tags), Rule: m.rule, Action: m.action})
		switch m.action {
		case "expire":
			r.remove(img)
		case "transition":
			img.archive(now)
		}
	}
	return out
}

func (img *image) archive(now time.Time) {
	img.status, img.archivedAt = statusArchived, now
}

// restore brings an archived image back to the standard storage class. ECR answers ACTIVATING
// and takes a while; the emulator restores within the call.
func (img *image) restore(now time.Time) {
	img.status, img.activatedAt = statusActive, now
}

// pullable reports whether a task can pull the image: not while it is archived or being restored.
func (img *image) pullable() bool {
	return img.status == "" || img.status == statusActive
}

// statusOf is an image's imageStatus as DescribeImages answers it.
func (img *image) statusOf() string {
	if img.status == "" {
		return statusActive
	}
	return img.status
}

func lifecyclePolicyNotFound(r *repository) error {
	return clientError("LifecyclePolicyNotFoundException", "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", r.name, r.registryID)
}

func (e *Emulator) opPutLifecyclePolicy(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		LifecyclePolicyText string `json:"lifecyclePolicyText"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if _, err := parseLifecyclePolicy(in.LifecyclePolicyText); err != nil {
		return nil, err
	}
	return e.inRepository(rc, in.repositoryRequest, func(r *repository) (any, error) {
		r.lifecyclePolicy, r.lifecycleEvaluatedAt = in.LifecyclePolicyText, time.Time{}
		return map[string]any{"registryId": r.registryID, "repositoryName": r.name, "lifecyclePolicyText": r.lifecyclePolicy}, nil
	})
}

func (e *Emulator) opGetLifecyclePolicy(rc *request) (any, error) {
	var in repositoryRequest
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	return e.inRepository(rc, in, func(r *repository) (any, error) {
		if r.lifecyclePolicy == "" {
			return nil, lifecyclePolicyNotFound(r)
		}
		return r.lifecycleOut(), nil
	})
}

func (e *Emulator) opDeleteLifecyclePolicy(rc *request) (any, error) {
	var in repositoryRequest
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	return e.inRepository(rc, in, func(r *repository) (any, error) {
		if r.lifecyclePolicy == "" {
			return nil, lifecyclePolicyNotFound(r)
		}
		out := r.lifecycleOut()
		r.lifecyclePolicy, r.lifecycleEvaluatedAt = "", time.Time{}
		return out, nil
	})
}

func (r *repository) lifecycleOut() map[string]any {
	out := map[string]any{"registryId": r.registryID, "repositoryName": r.name, "lifecyclePolicyText": r.lifecyclePolicy}
	if !r.lifecycleEvaluatedAt.IsZero() {
		out["lastEvaluatedAt"] = epoch(r.lifecycleEvaluatedAt)
	}
	return out
}

func (e *Emulator) opUpdateImageStorageClass(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		ImageID            *imageID `json:"imageId"`
		TargetStorageClass string   `json:"targetStorageClass"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.ImageID == nil {
		return nil, invalidParameter("1 validation error detected: Value null at 'imageId' failed to satisfy constraint: Member must not be null")
	}
	switch in.TargetStorageClass {
	case "STANDARD", "ARCHIVE":
	case "":
		return nil, invalidParameter("1 validation error detected: Value null at 'targetStorageClass' failed to satisfy constraint: Member must not be null")
	default:
		return nil, invalidParameter("1 validation error detected: Value '%s' at 'targetStorageClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, ARCHIVE]", in.TargetStorageClass)
	}
	return e.inRepository(rc, in.repositoryRequest, func(r *repository) (any, error) {
		img, failure := r.resolve(*in.ImageID)
		switch {
		case failure != nil && failure.FailureCode == "ImageNotFound":
			return nil, clientError("ImageNotFoundException", "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'", orNull(in.ImageID.ImageDigest), orNull(in.ImageID.ImageTag), r.name, r.registryID)
		case failure != nil:
			return nil, invalidParameter("Invalid parameter at 'imageId': %s", failure.FailureReason)
		}
		now := e.now()
		switch {
		case in.TargetStorageClass == "ARCHIVE" && img.statusOf() == statusActive:
			img.archive(now)
		case in.TargetStorageClass == "STANDARD" && img.statusOf() == statusArchived:
			img.restore(now)
		default:
			return nil, clientError("ImageStorageClassUpdateNotSupportedException", "The image with digest '%s' is %s; it cannot be transitioned to the %s storage class", img.digest, img.statusOf(), in.TargetStorageClass)
		}
		id := imageID{ImageDigest: img.digest, ImageTag: in.ImageID.ImageTag}
		return map[string]any{"registryId": r.registryID, "repositoryName": r.name, "imageId": id, "imageStatus": img.statusOf()}, nil
	})
}
