package addons

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bootctl/boot/internal/testenv"
)

// untunedRedis are the redis values the chart had before its timeouts were
// tuned for a dead Redis: go-redis's default three retries with backoff,
// seconds of dial, read and pool timeouts.
var untunedRedis = map[string]any{
	"dialTimeout": "5s", "readTimeout": "3s", "writeTimeout": "3s",
	"poolTimeout": "5s", "maxRetries": 0,
}

// pullSample is one pull request's latency and answer.
type pullSample struct {
	at      time.Time
	latency time.Duration
	status  int
}

// pullLoad runs workers that pull (HEAD the layer, GET the manifest) from
// base until stop closes, and returns every request's sample.
func pullLoad(base, repo, layer string, workers int, stop <-chan struct{}) func() []pullSample {
	var mu sync.Mutex
	var samples []pullSample
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	reqs := []struct{ method, path string }{
		{http.MethodHead, "/v2/" + repo + "/blobs/" + layer},
		{http.MethodGet, "/v2/" + repo + "/manifests/latest"},
	}
	for w := range workers {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := reqs[i%len(reqs)]
				req, _ := http.NewRequest(r.method, base+r.path, nil)
				req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
				start := time.Now()
				s := pullSample{at: start}
				resp, err := client.Do(req)
				s.latency = time.Since(start)
				if err == nil {
					s.status = resp.StatusCode
					_ = resp.Body.Close()
				}
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		})
	}
	return func() []pullSample {
		wg.Wait()
		return samples
	}
}

// median of the samples' latencies in [from, to), and how many failed.
func median(samples []pullSample, from, to time.Time) (time.Duration, int, int) {
	var l []time.Duration
	failed := 0
	for _, s := range samples {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		l = append(l, s.latency)
		if s.status != http.StatusOK {
			failed++
		}
	}
	if len(l) == 0 {
		return 0, 0, 0
	}
	slices.Sort(l)
	return l[len(l)/2], len(l), failed
}

// TestRegistryRedisFallback runs the bundle's registry binary twice, with
// the chart's redis values and with the untuned ones, against one real
// redis-server, under a steady pull load; kills redis-server (by the PID
// this test started) and measures again. Pulls keep working without Redis,
// and with the chart's values a dead Redis costs milliseconds: the figures
// of both, side by side in one run, are logged.
func TestRegistryRedisFallback(t *testing.T) {
	testenv.File(t, redisServerBin, "redis-server")
	bin := bundledRegistry(t)
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := waitContext(t, 2*time.Minute)
	redisDir := t.TempDir()
	redisAddr, redisProc := startRedis(t, ctx, []string{redisConfig(t, redisDir, creds.RedisPassword())}, redisDir, creds.RedisPassword())

	type registry struct {
		name  string
		url   string
		repo  string
		layer string
		load  func() []pullSample
	}
	start := func(label string, redis map[string]any, db int) *registry {
		r := map[string]any{"externalAddress": redisAddr, "db": db}
		for k, v := range redis {
			r[k] = v
		}
		values := withValues(map[string]any{"redis": r, "log": map[string]any{"level": "error", "accessLog": false}})
		config, env := chartRegistry(t, values, creds)
		httpAddr := loopbackAddr(t)
		env["REGISTRY_HTTP_ADDR"] = httpAddr
		env["REGISTRY_HTTP_DEBUG_ADDR"] = loopbackAddr(t)
		env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = t.TempDir()
		p := startRegistryProcess(t, bin, withoutAuth(t, config), env, httpAddr)

		img, err := random.Image(4096, 1)
		if err != nil {
			t.Fatal(err)
		}
		host := strings.TrimPrefix(p.URL, "http://")
		ref, err := name.ParseReference(host+"/fallback/"+label+":latest", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			t.Fatalf("push to the %s registry: %v\n%s", label, err, p.logs.String())
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		dg, err := layers[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		return &registry{name: label, url: p.URL, repo: "fallback/" + label, layer: dg.String()}
	}
	regs := []*registry{start("chart", nil, 0), start("untuned", untunedRedis, 1)}

	const workers = 4
	stop := make(chan struct{})
	for _, r := range regs {
		r.load = pullLoad(r.url, r.repo, r.layer, workers, stop)
	}
	// A second to fill the cache, two with Redis up, then Redis dies.
	time.Sleep(time.Second)
	upFrom := time.Now()
	time.Sleep(2 * time.Second)
	killed := time.Now()
	if err := redisProc.Kill(); err != nil {
		t.Fatal(err)
	}
	for {
		c, err := net.DialTimeout("tcp", redisAddr, time.Second)
		if err != nil {
			break
		}
		_ = c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(4 * time.Second)
	close(stop)
	end := time.Now()

	up, down := map[string]time.Duration{}, map[string]time.Duration{}
	var report strings.Builder
	for _, r := range regs {
		samples := r.load()
		var n1, n2, f1, f2 int
		up[r.name], n1, f1 = median(samples, upFrom, killed)
		down[r.name], n2, f2 = median(samples, killed, end)
		if f1+f2 > 0 || n1 == 0 || n2 == 0 {
			t.Errorf("%s registry: %d of %d pulls failed with Redis up, %d of %d with Redis dead", r.name, f1, n1, f2, n2)
		}
		fmt.Fprintf(&report, "%-8s Redis up: median %v (%d pulls); Redis dead: median %v (%d pulls); dead/up %.1fx\n",
			r.name, up[r.name], n1, down[r.name], n2, float64(down[r.name])/float64(max(up[r.name], time.Microsecond)))
	}
	fmt.Fprintf(&report, "dead Redis, untuned/chart: %.1fx", float64(down["untuned"])/float64(max(down["chart"], time.Microsecond)))
	t.Log("\n" + report.String())
	// Generous bounds, not a timing race: without Redis a pull costs the
	// chart's registry well under 100 ms, and far less than the untuned one.
	if down["chart"] > 100*time.Millisecond {
		t.Errorf("with Redis dead the chart's registry answers in a median %v, want under 100ms", down["chart"])
	}
	if down["chart"]*4 > down["untuned"] {
		t.Errorf("with Redis dead the chart's registry (median %v) is not clearly faster than the untuned one (%v)", down["chart"], down["untuned"])
	}
}
