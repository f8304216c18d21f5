// Package taskdef builds RegisterTaskDefinition inputs that copy an existing
// ECS task definition field for field, so that re-registering it with a
// pinned image changes nothing else.
//
// Copying is driven by reflection over the SDK's types rather than by a
// hand-written field list: a list silently drops every field the SDK adds
// later (pidMode, ipcMode, enableFaultInjection, … were all lost that way by
// other tools). The tests fail, naming the field, when the SDK grows one.
package taskdef

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

var (
	inputType   = reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()
	sourceType  = reflect.TypeFor[types.TaskDefinition]()
	copyPlanErr = sync.OnceValues(copyPlan)
)

// fieldCopy copies the field at index from of types.TaskDefinition to the
// field at index to of ecs.RegisterTaskDefinitionInput.
type fieldCopy struct{ from, to int }

// copyPlan pairs every exported field of RegisterTaskDefinitionInput with the
// field of TaskDefinition of the same name and type. Tags is the one input
// field a TaskDefinition does not carry: DescribeTaskDefinition returns the
// tags beside it, and Clone takes them as an argument. Any other input field
// without a counterpart is an error rather than a silent omission.
func copyPlan() ([]fieldCopy, error) {
	var plan []fieldCopy
	var errs []error
	for i := range inputType.NumField() {
		f := inputType.Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		src, ok := sourceType.FieldByName(f.Name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("RegisterTaskDefinitionInput.%s has no counterpart in TaskDefinition", f.Name))
		case src.Type != f.Type:
			errs = append(errs, fmt.Errorf("RegisterTaskDefinitionInput.%s is %s but TaskDefinition.%[1]s is %s", f.Name, f.Type, src.Type))
		default:
			plan = append(plan, fieldCopy{from: src.Index[0], to: i})
		}
	}
	return plan, errors.Join(errs...)
}

// Clone returns the input that registers a copy of td, field for field, with
// the given tags (an empty list becomes nil: ECS rejects an empty tags list).
// Every field of ecs.RegisterTaskDefinitionInput is filled from the matching
// field of types.TaskDefinition. The result shares no memory with td or tags.
func Clone(td *types.TaskDefinition, tags []types.Tag) (*ecs.RegisterTaskDefinitionInput, error) {
	if td == nil {
		return nil, errors.New("clone task definition: nil task definition")
	}
	plan, err := copyPlanErr()
	if err != nil {
		return nil, fmt.Errorf("clone task definition %s: %w", aws.ToString(td.TaskDefinitionArn), err)
	}
	in := new(ecs.RegisterTaskDefinitionInput)
	dst, src := reflect.ValueOf(in).Elem(), reflect.ValueOf(td).Elem()
	for _, c := range plan {
		if err := deepCopy(dst.Field(c.to), src.Field(c.from)); err != nil {
			return nil, fmt.Errorf("clone task definition %s: %s: %w", aws.ToString(td.TaskDefinitionArn), inputType.Field(c.to).Name, err)
		}
	}
	if len(tags) > 0 {
		if err := deepCopy(dst.FieldByName("Tags"), reflect.ValueOf(tags)); err != nil {
			return nil, fmt.Errorf("clone task definition %s: Tags: %w", aws.ToString(td.TaskDefinitionArn), err)
		}
	}
	return in, nil
}

// RegisterTags returns the tags to register: the original's tags minus keys
// with the reserved aws: prefix (in any case), plus or overridden by extra.
// Later keys win; the order is stable: the original keys in their order, then
// the new keys sorted. Reserved keys in extra are dropped too, since ECS would
// reject them. It returns nil, never an empty list, when no tag is left.
func RegisterTags(original []types.Tag, extra map[string]string) []types.Tag {
	var out []types.Tag
	at := make(map[string]int)
	put := func(key string, value *string) {
		if reserved(key) {
			return
		}
		if value != nil {
			value = aws.String(*value)
		}
		if i, ok := at[key]; ok {
			out[i].Value = value
			return
		}
		at[key] = len(out)
		out = append(out, types.Tag{Key: aws.String(key), Value: value})
	}
	for _, t := range original {
		if t.Key != nil {
			put(*t.Key, t.Value)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		put(k, aws.String(extra[k]))
	}
	return out
}

func reserved(key string) bool {
	return len(key) >= 4 && strings.EqualFold(key[:4], "aws:")
}

// WithImages returns a deep copy of in in which the named containers' Image is
// replaced (container name → new image). It is an error if a name is not a
// container of the definition. in is not modified.
func WithImages(in *ecs.RegisterTaskDefinitionInput, images map[string]string) (*ecs.RegisterTaskDefinitionInput, error) {
	if in == nil {
		return nil, errors.New("replace images: nil task definition input")
	}
	out := new(ecs.RegisterTaskDefinitionInput)
	if err := deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(in).Elem()); err != nil {
		return nil, fmt.Errorf("replace images in %s: %w", aws.ToString(in.Family), err)
	}
	replaced := make(map[string]bool, len(images))
	for i := range out.ContainerDefinitions {
		c := &out.ContainerDefinitions[i]
		if c.Name == nil {
			continue
		}
		if img, ok := images[*c.Name]; ok {
			c.Image = aws.String(img)
			replaced[*c.Name] = true
		}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(images)) {
		if !replaced[name] {
			errs = append(errs, fmt.Errorf("replace images in %s: no container named %q", aws.ToString(in.Family), name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Equal reports whether a and b describe the same task definition, ignoring
// Tags. A nil slice or map equals an empty one; pointers are compared by the
// values they point to, so a nil pointer (unset) differs from a pointer to a
// zero value (set to zero). Slices are compared in order.
func Equal(a, b *ecs.RegisterTaskDefinitionInput) bool {
	if a == nil || b == nil {
		return a == b
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range inputType.NumField() {
		f := inputType.Field(i)
		if f.IsExported() && f.Name != "Tags" && !equal(va.Field(i), vb.Field(i)) {
			return false
		}
	}
	return true
}

var timeType = reflect.TypeFor[time.Time]()

// deepCopy sets dst, a settable zero value, to a copy of src that shares no
// slices, maps or pointers with it. nil stays nil and empty stays empty.
func deepCopy(dst, src reflect.Value) error {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return nil
		}
		p := reflect.New(src.Type().Elem())
		if err := deepCopy(p.Elem(), src.Elem()); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Interface:
		// Smithy unions, e.g. ResourceRequirement.SharingStrategy: copy the
		// concrete member (a pointer to a struct) behind the interface.
		if src.IsNil() {
			return nil
		}
		v := reflect.New(src.Elem().Type()).Elem()
		if err := deepCopy(v, src.Elem()); err != nil {
			return err
		}
		dst.Set(v)
	case reflect.Slice:
		if src.IsNil() {
			return nil
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			if err := deepCopy(s.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Array:
		for i := range src.Len() {
			if err := deepCopy(dst.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if src.IsNil() {
			return nil
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			k := reflect.New(src.Type().Key()).Elem()
			v := reflect.New(src.Type().Elem()).Elem()
			if err := deepCopy(k, it.Key()); err != nil {
				return err
			}
			if err := deepCopy(v, it.Value()); err != nil {
				return err
			}
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	case reflect.Struct:
		if src.Type() == timeType {
			dst.Set(src) // an immutable value
			return nil
		}
		for i := range src.NumField() {
			f := src.Type().Field(i)
			if !f.IsExported() {
				// Only the SDK's zero-size noSmithyDocumentSerde markers are
				// expected; anything else could share memory.
				if f.Type.Size() != 0 {
					return fmt.Errorf("cannot deep-copy unexported field %s.%s", src.Type(), f.Name)
				}
				continue
			}
			if err := deepCopy(dst.Field(i), src.Field(i)); err != nil {
				return err
			}
		}
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return fmt.Errorf("cannot deep-copy a %s", src.Type())
	default: // bool, numbers, strings (including the SDK's string enums)
		dst.Set(src)
	}
	return nil
}

// equal is reflect.DeepEqual except that nil and empty slices and maps are
// equal and unexported fields (the SDK's zero-size markers) are ignored.
func equal(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Elem().Type() != b.Elem().Type() {
			return false
		}
		return equal(a.Elem(), b.Elem())
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equal(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !equal(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == timeType {
			return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
		}
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() && !equal(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	default:
		return a.Equal(b)
	}
}
