package verify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/bootctl/boot/addons"
)

// pushPull logs in, pushes a small generated image, pulls it back, compares
// digests and deletes it again.
func (c *checks) pushPull(ctx context.Context, registry string, opts []name.Option, tr http.RoundTripper, creds *addons.RegistryCredentials) {
	ref, err := name.NewTag(registry+"/boot-verify/probe:"+strconv.FormatInt(time.Now().Unix(), 10), opts...)
	if err != nil {
		c.fail("push", err.Error())
		return
	}
	ro := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr),
		remote.WithAuth(&authn.Basic{Username: creds.Username(), Password: creds.Password()})}
	// Without credentials the registry must refuse: 401.
	_, err = remote.Head(ref, remote.WithContext(ctx), remote.WithTransport(tr))
	var refused *transport.Error
	switch {
	case errors.As(err, &refused) && refused.StatusCode == http.StatusUnauthorized:
		c.ok("auth", "refused without credentials")
	case err == nil:
		c.fail("auth", "the registry answered without credentials")
	default:
		c.fail("auth", fmt.Sprintf("asked without credentials: %v (want 401 Unauthorized)", err))
	}
	img, err := random.Image(64<<10, 2)
	if err != nil {
		c.fail("push", err.Error())
		return
	}
	want, _ := img.Digest()
	pushStart := time.Now()
	if err := remote.Write(ref, img, ro...); err != nil {
		c.fail("push", fmt.Sprintf("push %s as %s: %v", ref, creds.Username(), err))
		return
	}
	c.ok("push", fmt.Sprintf("pushed %s as %s (%s)", ref, creds.Username(), time.Since(pushStart).Round(time.Millisecond)))
	pulled, err := remote.Image(ref, ro...)
	if err == nil {
		var got v1.Hash
		if got, err = pulled.Digest(); err == nil && got != want {
			err = fmt.Errorf("digest %s, pushed %s", got, want)
		}
	}
	if err == nil {
		err = ReadLayers(pulled)
	}
	if err != nil {
		c.fail("pull", fmt.Sprintf("pull %s: %v", ref, err))
		return
	}
	c.ok("pull", "pulled it back whole, digest "+want.String())
	if err := remote.Delete(ref.Context().Digest(want.String()), ro...); err != nil {
		c.warn("cleanup", fmt.Sprintf("delete %s: %v (the next garbage collection removes it once untagged)", ref, err))
	}
}

// ReadLayers reads every layer of img, so that a missing blob shows.
func ReadLayers(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// cache reads the registry's blob-descriptor cache counters from its
// metrics at url.
func (c *checks) cache(ctx context.Context, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		c.warn("cache", err.Error())
		return
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		c.warn("cache", "the registry's metrics: "+err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		c.warn("cache", "the registry's metrics are off (metrics.enabled): cannot tell whether the "+c.cacheName+" cache is used")
		return
	}
	if resp.StatusCode != http.StatusOK {
		c.warn("cache", "the registry's metrics: "+resp.Status)
		return
	}
	counters := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && strings.HasPrefix(f[0], "registry_storage_cache_") {
			v, _ := strconv.ParseFloat(f[1], 64)
			counters[f[0]] = v
		}
	}
	requests, hits := counters["registry_storage_cache_requests_total"], counters["registry_storage_cache_hits_total"]
	if requests == 0 {
		c.warn("cache", "the "+c.cacheName+" blob-descriptor cache has served no request")
		return
	}
	c.ok("cache", fmt.Sprintf("%s blob-descriptor cache in use: %.0f requests, %.0f hits (%.0f%%), %.0f errors",
		c.cacheName, requests, hits, 100*hits/requests, counters["registry_storage_cache_errors_total"]))
}
