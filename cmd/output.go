package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bootctl/boot/internal/run"
)

// jsonEvent is an event as one JSON line, for tools following the run.
type jsonEvent struct {
	Time     time.Time  `json:"time"`
	Phase    string     `json:"phase"`
	Host     string     `json:"host,omitempty"`
	Status   run.Status `json:"status"` // ok, planned, changed, warning, failed
	Message  string     `json:"message,omitempty"`
	Duration float64    `json:"duration_s"`
}

// printer renders a run's events in the chosen format: in text, one line for
// a person; in JSON, one object per line. It is safe for concurrent use.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	now  func() time.Time
}

func newPrinter(w io.Writer, format string) *printer {
	return &printer{w: w, json: format == "json", now: time.Now}
}

// Emit renders e; it is a run.Reporter.
func (p *printer) Emit(e run.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(jsonEvent{Time: p.now(), Phase: e.Phase, Host: e.Host, Status: e.Status, Message: e.Message, Duration: e.Duration.Seconds()})
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
		f, err := openLogFile(g.LogFile)
		if err != nil {
			return nil, nil, withExit(ExitInvalid, err)
		}
		handlers = append(handlers, slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
		closeFn = f.Close
	}
	return slog.New(slog.NewMultiHandler(handlers...)), closeFn, nil
}

// openLogFile opens the --log-file for appending, creating it 0600. boot
// often runs as root, so the name must not lead elsewhere: a symbolic link
// is not followed, only a regular file is written, a file another user owns
// is refused, and an existing file of ours is made 0600.
func openLogFile(path string) (*os.File, error) {
	// O_NONBLOCK: opening a named pipe must not wait for a reader.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o600)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("--log-file %s is a symbolic link; refusing to follow it (name the file itself)", path)
	case errors.Is(err, syscall.ENXIO):
		return nil, fmt.Errorf("--log-file %s is not a regular file", path)
	case err != nil:
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	owner := st.Sys().(*syscall.Stat_t).Uid
	switch {
	case !st.Mode().IsRegular():
		err = fmt.Errorf("--log-file %s is not a regular file", path)
	case int(owner) != os.Geteuid():
		err = fmt.Errorf("--log-file %s belongs to uid %d, not to this user (uid %d); refusing to write a log into it", path, owner, os.Geteuid())
	case st.Mode().Perm() != 0o600:
		if err = f.Chmod(0o600); err != nil {
			err = fmt.Errorf("--log-file: %w", err)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
