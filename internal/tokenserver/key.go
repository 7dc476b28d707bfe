package tokenserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// Signer signs tokens with an ECDSA P-256 key (ES256).
type Signer struct {
	key *ecdsa.PrivateKey
	kid string
}

// NewSigner signs with key, which must be a P-256 key.
func NewSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the signing key is on curve %s; ES256 needs P-256", key.Curve.Params().Name)
	}
	if x, _ := coordinates(&key.PublicKey); x == nil {
		return nil, errors.New("the signing key is not a valid P-256 key")
	}
	return &Signer{key: key, kid: KeyID(&key.PublicKey)}, nil
}

// LoadSigner reads a PEM private key from path: "EC PRIVATE KEY" (SEC 1,
// what openssl ecparam -genkey and Helm's genPrivateKey "ecdsa" write) or
// "PRIVATE KEY" (PKCS #8), on curve P-256.
func LoadSigner(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return ParseSigner(path, data)
}

// ParseSigner is LoadSigner for a key already read; name labels the errors.
func ParseSigner(name string, data []byte) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing key %s: no PEM block", name)
	}
	var key *ecdsa.PrivateKey
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var k any
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err == nil {
			var ok bool
			if key, ok = k.(*ecdsa.PrivateKey); !ok {
				return nil, fmt.Errorf("signing key %s: a %T, expected an ECDSA P-256 key", name, k)
			}
		}
	default:
		return nil, fmt.Errorf("signing key %s: PEM block %q, expected \"EC PRIVATE KEY\" or \"PRIVATE KEY\"", name, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", name, err)
	}
	s, err := NewSigner(key)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", name, err)
	}
	return s, nil
}

// KeyID is the token header's kid for the signing key.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey is the key the registry verifies tokens with.
func (s *Signer) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// KeyID is the JWK thumbprint (RFC 7638, SHA-256, base64url) of pub as
// distribution v3 computes it for each certificate of its
// auth.token.rootcertbundle to find a token's key by kid: the coordinates
// are encoded without leading zero bytes. For keys from GenerateKey, whose
// coordinates are full length, that is exactly RFC 7638's thumbprint.
func KeyID(pub *ecdsa.PublicKey) string {
	b64 := base64.RawURLEncoding.EncodeToString
	x, y := coordinates(pub)
	jwk := fmt.Sprintf(`{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`,
		pub.Curve.Params().Name, b64(bytes.TrimLeft(x, "\x00")), b64(bytes.TrimLeft(y, "\x00")))
	sum := sha256.Sum256([]byte(jwk))
	return b64(sum[:])
}

// coordinates are pub's X and Y, full length (32 bytes on P-256); nil for
// an invalid key.
func coordinates(pub *ecdsa.PublicKey) (x, y []byte) {
	b, err := pub.Bytes()
	if err != nil {
		return nil, nil
	}
	n := (len(b) - 1) / 2
	return b[1 : 1+n], b[1+n:]
}

// Sign returns the compact JWS of claims: header {"alg":"ES256","typ":"JWT",
// "kid":...}, signature r||s, 32 bytes each.
func (s *Signer) Sign(claims any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": s.kid})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(input))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return input + "." + b64(sig), nil
}

// KeyFiles are the PEM and JSON documents of a signing key.
type KeyFiles struct {
	// Key is the private key, PEM "EC PRIVATE KEY": the token server's --key.
	Key []byte
	// Cert is a self-signed certificate of the public key, PEM: the
	// registry's auth.token.rootcertbundle.
	Cert []byte
	// JWKS is a JSON Web Key Set with the public key under the tokens' kid:
	// the registry's auth.token.jwks (an alternative to the certificate).
	JWKS []byte
}

// GenerateKey makes a new P-256 signing key, its certificate (subject CN
// issuer, valid for validity) and its JWKS.
func GenerateKey(issuer string, validity time.Duration) (*KeyFiles, error) {
	var key *ecdsa.PrivateKey
	for key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		// Full-length coordinates make distribution's thumbprint and RFC
		// 7638's the same string, so any JWK tool agrees on the kid.
		if x, y := coordinates(&k.PublicKey); x[0] != 0 && y[0] != 0 {
			key = k
		}
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	cert, err := SelfSignedCert(key, issuer, validity)
	if err != nil {
		return nil, err
	}
	jwks, err := JWKS(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &KeyFiles{
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		Cert: cert,
		JWKS: jwks,
	}, nil
}

// SelfSignedCert is a PEM certificate of key's public key, signed by key,
// for the registry's auth.token.rootcertbundle.
func SelfSignedCert(key *ecdsa.PrivateKey, issuer string, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		return nil, errors.New("certificate validity must be positive")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: issuer},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// JWKS is a JSON Web Key Set holding pub under kid KeyID(pub), for the
// registry's auth.token.jwks.
func JWKS(pub *ecdsa.PublicKey) ([]byte, error) {
	if pub.Curve != elliptic.P256() {
		return nil, errors.New("JWKS: the key is not on P-256")
	}
	b64 := base64.RawURLEncoding.EncodeToString
	x, y := coordinates(pub)
	if x == nil {
		return nil, errors.New("JWKS: not a valid P-256 key")
	}
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{{Kty: "EC", Crv: "P-256", X: b64(x), Y: b64(y), Kid: KeyID(pub), Alg: "ES256", Use: "sig"}}}
	return json.MarshalIndent(set, "", "  ")
}
