package pruner_test

// Benchmarks (run with -bench; they print figures, they assert no speed):
//
//	go test ./pruner -run '^$' -bench . -benchtime 1x
//
// BenchmarkRegistryCache compares the registry's blob-descriptor caches
// (none, inmemory, Redis as the chart sets it up, Redis with larger pools)
// side by side on the same storage in the same run, for a filesystem and
// for S3 (moto_server); it needs redis-server and moto_server and takes
// about two and a half minutes on two cores. Alone:
//
//	go test ./pruner -run '^$' -bench RegistryCache -benchtime 1x
//
// BenchmarkPlan measures planning 1,000 repositories x 100 tags against a
// real registry running in its own process, so that the memory figures are
// the pruner's alone.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws" // the S3 benchmark's storage
	"golang.org/x/sync/errgroup"

	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/pruner"
)

// benchRequest is one registry request of a benchmark's workload.
type benchRequest struct {
	method, path string
}

// hammer sends every request of reqs, workers at a time, and returns how
// long that took. Every answer must be 200.
func hammer(ctx context.Context, client *http.Client, base string, reqs []benchRequest, workers int) (time.Duration, error) {
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range workers {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return nil
				}
				req, err := http.NewRequestWithContext(gctx, reqs[i].method, base+reqs[i].path, nil)
				if err != nil {
					return err
				}
				req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s %s: %s", reqs[i].method, reqs[i].path, resp.Status)
				}
			}
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// cacheVariant is one registry of BenchmarkRegistryCache: the chart's
// chart's cache value and the redis values it is rendered with.
type cacheVariant struct {
	name, cache string
	redis       map[string]any
}

// cacheVariants are compared against the first, the registry without a
// cache: the inmemory cache, Redis with the chart's client settings
// (values.yaml: a pool of 32, 16 kept idle, above the benchmark's 16
// clients), Redis with the former pool of 10 (1-5 idle), and with 64.
var cacheVariants = []cacheVariant{
	{name: "none", cache: "none"},
	{name: "inmemory", cache: "inmemory"},
	{name: "redis", cache: "redis", redis: map[string]any{}},
	{name: "redis-pool10", cache: "redis", redis: map[string]any{"poolSize": 10, "minIdleConns": 1, "maxIdleConns": 5}},
	{name: "redis-pool64", cache: "redis", redis: map[string]any{"poolSize": 64, "minIdleConns": 32, "maxIdleConns": 64}},
}

// usesRedis says whether the variant renders the chart's Redis cache.
func (v cacheVariant) usesRedis() bool { return v.cache == "redis" }

// configure restarts s (a new App, as a rolled Deployment) with the chart's
// config.yml rendered with storage and the variant's redis values, and
// returns what the registry parsed of it: the cache and the Redis client.
func (s *registryStack) configure(b *testing.B, storage map[string]any, v cacheVariant, rdb *redisInstance) string {
	b.Helper()
	redisValues := maps.Clone(v.redis)
	if v.usesRedis() {
		redisValues["externalAddress"] = rdb.Addr
	}
	s.config = renderConfig(b, map[string]any{"storage": storage, "cache": v.cache, "redis": redisValues})
	if storage["type"] == "s3" {
		// The harness started s on a filesystem root, which it passes as an
		// environment override: left set, distribution would see two
		// storage drivers.
		delete(s.env, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY")
		if err := os.Unsetenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"); err != nil {
			b.Fatal(err)
		}
	}
	s.setMode(false)
	cfg := s.parseConfig(false)
	cache := cfg.Storage["cache"]["blobdescriptor"]
	var want any = v.cache
	if v.cache == "none" {
		want = nil
	}
	if cfg.Storage.Type() != storage["type"] || cache != want {
		b.Fatalf("%s: the registry parsed storage %s with cache %v, want %s with %v", v.name, cfg.Storage.Type(), cache, storage["type"], want)
	}
	if !v.usesRedis() {
		return fmt.Sprint(want)
	}
	o := cfg.Redis.Options
	return fmt.Sprintf("redis pool %d idle %d-%d timeouts %s retries %d", o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.ReadTimeout, o.MaxRetries)
}

// cacheWorkload sizes BenchmarkRegistryCache for one storage: repos x images
// images of three blobs each (config and two layers), rounds, and requests
// per round of each kind.
type cacheWorkload struct {
	repos, images, rounds, perRound int
}

// BenchmarkRegistryCache measures HEAD /v2/<repo>/blobs/<digest> and
// GET /v2/<repo>/manifests/<tag> per second, 16 clients at a time, on
// in-process registries (the chart's config.yml) that share one storage and
// differ only in their blob-descriptor cache (cacheVariants), for two
// storages: a filesystem (a PVC on a local disk, in the page cache) and S3
// (moto_server on loopback, so every storage call is an HTTP request to a
// real S3 implementation; a blob HEAD is answered, as the chart configures
// it, with a redirect to a pre-signed S3 URL, which the client follows to
// moto as real clients do). Caches are warm. Rounds alternate between the
// registries, each round in another order, so that load from other
// processes falls on all alike. It reports each registry's rates and its
// ratio to the registry without a cache, and logs them as a table.
func BenchmarkRegistryCache(b *testing.B) {
	b.Run("filesystem", func(b *testing.B) {
		benchCaches(b, map[string]any{"type": "filesystem"}, cacheWorkload{repos: 10, images: 10, rounds: 8, perRound: 1500})
	})
	b.Run("s3", func(b *testing.B) {
		// Any key pair: moto checks none. Static keys also keep the AWS SDK
		// from asking an instance metadata service.
		b.Setenv("AWS_ACCESS_KEY_ID", "bench")
		b.Setenv("AWS_SECRET_ACCESS_KEY", "bench-secret")
		b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		s3 := map[string]any{"bucket": "bench", "region": "us-east-1", "regionEndpoint": testenv.MotoS3(b, "bench"), "forcePathStyle": true}
		benchCaches(b, map[string]any{"type": "s3", "s3": s3}, cacheWorkload{repos: 4, images: 5, rounds: 4, perRound: 300})
	})
}

func benchCaches(b *testing.B, storage map[string]any, size cacheWorkload) {
	const workers = 16
	ctx := context.Background()
	rdb := startRedis(b, "bench-cache-password")
	regs := make([]*registryStack, len(cacheVariants))
	settings := make([]string, len(cacheVariants))
	for i, v := range cacheVariants {
		opts := registryOptions{anonymous: true}
		if i > 0 {
			opts.root = regs[0].Root
		}
		regs[i] = startRegistryWith(b, rdb, registryAuth{}, opts)
		settings[i] = regs[i].configure(b, storage, v, rdb)
	}

	var heads, manifests []benchRequest
	var blobs []string
	for r := range size.repos {
		repo := fmt.Sprintf("bench/app%02d", r)
		for i := range size.images {
			img := newImage(b, time.Now(), randomLayer(b), randomLayer(b))
			tag := fmt.Sprintf("1.0.%d", i)
			regs[0].mustPush(ctx, b, repo+":"+tag, img)
			manifests = append(manifests, benchRequest{http.MethodGet, "/v2/" + repo + "/manifests/" + tag})
			for _, d := range blobsOf(b, img)[1:] { // config and layers
				blobs = append(blobs, d)
				heads = append(heads, benchRequest{http.MethodHead, "/v2/" + repo + "/blobs/" + d})
			}
		}
	}
	cycle := func(reqs []benchRequest) []benchRequest {
		out := make([]benchRequest, size.perRound)
		for i := range out {
			out[i] = reqs[i%len(reqs)]
		}
		return out
	}
	workloads := []struct {
		name string
		reqs []benchRequest
	}{{"head", cycle(heads)}, {"manifest", cycle(manifests)}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: time.Minute}
	defer client.CloseIdleConnections()

	// Warm up every registry with each request once: connections, page
	// cache and the caches. The registries without Redis go first and must
	// leave it empty; the Redis ones must then describe what is asked for,
	// or the figures compare nothing.
	if err := rdb.Client.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	for _, withRedis := range []bool{false, true} {
		for i, v := range cacheVariants {
			if v.usesRedis() != withRedis {
				continue
			}
			for _, reqs := range [][]benchRequest{heads, manifests} {
				if _, err := hammer(ctx, client, regs[i].URL, reqs, workers); err != nil {
					b.Fatalf("%s: %v", v.name, err)
				}
			}
			if n, err := rdb.Client.DBSize(ctx).Result(); !withRedis && (err != nil || n != 0) {
				b.Fatalf("%s: the registry without Redis wrote %d keys to it (%v)", v.name, n, err)
			}
		}
	}
	if n, err := rdb.Client.Exists(ctx, "blobs::"+blobs[0], "blobs::"+blobs[len(blobs)-1]).Result(); err != nil || n != 2 {
		b.Fatalf("the registries with Redis do not use it (%d, %v)", n, err)
	}

	elapsed := make(map[string]time.Duration)
	b.ResetTimer()
	for n := range b.N {
		for round := range size.rounds {
			for _, w := range workloads {
				for k := range cacheVariants {
					i := (n*size.rounds + round + k) % len(cacheVariants)
					d, err := hammer(ctx, client, regs[i].URL, w.reqs, workers)
					if err != nil {
						b.Fatalf("%s: %v", cacheVariants[i].name, err)
					}
					elapsed[w.name+"-"+cacheVariants[i].name] += d
				}
			}
		}
	}
	b.StopTimer()
	// One line per cache: the benchmark's log shows ten lines at most.
	var table strings.Builder
	fmt.Fprintf(&table, "%-12s %9s %7s %9s %7s  %s\n", "cache", "head/s", "ratio", "manif/s", "ratio", "settings")
	rate := func(w string, i int) float64 {
		return float64(b.N*size.rounds*size.perRound) / elapsed[w+"-"+cacheVariants[i].name].Seconds()
	}
	for i, v := range cacheVariants {
		fmt.Fprintf(&table, "%-12s", v.name)
		for _, w := range workloads {
			r, ratio := rate(w.name, i), rate(w.name, i)/rate(w.name, 0)
			b.ReportMetric(r, w.name+"-"+v.name+"-req/s")
			if i > 0 {
				b.ReportMetric(ratio, w.name+"-"+v.name+"/none")
			}
			fmt.Fprintf(&table, " %9.0f %6.2fx", r, ratio)
		}
		fmt.Fprintf(&table, "  %s\n", settings[i])
	}
	b.Logf("%s, %d clients, %d rounds of %d requests of each kind per cache:\n%s", storage["type"], workers, b.N*size.rounds, size.perRound, table.String())
}

// TestRegistryProcess is not a test: BenchmarkPlan runs the test binary
// again with only this selected, to have a registry in a process of its own.
// It prints the registry's URL and serves until its stdin closes.
func TestRegistryProcess(t *testing.T) {
	if os.Getenv("BOOT_PRUNER_REGISTRY_PROCESS") != "1" {
		t.Skip("helper process for BenchmarkPlan")
	}
	reg := startRegistryWith(t, nil, registryAuth{}, registryOptions{anonymous: true, inMemory: true})
	fmt.Printf("registry-url %s\n", reg.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// registryProcess starts TestRegistryProcess and returns its URL; the
// process ends in Cleanup.
func registryProcess(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRegistryProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BOOT_PRUNER_REGISTRY_PROCESS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	b.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if url, ok := strings.CutPrefix(lines.Text(), "registry-url "); ok {
			go func() {
				_, _ = io.Copy(io.Discard, stdout)
				_ = cmd.Wait()
				close(done)
			}()
			return url
		}
	}
	_ = cmd.Wait()
	close(done)
	b.Fatalf("the registry process ended without giving its URL: %v", lines.Err())
	return ""
}

// seeder pushes small images with plain HTTP requests, fast: a tiny config
// per tag, one layer shared by every image (mounted across repositories).
type seeder struct {
	url    string
	client *http.Client
}

func (s *seeder) do(ctx context.Context, method, url, contentType string, body []byte, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return resp, nil
}

// blob uploads data to repo (POST, then PUT with the digest).
func (s *seeder) blob(ctx context.Context, repo string, data []byte) (string, error) {
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	resp, err := s.do(ctx, http.MethodPost, s.url+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = s.url + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	_, err = s.do(ctx, http.MethodPut, loc+sep+"digest="+d, "application/octet-stream", data, http.StatusCreated)
	return d, err
}

func (s *seeder) mount(ctx context.Context, repo, from, d string) error {
	_, err := s.do(ctx, http.MethodPost, s.url+"/v2/"+repo+"/blobs/uploads/?mount="+d+"&from="+from, "", nil, http.StatusCreated)
	return err
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// image pushes repo:tag: its own config (created, and the repository and
// tag so that every manifest is distinct) on the shared layer.
func (s *seeder) image(ctx context.Context, repo, tag string, created time.Time, layer string, layerSize int) error {
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": created.UTC().Format(time.RFC3339),
		"config": map[string]any{"Labels": map[string]string{"repo": repo, "tag": tag}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer}},
	})
	cd, err := s.blob(ctx, repo, cfg)
	if err != nil {
		return err
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ociManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layerSize}},
	})
	_, err = s.do(ctx, http.MethodPut, s.url+"/v2/"+repo+"/manifests/"+tag, ociManifest, m, http.StatusCreated)
	return err
}

// benchTag names tag j of a repository: a mix of releases, pull-request
// builds, git SHAs and CI builds, as a registry holds them.
func benchTag(repo string, j int) string {
	switch j % 4 {
	case 0:
		return fmt.Sprintf("1.%d.%d", j/10, j%10)
	case 1:
		return fmt.Sprintf("PR-%d", j)
	case 2:
		return fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprint(repo, j))))[:7]
	}
	return fmt.Sprintf("build-%d", j)
}

// countingTransport counts the requests the pruner sends.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// heapPeak samples the live heap (runtime/metrics, no stop-the-world)
// until stop is called, which returns the highest value seen.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	var peak uint64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(quit)
		<-done
		return max(peak, read())
	}
}

// BenchmarkPlan plans 1,000 repositories x 100 tags (100,000 distinct
// manifests, each with its own config) against the registry in its own
// process, with rules that use every keep type. Seeding is not timed. It
// reports time, allocations, tags/s, requests per tag, the peak heap
// growth while planning and the heap the finished plan holds.
func BenchmarkPlan(b *testing.B) {
	const repos, tagsPerRepo = 1000, 100
	ctx := context.Background()
	url := registryProcess(b)
	s := &seeder{url: url, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: time.Minute}}
	layer := bytes.Repeat([]byte("boot"), 64)
	layerDigest, err := s.blob(ctx, "team00/app000", layer)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	seedStart := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for r := range repos {
		repo := fmt.Sprintf("team%02d/app%03d", r%20, r)
		g.Go(func() error {
			if r > 0 {
				if err := s.mount(gctx, repo, "team00/app000", layerDigest); err != nil {
					return err
				}
			}
			for j := range tagsPerRepo {
				created := now.Add(-time.Duration(tagsPerRepo-j) * 6 * time.Hour)
				if err := s.image(gctx, repo, benchTag(repo, j), created, layerDigest, len(layer)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	s.client.CloseIdleConnections()
	b.Logf("seeded %d repositories x %d tags in %s", repos, tagsPerRepo, time.Since(seedStart).Round(time.Second))

	rules := mustRules(b, `rules:
  - match: ["^PR-"]
    keepLatest: 5
    keepDays: 2
  - match: ["^v?[0-9]"]
    keepSemver: {highest: 10}
  - match: ["^[0-9a-f]{7}$"]
    keepLatest: 10
  - repositories: ["team0*/*"]
    match: ["^build-"]
    keepDays: 3
`)
	var plan *pruner.Plan
	var requests int64
	var peak uint64
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		counter := &countingTransport{}
		client, err := pruner.NewClient(url, "", "", pruner.WithTransport(counter), pruner.WithParallel(8))
		if err != nil {
			b.Fatal(err)
		}
		stop := heapPeak()
		plan, err = pruner.NewPlan(ctx, client, rules, pruner.PlanOptions{Now: now, Parallel: 4})
		peak = max(peak, stop())
		if err != nil {
			b.Fatal(err)
		}
		requests += counter.n.Load()
	}
	b.StopTimer()
	if plan.Summary.Repositories != repos || plan.Summary.Tags != repos*tagsPerRepo || plan.Summary.Delete == 0 || plan.Summary.Keep == 0 {
		b.Fatalf("plan summary %+v, want %d repositories and %d tags, some kept and some deleted", plan.Summary, repos, repos*tagsPerRepo)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(plan)
	tags := float64(b.N * repos * tagsPerRepo)
	b.ReportMetric(tags/b.Elapsed().Seconds(), "tags/s")
	b.ReportMetric(float64(requests)/tags, "requests/tag")
	b.ReportMetric(float64(peak-min(peak, before.HeapAlloc))/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc))/(1<<20), "plan-heap-MiB")
	b.Logf("plan: %+v", plan.Summary)
}
