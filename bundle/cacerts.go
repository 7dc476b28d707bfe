package bundle

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// caPackage is the Debian package whose certificate authorities the
// registry image trusts (for S3 and other storage back ends over TLS).
const caPackage = "ca-certificates"

// caBundlePath is where Go's crypto/x509 (and OpenSSL on Debian) look for
// the system's trusted certificates.
const caBundlePath = "etc/ssl/certs/ca-certificates.crt"

// caBundle returns the certificate bundle that installing Debian's
// ca-certificates would write to /etc/ssl/certs/ca-certificates.crt
// (update-ca-certificates with every certificate enabled: the files under
// /usr/share/ca-certificates in sorted order, each ending in a newline)
// and the package's version. Every certificate must parse.
func (b *builder) caBundle(ctx context.Context) ([]byte, string, error) {
	versions, err := candidateVersions(ctx, []string{caPackage})
	if err != nil {
		return nil, "", err
	}
	root, err := b.unpackDebs(ctx, []string{caPackage}, versions)
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(root)
	data, err := concatCertificates(filepath.Join(root, "usr/share/ca-certificates"))
	if err != nil {
		return nil, "", fmt.Errorf("debian package %s %s: %w", caPackage, versions[caPackage], err)
	}
	return data, versions[caPackage], nil
}

// concatCertificates concatenates the *.crt files under dir, sorted by
// their path below dir, after checking that each holds one certificate.
func concatCertificates(dir string) ([]byte, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".crt") {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no certificates under %s", dir)
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return nil, err
		}
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: no PEM certificate", n)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out.Write(data)
		if !bytes.HasSuffix(data, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}
