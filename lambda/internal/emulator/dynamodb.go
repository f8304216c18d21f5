package emulator

import (
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DynamoDB: the operations pinroll's index and its claims use (CreateTable, DescribeTable,
// BatchGetItem, BatchWriteItem, GetItem, PutItem, UpdateItem, DeleteItem) over the AWS JSON 1.0
// protocol (X-Amz-Target DynamoDB_20120810.<op>), with DynamoDB's limits and messages: 100 keys a
// BatchGetItem, 25 requests a BatchWriteItem, 400 KB an item, 16 MB a BatchGetItem answer (the
// rest comes back as UnprocessedKeys). Tables are per account and region; they are ACTIVE as soon
// as created, on-demand whatever the billing mode asked, and never throttle (faults and latency
// hooks apply as to every operation).
//
// PutItem, UpdateItem and DeleteItem take a ConditionExpression, with ExpressionAttributeNames
// and ExpressionAttributeValues: comparisons (= <> < <= > >=), attribute_exists,
// attribute_not_exists, begins_with, AND, OR, NOT and parentheses, on top-level attributes. A
// condition that does not hold answers ConditionalCheckFailedException, as DynamoDB does; an
// undefined or unused name or value is a ValidationException. UpdateItem's UpdateExpression takes
// SET (a value or another attribute) and REMOVE clauses. ReturnValues NONE, ALL_OLD (and ALL_NEW
// for UpdateItem) are served. The time-to-live setting is not: DynamoDB deletes expired items
// only eventually, so readers must check expiry themselves anyway. Queries, scans and indexes are
// not served.
const dynamodbTargetPrefix = "DynamoDB_20120810."

var dynamodbOperations = map[string]opFunc{
	"CreateTable":    (*Emulator).opCreateTable,
	"DescribeTable":  (*Emulator).opDescribeTable,
	"BatchGetItem":   (*Emulator).opBatchGetItem,
	"BatchWriteItem": (*Emulator).opBatchWriteItem,
	"GetItem":        (*Emulator).opGetItem,
	"PutItem":        (*Emulator).opPutItem,
	"UpdateItem":     (*Emulator).opUpdateItem,
	"DeleteItem":     (*Emulator).opDeleteItem,
}

// DynamoDB's limits.
const (
	ddbMaxItemBytes      = 400 * 1024
	ddbMaxBatchGetKeys   = 100
	ddbMaxBatchWrites    = 25
	ddbMaxBatchGetAnswer = 16 << 20
)

var tableNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

// dynamoState is every region's tables. The zero value is ready.
type dynamoState struct {
	mu     sync.Mutex
	tables map[string]*ddbTable // account + "/" + region + "/" + name
	// unprocessed makes the next n batch answers leave part of their work unprocessed.
	unprocessed int
}

type ddbTable struct {
	name, arn string
	created   time.Time
	attrs     []ddbAttrDef
	keys      []ddbKey
	billing   string
	items     map[string]map[string]json.RawMessage // by canonical key
}

type ddbAttrDef struct {
	AttributeName string `json:"AttributeName"`
	AttributeType string `json:"AttributeType"`
}

type ddbKey struct {
	AttributeName string `json:"AttributeName"`
	KeyType       string `json:"KeyType"`
}

func ddbValidation(format string, args ...any) *apiError {
	return clientError("ValidationException", format, args...)
}

func ddbNotFound() *apiError {
	return clientError("ResourceNotFoundException", "Requested resource not found")
}

// SetDynamoDBUnprocessed makes the next n BatchGetItem and BatchWriteItem answers process only
// the first half (rounded up) of their keys or requests, returning the rest as UnprocessedKeys
// or UnprocessedItems, as DynamoDB does when a partition is busy.
func (e *Emulator) SetDynamoDBUnprocessed(n int) {
	e.dynamo.mu.Lock()
	defer e.dynamo.mu.Unlock()
	e.dynamo.unprocessed = n
}

// takeUnprocessed reports whether this batch answer leaves work unprocessed. Call with the lock held.
func (s *dynamoState) takeUnprocessed() bool {
	if s.unprocessed > 0 {
		s.unprocessed--
		return true
	}
	return false
}

func (s *dynamoState) table(rc *request, name string) (*ddbTable, error) {
	if name == "" {
		return nil, ddbValidation("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
	}
	t, ok := s.tables[rc.account+"/"+rc.region+"/"+name]
	if !ok {
		return nil, ddbNotFound()
	}
	return t, nil
}

func (e *Emulator) opCreateTable(rc *request) (any, error) {
	var in struct {
		TableName            string
		AttributeDefinitions []ddbAttrDef
		KeySchema            []ddbKey
		BillingMode          string
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if !tableNamePattern.MatchString(in.TableName) {
		return nil, ddbValidation("1 validation error detected: Value '%s' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", in.TableName)
	}
	if len(in.KeySchema) == 0 || len(in.KeySchema) > 2 || in.KeySchema[0].KeyType != "HASH" || (len(in.KeySchema) == 2 && in.KeySchema[1].KeyType != "RANGE") {
		return nil, ddbValidation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
	}
	for _, k := range in.KeySchema {
		if !slices.ContainsFunc(in.AttributeDefinitions, func(a ddbAttrDef) bool { return a.AttributeName == k.AttributeName }) {
			return nil, ddbValidation("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [%s], AttributeDefinitions: [%s]", k.AttributeName, attrNames(in.AttributeDefinitions))
		}
	}
	for _, a := range in.AttributeDefinitions {
		if a.AttributeType != "S" && a.AttributeType != "N" && a.AttributeType != "B" {
			return nil, ddbValidation("1 validation error detected: Value '%s' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]", a.AttributeType)
		}
	}
	if len(in.AttributeDefinitions) != len(in.KeySchema) {
		return nil, ddbValidation("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")
	}
	if in.BillingMode == "" {
		in.BillingMode = "PROVISIONED"
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tables == nil {
		s.tables = map[string]*ddbTable{}
	}
	key := rc.account + "/" + rc.region + "/" + in.TableName
	if _, ok := s.tables[key]; ok {
		return nil, clientError("ResourceInUseException", "Table already exists: %s", in.TableName)
	}
	t := &ddbTable{
		name: in.TableName, arn: "arn:aws:dynamodb:" + rc.region + ":" + rc.account + ":table/" + in.TableName,
		created: e.now(), attrs: in.AttributeDefinitions, keys: in.KeySchema, billing: in.BillingMode,
		items: map[string]map[string]json.RawMessage{},
	}
	s.tables[key] = t
	return map[string]any{"TableDescription": t.description()}, nil
}

func attrNames(defs []ddbAttrDef) string {
	var names []string
	for _, a := range defs {
		names = append(names, a.AttributeName)
	}
	return strings.Join(names, ", ")
}

func (t *ddbTable) description() map[string]any {
	size := 0
	for _, item := range t.items {
		size += ddbItemSize(item)
	}
	return map[string]any{
		"TableName": t.name, "TableArn": t.arn, "TableStatus": "ACTIVE",
		"CreationDateTime": epoch(t.created), "AttributeDefinitions": t.attrs, "KeySchema": t.keys,
		"BillingModeSummary": map[string]any{"BillingMode": t.billing},
		"ItemCount":          len(t.items), "TableSizeBytes": size,
		"ProvisionedThroughput": map[string]any{"ReadCapacityUnits": 0, "WriteCapacityUnits": 0, "NumberOfDecreasesToday": 0},
	}
}

func (e *Emulator) opDescribeTable(rc *request) (any, error) {
	var in struct{ TableName string }
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.table(rc, in.TableName)
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.Code == "ResourceNotFoundException" {
			return nil, clientError("ResourceNotFoundException", "Requested resource not found: Table: %s not found", in.TableName)
		}
		return nil, err
	}
	return map[string]any{"Table": t.description()}, nil
}

// itemKey is the canonical key of an item or key map: the key attributes' values, checked
// against the table's key schema. Extra attributes are refused in a key (asKey).
func (t *ddbTable) itemKey(attrs map[string]json.RawMessage, asKey bool) (string, error) {
	if asKey && len(attrs) != len(t.keys) {
		return "", ddbValidation("The provided key element does not match the schema")
	}
	var parts []string
	for _, k := range t.keys {
		raw, ok := attrs[k.AttributeName]
		if !ok {
			if asKey {
				return "", ddbValidation("The provided key element does not match the schema")
			}
			return "", ddbValidation("One or more parameter values were invalid: Missing the key %s in the item", k.AttributeName)
		}
		want := ""
		for _, a := range t.attrs {
			if a.AttributeName == k.AttributeName {
				want = a.AttributeType
			}
		}
		var v map[string]json.RawMessage
		if err := json.Unmarshal(raw, &v); err != nil || len(v) != 1 || v[want] == nil {
			if asKey {
				return "", ddbValidation("The provided key element does not match the schema")
			}
			return "", ddbValidation("One or more parameter values were invalid: Type mismatch for key %s expected: %s actual: %s", k.AttributeName, want, typeOf(v))
		}
		var scalar string
		if err := json.Unmarshal(v[want], &scalar); err != nil || scalar == "" {
			return "", ddbValidation("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: %s", k.AttributeName)
		}
		parts = append(parts, want+":"+scalar)
	}
	return strings.Join(parts, "\x00"), nil
}

func typeOf(v map[string]json.RawMessage) string {
	for k := range v {
		return k
	}
	return "NULL"
}

// ddbItemSize is an item's size as DynamoDB counts it: attribute names (UTF-8 bytes) plus
// values — strings' bytes, binaries' decoded bytes, numbers' digits, nested documents' content
// plus a few bytes each.
func ddbItemSize(item map[string]json.RawMessage) int {
	n := 0
	for name, raw := range item {
		n += len(name) + ddbValueSize(raw)
	}
	return n
}

func ddbValueSize(raw json.RawMessage) int {
	var v map[string]json.RawMessage
	if json.Unmarshal(raw, &v) != nil {
		return len(raw)
	}
	n := 0
	for typ, body := range v {
		switch typ {
		case "S", "N":
			var s string
			_ = json.Unmarshal(body, &s)
			n += len(s)
		case "B":
			var s string
			_ = json.Unmarshal(body, &s)
			b, _ := base64.StdEncoding.DecodeString(s)
			n += len(b)
		case "SS", "NS":
			var ss []string
			_ = json.Unmarshal(body, &ss)
			for _, s := range ss {
				n += len(s)
			}
		case "BS":
			var ss []string
			_ = json.Unmarshal(body, &ss)
			for _, s := range ss {
				b, _ := base64.StdEncoding.DecodeString(s)
				n += len(b)
			}
		case "BOOL", "NULL":
			n++
		case "L":
			var l []json.RawMessage
			_ = json.Unmarshal(body, &l)
			n += 3
			for _, e := range l {
				n += 1 + ddbValueSize(e)
			}
		case "M":
			var m map[string]json.RawMessage
			_ = json.Unmarshal(body, &m)
			n += 3
			for k, e := range m {
				n += 1 + len(k) + ddbValueSize(e)
			}
		}
	}
	return n
}

func (t *ddbTable) put(item map[string]json.RawMessage) error {
	key, err := t.itemKey(item, false)
	if err != nil {
		return err
	}
	if ddbItemSize(item) > ddbMaxItemBytes {
		return ddbValidation("Item size has exceeded the maximum allowed size")
	}
	t.items[key] = item
	return nil
}

// ddbWrite is what PutItem, UpdateItem and DeleteItem share: the condition and what to return.
type ddbWrite struct {
	TableName                 string
	ConditionExpression       *string
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues map[string]json.RawMessage
	ReturnValues              string
}

func (e *Emulator) opPutItem(rc *request) (any, error) {
	var in struct {
		ddbWrite
		Item map[string]json.RawMessage
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := in.returns("NONE", "ALL_OLD"); err != nil {
		return nil, err
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.table(rc, in.TableName)
	if err != nil {
		return nil, err
	}
	key, err := t.itemKey(in.Item, false)
	if err != nil {
		return nil, err
	}
	old := t.items[key]
	if err := in.check(old, ""); err != nil {
		return nil, err
	}
	if err := t.put(in.Item); err != nil {
		return nil, err
	}
	return in.answer(old, nil), nil
}

func (e *Emulator) opDeleteItem(rc *request) (any, error) {
	var in struct {
		ddbWrite
		Key map[string]json.RawMessage
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := in.returns("NONE", "ALL_OLD"); err != nil {
		return nil, err
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.table(rc, in.TableName)
	if err != nil {
		return nil, err
	}
	key, err := t.itemKey(in.Key, true)
	if err != nil {
		return nil, err
	}
	old := t.items[key]
	if err := in.check(old, ""); err != nil {
		return nil, err
	}
	delete(t.items, key)
	return in.answer(old, nil), nil
}

func (e *Emulator) opUpdateItem(rc *request) (any, error) {
	var in struct {
		ddbWrite
		Key              map[string]json.RawMessage
		UpdateExpression *string
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if err := in.returns("NONE", "ALL_OLD", "ALL_NEW"); err != nil {
		return nil, err
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.table(rc, in.TableName)
	if err != nil {
		return nil, err
	}
	key, err := t.itemKey(in.Key, true)
	if err != nil {
		return nil, err
	}
	var update *ddbUpdate
	if in.UpdateExpression != nil {
		if update, err = parseUpdate(*in.UpdateExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues); err != nil {
			return nil, err
		}
		for _, k := range t.keys {
			if update.touches(k.AttributeName) {
				return nil, ddbValidation("One or more parameter values were invalid: Cannot update attribute %s. This attribute is part of the key", k.AttributeName)
			}
		}
	}
	old := t.items[key]
	used := ""
	if in.UpdateExpression != nil {
		used = *in.UpdateExpression
	}
	if err := in.check(old, used); err != nil {
		return nil, err
	}
	item := maps.Clone(old)
	if item == nil {
		item = maps.Clone(in.Key)
	}
	if update != nil {
		update.apply(item)
	}
	if err := t.put(item); err != nil {
		return nil, err
	}
	return in.answer(old, item), nil
}

func (w *ddbWrite) returns(allowed ...string) error {
	if w.ReturnValues == "" {
		w.ReturnValues = "NONE"
	}
	if !slices.Contains(allowed, w.ReturnValues) {
		return ddbValidation("ReturnValues can only be %s for this operation (the emulator serves %s)", strings.Join(allowed, " or "), strings.Join(allowed, ", "))
	}
	return nil
}

// check evaluates the write's condition against the item as it is (nil: absent), after checking
// that every expression name and value is defined and used (also by the update expression).
func (w *ddbWrite) check(item map[string]json.RawMessage, update string) error {
	cond := ""
	if w.ConditionExpression != nil {
		cond = *w.ConditionExpression
	}
	for _, name := range slices.Sorted(maps.Keys(w.ExpressionAttributeNames)) {
		if !expressionUses(cond, name) && !expressionUses(update, name) {
			return ddbValidation("Value provided in ExpressionAttributeNames unused in expressions: keys: {%s}", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(w.ExpressionAttributeValues)) {
		if !expressionUses(cond, name) && !expressionUses(update, name) {
			return ddbValidation("Value provided in ExpressionAttributeValues unused in expressions: keys: {%s}", name)
		}
	}
	if w.ConditionExpression == nil {
		return nil
	}
	c, err := parseCondition(cond, w.ExpressionAttributeNames, w.ExpressionAttributeValues)
	if err != nil {
		return err
	}
	if !c.eval(item) {
		return clientError("ConditionalCheckFailedException", "The conditional request failed")
	}
	return nil
}

func (w *ddbWrite) answer(old, updated map[string]json.RawMessage) map[string]any {
	switch {
	case w.ReturnValues == "ALL_OLD" && old != nil:
		return map[string]any{"Attributes": old}
	case w.ReturnValues == "ALL_NEW" && updated != nil:
		return map[string]any{"Attributes": updated}
	}
	return map[string]any{}
}

// expressionUses reports whether expr names the placeholder name (":v" or "#n", not ":vw").
func expressionUses(expr, name string) bool {
	for i := 0; ; {
		j := strings.Index(expr[i:], name)
		if j < 0 {
			return false
		}
		end := i + j + len(name)
		if end == len(expr) || !isNameByte(expr[end]) {
			return true
		}
		i = end
	}
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (e *Emulator) opGetItem(rc *request) (any, error) {
	var in struct {
		TableName      string
		Key            map[string]json.RawMessage
		ConsistentRead *bool // every read is consistent here
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.table(rc, in.TableName)
	if err != nil {
		return nil, err
	}
	key, err := t.itemKey(in.Key, true)
	if err != nil {
		return nil, err
	}
	if item, ok := t.items[key]; ok {
		return map[string]any{"Item": item}, nil
	}
	return map[string]any{}, nil
}

// Expressions: a small recursive-descent reading of DynamoDB's condition and update syntax.

// ddbCond is a parsed condition.
type ddbCond interface {
	eval(item map[string]json.RawMessage) bool
}

// ddbOperand is an attribute of the item (name) or an expression value.
type ddbOperand struct {
	name  string
	value json.RawMessage
}

func (o ddbOperand) resolve(item map[string]json.RawMessage) (json.RawMessage, bool) {
	if o.name == "" {
		return o.value, true
	}
	v, ok := item[o.name]
	return v, ok
}

type ddbAnd struct{ l, r ddbCond }
type ddbOr struct{ l, r ddbCond }
type ddbNot struct{ c ddbCond }
type ddbExists struct {
	name string
	want bool
}
type ddbCompare struct {
	op   string
	l, r ddbOperand
}
type ddbBeginsWith struct{ l, r ddbOperand }

func (c ddbAnd) eval(item map[string]json.RawMessage) bool { return c.l.eval(item) && c.r.eval(item) }
func (c ddbOr) eval(item map[string]json.RawMessage) bool  { return c.l.eval(item) || c.r.eval(item) }
func (c ddbNot) eval(item map[string]json.RawMessage) bool { return !c.c.eval(item) }
func (c ddbExists) eval(item map[string]json.RawMessage) bool {
	_, ok := item[c.name]
	return ok == c.want
}

func (c ddbCompare) eval(item map[string]json.RawMessage) bool {
	l, lok := c.l.resolve(item)
	r, rok := c.r.resolve(item)
	if !lok || !rok {
		return false
	}
	cmp, ok := ddbCompareValues(l, r)
	switch c.op {
	case "=":
		return ok && cmp == 0
	case "<>":
		return !ok || cmp != 0
	}
	if !ok {
		return false
	}
	switch c.op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}

func (c ddbBeginsWith) eval(item map[string]json.RawMessage) bool {
	l, lok := c.l.resolve(item)
	r, rok := c.r.resolve(item)
	if !lok || !rok {
		return false
	}
	lt, lv := ddbScalar(l)
	rt, rv := ddbScalar(r)
	return lt == rt && (lt == "S" || lt == "B") && strings.HasPrefix(lv, rv)
}

// ddbScalar is a value's type and, for S, N and B, its content ("" otherwise).
func ddbScalar(raw json.RawMessage) (typ, value string) {
	var v map[string]json.RawMessage
	if json.Unmarshal(raw, &v) != nil || len(v) != 1 {
		return "", ""
	}
	for t, body := range v {
		var s string
		if t == "S" || t == "N" || t == "B" {
			_ = json.Unmarshal(body, &s)
		}
		if t == "B" {
			b, _ := base64.StdEncoding.DecodeString(s)
			s = string(b)
		}
		return t, s
	}
	return "", ""
}

// ddbCompareValues orders two values of one type: S and B by bytes, N by number; others are
// only equal or not. ok is false when the types differ (nothing compares across types).
func ddbCompareValues(a, b json.RawMessage) (cmp int, ok bool) {
	at, av := ddbScalar(a)
	bt, bv := ddbScalar(b)
	if at == "" || at != bt {
		return 0, false
	}
	switch at {
	case "S", "B":
		return strings.Compare(av, bv), true
	case "N":
		x, xerr := strconv.ParseFloat(av, 64)
		y, yerr := strconv.ParseFloat(bv, 64)
		if xerr != nil || yerr != nil {
			return strings.Compare(av, bv), true
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	var x, y any
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	if string(xa) == string(ya) {
		return 0, true
	}
	return 1, true
}

// ddbParser reads one expression's tokens.
type ddbParser struct {
	kind   string // "ConditionExpression" or "UpdateExpression", for messages
	expr   string
	toks   []string
	pos    int
	names  map[string]string
	values map[string]json.RawMessage
}

func newDDBParser(kind, expr string, names map[string]string, values map[string]json.RawMessage) (*ddbParser, error) {
	p := &ddbParser{kind: kind, expr: expr, names: names, values: values}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.ContainsRune("(),=", rune(c)):
			p.toks = append(p.toks, string(c))
			i++
		case c == '<' || c == '>':
			if i+1 < len(expr) && (expr[i+1] == '=' || c == '<' && expr[i+1] == '>') {
				p.toks = append(p.toks, expr[i:i+2])
				i += 2
			} else {
				p.toks = append(p.toks, string(c))
				i++
			}
		case c == '#' || c == ':' || isNameByte(c):
			j := i + 1
			for j < len(expr) && isNameByte(expr[j]) {
				j++
			}
			p.toks = append(p.toks, expr[i:j])
			i = j
		default:
			return nil, ddbValidation("Invalid %s: Syntax error; token: \"%c\", near: \"%s\"", kind, c, expr[max(0, i-4):min(len(expr), i+4)])
		}
	}
	return p, nil
}

func (p *ddbParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *ddbParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *ddbParser) syntax(tok string) error {
	if tok == "" {
		tok = "<EOF>"
	}
	return ddbValidation("Invalid %s: Syntax error; token: \"%s\", near: \"%s\"", p.kind, tok, p.expr)
}

func (p *ddbParser) expect(tok string) error {
	if got := p.next(); !strings.EqualFold(got, tok) {
		return p.syntax(got)
	}
	return nil
}

// path reads an attribute name: a plain name (not a reserved word pinroll would trip on) or a
// #placeholder. Nested paths (a.b, a[0]) are not served.
func (p *ddbParser) path() (string, error) {
	tok := p.next()
	switch {
	case strings.HasPrefix(tok, "#"):
		name, ok := p.names[tok]
		if !ok {
			return "", ddbValidation("Invalid %s: An expression attribute name used in the document path is not defined; attribute name: %s", p.kind, tok)
		}
		return name, nil
	case tok == "" || strings.HasPrefix(tok, ":") || strings.ContainsRune("(),=<>", rune(tok[0])):
		return "", p.syntax(tok)
	case strings.ContainsAny(tok, ".[]"):
		return "", ddbValidation("Invalid %s: nested attribute paths are not served by the emulator: %s", p.kind, tok)
	}
	return tok, nil
}

func (p *ddbParser) operand() (ddbOperand, error) {
	if tok := p.peek(); strings.HasPrefix(tok, ":") {
		p.pos++
		v, ok := p.values[tok]
		if !ok {
			return ddbOperand{}, ddbValidation("Invalid %s: An expression attribute value used in expression is not defined; attribute value: %s", p.kind, tok)
		}
		return ddbOperand{value: v}, nil
	}
	name, err := p.path()
	return ddbOperand{name: name}, err
}

func parseCondition(expr string, names map[string]string, values map[string]json.RawMessage) (ddbCond, error) {
	p, err := newDDBParser("ConditionExpression", expr, names, values)
	if err != nil {
		return nil, err
	}
	if len(p.toks) == 0 {
		return nil, ddbValidation("Invalid ConditionExpression: The expression can not be empty;")
	}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, p.syntax(p.peek())
	}
	return c, nil
}

func (p *ddbParser) or() (ddbCond, error) {
	l, err := p.and()
	for err == nil && strings.EqualFold(p.peek(), "OR") {
		p.pos++
		var r ddbCond
		if r, err = p.and(); err == nil {
			l = ddbOr{l, r}
		}
	}
	return l, err
}

func (p *ddbParser) and() (ddbCond, error) {
	l, err := p.not()
	for err == nil && strings.EqualFold(p.peek(), "AND") {
		p.pos++
		var r ddbCond
		if r, err = p.not(); err == nil {
			l = ddbAnd{l, r}
		}
	}
	return l, err
}

func (p *ddbParser) not() (ddbCond, error) {
	if strings.EqualFold(p.peek(), "NOT") {
		p.pos++
		c, err := p.not()
		return ddbNot{c}, err
	}
	return p.primary()
}

func (p *ddbParser) primary() (ddbCond, error) {
	tok := p.peek()
	switch {
	case tok == "(":
		p.pos++
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		return c, p.expect(")")
	case p.pos+1 < len(p.toks) && p.toks[p.pos+1] == "(":
		p.pos += 2
		switch tok {
		case "attribute_exists", "attribute_not_exists":
			name, err := p.path()
			if err != nil {
				return nil, err
			}
			return ddbExists{name: name, want: tok == "attribute_exists"}, p.expect(")")
		case "begins_with":
			l, err := p.operand()
			if err != nil {
				return nil, err
			}
			if err := p.expect(","); err != nil {
				return nil, err
			}
			r, err := p.operand()
			if err != nil {
				return nil, err
			}
			return ddbBeginsWith{l, r}, p.expect(")")
		}
		return nil, ddbValidation("Invalid ConditionExpression: Invalid function name; function: %s", tok)
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.next()
	if !slices.Contains([]string{"=", "<>", "<", "<=", ">", ">="}, op) {
		return nil, p.syntax(op)
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return ddbCompare{op: op, l: l, r: r}, nil
}

// ddbUpdate is a parsed update expression.
type ddbUpdate struct {
	set    []ddbAssign
	remove []string
}

type ddbAssign struct {
	name string
	to   ddbOperand
}

func (u *ddbUpdate) touches(name string) bool {
	return slices.Contains(u.remove, name) || slices.ContainsFunc(u.set, func(a ddbAssign) bool { return a.name == name })
}

func (u *ddbUpdate) apply(item map[string]json.RawMessage) {
	before := maps.Clone(item) // SET a = b reads b as it was
	for _, a := range u.set {
		if v, ok := a.to.resolve(before); ok {
			item[a.name] = v
		}
	}
	for _, name := range u.remove {
		delete(item, name)
	}
}

func parseUpdate(expr string, names map[string]string, values map[string]json.RawMessage) (*ddbUpdate, error) {
	p, err := newDDBParser("UpdateExpression", expr, names, values)
	if err != nil {
		return nil, err
	}
	u := &ddbUpdate{}
	seen := map[string]bool{}
	for p.pos < len(p.toks) {
		clause := strings.ToUpper(p.next())
		if clause != "SET" && clause != "REMOVE" {
			return nil, p.syntax(clause)
		}
		if seen[clause] {
			return nil, ddbValidation("Invalid UpdateExpression: The \"%s\" section can only be used once in an update expression;", clause)
		}
		seen[clause] = true
		for {
			name, err := p.path()
			if err != nil {
				return nil, err
			}
			if u.touches(name) {
				return nil, ddbValidation("Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [%s], path two: [%s]", name, name)
			}
			if clause == "SET" {
				if err := p.expect("="); err != nil {
					return nil, err
				}
				to, err := p.operand()
				if err != nil {
					return nil, err
				}
				u.set = append(u.set, ddbAssign{name: name, to: to})
			} else {
				u.remove = append(u.remove, name)
			}
			if p.peek() != "," {
				break
			}
			p.pos++
		}
	}
	if len(u.set) == 0 && len(u.remove) == 0 {
		return nil, ddbValidation("Invalid UpdateExpression: The expression can not be empty;")
	}
	return u, nil
}

type ddbKeysAndAttributes struct {
	Keys                     []map[string]json.RawMessage `json:"Keys"`
	ConsistentRead           *bool                        `json:"ConsistentRead,omitempty"`
	ProjectionExpression     *string                      `json:"ProjectionExpression,omitempty"`
	ExpressionAttributeNames map[string]string            `json:"ExpressionAttributeNames,omitempty"`
}

func (e *Emulator) opBatchGetItem(rc *request) (any, error) {
	var in struct {
		RequestItems map[string]ddbKeysAndAttributes
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.RequestItems) == 0 {
		return nil, ddbValidation("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null")
	}
	total := 0
	for _, ka := range in.RequestItems {
		total += len(ka.Keys)
	}
	if total > ddbMaxBatchGetKeys {
		return nil, ddbValidation("Too many items requested for the BatchGetItem call")
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	type asked struct {
		t    *ddbTable
		keys []string
		raw  []map[string]json.RawMessage
	}
	names := slices.Sorted(maps.Keys(in.RequestItems))
	var plan []asked
	for _, name := range names {
		ka := in.RequestItems[name]
		t, err := s.table(rc, name)
		if err != nil {
			return nil, err
		}
		if len(ka.Keys) == 0 {
			return nil, ddbValidation("1 validation error detected: Value '[]' at 'requestItems.%s.member.keys' failed to satisfy constraint: Member must have length greater than or equal to 1", name)
		}
		a := asked{t: t}
		seen := map[string]bool{}
		for _, k := range ka.Keys {
			key, err := t.itemKey(k, true)
			if err != nil {
				return nil, err
			}
			if seen[key] {
				return nil, ddbValidation("Provided list of item keys contains duplicates")
			}
			seen[key] = true
			a.keys = append(a.keys, key)
			a.raw = append(a.raw, k)
		}
		plan = append(plan, a)
	}
	leave := s.takeUnprocessed()
	responses := map[string][]map[string]json.RawMessage{}
	unprocessed := map[string]ddbKeysAndAttributes{}
	size := 0
	for _, a := range plan {
		responses[a.t.name] = []map[string]json.RawMessage{}
		serve := len(a.keys)
		if leave {
			serve = (len(a.keys) + 1) / 2
		}
		for i, key := range a.keys {
			item, ok := a.t.items[key]
			if ok && size+ddbItemSize(item) > ddbMaxBatchGetAnswer {
				serve = min(serve, i)
			}
			if i >= serve {
				u := unprocessed[a.t.name]
				u.Keys = append(u.Keys, a.raw[i])
				ka := in.RequestItems[a.t.name]
				u.ConsistentRead, u.ProjectionExpression, u.ExpressionAttributeNames = ka.ConsistentRead, ka.ProjectionExpression, ka.ExpressionAttributeNames
				unprocessed[a.t.name] = u
				continue
			}
			if ok {
				size += ddbItemSize(item)
				responses[a.t.name] = append(responses[a.t.name], item)
			}
		}
	}
	return map[string]any{"Responses": responses, "UnprocessedKeys": unprocessed}, nil
}

type ddbWriteRequest struct {
	PutRequest *struct {
		Item map[string]json.RawMessage `json:"Item"`
	} `json:"PutRequest,omitempty"`
	DeleteRequest *struct {
		Key map[string]json.RawMessage `json:"Key"`
	} `json:"DeleteRequest,omitempty"`
}

func (e *Emulator) opBatchWriteItem(rc *request) (any, error) {
	var in struct {
		RequestItems map[string][]ddbWriteRequest
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.RequestItems) == 0 {
		return nil, ddbValidation("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null")
	}
	for name, reqs := range in.RequestItems {
		if len(reqs) < 1 || len(reqs) > ddbMaxBatchWrites {
			return nil, ddbValidation("1 validation error detected: Value '{%s=%d requests}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]", name, len(reqs))
		}
	}
	total := 0
	for _, reqs := range in.RequestItems {
		total += len(reqs)
	}
	if total > ddbMaxBatchWrites {
		return nil, ddbValidation("Too many items requested for the BatchWriteItem call")
	}
	s := &e.dynamo
	s.mu.Lock()
	defer s.mu.Unlock()
	// Validate everything first: a batch with one bad request writes nothing, as in DynamoDB.
	type write struct {
		t    *ddbTable
		key  string
		item map[string]json.RawMessage // nil: delete
		req  ddbWriteRequest
	}
	var writes []write
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(in.RequestItems)) {
		t, err := s.table(rc, name)
		if err != nil {
			return nil, err
		}
		for _, r := range in.RequestItems[name] {
			var w write
			switch {
			case r.PutRequest != nil && r.DeleteRequest == nil:
				key, err := t.itemKey(r.PutRequest.Item, false)
				if err != nil {
					return nil, err
				}
				if ddbItemSize(r.PutRequest.Item) > ddbMaxItemBytes {
					return nil, ddbValidation("Item size has exceeded the maximum allowed size")
				}
				w = write{t: t, key: key, item: r.PutRequest.Item, req: r}
			case r.DeleteRequest != nil && r.PutRequest == nil:
				key, err := t.itemKey(r.DeleteRequest.Key, true)
				if err != nil {
					return nil, err
				}
				w = write{t: t, key: key, req: r}
			default:
				return nil, ddbValidation("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")
			}
			if seen[name+"\x00"+w.key] {
				return nil, ddbValidation("Provided list of item keys contains duplicates")
			}
			seen[name+"\x00"+w.key] = true
			writes = append(writes, w)
		}
	}
	serve := len(writes)
	if s.takeUnprocessed() {
		serve = (len(writes) + 1) / 2
	}
	unprocessed := map[string][]ddbWriteRequest{}
	for i, w := range writes {
		if i >= serve {
			unprocessed[w.t.name] = append(unprocessed[w.t.name], w.req)
			continue
		}
		if w.item == nil {
			delete(w.t.items, w.key)
		} else {
			w.t.items[w.key] = w.item
		}
	}
	return map[string]any{"UnprocessedItems": unprocessed}, nil
}

// json10Protocol answers the way DynamoDB does: AWS JSON 1.0, Content-Type
// application/x-amz-json-1.0, and the body's CRC32 in X-Amz-Crc32, which the SDK checks.
type json10Protocol struct{}

func (json10Protocol) writeError(w http.ResponseWriter, ae *apiError) string {
	body, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + ae.Code, "message": ae.Message})
	writeJSON10(w, ae.Status, body)
	return ae.Code
}

func (json10Protocol) writeResult(w http.ResponseWriter, _ string, out any) string {
	data, err := json.Marshal(out)
	if err != nil {
		return json10Protocol{}.writeError(w, serverError("encode response: %v", err))
	}
	writeJSON10(w, http.StatusOK, data)
	return ""
}

func writeJSON10(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
