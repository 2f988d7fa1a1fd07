package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// copyDemo copies deploy/demo into a temporary directory, so a test may
// edit the zone file.
func copyDemo(t *testing.T) (cfgPath, zoneFile string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"node.toml", "demo-city.mmdb", "zones/gslb.example.com.toml"} {
		data, err := os.ReadFile(filepath.Join("../deploy/demo", f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "node.toml"), filepath.Join(dir, "zones/gslb.example.com.toml")
}

func startNode(t *testing.T, cfgPath string, mutate func(*Config)) *Node {
	t.Helper()
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DNS.Listen = []string{"127.0.0.1:0"}
	cfg.WatchInterval = Duration{Duration: 0}
	if cfg.Admin.Listen != "" {
		cfg.Admin.Listen = "127.0.0.1:0" // the demo's port belongs to `make run`
	}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return n
}

// TestReloadUnderLoad reloads good and bad files over and over while
// clients query without pause: no query may fail or get a wrong answer,
// and the bad files must never replace the good config.
func TestReloadUnderLoad(t *testing.T) {
	cfgPath, zoneFile := copyDemo(t)
	n := startNode(t, cfgPath, nil)
	addr := n.DNSAddrs()[0].String()
	good, err := os.ReadFile(zoneFile)
	if err != nil {
		t.Fatal(err)
	}
	// The good variants differ in eu-west's address; both are valid answers.
	alt := []byte(strings.Replace(string(good), `"198.51.100.10"`, `"198.51.100.11"`, 1))
	if string(alt) == string(good) {
		t.Fatal("demo zone changed: cannot build the variant")
	}
	bad := [][]byte{
		[]byte("zone = \n"), // syntax
		[]byte(strings.Replace(string(good), `policy = "nearest"`, `policy = "closest"`, 1)),      // semantic
		[]byte(strings.Replace(string(good), `region = "eu-west"`, `region = "ap-southeast"`, 1)), // a policy test fails
	}
	okAnswers := map[string]bool{"198.51.100.10": true, "198.51.100.11": true}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var queries, failures atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &dns.Client{Timeout: 2 * time.Second}
			for ctx.Err() == nil {
				m := new(dns.Msg)
				m.SetQuestion("www.gslb.example.com.", dns.TypeA)
				m.SetEdns0(1232, false)
				o := m.IsEdns0()
				o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}})
				r, _, err := cl.Exchange(m, addr)
				queries.Add(1)
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !okAnswers[r.Answer[0].(*dns.A).A.String()] {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, []any{err, r})
				}
			}
		}()
	}
	const rounds = 30
	for i := 0; i < rounds; i++ {
		content := good
		if i%2 == 1 {
			content = alt
		}
		if err := os.WriteFile(zoneFile, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := n.Reload(); err != nil {
			t.Fatalf("round %d: good reload failed: %v", i, err)
		}
		b := bad[i%len(bad)]
		if err := os.WriteFile(zoneFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		err := n.Reload()
		if err == nil {
			t.Fatalf("round %d: bad file accepted", i)
		}
		if !strings.Contains(err.Error(), "gslb.example.com.toml:") {
			t.Fatalf("round %d: error does not name the file and line: %v", i, err)
		}
	}
	cancel()
	wg.Wait()
	if queries.Load() < rounds {
		t.Fatalf("only %d queries ran", queries.Load())
	}
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d of %d queries failed during reloads; first: %v", f, queries.Load(), firstFailure.Load())
	}
	// The last good config (alt or good) is what serves after all the bad files.
	want := "198.51.100.11"
	if (rounds-1)%2 == 0 {
		want = "198.51.100.10"
	}
	snap := n.Store().Load()
	e := snap.Explain(mustPrefix("198.51.100.0/24"), "www.gslb.example.com.", dns.TypeA)
	if got := e.Result.Answer[0].(*dns.A).A.String(); got != want {
		t.Fatalf("after bad reloads serving %s, want the last good %s", got, want)
	}
	t.Logf("%d queries during %d good and %d bad reloads, none failed", queries.Load(), rounds, rounds)
}

// TestWatchReloadsChangedFiles edits the zone file and waits (with a
// deadline) for the node to notice without SIGHUP.
func TestWatchReloadsChangedFiles(t *testing.T) {
	cfgPath, zoneFile := copyDemo(t)
	n := startNode(t, cfgPath, func(c *Config) { c.WatchInterval = Duration{Duration: 20 * time.Millisecond} })
	good, _ := os.ReadFile(zoneFile)
	edited := strings.Replace(string(good), `"198.51.100.10"`, `"198.51.100.12"`, 1)
	if err := os.WriteFile(zoneFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e := n.Store().Load().Explain(mustPrefix("198.51.100.0/24"), "www.gslb.example.com.", dns.TypeA)
		if len(e.Result.Answer) == 1 && e.Result.Answer[0].(*dns.A).A.String() == "198.51.100.12" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("edit not picked up within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for time
	}
}
