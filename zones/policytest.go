package zones

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// RunTests compiles cfg with g and runs the policy tests carried by the
// zone files (see Base.Test).
func RunTests(cfg *Config, g *geo.Table) error {
	b, err := Build(cfg, g)
	if err != nil {
		return err
	}
	return b.Test()
}

// Test runs the policy tests carried by the zone files against the Base
// with every member healthy and no overrides: the tests state the policy,
// not today's weather. Failures name the test's file:line. Widest-scope
// maps are built only for the pools whose tests state a scope; a Store
// given this Base starts from them and builds the rest in the background,
// so a load compiles each map once and the first answer does not wait for
// all of them.
func (b *Base) Test() error {
	if b.tested == nil {
		var names []string
		for _, z := range b.cfg.Zones {
			for _, t := range z.Tests {
				if t.Scope >= 0 {
					names = append(names, t.Name)
				}
			}
		}
		b.testedScopes = newSyncScopes(b.shapesFor(names))
		b.tested = b.apply(AllHealthy, nil, b.testedScopes)
	}
	snap := b.tested
	var c errs
	var r Result
	for _, z := range b.cfg.Zones {
		for _, t := range z.Tests {
			r.Reset()
			r.uncounted = true
			snap.Answer(&r, t.Name, t.Type, t.Client.Addr())
			if msg := t.check(&r); msg != "" {
				c.add(t.Pos, "policy test failed: client %s asking %s %s: %s", t.Client, t.Name, dns.TypeToString[t.Type], msg)
			}
		}
	}
	if len(c.list) > 0 {
		return fmt.Errorf("policy tests: %w", c.err())
	}
	return nil
}

func (t *PolicyTest) check(r *Result) string {
	if t.Rcode >= 0 && r.Rcode != t.Rcode {
		return fmt.Sprintf("got rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[t.Rcode])
	}
	if t.Region != "" && r.Region != t.Region {
		got := r.Region
		if got == "" {
			got = "no region"
		}
		return fmt.Sprintf("got region %s, want %s", got, t.Region)
	}
	if len(t.Answer) > 0 {
		got := AnswerData(r.Answer)
		want := make([]string, len(t.Answer))
		for i, a := range t.Answer {
			want[i] = strings.ToLower(strings.TrimSpace(a))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return fmt.Sprintf("got answer %q, want %q", got, want)
		}
	}
	if t.Scope >= 0 {
		if got, why := scopeOf(t.Client, r.ScopeBits); got != t.Scope {
			return fmt.Sprintf("got ecs scope /%d (%s), want /%d", got, why, t.Scope)
		}
	}
	return ""
}

// AnswerData returns the RDATA of each record in presentation form,
// e.g. "192.0.2.10" or "10 mail.example.com.".
func AnswerData(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String())))
	}
	return out
}
