package bootstrap

import (
	"sync"

	"github.com/bootctl/boot/internal/run"
)

// recorder collects a run's events.
type recorder struct {
	mu     sync.Mutex
	events []run.Event
}

func (r *recorder) report(e run.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}
