package lab

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// repoSigner signs the lab mirror's Release files: an Ed25519 OpenPGP key
// (v4, SHA-512 signatures), which bookworm's gpgv and trixie's sqv accept.
// The private key lives only in memory.
type repoSigner struct {
	entity *openpgp.Entity
	config *packet.Config
}

// newRepoSigner makes a new signing key, its signatures dated by now.
func newRepoSigner(now func() time.Time) (*repoSigner, error) {
	config := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, DefaultHash: crypto.SHA512, Time: now}
	e, err := openpgp.NewEntity("boot lab package mirror", "", "mirror@"+LabZone, config)
	if err != nil {
		return nil, fmt.Errorf("lab mirror signing key: %w", err)
	}
	return &repoSigner{entity: e, config: config}, nil
}

// publicKey is the public key, ASCII-armored (what Docker's gpg and
// Kubernetes' Release.key files are).
func (s *repoSigner) publicKey() ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := s.entity.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// signRelease writes dir/Release with release, and beside it Release.gpg (a
// detached armored signature) and InRelease (the clearsigned Release).
func (s *repoSigner) signRelease(dir string, release []byte) error {
	var detached bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&detached, s.entity, bytes.NewReader(release), s.config); err != nil {
		return fmt.Errorf("sign %s: %w", filepath.Join(dir, "Release"), err)
	}
	detached.WriteByte('\n')
	var inline bytes.Buffer
	w, err := clearsign.Encode(&inline, s.entity.PrivateKey, s.config)
	if err != nil {
		return fmt.Errorf("clearsign %s: %w", filepath.Join(dir, "Release"), err)
	}
	if _, err := w.Write(release); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	clearsigned, err := withArmorChecksum(inline.Bytes())
	if err != nil {
		return fmt.Errorf("clearsign %s: %w", filepath.Join(dir, "Release"), err)
	}
	for name, data := range map[string][]byte{"Release": release, "Release.gpg": detached.Bytes(), "InRelease": clearsigned} {
		if err := writeFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// withArmorChecksum re-armors the signature of a clearsigned message with
// the CRC-24 line, which go-crypto's clearsign leaves out and gpg 2.2
// (bookworm's gpgv) needs: without it, it reads the END line as data.
func withArmorChecksum(clearsigned []byte) ([]byte, error) {
	i := bytes.Index(clearsigned, []byte("-----BEGIN PGP SIGNATURE-----"))
	if i < 0 {
		return nil, errors.New("no signature block")
	}
	block, err := armor.Decode(bytes.NewReader(clearsigned[i:]))
	if err != nil {
		return nil, err
	}
	sig, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(clearsigned[:i])
	w, err := armor.Encode(&out, block.Type, nil)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(sig); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// packagesStanza is the Packages entry of the .deb at file (Filename
// filename, relative to the repository's base): its control fields, then
// where it is and its hashes.
func packagesStanza(control, file, filename string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, s1, s256 := md5.New(), sha1.New(), sha256.New()
	size, err := io.Copy(io.MultiWriter(m, s1, s256), f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	// Description, a multi-line field, stays last as apt-ftparchive writes it.
	i := strings.Index(control, "Description: ")
	if i < 0 {
		return "", fmt.Errorf("%s: control file without Description", file)
	}
	return fmt.Sprintf("%sFilename: %s\nSize: %d\nMD5sum: %s\nSHA1: %s\nSHA256: %s\n%s",
		control[:i], filename, size, hexSum(m), hexSum(s1), hexSum(s256), control[i:]), nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// writePackages writes dir/Packages (the stanzas, separated by blank lines)
// and dir/Packages.gz.
func writePackages(dir string, stanzas []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	text := []byte(strings.Join(stanzas, "\n"))
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(text); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "Packages"), text, 0o644); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "Packages.gz"), gz.Bytes(), 0o644)
}

// releaseFile is a Release file: fields (in order, "Name: value" lines),
// Date, and the MD5Sum, SHA1 and SHA256 of each index file (paths relative
// to dir, the folder the Release is in).
func releaseFile(dir string, fields []string, date time.Time, indexes []string) ([]byte, error) {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f + "\n")
	}
	fmt.Fprintf(&b, "Date: %s\n", date.UTC().Format(time.RFC1123Z))
	type sum struct {
		md5, sha1, sha256 string
		size              int64
	}
	sums := make([]sum, len(indexes))
	for i, rel := range indexes {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		m, s1, s256 := md5.Sum(data), sha1.Sum(data), sha256.Sum256(data)
		sums[i] = sum{hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s256[:]), int64(len(data))}
	}
	for _, section := range []struct {
		name string
		get  func(sum) string
	}{
		{"MD5Sum", func(s sum) string { return s.md5 }},
		{"SHA1", func(s sum) string { return s.sha1 }},
		{"SHA256", func(s sum) string { return s.sha256 }},
	} {
		b.WriteString(section.name + ":\n")
		for i, rel := range indexes {
			fmt.Fprintf(&b, " %s %16d %s\n", section.get(sums[i]), sums[i].size, rel)
		}
	}
	return []byte(b.String()), nil
}
