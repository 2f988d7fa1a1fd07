package probes

import (
	"fmt"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// coldReason is the Reason of a target that has been up since it was
// first probed.
const coldReason = "up since cold start"

// result is one judged probe result, as the state machine needs it.
type result struct {
	OK     bool
	Slow   bool   // passed, but over the latency budget
	Reason string // "HTTP 503 after 120ms"; for a slow pass, says so
	Time   time.Time
}

// judge is the rise/fall state of one target. It is plain data with no
// clock and no locks: the prober's loop owns it (under Prober.mu) and the
// tests drive it directly.
type judge struct {
	v      zones.TargetVerdict
	judged bool // v is meaningful: at least one result was observed
	succ   int  // consecutive successes (slow ones included)
	fail   int  // consecutive failures
}

// observe folds one result into the verdict. rise and fall are the
// check's thresholds (at least 1). It reports whether State or Pending
// changed, the only changes the snapshot cares about.
//
// The model: a target starts Up with zero counters, because an unjudged
// target counts as up (cold start). It goes Down on the fall-th consecutive
// failure and back Up (or Degraded) on the rise-th consecutive success.
// While not Down, every pass sets Degraded or Up by its latency alone.
// Pending is set while the current streak disagrees with State.
func (j *judge) observe(r result, rise, fall int) (changed bool) {
	rise, fall = max(rise, 1), max(fall, 1)
	if !j.judged {
		j.judged = true
		j.v = zones.TargetVerdict{State: zones.Up, Reason: coldReason, Since: r.Time}
	}
	old := j.v
	j.v.Checked = r.Time
	if r.OK {
		j.succ++
		j.fail = 0
		want := zones.Up
		if r.Slow {
			want = zones.Degraded
		}
		switch {
		case j.v.State == zones.Down && j.succ >= rise:
			j.flip(want, r.Time, fmt.Sprintf("%d consecutive successes", j.succ))
			if r.Slow {
				j.v.Reason += ", last: " + r.Reason
			}
		case j.v.State == zones.Down:
			// Recovering: Pending says so; Reason still tells why it went down.
		case want == zones.Degraded && j.v.State != zones.Degraded:
			j.flip(want, r.Time, r.Reason)
		case want == zones.Up && j.v.State != zones.Up:
			j.flip(want, r.Time, "within latency budget: "+r.Reason)
		}
	} else {
		j.fail++
		j.succ = 0
		reason := fmt.Sprintf("%d consecutive failures, last: %s", j.fail, r.Reason)
		switch {
		case j.v.State != zones.Down && j.fail >= fall:
			j.flip(zones.Down, r.Time, reason)
		case j.v.State == zones.Down:
			j.v.Reason = reason // still down: say what fails now
		}
	}
	if j.v.State == zones.Down {
		j.v.Pending = j.succ > 0
	} else {
		j.v.Pending = j.fail > 0
	}
	return old.State != j.v.State || old.Pending != j.v.Pending
}

func (j *judge) flip(s zones.State, at time.Time, reason string) {
	j.v.State, j.v.Since, j.v.Reason = s, at, reason
}
