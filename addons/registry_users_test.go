package addons

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/tokenserver"
)

// TestRegistryTokenSecrets checks, against a real kube-apiserver, the
// Secrets of mode token: each user's password is generated once (or taken
// from its passwordEnv) and read back after; the token Secret's users file
// is the token server's format and authenticates every user with its role;
// a second run changes nothing (kept hashes and key); a user dropped from
// the inventory loses its Secret and its line; a changed passwordEnv is
// refused without the password in the error; mode htpasswd removes them all.
func TestRegistryTokenSecrets(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "docker-registry"
	env := map[string]string{"NODES_PW": "nodes-password-from-env"}
	const token = "  auth:\n    mode: token\n    users:\n      - name: ci\n        role: push\n      - name: nodes\n        role: pull\n        passwordEnv: NODES_PW\n" +
		"  maintenance:\n    image: mirror.example.com/bootctl/boot@" + testMaintenanceDigest + "\n"
	in := &Installer{Inventory: testInventory(t, token), Getenv: func(k string) string { return env[k] }}
	// apply runs what the "registry secrets" step runs and returns the
	// users and what it changed.
	apply := func() ([]RegistryUser, []string, error) {
		t.Helper()
		creds, writes, err := in.registrySecrets(ctx, cs, ns)
		if err != nil {
			return nil, nil, err
		}
		users, more, err := in.registryTokenSecrets(ctx, cs, ns, creds)
		if err != nil {
			return nil, nil, err
		}
		todo, err := planSecrets(ctx, cs, append(writes, more...)...)
		if err != nil {
			return nil, nil, err
		}
		var done []string
		for _, w := range todo {
			done = append(done, w.String())
		}
		return users, done, writeSecrets(ctx, cs, todo)
	}
	secret := func(name string) *corev1.Secret {
		t.Helper()
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	password := func(user string) string {
		t.Helper()
		if user == "admin" {
			return string(secret(RegistryCredentialsSecret).Data[CredentialsKeyPassword])
		}
		s := secret(registryUserSecretName(user))
		if s.Type != corev1.SecretTypeBasicAuth || string(s.Data[corev1.BasicAuthUsernameKey]) != user || s.Labels[ManagedByLabel] != ManagedByBoot {
			t.Fatalf("Secret of %s: type %s, labels %v", user, s.Type, s.Labels)
		}
		return string(s.Data[corev1.BasicAuthPasswordKey])
	}
	// authenticate loads the token Secret's key and users file into the
	// token server and checks every user's password and role.
	authenticate := func(want map[string]tokenserver.Role) {
		t.Helper()
		tok := secret(RegistryTokenSecret)
		dir := t.TempDir()
		for _, k := range []string{TokenKeyKey, TokenUsersKey} {
			if err := os.WriteFile(filepath.Join(dir, k), tok.Data[k], 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := checkTokenKey("token Secret", tok.Data[TokenKeyKey], tok.Data[TokenCertKey]); err != nil {
			t.Fatal(err)
		}
		users, err := tokenserver.LoadUsers(filepath.Join(dir, TokenUsersKey), tokenserver.DefaultCache)
		if err != nil {
			t.Fatal(err)
		}
		if users.Len() != len(want) {
			t.Fatalf("users file has %d users, want %v", users.Len(), want)
		}
		for name, role := range want {
			if got, err := users.Authenticate(name, password(name)); err != nil || got != role {
				t.Errorf("user %s: role %q, %v; want %q", name, got, err, role)
			}
			if _, err := users.Authenticate(name, "not-the-password"); err == nil {
				t.Errorf("user %s: a wrong password authenticates", name)
			}
		}
	}

	users, done, err := apply()
	if err != nil {
		t.Fatal(err)
	}
	want := []RegistryUser{
		{Name: "ci", Role: "push", Secret: ns + "/registry-user-ci", Generated: true},
		{Name: "nodes", Role: "pull", Secret: ns + "/registry-user-nodes"},
		{Name: "boot-pruner", Role: "delete", Secret: ns + "/registry-user-boot-pruner", Generated: true},
	}
	if !slices.Equal(users, want) {
		t.Fatalf("users %+v, want %+v", users, want)
	}
	if len(done) != 6 {
		t.Fatalf("first run: %q", done)
	}
	if password("nodes") != env["NODES_PW"] || len(password("ci")) != GeneratedPasswordLength {
		t.Fatal("passwords: nodes' is not its passwordEnv's or ci's is not generated")
	}
	all := map[string]tokenserver.Role{"admin": tokenserver.RoleAdmin, "ci": tokenserver.RolePush, "nodes": tokenserver.RolePull, "boot-pruner": tokenserver.RoleDelete}
	authenticate(all)
	// The admin's line reuses the htpasswd hash: one bcrypt per password.
	adminHash := strings.TrimPrefix(strings.TrimSpace(string(secret(RegistryCredentialsSecret).Data[CredentialsKeyHtpasswd])), "admin:")
	if !strings.HasPrefix(string(secret(RegistryTokenSecret).Data[TokenUsersKey]), "admin:admin:"+adminHash+"\n") {
		t.Error("the admin's line is not its htpasswd hash")
	}
	key := secret(RegistryTokenSecret).Data[TokenKeyKey]

	// Again: nothing changes, nothing is generated.
	users, done, err = apply()
	if err != nil || len(done) != 0 || users[0].Generated || users[2].Generated {
		t.Fatalf("second run: %q, users %+v, %v", done, users, err)
	}

	// ci leaves: its Secret and its line go; the key stays.
	in.Inventory = testInventory(t, strings.Replace(token, "      - name: ci\n        role: push\n", "", 1))
	if _, done, err = apply(); err != nil || !slices.Equal(done, []string{"remove Secret docker-registry/registry-user-ci", "update Secret docker-registry/registry-token"}) {
		t.Fatalf("ci removed: %q, %v", done, err)
	}
	delete(all, "ci")
	authenticate(all)
	if !slices.Equal(secret(RegistryTokenSecret).Data[TokenKeyKey], key) {
		t.Error("the signing key changed")
	}

	// A different password in nodes' variable is refused, not written.
	env["NODES_PW"] = "another-password-entirely"
	_, _, err = apply()
	if err == nil || !strings.HasPrefix(err.Error(), "registry.auth.users[0].passwordEnv: the password in NODES_PW differs from the one kept in Secret docker-registry/registry-user-nodes") ||
		strings.Contains(err.Error(), "another-password") {
		t.Fatalf("changed password: %v", err)
	}
	env["NODES_PW"] = "short"
	if _, _, err = apply(); err == nil || !strings.Contains(err.Error(), "registry.auth.users[0].passwordEnv (NODES_PW): registry password is shorter than 12") {
		t.Fatalf("short password: %v", err)
	}

	// Mode htpasswd: the token Secret and every user's go.
	in.Inventory = testInventory(t, "  auth:\n    mode: htpasswd\n")
	if _, done, err = apply(); err != nil || !slices.Equal(done, []string{
		"remove Secret docker-registry/registry-user-boot-pruner", "remove Secret docker-registry/registry-user-nodes", "remove Secret docker-registry/registry-token",
	}) {
		t.Fatalf("htpasswd: %q, %v", done, err)
	}
	for _, name := range []string{RegistryTokenSecret, "registry-user-nodes", "registry-user-boot-pruner"} {
		if _, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Secret %s after htpasswd: %v", name, err)
		}
	}
	if bcrypt.CompareHashAndPassword([]byte(adminHash), []byte(password("admin"))) != nil {
		t.Error("the admin's credentials changed")
	}
}
