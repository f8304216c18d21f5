package trigger

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// duplicateKeys returns the paths of keys that occur twice in one object
// (at most 10). raw must be valid JSON.
func duplicateKeys(raw []byte) []string {
	type frame struct {
		object  bool
		path    string
		keys    map[string]bool
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
	var dups []string
	dec := json.NewDecoder(bytes.NewReader(raw))
	childPath := func(f *frame) string {
		if f.object {
			if f.path == "" {
				return f.key
			}
			return f.path + "." + f.key
		}
		return fmt.Sprintf("%s[%d]", f.path, f.index)
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	for len(dups) < 10 {
		tok, err := dec.Token()
		if err != nil { // io.EOF, or raw is not valid JSON after all
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if delim, ok := tok.(json.Delim); ok && delim == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			key, _ := tok.(string)
			if top.keys[key] {
				top.key = key
				dups = append(dups, childPath(top))
			}
			top.keys[key] = true
			top.key = key
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			path := ""
			if top != nil {
				path = childPath(top)
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), path: path, keys: map[string]bool{}, wantKey: true})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	return dups
}
