package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bootctl/boot/internal/run"
)

// Kubeconfig fetches the control plane's admin kubeconfig to the operator's
// machine (the inventory's cluster.kubeconfig, mode 0600), with the API
// server at the control plane's public address and the cluster, user and
// context named after the cluster. With Merge it is also merged into
// MergeInto (~/.kube/config), replacing only entries of the same names.
type Kubeconfig struct {
	Merge     bool
	MergeInto string // default: clientcmd's recommended home file
}

// Name implements Phase.
func (Kubeconfig) Name() string { return "kubeconfig" }

// operator names the operator's machine in changes made there.
const operator = "operator"

// Plan implements Phase.
func (k Kubeconfig) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	path := c.Inventory.Cluster.Kubeconfig
	cp := c.controlPlane()
	up, err := exists(ctx, cp, adminConf)
	if err != nil {
		return nil, err
	}
	if !up {
		return []Change{{Host: operator, Description: run.After(ControlPlane{}.Name(), "write the admin kubeconfig to "+path),
			Apply: func(ctx context.Context) error { return k.write(ctx, c, path) }}}, nil
	}
	cfg, err := c.adminKubeconfig(ctx)
	if err != nil {
		return nil, err
	}
	var changes []Change
	if differs(path, cfg) {
		changes = append(changes, Change{Host: operator, Description: "write the admin kubeconfig to " + path,
			Apply: func(context.Context) error { return writeKubeconfig(path, cfg) }})
	}
	if k.Merge {
		into := k.mergeInto()
		merged, err := merge(into, cfg)
		if err != nil {
			return nil, err
		}
		if differs(into, merged) {
			changes = append(changes, Change{Host: operator, Description: fmt.Sprintf("merge context %q into %s", c.Inventory.Metadata.Name, into),
				Apply: func(context.Context) error { return writeKubeconfig(into, merged) }})
		}
	}
	return changes, nil
}

func (k Kubeconfig) mergeInto() string {
	if k.MergeInto != "" {
		return k.MergeInto
	}
	return clientcmd.RecommendedHomeFile
}

// write is the change planned before kubeadm init: fetch, then write (and
// merge).
func (k Kubeconfig) write(ctx context.Context, c *Cluster, path string) error {
	cfg, err := c.adminKubeconfig(ctx)
	if err != nil {
		return err
	}
	if err := writeKubeconfig(path, cfg); err != nil {
		return err
	}
	if !k.Merge {
		return nil
	}
	merged, err := merge(k.mergeInto(), cfg)
	if err != nil {
		return err
	}
	return writeKubeconfig(k.mergeInto(), merged)
}

// TunnelServerName is the API server certificate's name a kubeconfig that
// reaches the API server through a tunnel checks (kubeadm always puts it in
// the certificate).
const TunnelServerName = "kubernetes"

// apiProbeTimeout bounds the check that the operator reaches the API server.
const apiProbeTimeout = 3 * time.Second

// apiServerForOperator returns the API server URL for the operator's
// kubeconfig, and the TLS server name to check when it is not the URL's
// host: the control plane's address when this machine reaches its API
// port, else https://127.0.0.1:<port>, where `boot tunnel` (and boot's own
// commands, when they need the API) forward to it through SSH.
func (c *Cluster) apiServerForOperator() (server, tlsServerName string) {
	port := strconv.Itoa(c.Inventory.Cluster.APIServerPort)
	direct := net.JoinHostPort(c.controlPlane().Spec.Address, port)
	if conn, err := net.DialTimeout("tcp", direct, apiProbeTimeout); err == nil {
		conn.Close()
		return "https://" + direct, ""
	}
	c.report(run.Event{Phase: "kubeconfig", Host: operator, Status: run.Warning,
		Message: "the API server at " + direct + " is not reachable from here: the kubeconfig points at 127.0.0.1:" + port + "; run boot tunnel to reach it through SSH"})
	return "https://" + net.JoinHostPort("127.0.0.1", port), TunnelServerName
}

// adminKubeconfig reads admin.conf on the control plane and returns it
// serialised, pointed at the public address, entries named after the
// cluster. It holds the admin's private key: never log it.
func (c *Cluster) adminKubeconfig(ctx context.Context) ([]byte, error) {
	raw, err := c.controlPlane().Conn.ReadFile(ctx, adminConf)
	if err != nil {
		return nil, err
	}
	src, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("%s on the control plane: %w", adminConf, err)
	}
	cur, ok := src.Contexts[src.CurrentContext]
	if !ok || src.Clusters[cur.Cluster] == nil || src.AuthInfos[cur.AuthInfo] == nil {
		return nil, fmt.Errorf("%s on the control plane has no usable current context", adminConf)
	}
	name := c.Inventory.Metadata.Name
	user := name + "-admin"
	cluster := src.Clusters[cur.Cluster].DeepCopy()
	cluster.Server, cluster.TLSServerName = c.apiServerForOperator()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = cluster
	cfg.AuthInfos[user] = src.AuthInfos[cur.AuthInfo].DeepCopy()
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// merge returns the kubeconfig at path (empty if missing) with the entries
// of cfg added or replaced, and cfg's context made current.
func merge(path string, cfg []byte) ([]byte, error) {
	add, err := clientcmd.Load(cfg)
	if err != nil {
		return nil, err
	}
	into := clientcmdapi.NewConfig()
	if _, err := os.Stat(path); err == nil {
		if into, err = clientcmd.LoadFromFile(path); err != nil {
			return nil, err
		}
	}
	for k, v := range add.Clusters {
		into.Clusters[k] = v
	}
	for k, v := range add.AuthInfos {
		into.AuthInfos[k] = v
	}
	for k, v := range add.Contexts {
		into.Contexts[k] = v
	}
	into.CurrentContext = add.CurrentContext
	return clientcmd.Write(*into)
}

// differs reports whether the file at path does not hold exactly b with
// mode 0600.
func differs(path string, b []byte) bool {
	old, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(old, b) {
		return true
	}
	st, err := os.Stat(path)
	return err != nil || st.Mode().Perm() != 0o600
}

// writeKubeconfig writes b to path atomically with mode 0600, creating its
// folder (0700).
func writeKubeconfig(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
