package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/discover"
)

// Staged rollouts: the tags that stage them (README, "Waves").
const (
	TagWave     = contract.TagWave
	TagReleased = contract.TagReleased
)

// ParseWave reads a pinroll:wave value: "" is wave 0, otherwise a whole number, 0 or more.
func ParseWave(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, fmt.Errorf("%s=%s is not a wave (a whole number, 0 or more)", TagWave, v)
	}
	return n, nil
}

// WaveOf is the wave of svc (0 when its tag is not a wave: Excluded skips such a service).
func WaveOf(svc discover.Service) int {
	n, _ := ParseWave(svc.Tags[TagWave])
	return n
}

// Progress is how far one service of a push has come.
type Progress int

const (
	// Waiting: not deployed yet; its revision is registered (or about to be) and held.
	Waiting Progress = iota
	// Deploying: ECS is rolling the pushed revision out.
	Deploying
	// Deployed: ECS says the deployment completed; its tasks have not been checked yet.
	Deployed
	// Verified: the deployment completed and every running task runs the pushed digest.
	Verified
	// Failed: the deployment failed (the circuit breaker rolled it back, or not), its tasks run
	// another digest, or the service runs another revision than the one this rollout deployed.
	Failed
)

var progressNames = [...]string{"waiting", "deploying", "deployed", "verified", "failed"}

func (p Progress) String() string {
	if int(p) < len(progressNames) {
		return progressNames[p]
	}
	return "Progress(" + strconv.Itoa(int(p)) + ")"
}

// Member is one service of a push — in any target account — with its wave and progress.
type Member struct {
	Service  discover.Service
	Wave     int
	Progress Progress
	Why      string // Failed: what went wrong
}

func (m Member) name() string { return m.Service.Cluster + "/" + m.Service.Name }

// StageInput is what Stage decides from: every service of one push, across every target.
type StageInput struct {
	Members []Member
	// Release opens the lowest wave that waits, whatever the wave before it did: an
	// operator's `pinroll release`. Services that need approval still wait for it.
	Release bool
}

// Hold is why a service does not move now.
type Hold struct {
	Why      string
	Approval bool // its wave is open: only an approval moves it (pinroll approve)
	Wave     int
}

// Staging is what moves now in a push, what waits and why, and what stops the later waves.
type Staging struct {
	// Staged: the push's services span more than one wave, so what pinroll deploys is
	// recorded on each service (pinroll:released) for the later waves to look at.
	Staged bool
	// Open is the wave whose waiting services move now; -1 when none does.
	Open int
	Move map[discover.ServiceID]bool
	Hold map[discover.ServiceID]Hold
	// Check lists the services of the wave that gates the next one whose deployments ECS
	// says completed: check their tasks (Verified or Failed), then Stage again.
	Check []discover.ServiceID
	// Halted are the failed services of the wave that gates the next: the later waves wait
	// until a newer push or an operator (pinroll release, pinroll approve) moves them.
	Halted []Member
	// Failed are the services whose deployment of this push failed, by id, and why: a
	// redelivery, a reconciliation or a later wave's progress never deploys them again.
	Failed map[discover.ServiceID]string
}

// Stage decides which services of a push move now. It is a pure function of their waves
// and progress:
//
//   - The lowest wave with a waiting service is the candidate. It opens when no service of
//     the push is in a lower wave (a fresh push deploys its lowest wave at once), when every
//     service of the wave right below it is Verified, or when an operator releases it.
//   - Each wave gates the next one only (by construction the waves below it were verified
//     before it opened), so an operator who releases a wave past a failure lets the rollout
//     go on from there by itself.
//   - A Failed service in the gating wave halts every later wave; a Deployed one is to be
//     checked (Check) before anything is decided.
//   - A service that needs approval (pinroll:approval=required) waits for its wave AND for
//     its approval: when its wave opens it is held for approval, and the waves after it
//     wait for it like for any other service of its wave.
func Stage(in StageInput) Staging {
	s := Staging{Open: -1, Move: map[discover.ServiceID]bool{}, Hold: map[discover.ServiceID]Hold{}, Failed: map[discover.ServiceID]string{}}
	byWave := map[int][]Member{}
	for _, m := range in.Members {
		byWave[m.Wave] = append(byWave[m.Wave], m)
		if m.Progress == Failed {
			s.Failed[m.Service.ID()] = m.Why
		}
	}
	waves := slices.Sorted(func(yield func(int) bool) {
		for w := range byWave {
			if !yield(w) {
				return
			}
		}
	})
	s.Staged = len(waves) > 1
	candidate := -1
	for _, w := range waves {
		if slices.ContainsFunc(byWave[w], func(m Member) bool { return m.Progress == Waiting }) {
			candidate = w
			break
		}
	}
	if candidate < 0 {
		return s // nothing waits: every service has moved
	}

	open, why := true, ""
	if i := slices.Index(waves, candidate); i > 0 && !in.Release {
		gate := waves[i-1]
		prev := byWave[gate]
		var failed, unverified []Member
		for _, m := range prev {
			switch m.Progress {
			case Failed:
				failed = append(failed, m)
			case Verified:
			default:
				unverified = append(unverified, m)
				if m.Progress == Deployed {
					s.Check = append(s.Check, m.Service.ID())
				}
			}
		}
		switch {
		case len(failed) > 0:
			open, s.Halted, s.Check = false, failed, nil
			why = fmt.Sprintf("waits: wave %d halted: %s", gate, listMembers(failed, true))
		case len(unverified) > 0:
			open = false
			why = fmt.Sprintf("waits for wave %d to be verified (%d of %d verified; not yet: %s)", gate, len(prev)-len(unverified), len(prev), listMembers(unverified, false))
		}
	}
	if open {
		s.Open = candidate
	}
	for _, m := range in.Members {
		if m.Progress != Waiting {
			continue
		}
		id, approval := m.Service.ID(), NeedsApproval(m.Service)
		switch {
		case open && m.Wave == candidate && approval:
			s.Hold[id] = Hold{Why: "waits for approval", Approval: true, Wave: m.Wave}
		case open && m.Wave == candidate:
			s.Move[id] = true
		case open:
			s.Hold[id] = Hold{Why: fmt.Sprintf("waits for wave %d, deployed now, to be verified", candidate), Wave: m.Wave}
		default:
			s.Hold[id] = Hold{Why: why, Wave: m.Wave}
		}
		if h, held := s.Hold[id]; held && approval && !h.Approval {
			h.Why += ", then for approval"
			s.Hold[id] = h
		}
	}
	return s
}

// listMembers names up to five members, with their progress (or what failed).
func listMembers(ms []Member, failures bool) string {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.name(), b.name()) })
	var parts []string
	for i, m := range ms {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ms)-5))
			break
		}
		switch {
		case failures && m.Why != "":
			parts = append(parts, m.name()+" "+m.Why)
		default:
			parts = append(parts, m.name()+" "+m.Progress.String())
		}
	}
	return strings.Join(parts, ", ")
}

// Members lists the services of a push's plans with their waves, as Waiting: what they are
// before the caller knows better (the services it finds on the digest already, or failed).
func Members(plans ...Plan) []Member {
	var ms []Member
	for _, p := range plans {
		for _, reg := range p.Registrations {
			for _, svc := range reg.Services {
				ms = append(ms, Member{Service: svc, Wave: WaveOf(svc)})
			}
			for _, h := range reg.Held {
				ms = append(ms, Member{Service: h.Service, Wave: WaveOf(h.Service)})
			}
		}
	}
	return ms
}
