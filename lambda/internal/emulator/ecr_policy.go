package emulator

import (
	"encoding/json"
	"slices"
)

// ECR's repository and registry administration: DeleteRepository, PutImageTagMutability, and
// the repository and registry policies.

// maxPolicyText is the documented length limit of a policy document.
const maxPolicyText = 10240

func (e *Emulator) opDeleteRepository(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		Force bool `json:"force"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	r, err := e.lookupRepository(w, in.repositoryRequest)
	if err != nil {
		return nil, err
	}
	if len(r.images) > 0 && !in.Force {
		return nil, clientError("RepositoryNotEmptyException", "The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", r.name, r.registryID)
	}
	delete(w.repositories, r.name)
	w.repoOrder = slices.DeleteFunc(w.repoOrder, func(n string) bool { return n == r.name })
	return map[string]any{"repository": r.out()}, nil
}

func (e *Emulator) opPutImageTagMutability(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		ImageTagMutability                 string            `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []exclusionFilter `json:"imageTagMutabilityExclusionFilters"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.ImageTagMutability == "" {
		return nil, invalidParameter("1 validation error detected: Value null at 'imageTagMutability' failed to satisfy constraint: Member must not be null")
	}
	mutability, err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	return e.inRepository(rc, in.repositoryRequest, func(r *repository) (any, error) {
		r.tagMutability, r.mutabilityExclusions = mutability, in.ImageTagMutabilityExclusionFilters
		out := map[string]any{"registryId": r.registryID, "repositoryName": r.name, "imageTagMutability": r.tagMutability}
		if len(r.mutabilityExclusions) > 0 {
			out["imageTagMutabilityExclusionFilters"] = r.mutabilityExclusions
		}
		return out, nil
	})
}

// checkPolicyText refuses what is not a policy document: not JSON, or longer than ECR allows.
func checkPolicyText(text string) error {
	if text == "" {
		return invalidParameter("1 validation error detected: Value null at 'policyText' failed to satisfy constraint: Member must not be null")
	}
	if len(text) > maxPolicyText {
		return invalidParameter("1 validation error detected: Value at 'policyText' failed to satisfy constraint: Member must have length less than or equal to %d", maxPolicyText)
	}
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil || len(doc.Statement) == 0 {
		return invalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
	}
	return nil
}

func repositoryPolicyNotFound(r *repository) error {
	return clientError("RepositoryPolicyNotFoundException", "Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", r.name, r.registryID)
}

func (e *Emulator) opGetRepositoryPolicy(rc *request) (any, error) {
	var in repositoryRequest
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	return e.inRepository(rc, in, func(r *repository) (any, error) {
		if r.policy == "" {
			return nil, repositoryPolicyNotFound(r)
		}
		return map[string]any{"registryId": r.registryID, "repositoryName": r.name, "policyText": r.policy}, nil
	})
}

func (e *Emulator) opSetRepositoryPolicy(rc *request) (any, error) {
	var in struct {
		repositoryRequest
		PolicyText string `json:"policyText"`
		Force      bool   `json:"force"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := checkPolicyText(in.PolicyText); err != nil {
		return nil, err
	}
	return e.inRepository(rc, in.repositoryRequest, func(r *repository) (any, error) {
		r.policy = in.PolicyText
		return map[string]any{"registryId": r.registryID, "repositoryName": r.name, "policyText": r.policy}, nil
	})
}

func (e *Emulator) opDeleteRepositoryPolicy(rc *request) (any, error) {
	var in repositoryRequest
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	return e.inRepository(rc, in, func(r *repository) (any, error) {
		if r.policy == "" {
			return nil, repositoryPolicyNotFound(r)
		}
		old := r.policy
		r.policy = ""
		return map[string]any{"registryId": r.registryID, "repositoryName": r.name, "policyText": old}, nil
	})
}

func registryPolicyNotFound(w *world) error {
	return clientError("RegistryPolicyNotFoundException", "Registry policy does not exist in the registry with id '%s'", w.account)
}

func (e *Emulator) opGetRegistryPolicy(rc *request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	if w.registryPolicy == "" {
		return nil, registryPolicyNotFound(w)
	}
	return map[string]any{"registryId": w.account, "policyText": w.registryPolicy}, nil
}

func (e *Emulator) opPutRegistryPolicy(rc *request) (any, error) {
	var in struct {
		PolicyText string `json:"policyText"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := checkPolicyText(in.PolicyText); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	w.registryPolicy = in.PolicyText
	return map[string]any{"registryId": w.account, "policyText": w.registryPolicy}, nil
}

func (e *Emulator) opDeleteRegistryPolicy(rc *request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	if w.registryPolicy == "" {
		return nil, registryPolicyNotFound(w)
	}
	old := w.registryPolicy
	w.registryPolicy = ""
	return map[string]any{"registryId": w.account, "policyText": old}, nil
}

// inRepository runs fn on the request's repository, under the emulator's lock: the shape of
// every repository-scoped policy operation (repository and lifecycle policies).
func (e *Emulator) inRepository(rc *request, req repositoryRequest, fn func(*repository) (any, error)) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.lookupRepository(e.world(rc), req)
	if err != nil {
		return nil, err
	}
	return fn(r)
}
