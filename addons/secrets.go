package addons

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/inventory"
)

// secretWrite is one Secret boot keeps: Want is what it must hold, or nil
// when boot's Secret of that name must be gone (a Secret of that name that
// boot does not own then stays).
type secretWrite struct {
	Namespace, Name string
	Want            *corev1.Secret
	what            string // planned: "create", "update", "replace" or "remove"
}

func (w secretWrite) String() string {
	return w.what + " Secret " + w.Namespace + "/" + w.Name
}

// planSecrets returns the writes among ws that would change something, each
// with what it would do. A Secret boot must write whose name another owner
// holds is an error.
func planSecrets(ctx context.Context, cs kubernetes.Interface, ws ...secretWrite) ([]secretWrite, error) {
	var todo []secretWrite
	for _, w := range ws {
		cur, err := cs.CoreV1().Secrets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if w.Want != nil {
				w.what = "create"
				todo = append(todo, w)
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("reading Secret %s/%s: %w", w.Namespace, w.Name, err)
		}
		owned := cur.Labels[ManagedByLabel] == ManagedByBoot
		switch {
		case w.Want == nil:
			if owned {
				w.what = "remove"
				todo = append(todo, w)
			}
		case !owned:
			return nil, fmt.Errorf("Secret %s/%s exists and is not managed by boot (no label %s=%s); boot leaves it alone", w.Namespace, w.Name, ManagedByLabel, ManagedByBoot)
		case cur.Type != w.Want.Type:
			w.what = "replace" // the type of a Secret cannot change
			todo = append(todo, w)
		case !reflect.DeepEqual(cur.Data, w.Want.Data) || !reflect.DeepEqual(cur.Labels, w.Want.Labels):
			w.what = "update"
			todo = append(todo, w)
		}
	}
	return todo, nil
}

// describeSecrets joins the planned writes' descriptions.
func describeSecrets(ws []secretWrite) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, "; ")
}

// writeSecrets applies planned writes, making their namespaces first.
func writeSecrets(ctx context.Context, cs kubernetes.Interface, ws []secretWrite) error {
	for _, w := range ws {
		if err := writeSecret(ctx, cs, w); err != nil {
			return err
		}
	}
	return nil
}

func writeSecret(ctx context.Context, cs kubernetes.Interface, w secretWrite) error {
	secrets := cs.CoreV1().Secrets(w.Namespace)
	name := w.Namespace + "/" + w.Name
	if w.what == "remove" || w.what == "replace" {
		if err := secrets.Delete(ctx, w.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting Secret %s: %w", name, err)
		}
	}
	switch w.what {
	case "create", "replace":
		if err := ensureNamespace(ctx, cs, w.Namespace); err != nil {
			return err
		}
		if _, err := secrets.Create(ctx, w.Want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Secret %s: %w", name, err)
		}
	case "update":
		cur, err := secrets.Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading Secret %s: %w", name, err)
		}
		cur.Data, cur.Labels = w.Want.Data, w.Want.Labels
		if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating Secret %s: %w", name, err)
		}
	}
	return nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// route53Secrets is the Secret the DNS-01 solver reads: its key pair with
// dns01, gone without.
func (in *Installer) route53Secrets(ctx context.Context) ([]secretWrite, error) {
	w := secretWrite{Namespace: CertManagerNamespace, Name: Route53CredentialsSecret}
	if !usesDNS01(in.Inventory) {
		return []secretWrite{w}, nil
	}
	d, err := in.route53Solver(ctx)
	if err != nil {
		return nil, err
	}
	w.Want = &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: secretMeta(Route53CredentialsSecret, CertManagerNamespace, "route53-credentials"),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			Route53AccessKeyIDKey:     []byte(d.creds.AccessKeyID),
			Route53SecretAccessKeyKey: []byte(d.creds.SecretAccessKey),
		},
	}
	return []secretWrite{w}, nil
}

// registrySecrets returns the registry's credentials and the Secrets kept
// beside it: the credentials (read back when stored, which are never
// replaced; made, with a generated password when the inventory gives none,
// only when there are none), the pull Secret for the maintenance jobs, and
// the S3 keys when the inventory names them.
func (in *Installer) registrySecrets(ctx context.Context, cs kubernetes.Interface, namespace string) (*RegistryCredentials, []secretWrite, error) {
	reg := in.Inventory.Registry
	var password string
	if env := reg.Auth.PasswordEnv; env != "" {
		if password = in.getenv(env); password == "" {
			return nil, nil, fmt.Errorf("registry.auth.passwordEnv: variable %s is empty or unset", env)
		}
	}
	var creds *RegistryCredentials
	var writes []secretWrite
	stored, err := cs.CoreV1().Secrets(namespace).Get(ctx, RegistryCredentialsSecret, metav1.GetOptions{})
	switch {
	case err == nil:
		if creds, err = RegistryCredentialsFromSecret(stored); err != nil {
			return nil, nil, err
		}
		if creds.Username() != reg.Auth.User {
			return nil, nil, fmt.Errorf("registry.auth.user is %q but Secret %s/%s holds credentials for %q; delete that Secret to make new credentials",
				reg.Auth.User, namespace, RegistryCredentialsSecret, creds.Username())
		}
		if password != "" && password != creds.Password() {
			return nil, nil, fmt.Errorf("registry.auth.passwordEnv: the password in %s differs from the one kept in Secret %s/%s, which boot never overwrites; delete that Secret to change the password",
				reg.Auth.PasswordEnv, namespace, RegistryCredentialsSecret)
		}
	case apierrors.IsNotFound(err):
		if creds, err = NewRegistryCredentials(reg.Auth.User, password); err != nil {
			if reg.Auth.PasswordEnv != "" {
				err = fmt.Errorf("registry.auth.passwordEnv (%s): %w", reg.Auth.PasswordEnv, err)
			}
			return nil, nil, err
		}
		writes = append(writes, secretWrite{Namespace: namespace, Name: RegistryCredentialsSecret, Want: creds.Secret(RegistryCredentialsSecret, namespace)})
	default:
		return nil, nil, fmt.Errorf("reading Secret %s/%s: %w", namespace, RegistryCredentialsSecret, err)
	}
	pull, err := creds.PullSecret(RegistryPullSecret, namespace, reg.Host)
	if err != nil {
		return nil, nil, err
	}
	writes = append(writes, secretWrite{Namespace: namespace, Name: RegistryPullSecret, Want: pull})
	if s3 := reg.Storage.S3; reg.Storage.Type == inventory.StorageS3 && s3 != nil && (s3.AccessKeyEnv != "" || s3.SecretKeyEnv != "") {
		keys := map[string][]byte{}
		for _, k := range []struct{ field, env, key string }{
			{"registry.storage.s3.accessKeyEnv", s3.AccessKeyEnv, "accessKeyID"},
			{"registry.storage.s3.secretKeyEnv", s3.SecretKeyEnv, "secretAccessKey"},
		} {
			v := ""
			if k.env != "" {
				v = in.getenv(k.env)
			}
			if v == "" {
				return nil, nil, fmt.Errorf("%s: variable %q is empty or unset (set both accessKeyEnv and secretKeyEnv, or neither)", k.field, k.env)
			}
			keys[k.key] = []byte(v)
		}
		writes = append(writes, secretWrite{Namespace: namespace, Name: RegistryS3Secret, Want: &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: secretMeta(RegistryS3Secret, namespace, "registry-s3"),
			Type:       corev1.SecretTypeOpaque,
			Data:       keys,
		}})
	}
	return creds, writes, nil
}
