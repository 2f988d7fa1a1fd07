package meridian_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The monitoring files under deploy/: alert rules with their promtool unit
// tests, an example Prometheus config, and a Grafana dashboard.
const (
	alertsFile     = "deploy/prometheus/meridian-alerts.yml"
	alertTestsFile = "deploy/prometheus/meridian-alerts.test.yml"
	promConfigFile = "deploy/prometheus/prometheus.yml"
	dashboardFile  = "deploy/grafana/meridian.json"
)

// requirePromtool returns promtool's path. It skips the test when promtool is
// not installed, unless MERIDIAN_REQUIRE_TOOLS is set (CI): then that fails.
func requirePromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if _, set := os.LookupEnv("MERIDIAN_REQUIRE_TOOLS"); set {
			t.Fatalf("promtool is required (MERIDIAN_REQUIRE_TOOLS is set): %v", err)
		}
		t.Skipf("promtool not installed (apt-get install prometheus): %v", err)
	}
	return path
}

// TestMonitoringPromtool checks the rules and the example config, and runs
// the rules' unit tests, which assert every alert's labels and annotations.
func TestMonitoringPromtool(t *testing.T) {
	promtool := requirePromtool(t)
	for _, args := range [][]string{
		{"check", "rules", alertsFile},
		{"test", "rules", alertTestsFile},
		{"check", "config", promConfigFile},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			out, err := exec.Command(promtool, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestMonitoringAlertsTested requires a promtool test for every alert, and a
// severity label and summary and description annotations on each.
func TestMonitoringAlertsTested(t *testing.T) {
	rules := readFile(t, alertsFile)
	tests := readFile(t, alertTestsFile)
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\S+)$`).FindAllStringSubmatch(rules, -1)
	if len(alerts) == 0 {
		t.Fatalf("%s: no alerts", alertsFile)
	}
	// Each rule's text runs from its "- alert:" line to the next one.
	blocks := regexp.MustCompile(`(?m)^\s*- alert: `).Split(rules, -1)[1:]
	for i, a := range alerts {
		name, block := a[1], blocks[i]
		for _, want := range []string{"severity: ", "summary: ", "description: "} {
			if !strings.Contains(block, want) {
				t.Errorf("alert %s has no %q", name, strings.TrimSpace(want))
			}
		}
		if !regexp.MustCompile(`(?m)^\s*alertname: ` + name + `$`).MatchString(tests) {
			t.Errorf("alert %s has no test in %s", name, alertTestsFile)
		}
	}
}

// TestMonitoringMetricNames requires every meridian_ metric the alert rules
// and the dashboard use to be exported by the code, so that renaming a metric
// breaks this test rather than an alert or a panel in silence. A histogram's
// _bucket, _sum and _count series count as the histogram.
func TestMonitoringMetricNames(t *testing.T) {
	exported := exportedMetrics(t)
	if len(exported) == 0 {
		t.Fatal("no meridian_ metric names found in the Go source")
	}
	used := regexp.MustCompile(`\bmeridian_[a-z0-9_]+`)
	for _, file := range []string{alertsFile, dashboardFile} {
		names := used.FindAllString(readFile(t, file), -1)
		if len(names) == 0 {
			t.Errorf("%s: no meridian_ metrics", file)
		}
		for _, name := range names {
			if !exported[name] && !exported[histogramBase(name)] {
				t.Errorf("%s uses %s, which no Go file exports", file, name)
			}
		}
	}
}

// exportedMetrics returns the quoted meridian_ names in the module's non-test
// Go files: the names given to metric options and descriptors. deploy/ is left
// out: its programs read metrics (deploy/scale waits on some), they do not
// export them.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	quoted := regexp.MustCompile(`"(meridian_[a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || path == "deploy") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan Go files: %v", err)
	}
	return names
}

// histogramBase strips a histogram's or summary's series suffix.
func histogramBase(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                       `json:"id"`
	Type       string                    `json:"type"`
	Title      string                    `json:"title"`
	Datasource *dataSourceRef            `json:"datasource"`
	GridPos    *struct{ X, Y, W, H int } `json:"gridPos"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *dataSourceRef `json:"datasource"`
	} `json:"targets"`
}

type dataSourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboardDataSource is what every panel and query names: the dashboard's
// data source variable, so the dashboard imports into any Grafana.
var dashboardDataSource = dataSourceRef{Type: "prometheus", UID: "${DS_PROMETHEUS}"}

// TestMonitoringDashboard checks what keeps the dashboard importable: valid
// JSON, unique panel ids, a place on the grid without overlaps, and on every
// panel the data source variable and queries with ref ids.
func TestMonitoringDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.SchemaVersion < 39 || d.UID == "" {
		t.Errorf("schemaVersion %d, uid %q: want 39 or later and a uid", d.SchemaVersion, d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"DS_PROMETHEUS": "datasource", "instance": "query", "pool": "query"} {
		if vars[name] != typ {
			t.Errorf("variable %s: type %q, want %q", name, vars[name], typ)
		}
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]string{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if other, ok := ids[p.ID]; ok || p.ID == 0 {
			t.Errorf("panel %q: id %d is zero or also panel %q's", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		if p.Title == "" || p.Type == "" {
			t.Errorf("panel %d: title %q, type %q", p.ID, p.Title, p.Type)
		}
		if p.Datasource == nil || *p.Datasource != dashboardDataSource {
			t.Errorf("panel %q: datasource %v, want %v", p.Title, p.Datasource, dashboardDataSource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: query %q has no expression or a missing or repeated refId %q", p.Title, q.Expr, q.RefID)
			}
			refs[q.RefID] = true
			if q.Datasource == nil || *q.Datasource != dashboardDataSource {
				t.Errorf("panel %q query %s: datasource %v, want %v", p.Title, q.RefID, q.Datasource, dashboardDataSource)
			}
		}
		g := p.GridPos
		if g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is missing or off the 24-column grid", p.Title, g)
			continue
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps panel %q at x=%d y=%d", p.Title, other, x, y)
					break
				}
				taken[cell{x, y}] = p.Title
			}
		}
	}
}

// TestMonitoringDashboardQueries parses every dashboard query with promtool,
// as recording rules, once Grafana's variables are given values.
func TestMonitoringDashboardQueries(t *testing.T) {
	promtool := requirePromtool(t)
	var d dashboard
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*", "$pool", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			// A JSON string is a valid YAML double-quoted scalar.
			expr, err := json.Marshal(vars.Replace(q.Expr))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&rules, "      - record: dashboard:panel_%d_%s\n        expr: %s\n", p.ID, q.RefID, expr)
		}
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (dashboard queries): %v\n%s\n%s", err, out, rules.String())
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
