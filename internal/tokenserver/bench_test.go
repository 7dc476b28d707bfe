package tokenserver

// Benchmarks (they print figures and assert no speed):
//
//	go test ./internal/tokenserver -run '^$' -bench . -benchtime 1x
//
// BenchmarkRegistryAuth sends authenticated HEAD manifest requests, 16 at a
// time, to the real registry (in process) with htpasswd at bcrypt cost 10
// (the chart's), with token auth (one token, reused as clients do for its
// lifetime) and without auth, side by side in one run. BenchmarkTokenRequest measures a
// token request with bcrypt and from the verification cache.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"
)

const benchWorkers = 16

// headRun is the outcome of bursts of requests.
type headRun struct {
	elapsed   time.Duration
	latencies []time.Duration
}

func (r headRun) rps() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

func (r headRun) percentile(p int) time.Duration {
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	return l[len(l)*p/100].Round(time.Microsecond)
}

// headManifests sends n HEAD requests for bench/app:v1 to host with the
// Authorization header authz, benchWorkers at a time, and adds them to run;
// every answer must be 200.
func headManifests(ctx context.Context, run *headRun, host, authz string, n int) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchWorkers}}
	defer client.CloseIdleConnections()
	latencies := make([]time.Duration, n)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range benchWorkers {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				req, err := http.NewRequestWithContext(gctx, http.MethodHead, "http://"+host+"/v2/bench/app/manifests/v1", nil)
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", authz)
				req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				latencies[i] = time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("HEAD manifest: %s", resp.Status)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	run.elapsed += time.Since(start)
	run.latencies = append(run.latencies, latencies...)
	return nil
}

func BenchmarkRegistryAuth(b *testing.B) {
	const user, password = "alice", "alice-Secret-1"
	// htpasswd: the chart's cost; bcrypt on every request.
	htHost := startRegistry(b, nil, func(string) string {
		return fmt.Sprintf("  htpasswd:\n    realm: bench\n    path: %s\n", writeHtpasswd(b, user, password, bcrypt.DefaultCost))
	})
	pushTestImage(b, htHost, &authn.Basic{Username: user, Password: password})
	htAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))

	// no auth: the ceiling.
	noHost := startRegistry(b, nil, func(string) string { return "" })
	pushTestImage(b, noHost, authn.Anonymous)

	// token: the same user (admin) at the same cost in the users file.
	s := startTokenService(b, bcrypt.DefaultCost)
	tokHost := startRegistry(b, s.Handler, tokenAuthYAML(s, "rootcertbundle"))
	pushTestImage(b, tokHost, &authn.Basic{Username: user, Password: password})
	status, body, raw := s.getToken(b, user, password, "repository:bench/app:pull")
	if status != http.StatusOK {
		b.Fatalf("token: %d %s", status, raw)
	}
	tokAuth := "Bearer " + body["token"].(string)

	// Interleaved rounds, so that a busy neighbour on the machine slows
	// every mode alike.
	const rounds, htRequests, fastRequests = 4, 40, 2000
	ctx := context.Background()
	for b.Loop() {
		var ht, tok, none headRun
		for range rounds {
			if err := headManifests(ctx, &ht, htHost, htAuth, htRequests); err != nil {
				b.Fatalf("htpasswd: %v", err)
			}
			if err := headManifests(ctx, &tok, tokHost, tokAuth, fastRequests); err != nil {
				b.Fatalf("token: %v", err)
			}
			if err := headManifests(ctx, &none, noHost, "", fastRequests); err != nil {
				b.Fatalf("no auth: %v", err)
			}
		}
		b.Logf("HEAD manifest, %d connections, registry and client in one process, %d interleaved rounds:", benchWorkers, rounds)
		for _, r := range []struct {
			mode string
			run  headRun
		}{{fmt.Sprintf("htpasswd (bcrypt cost %d)", bcrypt.DefaultCost), ht}, {"token (ES256 JWT)", tok}, {"no auth", none}} {
			b.Logf("  %-26s %6d requests %8.1f req/s  p50 %-10v p99 %v", r.mode, len(r.run.latencies), r.run.rps(), r.run.percentile(50), r.run.percentile(99))
		}
		b.Logf("  token / htpasswd: %.1fx; token / no auth: %.2f", tok.rps()/ht.rps(), tok.rps()/none.rps())
		b.ReportMetric(ht.rps(), "htpasswd-req/s")
		b.ReportMetric(tok.rps(), "token-req/s")
		b.ReportMetric(none.rps(), "noauth-req/s")
		b.ReportMetric(tok.rps()/ht.rps(), "token/htpasswd")
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
