// Package scripts renders the shell that boot runs on hosts and the kubeadm
// configuration files, from typed parameters. Templates are embedded files
// (templates/*.tmpl); every value reaches a script as one single-quoted
// shell word assigned at the top ("# Parameters."), a TOML basic string or
// a YAML double-quoted string, never spliced raw, and parameters with
// control characters are refused.
//
// # Scripts
//
//	HostPrep(HostPrepParams)           kernel modules, sysctls, swap off, packages, hostname, /etc/hosts
//	RuntimeBundle(RuntimeBundleParams) containerd 2.x, runc, crictl, CNI plugins from an uploaded bundle
//	RuntimeOnline(RuntimeOnlineParams) Docker Engine from Docker's apt repository, containerd's CRI on
//	KubeBundle(KubeBundleParams)       kubeadm, kubelet, kubectl and kubelet's units from an uploaded bundle
//	KubeOnline(KubeOnlineParams)       kubeadm, kubelet, kubectl from pkgs.k8s.io, pinned and held
//
// Each returns a bash script (#!/usr/bin/env bash, set -euo pipefail) to run
// as root, e.g. piped to `sudo bash -s`. Scripts are idempotent: every step
// checks before it changes, so a second run changes nothing. Run with the
// argument `check` (`bash -s check`), a script changes nothing and prints one
// "would: WHAT" line per change it would make; a real run prints
// "changed: WHAT" for each change it made. An empty check output means the
// host is converged. Warnings ("warning: ...") and errors ("error: ...") go
// to stderr; a failure exits non-zero.
//
// The bundle scripts read the bundle's folders as uploaded to StagingDir
// (bin/, cni/bin/, systemd/; the bundle package's layout) and fail, naming
// the file, when one is missing, in check mode too: upload first. Files are
// replaced only when their content or mode differs. The container runtime
// scripts end waiting (bounded by ReadyTimeout) until `crictl info` reports
// RuntimeReady (before crictl is installed, until ctr lists the CRI plugin
// as ok).
//
// What the tests here prove: golden files, shellcheck, the check-before-
// change helpers on temporary files, the apt helpers against this machine's
// dpkg and apt lists, check mode on this machine (it plans and changes
// nothing), the containerd configurations loaded by the bundle's containerd
// and the readiness wait against a running one. Applying the scripts to a
// host is left to the bootstrap phases' lab end-to-end. RuntimeOnline and
// KubeOnline need download.docker.com and pkgs.k8s.io, which this
// environment cannot reach: they are covered by golden files and shellcheck
// only. In check mode they still download the apt key to compare it.
//
// # kubeadm configuration
//
//	KubeadmInit(KubeadmParams) ([]byte, error) InitConfiguration + ClusterConfiguration (kubeadm.k8s.io/v1beta4),
//	                                           KubeletConfiguration, KubeProxyConfiguration
//	KubeadmJoin(JoinParams) ([]byte, error)    JoinConfiguration, bootstrap token discovery
//
// Both decode their output strictly into mirror types of the documented
// fields before returning it, so a misspelt key never reaches kubeadm. The
// join configuration holds the bootstrap token: send it to the host on stdin
// (`kubeadm join --config /dev/stdin`; kubeadm reads it, as the tests check
// with `kubeadm config validate --config /dev/stdin`) or as an uploaded 0600
// file, never on a command line or in a log. Token's
// String, GoString and MarshalText print "[redacted]", and no error of this
// package holds a parameter's value that could be the token.
//
// Errors name the function and the parameter field, e.g.
// "scripts.HostPrep: Hostname is not a DNS name ...".
package scripts
