package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// The dashboard: one page of plain HTML, CSS and ES modules, embedded in
// the binary so it works without internet and with no build step. It
// signs in with a token traded for a session cookie (see Sessions), reads
// /api/v1/status and follows /api/v1/events.
//
//go:embed dashboard/assets
var dashboardFS embed.FS

// dashboardAssets is dashboard/assets with ETags (content hashes), built
// once.
var dashboardAssets = func() map[string]asset {
	sub, err := fs.Sub(dashboardFS, "dashboard/assets")
	if err != nil {
		panic(err)
	}
	out := map[string]asset{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".txt":
			ctype = "text/plain; charset=utf-8"
		}
		out[p] = asset{data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return out
}()

type asset struct {
	data  []byte
	etag  string
	ctype string
}

// contentPolicy lets the page load only its own scripts, styles and data:
// no inline script, no other origin, no framing.
const contentPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // revalidate by ETag: a new binary serves new assets at once
}

// index serves the page (the Host check is done).
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, "index.html")
}

// assets serves the page's files under /assets/.
func (s *Server) assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.checkHost(r); e != nil {
			writeError(w, e)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, apiError(http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+"; allowed: GET, HEAD"))
			return
		}
		serveAsset(w, r, strings.TrimPrefix(r.URL.Path, "/assets/"))
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := dashboardAssets[name]
	if !ok {
		writeError(w, apiError(http.StatusNotFound, "no asset "+name))
		return
	}
	pageHeaders(w)
	w.Header().Set("ETag", a.etag)
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.data)
}
