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
//
// Installing the add-ons (what `boot addons` runs):
//
//   - ChartLoader.Load loads a chart from a ChartSource (ChartSourceOf turns the
//     inventory's addons.ingressNginx / addons.certManager into one): an http(s)
//     chart repository (index.yaml, the archive checked against the index's
//     digest), an oci:// reference (tag = version, Helm's registry client), or a
//     local folder or .tgz (what an offline bundle uses). Versions must be exact;
//     empty, "latest" and ranges are refused naming the inventory field.
//     Downloads are cached by SHA-256 digest and re-checked on every load.
//   - IngressNginxValues, CertManagerValues, IssuerValues and RegistryValues
//     build each release's values from the inventory; IssuerChart is boot's
//     embedded ClusterIssuer chart (charts/issuer: Let's Encrypt production or
//     staging over ACME HTTP-01 through the nginx class, or a self-signed root
//     that signs a CA certificate backing a CA issuer), installed as a Helm
//     release so it is applied, upgraded and removed like the others.
//   - Installer.Plan loads the charts and returns the releases in order
//     (cert-manager, cluster-issuer, the removal of the ingress controller not
//     chosen, ingress-nginx or traefik, registry) without touching the
//     cluster. Installer.Steps are the steps of a run (package run): the
//     charts, the ingress hosts' node label (IngressNodeLabel), each release
//     (Release.Plan: a server-side dry run compared with the deployed
//     revision, so nothing to do when nothing changed), and before the issuer
//     and the registry their Secrets (the Route53 key pair for DNS-01; the
//     credentials, generated once and afterwards always read back, the pull
//     Secret for the maintenance jobs and the S3 keys from the environment).
//     Each step plans read-only and reports as run.Events; with Wait, a
//     release that does not become ready in time fails naming its workloads
//     and claims that are not ready. Installer.TeardownSteps undo it in
//     reverse, leaving releases, Secrets and labels that are not boot's
//     alone. DNS.EnsureStep and DNS.RemoveStep keep the registry's Route53
//     record.
package addons
