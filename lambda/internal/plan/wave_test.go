package plan

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/discover"
)

func TestParseWave(t *testing.T) {
	for _, tc := range []struct {
		tag  string
		want int
		err  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"2", 2, false}, {"007", 7, false},
		{"-1", 0, true}, {"+1", 0, true}, {"1.5", 0, true}, {"one", 0, true}, {" 1", 0, true}, {"99999999999999999999", 0, true},
	} {
		got, err := ParseWave(tc.tag)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseWave(%q) = %d, %v; want %d, error %v", tc.tag, got, err, tc.want, tc.err)
		}
	}
}

func TestABadWaveExcludesTheService(t *testing.T) {
	for _, v := range []string{"-1", "next", "1.0"} {
		svc := discover.Service{Status: "ACTIVE", Controller: "ECS", Tags: map[string]string{TagWave: v}}
		if why, want := Excluded(svc, false), "pinroll:wave="+v+" is not a wave (a whole number, 0 or more)"; why != want {
			t.Errorf("Excluded(wave %s) = %q, want %q", v, why, want)
		}
	}
}

// member is a service "cluster/name" of a wave, at a progress.
func member(name string, wave int, p Progress, tags ...string) Member {
	m := Member{Service: discover.Service{Cluster: "c", Name: name, ARN: "arn:" + name, Tags: map[string]string{}}, Wave: wave, Progress: p}
	for i := 0; i+1 < len(tags); i += 2 {
		m.Service.Tags[tags[i]] = tags[i+1]
	}
	if p == Failed {
		m.Why = "rolled back"
	}
	return m
}

func TestStage(t *testing.T) {
	approval := []string{TagApproval, ApprovalRequired}
	cases := []struct {
		name    string
		members []Member
		release bool
		open    int
		move    []string
		hold    map[string]string // name → why
		check   []string
		halted  []string
		staged  bool
	}{
		{
			name:    "one wave: everything moves, nothing is staged",
			members: []Member{member("a", 0, Waiting), member("b", 0, Waiting)},
			open:    0, move: []string{"a", "b"},
		},
		{
			name:    "a fresh push deploys its lowest wave and holds the others",
			members: []Member{member("a", 0, Waiting), member("b", 1, Waiting), member("c", 2, Waiting)},
			open:    0, move: []string{"a"}, staged: true,
			hold: map[string]string{"b": "waits for wave 0, deployed now, to be verified", "c": "waits for wave 0, deployed now, to be verified"},
		},
		{
			name:    "the lowest wave need not be 0",
			members: []Member{member("b", 3, Waiting), member("c", 7, Waiting)},
			open:    3, move: []string{"b"}, staged: true,
			hold: map[string]string{"c": "waits for wave 3, deployed now, to be verified"},
		},
		{
			name:    "a wave still deploying holds the next",
			members: []Member{member("a", 0, Deploying), member("a2", 0, Verified), member("b", 1, Waiting)},
			open:    -1, staged: true,
			hold: map[string]string{"b": "waits for wave 0 to be verified (1 of 2 verified; not yet: c/a deploying)"},
		},
		{
			name:    "a completed deployment is checked before the next wave opens",
			members: []Member{member("a", 0, Deployed), member("a2", 0, Deploying), member("b", 1, Waiting)},
			open:    -1, check: []string{"a"}, staged: true,
			hold: map[string]string{"b": "waits for wave 0 to be verified (0 of 2 verified; not yet: c/a deployed, c/a2 deploying)"},
		},
		{
			name:    "a verified wave opens the next, and only the next",
			members: []Member{member("a", 0, Verified), member("b", 1, Waiting), member("c", 2, Waiting)},
			open:    1, move: []string{"b"}, staged: true,
			hold: map[string]string{"c": "waits for wave 1, deployed now, to be verified"},
		},
		{
			name:    "waves need not be consecutive",
			members: []Member{member("a", 0, Verified), member("b", 5, Verified), member("c", 10, Waiting)},
			open:    10, move: []string{"c"}, staged: true,
		},
		{
			name:    "a failure halts every later wave",
			members: []Member{member("a", 0, Verified), member("b", 1, Failed), member("b2", 1, Verified), member("c", 2, Waiting), member("d", 3, Waiting)},
			open:    -1, halted: []string{"b"}, staged: true,
			hold: map[string]string{"c": "waits: wave 1 halted: c/b rolled back", "d": "waits: wave 1 halted: c/b rolled back"},
		},
		{
			name:    "a failure halts even while others of its wave still deploy, and nothing is checked",
			members: []Member{member("b", 1, Failed), member("b2", 1, Deployed), member("c", 2, Waiting)},
			open:    -1, halted: []string{"b"}, staged: true,
			hold: map[string]string{"c": "waits: wave 1 halted: c/b rolled back"},
		},
		{
			name:    "an operator's release opens the halted wave",
			members: []Member{member("b", 1, Failed), member("c", 2, Waiting), member("d", 3, Waiting)},
			release: true, open: 2, move: []string{"c"}, staged: true,
			hold: map[string]string{"d": "waits for wave 2, deployed now, to be verified"},
		},
		{
			name:    "after a release past a failure, the released wave gates the next by itself",
			members: []Member{member("b", 1, Failed), member("c", 2, Verified), member("d", 3, Waiting)},
			open:    3, move: []string{"d"}, staged: true,
		},
		{
			name:    "approval in the open wave: held for approval, and the next wave waits for it",
			members: []Member{member("a", 0, Verified), member("p", 0, Waiting, approval...), member("b", 1, Waiting)},
			open:    0, staged: true,
			hold: map[string]string{"p": "waits for approval", "b": "waits for wave 0, deployed now, to be verified"},
		},
		{
			name:    "approval in a later wave: it waits for both",
			members: []Member{member("a", 0, Deploying), member("p", 1, Waiting, approval...)},
			open:    -1, staged: true,
			hold: map[string]string{"p": "waits for wave 0 to be verified (0 of 1 verified; not yet: c/a deploying), then for approval"},
		},
		{
			name:    "approval in a later wave whose turn has come: held for approval alone",
			members: []Member{member("a", 0, Verified), member("p", 1, Waiting, approval...)},
			open:    1, staged: true,
			hold: map[string]string{"p": "waits for approval"},
		},
		{
			name:    "an operator's release still leaves approvals to the approvers",
			members: []Member{member("a", 0, Failed), member("p", 1, Waiting, approval...), member("q", 1, Waiting)},
			release: true, open: 1, move: []string{"q"}, staged: true,
			hold: map[string]string{"p": "waits for approval"},
		},
		{
			name:    "nothing waits: nothing opens",
			members: []Member{member("a", 0, Verified), member("b", 1, Deploying)},
			open:    -1, staged: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := StageInput{Members: slices.Clone(tc.members), Release: tc.release}
			got := Stage(in)
			if diff := cmp.Diff(tc.members, in.Members); diff != "" {
				t.Errorf("Stage changed its input:\n%s", diff)
			}
			name := func(id discover.ServiceID) string { return string(id)[len("arn:"):] }
			var move, check, halted []string
			for id := range got.Move {
				move = append(move, name(id))
			}
			for _, id := range got.Check {
				check = append(check, name(id))
			}
			for _, m := range got.Halted {
				halted = append(halted, m.Service.Name)
			}
			hold := map[string]string{}
			for id, h := range got.Hold {
				hold[name(id)] = h.Why
			}
			slices.Sort(move)
			if got.Open != tc.open {
				t.Errorf("open = %d, want %d", got.Open, tc.open)
			}
			if got.Staged != tc.staged {
				t.Errorf("staged = %v, want %v", got.Staged, tc.staged)
			}
			for _, d := range []struct {
				what      string
				want, got any
			}{
				{"move", tc.move, move}, {"check", tc.check, check}, {"halted", tc.halted, halted},
				{"hold", orNil(tc.hold), orNil(hold)},
			} {
				if diff := cmp.Diff(d.want, d.got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", d.what, diff)
				}
			}
			// Every waiting service either moves or is held; no other does either.
			for _, m := range tc.members {
				_, held := got.Hold[m.Service.ID()]
				if moves := got.Move[m.Service.ID()]; (m.Progress == Waiting) != (moves != held) || (moves && held) {
					t.Errorf("%s (%s): moves %v, held %v", m.Service.Name, m.Progress, moves, held)
				}
			}
		})
	}
}

func orNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func TestStageNamesAtMostFiveServices(t *testing.T) {
	var ms []Member
	for i := range 7 {
		ms = append(ms, member(fmt.Sprintf("s%d", i), 0, Deploying))
	}
	ms = append(ms, member("late", 1, Waiting))
	got := Stage(StageInput{Members: ms}).Hold["arn:late"].Why
	want := "waits for wave 0 to be verified (0 of 7 verified; not yet: c/s0 deploying, c/s1 deploying, c/s2 deploying, c/s3 deploying, c/s4 deploying, and 2 more)"
	if got != want {
		t.Errorf("why = %q\nwant  %q", got, want)
	}
}
