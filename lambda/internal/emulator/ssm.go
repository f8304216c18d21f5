package emulator

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SSM Parameter Store: the operations pinroll's write-back uses (GetParameter, PutParameter) and
// DeleteParameter, per account and region, with every version kept.

var ssmOperations = map[string]opFunc{
	"GetParameter":    (*Emulator).opGetParameter,
	"PutParameter":    (*Emulator).opPutParameter,
	"DeleteParameter": (*Emulator).opDeleteParameter,
}

// SSM limits (standard tier).
const (
	ssmMaxName   = 2048
	ssmMaxValue  = 4096
	ssmMaxLevels = 15
	ssmMaxDesc   = 1024
)

type parameter struct {
	name     string
	versions []parameterVersion // index version-1
}

type parameterVersion struct {
	value, typ, description string
	modified                time.Time
}

var ssmSegmentPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

func ssmValidation(format string, args ...any) *apiError {
	return clientError("ValidationException", format, args...)
}

// checkParameterName validates a parameter name as SSM does.
func checkParameterName(name string) *apiError {
	const rule = `Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_`
	if name == "" {
		return ssmValidation("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(name) > ssmMaxName {
		return ssmValidation("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to %d", ssmMaxName)
	}
	path := name
	if strings.Contains(name, "/") {
		if !strings.HasPrefix(name, "/") {
			return ssmValidation("Parameter name %q: a name with a hierarchy must be fully qualified, starting with /. %s", name, rule)
		}
		path = name[1:]
	}
	lower := strings.ToLower(path)
	if strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm") {
		return ssmValidation("%s (got %q)", rule, name)
	}
	segments := strings.Split(path, "/")
	for _, s := range segments {
		if !ssmSegmentPattern.MatchString(s) {
			return ssmValidation("%s (got %q)", rule, name)
		}
	}
	if len(segments) > ssmMaxLevels {
		return clientError("HierarchyLevelLimitExceededException", "Parameter name %q has %d levels; a hierarchy can have at most %d levels.", name, len(segments), ssmMaxLevels)
	}
	return nil
}

func (w *world) parameterARN(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return "arn:aws:ssm:" + w.region + ":" + w.account + ":parameter" + name
}

// parameterRef splits "name", "name:version" or a parameter ARN of world w into name and version
// (0 = latest).
func (w *world) parameterRef(ref string) (string, int, *apiError) {
	if rest, ok := strings.CutPrefix(ref, "arn:aws:ssm:"); ok {
		prefix := w.region + ":" + w.account + ":parameter"
		name, ok := strings.CutPrefix(rest, prefix)
		if !ok {
			return "", 0, ssmValidation("Parameter ARN %q is not of account %s in %s", ref, w.account, w.region)
		}
		ref = name
		if strings.Count(ref, "/") == 1 {
			ref = ref[1:] // a name without a hierarchy
		}
	}
	version := 0
	if i := strings.LastIndex(ref, ":"); i >= 0 {
		v, err := strconv.Atoi(ref[i+1:])
		if err != nil || v < 1 {
			return "", 0, ssmValidation("Parameter selector %q: the emulator supports a version number (name:3), not labels", ref[i:])
		}
		ref, version = ref[:i], v
	}
	if ae := checkParameterName(ref); ae != nil {
		return "", 0, ae
	}
	return ref, version, nil
}

func (e *Emulator) parameters(w *world) map[string]*parameter {
	m, ok := e.params[w.key()]
	if !ok {
		m = map[string]*parameter{}
		e.params[w.key()] = m
	}
	return m
}

type parameterOut struct {
	Name             string `json:"Name"`
	Type             string `json:"Type"`
	Value            string `json:"Value"`
	Version          int    `json:"Version"`
	LastModifiedDate epoch  `json:"LastModifiedDate"`
	ARN              string `json:"ARN"`
	DataType         string `json:"DataType"`
	Selector         string `json:"Selector,omitempty"`
}

func (e *Emulator) opGetParameter(rc *request) (any, error) {
	var in struct {
		Name           string `json:"Name"`
		WithDecryption bool   `json:"WithDecryption"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.world(rc)
	name, version, ae := w.parameterRef(in.Name)
	if ae != nil {
		return nil, ae
	}
	p, ok := e.parameters(w)[name]
	if !ok || version > len(p.versions) {
		return nil, clientError("ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	out := parameterOut{Name: p.name, ARN: w.parameterARN(p.name), DataType: "text"}
	if version == 0 {
		version = len(p.versions)
	} else {
		out.Selector = ":" + strconv.Itoa(version)
	}
	v := p.versions[version-1]
	out.Type, out.Value, out.Version, out.LastModifiedDate = v.typ, v.value, version, epoch(v.modified)
	if v.typ == "SecureString" && !in.WithDecryption {
		out.Value = base64.StdEncoding.EncodeToString([]byte("encrypted:" + v.value))
	}
	return map[string]any{"Parameter": out}, nil
}

func (e *Emulator) opPutParameter(rc *request) (any, error) {
	var in struct {
		Name        string  `json:"Name"`
		Value       *string `json:"Value"`
		Type        string  `json:"Type"`
		Overwrite   bool    `json:"Overwrite"`
		Description string  `json:"Description"`
		Tier        string  `json:"Tier"`
		DataType    string  `json:"DataType"`
		Tags        []struct {
			Key, Value string
		} `json:"Tags"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if ae := checkParameterName(in.Name); ae != nil {
		return nil, ae
	}
	switch {
	case in.Value == nil:
		return nil, ssmValidation("1 validation error detected: Value null at 'value' failed to satisfy constraint: Member must not be null")
	case *in.Value == "":
		return nil, ssmValidation("1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case len(*in.Value) > ssmMaxValue:
		return nil, ssmValidation("1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to %d (the standard tier's limit)", ssmMaxValue)
	case len(in.Description) > ssmMaxDesc:
		return nil, ssmValidation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to %d", ssmMaxDesc)
	}
	switch in.Type {
	case "", "String", "StringList", "SecureString":
	default:
		return nil, ssmValidation("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", in.Type)
	}
	switch in.Tier {
	case "", "Standard", "Intelligent-Tiering":
	case "Advanced":
		return nil, ssmValidation("Tier Advanced is not served by the emulator (standard parameters only)")
	default:
		return nil, ssmValidation("1 validation error detected: Value '%s' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]", in.Tier)
	}
	switch in.DataType {
	case "", "text":
	default:
		return nil, ssmValidation("The parameter data type %q is not served by the emulator (text only)", in.DataType)
	}
	if in.Overwrite && len(in.Tags) > 0 {
		return nil, ssmValidation("Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	params := e.parameters(e.world(rc))
	p, exists := params[in.Name]
	switch {
	case exists && !in.Overwrite:
		return nil, clientError("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	case !exists && in.Type == "":
		return nil, ssmValidation("A parameter type is required when you create a parameter.")
	case !exists:
		p = &parameter{name: in.Name}
		params[in.Name] = p
	}
	typ, desc := in.Type, in.Description
	if n := len(p.versions); n > 0 {
		if typ == "" {
			typ = p.versions[n-1].typ
		}
		if desc == "" {
			desc = p.versions[n-1].description
		}
	}
	p.versions = append(p.versions, parameterVersion{value: *in.Value, typ: typ, description: desc, modified: e.now()})
	return map[string]any{"Version": len(p.versions), "Tier": "Standard"}, nil
}

func (e *Emulator) opDeleteParameter(rc *request) (any, error) {
	var in struct {
		Name string `json:"Name"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if ae := checkParameterName(in.Name); ae != nil {
		return nil, ae
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	params := e.parameters(e.world(rc))
	if _, ok := params[in.Name]; !ok {
		return nil, clientError("ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	delete(params, in.Name)
	return map[string]any{}, nil
}

// Parameter returns the latest value of a parameter of account in region and its version (0 and
// false if there is none), for tests and demos that check what write-back stored.
func (e *Emulator) Parameter(account, region, name string) (string, int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.params[worldKey{account, region}][name]
	if !ok || len(p.versions) == 0 {
		return "", 0, false
	}
	return p.versions[len(p.versions)-1].value, len(p.versions), true
}
