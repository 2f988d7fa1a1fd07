package geo

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports fences geo at level 0 of DESIGN.md: the standard library and
// the MaxMind reader only, and nothing of Meridian. mmdbgen, the test and
// demo tooling beside it, adds mmdbwriter.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list imports with")
	}
	for _, tc := range []struct {
		pkg     string
		allowed []string // module paths direct imports may come from
	}{
		{".", []string{"github.com/oschwald/maxminddb-golang/v2", "github.com/oschwald/geoip2-golang/v2"}},
		{"./mmdbgen", []string{"github.com/maxmind/mmdbwriter"}},
	} {
		out, err := exec.Command(goTool, "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", tc.pkg, err)
		}
		fields := strings.Fields(string(out))
		self, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if std := !strings.Contains(strings.Split(imp, "/")[0], "."); std {
				continue
			}
			ok := false
			for _, a := range tc.allowed {
				ok = ok || imp == a || strings.HasPrefix(imp, a+"/")
			}
			if !ok {
				t.Errorf("%s imports %s; allowed beyond std: %v", self, imp, tc.allowed)
			}
		}
		deps, err := exec.Command(goTool, "list", "-deps", tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkg, err)
		}
		for _, dep := range strings.Fields(string(deps)) {
			if dep != self && strings.HasPrefix(dep, "github.com/meridian-gtm/meridian/") {
				t.Errorf("%s depends on %s: geo is level 0", self, dep)
			}
		}
	}
}
