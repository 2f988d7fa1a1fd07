package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser starts Debian's chromium headless, as root in CI, for one test.
// Without chromium the test is skipped, unless MERIDIAN_REQUIRE_TOOLS is
// set (CI sets it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("MERIDIAN_REQUIRE_TOOLS") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// cutProxy forwards TCP connections to a backend until cut: then it
// closes every connection and drops new ones until restored, as a network
// outage between a browser and a node would.
type cutProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	down    bool
	conns   map[net.Conn]bool
}

func newCutProxy(t *testing.T, backend string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &cutProxy{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c], p.conns[b] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
	c.Close()
	b.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, b)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones until restore.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestDashboardBrowser opens the dashboard of a three-node cluster in a
// real browser: it signs in with the read token and sees every region up;
// eu-west's endpoint fails for every node and the page shows eu-west down
// and Europe sent to us-east within 2 s of the nodes' answers moving; a
// failover through the API shows on the page within 2 s; and the page
// fetched nothing from anywhere but the node. The browser reaches the node
// through a proxy that can cut the connection: the page says it lost it,
// reconnects when it can, and shows what happened meanwhile. It signs in
// with the keyboard and fits a phone's width.
func TestDashboardBrowser(t *testing.T) {
	ctx := browser(t)
	c := newTestClusterExtra(t, 3, "200ms", 2, 1, 0, adminLines(""))
	c.waitAll("198.51.100.10")
	n1 := c.nodes[0].Node
	proxy := newCutProxy(t, n1.AdminAddr())
	addr := proxy.ln.Addr().String()
	base := "http://" + addr

	// Every request the page makes, to check where they went.
	var mu sync.Mutex
	var fetched []string
	must(t, chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			mu.Lock()
			fetched = append(fetched, e.Request.URL)
			mu.Unlock()
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			t.Errorf("page exception at %s:%d: %s", d.URL, d.LineNumber+1, desc)
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				t.Logf("page console %s: %s", e.Type, a.Value)
			}
		}
	}))
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	must(t, err)
	shots := t.ArtifactDir()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(shots, name), png, 0o644))
	}
	// until evaluates a JavaScript condition until it is true, failing the
	// test after within; it returns how long it took.
	until := func(what, js string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ok {
				return time.Since(start)
			}
			if time.Since(start) > within {
				text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
				t.Fatalf("after %s, the page does not show %s; it reads:\n%s", within, what, text)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if os.Getenv("DASH_DEBUG") != "" {
		_, err := chromedp.Run(ctx, chromedp.Steps(chromedp.Navigate(base+"/"), chromedp.Sleep(2*time.Second)))
		must(t, err)
		html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Logf("DOM %v: %s", err, html)
		mu.Lock()
		t.Logf("fetched: %v", fetched)
		mu.Unlock()
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = chromedp.Run(sctx, chromedp.Steps(
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Focus(chromedp.CSS("#token")),
		chromedp.KeyEvent(testReadToken+"\r"), // typed, then Enter: signing in needs no mouse
		chromedp.WaitVisible(chromedp.CSS("#app")),
	))
	must(t, err)
	const verdict = `(r, v) => document.querySelector('#regions tr[data-region="' + r + '"] [data-verdict="' + v + '"]') !== null`
	until("every region up", `(`+verdict+`)("us-east","up") && (`+verdict+`)("eu-west","up") && (`+verdict+`)("ap-southeast","up")`+
		` && document.querySelectorAll('#map g.marker[data-verdict="up"]').length === 3`, 10*time.Second)
	until("Europe answered by eu-west", `document.querySelector('#map path[data-continent="EU"]').dataset.region === "eu-west"`, 5*time.Second)
	until("the events stream connected", `document.getElementById("conn").textContent === "Live"`, 5*time.Second)
	until("every node in the observer matrix", `document.querySelectorAll('#matrix thead th').length === 5`, 5*time.Second)
	shot("1-all-up.png")
	// eu-west fails for every node.
	c.eps["eu-west"].failFor("*")
	c.waitAll("192.0.2.10")
	took := until("eu-west down", `(`+verdict+`)("eu-west","down") && document.querySelector('#map g.marker[data-region="eu-west"]').dataset.verdict === "down"`+
		` && document.querySelector('#map path[data-continent="EU"]').dataset.region === "us-east"`, 2*time.Second)
	t.Logf("eu-west down on the page %s after the nodes' answers moved", took.Round(time.Millisecond))
	until("the flip on the timeline", `[...document.querySelectorAll('#timeline li[data-type="verdict"]')].some(li => li.textContent.includes("eu-west up → down"))`, 2*time.Second)
	shot("2-eu-west-down.png")
	if out := os.Getenv("MERIDIAN_DASHBOARD_PNG"); out != "" {
		// `MERIDIAN_DASHBOARD_PNG=$PWD/docs/dashboard.png go test ./node -run DashboardBrowser`
		// refreshes the README's screenshot: 1280×800, eu-west down.
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		must(t, err)
		must(t, os.WriteFile(out, png, 0o644))
	}

	// A failover through the API shows, with its reason.
	pin := map[string]any{"action": "pin", "pool": "www.gslb.example.com", "region": "ap-southeast", "reason": "browser test failover"}
	start := time.Now()
	if got := call(t, n1, testOperateToken, "POST", "/api/v1/overrides", pin, nil); got != 200 {
		t.Fatalf("failover: %d", got)
	}
	until("the override", `(() => { const r = document.querySelector('#overrides tr[data-override="pin:www.gslb.example.com."]'); return r !== null && r.textContent.includes("browser test failover") })()`,
		2*time.Second-time.Since(start))
	until("Europe sent to ap-southeast", `document.querySelector('#map path[data-continent="EU"]').dataset.region === "ap-southeast"`, 2*time.Second)
	shot("3-override.png")

	// The connection is cut: the page says so; while it is cut the
	// override is cleared; once the connection is back the page is live
	// again and shows the clear (replayed from Last-Event-ID).
	proxy.cut()
	until("the lost connection", `document.getElementById("conn").textContent.startsWith("Connection lost") && document.getElementById("lost") !== null`, 5*time.Second)
	shot("4-connection-lost.png")
	if got := call(t, n1, testOperateToken, "DELETE", "/api/v1/overrides/pin:www.gslb.example.com.?reason=drill+over", nil, nil); got != 200 {
		t.Fatalf("clear: %d", got)
	}
	proxy.restore()
	took = until("live again", `document.getElementById("conn").textContent === "Live" && document.getElementById("lost") === null`, 10*time.Second)
	t.Logf("live again %s after the connection came back", took.Round(time.Millisecond))
	until("the clear", `document.querySelector('#overrides tr[data-override]') === null`+
		` && [...document.querySelectorAll('#timeline li[data-type="override.cleared"]')].length === 1`, 3*time.Second)

	// At a phone's width nothing is wider than the screen.
	_, err = chromedp.Run(ctx, chromedp.EmulateViewport(390, 844))
	must(t, err)
	until("the page fitting 390 px", `document.documentElement.scrollWidth <= window.innerWidth`, 2*time.Second)
	shot("5-phone.png")

	// The read role sees no controls. The operate role previews a drain,
	// applies it, and meets the safety rail on a pin to a down region: it
	// applies only when forced.
	_, err = chromedp.Run(ctx, chromedp.EmulateViewport(1280, 800))
	must(t, err)
	until("no controls for the read role", `document.getElementById("change").hidden`, time.Second)
	_, err = chromedp.Run(sctx, chromedp.Steps(
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Focus(chromedp.CSS("#token")),
		chromedp.KeyEvent(testOperateToken+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#change")),
	))
	must(t, err)
	choose := func(id, value string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("change")); return s.value === %q })()`, id, value, value)
		until(id+" = "+value, js, 2*time.Second)
	}
	click := func(id string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Click(chromedp.CSS("#"+id)))
		must(t, err)
	}
	choose("c-action", "drain")
	choose("c-pool", "www.gslb.example.com.")
	choose("c-region", "us-east")
	_, err = chromedp.Run(ctx, chromedp.SendKeys(chromedp.CSS("#c-reason"), "browser drill"))
	must(t, err)
	click("c-preview")
	until("the preview", `document.getElementById("c-result").textContent.includes("nothing changed yet") && !document.getElementById("c-apply").hidden`, 2*time.Second)
	if os := n1.Cluster().Overrides(); len(os) != 0 {
		t.Fatalf("the preview changed the overrides: %+v", os)
	}
	click("c-apply")
	until("the drain applied", `document.querySelector('#overrides tr[data-override="drain:www.gslb.example.com.:us-east"]') !== null`, 2*time.Second)
	shot("6-operate.png")
	choose("c-action", "pin")
	choose("c-pool", "www.gslb.example.com.")
	choose("c-region", "eu-west")
	_, err = chromedp.Run(ctx, chromedp.SendKeys(chromedp.CSS("#c-reason"), "forced drill"))
	must(t, err)
	click("c-preview")
	until("the safety rail", `document.getElementById("c-conflict") !== null && !document.getElementById("c-force-label").hidden`, 2*time.Second)
	click("c-apply")
	until("the refusal", `document.getElementById("c-result").textContent.includes("Not applied")`, 2*time.Second)
	click("c-force")
	click("c-apply")
	until("the forced pin", `document.querySelector('#overrides tr[data-override="pin:www.gslb.example.com."]') !== null`, 2*time.Second)
	var who []string
	for _, o := range n1.Cluster().Overrides() {
		who = append(who, o.Who+":"+o.Why)
	}
	if len(who) != 2 || who[0] != "test-operate:browser drill" && who[1] != "test-operate:browser drill" {
		t.Errorf("overrides made from the page: %v", who)
	}

	// Nothing came from anywhere but the node.
	mu.Lock()
	defer mu.Unlock()
	if len(fetched) < 4 {
		t.Fatalf("only %d requests seen: %v", len(fetched), fetched)
	}
	for _, u := range fetched {
		p, err := url.Parse(u)
		if err != nil || p.Host != addr {
			t.Errorf("the page fetched %s, not from the node (%s)", u, addr)
		}
	}
	t.Logf("screenshots in %s; %d requests, all to %s", shots, len(fetched), addr)
}
