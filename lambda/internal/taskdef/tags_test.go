package taskdef

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func TestRegisterTags(t *testing.T) {
	tests := []struct {
		name     string
		original []types.Tag
		extra    map[string]string
		want     []types.Tag
	}{
		{name: "nothing", want: nil},
		{name: "empty inputs give nil", original: []types.Tag{}, extra: map[string]string{}, want: nil},
		{
			name:     "only reserved keys give nil",
			original: []types.Tag{tag("aws:cloudformation:stack-name", "s"), tag("AWS:x", "y")},
			want:     nil,
		},
		{
			name:     "aws: keys dropped, order kept, empty value kept",
			original: []types.Tag{tag("team", "core"), tag("aws:cloudformation:stack-id", "s"), tag("empty", ""), tag("Aws:Mixed", "m")},
			want:     []types.Tag{tag("team", "core"), tag("empty", "")},
		},
		{
			name:     "extra overrides in place and adds new keys sorted",
			original: []types.Tag{tag("b", "1"), tag("pinroll:digest", "old"), tag("a", "2")},
			extra:    map[string]string{"pinroll:digest": "new", "z": "26", "c": "3", "aws:nope": "x"},
			want:     []types.Tag{tag("b", "1"), tag("pinroll:digest", "new"), tag("a", "2"), tag("c", "3"), tag("z", "26")},
		},
		{
			name:     "later duplicate wins at the first position",
			original: []types.Tag{tag("k", "first"), tag("x", "1"), tag("k", "second")},
			want:     []types.Tag{tag("k", "second"), tag("x", "1")},
		},
		{name: "extra only", extra: map[string]string{"b": "", "a": "1"}, want: []types.Tag{tag("a", "1"), tag("b", "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RegisterTags(tt.original, tt.extra)
			if tt.want == nil && got != nil {
				t.Fatalf("RegisterTags = %#v, want nil", got)
			}
			if d := cmp.Diff(tt.want, got, exportAll); d != "" {
				t.Errorf("RegisterTags (-want +got):\n%s", d)
			}
		})
	}
}

func TestRegisterTagsSharesNoMemory(t *testing.T) {
	original := []types.Tag{tag("team", "core")}
	got := RegisterTags(original, nil)
	*got[0].Value = "changed"
	if *original[0].Value != "core" {
		t.Error("mutating the result changed the original tags")
	}
}
