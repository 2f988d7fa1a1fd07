package probes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeTargets are n TCP targets on 192.0.2.x (never dialled: the tests
// swap the check) sharing one check.
func fakeTargets(n int, c *zones.Check) []zones.Target {
	out := make([]zones.Target, n)
	for i := range out {
		ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 80)
		out[i] = zones.Target{
			ID:       "tcp://" + ep.String(),
			Members:  []zones.MemberKey{{Pool: "pool.example.", Region: fmt.Sprintf("r%d", i)}},
			Endpoint: ep,
			Check:    c,
		}
	}
	return out
}

// recorder is a fake check that notes when each target was probed.
type recorder struct {
	mu    sync.Mutex
	times map[string][]time.Time // by target ID
	ok    func(id string) bool   // the result; nil: pass
}

func (r *recorder) check(ctx context.Context, t *zones.Target) outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.times == nil {
		r.times = map[string][]time.Time{}
	}
	r.times[t.ID] = append(r.times[t.ID], time.Now())
	if r.ok != nil && !r.ok(t.ID) {
		return fail(0, "refused")
	}
	return pass(time.Millisecond, "ok")
}

func (r *recorder) snapshot() map[string][]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]time.Time{}
	for id, ts := range r.times {
		out[id] = append([]time.Time(nil), ts...)
	}
	return out
}

// start runs p in the background; stop cancels it and waits for Run.
func start(t *testing.T, p *Prober) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func seeded() func() float64 { return rand.New(rand.NewPCG(1, 2)).Float64 }

// TestScheduleRate: over a minute each target is probed about 60/interval
// times, the gaps between probes stay within ±10% of the interval, and the
// gaps are jittered (not all equal).
func TestScheduleRate(t *testing.T) {
	for _, tc := range []struct {
		every    time.Duration
		min, max int // probes per target in one minute
	}{
		{time.Second, 54, 66},
		{5 * time.Second, 11, 13},
		{250 * time.Millisecond, 216, 264},
	} {
		t.Run(tc.every.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				p := New(Options{Rand: seeded()}, nil)
				p.check = rec.check
				c := &zones.Check{Kind: zones.CheckTCP, Interval: tc.every, Timeout: tc.every / 2, Rise: 5, Fall: 3}
				p.SetTargets(fakeTargets(20, c))
				stop := start(t, p)
				time.Sleep(time.Minute)
				stop()
				got := rec.snapshot()
				if len(got) != 20 {
					t.Fatalf("%d targets probed, want 20", len(got))
				}
				for id, ts := range got {
					if len(ts) < tc.min || len(ts) > tc.max {
						t.Errorf("%s: %d probes in a minute, want %d..%d", id, len(ts), tc.min, tc.max)
					}
					gaps := map[time.Duration]bool{}
					for i := 1; i < len(ts); i++ {
						gap := ts[i].Sub(ts[i-1])
						gaps[gap] = true
						if gap < tc.every*9/10 || gap > tc.every*11/10 {
							t.Errorf("%s: gap %s outside %s ±10%%", id, gap, tc.every)
						}
					}
					if len(gaps) < 3 {
						t.Errorf("%s: %d distinct gaps, want jitter", id, len(gaps))
					}
				}
			})
		})
	}
}

// TestScheduleSpread: the first probes of 50 targets loaded at once are
// spread over [0, min(interval, 1s)) rather than fired together, and none
// waits for the first query or a whole interval.
func TestScheduleSpread(t *testing.T) {
	for _, every := range []time.Duration{200 * time.Millisecond, 10 * time.Second} {
		t.Run(every.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				p := New(Options{Rand: seeded()}, nil)
				p.check = rec.check
				c := &zones.Check{Kind: zones.CheckTCP, Interval: every, Timeout: every / 2, Rise: 5, Fall: 3}
				begin := time.Now()
				p.SetTargets(fakeTargets(50, c))
				stop := start(t, p)
				time.Sleep(min(every, time.Second))
				stop()
				window := min(every, time.Second)
				distinct := map[time.Duration]bool{}
				var last time.Duration
				for id, ts := range rec.snapshot() {
					first := ts[0].Sub(begin)
					distinct[first] = true
					last = max(last, first)
					if first < 0 || first >= window {
						t.Errorf("%s: first probe at %s, want within [0, %s)", id, first, window)
					}
				}
				if len(distinct) < 40 {
					t.Errorf("first probes of 50 targets fell on %d distinct instants, want them spread", len(distinct))
				}
				if last < window/2 {
					t.Errorf("every first probe within %s, want them spread over %s", last, window)
				}
			})
		})
	}
}

// TestConcurrencyBound: with checks that hang until their timeout, never
// more than Concurrency run at once, the bound is reached, and every
// target still gets its turn.
func TestConcurrencyBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cur, peak atomic.Int32
		var mu sync.Mutex
		probed := map[string]int{}
		p := New(Options{Concurrency: 4}, nil)
		p.check = func(ctx context.Context, tg *zones.Target) outcome {
			n := cur.Add(1)
			defer cur.Add(-1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			mu.Lock()
			probed[tg.ID]++
			mu.Unlock()
			<-ctx.Done() // hangs until the attempt's timeout
			return fail(0, "timeout")
		}
		c := &zones.Check{Kind: zones.CheckTCP, Interval: time.Second, Timeout: time.Second, Rise: 5, Fall: 3}
		p.SetTargets(fakeTargets(20, c))
		stop := start(t, p)
		time.Sleep(30 * time.Second)
		stop()
		if n := cur.Load(); n != 0 {
			t.Errorf("Run returned with %d checks still running", n)
		}
		if got := peak.Load(); got != 4 {
			t.Errorf("peak in flight %d, want 4 (the bound, reached)", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(probed) != 20 {
			t.Errorf("%d of 20 targets probed", len(probed))
		}
		for id, n := range probed {
			if n < 4 { // 4 slots × 30 s / 1 s per attempt / 20 targets = 6 each
				t.Errorf("%s probed %d times in 30s, want its fair share (~6)", id, n)
			}
		}
	})
}

// TestSetTargetsKeepsState: a reload keeps the verdict and schedule of
// targets whose ID is unchanged, starts new ones, stops removed ones and
// deletes their gauge series.
func TestSetTargetsKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{ok: func(string) bool { return false }}
		reg := prometheus.NewPedanticRegistry()
		var changes atomic.Int32
		p := New(Options{Rand: seeded(), OnChange: func() { changes.Add(1) }}, reg)
		p.check = rec.check
		c := &zones.Check{Kind: zones.CheckTCP, Interval: time.Second, Timeout: time.Second / 2, Rise: 5, Fall: 3}
		ts := fakeTargets(3, c)
		p.SetTargets(ts[:2])
		stop := start(t, p)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		v := p.Verdicts()
		if len(v) != 2 || v[ts[0].ID].State != zones.Down || v[ts[1].ID].State != zones.Down {
			t.Fatalf("after 5 failing probes: %+v, want both down", v)
		}
		since := v[ts[0].ID].Since
		if n := testutil.ToFloat64(p.m.up.WithLabelValues(ts[1].ID)); n != 0 {
			t.Errorf("target_up of a down target = %v", n)
		}

		// Reload: keep ts[0] (with an equal, reloaded check), drop ts[1], add ts[2].
		reloaded := *c
		keep := ts[0]
		keep.Check = &reloaded
		changesBefore := changes.Load()
		reloadedAt := time.Now()
		p.SetTargets([]zones.Target{keep, ts[2]})
		synctest.Wait()
		if changes.Load() != changesBefore+1 {
			t.Errorf("removing a down target: OnChange called %d times, want 1", changes.Load()-changesBefore)
		}
		removedAt := len(rec.snapshot()[ts[1].ID])
		time.Sleep(time.Second)
		synctest.Wait()
		v = p.Verdicts()
		if got := v[ts[0].ID]; got.State != zones.Down || !got.Since.Equal(since) {
			t.Errorf("kept target: %+v, want still down since %v", got, since)
		}
		if _, ok := v[ts[1].ID]; ok {
			t.Errorf("removed target still has a verdict")
		}
		if first := rec.snapshot()[ts[2].ID]; len(first) == 0 || first[0].Sub(reloadedAt) >= time.Second {
			t.Errorf("new target's first probe: %v, want within 1s of the reload", first)
		}
		if got := v[ts[2].ID]; got.State != zones.Up || !got.Pending {
			t.Errorf("new target after one failing probe: %+v, want up, pending", got)
		}
		time.Sleep(10 * time.Second)
		stop()
		got := rec.snapshot()
		if n := len(got[ts[1].ID]); n != removedAt {
			t.Errorf("removed target probed %d more times", n-removedAt)
		}
		if n := len(got[ts[2].ID]); n < 10 {
			t.Errorf("new target probed %d times in 11s", n)
		}
		if n := testutil.CollectAndCount(reg, "meridian_probe_target_up"); n != 2 {
			t.Errorf("%d target_up series, want 2 (the removed one deleted)", n)
		}
	})
}

// TestRunTwice: a second concurrent Run is refused; Run can run again
// after it returned, and picks up where it left.
func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		p := New(Options{}, nil)
		p.check = rec.check
		c := &zones.Check{Kind: zones.CheckTCP, Interval: time.Second, Timeout: time.Second / 2, Rise: 5, Fall: 3}
		p.SetTargets(fakeTargets(1, c))
		stop := start(t, p)
		synctest.Wait()
		if err := p.Run(t.Context()); err != ErrRunning {
			t.Errorf("second Run: %v, want ErrRunning", err)
		}
		time.Sleep(3 * time.Second)
		stop()
		n := len(rec.snapshot()["tcp://192.0.2.1:80"])
		stop = start(t, p)
		time.Sleep(3 * time.Second)
		stop()
		if m := len(rec.snapshot()["tcp://192.0.2.1:80"]); m < n+2 {
			t.Errorf("probes after restart: %d then %d", n, m)
		}
	})
}

// TestColdStart: before its first probe a target has no verdict (it
// counts as up), and nothing was reported.
func TestColdStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes atomic.Int32
		p := New(Options{OnChange: func() { changes.Add(1) }}, nil)
		p.check = (&recorder{}).check
		c := &zones.Check{Kind: zones.CheckTCP, Interval: 10 * time.Second, Timeout: time.Second, Rise: 5, Fall: 3}
		p.SetTargets(fakeTargets(3, c))
		if v := p.Verdicts(); len(v) != 0 {
			t.Errorf("verdicts before any probe: %v", v)
		}
		stop := start(t, p)
		time.Sleep(time.Second) // the spread: every first probe is done
		synctest.Wait()
		v := p.Verdicts()
		stop()
		if len(v) != 3 {
			t.Errorf("%d verdicts after the first probes, want 3", len(v))
		}
		for id, tv := range v {
			if tv.State != zones.Up || tv.Pending || tv.Reason != coldReason {
				t.Errorf("%s: %+v, want up since cold start", id, tv)
			}
		}
		if n := changes.Load(); n != 0 {
			t.Errorf("OnChange called %d times for targets that were up and stayed up", n)
		}
	})
}

// TestPanickingCheck: a check that panics is a failed probe, and the
// prober goes on.
func TestPanickingCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{}, nil)
		p.check = func(context.Context, *zones.Target) outcome { panic("boom") }
		c := &zones.Check{Kind: zones.CheckTCP, Interval: time.Second, Timeout: time.Second / 2, Rise: 5, Fall: 3}
		tg := fakeTargets(1, c)[0]
		p.SetTargets([]zones.Target{tg})
		stop := start(t, p)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		v := p.Verdicts()[tg.ID]
		stop()
		if v.State != zones.Down || !strings.HasSuffix(v.Reason, "last: probe panicked: boom") {
			t.Errorf("verdict %+v, want down after panics", v)
		}
	})
}

// TestReloadShorterInterval: a reload that shortens a kept target's
// interval takes effect at once, not after the old interval.
func TestReloadShorterInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		p := New(Options{}, nil)
		p.check = rec.check
		slow := &zones.Check{Kind: zones.CheckTCP, Interval: time.Hour, Timeout: time.Second, Rise: 5, Fall: 3}
		tg := fakeTargets(1, slow)[0]
		p.SetTargets([]zones.Target{tg})
		stop := start(t, p)
		time.Sleep(2 * time.Second) // the first probe; the next is an hour away
		fast := *slow
		fast.Interval = time.Second
		tg.Check = &fast
		p.SetTargets([]zones.Target{tg})
		time.Sleep(10 * time.Second)
		stop()
		if n := len(rec.snapshot()[tg.ID]); n < 9 {
			t.Errorf("%d probes, want about 11 after the interval dropped to 1s", n)
		}
	})
}

// TestInjectedClock: Now stamps verdicts and observations; a frozen Now
// does not stall the schedule, which runs on the runtime's timers.
func TestInjectedClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stamps []time.Time
		rec := &recorder{}
		p := New(Options{
			Now:           func() time.Time { return t0 },
			OnObservation: func(o zones.Observation) { stamps = append(stamps, o.Time) },
		}, nil)
		p.check = rec.check
		c := &zones.Check{Kind: zones.CheckTCP, Interval: time.Second, Timeout: time.Second / 2, Rise: 5, Fall: 3}
		tg := fakeTargets(1, c)[0]
		p.SetTargets([]zones.Target{tg})
		stop := start(t, p)
		time.Sleep(5 * time.Second)
		stop()
		if n := len(rec.snapshot()[tg.ID]); n < 4 {
			t.Errorf("%d probes in 5s with a frozen clock, want about 5", n)
		}
		if v := p.Verdicts()[tg.ID]; !v.Checked.Equal(t0) || !v.Since.Equal(t0) {
			t.Errorf("verdict %+v, want stamped by the injected clock", v)
		}
		for _, s := range stamps {
			if !s.Equal(t0) {
				t.Errorf("observation stamped %v, want %v", s, t0)
			}
		}
	})
}
