package node

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
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

// TestDashboardBrowser opens the dashboard of a three-node cluster in a
// real browser: it signs in with the read token and sees every region up;
// eu-west's endpoint fails for every node and the page shows eu-west down
// and Europe sent to us-east within 2 s of the nodes' answers moving; a
// failover through the API shows on the page within 2 s; and the page
// fetched nothing from anywhere but the node.
func TestDashboardBrowser(t *testing.T) {
	ctx := browser(t)
	c := newTestClusterExtra(t, 3, "200ms", 2, 1, 0, adminLines(""))
	c.waitAll("198.51.100.10")
	n1 := c.nodes[0].Node
	base := "http://" + n1.AdminAddr()

	// Every request the page makes, to check where they went.
	var mu sync.Mutex
	var fetched []string
	must(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			fetched = append(fetched, e.Request.URL)
			mu.Unlock()
		}
	}))
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	must(t, err)
	shots := t.ArtifactDir()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
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

	_, err = chromedp.Run(ctx, chromedp.Steps(
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testReadToken),
		chromedp.Submit(chromedp.CSS("#signin-form")),
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
	if out := os.Getenv("MERIDIAN_DASHBOARD_PNG"); out != "" {
		// `MERIDIAN_DASHBOARD_PNG=$PWD/docs/dashboard.png go test ./node -run DashboardBrowser`
		// refreshes the README's screenshot (taken later, with a region down
		// and an override in force, so it shows them).
		defer func() {
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			must(t, err)
			must(t, os.WriteFile(out, png, 0o644))
		}()
	}

	// eu-west fails for every node.
	c.eps["eu-west"].failFor("*")
	c.waitAll("192.0.2.10")
	took := until("eu-west down", `(`+verdict+`)("eu-west","down") && document.querySelector('#map g.marker[data-region="eu-west"]').dataset.verdict === "down"`+
		` && document.querySelector('#map path[data-continent="EU"]').dataset.region === "us-east"`, 2*time.Second)
	t.Logf("eu-west down on the page %s after the nodes' answers moved", took.Round(time.Millisecond))
	until("the flip on the timeline", `[...document.querySelectorAll('#timeline li[data-type="verdict"]')].some(li => li.textContent.includes("eu-west up → down"))`, 2*time.Second)
	shot("2-eu-west-down.png")

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

	// Nothing came from anywhere but the node.
	mu.Lock()
	defer mu.Unlock()
	if len(fetched) < 4 {
		t.Fatalf("only %d requests seen: %v", len(fetched), fetched)
	}
	for _, u := range fetched {
		p, err := url.Parse(u)
		if err != nil || p.Host != n1.AdminAddr() {
			t.Errorf("the page fetched %s, not from the node (%s)", u, n1.AdminAddr())
		}
	}
	t.Logf("screenshots in %s; %d requests, all to %s", shots, len(fetched), n1.AdminAddr())
}
