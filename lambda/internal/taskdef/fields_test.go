package taskdef

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

// handledOtherwise lists the fields of RegisterTaskDefinitionInput that Clone
// does not copy from types.TaskDefinition, and why.
var handledOtherwise = map[string]string{
	// DescribeTaskDefinition (include=TAGS) returns the tags beside the task
	// definition, not in it; Clone takes them as an argument (from RegisterTags).
	"Tags": "argument of Clone",
}

// notInput lists the fields of types.TaskDefinition that RegisterTaskDefinition
// does not accept (the RegisterTaskDefinition API reference: these are output-only).
var notInput = map[string]string{
	"TaskDefinitionArn":  "assigned by ECS",
	"Revision":           "assigned by ECS",
	"Status":             "assigned by ECS",
	"RequiresAttributes": "derived by ECS from the container definitions",
	"Compatibilities":    "derived by ECS; the input is RequiresCompatibilities",
	"RegisteredAt":       "assigned by ECS",
	"RegisteredBy":       "assigned by ECS",
	"DeregisteredAt":     "assigned by ECS",
	// Output-only too: set by DeleteTaskDefinitions.
	"DeleteRequestedAt": "assigned by ECS",
}

// TestEveryInputFieldIsCopied fails, naming the field, when the SDK adds a
// field to RegisterTaskDefinitionInput that Clone does not fill.
func TestEveryInputFieldIsCopied(t *testing.T) {
	td, tags := kitchenSink(t)
	in, err := Clone(td, tags)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := reflect.ValueOf(td).Elem(), reflect.ValueOf(in).Elem()
	for _, f := range reflect.VisibleFields(reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()) {
		if !f.IsExported() {
			continue // the SDK's noSmithyDocumentSerde marker
		}
		if _, ok := handledOtherwise[f.Name]; ok {
			continue
		}
		sf, ok := reflect.TypeFor[types.TaskDefinition]().FieldByName(f.Name)
		if !ok || sf.Type != f.Type {
			t.Errorf("RegisterTaskDefinitionInput.%s (%s) has no field of the same name and type in types.TaskDefinition: copy it in Clone or list it in handledOtherwise", f.Name, f.Type)
			continue
		}
		got, want := dst.FieldByName(f.Name), src.FieldByName(f.Name)
		if got.IsZero() {
			t.Errorf("Clone did not copy RegisterTaskDefinitionInput.%s", f.Name)
		} else if d := cmp.Diff(want.Interface(), got.Interface(), exportAll); d != "" {
			t.Errorf("Clone copied %s wrongly (-source +clone):\n%s", f.Name, d)
		}
	}
}

// TestEveryTaskDefinitionFieldIsAccountedFor fails, naming the field, when the
// SDK adds a field to types.TaskDefinition that is neither copied nor known
// to be invalid input.
func TestEveryTaskDefinitionFieldIsAccountedFor(t *testing.T) {
	input := reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()
	for _, f := range reflect.VisibleFields(reflect.TypeFor[types.TaskDefinition]()) {
		if !f.IsExported() {
			continue
		}
		in, copied := input.FieldByName(f.Name)
		copied = copied && in.Type == f.Type
		_, excluded := notInput[f.Name]
		switch {
		case copied && excluded:
			t.Errorf("TaskDefinition.%s is listed in notInput but is a field of RegisterTaskDefinitionInput", f.Name)
		case !copied && !excluded:
			t.Errorf("TaskDefinition.%s (%s) is neither a field of RegisterTaskDefinitionInput nor listed in notInput: decide whether it must be copied", f.Name, f.Type)
		}
	}
	for name := range notInput {
		if _, ok := reflect.TypeFor[types.TaskDefinition]().FieldByName(name); !ok {
			t.Errorf("notInput lists %s, which types.TaskDefinition no longer has", name)
		}
	}
}
