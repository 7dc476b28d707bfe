// Command lab-registry serves the lab's image registry: the distribution
// registry (github.com/distribution/distribution/v3) with only its filesystem
// storage driver linked in. It takes the path of a registry configuration file,
// in the format of the distribution registry's config.yml.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lab-registry CONFIG.yml")
		os.Exit(2)
	}
	if err := serve(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "lab-registry: %v\n", err)
		os.Exit(1)
	}
}

func serve(path string) error {
	// The registry exports OpenTelemetry traces to localhost:4318 unless told
	// otherwise; the lab has no collector.
	if os.Getenv("OTEL_TRACES_EXPORTER") == "" {
		os.Setenv("OTEL_TRACES_EXPORTER", "none")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	config, err := configuration.Parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r, err := registry.NewRegistry(context.Background(), config)
	if err != nil {
		return err
	}
	return r.ListenAndServe()
}
