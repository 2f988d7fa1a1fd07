package probes

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports fences probes at level 2 of DESIGN.md: beyond the standard
// library it imports zones, geo, miekg/dns and prometheus, and nothing of
// Meridian on its own level or above.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list imports with")
	}
	allowed := []string{
		"github.com/meridian-gtm/meridian/zones",
		"github.com/meridian-gtm/meridian/geo",
		"github.com/miekg/dns",
		"github.com/prometheus/client_golang/prometheus",
	}
	out, err := exec.Command(goTool, "list", "-f", `{{range .Imports}}{{.}} {{end}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if std := !strings.Contains(strings.Split(imp, "/")[0], "."); std {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || imp == a || strings.HasPrefix(imp, a+"/")
		}
		if !ok {
			t.Errorf("probes imports %s; allowed beyond std: %v", imp, allowed)
		}
	}
	deps, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(deps)) {
		for _, banned := range []string{"dnsserver", "gossip", "admin", "node", "cmd"} {
			if strings.HasPrefix(dep, "github.com/meridian-gtm/meridian/"+banned) {
				t.Errorf("probes depends on %s, which is on its level or above", dep)
			}
		}
	}
}
