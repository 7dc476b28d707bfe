package nodes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// procContaining lists processes whose command line or environment holds s.
func procContaining(s string) []string {
	var found []string
	for _, f := range []string{"cmdline", "environ"} {
		paths, _ := filepath.Glob("/proc/[0-9]*/" + f)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), s) {
				found = append(found, p)
			}
		}
	}
	return found
}

// TestSecretsNeverLeak runs logins, sudo and uploads that use a login
// password, a key passphrase and a sudo password, successful and failing,
// and checks that none of them shows up in logs, streamed output, captured
// output, errors, or any process's command line or environment on the host.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		passphrase = "pass-PHRASE-91d2"
		wrongPw    = "WRONG-sudo-pw-55e1"
		wrongLogin = "WRONG-login-pw-0c7a"
		wrongPhr   = "WRONG-phrase-aa31"
	)
	secrets := []string{sshtest.PasswordUserPassword, sshtest.SudoPasswordUserPassword, passphrase, wrongPw, wrongLogin, wrongPhr}

	key := sshtest.NewKey(t, passphrase)
	sshtest.RequireUser(t, sshtest.PasswordUser)
	sshtest.RequireUser(t, sshtest.SudoPasswordUser)
	s := sshtest.Start(t, sshtest.Options{
		Password:       true,
		AuthorizedKeys: map[string][]ssh.PublicKey{sshtest.SudoPasswordUser: {key.Public}},
	})
	log, logs := testLogger()
	var stream testenv.Buffer
	opts := []Option{WithLogger(log), WithOutput(&stream), fastRetry}
	var errs []error
	var captured []string
	note := func(out Output, err error) {
		captured = append(captured, out.Stdout, out.Stderr)
		if err != nil {
			errs = append(errs, err)
		}
	}

	t.Setenv("BOOT_LOGIN_PW", sshtest.PasswordUserPassword)
	t.Setenv("BOOT_PHRASE", passphrase)
	t.Setenv("BOOT_SUDO_PW", sshtest.SudoPasswordUserPassword)
	t.Setenv("BOOT_WRONG_LOGIN", wrongLogin)
	t.Setenv("BOOT_WRONG_PHRASE", wrongPhr)
	t.Setenv("BOOT_WRONG_SUDO", wrongPw)

	base := Config{Address: s.Address, Port: s.Port, KnownHostsPath: knownHosts(t, s.KnownHostsLine())}

	// Password login, right and wrong.
	pw := base
	pw.Name, pw.User, pw.Password = "pw", sshtest.PasswordUser, EnvSecret("BOOT_LOGIN_PW")
	h, err := Dial(testCtx(t), pw, opts...)
	if err != nil {
		t.Fatal(err)
	}
	note(h.Run(testCtx(t), "id -un"))
	h.Close()
	pw.Password = EnvSecret("BOOT_WRONG_LOGIN")
	if _, err := Dial(testCtx(t), pw, opts...); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong login password: %v", err)
	} else {
		errs = append(errs, err)
	}

	// Encrypted key, wrong passphrase first (the right one would be cached).
	sp := base
	sp.Name, sp.User, sp.KeyPath = "sudopw", sshtest.SudoPasswordUser, copyFile(t, key.Path)
	sp.KeyPassphrase = EnvSecret("BOOT_WRONG_PHRASE")
	if _, err := Dial(testCtx(t), sp, opts...); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong passphrase: %v", err)
	} else {
		errs = append(errs, err)
	}
	sp.KeyPassphrase = EnvSecret("BOOT_PHRASE")
	sp.SudoPassword = EnvSecret("BOOT_SUDO_PW")
	h, err = Dial(testCtx(t), sp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	// Sudo with the password: while it runs, no process on the host shows it.
	var leaks []string
	var scanning sync.WaitGroup
	var stop atomic.Bool
	scanning.Add(1)
	go func() {
		defer scanning.Done()
		for !stop.Load() {
			leaks = append(leaks, procContaining(sshtest.SudoPasswordUserPassword)...)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	note(h.Sudo(testCtx(t), "id -u; sleep 1; echo done", Stdin(strings.NewReader("input\n"))))
	stop.Store(true)
	scanning.Wait()
	if len(leaks) > 0 {
		t.Errorf("sudo password visible in %v", leaks)
	}
	f, err := h.Facts(testCtx(t))
	if err != nil || !f.SudoWorks {
		t.Fatalf("facts: %v %+v", err, f)
	}
	dir := t.TempDir()
	_, err = h.Upload(testCtx(t), []byte("data\n"), filepath.Join(dir, "f"), 0o600, AsRoot())
	if err != nil {
		t.Fatal(err)
	}
	note(h.Sudo(testCtx(t), "exit 4")) // a failing command
	// A failing sudo: wrong password, also for an upload.
	sp.SudoPassword = EnvSecret("BOOT_WRONG_SUDO")
	h2, err := Dial(testCtx(t), sp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	out, err := h2.Sudo(testCtx(t), "id -u")
	if !errors.Is(err, ErrSudo) {
		t.Fatalf("wrong sudo password: %v", err)
	}
	note(out, err)
	if _, err := h2.Upload(testCtx(t), []byte("x"), filepath.Join(dir, "g"), 0o600, AsRoot()); !errors.Is(err, ErrSudo) {
		t.Fatalf("upload with wrong sudo password: %v", err)
	} else {
		errs = append(errs, err)
	}
	f2, err := h2.Facts(testCtx(t))
	if err != nil || f2.SudoWorks {
		t.Fatalf("facts with wrong sudo password: %v %+v", err, f2)
	}
	captured = append(captured, f2.SudoError)

	// Redact hides caller-supplied secrets in output, errors and logs.
	out, err = h.Run(testCtx(t), "echo token=tok-123abc; echo tok-123abc >&2; exit 2", Redact("tok-123abc"))
	note(out, err)
	if !strings.Contains(out.Stdout, "token=***") {
		t.Errorf("redacted stdout %q", out.Stdout)
	}
	secrets = append(secrets, "tok-123abc")

	haystacks := map[string]string{
		"logs":   logs.String(),
		"stream": stream.String(),
		"output": strings.Join(captured, "\n"),
		"config": fmt.Sprintf("%+v %#v", sp, sp),
	}
	for i, e := range errs {
		haystacks[fmt.Sprintf("error %d", i)] = fmt.Sprintf("%v %+v %#v", e, e, e)
	}
	for where, text := range haystacks {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("secret %q found in %s:\n%s", secret, where, text)
			}
		}
	}
	// The runs did happen and were logged and streamed.
	if !strings.Contains(stream.String(), "[sudopw] done") || !strings.Contains(logs.String(), "command done") {
		t.Fatalf("nothing streamed or logged:\n%s\n%s", stream.String(), logs.String())
	}
}
