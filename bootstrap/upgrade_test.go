package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/run"
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

// Workers upgrade in the plan's order, MaxUnavailable at a time (the
// runner starting them in order, with fewer slots than workers or more),
// and once one failed, or panicked, the ones not started yet are not
// started, each saying which one failed.
func TestUpgradeGate(t *testing.T) {
	for _, c := range []struct{ slots, parallel int }{{1, 10}, {2, 10}, {1, 1}, {2, 3}} {
		g := newUpgradeGate(6, c.slots)
		var running, most atomic.Int32
		var mu sync.Mutex
		var started []int
		changes := make([]Change, 6)
		for i := range changes {
			changes[i] = g.wrap(i, fmt.Sprintf("w%d", i+1), Change{Apply: func(context.Context) error {
				mu.Lock()
				started = append(started, i)
				mu.Unlock()
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
		}
		run.Parallel(len(changes), c.parallel, func(i int) error { return changes[i].Apply(context.Background()) })
		if int(most.Load()) != min(c.slots, c.parallel) {
			t.Errorf("max unavailable %d, parallel %d: at most %d ran at once", c.slots, c.parallel, most.Load())
		}
		if c.slots == 1 && !slices.Equal(started, []int{0, 1, 2, 3, 4, 5}) {
			t.Errorf("max unavailable 1, parallel %d: started in the order %v", c.parallel, started)
		}
	}

	for _, fail := range []func() error{
		func() error { return errors.New("drain failed") },
		func() error { panic("lost") },
	} {
		g := newUpgradeGate(3, 1)
		ran := false
		changes := []Change{
			g.wrap(0, "w1", Change{Apply: func(context.Context) error { return nil }}),
			g.wrap(1, "w2", Change{Apply: func(context.Context) error { return fail() }}),
			g.wrap(2, "w3", Change{Apply: func(context.Context) error { ran = true; return nil }}),
		}
		errs := run.Parallel(3, 10, func(i int) error { return changes[i].Apply(context.Background()) })
		if errs[0] != nil || errs[1] == nil || ran || errs[2] == nil || !strings.Contains(errs[2].Error(), "not started: the upgrade of w2 failed") {
			t.Errorf("after w2 failed: %v; w3 ran %v", errs, ran)
		}
	}
}
