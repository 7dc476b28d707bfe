package run

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// Parallel calls fn(i) for i in [0, n), at most limit at a time (all at
// once when limit < 1), starting them in index order, and returns each
// call's error at its index. A panic in a call becomes that call's error,
// with the stack, instead of ending the process. (In order: a call may wait
// for an earlier one without ever holding the slot that one needs.)
func Parallel(n, limit int, fn func(i int) error) []error {
	errs := make([]error, n)
	if limit < 1 || limit > n {
		limit = n
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = Protect(func() error { return fn(i) })
		})
	}
	wg.Wait()
	return errs
}

// Protect calls f and turns a panic in it into an error.
func Protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}
