// Package addons installs what runs on the cluster after it is built. This file set
// holds the registry chart: our own Helm chart for the CNCF distribution registry
// (charts/registry, embedded in the binary), rendered client-side with the Helm SDK,
// and the registry's credentials, generated in Go with crypto/rand and kept in one
// Kubernetes Secret that the chart consumes by name.
package addons
