package addons

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// TestRedisRunsRenderedArgs starts a real redis-server with the command line and
// env of the chart's Redis container (plus a loopback port) and checks it is a
// password-protected, bounded, non-persistent LRU cache, and that the readiness
// probe's command tells a working password from a wrong one.
func TestRedisRunsRenderedArgs(t *testing.T) {
	testenv.File(t, redisServerBin, "redis-server")
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderRegistry(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	d := get[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment/registry-redis")
	c := d.Spec.Template.Spec.Containers[0]
	env := containerEnv(t, c, creds)
	if len(c.Command) != 1 || c.Command[0] != "redis-server" {
		t.Fatalf("redis command %v", c.Command)
	}

	dir := t.TempDir()
	port := freeLoopbackPort(t)
	args := append(expandArgs(c.Args, env), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir)
	cmd := exec.Command(redisServerBin, args...)
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := redis.NewClient(&redis.Options{Addr: addr, Password: creds.RedisPassword(), DialTimeout: time.Second})
	defer client.Close()
	for {
		if err := client.Ping(ctx).Err(); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("redis-server with the chart's args did not answer: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	anon := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without the password: %v, want NOAUTH", err)
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

	// The readiness probe, run as the kubelet would (sh -c with the container env);
	// a redis-cli shim adds the test port.
	probe := c.ReadinessProbe.Exec.Command
	shim := filepath.Join(dir, "bin")
	if err := os.Mkdir(shim, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nexec /usr/bin/redis-cli -p " + strconv.Itoa(port) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(shim, "redis-cli"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	runProbe := func(password string) error {
		p := exec.CommandContext(ctx, probe[0], probe[1:]...)
		p.Env = []string{"PATH=" + shim + ":/usr/bin:/bin", "REDISCLI_AUTH=" + password}
		return p.Run()
	}
	testenv.File(t, "/usr/bin/redis-cli", "redis-tools")
	if err := runProbe(env["REDISCLI_AUTH"]); err != nil {
		t.Errorf("readiness probe fails on a healthy Redis: %v", err)
	}
	var exitErr *exec.ExitError
	if err := runProbe("wrong-password"); !errors.As(err, &exitErr) {
		t.Errorf("readiness probe with a wrong password: %v, want a non-zero exit", err)
	}
}
