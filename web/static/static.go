// Package static holds the console's CSS and JavaScript, embedded in the
// binary so that the console is one file to deploy.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sort"
)

//go:embed app.css app.js favicon.svg
var files embed.FS

// FS returns the embedded files.
func FS() fs.FS { return files }

// Version returns a short hash of all embedded files. Pages link assets
// with ?v=<Version> so that browsers may cache them for good and still see
// every change.
func Version() string {
	h := sha256.New()
	names, _ := fs.Glob(files, "*")
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(files, n) // embedded: cannot fail
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
