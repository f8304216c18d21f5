package awstest

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
)

// Operations counts the operations clients call, once a call whatever the SDK retried (an
// Initialize-step middleware, before the retry loop): what the code under test asked for. A
// count held to an exact bound by it does not move when a loaded machine makes the SDK retry
// a request, as a count of the emulator's requests (Recorder, Emulator.Calls) does.
type Operations struct {
	mu sync.Mutex
	n  map[string]int
}

// Wrap returns cfg with every call of its clients counted.
func (o *Operations) Wrap(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("awstestOperations", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			o.mu.Lock()
			if o.n == nil {
				o.n = map[string]int{}
			}
			o.n[middleware.GetOperationName(ctx)]++
			o.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
	return cfg
}

// Count is how many times op was called.
func (o *Operations) Count(op string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[op]
}
