package probes

import (
	"context"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// target is a target at addr (host:port) for c, serving one member, with
// an ID shaped like the ones zones gives (without the settings hash).
func target(t *testing.T, addr string, c *zones.Check) zones.Target {
	t.Helper()
	ep, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatalf("parse %q: %v", addr, err)
	}
	return zones.Target{
		ID:       string(c.Kind) + "://" + ep.String(),
		Members:  []zones.MemberKey{{Pool: "pool.example.", Region: "eu"}},
		Endpoint: ep,
		Check:    c,
	}
}

// attempt runs one attempt of c against addr, bounded by c.Timeout, as Run
// would.
func attempt(t *testing.T, addr string, c *zones.Check) outcome {
	t.Helper()
	p := New(Options{}, nil)
	tg := target(t, addr, c)
	ctx, cancel := context.WithTimeout(t.Context(), c.Timeout)
	defer cancel()
	return p.probe(ctx, &tg)
}

// wantOutcome checks an outcome's pass/fail and its reason against a
// pattern (anchored).
func wantOutcome(t *testing.T, got outcome, ok bool, reason string) {
	t.Helper()
	if got.ok != ok || !regexp.MustCompile("^(?:"+reason+")$").MatchString(got.reason) {
		t.Errorf("got ok=%v %q, want ok=%v %q", got.ok, got.reason, ok, reason)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ms matches a latency in a reason.
const ms = `[0-9.]+(?:µs|ms|s)`
