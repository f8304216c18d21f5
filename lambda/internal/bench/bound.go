package bench

// Bound is issue 7's lower bound of API calls for one push, term by term:
//
//	1 (ECR) + ⌈C/100⌉ + Σ⌈S_c/100⌉ + Σ⌈S_c/10⌉ + U + F + K
//
// where U counts the task definitions that must be described (all distinct ones cold; those
// not seen before when the cache is warm), F the task definitions re-registered and K the
// services updated.
type Bound struct {
	DescribeImages, ListClusters, ListServices, DescribeServices  int
	DescribeTaskDefinition, RegisterTaskDefinition, UpdateService int
}

// LowerBound is the bound for a push to a fleet of the given shape with u task definitions to
// describe, f to register and k services to update.
func LowerBound(s Shape, u, f, k int) Bound {
	return Bound{
		DescribeImages:         1,
		ListClusters:           ceil(s.Clusters, 100),
		ListServices:           s.Clusters * ceil(s.PerCluster, 100),
		DescribeServices:       s.Clusters * ceil(s.PerCluster, 10),
		DescribeTaskDefinition: u,
		RegisterTaskDefinition: f,
		UpdateService:          k,
	}
}

// Ops lists the operations of the bound, in the order a push makes them.
var Ops = []string{"DescribeImages", "ListClusters", "ListServices", "DescribeServices", "DescribeTaskDefinition", "RegisterTaskDefinition", "UpdateService"}

// Of returns the bound's calls of op.
func (b Bound) Of(op string) int {
	return map[string]int{
		"DescribeImages": b.DescribeImages, "ListClusters": b.ListClusters, "ListServices": b.ListServices,
		"DescribeServices": b.DescribeServices, "DescribeTaskDefinition": b.DescribeTaskDefinition,
		"RegisterTaskDefinition": b.RegisterTaskDefinition, "UpdateService": b.UpdateService,
	}[op]
}

// Total is the bound's number of calls.
func (b Bound) Total() int {
	n := 0
	for _, op := range Ops {
		n += b.Of(op)
	}
	return n
}

func ceil(n, d int) int { return (n + d - 1) / d }
