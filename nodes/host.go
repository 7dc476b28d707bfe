package nodes

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/internal/quote"
)

// Host is one connected host. It keeps a single SSH connection (redialled
// once it is found dead) and runs any number of concurrent commands on it,
// at most WithMaxSessions at a time. Its methods are safe for concurrent use.
type Host struct {
	cfg      Config
	log      *slog.Logger
	output   io.Writer
	retry    Retry
	keep     time.Duration
	sessions chan struct{}

	mu     sync.Mutex
	conn   *conn
	closed bool

	factsMu sync.Mutex
	facts   *Facts
}

// Name is the host's name from its Config.
func (h *Host) Name() string { return h.cfg.Name }

// Config is the host's defaulted connection settings.
func (h *Host) Config() Config { return h.cfg }

// IsRoot reports whether commands run as root without sudo.
func (h *Host) IsRoot() bool { return h.cfg.User == "root" }

// Close ends the connection. Commands still running fail.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	return h.conn.close()
}

// session opens a session, redialling first if the connection has died.
// release must be called when the session is over.
func (h *Host) session(ctx context.Context) (sess *ssh.Session, release func(), err error) {
	select {
	case h.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	// free, not the result release (nil when an error is returned), gives
	// the slot back on failure.
	free := func() { <-h.sessions }
	defer func() {
		if err != nil {
			free()
		}
	}()
	for try := 0; ; try++ {
		c, err := h.live(ctx)
		if err != nil {
			return nil, nil, err
		}
		sess, err = c.client.NewSession()
		if err == nil {
			return sess, free, nil
		}
		if try > 0 || !waitDead(c) {
			return nil, nil, &Error{Host: h.cfg.Name, Op: "open session", Kind: ErrUnreachable, Err: err}
		}
	}
}

// live returns the host's connection, redialling first if it has died.
func (h *Host) live(ctx context.Context) (*conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errors.New("host connection is closed")
	}
	if h.conn.dead() {
		h.log.Info("connection lost, reconnecting")
		nc, err := h.connect(ctx)
		if err != nil {
			return nil, err
		}
		h.conn = nc
	}
	return h.conn, nil
}

// waitDead reports whether c ends within a moment: a failed NewSession on a
// dying connection is seen slightly before the connection's end.
func waitDead(c *conn) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// RunOption tunes one Run, Sudo or Upload.
type RunOption func(*runOpts)

type runOpts struct {
	stdin  io.Reader
	stream io.Writer
	label  string
	redact []string
	root   bool
}

// Stdin feeds r to the command's standard input.
func Stdin(r io.Reader) RunOption { return func(o *runOpts) { o.stdin = r } }

// Stream sends this command's output lines to w instead of the host's
// default output; nil turns streaming off.
func Stream(w io.Writer) RunOption { return func(o *runOpts) { o.stream = w } }

// Label names the command in logs and errors instead of its text; use it
// for long commands and for commands that carry secrets.
func Label(s string) RunOption { return func(o *runOpts) { o.label = s } }

// Redact replaces each of the given strings by "***" in the streamed and
// captured output, logs and errors of this command.
func Redact(secrets ...string) RunOption {
	return func(o *runOpts) { o.redact = append(o.redact, secrets...) }
}

// AsRoot runs the command as root: directly when the SSH user is root,
// otherwise through sudo.
func AsRoot() RunOption { return func(o *runOpts) { o.root = true } }

// Output is what a command printed, and how it ended.
type Output struct {
	Stdout     string
	Stderr     string
	ExitStatus int
	Duration   time.Duration
}

// Sudo is Run with AsRoot.
func (h *Host) Sudo(ctx context.Context, cmd string, opts ...RunOption) (Output, error) {
	return h.Run(ctx, cmd, append(opts, AsRoot())...)
}

// Run runs cmd with the login user's shell and waits for it, streaming its
// output line by line (stdout and stderr, in order within each) prefixed
// "[name] ", and returns what it printed. A non-zero exit is an *ExitError.
// When ctx ends first, the remote command and the processes it started are
// sent SIGTERM, the session is closed, and the error wraps ErrTimeout (on a
// deadline) or context.Canceled.
//
// With AsRoot and a non-root user, cmd runs as `sudo -n` or, when a sudo
// password is configured, `sudo -S` with the password written to standard
// input only after sudo has asked for it, so it never reaches the command.
func (h *Host) Run(ctx context.Context, cmd string, opts ...RunOption) (Output, error) {
	ro := runOpts{stream: h.output}
	for _, o := range opts {
		o(&ro)
	}
	var sudoPw []byte
	sudo := ro.root && !h.IsRoot()
	if sudo && h.cfg.SudoPassword != nil {
		pw, err := h.cfg.SudoPassword()
		if err != nil {
			return Output{}, &Error{Host: h.cfg.Name, Op: "sudo", Kind: ErrSudo, Err: fmt.Errorf("sudo password: %w", err)}
		}
		sudoPw = pw
		ro.redact = append(ro.redact, string(pw))
	}
	label := ro.label
	if label == "" {
		label = shorten(cmd)
	}
	label = redact(label, ro.redact)
	r := &run{h: h, opts: ro, label: label, sudo: sudo, password: sudoPw, nonce: nonce()}
	start := time.Now()
	out, err := r.do(ctx, cmd, start)
	out.Duration = time.Since(start)
	attrs := []any{"cmd", label, "took", out.Duration, "exit", out.ExitStatus}
	if ro.root {
		attrs = append(attrs, "root", true)
	}
	if err != nil {
		h.log.Debug("command failed", append(attrs, "error", err)...)
	} else {
		h.log.Debug("command done", attrs...)
	}
	return out, err
}

// run is one command execution.
type run struct {
	h        *Host
	opts     runOpts
	label    string
	sudo     bool
	password []byte
	nonce    string

	stdout, stderr strings.Builder
	wrapper        atomic.Int64  // the wrapper's PID on a root login, once seen
	started        chan struct{} // closed when the start marker is seen
	startOnce      sync.Once
	prompts        int
	rejected       bool
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *run) startMarker() string  { return "@@boot-start-" + r.nonce + "@@" }
func (r *run) promptMarker() string { return "@@boot-sudo-" + r.nonce + "@@" }
func (r *run) pidMarker() string    { return "@@boot-pid-" + r.nonce + "-" }

// groupScript runs the command ($1) in the background with the original
// standard input and waits for it; a TERM (sent on timeout) is passed to
// the whole process group, so children die too. (sshd signals only the
// process it started, and a shell runs its traps only once its foreground
// command has ended: the wrapper waits in the interruptible wait.)
//
// The command runs in a forked subshell of the wrapper, not in a second
// sh, which saves starting a shell per command. It sees what `sh -c`
// would give it: no positional parameters ($0 is sh) and the caller's
// stdin; but $$ is the wrapper's PID, as in any subshell, and $PPID the
// wrapper's parent (bash, which some make /bin/sh, refuses to assign
// PPID, so it is left alone).
const groupScript = `exec 3<&0; { eval 'set --;' "$1"; } 0<&3 3<&- & trap 'trap - TERM HUP INT; kill -TERM 0 2>/dev/null' TERM HUP INT; wait $!`

// commandLine wraps cmd for the login shell.
func (r *run) commandLine(cmd string) string {
	script := groupScript
	args := " sh " + quote.Shell(cmd)
	if !r.sudo {
		if r.h.IsRoot() {
			// For stop: sshd does not pass signals to a root login's
			// commands.
			script = "echo " + r.pidMarker() + "$$@@ >&2; " + script
		}
		return "sh -c " + quote.Shell(script) + args
	}
	script = "echo " + r.startMarker() + " >&2; " + script
	if r.password == nil {
		return "sudo -n -- sh -c " + quote.Shell(script) + args
	}
	// -k: ignore cached credentials, so sudo asks and we know it read the password.
	return "sudo -k -S -p " + quote.Shell(r.promptMarker()+"\n") + " -- sh -c " + quote.Shell(script) + args
}

func (r *run) fail(kind error, err error) error {
	return &Error{Host: r.h.cfg.Name, Op: "run " + r.label, Kind: kind, Err: err}
}

// do runs cmd in a new session: start it, feed its standard input, wait
// for it (stopping it when ctx ends) and tell how it ended.
func (r *run) do(ctx context.Context, cmd string, start time.Time) (Output, error) {
	if err := ctx.Err(); err != nil {
		return Output{}, r.fail(kindOf(err), err)
	}
	sess, release, err := r.h.session(ctx)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Output{}, err
		}
		return Output{}, r.fail(kindOf(err), err)
	}
	defer release()
	defer sess.Close()

	finished := make(chan struct{})
	defer close(finished)
	stdin, readers, err := r.start(sess, cmd)
	if err != nil {
		return Output{}, err
	}
	go r.feed(ctx, stdin, finished)

	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case werr := <-waited:
		readersDone(readers, 5*time.Second)
		return r.ended(werr)
	case <-ctx.Done():
		return r.stop(ctx, sess, waited, readers, start)
	}
}

// start opens the session's pipes, starts reading its output and starts
// the command.
func (r *run) start(sess *ssh.Session, cmd string) (io.WriteCloser, *sync.WaitGroup, error) {
	stdin, err := sess.StdinPipe()
	if err != nil {
		return nil, nil, r.fail(nil, err)
	}
	outPipe, err := sess.StdoutPipe()
	if err != nil {
		return nil, nil, r.fail(nil, err)
	}
	errPipe, err := sess.StderrPipe()
	if err != nil {
		return nil, nil, r.fail(nil, err)
	}
	r.started = make(chan struct{})
	if !r.sudo {
		close(r.started)
	}
	readers := &sync.WaitGroup{}
	readers.Add(2)
	go func() { defer readers.Done(); r.read(outPipe, false, stdin) }()
	go func() { defer readers.Done(); r.read(errPipe, true, stdin) }()
	if err := sess.Start(r.commandLine(cmd)); err != nil {
		return nil, nil, r.fail(ErrUnreachable, err)
	}
	return stdin, readers, nil
}

// feed writes the caller's standard input once the command itself is
// running (after sudo, when there is one), then closes it; it gives up
// when ctx ends or the run is finished first.
func (r *run) feed(ctx context.Context, stdin io.WriteCloser, finished <-chan struct{}) {
	select {
	case <-r.started:
	case <-ctx.Done():
		return
	case <-finished:
		return
	}
	if r.opts.stdin != nil {
		_, _ = io.Copy(stdin, r.opts.stdin)
	}
	stdin.Close()
}

// stop ends a command whose context ended: SIGTERM (passed by the wrapper
// to its whole process group), then the session is closed if it lingers.
// The error says whether it timed out or was cancelled.
func (r *run) stop(ctx context.Context, sess *ssh.Session, waited <-chan error, readers *sync.WaitGroup, start time.Time) (Output, error) {
	_ = sess.Signal(ssh.SIGTERM)
	if pid := r.wrapper.Load(); pid > 0 {
		// A root login: sshd ignored the signal ("session signalling
		// requires privilege separation"), so it is sent by kill.
		r.h.terminate(pid)
	}
	select {
	case <-waited:
	case <-time.After(2 * time.Second):
		sess.Close()
		select {
		case <-waited:
		case <-time.After(2 * time.Second):
		}
	}
	readersDone(readers, 2*time.Second)
	out := r.output(-1)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return out, r.fail(ErrTimeout, fmt.Errorf("timed out after %s; the command was stopped: %w", time.Since(start).Round(time.Millisecond), ctx.Err()))
	}
	return out, r.fail(nil, fmt.Errorf("cancelled; the command was stopped: %w", ctx.Err()))
}

// ended turns the session's end (werr from Wait) into the command's
// output and error: success, a lost connection, sudo failing before the
// command started, or the command's non-zero exit.
func (r *run) ended(werr error) (Output, error) {
	status, signal := 0, ""
	if werr != nil {
		var ee *ssh.ExitError
		if !errors.As(werr, &ee) {
			return r.output(-1), r.fail(ErrUnreachable, fmt.Errorf("connection lost while the command ran: %v", werr))
		}
		status, signal = ee.ExitStatus(), ee.Signal()
		if signal != "" {
			status = -1
		}
	}
	out := r.output(status)
	if status == 0 {
		return out, nil
	}
	select {
	case <-r.started:
	default:
		// sudo itself failed: the command never started.
		msg := strings.TrimSpace(redact(tail(out.Stderr), r.opts.redact))
		if r.rejected {
			msg = "sudo rejected the password"
		}
		return out, r.fail(ErrSudo, fmt.Errorf("sudo as %s failed: %s", r.h.cfg.User, msg))
	}
	return out, r.fail(nil, &ExitError{Status: status, Signal: signal, Stderr: strings.TrimSpace(tail(out.Stderr))})
}

// terminate sends SIGTERM to the process pid over a session of its own,
// waiting for it at most 2 seconds. It is not counted against
// WithMaxSessions: it is needed while all of them may be in use, and
// sshd's limit leaves room for it.
func (h *Host) terminate(pid int64) {
	h.mu.Lock()
	c := h.conn
	h.mu.Unlock()
	sess, err := c.client.NewSession()
	if err != nil {
		h.log.Debug("could not stop the command", "pid", pid, "error", err)
		return
	}
	defer sess.Close()
	done := make(chan error, 1)
	go func() { done <- sess.Run("kill -TERM " + strconv.FormatInt(pid, 10)) }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Second):
		err = errors.New("kill did not return within 2s")
	}
	if err != nil {
		h.log.Debug("could not stop the command", "pid", pid, "error", err)
	}
}

func readersDone(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// read consumes one output stream line by line: control lines from sudo
// and the wrapper are acted upon and dropped, the rest is captured and
// streamed.
func (r *run) read(pipe io.Reader, isErr bool, stdin io.WriteCloser) {
	br := bufio.NewReader(pipe)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if isErr && r.control(line, stdin) {
				continue
			}
			line = redact(line, r.opts.redact)
			r.h.capture(r, line, isErr)
		}
		if err != nil {
			return
		}
	}
}

// control handles sudo's prompt and the start and PID markers.
func (r *run) control(line string, stdin io.WriteCloser) bool {
	line = strings.TrimRight(line, "\r\n")
	if rest, ok := strings.CutPrefix(line, r.pidMarker()); ok && r.wrapper.Load() == 0 {
		if pid, err := strconv.ParseInt(strings.TrimSuffix(rest, "@@"), 10, 64); err == nil && pid > 1 {
			r.wrapper.Store(pid)
			return true
		}
	}
	switch line {
	case r.startMarker():
		r.startOnce.Do(func() { close(r.started) })
		return true
	case r.promptMarker():
		r.prompts++
		if r.prompts == 1 {
			_, _ = stdin.Write(append(append([]byte(nil), r.password...), '\n'))
		} else {
			// Asked again: the password was wrong. Give up rather than
			// let sudo read further input.
			r.rejected = true
			stdin.Close()
		}
		return true
	}
	return false
}

// outputMu keeps lines from different hosts and streams whole.
var outputMu sync.Mutex

func (h *Host) capture(r *run, line string, isErr bool) {
	outputMu.Lock()
	defer outputMu.Unlock()
	if isErr {
		r.stderr.WriteString(line)
	} else {
		r.stdout.WriteString(line)
	}
	if r.opts.stream != nil {
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		_, _ = io.WriteString(r.opts.stream, "["+h.cfg.Name+"] "+line)
	}
}

func (r *run) output(status int) Output {
	outputMu.Lock()
	defer outputMu.Unlock()
	return Output{Stdout: r.stdout.String(), Stderr: r.stderr.String(), ExitStatus: status}
}

func kindOf(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	return nil
}

// shorten is a command's first line, cut to 80 characters, for labels.
func shorten(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	if i := strings.IndexByte(cmd, '\n'); i >= 0 {
		cmd = cmd[:i] + " ..."
	}
	if len(cmd) > 80 {
		cmd = cmd[:77] + "..."
	}
	return cmd
}

// tail is the last few lines of s, for error messages.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	out := strings.Join(lines, "\n")
	if len(out) > 1000 {
		out = "..." + out[len(out)-1000:]
	}
	return out
}

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}
