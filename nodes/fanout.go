package nodes

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Result is one host's outcome of ForEach.
type Result struct {
	Host     *Host
	Err      error
	Duration time.Duration
}

// ForEach runs fn for every host, at most parallel at a time (all at once
// when parallel < 1), and returns one Result per host in the order of
// hosts: every host's outcome, not just the first failure. Hosts not yet
// started when ctx ends get ctx's error. A panic in fn becomes that host's
// error.
func ForEach(ctx context.Context, hosts []*Host, parallel int, fn func(context.Context, *Host) error) []Result {
	results := make([]Result, len(hosts))
	each(len(hosts), parallel, func(i int) {
		results[i].Host = hosts[i]
		start := time.Now()
		if err := ctx.Err(); err != nil {
			results[i].Err = err
			return
		}
		results[i].Err = protect(func() error { return fn(ctx, hosts[i]) })
		results[i].Duration = time.Since(start)
	})
	return results
}

// Errors joins the failed results' errors; nil when all succeeded.
func Errors(results []Result) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// Connect dials every config, at most parallel at a time, and returns the
// hosts and errors index by index: hosts[i] is nil exactly when errs[i] is
// not.
func Connect(ctx context.Context, cfgs []Config, parallel int, opts ...Option) ([]*Host, []error) {
	o := buildOptions(opts)
	hosts := make([]*Host, len(cfgs))
	errs := make([]error, len(cfgs))
	each(len(cfgs), parallel, func(i int) {
		errs[i] = protect(func() error {
			h, err := dial(ctx, cfgs[i], o)
			hosts[i] = h
			return err
		})
	})
	return hosts, errs
}

// each calls fn(i) for i in [0,n), at most parallel at once, and waits.
func each(n, parallel int, fn func(i int)) {
	if parallel < 1 || parallel > n {
		parallel = n
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// protect turns a panic in f into an error.
func protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}
