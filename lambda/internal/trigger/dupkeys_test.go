package trigger

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDuplicateKeysPaths(t *testing.T) {
	got := duplicateKeys([]byte(`{"a":1,"b":{"c":[{"d":1,"d":2}],"c":3},"a":[1,{"x":{},"x":[]}], "e":{}}`))
	want := []string{"b.c[0].d", "b.c", "a", "a[1].x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
