package zones

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Targets lists the probe targets of every pool, sorted by ID: one per
// endpoint and check, however many pool members probe that endpoint with
// that check, each listing the members it serves.
func (c *Config) Targets() []Target {
	ids := targetIDs{}
	at := map[string]int{} // target ID → index in out
	var out []Target
	for _, z := range c.Zones {
		for _, p := range z.Pools {
			for _, m := range p.Members {
				if m.Check == nil {
					continue
				}
				k := MemberKey{Pool: p.Owner, Region: m.Region}
				for i, ep := range m.Endpoints {
					id := m.targetID(i, ids)
					if i, ok := at[id]; ok {
						out[i].Members = append(out[i].Members, k)
						if out[i].Observers > 0 && (p.Observers == 0 || p.Observers > out[i].Observers) {
							out[i].Observers = p.Observers
						}
						continue
					}
					at[id] = len(out)
					out = append(out, Target{
						ID:        id,
						Members:   []MemberKey{k},
						Endpoint:  ep.Addr,
						Path:      probePath(m.Check, ep),
						Check:     m.Check,
						Observers: p.Observers,
					})
				}
			}
		}
	}
	for i := range out {
		// A member that lists one endpoint twice is served once.
		slices.SortFunc(out[i].Members, compareMembers)
		out[i].Members = slices.Compact(out[i].Members)
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func compareMembers(a, b MemberKey) int {
	return cmp.Or(strings.Compare(a.Pool, b.Pool), strings.Compare(a.Region, b.Region))
}

// probePath is the HTTP(S) path a probe of ep with c requests: the URL
// endpoint's own path, else the check's. Other kinds send no path.
func probePath(c *Check, ep Endpoint) string {
	if c.Kind != CheckHTTP && c.Kind != CheckHTTPS {
		return ""
	}
	if ep.Path != "" {
		return ep.Path
	}
	return c.Path
}

// targetID names the target that probes ep with c:
//
//	kind://address:port/path#settings
//
// e.g. "https://10.0.0.5:8443/v1/completions#3f9a1c2e07b4" or
// "tcp://10.0.0.7:9000#5be0f1a2c3d4". The readable part says where a probe
// goes (the path only for http and https: a URL endpoint's own, else the
// check's); settings is a hash of every other setting that changes what is
// sent, how the reply is judged or when the verdict flips (checkSettings).
// The pool and region are deliberately not in it: every member that probes
// one endpoint with an equal check shares the target, its probes and its
// verdict.
//
// The trade-off: editing any of those settings (even only rise, fall or
// the interval) renames the target, so after that reload it starts fresh,
// unjudged and so up (cold start), and is probed again within the first
// second; a Down endpoint is then taken out again after Fall probes. Keeping
// the old verdict instead would need IDs without the settings, and then
// two pools that probe one endpoint with different fall or expectations
// could not have separate verdicts. Reloads that leave a check alone (the
// common case: another pool, a TTL, an address) keep every verdict. Finer
// sharing (one probe stream for checks that differ only in rise or fall,
// judged separately) would save little, since pools on one endpoint
// usually copy one check, for a second layer of bookkeeping.
func targetID(c *Check, ep Endpoint, settings string) string {
	return string(c.Kind) + "://" + ep.Addr.String() + probePath(c, ep) + "#" + settings
}

// targetIDs memoizes the settings hash per check for one pass over a
// config: the members of a pool without checks of their own share the
// pool's *Check, and hashing once per check keeps FoldHealth cheap at
// thousands of endpoints. It is a local of one call, never shared.
type targetIDs map[*Check]string

func (m targetIDs) of(c *Check, ep Endpoint) string {
	h, ok := m[c]
	if !ok {
		sum := sha256.Sum256([]byte(checkSettings(c)))
		// 48 bits: only checks of one kind on one endpoint and path could
		// collide, and there are a handful of those, not millions.
		h = hex.EncodeToString(sum[:6])
		m[c] = h
	}
	return targetID(c, ep, h)
}

// checkSettings is the canonical text of c's settings other than its kind
// and path (which the target ID spells out): one "key=value" line each,
// strings quoted, headers and expected statuses sorted, only the keys that
// apply to c.Kind (the path of a tcp check, say, is never sent, so it does
// not split a target). Its first line versions the encoding: changing the
// encoding renames every target once, and verdicts start cold after that
// upgrade.
func checkSettings(c *Check) string {
	var b strings.Builder
	b.WriteString("v1\n")
	num := func(k string, n int64) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(n, 10))
		b.WriteByte('\n')
	}
	str := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
		b.WriteByte('\n')
	}
	num("interval", int64(c.Interval))
	num("timeout", int64(c.Timeout))
	num("rise", int64(c.Rise))
	num("fall", int64(c.Fall))
	num("latency_budget", int64(c.LatencyBudget))
	switch c.Kind {
	case CheckHTTP, CheckHTTPS:
		str("method", c.Method)
		str("host", c.Host)
		// Header names as written: two spellings of one name only cost a
		// second target, never a wrong verdict.
		for _, k := range slices.Sorted(maps.Keys(c.Headers)) {
			str("header", k)
			str("value", c.Headers[k])
		}
		str("body", c.Body)
		for _, s := range slices.Sorted(slices.Values(c.ExpectStatus)) {
			num("expect_status", int64(s))
		}
		str("expect_body", c.ExpectBody)
		if c.ExpectRegexp != nil {
			str("expect_regexp", c.ExpectRegexp.String())
		}
		if c.Kind == CheckHTTPS {
			str("tls_server_name", c.TLSServerName)
			str("tls_ca", c.TLSCAFile)
			str("tls_skip_verify", strconv.FormatBool(c.TLSSkipVerify))
		}
	case CheckDNS:
		str("dns_name", c.DNSName)
		num("dns_type", int64(c.DNSType))
		num("dns_rcode", int64(c.DNSRcode))
		str("dns_answer", c.DNSAnswer)
	}
	return b.String()
}
