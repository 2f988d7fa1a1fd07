package gossip

import (
	"fmt"
	"slices"
	"testing"
)

func members(n, regions int) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = Member{Name: fmt.Sprintf("node%d", i+1), Region: fmt.Sprintf("r%d", i%regions)}
	}
	return out
}

// Assign gives each target exactly k observers, spread over regions, the
// same on every node whatever the order of the member list, and evenly
// over the members.
func TestAssign(t *testing.T) {
	ms := members(5, 3)
	load := map[string]int{}
	for i := range 3000 {
		target := fmt.Sprintf("http://192.0.2.%d:80/healthz#x", i)
		got := Assign(target, 2, ms)
		if len(got) != 2 || got[0] == got[1] {
			t.Fatalf("%s: %v, want two distinct members", target, got)
		}
		regions := map[string]bool{}
		for _, m := range ms {
			if slices.Contains(got, m.Name) {
				regions[m.Region] = true
			}
		}
		if len(regions) != 2 {
			t.Fatalf("%s: %v in %d region(s), want 2 (three are available)", target, got, len(regions))
		}
		rev := slices.Clone(ms)
		slices.Reverse(rev)
		if again := Assign(target, 2, rev); !slices.Equal(again, got) {
			t.Fatalf("%s: %v from a reversed member list, %v before", target, again, got)
		}
		for _, n := range got {
			load[n]++
		}
	}
	for _, m := range ms {
		// 6000 assignments over 5 members: 1200 each on average.
		if l := load[m.Name]; l < 900 || l > 1500 {
			t.Errorf("%s observes %d of 3000 targets' 6000 slots, want about 1200: %v", m.Name, l, load)
		}
	}
	if got := Assign("t", 0, ms); len(got) != 5 {
		t.Errorf("k = 0: %v, want every member", got)
	}
	if got := Assign("t", 9, ms); len(got) != 5 {
		t.Errorf("k > members: %v, want every member", got)
	}
}

// When a member leaves, only the targets it observed move; when it comes
// back, they move back.
func TestAssignMinimalMovement(t *testing.T) {
	ms := members(5, 3)
	for leaving := range ms {
		rest := slices.Delete(slices.Clone(ms), leaving, leaving+1)
		for i := range 2000 {
			target := fmt.Sprintf("tcp://198.51.100.%d:%d#y", i%250, i)
			before := Assign(target, 2, ms)
			after := Assign(target, 2, rest)
			if !slices.Contains(before, ms[leaving].Name) && !slices.Equal(before, after) {
				t.Fatalf("%s: %s left and observed nothing here, yet %v became %v", target, ms[leaving].Name, before, after)
			}
			if slices.Contains(before, ms[leaving].Name) {
				kept := 0
				for _, n := range before {
					if slices.Contains(after, n) {
						kept++
					}
				}
				if kept != 1 {
					t.Fatalf("%s: %s left; %v became %v, want the other observer kept", target, ms[leaving].Name, before, after)
				}
			}
		}
	}
}
