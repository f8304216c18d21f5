package index

import (
	"context"
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

// Joins are the third kind of item in the index table. A push whose work continues in several
// target accounts runs one chain of continuation steps per account (each account's steps in
// order, apart from the others'); the join lets the chain that finishes last publish one final
// report for the whole event, from the part every account left in it. The first invocation
// writes the join (Begin): the accounts still going, and the part of each account that is
// already done; each chain's last step writes its account's part and takes the account off the
// waiting list in one conditional update (Finish), and the update that leaves nobody waiting
// is the last. DynamoDB applies the updates of one item one at a time, so exactly one chain
// sees the list empty.
//
//	arn        S  partition key: join#<event id>
//	v          N  JoinVersion (1); another version is not trusted
//	ttl        N  Unix seconds when DynamoDB may delete the item: JoinRetention after Begin;
//	              also checked on every write, as DynamoDB deletes expired items only eventually
//	at         N  when the join began (Unix seconds), for people reading the table
//	w_<account> S  present while the account's chain is still going (the value is the account)
//	p_<account> S  the account's final part, as the caller encoded it (opaque here)
//
// Like the cached revisions, a join is an aid, never the source of truth: a join that cannot be
// written or read (table missing, throttled, expired, corrupt) only means each account reports
// on its own (the caller decides; see ErrNoJoin).
const (
	JoinPrefix    = "join#"
	JoinVersion   = 1
	JoinRetention = 14 * 24 * time.Hour

	joinWaiting = "w_"
	joinPart    = "p_"
)

// MaxJoinItem is what a join item may take of DynamoDB's 400 KB, leaving room for its keys and
// attribute names. Callers size the parts by it (a part of MaxJoinItem / accounts each fits).
const MaxJoinItem = 350 * 1000

// ErrNoJoin is a join that is not there to finish: never begun (its Begin failed), expired,
// or not one pinroll wrote.
var ErrNoJoin = errors.New("no join for this event")

// Joins keeps joins in the index table. Safe for concurrent use.
type Joins struct {
	DB   ClaimDB
	Name string
	Now  func() time.Time // time.Now when nil; tests move it
}

// NewJoins returns the joins kept in table name.
func NewJoins(db ClaimDB, name string) *Joins { return &Joins{DB: db, Name: name} }

func (j *Joins) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

// JoinKey is the key of event's join.
func JoinKey(event string) string { return JoinPrefix + event }

// Begin writes event's join: waiting are the accounts whose chains go on, done the parts of the
// accounts already finished. When the join exists already — the first invocation delivered
// again — it adds what it does not know yet, account by account, and never takes back what a
// chain has written: an account with a part or on the waiting list is left as it is.
func (j *Joins) Begin(ctx context.Context, event string, waiting []string, done map[string][]byte) error {
	if len(waiting) == 0 {
		return errors.New("join: no account is still going")
	}
	now := j.now()
	item := map[string]ddbtypes.AttributeValue{
		AttrARN:     &ddbtypes.AttributeValueMemberS{Value: JoinKey(event)},
		AttrVersion: &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(JoinVersion)},
		AttrTTL:     &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(JoinRetention).Unix(), 10)},
		AttrAt:      &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
	}
	for _, a := range waiting {
		item[joinWaiting+a] = &ddbtypes.AttributeValueMemberS{Value: a}
	}
	for a, part := range done {
		item[joinPart+a] = &ddbtypes.AttributeValueMemberS{Value: string(part)}
	}
	_, err := j.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(j.Name), Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": AttrARN},
	})
	if !conditionFailed(err) {
		return j.wrap("PutItem", err)
	}
	for _, a := range slices.Sorted(maps.Keys(done)) {
		if err := j.add(ctx, event, a, joinPart+a, string(done[a]), now); err != nil {
			return err
		}
	}
	for _, a := range waiting {
		if err := j.add(ctx, event, a, joinWaiting+a, a, now); err != nil {
			return err
		}
	}
	return nil
}

// add sets attr (account's part or waiting mark) on a live join that knows nothing of account.
func (j *Joins) add(ctx context.Context, event, account, attr, value string, now time.Time) error {
	_, err := j.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(j.Name),
		Key:                 map[string]ddbtypes.AttributeValue{AttrARN: &ddbtypes.AttributeValueMemberS{Value: JoinKey(event)}},
		UpdateExpression:    aws.String("SET #a = :a"),
		ConditionExpression: aws.String("#v = :v AND #ttl > :now AND attribute_not_exists(#p) AND attribute_not_exists(#w)"),
		ExpressionAttributeNames: map[string]string{"#a": attr, "#v": AttrVersion, "#ttl": AttrTTL,
			"#p": joinPart + account, "#w": joinWaiting + account},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":a":   &ddbtypes.AttributeValueMemberS{Value: value},
			":v":   &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(JoinVersion)},
			":now": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
		},
	})
	if conditionFailed(err) {
		return nil // known already (or the join is gone: its chains report on their own)
	}
	return j.wrap("UpdateItem", err)
}

// Finish writes account's final part and takes the account off the waiting list, in one
// update, and returns the parts written so far (account → part) and how many accounts are
// still waited for: with 0 this is the last, and parts are every account's. A chain's last step delivered twice finishes twice: the second write changes
// nothing and, if it is the last, says so again (its caller then reports again: at least once).
// ErrNoJoin: there is no live join to finish.
func (j *Joins) Finish(ctx context.Context, event, account string, part []byte) (parts map[string][]byte, waiting int, err error) {
	out, err := j.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(j.Name),
		Key:                 map[string]ddbtypes.AttributeValue{AttrARN: &ddbtypes.AttributeValueMemberS{Value: JoinKey(event)}},
		UpdateExpression:    aws.String("SET #p = :p REMOVE #w"),
		ConditionExpression: aws.String("#v = :v AND #ttl > :now"),
		ExpressionAttributeNames: map[string]string{"#p": joinPart + account, "#w": joinWaiting + account,
			"#v": AttrVersion, "#ttl": AttrTTL},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p":   &ddbtypes.AttributeValueMemberS{Value: string(part)},
			":v":   &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(JoinVersion)},
			":now": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(j.now().Unix(), 10)},
		},
		ReturnValues: ddbtypes.ReturnValueAllNew,
	})
	if conditionFailed(err) {
		return nil, 0, fmt.Errorf("%w: %s (never begun, expired, or not pinroll's)", ErrNoJoin, JoinKey(event))
	}
	if err != nil {
		return nil, 0, j.wrap("UpdateItem", err)
	}
	parts = map[string][]byte{}
	for name, v := range out.Attributes {
		s, ok := v.(*ddbtypes.AttributeValueMemberS)
		switch {
		case strings.HasPrefix(name, joinWaiting):
			waiting++
		case strings.HasPrefix(name, joinPart) && ok:
			parts[strings.TrimPrefix(name, joinPart)] = []byte(s.Value)
		}
	}
	return parts, waiting, nil
}

func conditionFailed(err error) bool {
	var ccf *ddbtypes.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func (j *Joins) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("index table %s: %s of a join: %w", j.Name, op, err)
}
