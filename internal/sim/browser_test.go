package sim

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds a Chromium binary: /usr/bin/chromium (apt-get install chromium) first.
func chromiumPath() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestAgentWorkspaceInBrowser opens the interaction page in headless Chromium, checks what an
// agent would read in the Customer Information panel and which exits the IVR panel shows, and
// saves a screenshot to $ARTIFACTS_DIR (or the test's temporary directory).
func TestAgentWorkspaceInBrowser(t *testing.T) {
	execPath := chromiumPath()
	if execPath == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is not installed (apt-get install -y chromium); the browser test must run in CI")
		}
		t.Skip("Chromium is not installed (apt-get install -y chromium); skipping the browser test outside CI")
	}
	s, err := New(Config{Tenants: []Tenant{{ID: tenant1, Token: token1}}, PlainHTTP: true, Routes: demoRoutes})
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	seedDemo(t, s)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 820),
	)
	defer cancelAlloc()
	browserCtx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer func() {
		// Closing reports the connection it just closed as lost; only another error matters.
		if err := chromedp.Cancel(browserCtx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("closing the browser: %v", err)
		}
		cancel()
	}()
	ctx, cancelTimeout := context.WithTimeout(browserCtx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/interactions/int-987654?refresh=0"),
		chromedp.WaitVisible(chromedp.ID("customer-information")),
	); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	for name, want := range wantDisplayed {
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#customer-information [data-var="`+name+`"]`)))
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s shows %q, want %q", name, got, want)
		}
	}
	label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-label="_accountBalance"]`)))
	if err != nil || label != "Account Balance" {
		t.Errorf("label of _accountBalance: %q, %v; want %q", label, err, "Account Balance")
	}
	counts, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[
		document.querySelectorAll('#customer-information [data-var]').length,
		document.querySelectorAll('[data-var="_internalScore"]').length,
		document.body.innerText.includes('4321 ') || document.body.innerText.includes('\n4321')]
		.map(Number)`))
	if err != nil {
		t.Fatalf("counting rows: %v", err)
	}
	if counts[0] != len(wantDisplayed) || counts[1] != 0 || counts[2] != 0 {
		t.Errorf("rows %d (want %d), undisplayed rows %d (want 0), private value shown %d (want 0)", counts[0], len(wantDisplayed), counts[1], counts[2])
	}
	for i, want := range wantExits {
		exit, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			`document.querySelectorAll('#ivr-test-variable tr.route')[`+string(rune('0'+i))+`].dataset.exit`))
		if err != nil || exit != want {
			t.Errorf("route %d exit %q, %v; want %q", i, exit, err, want)
		}
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent-workspace.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the Agent Workspace page: %s", path)
}
