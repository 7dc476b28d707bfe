package addons

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/bootctl/boot/internal/testenv"
)

const redisServerBin = "/usr/bin/redis-server"

// containerEnv resolves a container's env the way the kubelet does, against the
// credentials Secret NewRegistryCredentials makes.
func containerEnv(t *testing.T, c corev1.Container, creds *RegistryCredentials) map[string]string {
	t.Helper()
	secret := creds.Secret("registry-credentials", "registry")
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret.Name:
			v, ok := secret.Data[e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("env %s: credentials Secret has no key %q", e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			env[e.Name] = string(v)
		case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == RegistryS3Secret:
			env[e.Name] = "boot-test" // moto checks the signature's form, not the key
		default:
			t.Fatalf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	return env
}

// expandArgs replaces $(NAME) with the container's env, as Kubernetes does for
// command and args.
func expandArgs(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		out[i] = a
	}
	return out
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// redisAuthMount is where the chart's Redis pod keeps the config file with
// the password: the mount of its auth volume, the same in both containers.
func redisAuthMount(t *testing.T, spec corev1.PodSpec) string {
	t.Helper()
	var mounts []corev1.VolumeMount
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if m.Name == "auth" {
				if m.ReadOnly != (c.Name == "redis") {
					t.Errorf("%s mounts the auth volume readOnly=%v", c.Name, m.ReadOnly)
				}
				mounts = append(mounts, m)
			}
		}
	}
	if len(mounts) != 2 || mounts[0].MountPath != mounts[1].MountPath {
		t.Fatalf("auth volume mounts %+v, want one path in both containers", mounts)
	}
	for _, v := range spec.Volumes {
		if v.Name == "auth" && (v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory) {
			t.Errorf("auth volume %+v, want a memory-backed emptyDir", v.VolumeSource)
		}
	}
	return mounts[0].MountPath
}

// runAuthConfig runs the chart's auth-config init container here, as the
// kubelet would (its command and args, its env), with its volume at dir.
func runAuthConfig(c corev1.Container, mount, dir, password string) ([]byte, error) {
	argv := append(slices.Clone(c.Command), c.Args...)
	for i := range argv {
		argv[i] = strings.ReplaceAll(argv[i], mount, dir)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = password
		}
		cmd.Env = append(cmd.Env, e.Name+"="+v)
	}
	return cmd.CombinedOutput()
}

// startRedis starts a real redis-server with args (plus a loopback port and
// dir) and returns its address once it answers password, and its process.
func startRedis(t *testing.T, ctx context.Context, args []string, dir, password string) (string, *os.Process) {
	t.Helper()
	port := freeLoopbackPort(t)
	cmd := exec.Command(redisServerBin, append(slices.Clone(args), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir)...)
	cmd.Dir = dir
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	client := redis.NewClient(&redis.Options{Addr: addr, Password: password, DialTimeout: time.Second})
	defer client.Close()
	for {
		if err := client.Ping(ctx).Err(); err == nil {
			return addr, cmd.Process
		} else if ctx.Err() != nil {
			t.Fatalf("redis-server %v did not answer with the password: %v\n%s", args, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisRunsRenderedArgs runs the chart's Redis pod for real: its init
// container writes the config file from the credentials Secret's password, and
// redis-server started with the redis container's command line is a
// password-protected, bounded, non-persistent LRU cache. No password is on any
// command line or in any literal env value; any password (quotes, backslashes,
// a newline, non-ASCII) survives the config file; an empty one is refused; the
// readiness probe's command tells a working password from a wrong one.
func TestRedisRunsRenderedArgs(t *testing.T) {
	testenv.File(t, redisServerBin, "redis-server")
	testenv.File(t, "/usr/bin/redis-cli", "redis-tools")
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderRegistry(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	d := get[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment/registry-redis")
	spec := d.Spec.Template.Spec
	for _, ct := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		line := expandArgs(append(slices.Clone(ct.Command), ct.Args...), containerEnv(t, ct, creds))
		if strings.Contains(strings.Join(line, " "), creds.RedisPassword()) {
			t.Errorf("%s: the Redis password is on the command line", ct.Name)
		}
		for _, e := range ct.Env {
			if strings.Contains(e.Value, creds.RedisPassword()) {
				t.Errorf("%s: env %s holds the Redis password", ct.Name, e.Name)
			}
		}
	}
	if len(spec.InitContainers) != 1 || len(spec.Containers) != 1 {
		t.Fatalf("redis pod: %d init containers, %d containers, want 1 and 1", len(spec.InitContainers), len(spec.Containers))
	}
	initC, c := spec.InitContainers[0], spec.Containers[0]
	env := containerEnv(t, c, creds)
	if len(c.Command) != 1 || c.Command[0] != "redis-server" {
		t.Fatalf("redis command %v", c.Command)
	}
	mount := redisAuthMount(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// serve runs the init container for password, then redis-server as the
	// redis container says, and returns the address and the data folder.
	serve := func(password string) (string, string) {
		dir, auth := t.TempDir(), t.TempDir()
		if out, err := runAuthConfig(initC, mount, auth, password); err != nil {
			t.Fatalf("auth-config: %v\n%s", err, out)
		}
		fi, err := os.Stat(filepath.Join(auth, "redis.conf"))
		if err != nil {
			t.Fatalf("auth-config wrote no redis.conf into its volume: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("redis.conf mode %v, want 0600", fi.Mode().Perm())
		}
		args := expandArgs(c.Args, env)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], mount, auth)
		}
		addr, _ := startRedis(t, ctx, args, dir, password)
		return addr, dir
	}
	addr, dir := serve(creds.RedisPassword())
	client := redis.NewClient(&redis.Options{Addr: addr, Password: creds.RedisPassword(), DialTimeout: time.Second})
	defer client.Close()

	anon := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without the password: %v, want NOAUTH", err)
	}
	if err := anon.Do(ctx, "AUTH", creds.RedisPassword()+"x").Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("AUTH with a wrong password: %v, want WRONGPASS", err)
	}

	for key, want := range map[string]string{
		"maxmemory":        strconv.Itoa(256 << 20),
		"maxmemory-policy": "allkeys-lru",
		"save":             "",
		"appendonly":       "no",
	} {
		got, err := client.ConfigGet(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[key] != want {
			t.Errorf("CONFIG GET %s = %q, want %q", key, got[key], want)
		}
	}

	// A password only a careful config file carries: it authenticates, one
	// byte less does not.
	odd := "a \"b\\c' $(x) #; \xc3\xa9\t\r\nend\\"
	oddAddr, _ := serve(odd)
	oddClient := redis.NewClient(&redis.Options{Addr: oddAddr, DialTimeout: time.Second})
	defer oddClient.Close()
	if err := oddClient.Do(ctx, "AUTH", odd[:len(odd)-1]).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("AUTH with the odd password less its last byte: %v, want WRONGPASS", err)
	}

	// An empty password would leave Redis open: the init container refuses it.
	empty := t.TempDir()
	if out, err := runAuthConfig(initC, mount, empty, ""); err == nil || !strings.Contains(string(out), "redisPassword") {
		t.Errorf("auth-config with an empty password: %v %s, want a failure naming the key", err, out)
	}
	if _, err := os.Stat(filepath.Join(empty, "redis.conf")); err == nil {
		t.Error("auth-config wrote redis.conf for an empty password")
	}

	// The readiness probe, run as the kubelet would (sh -c with the container env);
	// a redis-cli shim adds the test port.
	probe := c.ReadinessProbe.Exec.Command
	shim := filepath.Join(dir, "bin")
	if err := os.Mkdir(shim, 0o755); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	script := "#!/bin/sh\nexec /usr/bin/redis-cli -p " + port + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(shim, "redis-cli"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	runProbe := func(password string) error {
		p := exec.CommandContext(ctx, probe[0], probe[1:]...)
		p.Env = []string{"PATH=" + shim + ":/usr/bin:/bin", "REDISCLI_AUTH=" + password}
		return p.Run()
	}
	if err := runProbe(env["REDISCLI_AUTH"]); err != nil {
		t.Errorf("readiness probe fails on a healthy Redis: %v", err)
	}
	var exitErr *exec.ExitError
	if err := runProbe("wrong-password"); !errors.As(err, &exitErr) {
		t.Errorf("readiness probe with a wrong password: %v, want a non-zero exit", err)
	}
}
