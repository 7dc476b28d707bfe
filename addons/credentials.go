package addons

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Keys of the registry credentials Secret, which the chart reads by name
// (value credentials.existingSecret).
const (
	CredentialsKeyUsername      = "username"
	CredentialsKeyPassword      = "password"
	CredentialsKeyHtpasswd      = "htpasswd"
	CredentialsKeyHTTPSecret    = "httpSecret"
	CredentialsKeyRedisPassword = "redisPassword"
)

// Lengths of generated secrets, in characters of [A-Za-z0-9] (about 5.95 bits each).
const (
	GeneratedPasswordLength = 32 // ~190 bits
	httpSecretLength        = 48
	redisPasswordLength     = 40
	minPasswordLength       = 12
	// bcrypt ignores everything after 72 bytes, so a longer password is refused.
	maxPasswordBytes = 72
	maxUsernameBytes = 64
)

// alphanumeric is the alphabet of generated secrets. It is safe unquoted in YAML
// (distribution parses REGISTRY_* environment values as YAML), in shell words, in
// Redis' config file and in URLs.
const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RegistryCredentials are the registry's secrets: the admin user's password and
// its bcrypt htpasswd line, the registry's http.secret and the Redis password.
// They are generated once and kept in a Secret; an upgrade reads them back with
// RegistryCredentialsFromSecret, so nothing is re-randomised.
//
// Formatting (fmt, %v, %+v, %#v, ...) and JSON encoding never show a secret.
type RegistryCredentials struct {
	username      string
	password      string
	htpasswd      string
	httpSecret    string
	redisPassword string
	generated     bool
}

// NewRegistryCredentials makes credentials for user. When password is empty a
// random one is generated (GeneratedPasswordLength characters from crypto/rand);
// Generated then reports true so the caller can show it to the operator once.
// http.secret and the Redis password are always generated.
func NewRegistryCredentials(user, password string) (*RegistryCredentials, error) {
	if err := checkUsername(user); err != nil {
		return nil, err
	}
	c := &RegistryCredentials{username: user, password: password}
	var err error
	if password == "" {
		if c.password, err = randomString(rand.Reader, GeneratedPasswordLength); err != nil {
			return nil, err
		}
		c.generated = true
	} else if err := checkPassword(password); err != nil {
		return nil, err
	}
	if c.httpSecret, err = randomString(rand.Reader, httpSecretLength); err != nil {
		return nil, err
	}
	if c.redisPassword, err = randomString(rand.Reader, redisPasswordLength); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(c.password), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("hash registry password: %w", err)
	}
	c.htpasswd = user + ":" + string(hash) + "\n"
	return c, nil
}

func checkUsername(user string) error {
	switch {
	case user == "":
		return errors.New("registry user name is empty")
	case len(user) > maxUsernameBytes:
		return fmt.Errorf("registry user name is longer than %d bytes", maxUsernameBytes)
	case strings.ContainsRune(user, ':'):
		return errors.New("registry user name contains ':', which htpasswd and basic auth cannot carry")
	case strings.IndexFunc(user, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("registry user name contains white space or control characters")
	}
	return nil
}

// checkPassword never puts the password into its error.
func checkPassword(password string) error {
	switch {
	case len(password) < minPasswordLength:
		return fmt.Errorf("registry password is shorter than %d characters", minPasswordLength)
	case len(password) > maxPasswordBytes:
		return fmt.Errorf("registry password is longer than %d bytes (bcrypt's limit)", maxPasswordBytes)
	case strings.IndexFunc(password, unicode.IsControl) >= 0:
		return errors.New("registry password contains control characters")
	}
	return nil
}

// randomString returns n characters of alphanumeric, drawn uniformly from r by
// rejection sampling (bytes >= 248 = 4*62 are dropped, so there is no modulo bias).
func randomString(r io.Reader, n int) (string, error) {
	const limit = 256 - 256%len(alphanumeric)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/8+8)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphanumeric[int(b)%len(alphanumeric)])
			}
		}
	}
	return string(out), nil
}

// Username is the registry admin user.
func (c *RegistryCredentials) Username() string { return c.username }

// Password is the admin password (to show once, or to log in with).
func (c *RegistryCredentials) Password() string { return c.password }

// Generated reports whether the password was generated by NewRegistryCredentials.
func (c *RegistryCredentials) Generated() bool { return c.generated }

// Htpasswd is the htpasswd file: one bcrypt line for the user.
func (c *RegistryCredentials) Htpasswd() string { return c.htpasswd }

// hash is the admin's bcrypt hash, from the htpasswd line.
func (c *RegistryCredentials) hash() []byte {
	_, h, _ := strings.Cut(strings.TrimRight(c.htpasswd, "\n"), ":")
	return []byte(h)
}

// HTTPSecret is the registry's http.secret (signs upload state; must be the same
// in every replica and across restarts).
func (c *RegistryCredentials) HTTPSecret() string { return c.httpSecret }

// RedisPassword is the password of the registry's Redis.
func (c *RegistryCredentials) RedisPassword() string { return c.redisPassword }

// String shows the user only.
func (c RegistryCredentials) String() string {
	return fmt.Sprintf("registry credentials for user %q (secrets redacted)", c.username)
}

// GoString keeps %#v from printing the fields.
func (c RegistryCredentials) GoString() string { return c.String() }

// Format makes every fmt verb print String, so no verb reaches the fields.
func (c RegistryCredentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// MarshalJSON writes the user only.
func (c RegistryCredentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"username": c.username})
}

// secretMeta names and labels a Secret boot creates.
func secretMeta(name, namespace, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: namespace,
		Labels: map[string]string{
			"app.kubernetes.io/part-of":    "boot",
			"app.kubernetes.io/managed-by": "boot",
			"app.kubernetes.io/component":  component,
		},
	}
}

// Secret returns the Kubernetes Secret that holds the credentials, in the layout the
// chart expects (keys CredentialsKey*).
func (c *RegistryCredentials) Secret(name, namespace string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: secretMeta(name, namespace, "registry-credentials"),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			CredentialsKeyUsername:      []byte(c.username),
			CredentialsKeyPassword:      []byte(c.password),
			CredentialsKeyHtpasswd:      []byte(c.htpasswd),
			CredentialsKeyHTTPSecret:    []byte(c.httpSecret),
			CredentialsKeyRedisPassword: []byte(c.redisPassword),
		},
	}
}

// PullSecret returns a kubernetes.io/dockerconfigjson Secret that lets the kubelet
// pull from the registry at host (value maintenance.imagePullSecrets).
func (c *RegistryCredentials) PullSecret(name, namespace, host string) (*corev1.Secret, error) {
	if host == "" {
		return nil, errors.New("pull secret: registry host is empty")
	}
	auth := base64.StdEncoding.EncodeToString([]byte(c.username + ":" + c.password))
	doc, err := json.Marshal(map[string]any{
		"auths": map[string]any{host: map[string]string{"username": c.username, "password": c.password, "auth": auth}},
	})
	if err != nil {
		return nil, errors.New("pull secret: encode docker config")
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: secretMeta(name, namespace, "registry-pull-secret"),
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: doc},
	}, nil
}

// RegistryCredentialsFromSecret reads credentials back from a Secret made by
// Secret, so an upgrade keeps them. It checks that every key is there and that the
// htpasswd line belongs to the user and verifies the password. Errors name the
// Secret and the key, never a value.
func RegistryCredentialsFromSecret(s *corev1.Secret) (*RegistryCredentials, error) {
	where := fmt.Sprintf("secret %s/%s", s.Namespace, s.Name)
	get := func(key string) (string, error) {
		v, ok := s.Data[key]
		if !ok {
			if sv, ok := s.StringData[key]; ok {
				v = []byte(sv)
			}
		}
		if len(v) == 0 {
			return "", fmt.Errorf("%s: key %q is missing or empty", where, key)
		}
		return string(v), nil
	}
	c := &RegistryCredentials{}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{CredentialsKeyUsername, &c.username},
		{CredentialsKeyPassword, &c.password},
		{CredentialsKeyHtpasswd, &c.htpasswd},
		{CredentialsKeyHTTPSecret, &c.httpSecret},
		{CredentialsKeyRedisPassword, &c.redisPassword},
	} {
		v, err := get(f.key)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	if err := checkUsername(c.username); err != nil {
		return nil, fmt.Errorf("%s: key %q: %w", where, CredentialsKeyUsername, err)
	}
	user, hash, ok := strings.Cut(strings.TrimRight(c.htpasswd, "\n"), ":")
	if !ok || user != c.username || strings.Contains(hash, "\n") {
		return nil, fmt.Errorf("%s: key %q must be one line for user %q", where, CredentialsKeyHtpasswd, c.username)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.password)); err != nil {
		return nil, fmt.Errorf("%s: key %q does not verify key %q (not a bcrypt hash of that password)", where, CredentialsKeyHtpasswd, CredentialsKeyPassword)
	}
	return c, nil
}
