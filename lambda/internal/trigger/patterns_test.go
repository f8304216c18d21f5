package trigger

import (
	"regexp"
	"strings"
	"testing"
)

// The field patterns accept exactly what the counted repetitions they replace accepted (those
// cost thousands of allocations at every cold start): compared on strings at and around every
// length limit.
func TestPatternsAcceptWhatTheCountedRepetitionsDid(t *testing.T) {
	counted := map[string]*regexp.Regexp{
		"id":       regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/=+@-]{0,127}$`),
		"tag":      regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`),
		"digest":   regexp.MustCompile(`^sha256:[a-f0-9]{64}$`),
		"media":    regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`),
		"ref":      regexp.MustCompile(`^sha256-[a-f0-9]{64}$`),
		"word":     regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`),
		"service":  regexp.MustCompile(`^arn:` + partitionRE + `:ecs:([^:]*):([^:]*):service/([A-Za-z0-9_-]{1,255})/([A-Za-z0-9_-]{1,255})$`),
		"rule":     regexp.MustCompile(`^arn:` + partitionRE + `:events:([^:]*):([^:]*):rule/(?:[A-Za-z0-9._-]{1,256}/)?[A-Za-z0-9._-]{1,64}$`),
		"deploy":   regexp.MustCompile(`^ecs-svc/[A-Za-z0-9_-]{1,64}$`),
		"account":  regexp.MustCompile(`^[0-9]{12}$`),
		"region":   regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$`),
		"cosigned": regexp.MustCompile(`^sha256-[a-f0-9]{64}\.[a-z0-9]+$`),
	}
	now := map[string]interface{ MatchString(string) bool }{
		"id": idRE, "tag": tagRE, "digest": digestRE, "media": mediaTypeRE, "ref": referrersRE, "word": wordRE,
		"service": serviceARNRE, "rule": ruleARNRE, "deploy": deployIDRE, "account": accountRE, "region": regionRE, "cosigned": cosignTagRE,
	}
	lengths := []int{0, 1, 2, 11, 12, 13, 31, 32, 33, 63, 64, 65, 126, 127, 128, 129, 254, 255, 256, 257}
	inputs := map[string]func(n int) string{
		"id":     func(n int) string { return strings.Repeat("a", n) },
		"tag":    func(n int) string { return strings.Repeat("t", n) },
		"digest": func(n int) string { return "sha256:" + strings.Repeat("a", n) },
		"media":  func(n int) string { return strings.Repeat("a", n) + "/" + strings.Repeat("b", max(1, 128-n)) },
		"ref":    func(n int) string { return "sha256-" + strings.Repeat("f", n) },
		"word":   func(n int) string { return strings.Repeat("w", n) },
		"service": func(n int) string {
			return "arn:aws:ecs:us-east-1:123456789012:service/" + strings.Repeat("c", n) + "/" + strings.Repeat("s", max(1, 256-n))
		},
		"rule": func(n int) string {
			return "arn:aws:events:us-east-1:123456789012:rule/" + strings.Repeat("b", n) + "/" + strings.Repeat("r", max(0, 65-n))
		},
		"deploy":   func(n int) string { return "ecs-svc/" + strings.Repeat("9", n) },
		"account":  func(n int) string { return strings.Repeat("1", n) },
		"region":   func(n int) string { return "us-east-" + strings.Repeat("1", n%4) },
		"cosigned": func(n int) string { return "sha256-" + strings.Repeat("e", n) + ".sig" },
	}
	for name, gen := range inputs {
		for _, n := range lengths {
			s := gen(n)
			if got, want := now[name].MatchString(s), counted[name].MatchString(s); got != want {
				t.Errorf("%s, %d: %q… now %v, counted repetition %v", name, n, s[:min(len(s), 40)], got, want)
			}
		}
	}
}
