package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Claims are the other kind of item in the index table: before registering a new revision, an
// invocation claims the change — (base revision, digest, images) — with a conditional write, so
// that of several invocations handling the same event at once (reserved concurrency above 1, a
// redelivery, a continuation consumed twice, the CLI beside the function) exactly one registers
// it; the others wait for the revision it writes back and reuse it. The holder writes twice:
// the claim (Put or TakeOver) and, once done, its revision (Record); a holder still working
// when half its lease is gone renews it (Renew).
//
// A claim item shares the table with the cached revisions but never collides with them: its key
// starts with ClaimPrefix, never the "arn:" of a task definition. Items:
//
//	arn     S     partition key: claim#<base revision ARN>#<hex SHA-256 of the digest and images>
//	                (the base revision's ARN holds the account, the region and the family)
//	v       N     schema version of the claim (ClaimVersion, 1); another version is not trusted
//	owner   S     a random token of the invocation holding the claim
//	expires N     end of the holder's lease, Unix milliseconds, checked on every read: a claim
//	              past it, with no revision, may be taken over (conditional on owner and expires)
//	ttl     N     Unix seconds when DynamoDB may delete the item (the table's time-to-live
//	              attribute): a day after the claim, so a finished claim answers late duplicates
//	rev     S     the revision registered for the change, written with done
//	done    BOOL  true once the holder has registered it and updated its services
//	base    S     the base revision ARN, digest S the pushed digest, event S the event ID, at N
//	              when claimed (Unix seconds): for people reading the table
//
// DynamoDB deletes expired items only eventually (within days), so expiry is decided by
// expires, on read, never by the item's presence.
const (
	ClaimPrefix  = "claim#"
	ClaimVersion = 1

	AttrOwner   = "owner"
	AttrExpires = "expires"
	AttrTTL     = "ttl"
	AttrRev     = "rev"
	AttrDone    = "done"
	AttrBase    = "base"
	AttrDigest  = "digest"
	AttrEvent   = "event"

	// ClaimRetention is how long a claim item is kept (its ttl) after it is made.
	ClaimRetention = 24 * time.Hour
)

// ClaimDB is the part of the DynamoDB API claims use, with the SDK's exact signatures.
type ClaimDB interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ ClaimDB = (*dynamodb.Client)(nil)

// Claim is one claim item.
type Claim struct {
	Key      string
	Owner    string
	Expires  time.Time // the end of the holder's lease
	Revision string    // "" until the holder registered (or found) the revision
	Done     bool      // the holder has updated its services too
	Base     string
	Digest   string
	Event    string
	At       time.Time
}

// Expired reports whether the holder's lease is over at now.
func (c *Claim) Expired(now time.Time) bool { return !now.Before(c.Expires) }

// ClaimKey is the key of the claim on registering, from the revision base, the revision that
// pins images (container name → image) for digest.
func ClaimKey(base, digest string, images map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", digest)
	for _, name := range slices.Sorted(maps.Keys(images)) {
		fmt.Fprintf(h, "%s=%s\n", name, images[name])
	}
	return ClaimPrefix + base + "#" + hex.EncodeToString(h.Sum(nil))
}

// ErrClaimed is a conditional write that lost: the claim is another invocation's (or, for
// Record and Release, no longer this one's).
var ErrClaimed = errors.New("claimed by another invocation")

// ErrBadClaim is a claim item that is not one pinroll wrote (corrupt, another version).
var ErrBadClaim = errors.New("not a claim pinroll can read")

// Claims keeps claims in the index table. Safe for concurrent use.
type Claims struct {
	DB   ClaimDB
	Name string
}

// NewClaims returns the claims kept in table name.
func NewClaims(db ClaimDB, name string) *Claims { return &Claims{DB: db, Name: name} }

// The expressions name attributes through placeholders: owner is a DynamoDB reserved word.

// Put makes a new claim: it succeeds only if no item has c's key (ErrClaimed otherwise).
func (s *Claims) Put(ctx context.Context, c Claim) error {
	_, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.Name), Item: encodeClaim(c),
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": AttrARN},
	})
	return s.wrap("PutItem", err)
}

// TakeOver replaces old, a claim whose lease is over, by c: it succeeds only if the item is
// still old (same owner and expiry), so of several invocations taking it over one wins.
func (s *Claims) TakeOver(ctx context.Context, c, old Claim) error {
	_, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.Name), Item: encodeClaim(c),
		ConditionExpression:      aws.String("#o = :old AND #e = :exp"),
		ExpressionAttributeNames: map[string]string{"#o": AttrOwner, "#e": AttrExpires},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":old": &ddbtypes.AttributeValueMemberS{Value: old.Owner},
			":exp": &ddbtypes.AttributeValueMemberN{Value: millis(old.Expires)},
		},
	})
	return s.wrap("PutItem", err)
}

// Get reads the claim of key with a consistent read (nil when there is none).
func (s *Claims) Get(ctx context.Context, key string) (*Claim, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.Name), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{AttrARN: &ddbtypes.AttributeValueMemberS{Value: key}},
	})
	if err != nil {
		return nil, s.wrap("GetItem", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	return decodeClaim(key, out.Item)
}

// Record writes the holder's revision on its claim, whether it is done (its services updated),
// and the new end of its lease: only while the claim is still owner's (ErrClaimed otherwise).
func (s *Claims) Record(ctx context.Context, key, owner, revision string, done bool, expires time.Time) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Name),
		Key:                      map[string]ddbtypes.AttributeValue{AttrARN: &ddbtypes.AttributeValueMemberS{Value: key}},
		UpdateExpression:         aws.String("SET #r = :r, #d = :d, #e = :e"),
		ConditionExpression:      aws.String("#o = :me"),
		ExpressionAttributeNames: map[string]string{"#r": AttrRev, "#d": AttrDone, "#e": AttrExpires, "#o": AttrOwner},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":r": &ddbtypes.AttributeValueMemberS{Value: revision}, ":d": &ddbtypes.AttributeValueMemberBOOL{Value: done},
			":e":  &ddbtypes.AttributeValueMemberN{Value: millis(expires)},
			":me": &ddbtypes.AttributeValueMemberS{Value: owner},
		},
	})
	return s.wrap("UpdateItem", err)
}

// Renew moves the end of owner's lease to expires: only while the claim is still owner's
// (ErrClaimed otherwise).
func (s *Claims) Renew(ctx context.Context, key, owner string, expires time.Time) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Name),
		Key:                      map[string]ddbtypes.AttributeValue{AttrARN: &ddbtypes.AttributeValueMemberS{Value: key}},
		UpdateExpression:         aws.String("SET #e = :e"),
		ConditionExpression:      aws.String("#o = :me"),
		ExpressionAttributeNames: map[string]string{"#e": AttrExpires, "#o": AttrOwner},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":e": &ddbtypes.AttributeValueMemberN{Value: millis(expires)}, ":me": &ddbtypes.AttributeValueMemberS{Value: owner},
		},
	})
	return s.wrap("UpdateItem", err)
}

// Release deletes owner's claim, when its holder knows it registered nothing: the next
// invocation may claim the change at once instead of waiting for the lease to end.
func (s *Claims) Release(ctx context.Context, key, owner string) error {
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.Name),
		Key:                       map[string]ddbtypes.AttributeValue{AttrARN: &ddbtypes.AttributeValueMemberS{Value: key}},
		ConditionExpression:       aws.String("#o = :me"),
		ExpressionAttributeNames:  map[string]string{"#o": AttrOwner},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":me": &ddbtypes.AttributeValueMemberS{Value: owner}},
	})
	return s.wrap("DeleteItem", err)
}

func (s *Claims) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrClaimed
	}
	return fmt.Errorf("index table %s: %s of a claim: %w", s.Name, op, err)
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func encodeClaim(c Claim) map[string]ddbtypes.AttributeValue {
	at := c.At
	if at.IsZero() {
		at = time.Now()
	}
	item := map[string]ddbtypes.AttributeValue{
		AttrARN:     &ddbtypes.AttributeValueMemberS{Value: c.Key},
		AttrVersion: &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(ClaimVersion)},
		AttrOwner:   &ddbtypes.AttributeValueMemberS{Value: c.Owner},
		AttrExpires: &ddbtypes.AttributeValueMemberN{Value: millis(c.Expires)},
		AttrTTL:     &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(at.Add(ClaimRetention).Unix(), 10)},
		AttrDone:    &ddbtypes.AttributeValueMemberBOOL{Value: c.Done},
		AttrAt:      &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(at.Unix(), 10)},
	}
	for name, v := range map[string]string{AttrRev: c.Revision, AttrBase: c.Base, AttrDigest: c.Digest, AttrEvent: c.Event} {
		if v != "" {
			item[name] = &ddbtypes.AttributeValueMemberS{Value: v}
		}
	}
	return item
}

func decodeClaim(key string, item map[string]ddbtypes.AttributeValue) (*Claim, error) {
	bad := func(why string) (*Claim, error) { return nil, fmt.Errorf("%w: claim %s: %s", ErrBadClaim, key, why) }
	if got := stringAttr(item, AttrARN); got != key {
		return bad(fmt.Sprintf("read as %q", got))
	}
	v, ok := item[AttrVersion].(*ddbtypes.AttributeValueMemberN)
	if !ok || v.Value != strconv.Itoa(ClaimVersion) {
		return bad(fmt.Sprintf("not of version %d", ClaimVersion))
	}
	c := &Claim{Key: key, Owner: stringAttr(item, AttrOwner), Revision: stringAttr(item, AttrRev),
		Base: stringAttr(item, AttrBase), Digest: stringAttr(item, AttrDigest), Event: stringAttr(item, AttrEvent)}
	if c.Owner == "" {
		return bad("no owner")
	}
	exp, ok := item[AttrExpires].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return bad("no expiry")
	}
	ms, err := strconv.ParseInt(exp.Value, 10, 64)
	if err != nil {
		return bad("expiry " + exp.Value)
	}
	c.Expires = time.UnixMilli(ms)
	if d, ok := item[AttrDone].(*ddbtypes.AttributeValueMemberBOOL); ok {
		c.Done = d.Value
	}
	if at, ok := item[AttrAt].(*ddbtypes.AttributeValueMemberN); ok {
		if sec, err := strconv.ParseInt(at.Value, 10, 64); err == nil {
			c.At = time.Unix(sec, 0)
		}
	}
	if c.Revision != "" && !strings.HasPrefix(c.Revision, "arn:") {
		return bad("revision " + c.Revision)
	}
	return c, nil
}
