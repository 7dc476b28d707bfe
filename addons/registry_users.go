package addons

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/tokenserver"
	"github.com/bootctl/boot/inventory"
)

// Token authentication's Secrets, in the registry's namespace.
const (
	// RegistryTokenSecret holds the token service's signing key (key.pem),
	// its certificate (cert.pem, the registry's auth.token.rootcertbundle)
	// and the users file (users, lines name:role:bcrypt-hash). The key is
	// made once and kept; the users file follows the users' Secrets.
	RegistryTokenSecret = "registry-token"
	TokenKeyKey         = "key.pem"
	TokenCertKey        = "cert.pem"
	TokenUsersKey       = "users"
	// RegistryUserSecretPrefix names each user's Secret (type
	// kubernetes.io/basic-auth, keys username and password): the users of
	// registry.auth.users and inventory.PrunerUser, the pruner's.
	RegistryUserSecretPrefix = "registry-user-"
	// RegistryTokenService is the token service's Service (port 5001) of
	// boot's registry release.
	RegistryTokenService = DefaultRegistryRelease + "-token"
	// TokenIssuer is the tokens' issuer, in the token service's flags and
	// the registry's auth.token.issuer.
	TokenIssuer = "boot-token-server"
	// tokenCertValidity is the certificate's lifetime. The registry takes
	// only the public key from it; the key itself never expires.
	tokenCertValidity = 10 * 365 * 24 * time.Hour
)

// componentRegistryUser labels the users' Secrets, so that those of users
// no longer in the inventory can be found and removed.
const componentRegistryUser = "registry-user"

// RegistryUser is one registry user besides the admin: where its password
// lives and whether this run generated it. The password itself is not here.
type RegistryUser struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Secret    string `json:"secret"` // namespace/name
	Generated bool   `json:"generated"`
}

// registryUserSecretName is user's Secret.
func registryUserSecretName(user string) string { return RegistryUserSecretPrefix + user }

// tokenUser is one line of the users file with the password it must verify.
type tokenUser struct {
	name, role, password string
	hash                 []byte // set when known (the admin's htpasswd hash)
}

// registryTokenSecrets returns, with mode token, the users beside the admin
// and the writes that keep their Secrets and the token Secret; with mode
// htpasswd, the removal of every one of them that boot made. Passwords are
// read back from the Secrets (never re-randomised); a user's passwordEnv
// that differs from the kept password is an error, as for the admin.
func (in *Installer) registryTokenSecrets(ctx context.Context, cs kubernetes.Interface, namespace string, admin *RegistryCredentials) ([]RegistryUser, []secretWrite, error) {
	auth := in.Inventory.Registry.Auth
	if auth.Mode != inventory.AuthToken {
		writes, err := staleUserSecrets(ctx, cs, namespace, nil)
		return nil, append(writes, secretWrite{Namespace: namespace, Name: RegistryTokenSecret}), err
	}
	users := []tokenUser{{name: admin.Username(), role: inventory.RoleAdmin, password: admin.Password(), hash: admin.hash()}}
	var out []RegistryUser
	var writes []secretWrite
	keep := map[string]bool{}
	wanted := append(append([]inventory.RegistryUser{}, auth.Users...), inventory.RegistryUser{Name: inventory.PrunerUser, Role: string(tokenserver.RoleDelete)})
	for i, u := range wanted {
		field := fmt.Sprintf("registry.auth.users[%d]", i)
		password, generated, w, err := in.userPassword(ctx, cs, namespace, field, u)
		if err != nil {
			return nil, nil, err
		}
		name := registryUserSecretName(u.Name)
		keep[name] = true
		writes = append(writes, w)
		users = append(users, tokenUser{name: u.Name, role: u.Role, password: password})
		out = append(out, RegistryUser{Name: u.Name, Role: u.Role, Secret: namespace + "/" + name, Generated: generated})
	}
	stale, err := staleUserSecrets(ctx, cs, namespace, keep)
	if err != nil {
		return nil, nil, err
	}
	token, err := tokenSecret(ctx, cs, namespace, users)
	if err != nil {
		return nil, nil, err
	}
	return out, append(append(writes, stale...), secretWrite{Namespace: namespace, Name: RegistryTokenSecret, Want: token}), nil
}

// userPassword reads u's password back from its Secret, or takes it from
// u.PasswordEnv, or generates it, and returns the write that keeps it.
func (in *Installer) userPassword(ctx context.Context, cs kubernetes.Interface, namespace, field string, u inventory.RegistryUser) (password string, generated bool, w secretWrite, err error) {
	name := registryUserSecretName(u.Name)
	w = secretWrite{Namespace: namespace, Name: name}
	var fromEnv string
	if u.PasswordEnv != "" {
		if fromEnv = in.getenv(u.PasswordEnv); fromEnv == "" {
			return "", false, w, fmt.Errorf("%s.passwordEnv: variable %s is empty or unset", field, u.PasswordEnv)
		}
		if err := checkPassword(fromEnv); err != nil {
			return "", false, w, fmt.Errorf("%s.passwordEnv (%s): %w", field, u.PasswordEnv, err)
		}
	}
	cur, err := cs.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		password = string(cur.Data[corev1.BasicAuthPasswordKey])
		if string(cur.Data[corev1.BasicAuthUsernameKey]) != u.Name || checkPassword(password) != nil {
			return "", false, w, fmt.Errorf("Secret %s/%s: keys %q and %q must hold user %q and a password; delete that Secret to make new ones",
				namespace, name, corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey, u.Name)
		}
		if fromEnv != "" && fromEnv != password {
			return "", false, w, fmt.Errorf("%s.passwordEnv: the password in %s differs from the one kept in Secret %s/%s, which boot never overwrites; delete that Secret to change the password",
				field, u.PasswordEnv, namespace, name)
		}
	case apierrors.IsNotFound(err):
		if password = fromEnv; password == "" {
			if password, err = randomString(rand.Reader, GeneratedPasswordLength); err != nil {
				return "", false, w, err
			}
			generated = true
		}
	default:
		return "", false, w, fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err)
	}
	w.Want = &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: secretMeta(name, namespace, componentRegistryUser),
		Type:       corev1.SecretTypeBasicAuth,
		Data:       map[string][]byte{corev1.BasicAuthUsernameKey: []byte(u.Name), corev1.BasicAuthPasswordKey: []byte(password)},
	}
	w.Want.Labels[registryRoleLabel] = u.Role
	return password, generated, w, nil
}

// registryRoleLabel on a user's Secret says the user's role.
const registryRoleLabel = "registry.bootctl.io/role"

// staleUserSecrets returns the removal of every user Secret boot made in
// namespace whose name keep does not hold.
func staleUserSecrets(ctx context.Context, cs kubernetes.Interface, namespace string, keep map[string]bool) ([]secretWrite, error) {
	list, err := cs.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=" + componentRegistryUser + "," + ManagedByLabel + "=" + ManagedByBoot,
	})
	if err != nil {
		return nil, fmt.Errorf("listing the registry users' Secrets in %s: %w", namespace, err)
	}
	var out []secretWrite
	for _, s := range list.Items {
		if !keep[s.Name] && strings.HasPrefix(s.Name, RegistryUserSecretPrefix) {
			out = append(out, secretWrite{Namespace: namespace, Name: s.Name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// tokenSecret is the token Secret for users: the signing key and its
// certificate read back (made when there are none), and the users file,
// whose kept hashes are reused while they verify, so that the same users
// give the same Secret and nothing rolls.
func tokenSecret(ctx context.Context, cs kubernetes.Interface, namespace string, users []tokenUser) (*corev1.Secret, error) {
	where := fmt.Sprintf("Secret %s/%s", namespace, RegistryTokenSecret)
	var key, cert []byte
	kept := map[string][2]string{} // name: role, hash
	cur, err := cs.CoreV1().Secrets(namespace).Get(ctx, RegistryTokenSecret, metav1.GetOptions{})
	switch {
	case err == nil:
		key, cert = cur.Data[TokenKeyKey], cur.Data[TokenCertKey]
		if err := checkTokenKey(where, key, cert); err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(cur.Data[TokenUsersKey]), "\n") {
			if f := strings.SplitN(line, ":", 3); len(f) == 3 {
				kept[f[0]] = [2]string{f[1], f[2]}
			}
		}
	case apierrors.IsNotFound(err):
		files, err := tokenserver.GenerateKey(TokenIssuer, tokenCertValidity)
		if err != nil {
			return nil, fmt.Errorf("token signing key: %w", err)
		}
		key, cert = files.Key, files.Cert
	default:
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	var file bytes.Buffer
	for _, u := range users {
		hash := u.hash
		if k, ok := kept[u.name]; hash == nil && ok && k[0] == u.role && bcrypt.CompareHashAndPassword([]byte(k[1]), []byte(u.password)) == nil {
			hash = []byte(k[1])
		}
		if hash == nil {
			if hash, err = bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.DefaultCost); err != nil {
				return nil, fmt.Errorf("hash the password of registry user %q: %w", u.name, err)
			}
		}
		fmt.Fprintf(&file, "%s:%s:%s\n", u.name, u.role, hash)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: secretMeta(RegistryTokenSecret, namespace, "registry-token"),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{TokenKeyKey: key, TokenCertKey: cert, TokenUsersKey: file.Bytes()},
	}, nil
}

// checkTokenKey checks a kept signing key and that the certificate beside
// it is of that key. Errors name the Secret and the key, never a value.
func checkTokenKey(where string, key, cert []byte) error {
	signer, err := tokenserver.ParseSigner(where+" key "+TokenKeyKey, key)
	if err != nil {
		return fmt.Errorf("%w; delete that Secret to make a new key", err)
	}
	block, _ := pem.Decode(cert)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("%s: key %q is not a PEM certificate; delete that Secret to make a new key", where, TokenCertKey)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: key %q: %w", where, TokenCertKey, err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || tokenserver.KeyID(pub) != signer.KeyID() {
		return fmt.Errorf("%s: the certificate %q is not of the key %q; delete that Secret to make a new key", where, TokenCertKey, TokenKeyKey)
	}
	return nil
}
