package admin

import (
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestValidate checks Config.Validate against testdata/validate.golden:
// each case's name and the error it gives ("ok" for none).
func TestValidate(t *testing.T) {
	op := TokenConfig{ID: "ops", Role: RoleOperate, Hash: HashToken("mrd_x")}
	demo := TokenConfig{ID: "demo", Role: RoleOperate, Hash: HashToken(DemoOperateToken)}
	demoRead := TokenConfig{ID: "demo-r", Role: RoleRead, Hash: strings.ToUpper(HashToken(DemoReadToken))}
	tls := func(c Config) Config { c.TLSCert, c.TLSKey = "cert.pem", "key.pem"; return c }
	cases := []struct {
		name string
		cfg  Config
	}{
		{"loopback, demo tokens", Config{Listen: "127.0.0.21:8053", Tokens: []TokenConfig{demo, demoRead}, AuditFile: "a"}},
		{"localhost", Config{Listen: "localhost:8053"}},
		{"ipv6 loopback", Config{Listen: "[::1]:8053"}},
		{"non-loopback without TLS", Config{Listen: "192.0.2.1:8053"}},
		{"every interface without TLS", Config{Listen: ":8053"}},
		{"non-loopback with TLS", tls(Config{Listen: "192.0.2.1:8053", Tokens: []TokenConfig{op}, AuditFile: "a"})},
		{"demo tokens on non-loopback", tls(Config{Listen: "0.0.0.0:8053", Tokens: []TokenConfig{demo, demoRead}, AuditFile: "a"})},
		{"half TLS", Config{Listen: "127.0.0.1:8053", TLSCert: "cert.pem"}},
		{"client CA without TLS", Config{Listen: "127.0.0.1:8053", TLSClientCA: "ca.pem"}},
		{"no listen", Config{}},
		{"bad listen", Config{Listen: "8053"}},
		{"operate without audit file", Config{Listen: "127.0.0.1:8053", Tokens: []TokenConfig{op}}},
		{"bad tokens", Config{Listen: "127.0.0.1:8053", AuditFile: "a", Tokens: []TokenConfig{
			{ID: "", Role: RoleRead, Hash: HashToken("a")},
			{ID: "x", Role: "admin", Hash: HashToken("b")},
			{ID: "x", Role: RoleRead, Hash: "mrd_plaintext"},
			{ID: "y", Role: RoleRead, Hash: HashToken("b")},
			{ID: strings.Repeat("i", 129), Role: RoleRead, Hash: HashToken("c")},
		}}},
		{"negative limits", Config{Listen: "127.0.0.1:8053", MaxBodyBytes: -1, AuditReadLimit: -1, IdleTimeout: -1}},
	}
	var out strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&out, "== %s\n", c.name)
		if err := c.cfg.Validate(); err != nil {
			fmt.Fprintf(&out, "%v\n", err)
		} else {
			fmt.Fprintf(&out, "ok\n")
		}
	}
	golden(t, "validate.golden", out.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Listen: "192.0.2.7:8053"}.withDefaults()
	if strings.Join(c.AllowedHosts, ",") != "localhost,127.0.0.1,::1,192.0.2.7" || c.MaxBodyBytes != 64<<10 || c.ReadHeaderTimeout == 0 {
		t.Errorf("defaults %+v", c)
	}
	if c := (Config{Listen: "0.0.0.0:8053"}).withDefaults(); len(c.AllowedHosts) != 3 {
		t.Errorf("an unspecified listen address is no host name: %q", c.AllowedHosts)
	}
}

func TestTokens(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, TokenPrefix))
	if !strings.HasPrefix(a, "mrd_") || err != nil || len(raw) != 32 || a == b {
		t.Errorf("tokens %q %q: %v", a, b, err)
	}
	// sha256("demo-read"), so docs and configs can hold it.
	if h := HashToken("demo-read"); h != "714a5517b1f9aa99b2ad98ba80c4e3df9a17d7b04e8decd29ae72c34b46fb810" {
		t.Errorf("HashToken(demo-read) = %s", h)
	}
	tt, err := newTokenTable([]TokenConfig{{ID: "a", Role: RoleRead, Hash: HashToken(a)}, {ID: "b", Role: RoleOperate, Hash: strings.ToUpper(HashToken(b))}})
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := tt.lookup(b); !ok || tc.ID != "b" {
		t.Errorf("lookup b: %+v %v", tc, ok)
	}
	if _, ok := tt.lookup(a + "x"); ok {
		t.Errorf("a wrong token matched")
	}
}

func TestOverrideID(t *testing.T) {
	for _, c := range []struct {
		a            Action
		pool, region string
		want         string
	}{
		{ActionPin, "WWW.gslb.example.com", "eu-west", "pin:www.gslb.example.com."},
		{ActionPin, "www.gslb.example.com.", "us-east", "pin:www.gslb.example.com."},
		{ActionDrain, "www.gslb.example.com.", "eu-west", "drain:www.gslb.example.com.:eu-west"},
		{ActionDrain, "*", "eu-west", "drain:*:eu-west"},
		{ActionDrain, "", "eu-west", "drain:*:eu-west"},
	} {
		if got := OverrideID(c.a, c.pool, c.region); got != c.want {
			t.Errorf("OverrideID(%s, %q, %q) = %q, want %q", c.a, c.pool, c.region, got, c.want)
		}
	}
	o := Override{Action: ActionDrain, Pool: AllPools, Region: "eu-west", Who: "ops", Why: "x", ExpiresAt: testTime}
	back := OverrideFrom(o.Zones(), "n1")
	if z := o.Zones(); z.Pool != "" || back.Pool != AllPools || back.ID != "drain:*:eu-west" || back.ExpiresAt != testTime {
		t.Errorf("round trip through zones: %+v → %+v", z, back)
	}
}
