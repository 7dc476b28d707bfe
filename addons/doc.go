// Package addons holds what boot installs on the cluster after it is built.
//
// The registry chart is boot's own Helm chart for the CNCF distribution registry
// (charts/registry, embedded in the binary; its README.md documents values, the
// rendered objects and the in-cluster prune and gc jobs):
//
//   - RegistryChart loads the embedded chart with the Helm SDK.
//   - RenderRegistry renders it client-side (values checked by values.schema.json,
//     strict templates) into manifests keyed by template name.
//   - RenderRegistryConfig returns the registry's config.yml exactly as the chart
//     puts it into its config Secret; it holds no secret.
//
// The registry's credentials never come from the chart:
//
//   - NewRegistryCredentials generates the admin password (unless given), the
//     registry's http.secret and the Redis password with crypto/rand, and a bcrypt
//     htpasswd line.
//   - RegistryCredentials.Secret builds the Kubernetes Secret the chart reads by
//     name (value credentials.existingSecret); RegistryCredentialsFromSecret reads
//     it back on upgrades so nothing is re-randomised; PullSecret builds a
//     kubernetes.io/dockerconfigjson Secret for pulling from the registry.
//   - Formatting and JSON encoding of RegistryCredentials never show a secret, and
//     no error carries one.
package addons
