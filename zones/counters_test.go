package zones

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// Served answers are counted per zone and per pool member; explain and
// the policy tests are not; a reload keeps the counts of what remains.
func TestAnswerCounts(t *testing.T) {
	g := demoGeo(t)
	cfg := &Config{Zones: []*Zone{demoZone(t)}}
	st, err := NewStore(cfg, g)
	if err != nil {
		t.Fatal(err)
	}
	const www = "www.gslb.example.com."
	ask := func(n int, client string) {
		var r Result
		for range n {
			r.Reset()
			st.Load().Answer(&r, www, dns.TypeA, netip.MustParseAddr(client))
		}
	}
	counts := func() (map[string]uint64, map[[2]string]uint64) {
		zs, as := map[string]uint64{}, map[[2]string]uint64{}
		st.Load().AnswerCounts(func(z string, n uint64) { zs[z] = n }, func(p, r string, n uint64) { as[[2]string{p, r}] = n })
		return zs, as
	}
	zs, as := counts()
	if zs["gslb.example.com."] != 0 || as[[2]string{www, "eu-west"}] != 0 {
		t.Fatalf("counts before any query (the policy tests ran): %v %v", zs, as)
	}
	ask(3, "198.51.100.7") // Frankfurt
	ask(2, "192.0.2.7")    // Ashburn
	st.Load().Explain(netip.MustParsePrefix("198.51.100.0/24"), www, dns.TypeA)
	zs, as = counts()
	if zs["gslb.example.com."] != 5 || as[[2]string{www, "eu-west"}] != 3 || as[[2]string{www, "us-east"}] != 2 || as[[2]string{www, "ap-southeast"}] != 0 {
		t.Fatalf("after 3 EU and 2 US queries and an explain: zones %v answers %v", zs, as)
	}
	if _, ok := as[[2]string{"api.gslb.example.com.", "us-east"}]; !ok {
		t.Errorf("members that never answered are not listed: %v", as)
	}
	b, err := Build(&Config{Zones: []*Zone{demoZone(t)}}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetBase(b, nil); err != nil {
		t.Fatal(err)
	}
	ask(1, "198.51.100.7")
	zs, as = counts()
	if zs["gslb.example.com."] != 6 || as[[2]string{www, "eu-west"}] != 4 {
		t.Fatalf("after a reload and one more query: zones %v answers %v", zs, as)
	}
}
