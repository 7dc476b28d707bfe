package nodes

import (
	"os"
	"strings"
	"testing"
)

func TestEnvOrPrompt(t *testing.T) {
	t.Setenv("BOOT_TEST_SECRET", "s3cret")
	b, err := EnvOrPrompt("BOOT_TEST_SECRET", "passphrase")()
	if err != nil || string(b) != "s3cret" {
		t.Fatalf("from env: %q %v", b, err)
	}
	// Without the variable and without a terminal: an error naming the variable.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	stdin := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = stdin }()
	_, err = EnvOrPrompt("BOOT_TEST_UNSET_SECRET", "passphrase")()
	if err == nil || !strings.Contains(err.Error(), "not a terminal") || !strings.Contains(err.Error(), "BOOT_TEST_UNSET_SECRET") {
		t.Fatalf("want a no-terminal error naming the variable, got %v", err)
	}
	if _, err := EnvSecret("BOOT_TEST_UNSET_SECRET")(); err == nil || !strings.Contains(err.Error(), "BOOT_TEST_UNSET_SECRET") {
		t.Fatalf("EnvSecret: %v", err)
	}
}

func TestRetryDelay(t *testing.T) {
	r := Retry{Attempts: 10, Initial: 100_000_000, Max: 1_000_000_000}
	prev := r.delay(1)
	if prev > r.Initial || prev < r.Initial*4/5 {
		t.Fatalf("first delay %s", prev)
	}
	for n := 2; n < 10; n++ {
		d := r.delay(n)
		if d > r.Max || d < prev*4/5 {
			t.Fatalf("delay %d = %s after %s", n, d, prev)
		}
		prev = d
	}
	if r.delay(9) < r.Max*4/5 {
		t.Fatalf("delay not capped at Max: %s", r.delay(9))
	}
}
