package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// builder runs the build steps, each cached in its own folder under cache.
type builder struct {
	cache     string
	log       io.Writer
	goVersion string
}

// stamp records the inputs and outputs of one cached build step.
type stamp struct {
	Key   string            `json:"key"`
	Files map[string]string `json:"files"` // file name -> sha256
}

// cached reports whether dir holds the outputs of a step with inputs key.
func cached(dir, key string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "stamp.json"))
	if err != nil {
		return false
	}
	var st stamp
	if json.Unmarshal(data, &st) != nil || st.Key != key || len(st.Files) == 0 {
		return false
	}
	for name, sum := range st.Files {
		got, _, err := HashFile(filepath.Join(dir, name))
		if err != nil || got != sum {
			return false
		}
	}
	return true
}

// writeStamp records that dir holds files built from inputs key.
func writeStamp(dir, key string, files []string) error {
	st := stamp{Key: key, Files: map[string]string{}}
	for _, name := range files {
		sum, _, err := HashFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		st.Files[name] = sum
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "stamp.json"), data, 0o644)
}

// keyOf hashes the inputs of a step.
func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// goEnv is the environment of every go command: the caller's, minus the
// settings that would change the binaries, plus fixed ones.
func goEnv(cgo bool) []string {
	drop := map[string]bool{"GOFLAGS": true, "GOOS": true, "GOARCH": true, "GOAMD64": true, "CGO_ENABLED": true,
		"GOWORK": true, "GOTOOLCHAIN": true, "CC": true, "CGO_CFLAGS": true, "CGO_LDFLAGS": true, "GOEXPERIMENT": true}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	env = append(env, "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOWORK=off", "GOTOOLCHAIN=local", "GOFLAGS=")
	if cgo {
		return append(env, "CGO_ENABLED=1", "CC=gcc")
	}
	return append(env, "CGO_ENABLED=0")
}

// run runs a command in dir, its output going to the build log; on failure
// the error carries the command and the tail of its output.
func (b *builder) run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var tail tailBuffer
	cmd.Stdout = io.MultiWriter(b.log, &tail)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s (in %s): %w\n%s", name, strings.Join(args, " "), dir, err, tail.String())
	}
	return nil
}

// output runs a command and returns its standard output, also when the
// command fails (go mod download -json reports its error there).
func output(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ buf []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// jsonField returns a string field of a JSON object, such as go mod
// download -json prints.
func jsonField(data []byte, field string) (string, error) {
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return "", err
	}
	if e, ok := obj["Error"].(string); ok && e != "" {
		return "", errors.New(e)
	}
	v, ok := obj[field].(string)
	if !ok || v == "" {
		return "", fmt.Errorf("no %s in %s", field, data)
	}
	return v, nil
}

// downloadModule downloads module@version into the module cache (from the
// module proxy if needed) and returns its folder and go.mod file; an error
// carries the reason go mod download -json gives, such as the proxy refusing
// the version.
func downloadModule(ctx context.Context, module, version string) (dir, goMod string, err error) {
	out, err := output(ctx, "", goEnv(false), "go", "mod", "download", "-json", module+"@"+version)
	var info struct{ Dir, GoMod, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", "", fmt.Errorf("%s@%s: %s", module, version, info.Error)
	}
	if err != nil {
		return "", "", err
	}
	if info.Dir == "" || info.GoMod == "" {
		return "", "", fmt.Errorf("%s@%s: go mod download gave no folder or go.mod", module, version)
	}
	return info.Dir, info.GoMod, nil
}

// upstreamGoMod returns the go.mod of module@version from the module cache,
// downloading it from the module proxy if needed.
func upstreamGoMod(ctx context.Context, module, version string) ([]byte, error) {
	_, goMod, err := downloadModule(ctx, module, version)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(goMod)
}

// upstreamMod returns the requirements of c's module: its go.mod, or its
// modFile from the module cache.
func (c goComponent) upstreamMod(ctx context.Context) ([]byte, error) {
	if c.modFile == "" {
		return upstreamGoMod(ctx, c.module, c.version)
	}
	dir, _, err := downloadModule(ctx, c.module, c.version)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, filepath.FromSlash(c.modFile)))
}

// defaultBinName is the file name go build -o DIR/ gives a main package.
func defaultBinName(pkg string) string {
	elem := path.Base(pkg)
	if regexp.MustCompile(`^v[0-9]+$`).MatchString(elem) && path.Dir(pkg) != "." {
		elem = path.Base(path.Dir(pkg))
	}
	return elem
}

// buildGo builds c's binaries into CACHE/NAME-VERSION/out and returns that
// folder; an unchanged component is not rebuilt.
func (b *builder) buildGo(ctx context.Context, c goComponent) (string, error) {
	start := time.Now()
	dir := filepath.Join(b.cache, c.name+"-"+c.version)
	modDir := filepath.Join(dir, "module")
	outDir := filepath.Join(dir, "out")
	if err := os.MkdirAll(modDir, 0o755); err != nil {
		return "", err
	}
	up, err := c.upstreamMod(ctx)
	if err != nil {
		return "", err
	}
	var pkgs []string
	for _, bin := range c.bins {
		pkgs = append(pkgs, bin.pkg)
	}
	seed, err := generateModule("boot.bundle/"+c.name, c.module, c.version, up, c.local, c.pins, c.sources, pkgs)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", c.name, c.version, err)
	}
	// The sources' trees are inputs of go mod tidy and of the build.
	var sourceKeys []string
	for _, src := range c.sources {
		k, err := fillSource(ctx, modDir, src)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", c.name, c.version, err)
		}
		sourceKeys = append(sourceKeys, k)
	}
	tidyStamp := seed
	if len(sourceKeys) > 0 {
		tidyStamp = []byte(string(seed) + "\n" + strings.Join(sourceKeys, "\n") + "\n")
	}
	if err := b.tidy(ctx, modDir, seed, tidyStamp); err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return "", err
	}
	gosum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return "", err
	}

	tags := c.tags
	ldflags := append([]string{"-s", "-w"}, c.ldflags...)
	if c.cgo {
		tags = append(append([]string{}, tags...), "netgo", "osusergo")
		ldflags = append(ldflags, "-extldflags", "-static")
	}
	args := []string{"build", "-trimpath", "-buildvcs=false", "-mod=readonly"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "-ldflags", quoteFlags(ldflags), "-o", outDir+string(filepath.Separator))
	args = append(args, pkgs...)
	env := goEnv(c.cgo)
	var names []string
	for _, bin := range c.bins {
		names = append(names, bin.name)
	}
	key := keyOf(append(append([]string{b.goVersion, strings.Join(envOf(env), " "), string(gomod), string(gosum)}, args...), sourceKeys...)...)
	if cached(outDir, key) {
		fmt.Fprintf(b.log, "bundle: %s %s: cached\n", c.name, c.version)
		return outDir, nil
	}
	fmt.Fprintf(b.log, "bundle: %s %s: building %s\n", c.name, c.version, strings.Join(names, " "))
	if err := os.RemoveAll(outDir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	if err := b.run(ctx, modDir, env, "go", args...); err != nil {
		return "", fmt.Errorf("building %s %s: %w", c.name, c.version, err)
	}
	for _, bin := range c.bins {
		if def := defaultBinName(bin.pkg); def != bin.name {
			if err := os.Rename(filepath.Join(outDir, def), filepath.Join(outDir, bin.name)); err != nil {
				return "", fmt.Errorf("building %s %s: %w", c.name, c.version, err)
			}
		}
	}
	if err := writeStamp(outDir, key, names); err != nil {
		return "", err
	}
	fmt.Fprintf(b.log, "bundle: %s %s: built in %s\n", c.name, c.version, time.Since(start).Round(time.Second))
	return outDir, nil
}

// envOf keeps the settings of env that change what go build produces.
func envOf(env []string) []string {
	var keep []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "GO") && !strings.HasPrefix(kv, "GOPATH=") && !strings.HasPrefix(kv, "GOCACHE=") &&
			!strings.HasPrefix(kv, "GOMODCACHE=") || strings.HasPrefix(kv, "CGO_") || strings.HasPrefix(kv, "CC=") {
			keep = append(keep, kv)
		}
	}
	return keep
}

// fillSource writes the source module src into its folder of the generated
// module modDir (emptied first) and returns a key of its path, folder and
// content.
func fillSource(ctx context.Context, modDir string, src localModule) (string, error) {
	dst := filepath.Join(modDir, filepath.FromSlash(src.dir))
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	if err := src.fill(ctx, dst); err != nil {
		return "", fmt.Errorf("source module %s: %w", src.path, err)
	}
	sum, err := hashTree(dst)
	if err != nil {
		return "", fmt.Errorf("source module %s: %w", src.path, err)
	}
	return "source " + src.path + " ./" + src.dir + " " + sum, nil
}

// hashTree hashes a folder's tree: every entry's path, kind, executable bit,
// symlink target and file content.
func hashTree(root string) (string, error) {
	var parts []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			parts = append(parts, "dir "+rel)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			parts = append(parts, "link "+rel+" "+target)
		case info.Mode().IsRegular():
			sum, _, err := HashFile(p)
			if err != nil {
				return err
			}
			parts = append(parts, fmt.Sprintf("file %s %t %s", rel, info.Mode()&0o111 != 0, sum))
		default:
			return fmt.Errorf("%s: neither a file, a folder nor a symlink", p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return keyOf(parts...), nil
}

// tidy writes the generated go.mod seed and resolves it with go mod tidy,
// unless the folder already holds the tidied result of the same inputs,
// stamp (the seed, and the sources' keys when there are sources).
func (b *builder) tidy(ctx context.Context, modDir string, seed, stamp []byte) error {
	seedPath := filepath.Join(modDir, "go.mod.seed")
	if old, err := os.ReadFile(seedPath); err == nil && bytes.Equal(old, stamp) {
		if _, err := os.Stat(filepath.Join(modDir, "go.sum")); err == nil {
			return nil
		}
	}
	_ = os.Remove(seedPath)
	if err := os.WriteFile(filepath.Join(modDir, "go.mod"), seed, 0o644); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(modDir, "go.sum")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := b.run(ctx, modDir, goEnv(false), "go", "mod", "tidy"); err != nil {
		return err
	}
	return os.WriteFile(seedPath, stamp, 0o644)
}

// quoteFlags joins flags for -ldflags, quoting those with spaces.
func quoteFlags(flags []string) string {
	out := make([]string, len(flags))
	for i, f := range flags {
		if strings.ContainsAny(f, " \t'") {
			f = "'" + f + "'"
		}
		out[i] = f
	}
	return strings.Join(out, " ")
}
