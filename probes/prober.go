package probes

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultConcurrency is the default bound on probes in flight at once.
const DefaultConcurrency = 64

// ErrRunning is returned by Run when the prober is already running.
var ErrRunning = errors.New("probes: already running")

// Options configure a Prober. The zero value is usable.
type Options struct {
	// Concurrency bounds the probes in flight at once (default 64). A due
	// probe waits for a free slot; the earliest due goes first.
	Concurrency int
	// OnChange, when set, is called after any target's State or Pending
	// changed (once per change of a target, however many members it
	// serves) and after SetTargets removed a target whose verdict mattered
	// (down, degraded or pending), so the caller can fold Verdicts into a new
	// HealthView. It is called from Run's goroutine, never concurrently and
	// without the prober's lock (it may call Verdicts); it must not block
	// long, since probing waits for it.
	OnChange func()
	// OnObservation, when set, receives every probe result of a current
	// target, from Run's goroutine. It must not block: copy and queue.
	OnObservation func(zones.Observation)
	// Now stamps results and verdicts: Observation.Time, Checked, Since
	// (default time.Now). It is called from Run's goroutine. The schedule
	// and latencies run on the runtime clock and timers (which
	// testing/synctest fakes), so a frozen or stepped Now never stalls
	// probing.
	Now func() time.Time
	// Rand returns a uniform number in [0, 1) for the first-probe spread and
	// the ±10% jitter (default math/rand/v2.Float64). It is called under
	// the prober's lock, never concurrently.
	Rand func() float64
	// Log receives verdict flips at Info (rare) and repeated target IDs at
	// Warn (default: discarded). Nothing is logged per probe.
	Log *slog.Logger
	// UserAgent is the User-Agent of HTTP(S) probes (default
	// "meridian-probe/1"); a clustered node adds its name, so an endpoint's
	// access log says which node probed it.
	UserAgent string
}

// Prober probes every target on its schedule and keeps a rise/fall
// verdict per target. A target is an endpoint and check shared by every
// pool member that uses both (zones.Target), so it is probed once per
// interval whatever the number of members, and a change of its verdict is
// one OnChange call. Its methods are safe for concurrent use; Run runs
// at most once at a time.
type Prober struct {
	opts    Options // defaults filled in; read-only after New
	m       *metrics
	running atomic.Bool
	wake    chan struct{} // cap 1: SetTargets tells Run the schedule changed

	// check runs one attempt (probe by default); tests swap it before Run.
	check func(ctx context.Context, t *zones.Target) outcome

	mu        sync.Mutex
	targets   map[string]*entry // by Target.ID; under mu
	queue     schedule          // entries waiting for their next probe; under mu
	forgotten bool              // SetTargets removed a verdict that mattered; under mu
}

// entry is one target with its schedule and verdict; all under Prober.mu.
type entry struct {
	t     zones.Target // SetTargets may swap in a reloaded Check and Members
	j     judge        // written by Run's goroutine
	due   time.Time    // the next probe's time
	index int          // position in Prober.queue, -1 while in flight or removed
}

// finished is an attempt's result on its way back to Run's goroutine.
type finished struct {
	e    *entry
	t    zones.Target // as probed
	out  outcome
	took time.Duration // the whole attempt
}

// New builds a Prober and registers its metrics with reg (nil: not
// registered). It probes nothing until SetTargets and Run.
func New(opts Options, reg prometheus.Registerer) *Prober {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.UserAgent == "" {
		opts.UserAgent = userAgent
	}
	p := &Prober{
		opts:    opts,
		m:       newMetrics(reg),
		wake:    make(chan struct{}, 1),
		targets: map[string]*entry{},
	}
	p.check = p.probe
	return p
}

// SetTargets replaces the set of targets; call it on every config load.
// Targets whose ID is unchanged keep their verdict, counters and schedule
// (taking the reloaded Check and Members: a pool that starts or stops
// using a shared target does not disturb it); new targets get their first
// probe within a random spread of min(Interval, 1s), not on the first
// query; removed targets stop (a probe in flight finishes and is ignored)
// and lose their metric series. Targets without a Check are skipped, and
// so are repeated IDs after the first.
func (p *Prober) SetTargets(ts []zones.Target) {
	p.mu.Lock()
	now := time.Now()
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if t.Check == nil {
			continue
		}
		if seen[t.ID] {
			p.opts.Log.Warn("probe target listed twice, probing it once", "target", t.ID)
			continue
		}
		seen[t.ID] = true
		if e, ok := p.targets[t.ID]; ok {
			old := e.t.Check.Interval
			e.t = t
			// A shorter interval takes effect now rather than after the
			// old, longer wait.
			if t.Check.Interval < old && e.index >= 0 {
				if first := now.Add(spread(t.Check.Interval, p.opts.Rand)); first.Before(e.due) {
					e.due = first
					heap.Fix(&p.queue, e.index)
				}
			}
			continue
		}
		e := &entry{t: t, due: now.Add(spread(t.Check.Interval, p.opts.Rand)), index: -1}
		p.targets[t.ID] = e
		heap.Push(&p.queue, e)
		p.m.setUp(&e.t, zones.Up) // cold start counts as up
	}
	for id, e := range p.targets {
		if seen[id] {
			continue
		}
		delete(p.targets, id)
		if e.index >= 0 {
			heap.Remove(&p.queue, e.index)
		}
		p.m.forget(&e.t)
		if e.j.judged && (e.j.v.State != zones.Up || e.j.v.Pending) {
			p.forgotten = true
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Verdicts returns a copy of every judged target's verdict, by Target.ID.
// A target not yet probed is absent: it counts as up (cold start), as
// zones.FoldHealth assumes.
func (p *Prober) Verdicts() map[string]zones.TargetVerdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]zones.TargetVerdict, len(p.targets))
	for id, e := range p.targets {
		if e.j.judged {
			out[id] = e.j.v
		}
	}
	return out
}

// Run probes until ctx is done, then cancels the probes in flight, waits
// for every goroutine it started and returns nil. It returns ErrRunning at
// once if another Run is running.
func (p *Prober) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer p.running.Store(false)
	limit := p.opts.Concurrency
	done := make(chan finished, limit) // one slot per attempt in flight: sends never block
	var wg sync.WaitGroup
	inFlight := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		now := time.Now()
		for inFlight < limit && p.queue.Len() > 0 && !p.queue[0].due.After(now) {
			e := heap.Pop(&p.queue).(*entry)
			every := interval(e.t.Check.Interval)
			// The next probe is due one jittered interval after this one was
			// due, so waiting for a slot does not slow the rate; a target
			// more than an interval late (Run started late, a long backlog)
			// starts over from now rather than catching up in a burst.
			base := e.due
			if now.Sub(base) > every {
				base = now
			}
			e.due = base.Add(jittered(every, p.opts.Rand))
			inFlight++
			t := e.t
			wg.Go(func() { done <- p.attempt(ctx, e, t) })
		}
		var wait <-chan time.Time
		if inFlight < limit && p.queue.Len() > 0 {
			timer.Reset(p.queue[0].due.Sub(now))
			wait = timer.C
		} else {
			timer.Stop()
		}
		forgotten := p.forgotten
		p.forgotten = false
		p.mu.Unlock()
		if forgotten {
			p.changed()
		}

		select {
		case <-ctx.Done():
			// The attempts' contexts derive from ctx, so they end soon; each
			// leaves its result in done, which has room for all of them.
			wg.Wait()
			for inFlight > 0 {
				p.requeue(<-done)
				inFlight--
			}
			return nil
		case <-wait:
		case <-p.wake:
		case f := <-done:
			inFlight--
			if p.finish(f) {
				p.changed()
			}
		}
	}
}

func (p *Prober) changed() {
	if p.opts.OnChange != nil {
		p.opts.OnChange()
	}
}

// attempt runs one probe of t, bounded by its Timeout; a panicking check
// is a failure, not a crash.
func (p *Prober) attempt(ctx context.Context, e *entry, t zones.Target) (f finished) {
	timeout := t.Check.Timeout
	if timeout <= 0 {
		timeout = interval(t.Check.Interval)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			f.out = outcome{reason: fmt.Sprintf("probe panicked: %v", r)}
		}
		f.e, f.t, f.took = e, t, time.Since(start)
	}()
	return finished{out: p.check(ctx, &t)}
}

// finish folds one result into its target's verdict and schedules the
// target's next probe. It reports whether State or Pending changed.
func (p *Prober) finish(f finished) (changed bool) {
	c := f.t.Check
	at := p.opts.Now()
	slow := f.out.ok && c.LatencyBudget > 0 && f.out.latency > c.LatencyBudget
	res := result{OK: f.out.ok, Slow: slow, Reason: f.out.reason, Time: at}
	label := resultFailure
	switch {
	case slow:
		res.Reason += fmt.Sprintf(", over %s budget", fmtDur(c.LatencyBudget))
		label = resultDegraded
	case f.out.ok:
		label = resultSuccess
	}
	kind := string(c.Kind)
	p.m.duration.WithLabelValues(kind).Observe(f.took.Seconds())

	p.mu.Lock()
	e := f.e
	live := p.targets[f.t.ID] == e
	var from, to zones.State
	if live {
		// Counted under mu and only while live, so a result of a target
		// SetTargets removed (and forgot) cannot bring its series back.
		p.m.attempts.WithLabelValues(f.t.ID, kind, label).Inc()
		from = e.j.v.State // Up while unjudged, as the zero State
		cur := e.t.Check   // a reload may have changed rise and fall meanwhile
		changed = e.j.observe(res, cur.Rise, cur.Fall)
		to = e.j.v.State
		heap.Push(&p.queue, e)
		if from != to {
			p.m.setUp(&e.t, to)
			p.m.flips.WithLabelValues(e.t.ID, to.String()).Inc()
		}
	}
	reason, members := e.j.v.Reason, len(e.t.Members)
	p.mu.Unlock()
	if !live {
		return false
	}
	if from != to {
		p.opts.Log.Info("probe verdict changed", "target", f.t.ID, "members", members, "from", from.String(), "to", to.String(), "reason", reason)
	}
	if p.opts.OnObservation != nil {
		p.opts.OnObservation(zones.Observation{
			Target:  f.t.ID,
			OK:      f.out.ok,
			Latency: f.out.latency,
			Time:    at,
			Reason:  res.Reason,
		})
	}
	return changed
}

// requeue puts back a target whose attempt Run cancelled on the way out, so
// a later Run probes it again.
func (p *Prober) requeue(f finished) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.targets[f.t.ID] == f.e {
		heap.Push(&p.queue, f.e)
	}
}
