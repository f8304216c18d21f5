package apply

import (
	"errors"

	"github.com/aws/smithy-go"
)

// RefusedError is a request that ECS refused, or would refuse, as invalid: sending it again
// cannot succeed, so the services it was for fail for good instead of making the event loop
// through Lambda's retries into the dead-letter queue.
type RefusedError struct {
	Reason string
	Err    error // ECS's answer, when ECS was asked
}

func (e *RefusedError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	if e.Reason == "" {
		return e.Err.Error()
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Refused reports whether err is a refusal that no retry can fix: pinroll's own RefusedError,
// or ECS's ClientException or InvalidParameterException (a tag or size limit, a field the API
// rejects). Throttling, server errors, timeouts and lost answers are not: they are retried.
func Refused(err error) bool {
	var re *RefusedError
	if errors.As(err, &re) {
		return true
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ClientException", "InvalidParameterException":
		return true
	}
	return false
}

// Refusal says in one line why a refused request cannot succeed: pinroll's reason, or ECS's
// error code and message without the SDK's transport details.
func Refusal(err error) string {
	var re *RefusedError
	if errors.As(err, &re) && re.Err == nil {
		return re.Reason
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return "ECS refused it: " + ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}
