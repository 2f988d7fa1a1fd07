package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const demo = "../../deploy/demo/node.toml"

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckDemo(t *testing.T) {
	code, out, errOut := runCmd("check", "-config", demo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"ok  gslb.example.com.", "policy tests passed", "GeoIP2-City"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// check must report every error of a bad file with file:line:col, and fail.
func TestCheckBadZone(t *testing.T) {
	dir := t.TempDir()
	zdir := filepath.Join(dir, "zones")
	os.MkdirAll(zdir, 0o755)
	os.WriteFile(filepath.Join(dir, "node.toml"), []byte("zones = \"zones\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n"), 0o644)
	os.WriteFile(filepath.Join(zdir, "bad.toml"), []byte(`zone = "bad.test"
ns = ["ns.example.net."]
[regions.a]
lat = 1
lon = 2
[pools.www]
policy = "nearest"
order = ["a", "b"]
[pools.www.members.a]
addresses = ["192.0.2.1", "bogus"]
`), 0o644)
	code, _, errOut := runCmd("check", "-config", filepath.Join(dir, "node.toml"))
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"bad.toml:8:1:", `"b" is not a member`, "bad.toml:10:1:", `"bogus" is not an IP address`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestExplain(t *testing.T) {
	code, out, errOut := runCmd("explain", "-config", demo, "-client", "198.51.100.0/24", "www.gslb.example.com", "A")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"location:  DE/HE Frankfurt",
		"* 1. eu-west",
		"2. us-east",
		"chosen:    eu-west",
		"198.51.100.10",
		"ecs scope: /24",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, _ := runCmd(); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code, _, _ := runCmd("frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code, _, e := runCmd("explain", "-config", demo, "www.gslb.example.com"); code != 1 || !strings.Contains(e, "usage") {
		t.Errorf("explain without -client: exit %d, %q", code, e)
	}
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "meridian ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// explain -probe checks each endpoint once and shows the verdict and reason.
func TestExplainProbe(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	os.MkdirAll(filepath.Join(dir, "zones"), 0o755)
	os.WriteFile(filepath.Join(dir, "node.toml"), []byte("zones = \"zones\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "zones", "p.toml"), []byte(`zone = "p.test"
ns = ["ns.example.net."]
[regions.a]
lat = 0
lon = 0
[regions.b]
lat = 1
lon = 1
[pools.db]
policy = "failover"
order = ["a", "b"]
[pools.db.check]
type = "tcp"
[pools.db.members.a]
addresses = ["192.0.2.1"]
endpoints = ["`+dead+`"]
[pools.db.members.b]
addresses = ["192.0.2.2"]
endpoints = ["`+live.Addr().String()+`"]
`), 0o644)
	code, out, errOut := runCmd("explain", "-config", filepath.Join(dir, "node.toml"), "-probe", "-client", "192.0.2.9", "db.p.test")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"one probe of each of 2 endpoints", "a ", "down: 0 of 1 endpoints up", "refused", "chosen:    b", "192.0.2.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
