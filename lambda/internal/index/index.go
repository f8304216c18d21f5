// Package index keeps what discovery learns about each task-definition revision in a DynamoDB
// table (PINROLL_INDEX_TABLE), so a new process — a Lambda cold start — describes only the
// revisions nobody has described before. A task-definition ARN with a revision is immutable, so
// an entry is true forever and is never invalidated.
//
// The same table also holds claims (see Claims), items whose keys start with ClaimPrefix: they
// make registrations safe when several invocations handle one change at once.
//
// The table is an optimisation, never a source of truth. Every item is checked on the way out
// (its key, schema version, checksum, and the ARN inside the decoded task definition); one that
// does not match is ignored, and the caller describes the revision from ECS and rewrites it.
//
// # Table and items
//
// One table, shared by every account pinroll deploys in: the partition key is the task
// definition ARN, which holds the account and the region, so entries of two accounts can never
// mix. There is no sort key. Items:
//
//	arn  S  partition key: arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>
//	v    N  schema version of the item (SchemaVersion, 1); another version is ignored
//	td   B  gzip of the DescribeTaskDefinition answer (include TAGS) in ECS's own JSON wire
//	        form, {"taskDefinition":{…},"tags":[…]}, written and read by the SDK's own codec
//	sha  S  hex SHA-256 of the uncompressed JSON in td
//	at   N  when the item was written, Unix seconds (for people; pinroll does not read it)
//
// Item size: RegisterTaskDefinition takes at most 64 KiB, and its described JSON compresses
// several times over, so items are a few KiB. pinroll never writes an item above MaxItemBytes
// (well under DynamoDB's 400 KB), and never inflates td beyond MaxDecodedBytes.
package index

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/pinroll/pinroll/lambda/internal/sleep"
)

// DynamoDB is the part of the DynamoDB API the index uses, with the SDK's exact signatures.
type DynamoDB interface {
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Attribute names and the item format (see the package documentation).
const (
	AttrARN     = "arn"
	AttrVersion = "v"
	AttrData    = "td"
	AttrSHA     = "sha"
	AttrAt      = "at"

	SchemaVersion = 1
)

// Limits.
const (
	// ReadBatch is BatchGetItem's maximum keys per call; WriteBatch BatchWriteItem's maximum
	// requests per call.
	ReadBatch  = 100
	WriteBatch = 25
	// MaxItemBytes bounds an item pinroll writes (DynamoDB's limit is 400 KB, names included).
	MaxItemBytes = 300 << 10
	// MaxDecodedBytes bounds the JSON inflated from one item: a 64 KiB task definition with its
	// tags is far below it; a corrupt or hostile item cannot make pinroll allocate more.
	MaxDecodedBytes = 1 << 20
	// DefaultAttempts bounds the calls made for one batch while DynamoDB answers with
	// unprocessed keys or items.
	DefaultAttempts = 5
)

// Revision is one described task definition with its tags: discover.TaskDefinition's content.
type Revision struct {
	Definition *types.TaskDefinition
	Tags       []types.Tag
}

// Table is the index in one DynamoDB table. Safe for concurrent use.
type Table struct {
	DB   DynamoDB
	Name string
	// Attempts bounds the calls per batch while items come back unprocessed (0: DefaultAttempts).
	Attempts int
	// Backoff is the wait before retry n (1, 2, …) of unprocessed work; nil: 20 ms doubling,
	// at most 1 s.
	Backoff func(n int) time.Duration
	// Now stamps the at attribute; nil: time.Now.
	Now func() time.Time
}

// New returns the index in table name, read and written through db.
func New(db DynamoDB, name string) *Table { return &Table{DB: db, Name: name} }

func (t *Table) attempts() int {
	if t.Attempts > 0 {
		return t.Attempts
	}
	return DefaultAttempts
}

func (t *Table) backoff(n int) time.Duration {
	if t.Backoff != nil {
		return t.Backoff(n)
	}
	return min(20*time.Millisecond<<(n-1), time.Second)
}

// Result is what the table held for the ARNs asked for.
type Result struct {
	// Found are the revisions whose items decoded and matched their key.
	Found map[string]*Revision
	// Bad are the ARNs whose item was present but corrupt, oversized, of another schema
	// version or for another ARN: ignored; the caller describes and rewrites them.
	Bad map[string]error
	// Calls is the number of BatchGetItem calls made.
	Calls int
}

// Get reads the items of arns, ReadBatch keys a call, retrying unprocessed keys with backoff
// (bounded; what is still unprocessed is simply not found). An ARN absent from Found and Bad
// is not in the table. An error means the table could not be read (missing, access denied,
// throttled beyond the SDK's retries…); Result then holds what earlier batches found.
func (t *Table) Get(ctx context.Context, arns []string) (Result, error) {
	res := Result{Found: map[string]*Revision{}, Bad: map[string]error{}}
	arns = slices.Compact(slices.Sorted(slices.Values(arns)))
	for batch := range slices.Chunk(arns, ReadBatch) {
		keys := make([]map[string]ddbtypes.AttributeValue, len(batch))
		for i, arn := range batch {
			keys[i] = map[string]ddbtypes.AttributeValue{AttrARN: &ddbtypes.AttributeValueMemberS{Value: arn}}
		}
		wanted := map[string]bool{}
		for _, arn := range batch {
			wanted[arn] = true
		}
		req := map[string]ddbtypes.KeysAndAttributes{t.Name: {Keys: keys}}
		for attempt := 1; len(req) > 0; attempt++ {
			if attempt > 1 {
				if attempt > t.attempts() {
					break // still unprocessed: not found, described from ECS
				}
				if err := sleep.For(ctx, t.backoff(attempt-1)); err != nil {
					return res, err
				}
			}
			res.Calls++
			out, err := t.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return res, fmt.Errorf("index table %s: BatchGetItem: %w", t.Name, err)
			}
			for _, item := range out.Responses[t.Name] {
				arn := stringAttr(item, AttrARN)
				if !wanted[arn] {
					continue // not a key asked for: garbage, ignored
				}
				rev, err := Decode(arn, item)
				if err != nil {
					res.Bad[arn] = err
					continue
				}
				res.Found[arn] = rev
			}
			req = nil
			if u, ok := out.UnprocessedKeys[t.Name]; ok && len(u.Keys) > 0 {
				req = map[string]ddbtypes.KeysAndAttributes{t.Name: u}
			}
		}
	}
	return res, nil
}

// Put writes revs, WriteBatch items a call, retrying unprocessed items with backoff (bounded).
// A revision whose item would exceed MaxItemBytes is not written (ErrTooLarge in the joined
// error, after the rest are written). Items are overwritten: a revision is immutable, so two
// writers of one ARN write the same content, and a corrupt item is replaced.
func (t *Table) Put(ctx context.Context, revs []*Revision) (calls int, err error) {
	var writes []ddbtypes.WriteRequest
	var problems []error
	for _, rev := range revs {
		item, err := t.Encode(rev)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item}})
	}
	for batch := range slices.Chunk(writes, WriteBatch) {
		req := map[string][]ddbtypes.WriteRequest{t.Name: batch}
		for attempt := 1; len(req[t.Name]) > 0; attempt++ {
			if attempt > 1 {
				if attempt > t.attempts() {
					problems = append(problems, fmt.Errorf("index table %s: %d items still unprocessed after %d attempts", t.Name, len(req[t.Name]), t.attempts()))
					break
				}
				if err := sleep.For(ctx, t.backoff(attempt-1)); err != nil {
					return calls, errors.Join(append(problems, err)...)
				}
			}
			calls++
			out, err := t.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
			if err != nil {
				return calls, errors.Join(append(problems, fmt.Errorf("index table %s: BatchWriteItem: %w", t.Name, err))...)
			}
			req = map[string][]ddbtypes.WriteRequest{t.Name: out.UnprocessedItems[t.Name]}
		}
	}
	return calls, errors.Join(problems...)
}

// ErrTooLarge is a revision whose item would exceed MaxItemBytes.
var ErrTooLarge = errors.New("item too large for the index")

// Encode is rev's item.
func (t *Table) Encode(rev *Revision) (map[string]ddbtypes.AttributeValue, error) {
	if rev == nil || rev.Definition == nil || aws.ToString(rev.Definition.TaskDefinitionArn) == "" {
		return nil, errors.New("index: a revision without a task definition ARN")
	}
	arn := aws.ToString(rev.Definition.TaskDefinitionArn)
	raw, err := Marshal(rev)
	if err != nil {
		return nil, fmt.Errorf("index: encode %s: %w", arn, err)
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	sum := sha256.Sum256(raw)
	now := time.Now
	if t != nil && t.Now != nil {
		now = t.Now
	}
	item := map[string]ddbtypes.AttributeValue{
		AttrARN:     &ddbtypes.AttributeValueMemberS{Value: arn},
		AttrVersion: &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(SchemaVersion)},
		AttrData:    &ddbtypes.AttributeValueMemberB{Value: z.Bytes()},
		AttrSHA:     &ddbtypes.AttributeValueMemberS{Value: hex.EncodeToString(sum[:])},
		AttrAt:      &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now().Unix(), 10)},
	}
	if n := ItemSize(item); n > MaxItemBytes {
		return nil, fmt.Errorf("%w: %s would take %d bytes (limit %d)", ErrTooLarge, arn, n, MaxItemBytes)
	}
	return item, nil
}

// Decode checks and decodes the item read for arn.
func Decode(arn string, item map[string]ddbtypes.AttributeValue) (*Revision, error) {
	if got := stringAttr(item, AttrARN); got != arn {
		return nil, fmt.Errorf("index: item for %q read as %q", got, arn)
	}
	if n := ItemSize(item); n > 400_000 {
		return nil, fmt.Errorf("index: item of %d bytes, above DynamoDB's 400 KB", n)
	}
	v, ok := item[AttrVersion].(*ddbtypes.AttributeValueMemberN)
	if !ok || v.Value != strconv.Itoa(SchemaVersion) {
		return nil, fmt.Errorf("index: item %s is not of schema version %d", arn, SchemaVersion)
	}
	data, ok := item[AttrData].(*ddbtypes.AttributeValueMemberB)
	if !ok {
		return nil, fmt.Errorf("index: item %s holds no %s", arn, AttrData)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data.Value))
	if err != nil {
		return nil, fmt.Errorf("index: item %s: %w", arn, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxDecodedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("index: item %s: %w", arn, err)
	}
	if len(raw) > MaxDecodedBytes {
		return nil, fmt.Errorf("index: item %s inflates beyond %d bytes", arn, MaxDecodedBytes)
	}
	sum := sha256.Sum256(raw)
	if stringAttr(item, AttrSHA) != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("index: item %s does not match its checksum", arn)
	}
	rev, err := Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("index: item %s: %w", arn, err)
	}
	if rev.Definition == nil || aws.ToString(rev.Definition.TaskDefinitionArn) != arn {
		return nil, fmt.Errorf("index: item %s holds another task definition", arn)
	}
	return rev, nil
}

// ItemSize is the size DynamoDB counts for item: attribute names plus values (numbers counted
// as their decimal text, a safe over-estimate).
func ItemSize(item map[string]ddbtypes.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v ddbtypes.AttributeValue) int {
	switch v := v.(type) {
	case *ddbtypes.AttributeValueMemberS:
		return len(v.Value)
	case *ddbtypes.AttributeValueMemberN:
		return len(v.Value)
	case *ddbtypes.AttributeValueMemberB:
		return len(v.Value)
	case *ddbtypes.AttributeValueMemberBOOL, *ddbtypes.AttributeValueMemberNULL:
		return 1
	case *ddbtypes.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *ddbtypes.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *ddbtypes.AttributeValueMemberBS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *ddbtypes.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *ddbtypes.AttributeValueMemberM:
		n := 3
		for _, k := range slices.Sorted(maps.Keys(v.Value)) {
			n += 1 + len(k) + valueSize(v.Value[k])
		}
		return n
	}
	return 0
}

func stringAttr(item map[string]ddbtypes.AttributeValue, name string) string {
	if s, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// The codec: ECS's DescribeTaskDefinition answer in ECS's JSON wire form, encoded and decoded by
// the SDK's own schema serde (which knows the unions, such as SharingStrategy, that
// encoding/json cannot decode), so nothing the SDK can hold is lost.
var (
	codecOnce sync.Once
	codec     *awsjson.Protocol
	codecOp   *smithy.OperationSchema
)

func initCodec() {
	codecOnce.Do(func() {
		codec = awsjson.New11(smithy.NewServiceSchema(smithy.NewSchema(smithy.ShapeID{Namespace: "com.amazonaws.ecs", Name: "AmazonEC2ContainerServiceV20141113"}, smithy.ShapeTypeService, 0), "2014-11-13"))
		shape := smithy.NewSchema(smithy.ShapeID{Namespace: "com.amazonaws.ecs", Name: "DescribeTaskDefinitionResponse"}, smithy.ShapeTypeStructure, 0)
		codecOp = smithy.NewOperationSchema(smithy.NewSchema(smithy.ShapeID{Namespace: "com.amazonaws.ecs", Name: "DescribeTaskDefinition"}, smithy.ShapeTypeOperation, 0), shape, shape)
	})
}

// Marshal is rev as ECS's DescribeTaskDefinition JSON answer.
func Marshal(rev *Revision) ([]byte, error) {
	initCodec()
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	if err := codec.SerializeRequest(context.Background(), codecOp, &ecs.DescribeTaskDefinitionOutput{TaskDefinition: rev.Definition, Tags: rev.Tags}, req); err != nil {
		return nil, err
	}
	return io.ReadAll(req.GetStream())
}

// Unmarshal decodes ECS's DescribeTaskDefinition JSON answer.
func Unmarshal(raw []byte) (*Revision, error) {
	initCodec()
	var out ecs.DescribeTaskDefinitionOutput
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(raw))}}
	if err := codec.DeserializeResponse(context.Background(), codecOp, nil, resp, &out); err != nil {
		return nil, err
	}
	return &Revision{Definition: out.TaskDefinition, Tags: out.Tags}, nil
}
