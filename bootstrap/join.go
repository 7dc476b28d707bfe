package bootstrap

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/bootctl/boot/internal/quote"
	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// joinTokenTTL bounds the life of the bootstrap token workers join with.
const joinTokenTTL = "15m"

// Join joins the workers that are not nodes yet (no
// /etc/kubernetes/kubelet.conf), in parallel, with a short-lived bootstrap
// token and the CA's hash fetched from the control plane. A worker left
// half-joined by an interrupted run is reset (and its Node object deleted)
// before it joins again.
type Join struct{}

// Name implements Phase.
func (Join) Name() string { return "join workers" }

// Plan implements Phase.
func (Join) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	ws := c.workers()
	pending := make([]*Change, len(ws))
	creds := &joinCredentials{cp: c.controlPlane()}
	err := forHosts(ctx, c, ws, func(ctx context.Context, h *Host) error {
		joined, err := exists(ctx, h, kubeletConf)
		if err != nil || joined {
			return err
		}
		leftover, err := exists(ctx, h, caCert)
		if err != nil {
			return err
		}
		desc := "kubeadm join " + c.endpoint()
		if leftover {
			desc = "reset a half-joined node, then " + desc
		}
		pending[indexOf(ws, h)] = &Change{
			Host:        h.Spec.Name,
			Description: desc,
			Apply:       func(ctx context.Context) error { return join(ctx, c, h, creds, leftover) },
		}
		return nil
	})
	return compact(pending), err
}

// joinCredentials fetches the token and the CA hash once for all workers.
type joinCredentials struct {
	cp     *Host
	once   sync.Once
	token  scripts.Token
	caHash string
	err    error
}

func (j *joinCredentials) get(ctx context.Context) (scripts.Token, string, error) {
	j.once.Do(func() {
		pem, err := j.cp.Conn.ReadFile(ctx, caCert)
		if err != nil {
			j.err = err
			return
		}
		if j.caHash, j.err = caCertHash(pem); j.err != nil {
			return
		}
		// Never streamed: its output is the token.
		out, err := j.cp.Conn.Sudo(ctx, "kubeadm token create --ttl "+joinTokenTTL+" --description 'boot: join workers'",
			nodes.Stream(nil), nodes.Label("kubeadm token create"))
		if err != nil {
			j.err = errors.New("kubeadm token create failed on the control plane")
			return
		}
		j.token = scripts.Token(strings.TrimSpace(out.Stdout))
	})
	return j.token, j.caHash, j.err
}

// caCertHash is kubeadm's discovery hash of a CA certificate: sha256 of its
// SubjectPublicKeyInfo.
func caCertHash(pemBytes []byte) (string, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s on the control plane is not a PEM certificate", caCert)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s on the control plane: %w", caCert, err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func join(ctx context.Context, c *Cluster, h *Host, creds *joinCredentials, leftover bool) error {
	if leftover {
		if _, err := h.Conn.Sudo(ctx, "kubeadm reset -f"); err != nil {
			return err
		}
		if err := kubectl(ctx, c.controlPlane(), nil, "delete", "node", h.Spec.Name, "--ignore-not-found"); err != nil {
			return err
		}
	}
	token, hash, err := creds.get(ctx)
	if err != nil {
		return err
	}
	cfg, err := scripts.KubeadmJoin(scripts.JoinParams{
		NodeName:              h.Spec.Name,
		NodeIP:                h.Spec.PrivateAddress,
		APIServerEndpoint:     c.endpoint(),
		Token:                 token,
		CACertHashes:          []string{hash},
		IgnorePreflightErrors: ignoredPreflight(h),
	})
	if err != nil {
		return err
	}
	// The configuration holds the token: it goes on stdin only, and the
	// token is redacted should kubeadm print it.
	_, err = h.Conn.Sudo(ctx, "kubeadm join --config /dev/stdin", nodes.Stdin(strings.NewReader(string(cfg))),
		nodes.Redact(string(token)), nodes.Label("kubeadm join"))
	return err
}

// kubectl runs kubectl as the cluster admin on the control plane, with
// stdin when given, to change something: its output is streamed like any
// command's.
func kubectl(ctx context.Context, cp *Host, stdin []byte, args ...string) error {
	_, err := runKubectl(ctx, cp, stdin, args)
	return err
}

// kubectlOutput runs kubectl to read something and returns its standard
// output, which is not streamed.
func kubectlOutput(ctx context.Context, cp *Host, stdin []byte, args ...string) (string, error) {
	return runKubectl(ctx, cp, stdin, args, nodes.Stream(nil))
}

func runKubectl(ctx context.Context, cp *Host, stdin []byte, args []string, opts ...nodes.RunOption) (string, error) {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = quote.Shell(a)
	}
	if stdin != nil {
		opts = append(opts, nodes.Stdin(strings.NewReader(string(stdin))))
	}
	out, err := cp.Conn.Sudo(ctx, "kubectl --kubeconfig "+adminConf+" "+strings.Join(quoted, " "), opts...)
	return out.Stdout, err
}
