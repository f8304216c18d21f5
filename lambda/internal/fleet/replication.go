package fleet

import (
	"fmt"
	"regexp"
	"strings"
)

// ReplicationConfiguration is an ECR registry's replication configuration, in the shape of the
// ECR API (PutReplicationConfiguration, DescribeRegistry): rules, each copying the images pushed
// to the repositories its filters match into each of its destinations.
type ReplicationConfiguration struct {
	Rules []ReplicationRule `json:"rules"`
}

// ReplicationRule sends the repositories its filters match (all when it has none) to its
// destinations.
type ReplicationRule struct {
	Destinations      []ReplicationDestination `json:"destinations"`
	RepositoryFilters []RepositoryFilter       `json:"repositoryFilters,omitempty"`
}

// ReplicationDestination is a registry: an account (registryId) in a region.
type ReplicationDestination struct {
	Region     string `json:"region"`
	RegistryID string `json:"registryId"`
}

// RepositoryFilter selects repositories by name prefix (PREFIX_MATCH, the only type ECR has).
type RepositoryFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// ECR's limits of a replication configuration.
const (
	MaxReplicationRules        = 10  // rules per configuration
	MaxReplicationDestinations = 100 // destinations per rule (the API's limit)
	MaxUniqueDestinations      = 25  // distinct destinations across all rules (the service quota)
	MaxRepositoryFilters       = 100 // filters per rule
	PrefixMatch                = "PREFIX_MATCH"
)

var (
	replicationRegionPattern = regexp.MustCompile(`^[0-9a-z-]{2,25}$`)
	repositoryFilterPattern  = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$`)
)

// Problems checks the configuration of the registry of account in region as ECR does and returns
// every problem, each naming its place (e.g. "rules[0].destinations[1].region: …").
func (c *ReplicationConfiguration) Problems(account, region string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(c.Rules) > MaxReplicationRules {
		bad("rules: %d rules, at most %d", len(c.Rules), MaxReplicationRules)
	}
	unique := map[ReplicationDestination]bool{}
	for i, r := range c.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if len(r.Destinations) > MaxReplicationDestinations {
			bad("%s.destinations: %d destinations, at most %d", where, len(r.Destinations), MaxReplicationDestinations)
		}
		seen := map[ReplicationDestination]bool{}
		for j, d := range r.Destinations {
			dw := fmt.Sprintf("%s.destinations[%d]", where, j)
			if !replicationRegionPattern.MatchString(d.Region) {
				bad("%s.region %q: not a region name such as us-west-2", dw, d.Region)
			}
			if !accountPattern.MatchString(d.RegistryID) {
				bad("%s.registryId %q: want a 12-digit account id", dw, d.RegistryID)
			}
			if d.Region == region && d.RegistryID == account {
				bad("%s: %s in %s is the source registry itself", dw, d.RegistryID, d.Region)
			}
			if seen[d] {
				bad("%s: %s in %s is listed twice in the rule", dw, d.RegistryID, d.Region)
			}
			seen[d] = true
			unique[d] = true
		}
		if r.RepositoryFilters != nil && len(r.RepositoryFilters) == 0 {
			bad("%s.repositoryFilters: empty; leave it out to replicate every repository", where)
		}
		if len(r.RepositoryFilters) > MaxRepositoryFilters {
			bad("%s.repositoryFilters: %d filters, at most %d", where, len(r.RepositoryFilters), MaxRepositoryFilters)
		}
		for j, f := range r.RepositoryFilters {
			fw := fmt.Sprintf("%s.repositoryFilters[%d]", where, j)
			if f.FilterType != PrefixMatch {
				bad("%s.filterType %q: want %s", fw, f.FilterType, PrefixMatch)
			}
			if len(f.Filter) < 2 || len(f.Filter) > 256 || !repositoryFilterPattern.MatchString(f.Filter) {
				bad("%s.filter %q: a repository name prefix of 2 to 256 characters (lowercase letters, digits, . _ - /)", fw, f.Filter)
			}
		}
	}
	if len(unique) > MaxUniqueDestinations {
		bad("rules: %d distinct destinations, at most %d", len(unique), MaxUniqueDestinations)
	}
	return problems
}

// Destinations returns, in rule order and once each, the destinations an image pushed to
// repository goes to.
func (c *ReplicationConfiguration) Destinations(repository string) []ReplicationDestination {
	if c == nil {
		return nil
	}
	var out []ReplicationDestination
	seen := map[ReplicationDestination]bool{}
	for _, r := range c.Rules {
		if !r.matches(repository) {
			continue
		}
		for _, d := range r.Destinations {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

func (r ReplicationRule) matches(repository string) bool {
	if len(r.RepositoryFilters) == 0 {
		return true
	}
	for _, f := range r.RepositoryFilters {
		if f.FilterType == PrefixMatch && strings.HasPrefix(repository, f.Filter) {
			return true
		}
	}
	return false
}
