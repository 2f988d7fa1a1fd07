package probes

import (
	"time"
)

// minInterval keeps a zero or negative interval (which zones rejects) from
// turning the loop into a busy spin.
const minInterval = 10 * time.Millisecond

// maxSpread bounds the random delay of a new target's first probe.
const maxSpread = time.Second

// schedule is a min-heap of the entries waiting for their next probe,
// earliest due first (container/heap). An entry is out of the heap while
// its probe is in flight, so a target never has two probes at once.
type schedule []*entry

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].due.Before(s[j].due) }
func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}

func (s *schedule) Push(x any) {
	e := x.(*entry)
	e.index = len(*s)
	*s = append(*s, e)
}

func (s *schedule) Pop() any {
	old := *s
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	e.index = -1
	return e
}

// interval is how often a target with this check interval is probed.
func interval(d time.Duration) time.Duration { return max(d, minInterval) }

// spread is the delay of a new target's first probe: uniform in
// [0, min(interval, 1s)), so targets loaded together do not fire together.
func spread(every time.Duration, rnd func() float64) time.Duration {
	return time.Duration(rnd() * float64(min(interval(every), maxSpread)))
}

// jittered is the gap before the next probe: interval ±10%, uniform.
func jittered(every time.Duration, rnd func() float64) time.Duration {
	return time.Duration(float64(interval(every)) * (0.9 + 0.2*rnd()))
}
