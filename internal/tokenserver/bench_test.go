package tokenserver

// Benchmarks (they print figures and assert no speed):
//
//	go test ./internal/tokenserver -run '^$' -bench . -benchtime 1x
//
// BenchmarkRegistryAuth sends authenticated HEAD blob and GET manifest
// requests, 16 at a time, to the real registry (in process) with htpasswd
// at bcrypt cost 10 (the chart's), with token auth (one token, reused as
// clients do for its lifetime) and without auth, side by side in one run,
// and reports throughput, p50/p99 latency and the process's CPU time per
// request (registry and client together: they share the process).
// BenchmarkTokenRequest measures a token request with bcrypt and from the
// verification cache.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"
)

const benchWorkers = 16

// benchRun is the outcome of bursts of requests.
type benchRun struct {
	elapsed   time.Duration
	cpu       time.Duration // the process's user and system time
	latencies []time.Duration
}

func (r benchRun) rps() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

func (r benchRun) cpuPerRequest() time.Duration {
	return (r.cpu / time.Duration(len(r.latencies))).Round(time.Microsecond)
}

func (r benchRun) percentile(p int) time.Duration {
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	return l[len(l)*p/100].Round(time.Microsecond)
}

// processCPU is the process's user and system time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRequest is one kind of request the benchmark sends.
type benchRequest struct {
	name, method, path string
}

// send sends n requests req to host with the Authorization header authz,
// benchWorkers at a time, and adds them to run; every answer must be 200.
func send(ctx context.Context, b *testing.B, run *benchRun, host, authz string, req benchRequest, n int) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchWorkers}}
	defer client.CloseIdleConnections()
	latencies := make([]time.Duration, n)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	cpu := processCPU(b)
	start := time.Now()
	for range benchWorkers {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				r, err := http.NewRequestWithContext(gctx, req.method, "http://"+host+req.path, nil)
				if err != nil {
					return err
				}
				r.Header.Set("Authorization", authz)
				r.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
				t0 := time.Now()
				resp, err := client.Do(r)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				latencies[i] = time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s: %s", req.name, resp.Status)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	run.elapsed += time.Since(start)
	run.cpu += processCPU(b) - cpu
	run.latencies = append(run.latencies, latencies...)
	return nil
}

func BenchmarkRegistryAuth(b *testing.B) {
	const user, password = "alice", "alice-Secret-1"
	img, err := random.Image(256, 1)
	if err != nil {
		b.Fatal(err)
	}
	layers, _ := img.Layers()
	blob, _ := layers[0].Digest()
	push := func(host string, auth authn.Authenticator) {
		ref, err := name.ParseReference(host+"/bench/app:v1", name.Insecure)
		if err != nil {
			b.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
			b.Fatalf("push: %v", err)
		}
	}
	// htpasswd: the chart's cost; bcrypt on every request.
	htHost := startRegistry(b, nil, func(string) string {
		return fmt.Sprintf("  htpasswd:\n    realm: bench\n    path: %s\n", writeHtpasswd(b, user, password, bcrypt.DefaultCost))
	})
	push(htHost, &authn.Basic{Username: user, Password: password})
	htAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))

	// no auth: the ceiling.
	noHost := startRegistry(b, nil, func(string) string { return "" })
	push(noHost, authn.Anonymous)

	// token: the same user (admin) at the same cost in the users file.
	s := startTokenService(b, bcrypt.DefaultCost)
	tokHost := startRegistry(b, s.Handler, tokenAuthYAML(s, "rootcertbundle"))
	push(tokHost, &authn.Basic{Username: user, Password: password})
	status, body, raw := s.getToken(b, user, password, "repository:bench/app:pull")
	if status != http.StatusOK {
		b.Fatalf("token: %d %s", status, raw)
	}
	tokAuth := "Bearer " + body["token"].(string)

	// Interleaved rounds, so that a busy neighbour on the machine slows
	// every mode alike.
	const rounds, htRequests, fastRequests = 4, 40, 2000
	ctx := context.Background()
	modes := []struct {
		name, host, authz string
		n                 int
	}{
		{fmt.Sprintf("htpasswd (bcrypt cost %d)", bcrypt.DefaultCost), htHost, htAuth, htRequests},
		{"token (ES256 JWT)", tokHost, tokAuth, fastRequests},
		{"no auth", noHost, "", fastRequests},
	}
	for b.Loop() {
		for _, req := range []benchRequest{
			{"HEAD blob", http.MethodHead, "/v2/bench/app/blobs/" + blob.String()},
			{"GET manifest", http.MethodGet, "/v2/bench/app/manifests/v1"},
		} {
			runs := make([]benchRun, len(modes))
			for range rounds {
				for i, m := range modes {
					if err := send(ctx, b, &runs[i], m.host, m.authz, req, m.n); err != nil {
						b.Fatalf("%s: %v", m.name, err)
					}
				}
			}
			b.Logf("%s, %d connections, registry and client in one process, %d interleaved rounds:", req.name, benchWorkers, rounds)
			for i, m := range modes {
				r := runs[i]
				b.Logf("  %-26s %6d requests %8.1f req/s  p50 %-10v p99 %-10v CPU/request %v", m.name, len(r.latencies), r.rps(), r.percentile(50), r.percentile(99), r.cpuPerRequest())
			}
			ht, tok, none := runs[0], runs[1], runs[2]
			b.Logf("  token / htpasswd: %.1fx; token / no auth: %.2f", tok.rps()/ht.rps(), tok.rps()/none.rps())
		}
	}
}

// BenchmarkTokenRequest: GET /token at bcrypt cost 10, with the cache
// emptied before each request ("bcrypt") and warm ("cached").
func BenchmarkTokenRequest(b *testing.B) {
	s := startTokenService(b, bcrypt.DefaultCost)
	q := url.Values{"service": {s.Service}, "scope": {"repository:app:pull"}}
	get := func() {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/token?"+q.Encode(), nil)
		if err != nil {
			b.Fatal(err)
		}
		req.SetBasicAuth("puller", "puller-Secret-3")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("token: %s", resp.Status)
		}
	}
	b.Run("bcrypt", func(b *testing.B) {
		for b.Loop() {
			s.Users.cache.clear()
			get()
		}
	})
	b.Run("cached", func(b *testing.B) {
		get()
		for b.Loop() {
			get()
		}
	})
}
