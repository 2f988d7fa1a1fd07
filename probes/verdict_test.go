package probes

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// run feeds a pattern of results to a fresh judge: S a pass, L a slow
// (over budget) pass, F a failure. It returns the verdict after each
// result as one letter: U up, G degraded, D down, lowercase when Pending;
// and how many times State changed.
func run(pattern string, rise, fall int) (trace string, flips int, j judge) {
	var b strings.Builder
	for i, c := range pattern {
		r := result{OK: c != 'F', Slow: c == 'L', Reason: "HTTP 503 after 120ms", Time: t0.Add(time.Duration(i) * time.Second)}
		before := j.v.State
		j.observe(r, rise, fall)
		if j.v.State != before {
			flips++
		}
		letter := map[zones.State]string{zones.Up: "U", zones.Degraded: "G", zones.Down: "D"}[j.v.State]
		if j.v.Pending {
			letter = strings.ToLower(letter)
		}
		b.WriteString(letter)
	}
	return b.String(), flips, j
}

func TestJudgeTransitions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pattern    string
		rise, fall int
		want       string // see run
		flips      int
	}{
		{"passes stay up", "SSSS", 5, 3, "UUUU", 0},
		{"fall 3: three failures go down", "FFF", 5, 3, "uuD", 1},
		{"two failures then a pass: no flip", "FFS", 5, 3, "uuU", 0},
		{"rise 5: four passes are not enough, the fifth brings up", "FFFSSSSS", 5, 3, "uuDddddU", 2},
		{"a failure while recovering restarts the count", "FFFSSSSFSSSSS", 5, 3, "uuDddddDddddU", 2},
		{"still down: more failures are not pending", "FFFFFF", 5, 3, "uuDDDD", 1},
		{"fall 1 and rise 1 flip at once, never pending", "FSFS", 1, 1, "DUDU", 4},
		{"slow pass degrades an up target", "SLS", 5, 3, "UGU", 2},
		{"failures while degraded: pending, then down", "LFFF", 5, 3, "GggD", 2},
		{"a slow pass counts toward rise and recovers to degraded", "FFFSSSSL", 5, 3, "uuDddddG", 2},
		{"slow passes while down are successes, not degraded", "FFFLLSL", 5, 3, "uuDdddd", 1},
		{"recovered then within budget: up", "FFFLLLLLS", 5, 3, "uuDddddGU", 3},
		{"degraded with a failure in between stays degraded", "LFL", 5, 3, "GgG", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, flips, _ := run(tc.pattern, tc.rise, tc.fall)
			if got != tc.want || flips != tc.flips {
				t.Errorf("%s: got %s with %d flips, want %s with %d", tc.pattern, got, flips, tc.want, tc.flips)
			}
		})
	}
}

// TestJudgeFlapping: a target that keeps failing now and then, but never
// Fall times in a row (or never passes Rise times in a row while down),
// changes state at most once however long it goes on.
func TestJudgeFlapping(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pattern  string
		maxFlips int
	}{
		{"2 up 1 down from up", strings.Repeat("SSF", 200), 0},
		{"1 up 2 down from up", strings.Repeat("SFF", 200), 0},
		{"2 up 1 down from down", "FFF" + strings.Repeat("SSF", 200), 1},
		{"1 failure in 10", strings.Repeat("SSSSSSSSSF", 50), 0},
		{"4 up 1 down from down", "FFF" + strings.Repeat("SSSSF", 100), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, flips, _ := run(tc.pattern, 5, 3); flips > tc.maxFlips {
				t.Errorf("%d state changes, want at most %d", flips, tc.maxFlips)
			}
		})
	}
}

func TestJudgeReasonsAndTimes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern string
		want    zones.TargetVerdict
	}{
		{"first pass", "S", zones.TargetVerdict{State: zones.Up, Reason: coldReason, Since: t0, Checked: t0}},
		{"pending failure keeps the cold reason", "SF", zones.TargetVerdict{State: zones.Up, Pending: true, Reason: coldReason, Since: t0, Checked: t0.Add(time.Second)}},
		{"down", "SFFF", zones.TargetVerdict{State: zones.Down, Reason: "3 consecutive failures, last: HTTP 503 after 120ms", Since: t0.Add(3 * time.Second), Checked: t0.Add(3 * time.Second)}},
		{"down longer counts on", "FFFFF", zones.TargetVerdict{State: zones.Down, Reason: "5 consecutive failures, last: HTTP 503 after 120ms", Since: t0.Add(2 * time.Second), Checked: t0.Add(4 * time.Second)}},
		{"recovering keeps the down reason", "FFFSS", zones.TargetVerdict{State: zones.Down, Pending: true, Reason: "3 consecutive failures, last: HTTP 503 after 120ms", Since: t0.Add(2 * time.Second), Checked: t0.Add(4 * time.Second)}},
		{"back up", "FFFSSSSS", zones.TargetVerdict{State: zones.Up, Reason: "5 consecutive successes", Since: t0.Add(7 * time.Second), Checked: t0.Add(7 * time.Second)}},
		{"back degraded", "FFFSSSSL", zones.TargetVerdict{State: zones.Degraded, Reason: "5 consecutive successes, last: HTTP 503 after 120ms", Since: t0.Add(7 * time.Second), Checked: t0.Add(7 * time.Second)}},
		{"degraded", "SL", zones.TargetVerdict{State: zones.Degraded, Reason: "HTTP 503 after 120ms", Since: t0.Add(time.Second), Checked: t0.Add(time.Second)}},
		{"within budget again", "SLS", zones.TargetVerdict{State: zones.Up, Reason: "within latency budget: HTTP 503 after 120ms", Since: t0.Add(2 * time.Second), Checked: t0.Add(2 * time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, j := run(tc.pattern, 5, 3); j.v != tc.want {
				t.Errorf("got  %+v\nwant %+v", j.v, tc.want)
			}
		})
	}
}

// TestJudgeChanged: observe reports exactly the results that change State
// or Pending (what OnChange fires on).
func TestJudgeChanged(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    string // 1 where observe reported a change
	}{
		{"SSSS", "0000"},
		{"FSFS", "1111"},
		{"FFFFF", "10100"},
		{"FFFSSSSS", "10110001"},
		{"SLLS", "0101"},
	} {
		var j judge
		var got strings.Builder
		for i, c := range tc.pattern {
			changed := j.observe(result{OK: c != 'F', Slow: c == 'L', Time: t0.Add(time.Duration(i))}, 5, 3)
			got.WriteString(map[bool]string{false: "0", true: "1"}[changed])
		}
		if got.String() != tc.want {
			t.Errorf("%s: changes %s, want %s", tc.pattern, got.String(), tc.want)
		}
	}
}
