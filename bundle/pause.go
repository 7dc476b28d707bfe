package bundle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// buildPause compiles Kubernetes' pause.c (from the k8s.io/kubernetes
// module) statically with gcc, as Kubernetes' own image build does. It
// returns the binary and the source it was built from.
func (b *builder) buildPause(ctx context.Context, kubeVersion, tag string) (string, string, error) {
	start := time.Now()
	info, err := output(ctx, "", goEnv(false), "go", "mod", "download", "-json", "k8s.io/kubernetes@"+kubeVersion)
	if err != nil {
		return "", "", err
	}
	srcDir, err := jsonField(info, "Dir")
	if err != nil {
		return "", "", err
	}
	src := filepath.Join(srcDir, "build", "pause", "linux", "pause.c")
	code, err := os.ReadFile(src)
	if err != nil {
		return "", "", fmt.Errorf("pause: %w", err)
	}
	gccVersion, err := output(ctx, "", os.Environ(), "gcc", "--version")
	if err != nil {
		return "", "", fmt.Errorf("pause needs gcc: %w", err)
	}
	dir := filepath.Join(b.cache, "pause-"+tag)
	args := []string{"-Os", "-Wall", "-Werror", "-static", "-DVERSION=v" + tag, "-o", "pause", src}
	key := keyOf(string(code), string(gccVersion), strings.Join(args[:len(args)-1], " "))
	source := "k8s.io/kubernetes/build/pause/linux/pause.c"
	if cached(dir, key) {
		fmt.Fprintf(b.log, "bundle: pause %s: cached\n", tag)
		return filepath.Join(dir, "pause"), source, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if err := b.run(ctx, dir, os.Environ(), "gcc", args...); err != nil {
		return "", "", fmt.Errorf("pause: %w", err)
	}
	if err := b.run(ctx, dir, os.Environ(), "strip", "pause"); err != nil {
		return "", "", fmt.Errorf("pause: %w", err)
	}
	if err := writeStamp(dir, key, []string{"pause"}); err != nil {
		return "", "", err
	}
	fmt.Fprintf(b.log, "bundle: pause %s: built in %s\n", tag, time.Since(start).Round(time.Millisecond))
	return filepath.Join(dir, "pause"), source, nil
}
