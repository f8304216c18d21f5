package discover

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pinroll/pinroll/lambda/internal/index"
)

// Index is the persistent index of described revisions (PINROLL_INDEX_TABLE): *index.Table.
//
// With an Index, a run asks it for every revision not in Cache before describing anything,
// index.ReadBatch ARNs a call: a batch goes out as soon as it is full, and the last, partial
// one when the stages that name task definitions (listing and describing services) are done —
// so on a cold start the BatchGetItem calls overlap DescribeServices, as the descriptions did,
// and cost ⌈U/100⌉ calls. ECS describes only what the index did not hold (or held corrupt);
// those are written back, index.WriteBatch a call, as they come, the last batch before
// Discover returns.
//
// The index is an optimisation, never a source of truth: a read or write that fails (table
// missing, access denied, throttled beyond the SDK's retries) turns it off for the rest of the
// run, with one WARN, and the run falls back to ECS; a corrupt item is ignored (one WARN per
// run), described and rewritten. Describe (one task definition, outside a Discover) does not
// use the index.
type Index interface {
	Get(ctx context.Context, arns []string) (index.Result, error)
	Put(ctx context.Context, revs []*index.Revision) (calls int, err error)
}

var _ Index = (*index.Table)(nil)

// IndexTimeout bounds one batch's read or write, retries included: a table that hangs costs
// at most this before ECS takes over (the function's HTTP attempts may take 10 s each).
var IndexTimeout = 3 * time.Second

type warning int

const (
	warnTable    warning = iota // the table could not be read or written
	warnCorrupt                 // items were ignored
	warnTooLarge                // revisions too large to be written
	numWarnings
)

func (d *Discoverer) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

// warn logs w once per run. Call with r.mu held.
func (r *run) warn(w warning, msg string, args ...any) {
	if r.warned[w] {
		return
	}
	r.warned[w] = true
	r.d.log().Warn(msg, args...)
}

// producing records n more stages that may name task definitions.
func (r *run) producing(n int) {
	r.mu.Lock()
	r.producers += n
	r.mu.Unlock()
}

// produced records the end of one such stage; after the last, the index is asked for the ARNs
// still waiting.
func (r *run) produced(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.producers--
	if r.producers == 0 {
		r.flushLookups(ctx)
	}
}

// lookup queues arn for the index. Call with r.mu held.
func (r *run) lookup(ctx context.Context, arn string) {
	r.lookups = append(r.lookups, arn)
	if len(r.lookups) >= index.ReadBatch {
		r.flushLookups(ctx)
	}
}

// flushLookups sends the waiting ARNs to the index in one call. Call with r.mu held.
func (r *run) flushLookups(ctx context.Context) {
	if len(r.lookups) == 0 {
		return
	}
	batch := r.lookups
	r.lookups = nil
	r.g.Go(func() error {
		ictx, cancel := context.WithTimeout(ctx, IndexTimeout)
		res, err := r.d.Index.Get(ictx, batch)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.indexOff(ctx, "the index table could not be read; describing from ECS", err)
		}
		if len(res.Bad) > 0 {
			bad := slices.Sorted(maps.Keys(res.Bad))
			r.warn(warnCorrupt, "index items ignored (corrupt, oversized or not what they claim); described from ECS and rewritten",
				"count", len(bad), "first", bad[0], "error", res.Bad[bad[0]].Error())
		}
		for _, arn := range batch {
			if rev, ok := res.Found[arn]; ok {
				td := &TaskDefinition{Definition: rev.Definition, Tags: rev.Tags}
				r.d.Cache.Put(arn, td)
				r.tds[arn] = td
				continue
			}
			r.describeLater(ctx, arn)
		}
		return nil
	})
}

// indexOff stops using the index for the rest of the run. Call with r.mu held.
func (r *run) indexOff(ctx context.Context, msg string, err error) {
	r.indexOn = false
	r.described = nil
	r.warn(warnTable, msg, "error", err.Error())
	// ARNs still waiting are described now.
	waiting := r.lookups
	r.lookups = nil
	for _, arn := range waiting {
		r.describeLater(ctx, arn)
	}
}

// remember queues td, just described by ECS, for the index, and writes a full batch.
func (r *run) remember(ctx context.Context, td *TaskDefinition) {
	if td == nil || td.Definition == nil || aws.ToString(td.Definition.TaskDefinitionArn) == "" {
		return
	}
	r.mu.Lock()
	if !r.indexOn {
		r.mu.Unlock()
		return
	}
	r.described = append(r.described, td)
	full := len(r.described) >= index.WriteBatch
	r.mu.Unlock()
	if full {
		r.g.Go(func() error {
			r.writeBack(ctx, false)
			return nil
		})
	}
}

// writeBack writes what ECS described to the index: full batches, or everything when all.
// A failure turns the index off for the run; it never fails discovery.
func (r *run) writeBack(ctx context.Context, all bool) {
	r.mu.Lock()
	n := len(r.described)
	if !all {
		n -= n % index.WriteBatch
	}
	if !r.indexOn || n == 0 {
		r.mu.Unlock()
		return
	}
	batch := r.described[:n:n]
	r.described = slices.Clone(r.described[n:])
	r.mu.Unlock()
	revs := make([]*index.Revision, len(batch))
	for i, td := range batch {
		revs[i] = &index.Revision{Definition: td.Definition, Tags: td.Tags}
	}
	ictx, cancel := context.WithTimeout(ctx, IndexTimeout)
	_, err := r.d.Index.Put(ictx, revs)
	cancel()
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, index.ErrTooLarge):
		r.mu.Lock()
		r.warn(warnTooLarge, "task definitions too large for the index are not written (described from ECS each cold start)", "error", err.Error())
		r.mu.Unlock()
	default:
		r.mu.Lock()
		r.indexOff(ctx, "the index table could not be written; this run goes on from ECS", err)
		r.mu.Unlock()
	}
}
