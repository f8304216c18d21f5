package emulator

import (
	"os"
	"strings"
	"testing"
)

// The README's "The local world" lists every ECS and ECR operation the emulator serves.
func TestREADMEListsEveryOperationServed(t *testing.T) {
	raw, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "## The local world")
	if start < 0 {
		t.Fatal(`README.md has no "## The local world" section`)
	}
	section := readme[start+len("## The local world"):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	for service, ops := range map[string]map[string]opFunc{"ECS": ecsOperations, "ECR": ecrOperations} {
		for op := range ops {
			if !containsWord(section, op) {
				t.Errorf("README \"The local world\" does not list %s %s", service, op)
			}
		}
	}
}

// containsWord reports whether s contains word delimited by non-letters.
func containsWord(s, word string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(word)
		letter := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
		if (j == 0 || !letter(s[j-1])) && (end == len(s) || !letter(s[end])) {
			return true
		}
		i = end
	}
}
