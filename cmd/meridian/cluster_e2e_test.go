package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/miekg/dns"
)

// TestE2EClusterCLI starts the local cluster of deploy/cluster as `make
// cluster` does (its configs, addresses and demo tokens: the contract) from
// freshly built binaries, then drives it with the CLI binary: a failover
// on node 1 moves every node's answers, status shows who and why, a call
// without a token is refused and audited, clear undoes the failover, and
// explain -live shows the live decision.
func TestE2EClusterCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	bin := t.TempDir()
	goBuild(t, filepath.Join(bin, "meridian"), ".")
	goBuild(t, filepath.Join(bin, "meridian-endpoints"), "../../deploy/cluster/endpoints")

	// A copy of deploy/ keeps the test's state and audit logs out of the
	// repository; the configs' relative paths still hold.
	root := t.TempDir()
	for _, dir := range []string{"cluster", "demo"} {
		copyDir(t, filepath.Join("../../deploy", dir), filepath.Join(root, "deploy", dir))
	}
	os.RemoveAll(filepath.Join(root, "deploy/cluster/state"))
	startProc(t, "endpoints", filepath.Join(bin, "meridian-endpoints"))
	for i := 1; i <= 3; i++ {
		startProc(t, fmt.Sprintf("node%d", i), filepath.Join(bin, "meridian"), "serve", "-config", filepath.Join(root, fmt.Sprintf("deploy/cluster/node%d.toml", i)))
	}
	for i := 1; i <= 3; i++ {
		waitUntil(t, 30*time.Second, func() error {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.2%d:8053/readyz", i))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("node%d /readyz: %s", i, resp.Status)
			}
			return nil
		})
	}
	for i := 1; i <= 3; i++ {
		waitEU(t, i, "198.51.100.10")
	}

	cli := func(token string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "meridian"), args...)
		cmd.Env = append(os.Environ(), "MERIDIAN_ADMIN=127.0.0.21:8053", "MERIDIAN_TOKEN="+token)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String()
	}

	// Without a token: refused (and audited), nothing moves.
	if code, out := cli("", "failover", "-pool", "www.gslb.example.com", "-to", "ap-southeast", "-reason", "test"); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("failover without a token: exit %d:\n%s", code, out)
	}
	if code, out := cli(admin.DemoReadToken, "failover", "-pool", "www.gslb.example.com", "-to", "ap-southeast", "-reason", "test"); code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("failover with the read token: exit %d:\n%s", code, out)
	}

	start := time.Now()
	if code, out := cli(admin.DemoOperateToken, "failover", "-pool", "www.gslb.example.com", "-to", "ap-southeast", "-reason", "us-east maintenance"); code != 0 {
		t.Fatalf("failover: exit %d:\n%s", code, out)
	}
	for i := 1; i <= 3; i++ {
		waitEU(t, i, "203.0.113.10")
	}
	t.Logf("failover call to the last node answering by it: %s", time.Since(start).Round(time.Millisecond))

	code, out := cli(admin.DemoReadToken, "status", "-admin", "127.0.0.23:8053")
	if code != 0 || !strings.Contains(out, "us-east maintenance") || !strings.Contains(out, "demo-operate") || !strings.Contains(out, "node2") {
		t.Fatalf("status on node3: exit %d:\n%s", code, out)
	}
	code, out = cli(admin.DemoReadToken, "explain", "-live", "-client", "198.51.100.7", "www.gslb.example.com")
	if code != 0 || !strings.Contains(out, "ap-southeast") {
		t.Fatalf("explain -live: exit %d:\n%s", code, out)
	}

	if code, out := cli(admin.DemoOperateToken, "clear", "-admin", "127.0.0.22:8053", "-reason", "maintenance over", "pin:www.gslb.example.com."); code != 0 {
		t.Fatalf("clear: exit %d:\n%s", code, out)
	}
	for i := 1; i <= 3; i++ {
		waitEU(t, i, "198.51.100.10")
	}

	// Node 1 audited the refusal and its failover; node 3 the failover it
	// received by gossip.
	audit := func(i int) string {
		data, err := os.ReadFile(filepath.Join(root, fmt.Sprintf("deploy/cluster/state/node%d/audit.jsonl", i)))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	a1, a3 := audit(1), audit(3)
	for _, want := range []string{`"status": 401`, `"status": 403`, `"token_id": "demo-operate"`, `"reason": "us-east maintenance"`} {
		if !strings.Contains(strings.ReplaceAll(a1, `":`, `": `), want) {
			t.Errorf("node1's audit log has no %s:\n%s", want, a1)
		}
	}
	if !strings.Contains(a3, `"override.gossip"`) || !strings.Contains(a3, `"origin":"node1"`) {
		t.Errorf("node3's audit log has no failover received from node1:\n%s", a3)
	}
	var st admin.Status
	code, out = cli(admin.DemoReadToken, "status", "-json")
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Overrides) != 0 || len(st.Members) != 3 {
		t.Fatalf("status -json after clear: exit %d, %v:\n%s", code, err, out)
	}
}

// waitEU waits until node i answers the Frankfurt client with want.
func waitEU(t *testing.T, i int, want string) {
	t.Helper()
	waitUntil(t, 15*time.Second, func() error {
		m := new(dns.Msg)
		m.SetQuestion("www.gslb.example.com.", dns.TypeA)
		m.SetEdns0(1232, false)
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}})
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, fmt.Sprintf("127.0.0.2%d:5353", i))
		if err != nil {
			return err
		}
		if len(r.Answer) != 1 {
			return fmt.Errorf("node%d: %d answers", i, len(r.Answer))
		}
		if got := r.Answer[0].(*dns.A).A.String(); got != want {
			return fmt.Errorf("node%d answers %s, want %s", i, got, want)
		}
		return nil
	})
}

func waitUntil(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goBuild builds pkg as `make static` builds the binary the container image
// carries (no cgo, -trimpath, stripped), so the end-to-end tests run that
// build.
func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// copyDir copies a directory tree of regular files.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
