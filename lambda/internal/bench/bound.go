package bench

// Bound is issue 7's lower bound of API calls for one push, term by term:
//
//	1 (ECR) + ⌈C/100⌉ + Σ⌈S_c/100⌉ + Σ⌈S_c/10⌉ + Σ⌈K_c/10⌉ + U + F + K
//
// where U counts the task definitions that must be described (all distinct ones cold; those
// not seen before when the cache is warm), F the task definitions re-registered and K the
// services updated. Σ⌈K_c/10⌉ is the fresh read of the services to update, ten of a cluster
// a call, right before their UpdateService: ECS's UpdateService has no condition on what the
// service runs, so this read is the only guard against overwriting a deploy made since
// discovery (minutes earlier in a large fleet, or behind hundreds of paced registrations) —
// part of a correct push, like the claims' writes with the index.
//
// With the index (a new process, the table warm), U counts the revisions the table does not
// hold, and the table's batch calls are added: ⌈D/100⌉ BatchGetItem for the D distinct task
// definitions the process has not seen, ⌈U/25⌉ BatchWriteItem for those ECS had to describe,
// and the claims that make registrations safe under concurrency: F PutItem (a claim each) and F
// UpdateItem (its revision written back, done).
type Bound struct {
	DescribeImages, ListClusters, ListServices, DescribeServices  int
	DescribeTaskDefinition, RegisterTaskDefinition, UpdateService int
	BatchGetItem, BatchWriteItem                                  int
	PutItem, UpdateItem                                           int
}

// LowerBound is the bound for a push to a fleet of the given shape with u task definitions to
// describe, f to register and k services to update.
func LowerBound(s Shape, u, f, k int) Bound {
	return Bound{
		DescribeImages:         1,
		ListClusters:           ceil(s.Clusters, 100),
		ListServices:           s.Clusters * ceil(s.PerCluster, 100),
		DescribeServices:       s.Clusters*ceil(s.PerCluster, 10) + s.Rereads(),
		DescribeTaskDefinition: u,
		RegisterTaskDefinition: f,
		UpdateService:          k,
	}
}

// WithIndex is b for a new process whose index table is warm: d distinct task definitions
// asked of the table, u of them described by ECS (b's U) and written back.
func (b Bound) WithIndex(d int) Bound {
	b.BatchGetItem = ceil(d, 100)
	b.BatchWriteItem = ceil(b.DescribeTaskDefinition, 25)
	b.PutItem, b.UpdateItem = b.RegisterTaskDefinition, b.RegisterTaskDefinition
	return b
}

// Ops lists the operations of the bound, in the order a push makes them.
var Ops = []string{"DescribeImages", "ListClusters", "ListServices", "DescribeServices", "DescribeTaskDefinition", "RegisterTaskDefinition", "UpdateService"}

// IndexOps are the index table's operations (0 in the bound without the index).
var IndexOps = []string{"BatchGetItem", "BatchWriteItem", "PutItem", "UpdateItem"}

// Of returns the bound's calls of op.
func (b Bound) Of(op string) int {
	return map[string]int{
		"DescribeImages": b.DescribeImages, "ListClusters": b.ListClusters, "ListServices": b.ListServices,
		"DescribeServices": b.DescribeServices, "DescribeTaskDefinition": b.DescribeTaskDefinition,
		"RegisterTaskDefinition": b.RegisterTaskDefinition, "UpdateService": b.UpdateService,
		"BatchGetItem": b.BatchGetItem, "BatchWriteItem": b.BatchWriteItem,
		"PutItem": b.PutItem, "UpdateItem": b.UpdateItem,
	}[op]
}

// Total is the bound's number of calls.
func (b Bound) Total() int {
	n := 0
	for _, op := range append(Ops, IndexOps...) {
		n += b.Of(op)
	}
	return n
}

func ceil(n, d int) int { return (n + d - 1) / d }
