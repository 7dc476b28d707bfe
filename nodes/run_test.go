package nodes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// userServer starts an sshd where key logs in as each of users.
func userServer(t testing.TB, key *sshtest.Key, users ...string) *sshtest.Server {
	t.Helper()
	ak := map[string][]ssh.PublicKey{}
	for _, u := range users {
		sshtest.RequireUser(t, u)
		ak[u] = []ssh.PublicKey{key.Public}
	}
	return sshtest.Start(t, sshtest.Options{AuthorizedKeys: ak})
}

func userConfig(t testing.TB, s *sshtest.Server, key *sshtest.Key, user string) Config {
	return Config{
		Name:           user,
		Address:        s.Address,
		Port:           s.Port,
		User:           user,
		KeyPath:        key.Path,
		KnownHostsPath: knownHosts(t, s.KnownHostsLine()),
	}
}

func TestSudo(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s := userServer(t, key, sshtest.SudoUser, sshtest.SudoPasswordUser, sshtest.PasswordUser)

	t.Run("passwordless", func(t *testing.T) {
		h := mustDial(t, userConfig(t, s, key, sshtest.SudoUser))
		if got := mustRun(t, h, "id -u"); got == "0\n" {
			t.Fatal("plain Run ran as root")
		}
		out, err := h.Sudo(testCtx(t), "id -u; echo to-stderr >&2")
		if err != nil || out.Stdout != "0\n" || out.Stderr != "to-stderr\n" {
			t.Fatalf("Sudo: %v %+v", err, out)
		}
		// A failing command under sudo is an exit error, not a sudo error.
		_, err = h.Sudo(testCtx(t), "exit 3")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Status != 3 || errors.Is(err, ErrSudo) {
			t.Fatalf("want exit status 3, got %v", err)
		}
	})

	t.Run("with password", func(t *testing.T) {
		t.Setenv("BOOT_TEST_SUDO_PW", sshtest.SudoPasswordUserPassword)
		cfg := userConfig(t, s, key, sshtest.SudoPasswordUser)
		cfg.SudoPassword = EnvSecret("BOOT_TEST_SUDO_PW")
		h := mustDial(t, cfg)
		for i := range 2 { // twice: cached sudo credentials must not change how stdin is fed
			out, err := h.Sudo(testCtx(t), "id -u; cat", Stdin(strings.NewReader("line one\nline two\n")))
			if err != nil {
				t.Fatalf("Sudo #%d: %v (stderr %q)", i, err, out.Stderr)
			}
			if out.Stdout != "0\nline one\nline two\n" {
				t.Fatalf("Sudo #%d stdout %q: the command must get exactly the caller's stdin", i, out.Stdout)
			}
			if out.Stderr != "" {
				t.Fatalf("Sudo #%d stderr %q", i, out.Stderr)
			}
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		t.Setenv("BOOT_TEST_SUDO_PW", "not-the-password")
		cfg := userConfig(t, s, key, sshtest.SudoPasswordUser)
		cfg.SudoPassword = EnvSecret("BOOT_TEST_SUDO_PW")
		h := mustDial(t, cfg)
		start := time.Now()
		_, err := h.Sudo(testCtx(t), "echo should-not-run", Stdin(strings.NewReader("secret-stdin\n")))
		if !errors.Is(err, ErrSudo) || !strings.Contains(err.Error(), "rejected the password") {
			t.Fatalf("want ErrSudo (password rejected), got %v", err)
		}
		if strings.Contains(err.Error(), "not-the-password") {
			t.Fatalf("error reveals the password: %v", err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("wrong password took %s", d)
		}
	})

	t.Run("password needed but none configured", func(t *testing.T) {
		h := mustDial(t, userConfig(t, s, key, sshtest.SudoPasswordUser))
		_, err := h.Sudo(testCtx(t), "true")
		if !errors.Is(err, ErrSudo) || !strings.Contains(err.Error(), "password is required") {
			t.Fatalf("want ErrSudo (password required), got %v", err)
		}
	})

	t.Run("no sudo rights", func(t *testing.T) {
		h := mustDial(t, userConfig(t, s, key, sshtest.PasswordUser))
		_, err := h.Sudo(testCtx(t), "true")
		if !errors.Is(err, ErrSudo) {
			t.Fatalf("want ErrSudo, got %v", err)
		}
	})
}

func TestStreamOrder(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	var stream testenv.Buffer
	h := mustDial(t, cfg, WithOutput(&stream))
	out, err := h.Run(testCtx(t), `i=1; while [ $i -le 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; printf 'no newline'`)
	if err != nil {
		t.Fatal(err)
	}
	var wantOut, wantErr strings.Builder
	for i := 1; i <= 300; i++ {
		fmt.Fprintf(&wantOut, "out %d\n", i)
		fmt.Fprintf(&wantErr, "err %d\n", i)
	}
	wantOut.WriteString("no newline")
	if out.Stdout != wantOut.String() || out.Stderr != wantErr.String() {
		t.Fatalf("captured output differs:\n%q\n%q", out.Stdout, out.Stderr)
	}
	// Every streamed line is whole and prefixed, and each stream keeps its order.
	var gotOut, gotErr []string
	for _, l := range strings.Split(strings.TrimSuffix(stream.String(), "\n"), "\n") {
		rest, ok := strings.CutPrefix(l, "[node1] ")
		if !ok {
			t.Fatalf("line without prefix: %q", l)
		}
		if strings.HasPrefix(rest, "err ") {
			gotErr = append(gotErr, rest)
		} else {
			gotOut = append(gotOut, rest)
		}
	}
	if strings.Join(gotOut, "\n") != wantOut.String() || strings.Join(gotErr, "\n")+"\n" != wantErr.String() {
		t.Fatalf("streamed lines out of order:\n%s", stream.String())
	}
	// Stream(nil) silences one command; Stream(w) redirects it.
	before := stream.String()
	mustRun(t, h, "echo quiet", Stream(nil))
	var other testenv.Buffer
	mustRun(t, h, "echo elsewhere", Stream(&other))
	if stream.String() != before || other.String() != "[node1] elsewhere\n" {
		t.Fatalf("stream options ignored: %q / %q", stream.String()[len(before):], other.String())
	}
}

// processesWith lists local processes whose command line contains s (the
// sshd under test runs on this machine).
func processesWith(s string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			found = append(found, d+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

func TestRunTimeout(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s := userServer(t, key, sshtest.SudoUser)
	_, rootCfg := rootServer(t, key)
	cases := []struct {
		name string
		cfg  Config
		opts []RunOption
	}{
		{"plain", userConfig(t, s, key, sshtest.SudoUser), nil},
		{"sudo", userConfig(t, s, key, sshtest.SudoUser), []RunOption{AsRoot()}},
		// sshd does not signal a root login's commands.
		{"root", rootCfg, nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := mustDial(t, c.cfg)
			// A compound command: a child in the background and one in the foreground.
			a, b := 4242+2*i, 4243+2*i
			cmd := fmt.Sprintf("sleep %d & sleep %d; wait", a, b)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			_, err := h.Run(ctx, cmd, c.opts...)
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
				t.Fatalf("want a timeout error, got %v", err)
			}
			if d := time.Since(start); d > 6*time.Second {
				t.Fatalf("Run returned %s after the deadline", d)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				left := append(processesWith(fmt.Sprintf("sleep %d", a)), processesWith(fmt.Sprintf("sleep %d", b))...)
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("remote processes survived the timeout: %v", left)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The connection is still usable.
			mustRun(t, h, "true")
		})
	}
}

func TestRunExitStatus(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	h := mustDial(t, cfg)
	out, err := h.Run(testCtx(t), "echo partial; echo broken >&2; exit 7")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 7 || out.ExitStatus != 7 || out.Stdout != "partial\n" || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("want exit 7 with output, got %v %+v", err, out)
	}
	if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrTimeout) {
		t.Fatalf("exit error misclassified: %v", err)
	}
	// A session whose process is killed by a signal says so (the command
	// runs in a subshell of the wrapper that sshd started: $$ is the
	// wrapper's PID).
	_, err = h.Run(testCtx(t), "kill -KILL $$")
	if !errors.As(err, &ee) || ee.Signal != "KILL" || !strings.Contains(err.Error(), "killed by signal KILL") {
		t.Fatalf("want killed by signal KILL, got %v", err)
	}
	// Quoting survives the wrapper.
	if got := mustRun(t, h, `printf '%s|' "a b" 'c'"'"'d' $((1+1))`); got != "a b|c'd|2|" {
		t.Fatalf("quoting: %q", got)
	}
}

// The wrapper runs a command the same way whichever shell is the host's sh:
// dash (Debian's and Ubuntu's) or bash (which some make /bin/sh, and which
// refuses some assignments dash allows): its output, stdin, exit status, no
// positional parameters, and $$ the wrapper's own PID.
func TestGroupScriptUnderEveryShell(t *testing.T) {
	for _, shell := range []string{"dash", "bash", "bash --posix"} {
		argv := strings.Fields(shell)
		bin, err := exec.LookPath(argv[0])
		if err != nil {
			testenv.Need(t, "%s: %v", argv[0], err)
		}
		cmd := exec.Command(bin, append(argv[1:], "-c", groupScript, "sh", `read -r line; echo "got $line, $# args, pid $$"; exit 3`)...)
		cmd.Stdin = strings.NewReader("input\n")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if want := fmt.Sprintf("got input, 0 args, pid %d\n", cmd.Process.Pid); !errors.As(err, &ee) || ee.ExitCode() != 3 || out.String() != want {
			t.Errorf("%s: exit %v, output %q, want exit 3 and %q", shell, err, out.String(), want)
		}
	}
}
