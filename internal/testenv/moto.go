package testenv

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// MotoS3 runs moto_server (an S3 implementation this project did not
// write) on a loopback port, creates bucket in it and returns its URL; the
// server is stopped by PID in Cleanup. Clients reach it with any static key
// pair. Without moto_server the test is skipped, or fails under CI.
func MotoS3(t testing.TB, bucket string) string {
	t.Helper()
	moto, err := exec.LookPath("moto_server")
	if err != nil {
		Need(t, "moto_server (pip install 'moto[server]==5.2.1'): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(moto, "-H", "127.0.0.1", "-p", port)
	logs := &Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url := "http://127.0.0.1:" + port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url+"/"+bucket, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("moto: create bucket %s: %s\n%s", bucket, resp.Status, logs.String())
			}
			return url
		}
		select {
		case <-exited:
			t.Fatalf("moto_server exited: %s", logs.String())
		case <-ctx.Done():
			t.Fatalf("moto_server did not answer: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
