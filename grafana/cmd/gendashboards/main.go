// Command gendashboards writes the console's Grafana dashboards to
// <out>/dashboards/*.json and the provisioning file to
// <out>/provisioning/dashboards.yaml. `go generate ./grafana` runs it; a
// test in package grafana fails when the committed files differ.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"switchyard/grafana"
)

func main() {
	out := flag.String("out", "grafana", "directory holding dashboards/ and provisioning/")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendashboards:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	ds, err := grafana.Dashboards(grafana.Options{})
	if err != nil {
		return err
	}
	files := map[string][]byte{filepath.Join(out, "provisioning", "dashboards.yaml"): grafana.Provisioning()}
	for _, d := range ds {
		files[filepath.Join(out, "dashboards", d.File)] = d.JSON
	}
	for path, b := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
