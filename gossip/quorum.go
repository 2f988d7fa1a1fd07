package gossip

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// Flags are what Quorum found about the observers beyond the verdicts.
type Flags struct {
	// SelfDistrust: this node's own fresh verdicts say Down for every
	// target it observes (at least two) while a fresh verdict of a live
	// peer on one of those targets says it is not down, so the fault is
	// more likely this node's own network than every target at once. Its
	// own votes were left out.
	SelfDistrust bool
}

// Quorum folds the observers' verdicts into one verdict per target. It is
// a pure function of its arguments.
//
// The observers of a target are the live members (self counts as live)
// with a fresh entry for it: not removed, and checked within maxAge of
// now. Of n observers, need = n/2+1 (a majority) when share is 0, else
// max(1, ceil(share*n)). The target is Down when at least need observers
// say Down, else Degraded when at least need say Down or Degraded, else
// Up; it is Pending when any observer's verdict is. Its Checked is the
// latest observer's, its Since the latest Since among the observers that
// voted for the folded state. Targets without a fresh observer are absent,
// so they stay Up (the cold-start rule of zones.FoldHealth).
//
// Self-distrust (see Flags) drops this node's votes; the peers' votes
// decide alone. Rise and fall are the observers' business: they vote
// with verdicts, not with raw probe results.
func Quorum(self string, live []string, entries []Entry, now time.Time, maxAge time.Duration, share float64) (map[string]zones.TargetVerdict, Flags) {
	byTarget, flags := voters(self, live, entries, now, maxAge)
	out := make(map[string]zones.TargetVerdict, len(byTarget))
	for target, es := range byTarget {
		out[target] = fold(es, share)
	}
	return out, flags
}

// voters is Quorum's choice of the entries that vote, by target (each
// non-empty; they point into entries), and the flags: the fresh entries of
// live origins, less this node's own under self-distrust. Quorum folds
// them; Cluster.Observations shows which they are, so the two cannot
// disagree.
func voters(self string, live []string, entries []Entry, now time.Time, maxAge time.Duration) (map[string][]*Entry, Flags) {
	isLive := make(map[string]bool, len(live)+1)
	for _, n := range live {
		isLive[n] = true
	}
	isLive[self] = true
	byTarget := map[string][]*Entry{}
	for i := range entries {
		e := &entries[i]
		if e.Removed || !isLive[e.Origin] || e.Verdict.Checked.IsZero() || now.Sub(e.Verdict.Checked) > maxAge {
			continue
		}
		byTarget[e.Target] = append(byTarget[e.Target], e)
	}

	var flags Flags
	own, ownDown, peerUp := 0, 0, false
	for _, es := range byTarget {
		i := slices.IndexFunc(es, func(e *Entry) bool { return e.Origin == self })
		if i < 0 {
			continue
		}
		own++
		if es[i].Verdict.State == zones.Down {
			ownDown++
		}
		peerUp = peerUp || slices.ContainsFunc(es, func(e *Entry) bool {
			return e.Origin != self && e.Verdict.State != zones.Down
		})
	}
	flags.SelfDistrust = own >= 2 && ownDown == own && peerUp

	if flags.SelfDistrust {
		for target, es := range byTarget {
			es = slices.DeleteFunc(es, func(e *Entry) bool { return e.Origin == self })
			if len(es) == 0 {
				delete(byTarget, target)
			} else {
				byTarget[target] = es
			}
		}
	}
	return byTarget, flags
}

// need is how many of n observers make a quorum.
func need(n int, share float64) int {
	if share <= 0 {
		return n/2 + 1
	}
	// The epsilon keeps 0.6*5 at 3, not 4, despite binary fractions.
	return max(1, int(math.Ceil(share*float64(n)-1e-9)))
}

// fold is one target's quorum over its voting observers.
func fold(es []*Entry, share float64) zones.TargetVerdict {
	slices.SortFunc(es, func(a, b *Entry) int { return cmp.Compare(a.Origin, b.Origin) })
	n := len(es)
	k := need(n, share)
	var downs, degradeds int
	var v zones.TargetVerdict
	firstDown := ""
	for _, e := range es {
		switch e.Verdict.State {
		case zones.Down:
			downs++
			if firstDown == "" {
				firstDown = e.Origin + ": " + e.Verdict.Reason
			}
		case zones.Degraded:
			degradeds++
		}
		v.Pending = v.Pending || e.Verdict.Pending
		if e.Verdict.Checked.After(v.Checked) {
			v.Checked = e.Verdict.Checked
		}
	}
	switch {
	case downs >= k:
		v.State = zones.Down
	case downs+degradeds >= k:
		v.State = zones.Degraded
	}
	for _, e := range es {
		votes := e.Verdict.State == v.State || (v.State == zones.Degraded && e.Verdict.State == zones.Down)
		if votes && e.Verdict.Since.After(v.Since) {
			v.Since = e.Verdict.Since
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s by %d of %d observers (need %d): %d down, %d degraded, %d up",
		v.State, votesFor(v.State, downs, degradeds, n), n, k, downs, degradeds, n-downs-degradeds)
	if firstDown != "" {
		b.WriteString("; ")
		b.WriteString(firstDown)
	}
	v.Reason = b.String()
	return v
}

// votesFor is how many observers voted for state s.
func votesFor(s zones.State, downs, degradeds, n int) int {
	switch s {
	case zones.Down:
		return downs
	case zones.Degraded:
		return downs + degradeds
	}
	return n - downs - degradeds
}

// isolated reports whether a node that reaches live members (itself
// included) of known ones (every member not known to have left, itself
// included) is cut off from most of its cluster: fewer than half reach it.
func isolated(live, known int) bool {
	return 2*live < known
}

// nextView is the view a node serves: the computed one while it is not
// isolated, else the last agreed one (frozen). It returns the view to
// serve and the last agreed view to remember.
func nextView(lastAgreed, computed map[string]zones.TargetVerdict, isolated bool) (serve, agreed map[string]zones.TargetVerdict) {
	if isolated {
		return lastAgreed, lastAgreed
	}
	return computed, computed
}
