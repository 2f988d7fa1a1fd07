package meridian_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection enforces DESIGN.md's levels: a package may import
// only packages on lower levels, and only the third-party modules its level
// allows. Direct imports suffice: the rule is transitive.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/meridian-gtm/meridian/"
	level := map[string]int{
		"geo": 0, "zones": 1, "dnsserver": 2, "probes": 2, "gossip": 2,
		"admin": 3, "node": 4, "cmd/meridian": 5,
	}
	// Third-party modules each level may use (std is always fine).
	allowed := map[string][]string{
		"geo":       {"github.com/oschwald/"},
		"zones":     {"github.com/miekg/dns", "github.com/BurntSushi/toml", "golang.org/x/"},
		"dnsserver": {"github.com/miekg/dns", "github.com/prometheus/", "golang.org/x/", "github.com/dchest/siphash"},
		"gossip":    {"github.com/hashicorp/memberlist", "github.com/prometheus/"},
		"admin":     {"github.com/miekg/dns", "github.com/prometheus/"},
	}
	for pkg, lvl := range level {
		out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "./"+pkg).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "no Go files") || strings.Contains(string(out), "cannot find") || strings.Contains(string(out), "directory not found") || strings.Contains(string(out), "matched no packages") {
				continue // not written yet
			}
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+pkg {
				continue
			}
			if rest, ok := strings.CutPrefix(dep, mod); ok {
				base := rest
				if i := strings.Index(rest, "/"); i >= 0 && !strings.HasPrefix(rest, "cmd/") {
					base = rest[:i]
				}
				if l, ok := level[base]; ok && l >= lvl && base != pkg {
					t.Errorf("%s (level %d) imports %s (level %d)", pkg, lvl, dep, l)
				}
				continue
			}
			if !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") {
				continue // standard library
			}
			if prefixes, ok := allowed[pkg]; ok {
				okDep := false
				for _, p := range prefixes {
					if strings.HasPrefix(dep, p) {
						okDep = true
					}
				}
				if !okDep {
					t.Errorf("%s imports %s, which its level does not allow", pkg, dep)
				}
			}
		}
	}
}
