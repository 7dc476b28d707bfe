//go:build lab

package cmd

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkRegistryS3 moves the lab's registry to S3 storage (a bucket in the
// lab's moto, which serves S3 beside Route53) with boot addons: two
// replicas run, Ready, on two different nodes, with a PodDisruptionBudget
// that allows one disruption; boot addons' closing verify pushes and pulls
// through the ingress, whose requests go to both replicas (an upload
// started on one is finished on the other only if they share the storage
// and the http secret); the image's blobs are in the bucket. The inventory
// also gets a pull-only user and a pruner rule (withUsersAndPruner); it
// returns that inventory.
func checkRegistryS3(t *testing.T, k kube, invPath string, w labWorld) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const bucket = "boot-lab-registry"
	s3 := func(method, path string) string {
		req, _ := http.NewRequestWithContext(ctx, method, w.Route53Endpoint+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("moto S3 %s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("moto S3 %s %s: %s\n%s", method, path, resp.Status, body)
		}
		return string(body)
	}
	s3(http.MethodPut, "/"+bucket)
	t.Setenv("BOOT_LAB_S3_ACCESS_KEY", "boot-lab")
	t.Setenv("BOOT_LAB_S3_SECRET_KEY", "boot-lab")
	dst := editInventory(t, invPath, filepath.Join(filepath.Dir(invPath), "inventory-s3.yaml"), func(m map[string]any) {
		section(section(m, "registry"), "storage")["type"] = "s3"
		section(section(m, "registry"), "storage")["s3"] = map[string]any{
			"bucket": bucket, "region": "us-east-1", "endpoint": w.Route53Endpoint,
			"accessKeyEnv": "BOOT_LAB_S3_ACCESS_KEY", "secretKeyEnv": "BOOT_LAB_S3_SECRET_KEY", "redirectDisable": true,
		}
		withUsersAndPruner(m)
	})
	start := time.Now()
	code, stdout, stderr := runBoot(t, append([]string{"addons", "-i", dst, "--timeout", "5m", "-o", "json"}, w.flags()...)...)
	if code != ExitOK {
		t.Fatalf("boot addons with S3 storage: exit %d\n%s%s\n%s", code, stdout, stderr, k.must("", "get", "pods", "-n", "docker-registry", "-o", "wide"))
	}
	t.Logf("boot addons moved the registry to S3 with two replicas in %s", time.Since(start).Round(time.Second))
	if !slices.ContainsFunc(parseEvents(t, stdout), func(e event) bool { return e.Phase == "verify" && e.Host == "pull" && e.Status == "ok" }) {
		t.Errorf("boot addons did not verify a pull through the ingress:\n%s", stdout)
	}

	nodes := func() []string {
		out := k.must("", "-n", "docker-registry", "get", "pods", "-l", "app.kubernetes.io/component=registry", "--field-selector", "status.phase=Running",
			"-o", `jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}`)
		return strings.Fields(out)
	}
	if n := nodes(); len(n) != 2 || n[0] == n[1] {
		t.Errorf("the registry's replicas run on %v, want two different nodes", n)
	}
	if allowed := k.must("", "-n", "docker-registry", "get", "pdb", "registry", "-o", "jsonpath={.status.disruptionsAllowed}"); allowed != "1" {
		t.Errorf("the registry's PodDisruptionBudget allows %s disruption(s), want 1", allowed)
	}
	if keys := s3(http.MethodGet, "/"+bucket+"?list-type=2&prefix=docker/registry/v2/blobs/"); !strings.Contains(keys, "<Key>docker/registry/v2/blobs/sha256/") {
		t.Errorf("no blob in the bucket after the push:\n%s", keys)
	}
	return dst
}
