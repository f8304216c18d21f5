package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// STS: AssumeRole issues credentials whose requests act in the role's account; GetCallerIdentity
// says who signed a request. There is no IAM: every role of every account can be assumed by
// anyone, except the roles DenyAssumeRole names.

var stsOperations = map[string]opFunc{
	"AssumeRole":        (*Emulator).opAssumeRole,
	"GetCallerIdentity": (*Emulator).opGetCallerIdentity,
}

// STS limits.
const (
	stsMinDuration     = 900
	stsMaxDuration     = 43200
	stsDefaultDuration = 3600
	stsChainedMax      = 3600 // a role assumed with a role's credentials: at most an hour
)

var (
	roleARNPattern     = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role/((?:[\x21-\x7E]+/)*)([\w+=,.@-]{1,64})$`)
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
)

func stsValidation(format string, args ...any) *apiError {
	return queryError(http.StatusBadRequest, "ValidationError", format, args...)
}

// DenyAssumeRole makes AssumeRole of roleARN answer AccessDenied (403), as when the role's trust
// policy does not name the caller; AllowAssumeRole undoes it.
func (e *Emulator) DenyAssumeRole(roleARN string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.denied[roleARN] = true
}

// AllowAssumeRole lets roleARN be assumed again after DenyAssumeRole.
func (e *Emulator) AllowAssumeRole(roleARN string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.denied, roleARN)
}

// RequireExternalID makes AssumeRole of roleARN answer AccessDenied unless the request's
// ExternalId is externalID, as a trust policy with an sts:ExternalId condition does; "" removes
// the condition.
func (e *Emulator) RequireExternalID(roleARN, externalID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if externalID == "" {
		delete(e.externalIDs, roleARN)
		return
	}
	e.externalIDs[roleARN] = externalID
}

type assumeRoleResult struct {
	XMLName         xml.Name `xml:"AssumeRoleResult"`
	SourceIdentity  string   `xml:"SourceIdentity,omitempty"`
	AssumedRoleUser struct {
		Arn           string `xml:"Arn"`
		AssumedRoleID string `xml:"AssumedRoleId"`
	} `xml:"AssumedRoleUser"`
	Credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	} `xml:"Credentials"`
	PackedPolicySize *int `xml:"PackedPolicySize,omitempty"`
}

func (e *Emulator) opAssumeRole(rc *request) (any, error) {
	roleARN, sessionName := rc.form.Get("RoleArn"), rc.form.Get("RoleSessionName")
	switch {
	case !rc.form.Has("RoleArn"):
		return nil, stsValidation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	case len(roleARN) < 20 || len(roleARN) > 2048:
		return nil, stsValidation("1 validation error detected: Value '%s' at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048", roleARN)
	case !rc.form.Has("RoleSessionName"):
		return nil, stsValidation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	case len(sessionName) < 2 || len(sessionName) > 64:
		return nil, stsValidation("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64", sessionName)
	case !sessionNamePattern.MatchString(sessionName):
		return nil, stsValidation("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", sessionName)
	}
	m := roleARNPattern.FindStringSubmatch(roleARN)
	if m == nil {
		return nil, stsValidation("%s is not a valid role ARN: want arn:aws:iam::<12-digit account id>:role/<name>", roleARN)
	}
	account, roleName := m[1], m[3]
	duration := stsDefaultDuration
	if rc.form.Has("DurationSeconds") {
		d, err := strconv.Atoi(rc.form.Get("DurationSeconds"))
		if err != nil {
			return nil, stsValidation("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must be an integer", rc.form.Get("DurationSeconds"))
		}
		if d < stsMinDuration || d > stsMaxDuration {
			return nil, stsValidation("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between %d and %d", d, stsMinDuration, stsMaxDuration)
		}
		duration = d
	}
	if rc.caller.session != nil && duration > stsChainedMax {
		return nil, stsValidation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	if ext := rc.form.Get("ExternalId"); rc.form.Has("ExternalId") && (len(ext) < 2 || len(ext) > 1224 || !externalIDPattern.MatchString(ext)) {
		return nil, stsValidation("1 validation error detected: Value '%s' at 'externalId' failed to satisfy constraint: Member must have length between 2 and 1224 and satisfy regular expression pattern: [\\w+=,.@:\\/-]*", ext)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if want, ok := e.externalIDs[roleARN]; e.denied[roleARN] || ok && rc.form.Get("ExternalId") != want {
		return nil, queryError(http.StatusForbidden, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", rc.caller.arn, roleARN)
	}
	roleID := "AROA" + strings.ToUpper(stableHex(roleARN, 17))
	s := &session{
		accessKeyID:     "ASIA" + strings.ToUpper(randomHex(16)),
		secretAccessKey: base64.RawStdEncoding.EncodeToString([]byte(randomHex(30))),
		sessionToken:    base64.StdEncoding.EncodeToString([]byte("pinroll-emulator-session/" + randomHex(64))),
		account:         account,
		roleARN:         roleARN,
		assumedRoleARN:  "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + sessionName,
		assumedRoleID:   roleID + ":" + sessionName,
		expiration:      e.now().Add(time.Duration(duration) * time.Second).Truncate(time.Second),
	}
	e.sessions[s.accessKeyID] = s
	var out assumeRoleResult
	out.SourceIdentity = rc.form.Get("SourceIdentity")
	out.AssumedRoleUser.Arn = s.assumedRoleARN
	out.AssumedRoleUser.AssumedRoleID = s.assumedRoleID
	out.Credentials.AccessKeyID = s.accessKeyID
	out.Credentials.SecretAccessKey = s.secretAccessKey
	out.Credentials.SessionToken = s.sessionToken
	out.Credentials.Expiration = s.expiration.Format("2006-01-02T15:04:05Z")
	if rc.form.Get("Policy") != "" {
		size := 6 // a percentage of the allowed size; AWS's examples say 6
		out.PackedPolicySize = &size
	}
	return out, nil
}

type callerIdentityResult struct {
	XMLName xml.Name `xml:"GetCallerIdentityResult"`
	Arn     string   `xml:"Arn"`
	UserID  string   `xml:"UserId"`
	Account string   `xml:"Account"`
}

func (e *Emulator) opGetCallerIdentity(rc *request) (any, error) {
	return callerIdentityResult{Arn: rc.caller.arn, UserID: rc.caller.userID, Account: rc.caller.account}, nil
}

// stableHex is n hex digits derived from s, the same every time.
func stableHex(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}
