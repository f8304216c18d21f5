package emulator

import (
	"net/http"
	"regexp"
	"strings"
	"time"
)

// worldKey names the state of one account in one region.
type worldKey struct{ account, region string }

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// world returns the state of the account and region a request acts in, creating it empty. Call
// with e.mu held.
func (e *Emulator) world(rc *request) *world { return e.worldAt(rc.account, rc.region) }

// worldAt returns an account's state in a region, creating it empty. Call with e.mu held.
func (e *Emulator) worldAt(account, region string) *world {
	key := worldKey{account, region}
	w, ok := e.worlds[key]
	if !ok {
		w = &world{
			account:      account,
			region:       region,
			repositories: map[string]*repository{},
			clusters:     map[string]*cluster{},
			families:     map[string][]*taskDefinition{},
		}
		e.worlds[key] = w
	}
	return w
}

func (w *world) key() worldKey { return worldKey{w.account, w.region} }

// arn returns the ECS ARN of a resource of this world ("cluster/prod", …).
func (w *world) arn(resource string) string {
	return "arn:aws:ecs:" + w.region + ":" + w.account + ":" + resource
}

// registryHost is the world's ECR registry, <account>.dkr.ecr.<region>.amazonaws.com.
func (w *world) registryHost() string {
	return w.account + ".dkr.ecr." + w.region + ".amazonaws.com"
}

// arnAccount returns the account field of an ARN ("" if it has none).
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// identity is who signed a request: the default account's root, or an STS session.
type identity struct {
	account string
	arn     string // caller ARN, as GetCallerIdentity answers it
	userID  string
	session *session // nil for the default credentials
}

// session is a set of credentials issued by AssumeRole.
type session struct {
	accessKeyID, secretAccessKey, sessionToken string
	account                                    string
	roleARN, assumedRoleARN, assumedRoleID     string
	expiration                                 time.Time
}

// credentialScope splits the SigV4 credential of a request
// ("Credential=AKID/20240101/us-west-2/ecs/aws4_request") into access key id, region and service;
// the signature itself is not checked. Parts that are missing come back empty.
func credentialScope(r *http.Request) (accessKey, region, service string) {
	auth := r.Header.Get("Authorization")
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return "", "", ""
	}
	scope := auth[i+len("Credential="):]
	if j := strings.IndexAny(scope, ", "); j >= 0 {
		scope = scope[:j]
	}
	parts := strings.Split(scope, "/")
	if len(parts) != 5 {
		return "", "", ""
	}
	return parts[0], parts[2], parts[3]
}

// identify finds the account a request acts in: the account of the AssumeRole session that issued
// its access key, otherwise (any other key, or none) the default account. An expired session's
// key is refused, as AWS refuses it.
func (e *Emulator) identify(r *http.Request) (identity, *apiError) {
	accessKey, _, _ := credentialScope(r)
	e.mu.Lock()
	s := e.sessions[accessKey]
	e.mu.Unlock()
	if s == nil {
		return identity{account: e.account, arn: "arn:aws:iam::" + e.account + ":root", userID: e.account}, nil
	}
	if !e.now().Before(s.expiration) {
		return identity{}, &apiError{Code: "ExpiredTokenException", Message: "The security token included in the request is expired", Status: http.StatusBadRequest}
	}
	return identity{account: s.account, arn: s.assumedRoleARN, userID: s.assumedRoleID, session: s}, nil
}

// crossAccountDenied is ECR's answer to an operation on another account's registry that no
// registry or repository policy allows (the emulator has no policies).
func crossAccountDenied(w *world, in repositoryRequest) *apiError {
	resource := "arn:aws:ecr:" + w.region + ":" + in.RegistryID + ":repository/" + in.RepositoryName
	if in.RepositoryName == "" {
		resource = "arn:aws:ecr:" + w.region + ":" + in.RegistryID + ":repository/*"
	}
	return &apiError{
		Code:    "AccessDeniedException",
		Message: "User: arn:aws:iam::" + w.account + ":root is not authorized to perform this action on resource: " + resource + " because no resource-based policy allows it (the emulator lets other accounts only read images: DescribeImages, BatchGetImage)",
		Status:  http.StatusBadRequest,
	}
}

// lookupReadableRepository is lookupRepository for the operations that may read another account's
// registry in the same region (DescribeImages, BatchGetImage), as if its registry policy allowed
// every account to pull. Call with e.mu held.
func (e *Emulator) lookupReadableRepository(w *world, in repositoryRequest) (*repository, error) {
	if in.RegistryID != "" && in.RegistryID != w.account {
		if !accountIDPattern.MatchString(in.RegistryID) {
			return nil, invalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''")
		}
		other, ok := e.worlds[worldKey{in.RegistryID, w.region}]
		if !ok {
			return nil, clientError("RepositoryNotFoundException", "The repository with name '%s' does not exist in the registry with id '%s'", in.RepositoryName, in.RegistryID)
		}
		w, in.RegistryID = other, ""
	}
	return e.lookupRepository(w, in)
}
