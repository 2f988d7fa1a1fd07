package probes

import (
	"context"
	"fmt"
	"sync"

	"github.com/meridian-gtm/meridian/zones"
)

// Once runs every target's check one time, at most concurrency at once, and
// returns a verdict per target ID judged on that single attempt: no rise
// or fall. A target shared by several pool members is probed once, and so
// is an ID listed twice. It is for a one-off look ("what would this
// machine see now?", as `meridian explain -probe` asks), never for
// steering answers.
func Once(ctx context.Context, ts []zones.Target, concurrency int) map[string]zones.TargetVerdict {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	p := New(Options{}, nil)
	out := make(map[string]zones.TargetVerdict, len(ts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, concurrency)
	seen := make(map[string]bool, len(ts))
	for i := range ts {
		t := &ts[i]
		if t.Check == nil || seen[t.ID] {
			continue
		}
		seen[t.ID] = true
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			actx, cancel := context.WithTimeout(ctx, t.Check.Timeout)
			o := p.probe(actx, t)
			cancel()
			v := zones.TargetVerdict{State: zones.Up, Reason: "one probe from here: " + o.reason}
			switch {
			case !o.ok:
				v.State = zones.Down
			case t.Check.LatencyBudget > 0 && o.latency > t.Check.LatencyBudget:
				v.State = zones.Degraded
				v.Reason = fmt.Sprintf("one probe from here: %s, over the %s budget", o.reason, fmtDur(t.Check.LatencyBudget))
			}
			mu.Lock()
			out[t.ID] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
