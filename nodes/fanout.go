package nodes

import (
	"context"
	"errors"
	"time"

	irun "github.com/bootctl/boot/internal/run" // nodes has its own type run
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
	errs := irun.Parallel(len(hosts), parallel, func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		defer func() { results[i].Duration = time.Since(start) }()
		return fn(ctx, hosts[i])
	})
	for i, err := range errs {
		results[i].Host, results[i].Err = hosts[i], err
	}
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
// not. A panic while dialing becomes that host's error.
func Connect(ctx context.Context, cfgs []Config, parallel int, opts ...Option) ([]*Host, []error) {
	o := buildOptions(opts)
	hosts := make([]*Host, len(cfgs))
	errs := irun.Parallel(len(cfgs), parallel, func(i int) error {
		h, err := dial(ctx, cfgs[i], o)
		hosts[i] = h
		return err
	})
	return hosts, errs
}
