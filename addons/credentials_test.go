package addons

import (
	"bytes"
	cryptoRand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func isAlphanumeric(s string) bool {
	return strings.Trim(s, alphanumeric) == ""
}

// secretsOf lists every secret value that must never be printed.
func secretsOf(c *RegistryCredentials) []string {
	_, hash, _ := strings.Cut(strings.TrimSpace(c.Htpasswd()), ":")
	return []string{c.Password(), hash, c.HTTPSecret(), c.RedisPassword()}
}

func TestNewRegistryCredentialsGenerated(t *testing.T) {
	c, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Generated() {
		t.Error("Generated() = false for a generated password")
	}
	for _, s := range []struct {
		name  string
		value string
		n     int
	}{
		{"password", c.Password(), GeneratedPasswordLength},
		{"http secret", c.HTTPSecret(), httpSecretLength},
		{"redis password", c.RedisPassword(), redisPasswordLength},
	} {
		if len(s.value) != s.n || !isAlphanumeric(s.value) {
			t.Errorf("%s: %d characters, alphanumeric=%v; want %d alphanumeric", s.name, len(s.value), isAlphanumeric(s.value), s.n)
		}
	}
	user, hash, ok := strings.Cut(c.Htpasswd(), ":")
	if !ok || user != "admin" || !strings.HasSuffix(hash, "\n") || strings.Count(c.Htpasswd(), "\n") != 1 {
		t.Fatalf("htpasswd is not one line for admin: %q", user)
	}
	hash = strings.TrimSuffix(hash, "\n")
	if !strings.HasPrefix(hash, "$2") {
		t.Error("htpasswd entry is not bcrypt")
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost < bcrypt.DefaultCost {
		t.Errorf("bcrypt cost = %d (%v), want >= %d", cost, err, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password())); err != nil {
		t.Errorf("htpasswd does not verify the password: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password()+"x")); err == nil {
		t.Error("htpasswd verifies a wrong password")
	}

	// Two runs never share a secret.
	d, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range secretsOf(c) {
		if s == secretsOf(d)[i] {
			t.Errorf("secret %d repeated across two NewRegistryCredentials calls", i)
		}
	}
}

func TestNewRegistryCredentialsGivenPassword(t *testing.T) {
	const pw = "correct horse battery staple"
	c, err := NewRegistryCredentials("ci-bot", pw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Password() != pw || c.Generated() {
		t.Errorf("given password not kept (generated=%v)", c.Generated())
	}
	_, hash, _ := strings.Cut(strings.TrimSpace(c.Htpasswd()), ":")
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); err != nil {
		t.Errorf("htpasswd does not verify the given password: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse battery stapler")); err == nil {
		t.Error("htpasswd verifies a wrong password")
	}
}

func TestNewRegistryCredentialsRejects(t *testing.T) {
	for _, tc := range []struct {
		user, password, want string
	}{
		{"", "", "user name is empty"},
		{"ad:min", "", "contains ':'"},
		{"ad min", "", "white space"},
		{strings.Repeat("u", 65), "", "longer than 64"},
		{"admin", "short-pw", "shorter than 12"},
		{"admin", strings.Repeat("p", 73), "longer than 72 bytes"},
		{"admin", "password\nwith-newline", "control characters"},
	} {
		_, err := NewRegistryCredentials(tc.user, tc.password)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewRegistryCredentials(%q, <password>) error = %v, want %q", tc.user, err, tc.want)
			continue
		}
		if tc.password != "" && strings.Contains(err.Error(), tc.password) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// TestRandomStringUniform checks the sampler against a known byte stream: bytes at
// or above 248 are skipped (no modulo bias) and others map onto the alphabet.
func TestRandomStringUniform(t *testing.T) {
	stream := []byte{0, 61, 62, 248, 255, 247, 1}
	// randomString reads n+n/8+8 bytes at a time; pad with 250 (always rejected).
	src := bytes.NewReader(append(stream, bytes.Repeat([]byte{250}, 64)...))
	got, err := randomString(src, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := string([]byte{alphanumeric[0], alphanumeric[61], alphanumeric[0], alphanumeric[247%62], alphanumeric[1]})
	if got != want {
		t.Errorf("randomString = %q, want %q", got, want)
	}
	if _, err := randomString(bytes.NewReader(nil), 5); err == nil {
		t.Error("no error when the random source is exhausted")
	}

	// Every character of the alphabet turns up in generated passwords.
	seen := map[rune]bool{}
	for range 100 {
		s, err := randomString(cryptoRand.Reader, GeneratedPasswordLength)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s {
			seen[r] = true
		}
	}
	if len(seen) != len(alphanumeric) {
		t.Errorf("3200 generated characters use %d of %d alphabet characters", len(seen), len(alphanumeric))
	}
}

func TestRegistryCredentialsNeverPrinted(t *testing.T) {
	c, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		Creds *RegistryCredentials
		Value RegistryCredentials
	}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c), fmt.Sprintf(verb, holder{c, *c}))
	}
	j, err := json.Marshal(holder{c, *c})
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j), fmt.Errorf("wrapped: %v", c).Error())
	for _, out := range outputs {
		for _, s := range secretsOf(c) {
			if strings.Contains(out, s) {
				t.Fatalf("a secret is printed in %q", out)
			}
		}
		// Hex (%x) of a secret would leak it too.
		for _, s := range secretsOf(c) {
			if strings.Contains(out, fmt.Sprintf("%x", s)) {
				t.Fatalf("a hex-encoded secret is printed")
			}
		}
	}
	if !strings.Contains(fmt.Sprint(c), `"admin"`) {
		t.Errorf("String() = %q, want the user name", fmt.Sprint(c))
	}
}

func TestRegistryCredentialsSecretRoundTrip(t *testing.T) {
	c, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Secret("registry-credentials", "registry")
	if s.Name != "registry-credentials" || s.Namespace != "registry" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret meta = %s/%s %s", s.Namespace, s.Name, s.Type)
	}
	for _, k := range []string{CredentialsKeyUsername, CredentialsKeyPassword, CredentialsKeyHtpasswd, CredentialsKeyHTTPSecret, CredentialsKeyRedisPassword} {
		if len(s.Data[k]) == 0 {
			t.Errorf("secret key %q empty", k)
		}
	}
	// The Secret survives YAML (as applied) and reads back to the same credentials.
	y, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back corev1.Secret
	if err := yaml.UnmarshalStrict(y, &back); err != nil {
		t.Fatal(err)
	}
	d, err := RegistryCredentialsFromSecret(&back)
	if err != nil {
		t.Fatal(err)
	}
	if d.Username() != c.Username() || d.Password() != c.Password() || d.Htpasswd() != c.Htpasswd() ||
		d.HTTPSecret() != c.HTTPSecret() || d.RedisPassword() != c.RedisPassword() {
		t.Error("credentials changed across Secret -> RegistryCredentialsFromSecret")
	}
	if d.Generated() {
		t.Error("credentials read back report Generated")
	}
}

func TestRegistryCredentialsFromSecretRejects(t *testing.T) {
	c, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Secret)
		want   string
	}{
		{"missing key", func(s *corev1.Secret) { delete(s.Data, CredentialsKeyHTTPSecret) }, `key "httpSecret" is missing`},
		{"empty key", func(s *corev1.Secret) { s.Data[CredentialsKeyRedisPassword] = nil }, `key "redisPassword" is missing`},
		{"wrong password", func(s *corev1.Secret) { s.Data[CredentialsKeyPassword] = []byte(other.Password()) }, "does not verify"},
		{"other user", func(s *corev1.Secret) { s.Data[CredentialsKeyUsername] = []byte("root") }, `one line for user "root"`},
		{"not bcrypt", func(s *corev1.Secret) { s.Data[CredentialsKeyHtpasswd] = []byte("admin:{SHA}abc\n") }, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := c.Secret("creds", "registry")
			tc.mutate(s)
			_, err := RegistryCredentialsFromSecret(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "registry/creds") {
				t.Fatalf("error = %v, want %q naming registry/creds", err, tc.want)
			}
			for _, v := range append(secretsOf(c), other.Password()) {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestRegistryCredentialsPullSecret(t *testing.T) {
	c, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.PullSecret("registry-pull", "registry", "registry.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeDockerConfigJson {
		t.Errorf("type = %s", s.Type)
	}
	var doc struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &doc); err != nil {
		t.Fatal(err)
	}
	a := doc.Auths["registry.example.com"]
	dec, err := base64.StdEncoding.DecodeString(a.Auth)
	if err != nil || string(dec) != "admin:"+c.Password() || a.Username != "admin" || a.Password != c.Password() {
		t.Error("docker config auth does not carry admin and the password")
	}
	if _, err := c.PullSecret("x", "y", ""); err == nil {
		t.Error("no error for an empty host")
	}
}
