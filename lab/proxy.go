package lab

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Names of the lab's forward proxy.
const (
	proxyDir     = "proxy"
	proxyProgram = "tinyproxy"
)

// proxyConfig is tinyproxy's configuration: it listens on the gateway only,
// serves the lab's hosts only, and tunnels (CONNECT) only to the ports the
// lab serves HTTPS on.
func proxyConfig(listen string, port int, subnet string, connectPorts []int) string {
	s := fmt.Sprintf(`# Written by boot lab: the lab's forward proxy.
User nobody
Group nogroup
Listen %s
Port %d
Timeout 600
MaxClients 64
Allow %s
DisableViaHeader Yes
LogLevel Info
`, listen, port, subnet)
	for _, p := range connectPorts {
		s += fmt.Sprintf("ConnectPort %d\n", p)
	}
	return s
}

// startProxy starts Debian's tinyproxy on the gateway at port, for the
// lab's hosts, tunnelling to the package mirror and the registry, and
// checks that the mirror answers through it. Lab.Proxy records its URL.
func (l *Lab) startProxy(ctx context.Context, port, mirrorPort int, logf func(string, ...any)) error {
	if l.KubernetesMirror == "" {
		logf("no package mirror: no proxy")
		return nil
	}
	bin, err := exec.LookPath(proxyProgram)
	if err != nil {
		return fmt.Errorf("the lab's forward proxy needs %s (apt-get install tinyproxy): %w", proxyProgram, err)
	}
	dir := filepath.Join(l.Dir, proxyDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "tinyproxy.conf")
	if err := writeFileAtomic(conf, []byte(proxyConfig(l.Gateway, port, l.Subnet, []int{mirrorPort, registryPort})), 0o644); err != nil {
		return err
	}
	proxyURL := "http://" + hostPort(l.Gateway, port)
	err = l.startService(ctx, Service{Name: "proxy", Program: proxyProgram, Address: proxyURL, Log: filepath.Join(dir, "tinyproxy.log")},
		bin, []string{"-d", "-c", conf}, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, 30*time.Second,
		func(ctx context.Context) error { return l.checkProxy(ctx, proxyURL) }, logf)
	if err != nil {
		return err
	}
	l.Proxy = proxyURL
	logf("proxy: %s (tinyproxy) for %s, tunnelling to ports %d and %d", proxyURL, l.Subnet, mirrorPort, registryPort)
	return l.save()
}

// checkProxy fetches the package mirror's Kubernetes folder through the
// proxy at proxyURL (a CONNECT tunnel, TLS by the lab CA).
func (l *Lab) checkProxy(ctx context.Context, proxyURL string) error {
	client, err := registryClient(l.RegistryCA)
	if err != nil {
		return err
	}
	u, err := url.Parse(proxyURL)
	if err != nil {
		return err
	}
	tr := client.Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(u)
	_, err = httpGet(ctx, &http.Client{Transport: tr, Timeout: 10 * time.Second}, l.KubernetesMirror+"/")
	return err
}
