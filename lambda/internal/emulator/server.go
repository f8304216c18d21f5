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
	"strconv"
	"strings"
	"time"
)

// Target prefixes of the two services' AWS JSON 1.1 protocol (the X-Amz-Target header).
const (
	ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."
	ecrTargetPrefix = "AmazonEC2ContainerRegistry_V20150921."
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

// opFunc runs one operation against the state of one region. It returns the response document or
// an *apiError.
type opFunc func(e *Emulator, rc *request) (any, error)

// request is what an operation sees of its HTTP request.
type request struct {
	ctx    context.Context
	region string
	body   []byte
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

// ServeHTTP answers one AWS JSON 1.1 request for ECS or ECR.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newUUID()
	w.Header().Set("X-Amzn-RequestId", requestID)
	service, op, fn := lookupOperation(r.Header.Get("X-Amz-Target"))
	if r.Method != http.MethodPost {
		writeError(w, clientError("UnknownOperationException", "the AWS JSON protocol needs POST, not %s", r.Method))
		return
	}
	if fn == nil {
		writeError(w, clientError("UnknownOperationException", "operation %q is not supported by the emulator", r.Header.Get("X-Amz-Target")))
		return
	}
	started := e.now()
	errCode := e.serve(w, r, op, fn)
	e.recordCall(Call{Service: service, Op: op, Time: started, Mutating: isMutating(op), Error: errCode})
	e.deliverEvents()
}

// serve applies the hooks (latency, faults, throttling), runs the operation and writes its answer.
// It returns the error code answered, "" on success.
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request, op string, fn opFunc) string {
	ctx := r.Context()
	if d := e.latency(op); d > 0 {
		if !sleep(ctx, d) {
			return "RequestCanceled"
		}
	}
	f, faulted := e.takeFault(op)
	if faulted && f.Applied && (f.Kind == Timeout || f.Kind == Reset) {
		return e.serveLostAnswer(w, r, op, fn, f)
	}
	if faulted {
		switch f.Kind {
		case Throttle:
			return writeError(w, clientError("ThrottlingException", "Rate exceeded (injected fault)"))
		case ServerError:
			return writeError(w, serverError("injected fault: the service is unavailable"))
		case Timeout:
			if !sleep(ctx, f.Delay) {
				return "RequestCanceled"
			}
		case Reset:
			resetConnection(w)
			return "ConnectionReset"
		}
	}
	if !e.allow(regionOf(r), op) {
		return writeError(w, clientError("ThrottlingException", "Rate exceeded"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return writeError(w, clientError("SerializationException", "cannot read request body: %v", err))
	}
	if len(body) > maxRequestBody {
		return writeError(w, clientError("SerializationException", "request body larger than %d bytes", maxRequestBody))
	}
	out, err := fn(e, &request{ctx: ctx, region: regionOf(r), body: body})
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = serverError("%v", err)
		}
		return writeError(w, ae)
	}
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

// serveLostAnswer runs the operation to completion, whatever the client does meanwhile, and
// then loses its answer: after f.Delay (Timeout, by then the client has given up) or at once, by
// closing the connection (Reset). It is a request that succeeded although the client saw it fail.
func (e *Emulator) serveLostAnswer(w http.ResponseWriter, r *http.Request, op string, fn opFunc, f Fault) string {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(body) > maxRequestBody {
		return writeError(w, clientError("SerializationException", "cannot read request body"))
	}
	out, err := fn(e, &request{ctx: context.WithoutCancel(r.Context()), region: regionOf(r), body: body})
	if f.Kind == Reset {
		resetConnection(w)
		return "ConnectionReset (applied)"
	}
	if !sleep(r.Context(), f.Delay) {
		return "RequestCanceled (applied)"
	}
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = serverError("%v", err)
		}
		return writeError(w, ae)
	}
	data, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return ""
}

func lookupOperation(target string) (service, op string, fn opFunc) {
	switch {
	case strings.HasPrefix(target, ecsTargetPrefix):
		op = strings.TrimPrefix(target, ecsTargetPrefix)
		return "ecs", op, ecsOperations[op]
	case strings.HasPrefix(target, ecrTargetPrefix):
		op = strings.TrimPrefix(target, ecrTargetPrefix)
		return "ecr", op, ecrOperations[op]
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
	auth := r.Header.Get("Authorization")
	if i := strings.Index(auth, "Credential="); i >= 0 {
		scope := auth[i+len("Credential="):]
		if j := strings.IndexAny(scope, ", "); j >= 0 {
			scope = scope[:j]
		}
		if parts := strings.Split(scope, "/"); len(parts) == 5 && parts[2] != "" {
			return parts[2]
		}
	}
	return DefaultRegion
}

// isMutating reports whether an operation changes state.
func isMutating(op string) bool {
	for _, prefix := range []string{"Register", "Deregister", "Update", "Create", "Delete", "BatchDelete", "Tag", "Untag", "Put"} {
		if strings.HasPrefix(op, prefix) {
			return true
		}
	}
	return false
}

// sleep waits d or until ctx is done; it reports whether the whole d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
