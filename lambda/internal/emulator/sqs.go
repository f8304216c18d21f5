package emulator

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pinroll/pinroll/lambda/internal/sleep"
)

// SQS: the operations pinroll's continuation queue and its event source mapping use —
// CreateQueue, GetQueueUrl, GetQueueAttributes, SendMessage, ReceiveMessage, DeleteMessage,
// ChangeMessageVisibility — over the AWS JSON 1.0 protocol that aws-sdk-go-v2's sqs client
// speaks (X-Amz-Target AmazonSQS.<op>, Content-Type application/x-amz-json-1.0), with the
// errors of the SQS API reference (a "__type" of com.amazonaws.sqs#<code> and the
// x-amzn-query-error header of the query protocol's code).
//
// Queues are per account and region, standard or FIFO. FIFO queues keep each message group in
// order, deliver nothing of a group while one of its messages is in flight, and drop a message
// whose deduplication id (explicit, or the body's SHA-256 with ContentBasedDeduplication) was
// sent within the last 5 minutes — answering it as sent, with the first message's id, as SQS
// does. A message received more than maxReceiveCount times is moved to the dead-letter queue of
// the queue's RedrivePolicy instead of being delivered again. Visibility timeouts, delays and
// retention run on Options.Now.
//
// Not modelled: message attributes (a request that sends them is refused, so nothing is
// silently dropped), batch operations, queue policies (only the queue's own account may use it;
// the URL of another account's queue is QueueDoesNotExist), KMS, tags, purge, high-throughput
// FIFO's per-group quotas, and the undocumented details of deduplication scope (here: per queue).
const sqsTargetPrefix = "AmazonSQS."

var sqsOperations = map[string]opFunc{
	"CreateQueue":             (*Emulator).opCreateQueue,
	"GetQueueUrl":             (*Emulator).opGetQueueURL,
	"GetQueueAttributes":      (*Emulator).opGetQueueAttributes,
	"SendMessage":             (*Emulator).opSendMessage,
	"ReceiveMessage":          (*Emulator).opReceiveMessage,
	"DeleteMessage":           (*Emulator).opDeleteMessage,
	"ChangeMessageVisibility": (*Emulator).opChangeMessageVisibility,
}

// SQS's limits and defaults (the SQS API reference, CreateQueue and SendMessage).
const (
	sqsDedupWindow       = 5 * time.Minute
	sqsMaxVisibility     = 43200 // seconds: 12 hours
	sqsDefaultVisibility = 30
	sqsDefaultRetention  = 345600 // seconds: 4 days
	sqsMaxMessageSize    = 262144 // bytes: the default and, for this emulator, the maximum
	sqsMaxReceiveBatch   = 10
	sqsMaxWaitSeconds    = 20
	sqsMaxQueueName      = 80
)

var (
	sqsQueueNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	// MessageGroupId and MessageDeduplicationId: alphanumeric and punctuation
	// (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~), 1 to 128 characters.
	sqsIDPattern = regexp.MustCompile("^[A-Za-z0-9!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~]{1,128}$")
)

// sqsState is every region's queues. The zero value is ready.
type sqsState struct {
	mu     sync.Mutex
	queues map[string]*queue // account + "/" + region + "/" + name
	seq    int64             // FIFO sequence numbers, increasing across queues
}

type queue struct {
	account, region, name, arn string
	created                    time.Time
	attrs                      map[string]string // as created (normalised), for CreateQueue's comparison
	fifo, contentDedup         bool
	visibility, retention      time.Duration
	delay                      time.Duration
	maxSize                    int
	dlqARN                     string
	maxReceive                 int
	messages                   []*message // in send order
	dedup                      map[string]dedupEntry
}

type dedupEntry struct {
	at        time.Time
	messageID string
	sequence  string
}

type message struct {
	id, body, md5, group, dedupID, sequence string
	sent, firstReceived                     time.Time
	visibleAt                               time.Time
	receives                                int
	handle                                  string // the latest receipt handle; "" before the first receive
	handles                                 map[string]bool
}

func (m *message) inFlight(now time.Time) bool { return m.receives > 0 && now.Before(m.visibleAt) }

// sqsError is an SQS error: its JSON code (the __type), its query-protocol code for the
// x-amzn-query-error header, and a message.
func sqsError(code, queryCode, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest, query: queryCode}
}

func sqsInvalidValue(format string, args ...any) *apiError {
	return sqsError("InvalidParameterValue", "InvalidParameterValue", format, args...)
}

func sqsMissing(name string) *apiError {
	return sqsError("MissingParameter", "MissingParameter", "The request must contain the parameter %s.", name)
}

func sqsNoQueue() *apiError {
	return sqsError("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

// sqsProtocol answers the way SQS's JSON protocol does: AWS JSON 1.0, errors named
// com.amazonaws.sqs#<code> with the query protocol's code in x-amzn-query-error
// ("<code>;Sender"), which the SDK uses as the error's code.
type sqsProtocol struct{}

func (sqsProtocol) writeError(w http.ResponseWriter, ae *apiError) string {
	query := ae.query
	if query == "" {
		query = ae.Code
	}
	fault := "Sender"
	if ae.Status >= 500 {
		fault = "Receiver"
	}
	w.Header().Set("x-amzn-query-error", query+";"+fault)
	body, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + ae.Code, "message": ae.Message})
	writeJSON10Plain(w, ae.Status, body)
	return ae.Code
}

func (sqsProtocol) writeResult(w http.ResponseWriter, _ string, out any) string {
	data, err := json.Marshal(out)
	if err != nil {
		return sqsProtocol{}.writeError(w, serverError("encode response: %v", err))
	}
	writeJSON10Plain(w, http.StatusOK, data)
	return ""
}

func writeJSON10Plain(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// queueURL is the URL SQS gives a queue: https://sqs.<region>.amazonaws.com/<account>/<name>.
func queueURL(account, region, name string) string {
	return "https://sqs." + region + ".amazonaws.com/" + account + "/" + name
}

// QueueURL is the URL of a queue the emulator holds (or would hold) in account and region.
func QueueURL(account, region, name string) string { return queueURL(account, region, name) }

// lookup finds the queue a QueueUrl names, in the caller's account and region. Call with the lock held.
func (s *sqsState) lookup(rc *request, rawURL string) (*queue, error) {
	if rawURL == "" {
		return nil, sqsMissing("QueueUrl")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, sqsInvalidValue("Value %s for parameter QueueUrl is invalid. Reason: Invalid URL.", rawURL)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 {
		return nil, sqsInvalidValue("Value %s for parameter QueueUrl is invalid. Reason: the path is not /<account>/<queue name>.", rawURL)
	}
	q, ok := s.queues[rc.account+"/"+rc.region+"/"+parts[1]]
	if !ok || parts[0] != rc.account {
		return nil, sqsNoQueue()
	}
	return q, nil
}

func (e *Emulator) opCreateQueue(rc *request) (any, error) {
	var in struct {
		QueueName  string
		Attributes map[string]string
		Tags       map[string]string
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, sqsMissing("QueueName")
	}
	base := strings.TrimSuffix(in.QueueName, ".fifo")
	if len(in.QueueName) > sqsMaxQueueName || !sqsQueueNamePattern.MatchString(base) {
		return nil, sqsInvalidValue("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	q := &queue{account: rc.account, region: rc.region, name: in.QueueName, created: e.now(),
		arn: "arn:aws:sqs:" + rc.region + ":" + rc.account + ":" + in.QueueName, dedup: map[string]dedupEntry{}}
	attrs, err := q.configure(in.Attributes)
	if err != nil {
		return nil, err
	}
	switch {
	case q.fifo && !strings.HasSuffix(in.QueueName, ".fifo"):
		return nil, sqsInvalidValue("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
	case !q.fifo && strings.HasSuffix(in.QueueName, ".fifo"):
		return nil, sqsInvalidValue("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length (a .fifo name needs the attribute FifoQueue=true)")
	case !q.fifo && q.contentDedup:
		return nil, sqsError("InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute ContentBasedDeduplication.")
	}
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.dlqARN != "" {
		dlq := s.byARN(q.dlqARN)
		switch {
		case dlq == nil || dlq.account != rc.account || dlq.region != rc.region:
			return nil, sqsInvalidValue("Value %s for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.", attrs["RedrivePolicy"])
		case dlq.fifo != q.fifo:
			return nil, sqsInvalidValue("Value %s for parameter RedrivePolicy is invalid. Reason: Dead-letter queue must be same type of queue as the source.", attrs["RedrivePolicy"])
		}
	}
	if s.queues == nil {
		s.queues = map[string]*queue{}
	}
	key := rc.account + "/" + rc.region + "/" + in.QueueName
	if have, ok := s.queues[key]; ok {
		// CreateQueue is idempotent for the same attributes, an error for different ones.
		if !sameAttributes(have.attrs, attrs) {
			return nil, sqsError("QueueNameExists", "QueueAlreadyExists", "A queue already exists with the same name and a different value for attribute(s) %s", strings.Join(differentAttributes(have.attrs, attrs), ", "))
		}
		return map[string]string{"QueueUrl": queueURL(rc.account, rc.region, in.QueueName)}, nil
	}
	q.attrs = attrs
	s.queues[key] = q
	return map[string]string{"QueueUrl": queueURL(rc.account, rc.region, in.QueueName)}, nil
}

// byARN finds a queue by ARN. Call with the lock held.
func (s *sqsState) byARN(arn string) *queue {
	for _, q := range s.queues {
		if q.arn == arn {
			return q
		}
	}
	return nil
}

// configure validates and applies CreateQueue's attributes, returning them normalised (every
// attribute with its value or default), for comparing a second CreateQueue.
func (q *queue) configure(in map[string]string) (map[string]string, error) {
	attrs := map[string]string{
		"VisibilityTimeout": strconv.Itoa(sqsDefaultVisibility), "MessageRetentionPeriod": strconv.Itoa(sqsDefaultRetention),
		"DelaySeconds": "0", "MaximumMessageSize": strconv.Itoa(sqsMaxMessageSize), "ReceiveMessageWaitTimeSeconds": "0",
	}
	bounds := map[string][2]int{
		"VisibilityTimeout": {0, sqsMaxVisibility}, "MessageRetentionPeriod": {60, 1209600}, "DelaySeconds": {0, 900},
		"MaximumMessageSize": {1024, sqsMaxMessageSize}, "ReceiveMessageWaitTimeSeconds": {0, sqsMaxWaitSeconds},
	}
	for name, v := range in {
		switch name {
		case "FifoQueue", "ContentBasedDeduplication":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, sqsError("InvalidAttributeValue", "InvalidAttributeValue", "Invalid value for the parameter %s.", name)
			}
			if name == "FifoQueue" && !b {
				// SQS refuses FifoQueue=false: a standard queue is one without the attribute.
				return nil, sqsError("InvalidAttributeValue", "InvalidAttributeValue", "Invalid value for the parameter FifoQueue.")
			}
			attrs[name] = strconv.FormatBool(b)
		case "RedrivePolicy":
			var rp struct {
				DeadLetterTargetArn string `json:"deadLetterTargetArn"`
				MaxReceiveCount     any    `json:"maxReceiveCount"`
			}
			if err := json.Unmarshal([]byte(v), &rp); err != nil || rp.DeadLetterTargetArn == "" {
				return nil, sqsInvalidValue("Value %s for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map with deadLetterTargetArn and maxReceiveCount.", v)
			}
			n, err := strconv.Atoi(strings.Trim(fmt.Sprint(rp.MaxReceiveCount), `"`))
			if err != nil || n < 1 || n > 1000 {
				return nil, sqsInvalidValue("Value %s for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: %v, valid values are from 1 to 1000 both inclusive.", v, rp.MaxReceiveCount)
			}
			q.dlqARN, q.maxReceive = rp.DeadLetterTargetArn, n
			attrs[name] = fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, rp.DeadLetterTargetArn, n)
		case "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled", "Policy", "DeduplicationScope", "FifoThroughputLimit", "RedriveAllowPolicy":
			attrs[name] = v // kept and shown, not applied
		default:
			b, ok := bounds[name]
			if !ok {
				return nil, sqsError("InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute %s.", name)
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < b[0] || n > b[1] {
				return nil, sqsError("InvalidAttributeValue", "InvalidAttributeValue", "Invalid value for the parameter %s.", name)
			}
			attrs[name] = strconv.Itoa(n)
		}
	}
	q.fifo = attrs["FifoQueue"] == "true"
	q.contentDedup = attrs["ContentBasedDeduplication"] == "true"
	if q.fifo && attrs["ContentBasedDeduplication"] == "" {
		attrs["ContentBasedDeduplication"] = "false"
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(attrs[k]); return n }
	q.visibility = time.Duration(atoi("VisibilityTimeout")) * time.Second
	q.retention = time.Duration(atoi("MessageRetentionPeriod")) * time.Second
	q.delay = time.Duration(atoi("DelaySeconds")) * time.Second
	q.maxSize = atoi("MaximumMessageSize")
	return attrs, nil
}

func sameAttributes(a, b map[string]string) bool { return len(differentAttributes(a, b)) == 0 }

func differentAttributes(a, b map[string]string) []string {
	var diff []string
	for k, v := range a {
		if b[k] != v {
			diff = append(diff, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, k)
		}
	}
	slices.Sort(diff)
	return diff
}

func (e *Emulator) opGetQueueURL(rc *request) (any, error) {
	var in struct{ QueueName, QueueOwnerAWSAccountId string }
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, sqsMissing("QueueName")
	}
	if in.QueueOwnerAWSAccountId != "" && in.QueueOwnerAWSAccountId != rc.account {
		return nil, sqsNoQueue() // no queue policies: another account's queue is out of reach
	}
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.queues[rc.account+"/"+rc.region+"/"+in.QueueName]; !ok {
		return nil, sqsNoQueue()
	}
	return map[string]string{"QueueUrl": queueURL(rc.account, rc.region, in.QueueName)}, nil
}

func (e *Emulator) opGetQueueAttributes(rc *request) (any, error) {
	var in struct {
		QueueUrl       string
		AttributeNames []string
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.lookup(rc, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	now := e.now()
	s.expire(q, now)
	all := map[string]string{}
	for k, v := range q.attrs {
		all[k] = v
	}
	visible, inFlight, delayed := 0, 0, 0
	for _, m := range q.messages {
		switch {
		case m.inFlight(now):
			inFlight++
		case now.Before(m.visibleAt):
			delayed++
		default:
			visible++
		}
	}
	all["QueueArn"] = q.arn
	all["ApproximateNumberOfMessages"] = strconv.Itoa(visible)
	all["ApproximateNumberOfMessagesNotVisible"] = strconv.Itoa(inFlight)
	all["ApproximateNumberOfMessagesDelayed"] = strconv.Itoa(delayed)
	all["CreatedTimestamp"] = strconv.FormatInt(q.created.Unix(), 10)
	all["LastModifiedTimestamp"] = strconv.FormatInt(q.created.Unix(), 10)
	out := map[string]string{}
	for _, name := range in.AttributeNames {
		if name == "All" {
			out = all
			break
		}
		v, ok := all[name]
		if !ok && !knownQueueAttribute(name) {
			return nil, sqsError("InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute %s.", name)
		}
		if ok {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return map[string]any{}, nil
	}
	return map[string]any{"Attributes": out}, nil
}

func knownQueueAttribute(name string) bool {
	switch name {
	case "Policy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled", "RedrivePolicy",
		"RedriveAllowPolicy", "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit":
		return true
	}
	return false
}

// validBody reports the first character SQS does not allow in a message body (#x9, #xA, #xD,
// #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF), or -1.
func invalidBodyChar(s string) rune {
	for _, r := range s {
		ok := r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
		if !ok || r == utf8.RuneError {
			return r
		}
	}
	return -1
}

func (e *Emulator) opSendMessage(rc *request) (any, error) {
	var in struct {
		QueueUrl, MessageBody, MessageGroupId, MessageDeduplicationId string
		DelaySeconds                                                  *int
		MessageAttributes, MessageSystemAttributes                    map[string]json.RawMessage
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if len(in.MessageAttributes) > 0 || len(in.MessageSystemAttributes) > 0 {
		return nil, sqsError("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "the emulator does not serve message attributes")
	}
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.lookup(rc, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	switch {
	case in.MessageBody == "":
		return nil, sqsMissing("MessageBody")
	case len(in.MessageBody) > q.maxSize:
		return nil, sqsInvalidValue("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.maxSize)
	case invalidBodyChar(in.MessageBody) >= 0:
		return nil, sqsError("InvalidMessageContents", "InvalidMessageContents", "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	delay := q.delay
	if in.DelaySeconds != nil {
		if q.fifo {
			return nil, sqsInvalidValue("Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", *in.DelaySeconds)
		}
		if *in.DelaySeconds < 0 || *in.DelaySeconds > 900 {
			return nil, sqsInvalidValue("Value %d for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.", *in.DelaySeconds)
		}
		delay = time.Duration(*in.DelaySeconds) * time.Second
	}
	now := e.now()
	sum := md5.Sum([]byte(in.MessageBody))
	m := &message{id: newUUID(), body: in.MessageBody, md5: hex.EncodeToString(sum[:]), sent: now, visibleAt: now.Add(delay), handles: map[string]bool{}}
	if !q.fifo {
		if in.MessageDeduplicationId != "" {
			return nil, sqsInvalidValue("Value %s for parameter MessageDeduplicationId is invalid. Reason: The request includes a parameter that is not valid for this queue type.", in.MessageDeduplicationId)
		}
		if in.MessageGroupId != "" && !sqsIDPattern.MatchString(in.MessageGroupId) {
			return nil, sqsInvalidValue("Value %s for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.", in.MessageGroupId)
		}
		m.group = in.MessageGroupId // a fair queue's tenant; ordering is not kept
		q.messages = append(q.messages, m)
		return map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5}, nil
	}
	if in.MessageGroupId == "" {
		return nil, sqsMissing("MessageGroupId")
	}
	if !sqsIDPattern.MatchString(in.MessageGroupId) {
		return nil, sqsInvalidValue("Value %s for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.", in.MessageGroupId)
	}
	dedupID := in.MessageDeduplicationId
	switch {
	case dedupID == "" && !q.contentDedup:
		return nil, sqsInvalidValue("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
	case dedupID == "":
		dedupID = sha256Hex(in.MessageBody)
	case !sqsIDPattern.MatchString(dedupID):
		return nil, sqsInvalidValue("Value %s for parameter MessageDeduplicationId is invalid. Reason: MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.", dedupID)
	}
	for id, d := range q.dedup {
		if now.Sub(d.at) >= sqsDedupWindow {
			delete(q.dedup, id)
		}
	}
	if d, ok := q.dedup[dedupID]; ok {
		// Accepted, not delivered again: SQS answers a duplicate as sent.
		return map[string]string{"MessageId": d.messageID, "MD5OfMessageBody": m.md5, "SequenceNumber": d.sequence}, nil
	}
	s.seq++
	m.group, m.dedupID = in.MessageGroupId, dedupID
	m.sequence = sequenceNumber(s.seq)
	q.dedup[dedupID] = dedupEntry{at: now, messageID: m.id, sequence: m.sequence}
	q.messages = append(q.messages, m)
	return map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5, "SequenceNumber": m.sequence}, nil
}

// sequenceNumber renders n the way SQS writes FIFO sequence numbers: a large decimal number
// that increases with every message sent.
func sequenceNumber(n int64) string {
	v := new(big.Int).Mul(big.NewInt(1e10), big.NewInt(18_000_000_000))
	return v.Add(v, big.NewInt(n)).String()
}

// expire drops the messages older than the queue's retention period. Call with the lock held.
func (s *sqsState) expire(q *queue, now time.Time) {
	q.messages = slices.DeleteFunc(q.messages, func(m *message) bool { return now.Sub(m.sent) >= q.retention })
}

// redrive moves the messages received more than maxReceiveCount times that are visible again
// to the dead-letter queue, keeping their ids and bodies (and, in a FIFO queue, their group).
// Call with the lock held.
func (s *sqsState) redrive(q *queue, now time.Time) {
	if q.dlqARN == "" {
		return
	}
	dlq := s.byARN(q.dlqARN)
	if dlq == nil {
		return // the dead-letter queue was deleted: SQS keeps the messages where they are
	}
	q.messages = slices.DeleteFunc(q.messages, func(m *message) bool {
		if m.receives < q.maxReceive || m.inFlight(now) || now.Before(m.visibleAt) {
			return false
		}
		moved := *m
		moved.receives, moved.handle, moved.handles, moved.visibleAt = 0, "", map[string]bool{}, now
		dlq.messages = append(dlq.messages, &moved)
		return true
	})
}

func (e *Emulator) opReceiveMessage(rc *request) (any, error) {
	var in struct {
		QueueUrl                    string
		MaxNumberOfMessages         *int
		VisibilityTimeout           *int
		WaitTimeSeconds             *int
		AttributeNames              []string
		MessageSystemAttributeNames []string
		MessageAttributeNames       []string
		ReceiveRequestAttemptId     string
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	max := 1
	if in.MaxNumberOfMessages != nil {
		max = *in.MaxNumberOfMessages
		if max < 1 || max > sqsMaxReceiveBatch {
			return nil, sqsInvalidValue("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", max)
		}
	}
	if in.VisibilityTimeout != nil && (*in.VisibilityTimeout < 0 || *in.VisibilityTimeout > sqsMaxVisibility) {
		return nil, sqsInvalidValue("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", *in.VisibilityTimeout)
	}
	wait := time.Duration(0)
	if in.WaitTimeSeconds != nil {
		if *in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > sqsMaxWaitSeconds {
			return nil, sqsInvalidValue("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", *in.WaitTimeSeconds)
		}
		wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	names := append(slices.Clone(in.AttributeNames), in.MessageSystemAttributeNames...)
	// Long polling: look again every 20 ms (of the wall clock) until a message arrives or the
	// wait ends.
	deadline := time.Now().Add(wait)
	for {
		msgs, err := e.receive(rc, in.QueueUrl, max, in.VisibilityTimeout, names)
		if err != nil || len(msgs) > 0 || !time.Now().Before(deadline) {
			if err != nil {
				return nil, err
			}
			if len(msgs) == 0 {
				return map[string]any{}, nil
			}
			return map[string]any{"Messages": msgs}, nil
		}
		if sleep.For(rc.ctx, 20*time.Millisecond) != nil {
			return map[string]any{}, nil
		}
	}
}

// receive takes up to max visible messages: of a standard queue in send order, of a FIFO queue
// from the groups with nothing in flight, each group's in order.
func (e *Emulator) receive(rc *request, url string, max int, visibility *int, names []string) ([]map[string]any, error) {
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.lookup(rc, url)
	if err != nil {
		return nil, err
	}
	now := e.now()
	s.expire(q, now)
	s.redrive(q, now)
	vis := q.visibility
	if visibility != nil {
		vis = time.Duration(*visibility) * time.Second
	}
	locked := map[string]bool{} // FIFO groups with a message in flight (or taken by this receive's earlier group)
	if q.fifo {
		for _, m := range q.messages {
			if m.inFlight(now) {
				locked[m.group] = true
			}
		}
	}
	var out []map[string]any
	for _, m := range q.messages {
		if len(out) == max {
			break
		}
		if now.Before(m.visibleAt) {
			if q.fifo {
				locked[m.group] = true // a later message of the group must wait for this one
			}
			continue
		}
		if q.fifo && locked[m.group] {
			continue // a group's next message waits until the one before it is deleted
		}
		m.receives++
		if m.firstReceived.IsZero() {
			m.firstReceived = now
		}
		m.visibleAt = now.Add(vis)
		m.handle = randomHex(64) + strconv.Itoa(m.receives)
		m.handles[m.handle] = true
		out = append(out, map[string]any{
			"MessageId": m.id, "ReceiptHandle": m.handle, "MD5OfBody": m.md5, "Body": m.body,
			"Attributes": systemAttributes(q, m, names),
		})
	}
	return out, nil
}

func systemAttributes(q *queue, m *message, names []string) map[string]string {
	all := map[string]string{
		"ApproximateReceiveCount":          strconv.Itoa(m.receives),
		"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstReceived.UnixMilli(), 10),
		"SenderId":                         q.account,
	}
	if q.fifo {
		all["MessageGroupId"], all["MessageDeduplicationId"], all["SequenceNumber"] = m.group, m.dedupID, m.sequence
	}
	out := map[string]string{}
	for _, n := range names {
		if n == "All" {
			return all
		}
		if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// byHandle finds the message a receipt handle was issued for. Call with the lock held.
func (q *queue) byHandle(handle string) *message {
	for _, m := range q.messages {
		if m.handles[handle] {
			return m
		}
	}
	return nil
}

func (e *Emulator) opDeleteMessage(rc *request) (any, error) {
	var in struct{ QueueUrl, ReceiptHandle string }
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.lookup(rc, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, sqsMissing("ReceiptHandle")
	}
	m := q.byHandle(in.ReceiptHandle)
	switch {
	case m == nil && isReceiptHandle(in.ReceiptHandle):
		// A handle of a message already deleted (or moved): deleting it again succeeds.
		return map[string]any{}, nil
	case m == nil:
		return nil, sqsError("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", in.ReceiptHandle)
	case m.handle != in.ReceiptHandle:
		// The SQS Developer Guide: an older handle of a message received again "succeeds, but
		// the message might not be deleted". Here it never is.
		return map[string]any{}, nil
	}
	q.messages = slices.DeleteFunc(q.messages, func(o *message) bool { return o == m })
	return map[string]any{}, nil
}

// isReceiptHandle reports whether h has the form of the emulator's receipt handles.
func isReceiptHandle(h string) bool {
	if len(h) <= 64 {
		return false
	}
	if _, err := hex.DecodeString(h[:64]); err != nil {
		return false
	}
	_, err := strconv.Atoi(h[64:])
	return err == nil
}

func (e *Emulator) opChangeMessageVisibility(rc *request) (any, error) {
	var in struct {
		QueueUrl, ReceiptHandle string
		VisibilityTimeout       *int
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	if in.VisibilityTimeout == nil {
		return nil, sqsMissing("VisibilityTimeout")
	}
	if *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > sqsMaxVisibility {
		return nil, sqsInvalidValue("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200.", *in.VisibilityTimeout)
	}
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.lookup(rc, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, sqsMissing("ReceiptHandle")
	}
	m := q.byHandle(in.ReceiptHandle)
	now := e.now()
	switch {
	case m == nil && !isReceiptHandle(in.ReceiptHandle):
		return nil, sqsError("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", in.ReceiptHandle)
	case m == nil || m.handle != in.ReceiptHandle || !m.inFlight(now):
		return nil, sqsError("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", "Message does not exist or is not available for visibility timeout change.")
	}
	m.visibleAt = now.Add(time.Duration(*in.VisibilityTimeout) * time.Second)
	return map[string]any{}, nil
}

// CreateQueue creates a queue directly (for `pinroll emulate` and tests) and returns its URL:
// FIFO when name ends in .fifo (with an explicit deduplication id required), with a
// dead-letter queue named dlq (same account and region, created alike when missing) after
// maxReceive receives when dlq is not "".
func (e *Emulator) CreateQueue(account, region, name, dlq string, maxReceive int, visibility time.Duration) (string, error) {
	rc := &request{account: account, region: region}
	attrs := map[string]string{"VisibilityTimeout": strconv.Itoa(int(visibility / time.Second))}
	fifo := strings.HasSuffix(name, ".fifo")
	if fifo {
		attrs["FifoQueue"] = "true"
	}
	if dlq != "" {
		dlqAttrs := map[string]string{}
		if fifo {
			dlqAttrs["FifoQueue"] = "true"
		}
		rc.body, _ = json.Marshal(map[string]any{"QueueName": dlq, "Attributes": dlqAttrs})
		if _, err := e.opCreateQueue(rc); err != nil {
			return "", err
		}
		attrs["RedrivePolicy"] = fmt.Sprintf(`{"deadLetterTargetArn":"arn:aws:sqs:%s:%s:%s","maxReceiveCount":%d}`, region, account, dlq, maxReceive)
	}
	rc.body, _ = json.Marshal(map[string]any{"QueueName": name, "Attributes": attrs})
	out, err := e.opCreateQueue(rc)
	if err != nil {
		return "", err
	}
	return out.(map[string]string)["QueueUrl"], nil
}

// QueueMessage is a message as a test sees it.
type QueueMessage struct {
	ID, Body, Group, DeduplicationID string
	Receives                         int
	InFlight                         bool
}

// QueueMessages returns the messages a queue holds now, in send order (nil when there is no such queue).
func (e *Emulator) QueueMessages(account, region, name string) []QueueMessage {
	s := &e.sqs
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[account+"/"+region+"/"+name]
	if !ok {
		return nil
	}
	now := e.now()
	out := []QueueMessage{}
	for _, m := range q.messages {
		out = append(out, QueueMessage{ID: m.id, Body: m.body, Group: m.group, DeduplicationID: m.dedupID, Receives: m.receives, InFlight: m.inFlight(now)})
	}
	return out
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
