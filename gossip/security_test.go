package gossip

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

// TestWrongKeyOrLabel: a node with the wrong key, the wrong label or no
// encryption at all cannot join, and nothing it sends — joins, broadcasts,
// a hand-made plaintext packet — changes anything on the cluster's nodes.
func TestWrongKeyOrLabel(t *testing.T) {
	t.Parallel()
	log, lines := logged(t)
	nodes := cluster(t, []string{"127.0.0.151", "127.0.0.152"}, func(c *Config) {
		if c.Name == "n1" {
			c.Log = log
		}
	})
	if err := nodes[0].SetOverride(zones.Override{Action: zones.Drain, Region: "eu-west", Who: "alice"}); err != nil {
		t.Fatal(err)
	}
	before := converged(t, nodes, 5*time.Second)
	n1 := nodes[0].Addr().String()
	evil := zones.Override{Action: zones.Pin, Pool: "www.gslb.example.com.", Region: "evil"}
	evilMsg := encodeOverride(&overrideEntry{O: evil, Version: physical(time.Now().Add(time.Second)), Node: "zz"})

	unchanged := func(why string) {
		t.Helper()
		for _, n := range nodes {
			if d := n.Digest(); d != before {
				t.Errorf("%s: %s's digest changed", why, n.Name())
			}
			if o := n.Overrides(); len(o) != 1 || o[0].Region != "eu-west" {
				t.Errorf("%s: %s's overrides are %v", why, n.Name(), o)
			}
			for _, m := range n.Status().Members {
				if m.Name != "n1" && m.Name != "n2" {
					t.Errorf("%s: %s knows member %s", why, n.Name(), m.Name)
				}
			}
		}
	}

	otherKey := []byte("another-key-of-32-bytes-01234567")
	for _, tc := range []struct {
		name, ip string
		edit     func(*Config)
	}{
		{"wrong key", "127.0.0.153", func(c *Config) { c.Keys = [][]byte{otherKey} }},
		{"wrong label", "127.0.0.154", func(c *Config) { c.Label = "another-cluster" }},
		{"no encryption", "127.0.0.155", func(c *Config) { c.Keys, c.Insecure = nil, true }},
	} {
		cfg := testConfig(t, "intruder-"+strings.ReplaceAll(tc.name, " ", "-"), tc.ip)
		cfg.Seeds = []string{n1}
		tc.edit(&cfg)
		in := start(t, cfg)
		if err := in.SetOverride(evil); err != nil {
			t.Fatal(err)
		}
		in.SetLocalVerdicts(map[string]zones.TargetVerdict{"tcp://192.0.2.1:80#x": verdict(zones.Down, "evil")})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if k, err := in.Join(ctx); err == nil {
			t.Errorf("%s: joined (%d contacted)", tc.name, k)
		}
		cancel()
		// Its memberlist also sends the cluster a message the regular way.
		if err := in.ml.SendToAddress(memberlist.Address{Addr: n1, Name: "n1"}, evilMsg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, tc.name+": n1 refused the intruder's traffic (logged an error naming it)", func() bool {
			for _, l := range strings.Split(lines(), "\n") {
				if strings.Contains(l, "level=ERROR") && strings.Contains(l, tc.ip) {
					return true
				}
			}
			return false
		})
		if n := aliveCount(in.Cluster); n != 1 {
			t.Errorf("%s: the intruder sees %d live members", tc.name, n)
		}
		unchanged(tc.name)
	}

	// A hand-made packet: the right label, a user message with an override,
	// but not encrypted.
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.156")}, net.UDPAddrFromAddrPort(nodes[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	label := "meridian-test"
	pkt := append([]byte{244, byte(len(label))}, label...)
	pkt = append(pkt, 8) // memberlist's userMsg
	pkt = append(pkt, evilMsg...)
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n1 refused the plaintext packet", func() bool {
		return strings.Contains(lines(), "Decrypt packet failed") && strings.Contains(lines(), "127.0.0.156")
	})
	unchanged("plaintext packet")
}

// TestNoKeys: a cluster without keys is refused unless insecure mode is
// asked for; bad keys are refused with every other config error at once.
func TestNoKeys(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "k", "127.0.0.157")
	cfg.Keys = nil
	if _, err := New(cfg); !errors.Is(err, ErrNoKeys) {
		t.Errorf("no keys: %v, want ErrNoKeys", err)
	}
	cfg.Keys = [][]byte{[]byte("short")}
	cfg.Profile = "moon"
	cfg.QuorumShare = 1.5
	_, err := New(cfg)
	for _, want := range []string{"keys[0]", "profile", "quorum share"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config error %v does not name %s", err, want)
		}
	}
	cfg.Keys, cfg.Profile, cfg.QuorumShare, cfg.Insecure = nil, "", 0, true
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("insecure: %v", err)
	}
	if err := c.InstallKey(testKey); !errors.Is(err, ErrNoKeyring) {
		t.Errorf("install key without a keyring: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

// TestKeyRotation: install, use, remove — the cluster keeps converging at
// every step, and afterwards only the new key gets in.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, []string{"127.0.0.161", "127.0.0.162"}, nil)
	newKey := []byte("rotated-key-16b!")
	step := 0
	check := func(what string) {
		t.Helper()
		step++
		region := "r" + string(rune('0'+step))
		if err := nodes[step%2].SetOverride(zones.Override{Action: zones.Drain, Region: region}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, what+": the other node has the override", func() bool {
			for _, o := range nodes[(step+1)%2].Overrides() {
				if o.Region == region {
					return true
				}
			}
			return false
		})
	}
	for _, n := range nodes {
		if err := n.InstallKey(newKey); err != nil {
			t.Fatal(err)
		}
	}
	check("after install")
	if err := nodes[0].UseKey(newKey); err != nil {
		t.Fatal(err)
	}
	check("one node uses the new key")
	check("one node uses the new key, other way")
	if err := nodes[1].UseKey(newKey); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.RemoveKey(testKey); err != nil {
			t.Fatal(err)
		}
	}
	check("after remove")
	if err := nodes[0].UseKey(testKey); err == nil {
		t.Error("using a removed key succeeded")
	}

	old := testConfig(t, "old-key", "127.0.0.163")
	old.Seeds = []string{nodes[0].Addr().String()}
	if _, err := start(t, old).Join(context.Background()); err == nil {
		t.Error("a node with the removed key joined")
	}
	fresh := testConfig(t, "new-key", "127.0.0.164")
	fresh.Keys = [][]byte{newKey}
	fresh.Seeds = []string{nodes[0].Addr().String()}
	nn := start(t, fresh)
	if _, err := nn.Join(context.Background()); err != nil {
		t.Fatalf("a node with the new key: %v", err)
	}
	waitFor(t, 5*time.Second, "the new node has every override", func() bool { return len(nn.Overrides()) == step })
}
