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

// DynamoDB: the operations pinroll's index uses (CreateTable, DescribeTable, BatchGetItem,
// BatchWriteItem, GetItem, PutItem) over the AWS JSON 1.0 protocol (X-Amz-Target
// DynamoDB_20120810.<op>), with DynamoDB's limits and messages: 100 keys a BatchGetItem, 25
// requests a BatchWriteItem, 400 KB an item, 16 MB a BatchGetItem answer (the rest comes back
// as UnprocessedKeys). Tables are per account and region; they are ACTIVE as soon as created, on-demand
// whatever the billing mode asked, and never throttle (faults and latency hooks apply as to
// every operation). Expressions, queries, scans and indexes are not served.
const dynamodbTargetPrefix = "DynamoDB_20120810."

var dynamodbOperations = map[string]opFunc{
	"CreateTable":    (*Emulator).opCreateTable,
	"DescribeTable":  (*Emulator).opDescribeTable,
	"BatchGetItem":   (*Emulator).opBatchGetItem,
	"BatchWriteItem": (*Emulator).opBatchWriteItem,
	"GetItem":        (*Emulator).opGetItem,
	"PutItem":        (*Emulator).opPutItem,
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

func (e *Emulator) opPutItem(rc *request) (any, error) {
	var in struct {
		TableName string
		Item      map[string]json.RawMessage
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
	return map[string]any{}, t.put(in.Item)
}

func (e *Emulator) opGetItem(rc *request) (any, error) {
	var in struct {
		TableName string
		Key       map[string]json.RawMessage
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
