// Package inventory reads, checks and completes boot's inventory file: the one
// YAML file that describes a cluster, its hosts and what goes on them.
// examples/inventory.yaml is the annotated reference of every field.
//
// # Loading
//
// Load reads the file in three steps and returns either a complete, valid
// Inventory or an *Error that lists every problem at once:
//
//  1. The YAML is decoded strictly against the types of this package:
//     unknown or duplicate keys, values of the wrong kind ("22.5" for a
//     port, "yes" for a boolean, 10 without a unit for a duration), YAML
//     anchors, aliases, merge keys and explicit tags are problems. Each
//     field's line is kept, so every problem names file, line and field.
//  2. Environment variables override single-value fields, read through
//     viper: the variable's name is BOOT_ followed by the field's path,
//     upper-cased, with "." replaced by "_" (BOOT_CLUSTER_KUBERNETESVERSION,
//     BOOT_REGISTRY_HOST, BOOT_SSH_USER, BOOT_SSH_BASTION_ADDRESS, ...; see
//     EnvVars). Empty variables are ignored. Fields inside lists (hosts,
//     pruner rules, dns addresses) and apiVersion and kind cannot be
//     overridden. A problem with an overridden value names the variable
//     instead of a line. Numbers, booleans (strconv.ParseBool) and durations
//     (time.ParseDuration) are parsed from the variable's text.
//  3. Defaults fill every field left empty (applyDefaults is the one place
//     they are set; each is documented on its field in types.go). Paths on
//     the operator's machine become absolute: ~/ is the home folder, and a
//     relative path is relative to the inventory's folder (or, when it came
//     from the environment, to the current folder).
//
// Then Validate checks the rules below.
//
// # Problems
//
// Each problem prints as
//
//	file:line: field.path: what is wrong (what is expected)
//	env BOOT_SSH_PORT: ssh.port: what is wrong (what is expected)
//
// A missing field is reported at the line of the nearest enclosing field.
// Problems are sorted by line; a field that failed to decode is not reported
// a second time by validation.
//
// # Rules
//
//   - apiVersion is boot/v1alpha1 and kind is Cluster; metadata.name is a
//     DNS label.
//   - Exactly one control-plane host (for now), at least one worker, at
//     least one host running the ingress controller; host names are unique
//     DNS labels, addresses are unique IPs or DNS names, private addresses
//     are unique IPs (the default private address is the address).
//   - cluster.kubernetesVersion is vMAJOR.MINOR.PATCH from v1.30.0 to
//     v1.37.x; pod and service CIDRs are networks of one IP family that do
//     not overlap each other or contain a host's private address; the pod
//     range holds a /24 (IPv6: /64) per host; the service range is /12
//     (IPv6: /108) or smaller; the CNI is flannel.
//   - Ports are 1-65535; durations are positive; cron schedules have five
//     valid fields; counts are not negative.
//   - Secrets are never in the file: fields ending in Env name an
//     environment variable (and must be a valid variable name), and a key
//     such as password, token or secretKey is refused with a pointer to its
//     Env field. Problems never echo the value of an Env field.
//   - Known values only: roles, host-key policies, package sources,
//     issuers, storage types, DNS providers and ingress modes.
//   - registry.host is a DNS name, inside dns.zone with route53;
//     acmeEmail is an e-mail address, required for the Let's Encrypt
//     issuers; s3 storage needs bucket and region (credentials: both
//     variable names or neither); registry.replicas is 1 to 20, more
//     than 1 only with s3 storage; a bundle source needs its folder.
//   - Pruner rules: valid globs and regular expressions, at least one keep*
//     per rule. Chart versions are exact (not "latest", not a range).
//   - Pinned host keys parse as one SSH public key in authorized_keys format.
//   - Every value a renderer takes passes that renderer's own rule: the
//     rules in rules.go (CheckImageRepository, CheckHostPath,
//     CheckPackageVersion, HelmVersion, CheckHost, CheckHostPort, ...) are
//     the ones package scripts applies to its parameters. So
//     cluster.imageRepository is a lower-case host[:port]/path, required
//     with a bundle source (the add-ons' images come from there);
//     packages.runtimeBinary a clean absolute path without control
//     characters; packages.versions.containerd and docker package versions,
//     helm a release with or without v; the control plane's address and
//     cluster.controlPlaneEndpoint what kubeadm takes (lower-case names);
//     registry.host lower-case without a final dot; registry.auth.user what
//     htpasswd carries; with route53 the A record's addresses IPv4. A
//     fuzz test in package bootstrap renders everything from each inventory
//     Validate accepts.
//
// # Using an inventory
//
// ControlPlane, Workers and IngressHosts select hosts; RecordAddresses gives
// the targets of the registry's DNS record; SSHFor merges the SSH defaults
// with a host's overrides into a ResolvedSSH, which carries the names of the
// environment variables holding secrets, never the secrets themselves.
package inventory
