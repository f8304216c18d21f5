package trigger

import (
	"encoding/json"
	"fmt"
	"strings"
)

// object is a JSON object, its members not yet decoded.
type object map[string]json.RawMessage

// reader reads the members of one JSON object and reports each problem to
// its decoder under the member's path (prefix + key).
//
// A missing key and JSON null are both "absent".
type reader struct {
	d      *decoder
	obj    object
	prefix string // "" for the envelope, "detail." for the detail
}

// reader returns a reader of obj. Keys that differ from a known one only in
// letter case are reported at once: encoding/json would silently accept
// them, and EventBridge's rule would not.
func (d *decoder) reader(obj object, prefix string, known []string) reader {
	for key := range obj {
		for _, k := range known {
			if key != k && strings.EqualFold(key, k) {
				d.add(prefix+key, "", "unexpected key; did you mean %q? (keys are case-sensitive)", k)
			}
		}
	}
	return reader{d: d, obj: obj, prefix: prefix}
}

// add reports a problem with the member key.
func (r reader) add(key, value, format string, args ...any) {
	r.d.add(r.prefix+key, value, format, args...)
}

// required reads a string that must be present and not empty. It returns ""
// after reporting the problem when it is not.
func (r reader) required(key string) string {
	s, ok := r.string(key, true)
	if ok && s == "" {
		r.add(key, "", "empty")
		return ""
	}
	return s
}

// optional reads a string that may be absent; ok is true when a string was
// read (possibly "").
func (r reader) optional(key string) (s string, ok bool) {
	return r.string(key, false)
}

func (r reader) string(key string, required bool) (s string, ok bool) {
	raw, present := r.obj[key]
	if !present || string(raw) == "null" {
		if required {
			r.add(key, "", "missing")
		}
		return "", false
	}
	if raw[0] != '"' {
		r.add(key, string(raw), "want a JSON string, got %s", jsonKind(raw))
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		r.add(key, string(raw), "not a valid JSON string")
		return "", false
	}
	return s, true
}

// strings reads an optional array of strings; nil when absent.
func (r reader) strings(key string) []string {
	raw, present := r.obj[key]
	if !present || string(raw) == "null" {
		return nil
	}
	if raw[0] != '[' {
		r.add(key, string(raw), "want a JSON array of strings, got %s", jsonKind(raw))
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		r.add(key, string(raw), "not a valid JSON array")
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		var s string
		if it[0] != '"' || json.Unmarshal(it, &s) != nil {
			r.add(fmt.Sprintf("%s[%d]", key, i), string(it), "want a JSON string, got %s", jsonKind(it))
			continue
		}
		out = append(out, s)
	}
	return out
}

// object reads an object that must be present; nil after reporting the
// problem when it is not.
func (r reader) object(key string) object {
	raw, present := r.obj[key]
	if !present || string(raw) == "null" {
		r.add(key, "", "missing")
		return nil
	}
	if raw[0] != '{' {
		r.add(key, string(raw), "want a JSON object, got %s", jsonKind(raw))
		return nil
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		r.add(key, "", "not a valid JSON object")
		return nil
	}
	return o
}
