package bootstrap

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The API server's version is its static pod's image tag, as kubeadm writes
// it (with or without a digest); a manifest without that container or with
// a tag that is no version is an error naming it.
func TestParseAPIServerVersion(t *testing.T) {
	manifest := func(container, image string) []byte {
		return []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - name: " + container + "\n    image: " + image + "\n")
	}
	for _, c := range []struct {
		raw  []byte
		want string
		err  string
	}{
		{manifest("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.36.3"), "v1.36.3", ""},
		{manifest("kube-apiserver", "172.29.40.2:5000/kube-apiserver:v1.37.2@sha256:"+strings.Repeat("a", 64)), "v1.37.2", ""},
		{manifest("kube-apiserver", "172.29.40.2:5000/kube-apiserver"), "", "whose tag is no Kubernetes version"},
		{manifest("kube-apiserver", "registry.k8s.io/kube-apiserver:latest"), "", "whose tag is no Kubernetes version"},
		{manifest("etcd", "registry.k8s.io/etcd:3.6.5-0"), "", "no container named kube-apiserver"},
		{[]byte("{"), "", "the API server's manifest"},
	} {
		got, err := parseAPIServerVersion(c.raw)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %q, %v; want %q, error containing %q", c.raw, got, err, c.want, c.err)
		}
	}
}

// Workers upgrade MaxUnavailable at a time, and once one failed the ones
// not started yet are not started, each saying which one failed.
func TestUpgradeGate(t *testing.T) {
	for _, slots := range []int{1, 2} {
		g := &upgradeGate{slots: make(chan struct{}, slots)}
		var running, most atomic.Int32
		var wg sync.WaitGroup
		for i := range 6 {
			ch := g.wrap("w"+string(rune('1'+i)), Change{Apply: func(context.Context) error {
				n := running.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
				running.Add(-1)
				return nil
			}})
			wg.Add(1)
			go func() { defer wg.Done(); ch.Apply(context.Background()) }()
		}
		wg.Wait()
		if int(most.Load()) != slots {
			t.Errorf("max unavailable %d: at most %d ran at once", slots, most.Load())
		}
	}

	g := &upgradeGate{slots: make(chan struct{}, 1)}
	boom := errors.New("drain failed")
	if err := g.wrap("w2", Change{Apply: func(context.Context) error { return boom }}).Apply(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("the failing worker: %v", err)
	}
	ran := false
	err := g.wrap("w3", Change{Apply: func(context.Context) error { ran = true; return nil }}).Apply(context.Background())
	if ran || err == nil || !strings.Contains(err.Error(), "not started: the upgrade of w2 failed") {
		t.Errorf("after w2 failed, w3: ran %v, %v", ran, err)
	}
}
