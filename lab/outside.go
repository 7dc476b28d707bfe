package lab

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bootctl/boot/bundle"
)

// The lab's outside world: what a cluster reaches beyond its own hosts,
// made of real implementations running on this machine at the lab bridge's
// gateway address (l.Gateway):
//
//   - moto_server: the Route53 API (and S3), holding the hosted zone LabZone;
//   - CoreDNS (the bundle's own build, its route53 plugin): LabZone from moto
//     as DNS, and nothing else: every other name is refused, no query is
//     forwarded anywhere;
//   - Pebble: an ACME server that resolves names through that CoreDNS only
//     and validates HTTP-01 on port 80 of the address a name resolves to.
const (
	// LabZone is the Route53 hosted zone of the lab (.test is reserved for testing).
	LabZone = "lab.test"
	// PebbleHost is Pebble's name in LabZone (its TLS certificate carries it and the gateway address).
	PebbleHost     = "pebble.lab.test"
	nameServerHost = "ns.lab.test"
	// PebbleModule is what `go install` builds Pebble from.
	PebbleModule   = "github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3"
	pebbleTool     = "pebble"
	motoProgram    = "moto_server"
	corednsProgram = "coredns"
	pebbleDir      = "pebble"
	corednsDir     = "coredns"
	motoDir        = "moto"
	acmeRootFile   = "pebble-root.pem"
	route53EnvFile = "route53.env"
	// LabAWSKey is the access key id and secret the lab's clients sign their
	// Route53 requests with: moto checks the SigV4 form, not the key.
	LabAWSKey    = "boot-lab"
	labAWSRegion = "us-east-1"
	// dnsRefresh is how often CoreDNS reads the zone from moto.
	dnsRefresh = "2s"
)

// outsidePorts are the ports of the outside world's services.
type outsidePorts struct {
	DNS, ACME, ACMEManagement, Route53 int
	// Mirror is the package mirror's (see startMirror), Proxy the forward
	// proxy's (see startProxy).
	Mirror, Proxy int
}

// labPorts are the ports on the lab gateway.
var labPorts = outsidePorts{DNS: 53, ACME: 14000, ACMEManagement: 15000, Route53: 5005, Mirror: 8443, Proxy: 3128}

// startOutside starts moto, creates LabZone in it, starts CoreDNS serving
// that zone (when there is a bundle: CoreDNS comes from it) and Pebble, all
// on l.Gateway, and records them in the lab state.
func (l *Lab) startOutside(ctx context.Context, pebbleBin, bundleDir string, p outsidePorts, logf func(string, ...any)) error {
	host := l.Gateway
	moto, err := exec.LookPath(motoProgram)
	if err != nil {
		return fmt.Errorf("the lab needs %s (moto 5.2.1 with its server extra: pip install 'moto[server]==5.2.1'): %w", motoProgram, err)
	}
	for _, d := range []string{motoDir, corednsDir, pebbleDir} {
		if err := os.MkdirAll(filepath.Join(l.Dir, d), 0o700); err != nil {
			return err
		}
	}

	l.Route53Endpoint = "http://" + hostPort(host, p.Route53)
	r53 := route53Client(l.Route53Endpoint)
	err = l.startService(ctx, Service{Name: "moto", Program: motoProgram, Address: l.Route53Endpoint, Log: filepath.Join(l.Dir, motoDir, "moto.log")},
		moto, []string{"-H", host, "-p", fmt.Sprint(p.Route53)}, withoutAWSVars(os.Environ()), 60*time.Second,
		func(ctx context.Context) error {
			_, err := r53.ListHostedZones(ctx, &route53.ListHostedZonesInput{}, func(o *route53.Options) { o.RetryMaxAttempts = 1 })
			return err
		}, logf)
	if err != nil {
		return err
	}
	if l.Route53ZoneID, err = createZone(ctx, r53, host); err != nil {
		return fmt.Errorf("lab Route53 (moto at %s): %w", l.Route53Endpoint, err)
	}
	logf("route53: hosted zone %s is %s", LabZone, l.Route53ZoneID)
	if err := writeFileAtomic(filepath.Join(l.Dir, route53EnvFile), []byte(route53Env(l.Route53Endpoint)), 0o644); err != nil {
		return err
	}
	if err := l.save(); err != nil {
		return err
	}

	dnsServer := hostPort(host, p.DNS)
	if bundleDir == "" {
		logf("no bundle: no CoreDNS (the lab runs the bundle's build), so nothing serves %s as DNS at %s", LabZone, dnsServer)
	} else {
		bin := filepath.Join(l.Dir, "bin", corednsProgram)
		version, err := extractCoreDNS(bundleDir, bin)
		if err != nil {
			return err
		}
		corefile := filepath.Join(l.Dir, corednsDir, "Corefile")
		if err := writeFileAtomic(corefile, []byte(corefileText(host, p.DNS, l.Route53ZoneID)), 0o644); err != nil {
			return err
		}
		env := []string{
			"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
			"AWS_ENDPOINT_URL_ROUTE_53=" + l.Route53Endpoint,
			"AWS_ACCESS_KEY_ID=" + LabAWSKey, "AWS_SECRET_ACCESS_KEY=" + LabAWSKey,
			"AWS_REGION=" + labAWSRegion,
			// Only these: no shared AWS files, never the instance metadata service.
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		}
		err = l.startService(ctx, Service{Name: "coredns", Program: corednsProgram, Address: dnsServer + " (udp, tcp)", Log: filepath.Join(l.Dir, corednsDir, "coredns.log")},
			bin, []string{"-conf", corefile}, env, 30*time.Second,
			func(ctx context.Context) error { return checkZoneServed(ctx, dnsServer) }, logf)
		if err != nil {
			return err
		}
		l.DNSServer = dnsServer
		logf("coredns %s serves %s from moto (refresh %s) and refuses every other name", version, LabZone, dnsRefresh)
		if err := l.save(); err != nil {
			return err
		}
	}

	l.ACMECA = l.RegistryCA
	l.ACMEDirectory = "https://" + hostPort(host, p.ACME) + "/dir"
	config, err := pebbleConfig(l.Dir, host, p)
	if err != nil {
		return err
	}
	configPath := filepath.Join(l.Dir, pebbleDir, "pebble.json")
	if err := writeFileAtomic(configPath, config, 0o644); err != nil {
		return err
	}
	client, err := registryClient(l.ACMECA)
	if err != nil {
		return err
	}
	client.Timeout = 10 * time.Second
	err = l.startService(ctx, Service{Name: "pebble", Program: pebbleTool, Address: l.ACMEDirectory, Log: filepath.Join(l.Dir, pebbleDir, "pebble.log")},
		pebbleBin, []string{"-config", configPath, "-dnsserver", dnsServer},
		[]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0",
			// Every order is validated: a valid authorization is never reused.
			"PEBBLE_AUTHZREUSE=0"},
		30*time.Second, func(ctx context.Context) error { return checkACMEDirectory(ctx, client, l.ACMEDirectory) }, logf)
	if err != nil {
		return err
	}
	root, err := fetchPebbleRoot(ctx, client, "https://"+hostPort(host, p.ACMEManagement)+"/roots/0")
	if err != nil {
		return err
	}
	l.ACMERoot = filepath.Join(l.Dir, acmeRootFile)
	if err := writeFileAtomic(l.ACMERoot, root, 0o644); err != nil {
		return err
	}
	logf("pebble: ACME directory %s (TLS by the lab CA %s), issuing root %s", l.ACMEDirectory, l.ACMECA, l.ACMERoot)
	return l.save()
}

// withoutAWSVars drops AWS_* variables: moto must not see the caller's.
func withoutAWSVars(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "AWS_") {
			out = append(out, e)
		}
	}
	return out
}

// route53Client is a Route53 client for the lab's moto at endpoint, signing
// with LabAWSKey; it reads no AWS configuration of this machine.
func route53Client(endpoint string) *route53.Client {
	return route53.New(route53.Options{
		Region:       labAWSRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: LabAWSKey, SecretAccessKey: LabAWSKey, Source: "boot lab"}, nil
		}),
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
	})
}

// createZone creates LabZone and gives it a real SOA and NS (ns.lab.test at
// host, so that a resolver looking for the zone's name servers finds the
// lab's CoreDNS) and Pebble's name. It returns the zone id without the
// "/hostedzone/" prefix.
func createZone(ctx context.Context, c *route53.Client, host string) (string, error) {
	out, err := c.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name:            aws.String(LabZone),
		CallerReference: aws.String(fmt.Sprintf("boot-lab-%d", time.Now().UnixNano())),
	})
	if err != nil {
		return "", fmt.Errorf("create hosted zone %s: %w", LabZone, err)
	}
	if out.HostedZone == nil || aws.ToString(out.HostedZone.Id) == "" {
		return "", fmt.Errorf("create hosted zone %s: no zone id in the answer", LabZone)
	}
	id := strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
	set := func(name string, typ types.RRType, value string) types.Change {
		return types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{
			Name: aws.String(name + "."), Type: typ, TTL: aws.Int64(60),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String(value)}},
		}}
	}
	_, err = c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(id),
		ChangeBatch: &types.ChangeBatch{Comment: aws.String("boot lab"), Changes: []types.Change{
			// Negative answers are cached for 5 s only (the last field).
			set(LabZone, types.RRTypeSoa, nameServerHost+". hostmaster."+LabZone+". 1 7200 900 1209600 5"),
			set(LabZone, types.RRTypeNs, nameServerHost+"."),
			set(nameServerHost, types.RRTypeA, host),
			set(PebbleHost, types.RRTypeA, host),
		}},
	})
	if err != nil {
		return "", fmt.Errorf("zone %s (%s): write SOA, NS and A records: %w", LabZone, id, err)
	}
	return id, nil
}

// route53Env is the lab's route53.env: the variables that point the AWS SDK
// and CLI (and so boot's DNS step) at the lab's moto.
func route53Env(endpoint string) string {
	return fmt.Sprintf(`# Written by boot lab up: the lab's Route53 API (moto; any key is accepted).
# Source it before a boot command that writes DNS records in the zone %s.
export AWS_ENDPOINT_URL_ROUTE_53=%s
export AWS_ACCESS_KEY_ID=%s
export AWS_SECRET_ACCESS_KEY=%s
export AWS_REGION=%s
`, LabZone, endpoint, LabAWSKey, LabAWSKey, labAWSRegion)
}

// corefileText serves LabZone from the Route53 zone zoneID at host:port.
// There is no other server block and no forward plugin: CoreDNS refuses
// every name outside the zone.
func corefileText(host string, port int, zoneID string) string {
	return fmt.Sprintf(`# Written by boot lab up: the zone %[1]s from the lab's Route53 (moto), and
# nothing else. Names outside it are refused; no query is forwarded.
# (The route53 plugin reaches moto through AWS_ENDPOINT_URL_ROUTE_53.)
%[1]s:%[2]d {
	bind %[3]s
	route53 %[1]s.:%[4]s {
		refresh %[5]s
	}
	errors
	log
}
`, LabZone, port, host, zoneID, dnsRefresh)
}

// extractCoreDNS writes the /coredns program of the bundle's coredns image
// (its archive checked against the manifest) to dst, and returns its version.
func extractCoreDNS(bundleDir, dst string) (string, error) {
	m, err := bundle.ReadManifest(bundleDir)
	if err != nil {
		return "", err
	}
	for _, img := range m.Images {
		if img.Component != corednsProgram {
			continue
		}
		if _, err := m.VerifiedFile(bundleDir, img.Path); err != nil {
			return "", err
		}
		image, err := (&bundle.Bundle{Dir: bundleDir, Manifest: *m}).Image(img.Name)
		if err != nil {
			return "", err
		}
		fs := mutate.Extract(image)
		defer fs.Close()
		tr := tar.NewReader(fs)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return "", fmt.Errorf("bundle %s: image %s (%s) holds no /coredns", bundleDir, img.Name, img.Path)
			}
			if err != nil {
				return "", fmt.Errorf("bundle %s: image %s (%s): %w", bundleDir, img.Name, img.Path, err)
			}
			if h.Typeflag != tar.TypeReg || path.Clean("/"+h.Name) != "/coredns" {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return "", err
			}
			tmp := dst + ".tmp"
			out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
			if err != nil {
				return "", err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return "", fmt.Errorf("bundle %s: image %s: /coredns: %w", bundleDir, img.Name, err)
			}
			if err := out.Close(); err != nil {
				return "", err
			}
			return img.Version, os.Rename(tmp, dst)
		}
	}
	return "", fmt.Errorf("bundle %s: no coredns image in the manifest", bundleDir)
}

// pebbleConfig is Pebble's configuration: ACME and management on host, TLS
// with the certificate writeCerts made, HTTP-01 on port 80 and TLS-ALPN-01
// on 443 of the validated name's address (the ingress hosts).
func pebbleConfig(dir, host string, p outsidePorts) ([]byte, error) {
	type config struct {
		ListenAddress           string `json:"listenAddress"`
		ManagementListenAddress string `json:"managementListenAddress"`
		Certificate             string `json:"certificate"`
		PrivateKey              string `json:"privateKey"`
		HTTPPort                int    `json:"httpPort"`
		TLSPort                 int    `json:"tlsPort"`
		OCSPResponderURL        string `json:"ocspResponderURL"`
		ExternalAccountBinding  bool   `json:"externalAccountBindingRequired"`
		KeyAlgorithm            string `json:"keyAlgorithm"`
	}
	c := config{
		ListenAddress:           hostPort(host, p.ACME),
		ManagementListenAddress: hostPort(host, p.ACMEManagement),
		Certificate:             filepath.Join(dir, pebbleDir, "tls.crt"),
		PrivateKey:              filepath.Join(dir, pebbleDir, "tls.key"),
		HTTPPort:                80,
		TLSPort:                 443,
		KeyAlgorithm:            "ecdsa",
	}
	data, err := json.MarshalIndent(map[string]config{"pebble": c}, "", "  ")
	return append(data, '\n'), err
}

// checkACMEDirectory asks Pebble for its ACME directory over TLS checked by client.
func checkACMEDirectory(ctx context.Context, client *http.Client, url string) error {
	body, err := httpGet(ctx, client, url)
	if err != nil {
		return err
	}
	var dir struct {
		NewAccount string `json:"newAccount"`
		NewOrder   string `json:"newOrder"`
	}
	if err := json.Unmarshal(body, &dir); err != nil || dir.NewAccount == "" || dir.NewOrder == "" {
		return fmt.Errorf("%s is not an ACME directory: %.200q", url, body)
	}
	return nil
}

// fetchPebbleRoot returns Pebble's issuing root (PEM) from its management interface.
func fetchPebbleRoot(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := httpGet(ctx, client, url)
	if err != nil {
		return nil, fmt.Errorf("pebble's root: %w", err)
	}
	b, _ := pem.Decode(body)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pebble's root: %s answered no PEM certificate", url)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pebble's root from %s: %w", url, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pebble's root from %s (%s) is not a CA", url, cert.Subject)
	}
	return pem.EncodeToMemory(b), nil
}

func httpGet(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return body, nil
}
