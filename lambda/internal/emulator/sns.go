package emulator

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// SNS: topics and Publish. Nothing is delivered to subscribers; every published message is
// recorded for Published.

var snsOperations = map[string]opFunc{
	"CreateTopic": (*Emulator).opCreateTopic,
	"DeleteTopic": (*Emulator).opDeleteTopic,
	"Publish":     (*Emulator).opPublish,
}

// SNS limits.
const (
	snsMaxMessage    = 256 * 1024
	snsMaxSubject    = 99 // "must be less than 100 characters"
	snsMaxAttributes = 10
)

var topicNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

type topic struct {
	arn, name string
}

// Publication is one message published to a topic.
type Publication struct {
	TopicARN   string
	Subject    string // "" when none was given
	Message    string
	Attributes map[string]MessageAttribute // nil when none
	MessageID  string
	Account    string // the account of the publisher's credentials
	Region     string
	Time       time.Time
}

// MessageAttribute is a message attribute of a Publication.
type MessageAttribute struct {
	DataType    string // String, String.Array, Number or Binary
	StringValue string
	BinaryValue []byte
}

// Published returns every message published so far, in order.
func (e *Emulator) Published() []Publication {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.pubs)
}

func snsInvalid(format string, args ...any) *apiError {
	return queryError(http.StatusBadRequest, "InvalidParameter", format, args...)
}

type createTopicResult struct {
	XMLName  xml.Name `xml:"CreateTopicResult"`
	TopicArn string   `xml:"TopicArn"`
}

func (e *Emulator) opCreateTopic(rc *request) (any, error) {
	name := rc.form.Get("Name")
	base, _ := strings.CutSuffix(name, ".fifo")
	if !topicNamePattern.MatchString(base) || len(name) > 256 {
		return nil, snsInvalid("Invalid parameter: Topic Name %q: up to 256 letters, digits, hyphens and underscores (a FIFO topic ends in .fifo)", name)
	}
	return createTopicResult{TopicArn: e.CreateTopic(rc.account, rc.region, name)}, nil
}

// opDeleteTopic deletes a topic; deleting one that does not exist is not an error, as in SNS.
func (e *Emulator) opDeleteTopic(rc *request) (any, error) {
	arn := rc.form.Get("TopicArn")
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.topicFor(rc, arn); err != nil && err.Code != "NotFound" {
		return nil, err
	}
	delete(e.topics, arn)
	return nil, nil
}

// topicFor finds a topic the caller may publish to: one of its own account, in its region.
// Call with e.mu held.
func (e *Emulator) topicFor(rc *request, arn string) (*topic, *apiError) {
	if arn == "" {
		return nil, snsInvalid("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
	}
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" {
		return nil, snsInvalid("Invalid parameter: TopicArn Reason: %q is not a topic ARN", arn)
	}
	if parts[3] != rc.region {
		return nil, snsInvalid("Invalid parameter: TopicArn Reason: A ARN must be in the same region as the endpoint (%s), not %s", rc.region, parts[3])
	}
	t, ok := e.topics[arn]
	if !ok {
		return nil, queryError(http.StatusNotFound, "NotFound", "Topic does not exist")
	}
	if parts[4] != rc.account {
		return nil, queryError(http.StatusForbidden, "AuthorizationError", "User: %s is not authorized to perform: SNS:Publish on resource: %s (the emulator has no topic policies: only the topic's account may publish)", rc.caller.arn, arn)
	}
	return t, nil
}

type publishResult struct {
	XMLName   xml.Name `xml:"PublishResult"`
	MessageID string   `xml:"MessageId"`
}

func (e *Emulator) opPublish(rc *request) (any, error) {
	f := rc.form
	arn := f.Get("TopicArn")
	if arn == "" {
		arn = f.Get("TargetArn")
	}
	if f.Get("PhoneNumber") != "" {
		return nil, snsInvalid("Invalid parameter: PhoneNumber: the emulator publishes to topics only")
	}
	message := f.Get("Message")
	switch {
	case !f.Has("Message"):
		return nil, queryError(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null")
	case message == "":
		return nil, snsInvalid("Invalid parameter: Empty message")
	case len(message) > snsMaxMessage:
		return nil, snsInvalid("Invalid parameter: Message too long: %d bytes, at most %d", len(message), snsMaxMessage)
	case f.Get("MessageStructure") != "" && f.Get("MessageStructure") != "json":
		return nil, snsInvalid("Invalid parameter: MessageStructure: only json is supported")
	}
	subject := f.Get("Subject")
	if f.Has("Subject") {
		switch {
		case subject == "":
			return nil, snsInvalid("Invalid parameter: Subject Reason: Subject must not be empty")
		case len(subject) > snsMaxSubject:
			return nil, snsInvalid("Invalid parameter: Subject Reason: Subject must be less than 100 characters long (got %d)", len(subject))
		case strings.ContainsFunc(subject, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }):
			return nil, snsInvalid("Invalid parameter: Subject Reason: Subject must be ASCII text that begins with a letter, number, or punctuation mark; must not include line breaks or control characters")
		}
	}
	attrs, ae := messageAttributes(f.Get, f.Has)
	if ae != nil {
		return nil, ae
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ae := e.topicFor(rc, arn)
	if ae != nil {
		return nil, ae
	}
	id := newUUID()
	e.pubs = append(e.pubs, Publication{
		TopicARN: t.arn, Subject: subject, Message: message, Attributes: attrs, MessageID: id,
		Account: rc.account, Region: rc.region, Time: e.now(),
	})
	return publishResult{MessageID: id}, nil
}

// messageAttributes reads MessageAttributes.entry.N.{Name,Value.DataType,Value.StringValue,
// Value.BinaryValue}.
func messageAttributes(get func(string) string, has func(string) bool) (map[string]MessageAttribute, *apiError) {
	var attrs map[string]MessageAttribute
	for i := 1; ; i++ {
		prefix := "MessageAttributes.entry." + strconv.Itoa(i) + "."
		if !has(prefix + "Name") {
			break
		}
		name := get(prefix + "Name")
		if attrs == nil {
			attrs = map[string]MessageAttribute{}
		}
		if _, dup := attrs[name]; dup || name == "" {
			return nil, snsInvalid("Invalid parameter: MessageAttributes: attribute name %q is empty or given twice", name)
		}
		a := MessageAttribute{DataType: get(prefix + "Value.DataType"), StringValue: get(prefix + "Value.StringValue")}
		base, _, _ := strings.Cut(a.DataType, ".")
		switch base {
		case "String", "Number":
			if !has(prefix + "Value.StringValue") {
				return nil, snsInvalid("Invalid parameter: MessageAttributes: the message attribute '%s' with type '%s' must contain a non-empty value", name, a.DataType)
			}
		case "Binary":
			b, err := base64.StdEncoding.DecodeString(get(prefix + "Value.BinaryValue"))
			if err != nil || len(b) == 0 {
				return nil, snsInvalid("Invalid parameter: MessageAttributes: the message attribute '%s' with type 'Binary' must contain a non-empty base64 value", name)
			}
			a.BinaryValue = b
		default:
			return nil, snsInvalid("Invalid parameter: MessageAttributes: the message attribute '%s' has an invalid message attribute type '%s' (want String, String.Array, Number or Binary)", name, a.DataType)
		}
		attrs[name] = a
	}
	if len(attrs) > snsMaxAttributes {
		return nil, snsInvalid("Invalid parameter: MessageAttributes: %d attributes, at most %d", len(attrs), snsMaxAttributes)
	}
	return attrs, nil
}

// CreateTopic creates (or finds) a topic of account in region, as the CreateTopic API does, and
// returns its ARN; for setting up a world without a client (e.g. before make demo publishes).
func (e *Emulator) CreateTopic(account, region, name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	arn := "arn:aws:sns:" + region + ":" + account + ":" + name
	if _, ok := e.topics[arn]; !ok {
		e.topics[arn] = &topic{arn: arn, name: name}
	}
	return arn
}
