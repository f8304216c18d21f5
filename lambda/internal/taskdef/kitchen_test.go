package taskdef

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

// exportAll lets cmp look at the SDK's unexported zero-size markers.
var exportAll = cmp.Exporter(func(reflect.Type) bool { return true })

// fileResponder answers every request with one canned ECS JSON response.
type fileResponder []byte

func (body fileResponder) Do(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body:       io.NopCloser(bytes.NewReader(body)),
		Request:    r,
	}, nil
}

// kitchenSink decodes testdata/kitchen-sink.json, a DescribeTaskDefinition
// response in the AWS wire shape, with the SDK's own deserializer, so the
// fixture reads like `aws ecs describe-task-definition --include TAGS` output
// and decodes exactly as in production (including the SharingStrategy union,
// which encoding/json cannot decode).
func kitchenSink(tb testing.TB) (*types.TaskDefinition, []types.Tag) {
	tb.Helper()
	body, err := os.ReadFile("testdata/kitchen-sink.json")
	if err != nil {
		tb.Fatal(err)
	}
	client := ecs.New(ecs.Options{
		Region:      "eu-west-1",
		Credentials: aws.AnonymousCredentials{},
		HTTPClient:  fileResponder(body),
		Retryer:     aws.NopRetryer{},
	})
	out, err := client.DescribeTaskDefinition(tb.Context(), &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("kitchen-sink"),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out.TaskDefinition, out.Tags
}

// unset returns the paths of the fields under v that are zero. Pointers to
// scalars only have to be non-nil (a pointer to false or "" is a set value);
// a slice must be non-empty and its first element fully set.
func unset(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return []string{path}
		}
		if e := reflect.Indirect(v.Elem()); e.Kind() == reflect.Struct {
			return unset(e, path)
		}
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Kind() == reflect.Slice {
			return unset(v.Index(0), path+"[0]")
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			break
		}
		var paths []string
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				paths = append(paths, unset(v.Field(i), path+"."+f.Name)...)
			}
		}
		return paths
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// The fixture must set every field, recursively, or the tests below would
// not notice a field that Clone fails to copy.
func TestKitchenSinkSetsEveryField(t *testing.T) {
	td, tags := kitchenSink(t)
	for _, p := range unset(reflect.ValueOf(td), "TaskDefinition") {
		t.Errorf("testdata/kitchen-sink.json does not set %s", p)
	}
	for _, p := range unset(reflect.ValueOf(tags), "Tags") {
		t.Errorf("testdata/kitchen-sink.json does not set %s", p)
	}
	if len(td.ContainerDefinitions) < 2 {
		t.Error("testdata/kitchen-sink.json needs a second container")
	}
}

func TestCloneKeepsEmptyValues(t *testing.T) {
	td, tags := kitchenSink(t)
	in, err := Clone(td, tags)
	if err != nil {
		t.Fatal(err)
	}
	env := in.ContainerDefinitions[0].Environment[0]
	if aws.ToString(env.Name) != "EMPTY" || env.Value == nil || *env.Value != "" {
		t.Errorf("environment %+v: want EMPTY with a non-nil empty value", env)
	}
	if in.ContainerDefinitions[1].Links != nil || in.ContainerDefinitions[1].Environment != nil {
		t.Error("nil slices in the source became non-nil in the clone")
	}
}

func TestCloneTags(t *testing.T) {
	td, _ := kitchenSink(t)
	for _, tags := range [][]types.Tag{nil, {}} {
		in, err := Clone(td, tags)
		if err != nil {
			t.Fatal(err)
		}
		if in.Tags != nil {
			t.Errorf("Clone(td, %#v).Tags = %#v, want nil", tags, in.Tags)
		}
	}
}

func TestCloneNil(t *testing.T) {
	if _, err := Clone(nil, nil); err == nil {
		t.Error("Clone(nil) succeeded")
	}
}

// scribble changes every value reachable from v in place: strings, numbers,
// booleans, map entries. If any memory were shared with another value, that
// value would change too.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			scribble(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			scribble(v.Index(i))
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(it.Value().Type()).Elem()
			e.Set(it.Value())
			scribble(e)
			v.SetMapIndex(it.Key(), e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				scribble(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString(v.String() + "~")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint8:
		v.SetUint(v.Uint() + 1)
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestCloneSharesNoMemory(t *testing.T) {
	td, tags := kitchenSink(t)
	before, beforeTags := mustJSON(t, td), mustJSON(t, tags)
	in, err := Clone(td, tags)
	if err != nil {
		t.Fatal(err)
	}
	scribble(reflect.ValueOf(in))
	if Equal(in, mustClone(t, td)) {
		t.Fatal("scribble did not change the clone")
	}
	if d := cmp.Diff(before, mustJSON(t, td)); d != "" {
		t.Errorf("mutating the clone changed the source task definition:\n%s", d)
	}
	if d := cmp.Diff(beforeTags, mustJSON(t, tags)); d != "" {
		t.Errorf("mutating the clone changed the source tags:\n%s", d)
	}
}

func mustClone(tb testing.TB, td *types.TaskDefinition) *ecs.RegisterTaskDefinitionInput {
	tb.Helper()
	in, err := Clone(td, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

func TestWithImages(t *testing.T) {
	td, tags := kitchenSink(t)
	in, err := Clone(td, tags)
	if err != nil {
		t.Fatal(err)
	}
	before := mustJSON(t, in)
	const pinned = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:latest@sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd"

	out, err := WithImages(in, map[string]string{"app": pinned})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.ContainerDefinitions[0].Image); got != pinned {
		t.Errorf("app image = %q, want %q", got, pinned)
	}
	if mustJSON(t, in) != before {
		t.Error("WithImages modified its input")
	}
	if a, b := mustJSON(t, in.ContainerDefinitions[1]), mustJSON(t, out.ContainerDefinitions[1]); a != b {
		t.Errorf("the other container changed:\n%s\n%s", a, b)
	}
	scribble(reflect.ValueOf(out))
	if mustJSON(t, in) != before {
		t.Error("mutating the result of WithImages changed its input")
	}
	out, _ = WithImages(in, map[string]string{"app": pinned})
	out.ContainerDefinitions[0].Image = in.ContainerDefinitions[0].Image
	if d := cmp.Diff(before, mustJSON(t, out)); d != "" {
		t.Errorf("WithImages changed more than the image:\n%s", d)
	}
}

func TestWithImagesUnknownContainer(t *testing.T) {
	td, _ := kitchenSink(t)
	in := mustClone(t, td)
	_, err := WithImages(in, map[string]string{"app": "x", "ghost": "y"})
	if err == nil || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("WithImages with an unknown container: err = %v, want one naming \"ghost\"", err)
	}
	if _, err := WithImages(nil, nil); err == nil {
		t.Error("WithImages(nil) succeeded")
	}
}

func TestEqual(t *testing.T) {
	td, tags := kitchenSink(t)
	base := mustClone(t, td)

	t.Run("clone", func(t *testing.T) {
		in, _ := Clone(td, tags)
		if !Equal(base, in) {
			t.Error("Equal(clone, clone with tags) = false")
		}
	})

	// Every top-level field is set in the fixture, so zeroing any one of
	// them must make the inputs differ.
	for _, f := range reflect.VisibleFields(reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()) {
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		t.Run("zero "+f.Name, func(t *testing.T) {
			in := mustClone(t, td)
			reflect.ValueOf(in).Elem().FieldByIndex(f.Index).SetZero()
			if Equal(base, in) || Equal(in, base) {
				t.Errorf("Equal is true after zeroing %s", f.Name)
			}
		})
	}

	changes := map[string]func(*ecs.RegisterTaskDefinitionInput){
		"family":                 func(in *ecs.RegisterTaskDefinitionInput) { in.Family = aws.String("other") },
		"image":                  func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[1].Image = aws.String("x") },
		"empty env value to nil": func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Environment[0].Value = nil },
		"nil bool to false":      func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[1].Privileged = aws.Bool(false) },
		"docker label":           func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].DockerLabels["empty"] = "x" },
		"docker label key": func(in *ecs.RegisterTaskDefinitionInput) {
			delete(in.ContainerDefinitions[0].DockerLabels, "empty")
			in.ContainerDefinitions[0].DockerLabels["other"] = ""
		},
		"volume driver opt": func(in *ecs.RegisterTaskDefinitionInput) {
			in.Volumes[0].DockerVolumeConfiguration.DriverOpts["type"] = "nfs"
		},
		"gpu sharing memory": func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].ResourceRequirements[0].SharingStrategy.(*types.SharingStrategyMemberNvidiaMps).Value.Memory = aws.Int32(1)
		},
		"gpu sharing removed": func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].ResourceRequirements[0].SharingStrategy = nil
		},
		"container order": func(in *ecs.RegisterTaskDefinitionInput) {
			c := in.ContainerDefinitions
			c[0], c[1] = c[1], c[0]
		},
		"extra env var": func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].Environment = append(in.ContainerDefinitions[0].Environment, types.KeyValuePair{})
		},
		"cpu units": func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Cpu++ },
		"pid mode":  func(in *ecs.RegisterTaskDefinitionInput) { in.PidMode = types.PidModeHost },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			in := mustClone(t, td)
			change(in)
			if Equal(base, in) || Equal(in, base) {
				t.Errorf("Equal is true after changing %s", name)
			}
		})
	}

	same := map[string]func(*ecs.RegisterTaskDefinitionInput){
		"tags":               func(in *ecs.RegisterTaskDefinitionInput) { in.Tags = []types.Tag{tag("k", "v")} },
		"nil to empty slice": func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[1].Links = []string{} },
		"nil to empty structs": func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].Environment = []types.KeyValuePair{}
		},
		"nil to empty map": func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].DockerLabels = map[string]string{}
		},
		"nil to empty options": func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].FirelensConfiguration.Options = map[string]string{}
		},
		"equal pointers, other memory": func(in *ecs.RegisterTaskDefinitionInput) { in.Family = aws.String(*in.Family) },
	}
	for name, change := range same {
		t.Run("same "+name, func(t *testing.T) {
			in := mustClone(t, td)
			change(in)
			if !Equal(base, in) || !Equal(in, base) {
				t.Errorf("Equal is false after %s", name)
			}
		})
	}

	if !Equal(nil, nil) || Equal(base, nil) || Equal(nil, base) {
		t.Error("Equal with nil inputs is wrong")
	}
}

func BenchmarkClone(b *testing.B) {
	td, tags := kitchenSink(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Clone(td, tags); err != nil {
			b.Fatal(err)
		}
	}
}
