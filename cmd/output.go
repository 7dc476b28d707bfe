package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Event is one step of a run as boot reports it: in text, one line for a
// person; in JSON, one object per line for tools following the run.
type Event struct {
	Time     time.Time     `json:"time"`
	Phase    string        `json:"phase"`
	Host     string        `json:"host,omitempty"`
	Status   string        `json:"status"` // ok, planned, changed, warning, failed
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"-"`
}

// MarshalJSON writes the duration in seconds, which tools read more easily.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		plain
		Seconds float64 `json:"duration_s"`
	}{plain(e), e.Duration.Seconds()})
}

// printer renders events in the chosen format; safe for concurrent use.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	now  func() time.Time
}

func newPrinter(w io.Writer, format string) *printer {
	return &printer{w: w, json: format == "json", now: time.Now}
}

func (p *printer) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(e)
		if err != nil { // cannot happen for this type; say so rather than drop the event
			b = []byte(fmt.Sprintf(`{"status":"failed","message":%q}`, err.Error()))
		}
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-9s", e.Phase, e.Status)
	if e.Host != "" {
		fmt.Fprintf(&b, " [%s]", e.Host)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, " %s", e.Message)
	}
	if e.Duration > 0 {
		fmt.Fprintf(&b, " (%s)", e.Duration.Round(time.Millisecond))
	}
	fmt.Fprintln(p.w, b.String())
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: expected debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger builds the run's logger: stderr at the chosen level, plus, with
// --log-file, every record at debug level in that file. The returned function
// closes the file.
func (g *globals) newLogger() (*slog.Logger, func() error, error) {
	level, err := parseLevel(g.LogLevel)
	if err != nil {
		return nil, nil, withExit(ExitInvalid, err)
	}
	handlers := []slog.Handler{slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})}
	closeFn := func() error { return nil }
	if g.LogFile != "" {
		f, err := os.OpenFile(g.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		handlers = append(handlers, slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
		closeFn = f.Close
	}
	return slog.New(slog.NewMultiHandler(handlers...)), closeFn, nil
}
