package meridian_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-gtm/meridian/node"
	"go.yaml.in/yaml/v3"
)

// The packaging under deploy/: a systemd unit, a container image, a compose
// demo and Kubernetes manifests. These tests keep them honest without a
// container engine or a cluster: every YAML file parses, every Meridian
// config they carry loads (node.LoadConfig, then node.Load with the zones
// and GeoIP database as they would be mounted), the unit has the hardening
// it promises, and the image copies the binary `make static` builds.
const (
	systemdUnitFile = "deploy/systemd/meridian.service"
	sysusersFile    = "deploy/systemd/meridian.sysusers.conf"
	containerFile   = "deploy/container/Containerfile"
	composeFile     = "deploy/compose/compose.yaml"
	k8sDir          = "deploy/k8s"
	demoGeoIP       = "deploy/demo/demo-city.mmdb"
)

// TestPackagingYAMLWellFormed parses every YAML file under deploy/, every
// document of multi-document files, and requires apiVersion, kind and
// metadata.name of every Kubernetes manifest.
func TestPackagingYAMLWellFormed(t *testing.T) {
	var files []string
	err := filepath.WalkDir("deploy", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{composeFile, k8sDir + "/statefulset.yaml"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is missing", want)
		}
	}
	for _, f := range files {
		docs := yamlDocs(t, f)
		if !strings.HasPrefix(f, k8sDir+"/") {
			continue
		}
		if len(docs) == 0 {
			t.Errorf("%s: no manifest", f)
		}
		for i, d := range docs {
			name, _ := dig(d, "metadata", "name").(string)
			if s, _ := d["apiVersion"].(string); s == "" {
				t.Errorf("%s: document %d has no apiVersion", f, i+1)
			}
			if s, _ := d["kind"].(string); s == "" {
				t.Errorf("%s: document %d has no kind", f, i+1)
			}
			if name == "" {
				t.Errorf("%s: document %d has no metadata.name", f, i+1)
			}
		}
	}
}

// TestPackagingK8sNodeConfig rebuilds the meridian container's file system
// from the StatefulSet's volume mounts (ConfigMaps as files, Secrets with
// test values in place of the placeholders, the state volume with the demo
// GeoIP database where geoipupdate would put the real one) and loads the
// node config its args name.
func TestPackagingK8sNodeConfig(t *testing.T) {
	objs := map[string]map[string]any{} // "Kind/name"
	for _, f := range mustGlob(t, k8sDir+"/*.yaml") {
		for _, d := range yamlDocs(t, f) {
			objs[fmt.Sprint(d["kind"], "/", dig(d, "metadata", "name"))] = d
		}
	}
	sts := objs["StatefulSet/meridian"]
	if sts == nil {
		t.Fatal("no StatefulSet meridian")
	}
	spec := dig(sts, "spec", "template", "spec").(map[string]any)
	volumes := map[string]map[string]any{}
	for _, v := range asList(spec["volumes"]) {
		volumes[v["name"].(string)] = v
	}
	for _, c := range asList(dig(sts, "spec", "volumeClaimTemplates")) {
		volumes[dig(c, "metadata", "name").(string)] = map[string]any{"persistentVolumeClaim": true}
	}
	var ctr map[string]any
	for _, c := range asList(spec["containers"]) {
		if c["name"] == "meridian" {
			ctr = c
		}
	}
	if ctr == nil {
		t.Fatal("no container meridian in the StatefulSet")
	}
	args := asStrings(ctr["args"])
	i := slices.Index(args, "-config")
	if len(args) == 0 || args[0] != "serve" || i < 0 || i+1 >= len(args) {
		t.Fatalf("meridian container args %q: want serve -config FILE", args)
	}
	root := t.TempDir()
	var state string
	for _, m := range asList(ctr["volumeMounts"]) {
		name, path := m["name"].(string), m["mountPath"].(string)
		dir := filepath.Join(root, path)
		mustMkdir(t, dir)
		v := volumes[name]
		switch {
		case v == nil:
			t.Fatalf("volume mount %s: no volume %q", path, name)
		case v["configMap"] != nil:
			cm := objs["ConfigMap/"+dig(v, "configMap", "name").(string)]
			if cm == nil {
				t.Fatalf("volume %s: no ConfigMap %v", name, dig(v, "configMap", "name"))
			}
			for k, val := range cm["data"].(map[string]any) {
				mustWrite(t, filepath.Join(dir, k), val.(string))
			}
		case v["secret"] != nil:
			sn := dig(v, "secret", "secretName").(string)
			keys := []string{"tls.crt", "tls.key"} // created by kubectl create secret tls
			if s := objs["Secret/"+sn]; s != nil {
				keys = nil
				for k := range s["stringData"].(map[string]any) {
					keys = append(keys, k)
				}
			}
			for _, k := range keys {
				mustWrite(t, filepath.Join(dir, k), testSecret(t, k))
			}
		case v["persistentVolumeClaim"] != nil || v["emptyDir"] != nil:
			state = path
		default:
			t.Fatalf("volume %s: a kind this test does not know", name)
		}
	}
	loadNodeConfig(t, root, args[i+1], func(geoip string) {
		if state == "" || !strings.HasPrefix(geoip, filepath.Join(root, state)+"/") {
			t.Errorf("geoip %s is not on a writable volume, where geoipupdate puts it", geoip)
		}
		copyFile(t, demoGeoIP, geoip) // what geoipupdate would download
	})
}

// TestPackagingComposeNodeConfigs loads each node's config with the files
// compose.yaml mounts into its container, and checks that the node
// listens and gossips on the address compose gives it.
func TestPackagingComposeNodeConfigs(t *testing.T) {
	doc := yamlDocs(t, composeFile)[0]
	used := map[string]bool{}
	nodes := 0
	for name, s := range doc["services"].(map[string]any) {
		svc := s.(map[string]any)
		var mounts []string
		vols, _ := svc["volumes"].([]any)
		for _, v := range vols {
			mounts = append(mounts, v.(string))
		}
		if !slices.ContainsFunc(mounts, func(m string) bool { return strings.Contains(m, ":/etc/meridian/node.toml") }) {
			continue
		}
		nodes++
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			for _, m := range mounts {
				parts := strings.Split(m, ":")
				src, dst := parts[0], filepath.Join(root, parts[1])
				if !strings.HasPrefix(src, ".") { // a named volume
					mustMkdir(t, dst)
					continue
				}
				src = filepath.Join(filepath.Dir(composeFile), src)
				used[filepath.Clean(src)] = true
				copyTree(t, src, dst)
			}
			ip, _ := dig(svc, "networks", "meridian", "ipv4_address").(string)
			cfg := loadNodeConfig(t, root, "/etc/meridian/node.toml", nil)
			if ip == "" {
				t.Fatalf("service %s has no fixed ipv4_address", name)
			}
			if got := cfg.Cluster.Listen; !strings.HasPrefix(got, ip+":") {
				t.Errorf("cluster.listen %s, but the container's address is %s", got, ip)
			}
			for _, l := range cfg.DNS.Listen {
				if !strings.HasPrefix(l, ip+":") && !strings.HasPrefix(l, "0.0.0.0:") {
					t.Errorf("dns.listen %s, but the container's address is %s", l, ip)
				}
			}
		})
	}
	if nodes != 3 {
		t.Errorf("%d meridian services in %s, want 3", nodes, composeFile)
	}
	for _, f := range mustGlob(t, "deploy/compose/node*.toml") {
		if !used[filepath.Clean(f)] {
			t.Errorf("%s is mounted by no service", f)
		}
	}
}

// TestPackagingSystemdUnit checks the unit's commands and hardening, and
// that the user it runs as is the one the sysusers.d snippet creates.
func TestPackagingSystemdUnit(t *testing.T) {
	unit := parseUnit(t, systemdUnitFile)
	want := map[string]string{
		"Service.User":                   "meridian",
		"Service.Group":                  "meridian",
		"Service.ExecStart":              "/usr/bin/meridian serve -config /etc/meridian/node.toml",
		"Service.AmbientCapabilities":    "CAP_NET_BIND_SERVICE",
		"Service.CapabilityBoundingSet":  "CAP_NET_BIND_SERVICE",
		"Service.NoNewPrivileges":        "yes",
		"Service.ProtectSystem":          "strict",
		"Service.ProtectHome":            "yes",
		"Service.PrivateTmp":             "yes",
		"Service.PrivateDevices":         "yes",
		"Service.StateDirectory":         "meridian",
		"Service.ConfigurationDirectory": "meridian",
		"Service.Restart":                "on-failure",
		"Service.SystemCallFilter":       "@system-service",
		"Install.WantedBy":               "multi-user.target",
	}
	for k, v := range want {
		if got := unit[k]; !slices.Contains(got, v) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups"} {
		if !slices.Contains(unit["Service."+k], "yes") {
			t.Errorf("Service.%s is not yes", k)
		}
	}
	if !slices.Contains(unit["Service.ExecStartPre"], "/usr/bin/meridian check -config /etc/meridian/node.toml") {
		t.Errorf("ExecStartPre %q does not check the config", unit["Service.ExecStartPre"])
	}
	if !slices.ContainsFunc(unit["Service.ExecReload"], func(s string) bool { return strings.Contains(s, "kill -HUP $MAINPID") }) {
		t.Errorf("ExecReload %q does not send SIGHUP to $MAINPID (meridian reloads on SIGHUP)", unit["Service.ExecReload"])
	}
	if fams := strings.Fields(strings.Join(unit["Service.RestrictAddressFamilies"], " ")); !slices.Contains(fams, "AF_INET") || !slices.Contains(fams, "AF_INET6") {
		t.Errorf("RestrictAddressFamilies %q: want AF_INET and AF_INET6", fams)
	}
	if len(unit["Service.LimitNOFILE"]) == 0 {
		t.Error("no LimitNOFILE")
	}
	users := regexp.MustCompile(`(?m)^u\s+(\S+)\s`).FindAllStringSubmatch(readFile(t, sysusersFile), -1)
	if len(users) != 1 || users[0][1] != "meridian" {
		t.Errorf("%s declares %v, want the user meridian", sysusersFile, users)
	}
}

// TestPackagingContainerfileMatchesMakefile requires the image to copy the
// binary `make static` writes, and `make image` to build this Containerfile
// after `static`.
func TestPackagingContainerfileMatchesMakefile(t *testing.T) {
	mk := readFile(t, "Makefile")
	static := makeRecipe(t, mk, "static")
	if !strings.Contains(static, "CGO_ENABLED=0") {
		t.Errorf("make static does not set CGO_ENABLED=0:\n%s", static)
	}
	out := regexp.MustCompile(`\s-o\s+(\S+)`).FindStringSubmatch(static)
	if out == nil {
		t.Fatalf("make static names no -o output:\n%s", static)
	}
	image := makeRecipe(t, mk, "image")
	if !regexp.MustCompile(`(?m)^image:\s*static\b`).MatchString(mk) {
		t.Error("make image does not depend on static")
	}
	if !strings.Contains(image, "-f "+containerFile) {
		t.Errorf("make image does not build %s:\n%s", containerFile, image)
	}
	phony := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindStringSubmatch(mk)
	if phony == nil || !slices.Contains(strings.Fields(phony[1]), "static") || !slices.Contains(strings.Fields(phony[1]), "image") {
		t.Error(".PHONY does not list static and image")
	}

	cf := readFile(t, containerFile)
	if !regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static-debian12:nonroot$`).MatchString(cf) {
		t.Error("the image is not FROM gcr.io/distroless/static-debian12:nonroot")
	}
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(cf, -1)); n != 1 {
		t.Errorf("%d FROM lines: the image must be one stage that copies the tested binary", n)
	}
	entry := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]$`).FindStringSubmatch(cf)
	if entry == nil {
		t.Fatal("no exec-form ENTRYPOINT")
	}
	var src string
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--\S+ )*(\S+) (\S+)$`).FindAllStringSubmatch(cf, -1) {
		if m[2] == entry[1] {
			src = m[1]
		}
		if _, err := os.Stat(m[1]); err != nil && m[1] != out[1] {
			t.Errorf("COPY %s: %v", m[1], err)
		}
	}
	if src != out[1] {
		t.Errorf("the Containerfile copies %q to the entrypoint %s; make static builds %q", src, entry[1], out[1])
	}
	if !regexp.MustCompile(`(?m)^USER (65532|nonroot)`).MatchString(cf) {
		t.Error("the image does not run as nonroot (65532)")
	}
	expose := regexp.MustCompile(`(?m)^EXPOSE (.*)$`).FindStringSubmatch(cf)
	for _, p := range []string{"53/udp", "53/tcp", "7946/udp", "7946/tcp", "8053/tcp"} {
		if expose == nil || !slices.Contains(strings.Fields(expose[1]), p) {
			t.Errorf("the image does not EXPOSE %s", p)
		}
	}
	if !strings.Contains(cf, `CMD ["serve", "-config", "/etc/meridian/node.toml"]`) {
		t.Error(`CMD is not ["serve", "-config", "/etc/meridian/node.toml"]`)
	}
	ignore := readFile(t, containerFile+".dockerignore")
	if !strings.Contains(ignore, "!"+out[1]) {
		t.Errorf("%s.dockerignore leaves %s out of the build context", containerFile, out[1])
	}
}

// TestPackagingDocsLinks requires every relative link of the operator
// documents to name a file that exists.
func TestPackagingDocsLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for _, f := range []string{"docs/delegation.md", "docs/operations.md", "deploy/k8s/README.md", "deploy/compose/README.md"} {
		for _, m := range link.FindAllStringSubmatch(readFile(t, f), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
				t.Errorf("%s links to %s: %v", f, target, err)
			}
		}
	}
	readme := readFile(t, "README.md")
	for _, d := range []string{"docs/delegation.md", "docs/operations.md"} {
		if !strings.Contains(readme, "("+d+")") {
			t.Errorf("README.md does not link %s", d)
		}
	}
}

// loadNodeConfig loads the Meridian config at path inside a container
// whose file system is rebuilt under root: absolute paths in the config
// are moved under root. place, when set, is given the GeoIP path to create.
func loadNodeConfig(t *testing.T, root, path string, place func(geoip string)) node.Config {
	t.Helper()
	file := filepath.Join(root, path)
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	abs := regexp.MustCompile(`"(/[^"]*)"`)
	moved := abs.ReplaceAll(text, []byte(`"`+root+`$1"`))
	mustWrite(t, file, string(moved))
	cfg, err := node.LoadConfig(file)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if place != nil && cfg.GeoIP != "" {
		mustMkdir(t, filepath.Dir(cfg.GeoIP))
		place(cfg.GeoIP)
	}
	if cfg.Cluster.KeyFile != "" {
		if _, err := os.Stat(cfg.Cluster.KeyFile); err != nil {
			t.Errorf("cluster.key_file: %v", err)
		}
	}
	if cfg.Cluster.StateDir != "" {
		if st, err := os.Stat(cfg.Cluster.StateDir); err != nil || !st.IsDir() {
			t.Errorf("cluster.state_dir %s is not a mounted directory: %v", cfg.Cluster.StateDir, err)
		}
	}
	if _, err := node.Load(cfg); err != nil {
		t.Fatalf("%s: load zones and GeoIP: %v", path, err)
	}
	return cfg
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, file))))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", file, len(docs)+1, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// dig walks nested maps by key; nil when a step is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asList(v any) []map[string]any {
	var out []map[string]any
	l, _ := v.([]any)
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func asStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// testSecret stands in for a Secret's placeholder: a value of the shape
// Meridian reads from that file.
func testSecret(t *testing.T, key string) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	switch key {
	case "gossip.key":
		return base64.StdEncoding.EncodeToString(b) + "\n"
	case "cookie.secret":
		return hex.EncodeToString(b[:16]) + "\n"
	default:
		return "test\n"
	}
}

// parseUnit reads a systemd unit as "Section.Key" → values in order
// (a key may repeat, e.g. ExecReload).
func parseUnit(t *testing.T, file string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, file)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", file, n, line)
			}
			key := section + "." + strings.TrimSpace(k)
			out[key] = append(out[key], strings.TrimSpace(v))
		}
	}
	return out
}

// makeRecipe returns a Makefile target's recipe lines.
func makeRecipe(t *testing.T, mk, target string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:[^\n]*\n((?:\t[^\n]*\n)+)`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatalf("the Makefile has no target %q with a recipe", target)
	}
	return m[1]
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no files (%v)", pattern, err)
	}
	return files
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, file, data string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(file))
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, dst, string(data))
}

// copyTree copies a file, or a directory's regular files, to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() {
		copyFile(t, src, dst)
		return
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		copyFile(t, p, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
