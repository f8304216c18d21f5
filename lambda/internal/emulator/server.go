package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/sleep"
)

// Target prefixes of the AWS JSON 1.1 services (the X-Amz-Target header).
const (
	ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."
	ecrTargetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	ssmTargetPrefix = "AmazonSSM."
)

// maxRequestBody bounds what one request may send (RegisterTaskDefinition's limit is 64 KiB; ECR
// manifests are up to 4 MiB).
const maxRequestBody = 8 << 20

// apiError is an error the way AWS reports it: a code (the exception's name), a message, and the
// HTTP status that goes with it.
type apiError struct {
	Code    string
	Message string
	Status  int
	query   string // SQS: the query protocol's code, for x-amzn-query-error ("" = Code)
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func clientError(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

// Errors both services use.
func invalidParameter(format string, args ...any) *apiError {
	return clientError("InvalidParameterException", format, args...)
}

func serverError(format string, args ...any) *apiError {
	return &apiError{Code: "ServerException", Message: fmt.Sprintf(format, args...), Status: http.StatusInternalServerError}
}

// opFunc runs one operation against the state of one account in one region. It returns the
// response document (for the query protocol, the XML result element) or an *apiError.
type opFunc func(e *Emulator, rc *request) (any, error)

// request is what an operation sees of its HTTP request.
type request struct {
	ctx     context.Context
	account string // the account the request acts in (see identify)
	region  string
	caller  identity
	body    []byte
	form    url.Values // the parameters of a query-protocol request
}

// decode reads the request body into v; malformed JSON is a SerializationException, as AWS answers.
func (rc *request) decode(v any) error {
	body := bytes.TrimSpace(rc.body)
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return clientError("SerializationException", "cannot read request body: %v", err)
	}
	return nil
}

// ServeHTTP answers one request: AWS JSON 1.1 for ECS, ECR and SSM, AWS JSON 1.0 for DynamoDB
// and SQS (X-Amz-Target), the AWS query
// protocol (a form-encoded POST with Action) for STS and SNS.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newUUID()
	w.Header().Set("X-Amzn-RequestId", requestID)
	target := r.Header.Get("X-Amz-Target")
	if target == "" && isForm(r) {
		e.serveQuery(w, r, requestID)
		return
	}
	service, op, fn := lookupOperation(target)
	if r.Method != http.MethodPost {
		writeError(w, clientError("UnknownOperationException", "the AWS JSON protocol needs POST, not %s", r.Method))
		return
	}
	if fn == nil {
		writeError(w, clientError("UnknownOperationException", "operation %q is not supported by the emulator", target))
		return
	}
	var p protocol = jsonProtocol{}
	switch service {
	case "dynamodb":
		p = json10Protocol{} // DynamoDB's content type and X-Amz-Crc32 (dynamodb.go)
	case "sqs":
		p = sqsProtocol{} // AWS JSON 1.0 with SQS's x-amzn-query-error (sqs.go)
	}
	started := e.now()
	errCode := e.serve(w, r, op, fn, p, nil)
	caller, _ := e.identify(r)
	e.recordCall(Call{Service: service, Op: op, Time: started, Mutating: isMutating(op), Error: errCode, Account: caller.account})
	e.deliverEvents()
}

// protocol writes answers the way one AWS protocol does.
type protocol interface {
	writeError(w http.ResponseWriter, ae *apiError) string
	writeResult(w http.ResponseWriter, op string, out any) string
}

type jsonProtocol struct{}

func (jsonProtocol) writeError(w http.ResponseWriter, ae *apiError) string { return writeError(w, ae) }

func (jsonProtocol) writeResult(w http.ResponseWriter, _ string, out any) string {
	data, err := json.Marshal(out)
	if err != nil {
		return writeError(w, serverError("encode response: %v", err))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return ""
}

// serve applies the hooks (latency, faults, throttling), runs the operation and writes its answer.
// It returns the error code answered, "" on success. A query-protocol request comes with its
// body already read (body != nil).
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request, op string, fn opFunc, p protocol, body []byte) string {
	ctx := r.Context()
	if d := e.latency(op); d > 0 {
		if sleep.For(ctx, d) != nil {
			return "RequestCanceled"
		}
	}
	caller, _ := e.identify(r) // a request it cannot identify fails below, fault or not
	f, faulted := e.takeFault(op, caller.account)
	if faulted && f.Applied && (f.Kind == Timeout || f.Kind == Reset) {
		return e.serveLostAnswer(w, r, op, fn, f, p, body)
	}
	if faulted {
		switch f.Kind {
		case Throttle:
			return p.writeError(w, clientError("ThrottlingException", "Rate exceeded (injected fault)"))
		case ServerError:
			return p.writeError(w, serverError("injected fault: the service is unavailable"))
		case Timeout:
			if sleep.For(ctx, f.Delay) != nil {
				return "RequestCanceled"
			}
		case Reset:
			resetConnection(w)
			return "ConnectionReset"
		}
	}
	rc, ae := e.newRequest(ctx, r, body)
	if ae != nil {
		return p.writeError(w, ae)
	}
	if !e.allow(rc.account+"/"+rc.region, op) {
		return p.writeError(w, clientError("ThrottlingException", "Rate exceeded"))
	}
	if rc.body == nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		if err != nil {
			return p.writeError(w, clientError("SerializationException", "cannot read request body: %v", err))
		}
		if len(body) > maxRequestBody {
			return p.writeError(w, clientError("SerializationException", "request body larger than %d bytes", maxRequestBody))
		}
		rc.body = body
	}
	out, err := fn(e, rc)
	if err != nil {
		return p.writeError(w, asAPIError(err))
	}
	return p.writeResult(w, op, out)
}

// newRequest identifies the caller and takes the region from the request's signature.
func (e *Emulator) newRequest(ctx context.Context, r *http.Request, body []byte) (*request, *apiError) {
	id, ae := e.identify(r)
	if ae != nil {
		return nil, ae
	}
	rc := &request{ctx: ctx, account: id.account, region: regionOf(r), caller: id, body: body}
	if body != nil {
		rc.form, _ = url.ParseQuery(string(body))
	}
	return rc, nil
}

func asAPIError(err error) *apiError {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = serverError("%v", err)
	}
	return ae
}

// serveLostAnswer runs the operation to completion, whatever the client does meanwhile, and
// then loses its answer: after f.Delay (Timeout, by then the client has given up) or at once, by
// closing the connection (Reset). It is a request that succeeded although the client saw it fail.
func (e *Emulator) serveLostAnswer(w http.ResponseWriter, r *http.Request, op string, fn opFunc, f Fault, p protocol, body []byte) string {
	if body == nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		if err != nil || len(body) > maxRequestBody {
			return p.writeError(w, clientError("SerializationException", "cannot read request body"))
		}
	}
	rc, ae := e.newRequest(context.WithoutCancel(r.Context()), r, body)
	if ae != nil {
		return p.writeError(w, ae)
	}
	out, err := fn(e, rc)
	if f.Kind == Reset {
		resetConnection(w)
		return "ConnectionReset (applied)"
	}
	if sleep.For(r.Context(), f.Delay) != nil {
		return "RequestCanceled (applied)"
	}
	if err != nil {
		return p.writeError(w, asAPIError(err))
	}
	return p.writeResult(w, op, out)
}

func lookupOperation(target string) (service, op string, fn opFunc) {
	switch {
	case strings.HasPrefix(target, ecsTargetPrefix):
		op = strings.TrimPrefix(target, ecsTargetPrefix)
		return "ecs", op, ecsOperations[op]
	case strings.HasPrefix(target, ecrTargetPrefix):
		op = strings.TrimPrefix(target, ecrTargetPrefix)
		return "ecr", op, ecrOperations[op]
	case strings.HasPrefix(target, ssmTargetPrefix):
		op = strings.TrimPrefix(target, ssmTargetPrefix)
		return "ssm", op, ssmOperations[op]
	case strings.HasPrefix(target, dynamodbTargetPrefix):
		op = strings.TrimPrefix(target, dynamodbTargetPrefix)
		return "dynamodb", op, dynamodbOperations[op]
	case strings.HasPrefix(target, sqsTargetPrefix):
		op = strings.TrimPrefix(target, sqsTargetPrefix)
		return "sqs", op, sqsOperations[op]
	}
	return "", target, nil
}

// writeError answers an AWS-shaped JSON error and returns its code.
func writeError(w http.ResponseWriter, ae *apiError) string {
	body, _ := json.Marshal(map[string]string{"__type": ae.Code, "message": ae.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", ae.Code)
	w.WriteHeader(ae.Status)
	_, _ = w.Write(body)
	return ae.Code
}

// regionOf takes the region from the SigV4 credential scope
// ("Credential=AKID/20240101/us-west-2/ecs/aws4_request"); the signature itself is not checked.
func regionOf(r *http.Request) string {
	if _, region, _ := credentialScope(r); region != "" {
		return region
	}
	return DefaultRegion
}

// isMutating reports whether an operation changes state.
func isMutating(op string) bool {
	for _, prefix := range []string{"Register", "Deregister", "Update", "Create", "Delete", "BatchDelete", "Tag", "Untag", "Put", "Publish", "Send", "Change"} {
		if strings.HasPrefix(op, prefix) {
			return true
		}
	}
	return false
}

// resetConnection closes the client's connection without an answer.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 or a recorder: the closest thing is to abort the handler.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// epoch is a timestamp the way the AWS JSON protocol writes it: seconds since the epoch, a number.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	return []byte(fmt.Sprintf("%.3f", float64(tt.UnixMilli())/1000)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}
